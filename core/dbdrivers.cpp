// dbdrivers.cpp - see dbdrivers.h. Separate from popgate_core so that the
// core library does not link any database driver itself. Linking the
// PostgreSQL connector here would map libpq and its train (Kerberos, LDAP,
// SASL, GnuTLS, p11-kit, ... about 3.5 MB of resident pages) into every
// program, SQLite or not; so it is a module, loaded on first use.
#include "core/dbdrivers.h"

#include "core/errors.h"
#include "core/pgsql_module.h"
#include "core/prepared.h"
#include "core/text.h"

#include <Poco/Data/Connector.h>
#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/SessionFactory.h>
#include <Poco/Exception.h>
#include <Poco/SharedLibrary.h>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <sqlite3.h>

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
        // The statements every poll runs, prepared once per session (a module
        // without the entry point: Poco for every statement, as before).
        if (library_.hasSymbol("popgate_pgsql_prepared_cache")) {
            pgsqlPrepared = reinterpret_cast<decltype(&popgate_pgsql_prepared_cache)>(
                library_.getSymbol("popgate_pgsql_prepared_cache"));
            setPreparedCacheFactory("postgresql", pgsqlCache);
        }
    }

    static std::unique_ptr<PreparedCache> pgsqlCache(Poco::Data::Session& session,
                                                     const std::string& description)
    {
        return std::unique_ptr<PreparedCache>(pgsqlPrepared(session, description));
    }
    static inline decltype(&popgate_pgsql_prepared_cache) pgsqlPrepared = nullptr;

    std::once_flag loaded_;
    Poco::SharedLibrary library_;
    std::unique_ptr<Poco::Data::Connector> real_;
};

// SqliteStatement - a statement prepared once on the session's connection
// (the same connection as Poco's statements, so inside its transactions).
class SqliteStatement : public PreparedStatement
{
public:
    SqliteStatement(sqlite3* db, const char* sql, const std::string& description)
        : db_(db), sql_(sql), description_(description)
    {
        if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) !=
            SQLITE_OK)
            fail("cannot prepare");
    }
    ~SqliteStatement() override { sqlite3_finalize(stmt_); }

    void bind(int position, std::int64_t value) override
    {
        if (sqlite3_bind_int64(stmt_, position, value) != SQLITE_OK)
            fail("cannot bind");
    }
    void bind(int position, const std::string& value) override
    {
        if (sqlite3_bind_text(stmt_, position, value.data(), static_cast<int>(value.size()),
                              SQLITE_TRANSIENT) != SQLITE_OK)
            fail("cannot bind");
    }
    bool step() override
    {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW)
            return true;
        if (rc == SQLITE_DONE)
            return false;
        fail("cannot execute");
        return false;
    }
    std::int64_t number(int column) override { return sqlite3_column_int64(stmt_, column); }
    std::string text(int column) override
    {
        const auto* p = sqlite3_column_text(stmt_, column);
        return p ? std::string(reinterpret_cast<const char*>(p),
                               static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)))
                 : std::string();
    }
    void reset() override
    {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

private:
    [[noreturn]] void fail(const std::string& what)
    {
        const std::string message = sqlite3_errmsg(db_);
        if (stmt_)
            sqlite3_reset(stmt_);
        throw OperationError("database " + description_ + ": " + what + " (" +
                             flatten(std::string(sql_).substr(0, 60)) +
                             "...): " + flatten(message));
    }

    sqlite3* db_;
    const char* sql_;
    const std::string& description_;
    sqlite3_stmt* stmt_ = nullptr;
};

class SqliteCache : public PreparedCache
{
public:
    SqliteCache(sqlite3* db, const std::string& description) : db_(db), description_(description) {}
    PreparedStatement& get(const char* sql) override
    {
        auto it = statements_.find(sql);
        if (it == statements_.end())
            it = statements_.emplace(sql, std::make_unique<SqliteStatement>(db_, sql, description_))
                     .first;
        return *it->second;
    }

private:
    sqlite3* db_;
    std::string description_;
    std::map<const char*, std::unique_ptr<SqliteStatement>> statements_;
};

std::unique_ptr<PreparedCache> sqliteCache(Poco::Data::Session& session,
                                           const std::string& description)
{
    sqlite3* db = Poco::Data::SQLite::Utility::dbHandle(session);
    if (!db)
        return nullptr;
    return std::make_unique<SqliteCache>(db, description);
}

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
        setPreparedCacheFactory("sqlite", sqliteCache);
    });
}

} // namespace popgate
