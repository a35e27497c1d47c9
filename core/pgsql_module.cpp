// pgsql_module.cpp - popgate-pgsql.so (see pgsql_module.h): hands the PostgreSQL
// connector to popgate_dbdrivers, and the statements prepared once per session
// (core/prepared.h) with libpq's PQprepare / PQexecPrepared: Poco's connector
// prepares and deallocates every statement at every execution. Links
// Poco::DataPostgreSQL and libpq; of popgate only the header-only interfaces.
#include "core/pgsql_module.h"

// The exception and the interfaces cross into popgated: their type information
// visible, whatever the module's default.
#pragma GCC visibility push(default)
#include "core/errors.h"
#include "core/prepared.h"
#pragma GCC visibility pop

#include <Poco/Data/PostgreSQL/Connector.h>
#include <Poco/Data/PostgreSQL/SessionImpl.h>
#include <cstdlib>
#include <libpq-fe.h>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace
{

// flat - one line of at most 200 characters of text from the server or the SQL
// (the module links nothing of popgate, so not core/text.h's flatten).
std::string flat(std::string s)
{
    if (s.size() > 200)
        s.resize(200);
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            c = ' ';
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    return s;
}

// PgStatement - PQprepare'd once under a name of its own; executed with text
// parameters, its rows read as text (integers parsed).
class PgStatement : public popgate::PreparedStatement
{
public:
    PgStatement(PGconn* conn, const char* sql, std::string name, const std::string& description)
        : conn_(conn), sql_(sql), name_(std::move(name)), description_(description)
    {
        PGresult* r = PQprepare(conn_, name_.c_str(), sql, 0, nullptr);
        const bool ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok)
            fail("cannot prepare");
    }
    ~PgStatement() override { PQclear(result_); } // the session's end deallocates the statement

    void bind(int position, std::int64_t value) override { set(position, std::to_string(value)); }
    void bind(int position, const std::string& value) override { set(position, value); }
    bool step() override
    {
        if (!result_) {
            std::vector<const char*> values;
            for (const auto& p : params_)
                values.push_back(p.c_str());
            result_ = PQexecPrepared(conn_, name_.c_str(), static_cast<int>(values.size()),
                                     values.data(), nullptr, nullptr, 0);
            const ExecStatusType st = result_ ? PQresultStatus(result_) : PGRES_FATAL_ERROR;
            if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
                fail("cannot execute");
            row_ = 0;
        } else {
            ++row_;
        }
        return row_ < PQntuples(result_);
    }
    std::int64_t number(int column) override
    {
        if (PQgetisnull(result_, row_, column))
            return 0;
        return std::strtoll(PQgetvalue(result_, row_, column), nullptr, 10);
    }
    std::string text(int column) override
    {
        if (PQgetisnull(result_, row_, column))
            return {};
        return std::string(PQgetvalue(result_, row_, column),
                           static_cast<std::size_t>(PQgetlength(result_, row_, column)));
    }
    void reset() override
    {
        PQclear(result_);
        result_ = nullptr;
        params_.clear();
    }

private:
    void set(int position, std::string value)
    {
        if (position < 1)
            fail("cannot bind");
        if (params_.size() < static_cast<std::size_t>(position))
            params_.resize(static_cast<std::size_t>(position));
        params_[static_cast<std::size_t>(position) - 1] = std::move(value);
    }
    [[noreturn]] void fail(const std::string& what)
    {
        const std::string message = PQerrorMessage(conn_);
        reset();
        throw popgate::OperationError("database " + description_ + ": " + what + " (" +
                                      flat(std::string(sql_).substr(0, 60)) +
                                      "...): " + flat(message));
    }

    PGconn* conn_;
    const char* sql_;
    std::string name_;
    const std::string& description_;
    std::vector<std::string> params_;
    PGresult* result_ = nullptr;
    int row_ = 0;
};

class PgCache : public popgate::PreparedCache
{
public:
    PgCache(PGconn* conn, const std::string& description) : conn_(conn), description_(description)
    {
    }
    popgate::PreparedStatement& get(const char* sql) override
    {
        auto it = statements_.find(sql);
        if (it == statements_.end()) {
            // Poco's own statements are unnamed or named otherwise: no clash.
            const std::string name = "popgate_" + std::to_string(statements_.size() + 1);
            it = statements_
                     .emplace(sql, std::make_unique<PgStatement>(conn_, sql, name, description_))
                     .first;
        }
        return *it->second;
    }

private:
    PGconn* conn_;
    std::string description_;
    std::map<const char*, std::unique_ptr<PgStatement>> statements_;
};

} // namespace

extern "C" {

__attribute__((visibility("default"))) const char* popgate_pgsql_version()
{
    return POPGATE_VERSION;
}

__attribute__((visibility("default"))) Poco::Data::Connector* popgate_pgsql_connector()
{
    return new Poco::Data::PostgreSQL::Connector;
}

__attribute__((visibility("default"))) popgate::PreparedCache*
popgate_pgsql_prepared_cache(Poco::Data::Session& session, const std::string& description)
{
    auto* impl = dynamic_cast<Poco::Data::PostgreSQL::SessionImpl*>(session.impl());
    if (!impl)
        return nullptr;
    PGconn* conn = impl->handle();
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return nullptr;
    return new PgCache(conn, description);
}
}
