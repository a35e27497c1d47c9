// milter_seen_test.cpp - core/milter_seen.cpp: the duplicate rule for reinjected
// copies (table), MilterSeen's rows on SQLite (record, replace, forget, lookups),
// and the milter's SMTP reply text sanitiser (plugin/popgate-milter/callbacks.cpp).
#define BOOST_TEST_MODULE milter_seen
#include "core/milter_seen.h"
#include "plugin/popgate-milter/callbacks.h"
#include "tests/popgate-milter/milter_fixture.h"

#include <boost/test/unit_test.hpp>

using namespace popgate;
using namespace popgate::test;

BOOST_AUTO_TEST_CASE(judge_reinjected_table)
{
    struct Row {
        const char* label;
        std::optional<MessageState> ledger;
        std::optional<std::string> seen;
        ReinjectedAction expected;
    };
    const std::vector<Row> rows = {
        {"no ledger row, never seen", std::nullopt, std::nullopt, ReinjectedAction::Accept},
        {"no ledger row, seen", std::nullopt, std::string("Q1"), ReinjectedAction::Accept},
        {"injecting, first copy", MessageState::Injecting, std::nullopt, ReinjectedAction::Accept},
        {"injecting, a copy passed", MessageState::Injecting, std::string("Q1"),
         ReinjectedAction::DiscardInFlight},
        {"injecting, a copy passed without queue id", MessageState::Injecting, std::string(""),
         ReinjectedAction::DiscardInFlight},
        {"injected, never seen", MessageState::Injected, std::nullopt,
         ReinjectedAction::DiscardInjected},
        {"injected, seen", MessageState::Injected, std::string("Q1"),
         ReinjectedAction::DiscardInjected},
        {"deferred, seen (popgated did not forget)", MessageState::Deferred, std::string("Q1"),
         ReinjectedAction::Accept},
        {"failed, never seen", MessageState::Failed, std::nullopt, ReinjectedAction::Accept},
        {"ignored, never seen", MessageState::Ignored, std::nullopt, ReinjectedAction::Accept},
    };
    for (const auto& row : rows)
        BOOST_TEST_CONTEXT(row.label)
        {
            BOOST_TEST((judgeReinjected(row.ledger, row.seen) == row.expected));
        }
}

BOOST_AUTO_TEST_CASE(milter_seen_rows_on_sqlite)
{
    MilterWorld world;
    Store store(world.config());
    MilterSeen seen(store);
    const auto id = world.accountId();
    BOOST_TEST(seen.accountId("helpdesk").value_or(-1) == id);
    BOOST_TEST(!seen.accountId("nobody").has_value());
    BOOST_TEST(!seen.seenBefore(id, "u1").has_value());
    seen.record(id, "u1", "Q1");
    BOOST_TEST(seen.seenBefore(id, "u1").value_or("(none)") == "Q1");
    seen.record(id, "u1", "Q2"); // a later accepted copy replaces the row
    BOOST_TEST(seen.seenBefore(id, "u1").value_or("(none)") == "Q2");
    seen.record(id, "it's \"quoted\"; DROP TABLE x", "");
    BOOST_TEST(seen.seenBefore(id, "it's \"quoted\"; DROP TABLE x").value_or("(none)") == "");
    seen.forget(id, "u1");
    BOOST_TEST(!seen.seenBefore(id, "u1").has_value());
    seen.forget(id, "u1"); // no row: fine

    BOOST_TEST(!seen.ledgerState(id, "u1").has_value());
    world.setLedger("u1", MessageState::Injecting);
    BOOST_TEST(
        (seen.ledgerState(id, "u1") == std::optional<MessageState>(MessageState::Injecting)));
    world.setLedger("u1", MessageState::Injected);
    BOOST_TEST((seen.ledgerState(id, "u1") == std::optional<MessageState>(MessageState::Injected)));
}

// facts: the milter's one read per reinjected copy (prepared on SQLite) says what
// accountId, ledgerState and seenBefore say, for every combination of rows.
BOOST_AUTO_TEST_CASE(facts_agree_with_the_single_lookups)
{
    MilterWorld world;
    Store store(world.config());
    BOOST_TEST_REQUIRE(store.prepared() != nullptr); // SQLite: the prepared path is the one tested
    MilterSeen seen(store);
    const auto id = world.accountId();
    const auto check = [&](const char* label) {
        BOOST_TEST_CONTEXT(label)
        {
            const ReinjectedFacts f = seen.facts("helpdesk", "u1");
            BOOST_TEST(f.accountId.value_or(-1) == id);
            BOOST_TEST((f.ledger == seen.ledgerState(id, "u1")));
            BOOST_TEST((f.seenQueueId == seen.seenBefore(id, "u1")));
        }
    };
    BOOST_TEST(!seen.facts("nobody", "u1").accountId.has_value());
    const ReinjectedFacts none = seen.facts("helpdesk", "u1");
    BOOST_TEST(!none.ledger.has_value());
    BOOST_TEST(!none.seenQueueId.has_value());
    check("no rows");
    seen.record(id, "u1", ""); // an empty queue id is a row, not none
    BOOST_TEST(seen.facts("helpdesk", "u1").seenQueueId.value_or("(none)") == "");
    check("seen without queue id");
    world.setLedger("u1", MessageState::Injecting);
    seen.record(id, "u1", "Q1");
    BOOST_TEST((seen.facts("helpdesk", "u1").ledger ==
                std::optional<MessageState>(MessageState::Injecting)));
    check("injecting, seen");
    seen.forget(id, "u1");
    world.setLedger("u1", MessageState::Injected);
    check("injected, not seen");
    seen.record(id, "u2", "Q2"); // another UIDL's row is not this one's
    check("another uidl seen");
}

BOOST_AUTO_TEST_CASE(smtp_reply_text_table)
{
    struct Row {
        const char* label;
        std::string in;
        std::string out;
    };
    const std::vector<Row> rows = {
        {"plain", "sender <x@bad.com> blocked", "sender <x@bad.com> blocked"},
        {"percent doubled for libmilter", "100% spam", "100%% spam"},
        {"CR LF and tab flattened", "a\r\nb\tc\nd", "a  b c d"},
        {"control and 8-bit bytes", std::string("a\x01z\xC3\xA9", 5), "a?z??"},
        {"long text cut", std::string(1000, 'x'), std::string(900, 'x') + "..."},
    };
    for (const auto& row : rows)
        BOOST_TEST_CONTEXT(row.label)
        {
            BOOST_TEST(smtpReplyText(row.in) == row.out);
        }
}
