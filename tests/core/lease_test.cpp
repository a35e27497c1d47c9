// lease_test - core/lease.cpp on the test PostgreSQL (and SingleHostLock on a
// file): leases are taken without waiting on another host's locked rows, the
// epoch grows with every new holder, renewal keeps only what a process still
// holds, fence() refuses a stale epoch or an expired lease, and a second live
// process with the same host id is refused.
#define BOOST_TEST_MODULE lease
#include "core/account.h"
#include "core/lease.h"
#include "core/store.h"
#include "tests/support/testdb.h"

#include <Poco/Data/Session.h>
#include <boost/test/unit_test.hpp>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;
using namespace Poco::Data::Keywords;

namespace
{

HostIdentity host(const std::string& id, const std::string& instance)
{
    HostIdentity h;
    h.hostId = id;
    h.instance = instance;
    h.hostname = "elsewhere.example"; // not this machine: liveness by heartbeat only
    h.pid = 1;
    h.version = "test";
    return h;
}

std::int64_t addAccounts(Store& store, int n)
{
    std::int64_t first = 0;
    for (int i = 0; i < n; ++i) {
        Account a;
        a.name = "acct" + std::to_string(i);
        a.server = "pop.example.com";
        a.user = "u";
        a.deliverTo = "x@example.com";
        store.addAccount(a);
        if (i == 0)
            first = a.id;
    }
    return first;
}

struct World {
    TestDatabase db{"postgresql"};
    Store a{db.config()}, b{db.config()};
    World() { a.migrate(); }
};

} // namespace

BOOST_AUTO_TEST_CASE(leases_are_shared_out_and_each_new_holder_bumps_the_epoch)
{
    World w;
    addAccounts(w.a, 4);
    LeaseStore h1(w.a, host("h1", "i1"), 60000), h2(w.b, host("h2", "i2"), 60000);
    h1.registerHost(60000);
    h2.registerHost(60000);
    h1.ensureRows();
    const auto first = h1.acquire(3);
    BOOST_TEST(first.size() == 3u);
    const auto second = h2.acquire(10);
    BOOST_TEST(second.size() == 1u, "only the one left");
    for (const auto& [id, h] : first) {
        BOOST_TEST(h.epoch == 1);
        BOOST_TEST(!second.count(id));
    }
    BOOST_TEST(h1.renew().size() == 3u);
    BOOST_TEST(h2.renew().size() == 1u);
    // Given back, taken by the other host: a new epoch.
    const std::int64_t moved = first.begin()->first;
    h1.release({moved});
    const auto taken = h2.acquire(10);
    BOOST_TEST_REQUIRE(taken.size() == 1u);
    BOOST_TEST(taken.begin()->first == moved);
    BOOST_TEST(taken.begin()->second.epoch == 2);
    BOOST_TEST(h1.renew().size() == 2u, "h1 renews only what it still holds");
    const auto [accounts, hosts] = h1.shareCounts(60000);
    BOOST_TEST(accounts == 4);
    BOOST_TEST(hosts == 2);
}

BOOST_AUTO_TEST_CASE(taking_skips_a_lease_another_transaction_has_locked)
{
    World w;
    const std::int64_t id = addAccounts(w.a, 1);
    LeaseStore h1(w.a, host("h1", "i1"), 1), h2(w.b, host("h2", "i2"), 60000);
    h1.ensureRows();
    auto held = h1.acquire(1);
    BOOST_TEST_REQUIRE(held.size() == 1u);
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // h1's 1 ms lease expires
    // h1 fences a write on its (expired) lease: refused, and nothing is locked after.
    LeaseToken stale(id, held.at(id).epoch, steadyMillis() + 1000);
    {
        Transaction tx(w.a.session());
        BOOST_CHECK_THROW(fence(w.a, "i1", stale), LeaseLost);
    }
    BOOST_TEST(stale.lost());
    // Someone holds the row locked (as a fencing write does): h2 does not wait, it skips.
    w.a.session().begin();
    w.a.session() << "SELECT account_id FROM account_leases FOR KEY SHARE", now;
    const auto t0 = steadyMillis();
    BOOST_TEST(h2.acquire(1).empty());
    BOOST_TEST(steadyMillis() - t0 < 2000);
    w.a.session().rollback();
    const auto taken = h2.acquire(1);
    BOOST_TEST_REQUIRE(taken.size() == 1u);
    BOOST_TEST(taken.at(id).epoch == held.at(id).epoch + 1);
}

BOOST_AUTO_TEST_CASE(fence_accepts_the_holder_and_refuses_a_stale_epoch)
{
    World w;
    const std::int64_t id = addAccounts(w.a, 1);
    LeaseStore h1(w.a, host("h1", "i1"), 60000), h2(w.b, host("h2", "i2"), 60000);
    h1.ensureRows();
    const auto held = h1.acquire(1);
    LeaseToken mine(id, held.at(id).epoch, 0);
    {
        Transaction tx(w.a.session());
        fence(w.a, "i1", mine);
        tx.commit();
    }
    BOOST_TEST(mine.validFor(50000), "the database said how long it holds");
    // Another instance with the same epoch number is not the holder.
    LeaseToken other(id, held.at(id).epoch, steadyMillis() + 60000);
    Transaction tx(w.b.session());
    BOOST_CHECK_THROW(fence(w.b, "i2", other), LeaseLost);
}

BOOST_AUTO_TEST_CASE(a_second_live_process_with_the_same_host_id_is_refused)
{
    World w;
    LeaseStore first(w.a, host("gw1", "i1"), 60000), second(w.b, host("gw1", "i2"), 60000);
    first.registerHost(60000);
    try {
        second.registerHost(60000);
        BOOST_FAIL("a second gw1 was let in");
    } catch (const InputError& e) {
        const std::string m = e.what();
        BOOST_TEST(m.find("host_id 'gw1' is in use by a live popgated") != std::string::npos, m);
    }
    first.heartbeat();
    // Once the first one's heartbeat is older than the stale time, it is taken over...
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    second.registerHost(10);
    // ...and the first one learns it at its next heartbeat.
    BOOST_CHECK_THROW(first.heartbeat(), LeaseLost);
    second.heartbeat();
    BOOST_TEST(second.hosts().size() == 1u);
}

BOOST_AUTO_TEST_CASE(sqlite_keeps_one_popgated_per_database_file)
{
    TempDir dir;
    const std::string db = dir.file("popgate.db");
    {
        SingleHostLock one(db);
        try {
            SingleHostLock two(db);
            BOOST_FAIL("a second lock on the same file");
        } catch (const OperationError& e) {
            const std::string m = e.what();
            BOOST_TEST(m.find("in use by another popgated (pid " + std::to_string(::getpid()) +
                              ")") != std::string::npos,
                       m);
        }
    }
    SingleHostLock again(db); // released with its holder
}
