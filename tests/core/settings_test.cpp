// settings_test - core/settings.cpp on both dialects: the receiving switch is
// on in a fresh database, switched off and on with who and when recorded,
// and read back by another session; the SQLite heartbeat row (SingleHostBeat)
// is written, beaten, cleared on a clean stop, and read by hostBeats with an
// age on the database's clock; PostgreSQL's host rows come through the same call.
#define BOOST_TEST_MODULE settings
#include "core/lease.h"
#include "core/settings.h"
#include "core/store.h"
#include "tests/support/testdb.h"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <thread>

using namespace popgate;
using namespace popgate::test;
namespace data = boost::unit_test::data;

namespace
{

HostIdentity me(const std::string& instance)
{
    HostIdentity h;
    h.hostId = "gw1";
    h.instance = instance;
    h.hostname = "gw1.example";
    h.pid = 4242;
    h.version = "9.9-test";
    return h;
}

} // namespace

BOOST_DATA_TEST_CASE(receiving_switch, data::make(kDialects), dialect)
{
    TestDatabase db(dialect);
    Store store(db.config(), Store::Open::CreateFile);
    store.migrate();
    ReceivingState s = readReceiving(store);
    BOOST_TEST(s.on, "on by default");
    BOOST_TEST(s.changedAt == 0);
    BOOST_TEST(s.changedBy.empty());

    const std::int64_t before = nowSeconds();
    ReceivingState was = setReceiving(store, false, "ops@console.example");
    BOOST_TEST(was.on);
    Store other(db.config()); // another host's session sees it
    s = readReceiving(other);
    BOOST_TEST(!s.on);
    BOOST_TEST(s.changedBy == "ops@console.example");
    BOOST_TEST(s.changedAt >= before);
    BOOST_TEST(s.changedAt <= nowSeconds());

    was = setReceiving(other, true, "root@gw2");
    BOOST_TEST(!was.on);
    s = readReceiving(store);
    BOOST_TEST(s.on);
    BOOST_TEST(s.changedBy == "root@gw2");
}

BOOST_AUTO_TEST_CASE(sqlite_heartbeat)
{
    TestDatabase db("sqlite");
    Store store(db.config(), Store::Open::CreateFile);
    store.migrate();
    BOOST_TEST(hostBeats(store).empty(), "no popgated has run");

    SingleHostBeat(store, me("old")).start();
    SingleHostBeat beat(store, me("new"));
    beat.start(); // one popgated per file: the row of an earlier one goes
    auto hosts = hostBeats(store);
    BOOST_TEST_REQUIRE(hosts.size() == 1u);
    BOOST_TEST(hosts[0].hostId == "gw1");
    BOOST_TEST(hosts[0].hostname == "gw1.example");
    BOOST_TEST(hosts[0].pid == 4242);
    BOOST_TEST(hosts[0].version == "9.9-test");
    BOOST_TEST(hosts[0].startedAt > 0);
    BOOST_TEST(hosts[0].heartbeatAt >= hosts[0].startedAt);
    BOOST_TEST(hosts[0].heartbeatAgeMs >= 0);
    BOOST_TEST(hosts[0].heartbeatAgeMs < 5000);
    const std::int64_t first = hosts[0].heartbeatAt;

    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    beat.beat();
    hosts = hostBeats(store);
    BOOST_TEST(hosts[0].heartbeatAt > first, "a beat moves the heartbeat");

    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    hosts = hostBeats(store);
    BOOST_TEST(hosts[0].heartbeatAgeMs >= 250, "the age grows between beats");

    beat.leave();
    hosts = hostBeats(store);
    BOOST_TEST(hosts[0].heartbeatAt == 0, "a clean stop clears the heartbeat");
    BOOST_TEST(hosts[0].startedAt > 0, "and keeps when it started");
}

BOOST_AUTO_TEST_CASE(postgresql_hosts_through_the_same_call)
{
    TestDatabase db("postgresql");
    Store store(db.config(), Store::Open::CreateFile);
    store.migrate();
    LeaseStore leases(store, me("pg1"), 10000);
    leases.registerHost(60000);
    const auto hosts = hostBeats(store);
    BOOST_TEST_REQUIRE(hosts.size() == 1u);
    BOOST_TEST(hosts[0].pid == 4242);
    BOOST_TEST(hosts[0].version == "9.9-test");
    BOOST_TEST(hosts[0].heartbeatAt > 0);
    BOOST_TEST(hosts[0].heartbeatAgeMs < 5000);
}
