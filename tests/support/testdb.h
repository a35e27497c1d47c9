// testdb.h - a throwaway, empty database of one dialect for the store suites:
// SQLite in a temporary directory, or a fresh PostgreSQL database on the test
// server ($POPGATE_TEST_PG_CONNECT; a missing server fails the test). Dropped
// when the object goes.
#pragma once

#include "core/config.h"
#include "tests/support/testsupport.h"

#include <memory>
#include <string>

namespace popgate::test
{

class TestDatabase
{
public:
    /// TestDatabase - dialect "sqlite" or "postgresql"; registers the drivers.
    explicit TestDatabase(const std::string& dialect);
    ~TestDatabase();
    TestDatabase(const TestDatabase&) = delete;
    TestDatabase& operator=(const TestDatabase&) = delete;

    /// config - the defaults, pointed at this database.
    const Config& config() const { return config_; }

private:
    TempDir dir_;
    std::string admin_; ///< PostgreSQL: the server's connection string
    std::string name_;  ///< PostgreSQL: this database
    Config config_ = Config::defaults();
};

/// kDialects - the two dialects every store suite runs on.
inline const char* const kDialects[] = {"sqlite", "postgresql"};

} // namespace popgate::test
