// prepared.h - statements prepared once per database connection and run
// many times: the hot statements of an idle poll (issue Perf). Poco 1.11's
// SQLite connector prepares a statement again on every execution (its parse
// was about half of an idle poll's instructions), and Poco::Data offers no way
// to keep one. The interface lives here, in core; the SQLite implementation in
// core/dbdrivers.cpp, which links the driver, so the core stays driver-free.
// A Store without one (PostgreSQL, or no drivers registered) uses Poco.
#pragma once

#include <Poco/Data/Session.h>
#include <cstdint>
#include <memory>
#include <string>

namespace popgate
{

/// PreparedStatement - one cached statement, used by one caller at a time:
/// bind by position (from 1), step through the rows, read columns (from 0).
/// Every failure throws OperationError naming the database and the SQL.
class PreparedStatement
{
public:
    virtual ~PreparedStatement() = default;
    virtual void bind(int position, std::int64_t value) = 0;
    virtual void bind(int position, const std::string& value) = 0;
    /// step - true: a row is there to read; false: done (a write: executed).
    virtual bool step() = 0;
    /// number - the column as an integer, 0 when NULL.
    virtual std::int64_t number(int column) = 0;
    /// text - the column as text, "" when NULL.
    virtual std::string text(int column) = 0;
    /// reset - ready for the next execution, bindings cleared.
    virtual void reset() = 0;
};

/// PreparedCache - a connection's statements by SQL text (the pointer: the
/// callers pass string constants). Belongs to one session; finalized before it.
class PreparedCache
{
public:
    virtual ~PreparedCache() = default;
    /// get - the statement for sql, reset and unbound; throws OperationError.
    virtual PreparedStatement& get(const char* sql) = 0;
};

/// PreparedCacheFactory - a cache for the session, or nullptr where the
/// driver has none (set by registerDatabaseDrivers for SQLite).
using PreparedCacheFactory = std::unique_ptr<PreparedCache> (*)(Poco::Data::Session& session,
                                                                const std::string& description);
void setPreparedCacheFactory(const std::string& dialect, PreparedCacheFactory factory);
PreparedCacheFactory preparedCacheFactory(const std::string& dialect);

/// Prepared - one execution of a cached statement; resets it when it ends,
/// whatever happened, so the next caller finds it ready.
class Prepared
{
public:
    explicit Prepared(PreparedStatement& s) : s_(s) {}
    ~Prepared() { s_.reset(); }
    Prepared(const Prepared&) = delete;
    Prepared& operator=(const Prepared&) = delete;
    PreparedStatement* operator->() { return &s_; }
    PreparedStatement& operator*() { return s_; }

private:
    PreparedStatement& s_;
};

} // namespace popgate
