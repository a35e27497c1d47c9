// dbdrivers.h - registers the Poco::Data drivers popgate's store can use
// (SQLite, PostgreSQL). Called once by each program before opening a Store.
// SQLite is linked in; PostgreSQL lives in the module popgate-pgsql.so
// (core/pgsql_module.h), loaded when the first PostgreSQL session is opened.
#pragma once

#include <string>

namespace popgate
{

/// registerDatabaseDrivers - idempotent. Registers SQLite and a "PostgreSQL"
/// connector that loads popgate-pgsql.so on first use; a missing or mismatched
/// module makes that session fail with a Poco::Exception naming the file.
void registerDatabaseDrivers();

/// pgsqlModulePath - where the PostgreSQL module is looked for:
/// $POPGATE_MODULE_DIR/popgate-pgsql.so, else POPGATE_MODULEDIR/popgate-pgsql.so.
std::string pgsqlModulePath();

} // namespace popgate
