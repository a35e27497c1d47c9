// testdb.cpp - see testdb.h.
#include "tests/support/testdb.h"

#include "core/dbdrivers.h"

#include <Poco/Data/Session.h>
#include <Poco/Process.h>
#include <atomic>

using namespace Poco::Data::Keywords;

namespace popgate::test
{

TestDatabase::TestDatabase(const std::string& dialect)
{
    registerDatabaseDrivers();
    if (dialect != "postgresql") {
        config_.set("database.path", dir_.file("popgate.db"));
        return;
    }
    static std::atomic<int> counter{0};
    admin_ = requireEnv("POPGATE_TEST_PG_CONNECT");
    name_ = "popgate_test_" + std::to_string(Poco::Process::id()) + "_" + std::to_string(++counter);
    Poco::Data::Session s("PostgreSQL", admin_);
    s << "CREATE DATABASE " + name_, now;
    config_.set("database.driver", "postgresql");
    config_.set("database.connect", admin_ + " dbname=" + name_);
}

TestDatabase::~TestDatabase()
{
    if (name_.empty())
        return;
    try {
        Poco::Data::Session s("PostgreSQL", admin_);
        s << "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)", now;
    } catch (...) {
    }
}

} // namespace popgate::test
