// message_store_test - the fetch ledger, message log and account status on
// real SQLite and PostgreSQL (core/message_store.cpp).
#define BOOST_TEST_MODULE message_store
#include "core/dbdrivers.h"
#include "core/errors.h"
#include "core/message_store.h"
#include "tests/support/testdb.h"
#include "tests/support/testsupport.h"

#include <Poco/Data/Session.h>
#include <Poco/Process.h>
#include <atomic>
#include <boost/test/unit_test.hpp>

using namespace popgate;
using namespace Poco::Data::Keywords;

namespace
{

// Db - a migrated database of one dialect with one account.
struct Db {
    test::TestDatabase database;
    std::unique_ptr<Store> store;
    std::int64_t accountId = 0;

    explicit Db(const std::string& dialect) : database(dialect)
    {
        store = std::make_unique<Store>(database.config(), Store::Open::CreateFile);
        store->migrate();
        Account a;
        a.name = "helpdesk";
        a.server = "pop.example.com";
        a.auth = AuthKind::None;
        a.mailbox = "helpdesk@example.com";
        store->addAccount(a);
        accountId = a.id;
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(ledger_round_trip)
{
    for (const char* d : test::kDialects) {
        BOOST_TEST_CONTEXT(d)
        {
            Db db(d);
            MessageStore ms(*db.store);
            MessageRecord r;
            r.accountId = db.accountId;
            r.uidl = "uid-'1\"; DROP TABLE messages;--";
            r.state = MessageState::Injecting;
            r.messageId = "<m1@example.org>";
            r.envelopeFrom = "a@example.org";
            r.size = 5'000'000'000LL;
            ms.save(r);
            BOOST_TEST(r.id > 0);
            auto rows = ms.forAccount(db.accountId);
            BOOST_TEST_REQUIRE(rows.size() == 1u);
            BOOST_TEST(messageStateName(rows.at(r.uidl).state) == "injecting");
            BOOST_TEST(rows.at(r.uidl).size == 5'000'000'000LL);

            r.state = MessageState::Injected;
            r.queueId = "4ABC";
            ms.save(r); // same (account, uidl): an update, not a second row
            rows = ms.forAccount(db.accountId);
            BOOST_TEST_REQUIRE(rows.size() == 1u);
            BOOST_TEST(rows.at(r.uidl).queueId == "4ABC");
            BOOST_TEST(messageStateName(ms.find(r.id)->state) == "injected");

            // The same Message-ID under another UIDL is a duplicate; the same UIDL is not.
            BOOST_TEST(ms.duplicateOf(db.accountId, "<m1@example.org>", "other", 0).value() ==
                       r.uidl);
            BOOST_TEST(!ms.duplicateOf(db.accountId, "<m1@example.org>", r.uidl, 0).has_value());
            BOOST_TEST(!ms.duplicateOf(db.accountId, "<m2@example.org>", "other", 0).has_value());
            BOOST_TEST(!ms.duplicateOf(db.accountId, "", "other", 0).has_value());

            ms.markDeleted(db.accountId, {r.uidl});
            BOOST_TEST(ms.forAccount(db.accountId).at(r.uidl).deleted);
            BOOST_TEST(ms.forget(nowSeconds() - 3600) == 0u); // too young to forget
            BOOST_TEST(ms.forget(nowSeconds() + 10) == 1u);
            BOOST_TEST(ms.forAccount(db.accountId).empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(log_and_status)
{
    for (const char* d : test::kDialects) {
        BOOST_TEST_CONTEXT(d)
        {
            Db db(d);
            MessageStore ms(*db.store);
            for (const char* status : {"delivered", "ignored", "delivered"}) {
                LogEntry e;
                e.account = "helpdesk";
                e.uidl = "u";
                e.status = status;
                e.queueId = "Q";
                ms.log(e);
            }
            LogQuery q;
            BOOST_TEST(ms.logEntries(q).size() == 3u);
            q.status = "delivered";
            BOOST_TEST(ms.logEntries(q).size() == 2u);
            q.status.clear();
            q.account = "other";
            BOOST_TEST(ms.logEntries(q).empty());
            q.account.clear();
            q.since = nowSeconds() + 60;
            BOOST_TEST(ms.logEntries(q).empty());

            BOOST_TEST(ms.status(db.accountId).lastPollAt == 0);
            AccountStatus s;
            s.accountId = db.accountId;
            s.lastPollAt = 100;
            s.consecutiveFailures = 3;
            s.lastError = "PASS: -ERR [AUTH] no";
            ms.saveStatus(s);
            s.consecutiveFailures = 4;
            ms.saveStatus(s);
            const AccountStatus got = ms.status(db.accountId);
            BOOST_TEST(got.consecutiveFailures == 4);
            BOOST_TEST(got.lastError == s.lastError);
        }
    }
}
