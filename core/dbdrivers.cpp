// dbdrivers.cpp - see dbdrivers.h. Separate from popgate_core so that the
// core library does not link any database driver itself. Linking the
// PostgreSQL connector here would map libpq and its train (Kerberos, LDAP,
// SASL, GnuTLS, p11-kit, ... about 3.5 MB of resident pages) into every
// program, SQLite or not; so it is a module, loaded on first use.
#include "core/dbdrivers.h"

#include "core/pgsql_module.h"

#include <Poco/Data/Connector.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SessionFactory.h>
#include <Poco/Exception.h>
#include <Poco/SharedLibrary.h>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace popgate
{

namespace
{

// PostgreSQLLoader - registered under the PostgreSQL connector's key; the first
// createSession loads popgate-pgsql.so and delegates to the connector inside.
class PostgreSQLLoader : public Poco::Data::Connector
{
public:
    const std::string& name() const override
    {
        static const std::string key = "postgresql"; // Poco::Data::PostgreSQL::Connector::KEY
        return key;
    }

    Poco::AutoPtr<Poco::Data::SessionImpl> createSession(const std::string& connectionString,
                                                         std::size_t timeout) override
    {
        return connector().createSession(connectionString, timeout);
    }

private:
    Poco::Data::Connector& connector()
    {
        // A failed load leaves the flag unset: the next session tries again.
        std::call_once(loaded_, [this] { load(); });
        return *real_;
    }

    void load()
    {
        const std::string path = pgsqlModulePath();
        auto fail = [&](std::string why) {
            if (library_.isLoaded())
                library_.unload(); // not ours: the next session may find the right one
            if (why.find(path) == std::string::npos)
                why = path + ": " + why;
            throw Poco::LibraryLoadException(why + " (the PostgreSQL driver; $" + kModuleDirEnv +
                                             " overrides its directory)");
        };
        try {
            // Never unloaded: the sessions' code lives in the module.
            library_.load(path);
        } catch (const Poco::Exception& e) {
            fail(e.message());
        }
        if (!library_.hasSymbol("popgate_pgsql_version") ||
            !library_.hasSymbol("popgate_pgsql_connector"))
            fail("not a popgate module");
        auto version = reinterpret_cast<decltype(&popgate_pgsql_version)>(
            library_.getSymbol("popgate_pgsql_version"));
        if (std::strcmp(version(), POPGATE_VERSION) != 0)
            fail(std::string("built for popgate ") + version() + ", this is " POPGATE_VERSION);
        auto make = reinterpret_cast<decltype(&popgate_pgsql_connector)>(
            library_.getSymbol("popgate_pgsql_connector"));
        real_.reset(make());
    }

    std::once_flag loaded_;
    Poco::SharedLibrary library_;
    std::unique_ptr<Poco::Data::Connector> real_;
};

} // namespace

std::string pgsqlModulePath()
{
    const char* dir = std::getenv(kModuleDirEnv);
    return std::string(dir && *dir ? dir : POPGATE_MODULEDIR) + "/" + kPgsqlModuleFile;
}

void registerDatabaseDrivers()
{
    static std::once_flag once;
    std::call_once(once, [] {
        Poco::Data::SQLite::Connector::registerConnector();
        Poco::Data::SessionFactory::instance().add(new PostgreSQLLoader);
    });
}

} // namespace popgate
