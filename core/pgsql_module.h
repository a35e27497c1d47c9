// pgsql_module.h - the two C entry points of popgate-pgsql.so, the module that
// carries the PostgreSQL connector (libPocoDataPostgreSQL, libpq and what libpq
// pulls in: Kerberos, LDAP, SASL, GnuTLS). popgate_dbdrivers loads it only when a
// PostgreSQL session is opened, so a SQLite installation never maps those libraries.
#pragma once

#include <string>

namespace Poco::Data
{
class Connector;
class Session;
} // namespace Poco::Data

namespace popgate
{
class PreparedCache;
}

extern "C" {
/// popgate_pgsql_version - the POPGATE_VERSION the module was built with; the
/// loader refuses a module from another build.
const char* popgate_pgsql_version();
/// popgate_pgsql_connector - a new Poco::Data::PostgreSQL::Connector, owned by the caller.
Poco::Data::Connector* popgate_pgsql_connector();
/// popgate_pgsql_prepared_cache - statements prepared once on the session's
/// connection (core/prepared.h), owned by the caller; nullptr when the session
/// is not a connected PostgreSQL one. Its failures throw popgate::OperationError.
popgate::PreparedCache* popgate_pgsql_prepared_cache(Poco::Data::Session& session,
                                                     const std::string& description);
}

namespace popgate
{

/// kPgsqlModuleFile - the module's file name, in POPGATE_MODULEDIR or $POPGATE_MODULE_DIR.
inline const char* const kPgsqlModuleFile = "popgate-pgsql.so";
/// kModuleDirEnv - the environment variable that overrides the compiled-in module
/// directory (the build tree, the tests).
inline const char* const kModuleDirEnv = "POPGATE_MODULE_DIR";

} // namespace popgate
