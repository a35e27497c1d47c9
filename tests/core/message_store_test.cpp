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

// The fetcher's batch forms: rows, log entries, deletions and Message-ID
// lookups in multi-row statements (more rows than one statement takes, so
// the chunking is exercised), on both dialects; the result must equal what
// the one-row forms give.
BOOST_AUTO_TEST_CASE(batch_forms_match_the_single_ones)
{
    for (const char* d : test::kDialects) {
        BOOST_TEST_CONTEXT(d)
        {
            Db db(d);
            MessageStore ms(*db.store);
            const int n = 150;
            std::vector<MessageRecord> rows(n);
            std::vector<MessageRecord*> staged;
            std::vector<LogEntry> log;
            for (int i = 0; i < n; ++i) {
                MessageRecord& r = rows[i];
                r.accountId = db.accountId;
                r.uidl = "u" + std::to_string(i) + "'\"";
                r.state = MessageState::Injecting;
                r.messageId = "<m" + std::to_string(i % 100) + "@example.org>"; // 50 pairs
                r.envelopeFrom = "a@example.org";
                r.size = 1000 + i;
                r.attempts = 1;
                staged.push_back(&r);
                LogEntry e;
                e.account = "helpdesk";
                e.uidl = r.uidl;
                e.status = "delivered";
                e.detail = "250 ok " + std::to_string(i);
                log.push_back(e);
            }
            {
                Transaction tx(db.store->session());
                ms.saveMany(staged);
                ms.logMany(log);
                tx.commit();
            }
            auto saved = ms.forAccount(db.accountId);
            BOOST_TEST_REQUIRE(saved.size() == static_cast<std::size_t>(n));
            BOOST_TEST(saved["u7'\""].size == 1007);
            BOOST_TEST((saved["u7'\""].state == MessageState::Injecting));
            BOOST_TEST(saved["u7'\""].createdAt > 0);
            LogQuery q;
            q.limit = 1000;
            BOOST_TEST(ms.logEntries(q).size() == static_cast<std::size_t>(n));

            // The upsert half: the same rows again, changed.
            for (auto& r : rows) {
                r.state = MessageState::Injected;
                r.queueId = "Q" + r.uidl;
            }
            ms.saveMany(staged);
            saved = ms.forAccount(db.accountId);
            BOOST_TEST(saved.size() == static_cast<std::size_t>(n));
            BOOST_TEST((saved["u149'\""].state == MessageState::Injected));
            BOOST_TEST(saved["u149'\""].queueId == "Qu149'\"");

            const auto dups = ms.duplicatesOf(
                db.accountId, {"<m0@example.org>", "<m99@example.org>", "<none@example.org>"}, 0);
            BOOST_TEST(dups.size() == 2u);
            BOOST_TEST(dups.at("<m0@example.org>").size() == 2u); // u0 and u100
            BOOST_TEST(dups.at("<m99@example.org>").size() == 1u);
            BOOST_TEST(ms.duplicatesOf(db.accountId, {"<m0@example.org>"}, nowSeconds() + 60)
                           .empty(),
                       "outside the window");
            std::vector<std::string> many;
            for (int i = 0; i < 100; ++i)
                many.push_back("<m" + std::to_string(i) + "@example.org>");
            BOOST_TEST(ms.duplicatesOf(db.accountId, many, 0).size() == 100u);

            std::vector<std::string> uidls;
            for (int i = 0; i < 120; ++i)
                uidls.push_back(rows[i].uidl);
            ms.markDeleted(db.accountId, uidls);
            saved = ms.forAccount(db.accountId);
            int deleted = 0;
            for (const auto& [uidl, r] : saved)
                deleted += r.deleted ? 1 : 0;
            BOOST_TEST(deleted == 120);
        }
    }
}

// claim - compare-and-set: of two writers that read the same row, one wins.
BOOST_AUTO_TEST_CASE(claim_is_compare_and_set)
{
    for (const char* d : test::kDialects) {
        BOOST_TEST_CONTEXT(d)
        {
            Db db(d);
            MessageStore ms(*db.store);
            MessageRecord r;
            r.accountId = db.accountId;
            r.uidl = "u1";
            r.state = MessageState::Ignored;
            r.quarantinePath = "/q/1.eml";
            ms.save(r);
            MessageRecord first = *ms.find(r.id), second = *ms.find(r.id);
            for (MessageRecord* m : {&first, &second}) {
                m->state = MessageState::Injecting;
                ++m->attempts;
            }
            BOOST_TEST(ms.claim(first, MessageState::Ignored, r.attempts));
            BOOST_TEST(!ms.claim(second, MessageState::Ignored, r.attempts));
            BOOST_TEST(messageStateName(ms.find(r.id)->state) == "injecting");
            BOOST_TEST(ms.find(r.id)->attempts == r.attempts + 1);
        }
    }
}

// The per-recipient ledger of domain mailboxes (migration 0008): upsert by
// (account, uidl, recipient), read back per message and for many, the same
// Message-ID found per recipient (delivered and pending only, not this
// message's own rows), and pruned with its message.
BOOST_AUTO_TEST_CASE(recipient_rows_round_trip)
{
    for (const char* d : test::kDialects) {
        BOOST_TEST_CONTEXT(d)
        {
            Db db(d);
            MessageStore ms(*db.store);
            MessageRecord m;
            m.accountId = db.accountId;
            m.uidl = "u1";
            m.messageId = "<same@example.org>";
            ms.save(m);
            std::vector<RecipientRecord> rows = {
                {db.accountId, "u1", "alice@company.example", RecipientState::Pending, m.messageId,
                 "", "", 0},
                {db.accountId, "u1", "x@other.example", RecipientState::Refused, m.messageId, "",
                 "not a local domain", 0},
            };
            ms.saveRecipients(rows);
            rows[0].state = RecipientState::Delivered;
            rows[0].queueId = "Q1";
            ms.saveRecipients(rows); // an update, not a second row
            const auto back = ms.recipientsOf(db.accountId, "u1");
            BOOST_TEST_REQUIRE(back.size() == 2u);
            BOOST_TEST(back[0].recipient == "alice@company.example");
            BOOST_TEST((back[0].state == RecipientState::Delivered));
            BOOST_TEST(back[0].queueId == "Q1");
            BOOST_TEST((back[1].state == RecipientState::Refused));
            BOOST_TEST(back[1].reason == "not a local domain");
            BOOST_TEST(ms.recipientsOfMany(db.accountId, {"u1", "u2"}).size() == 1u);

            const auto having = ms.recipientsHaving(db.accountId, {m.messageId, "<other@x>"}, 0);
            BOOST_TEST_REQUIRE(having.size() == 1u);
            const auto& pairs = having.at(m.messageId);
            BOOST_TEST_REQUIRE(pairs.size() == 1u); // the refused one is not "had"
            BOOST_TEST(pairs[0].first == "u1");
            BOOST_TEST(pairs[0].second == "alice@company.example");

            ms.markDeleted(db.accountId, {"u1"});
            ms.forget(nowSeconds() + 10);
            BOOST_TEST(ms.recipientsOf(db.accountId, "u1").empty());
        }
    }
}
