// screen_test - the network-free admission checks (core/screen.cpp) that
// popgated and popgate-milter share: the envelope sender, loops, duplicates,
// the filter verdict, and an unreadable sender blocked rather than let in.
#define BOOST_TEST_MODULE screen
#include "core/screen.h"

#include <boost/test/unit_test.hpp>
#include <vector>

using namespace popgate;

namespace popgate
{
std::ostream& boost_test_print_type(std::ostream& os, ScreenReason r)
{
    return os << screenReasonName(r);
}
} // namespace popgate

namespace
{

CompiledFilter denySpam()
{
    EmailAddressFilter f;
    f.name = "spam";
    f.type = FilterType::Deny;
    f.domains = {"spam.example"};
    SystemAddressFilter s;
    s.name = "inbound-default";
    s.addressFilters = {f};
    return CompiledFilter(s);
}

MessageFacts facts(const std::string& from, const std::string& returnPath = "", int hops = 0)
{
    MessageFacts f;
    f.from = from;
    f.returnPath = returnPath;
    f.popgateHops = hops;
    f.messageId = "<m@ok.example>";
    return f;
}

} // namespace

BOOST_AUTO_TEST_CASE(envelope_sender)
{
    struct Row {
        const char* label;
        MessageFacts facts;
        std::string expected;
    };
    MessageFacts nullPath = facts("a@ok.example");
    nullPath.nullReturnPath = true;
    const std::vector<Row> rows = {
        {"Return-Path wins", facts("a@ok.example", "bounce@lists.example"), "bounce@lists.example"},
        {"first From mailbox", facts("Ann <a@ok.example>, b@ok.example"), "a@ok.example"},
        {"Return-Path <> is the null sender", nullPath, ""},
        {"no sender at all", facts(""), ""},
        {"an unreadable Return-Path falls back to From", facts("a@ok.example", "<<<"),
         "a@ok.example"},
    };
    for (const auto& r : rows)
        BOOST_TEST_CONTEXT(r.label) { BOOST_TEST(envelopeSender(r.facts) == r.expected); }
}

BOOST_AUTO_TEST_CASE(fetched_messages)
{
    const CompiledFilter filter = denySpam();
    ScreenRules rules;
    rules.maxHops = 3;
    rules.ownMailbox = "desk@company.example";
    struct Row {
        const char* label;
        MessageFacts facts;
        std::string envelope;
        std::string duplicateOf;
        bool withFilter;
        ScreenReason expected;
    };
    const std::vector<Row> rows = {
        {"ordinary mail", facts("a@ok.example"), "a@ok.example", "", true, ScreenReason::None},
        {"blocked From", facts("x@spam.example"), "x@spam.example", "", true,
         ScreenReason::Blocked},
        {"blocked envelope, allowed From", facts("a@ok.example"), "x@spam.example", "", true,
         ScreenReason::Blocked},
        {"no filter applies", facts("x@spam.example"), "x@spam.example", "", false,
         ScreenReason::None},
        {"unreadable From is blocked, never let in", facts("<<<not an address"), "", "", true,
         ScreenReason::SenderUnreadable},
        {"too many hops", facts("a@ok.example", "", 4), "a@ok.example", "", true,
         ScreenReason::Loop},
        {"hops at the limit pass", facts("a@ok.example", "", 3), "a@ok.example", "", true,
         ScreenReason::None},
        {"own mailbox after popgate", facts("desk@company.example", "", 1),
         "Desk@Company.Example", "", true, ScreenReason::OwnMailbox},
        {"own mailbox, first pass", facts("desk@company.example"), "desk@company.example", "",
         true, ScreenReason::None},
        {"duplicate Message-ID", facts("a@ok.example"), "a@ok.example", "uidl-7", true,
         ScreenReason::Duplicate},
        {"a loop is judged before the filter", facts("x@spam.example", "", 9), "x@spam.example",
         "", true, ScreenReason::Loop},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            const ScreenVerdict v = screenFetched(rules, r.facts, r.envelope, r.duplicateOf,
                                                  r.withFilter ? &filter : nullptr);
            BOOST_TEST(screenReasonName(v.reason) == screenReasonName(r.expected));
            BOOST_TEST(v.admitted() == (r.expected == ScreenReason::None));
            if (!v.admitted())
                BOOST_TEST(!v.detail.empty());
        }
    }
    rules.allowDuplicates = true;
    BOOST_TEST(screenFetched(rules, facts("a@ok.example"), "a@ok.example", "uidl-7", &filter)
                   .admitted());
}

BOOST_AUTO_TEST_CASE(milter_reading_is_the_same)
{
    // The milter asks judgeSenders with and without the From field: the same
    // reasons, and a Verdict for its reply that agrees.
    const CompiledFilter filter = denySpam();
    Verdict v;
    const std::string from = "x@spam.example";
    BOOST_TEST(judgeSenders(filter, "a@ok.example", &from, &v).reason == ScreenReason::Blocked);
    BOOST_TEST(v.blocked);
    BOOST_TEST(judgeSenders(filter, "x@spam.example", nullptr, &v).reason ==
               ScreenReason::Blocked);
    BOOST_TEST(judgeSenders(filter, "", nullptr, &v).admitted()); // <> allowed by default
    BOOST_TEST(!v.blocked);
    const std::string bad = "<<<";
    BOOST_TEST(judgeSenders(filter, "a@ok.example", &bad, &v).reason ==
               ScreenReason::SenderUnreadable);
    BOOST_TEST(v.blocked);
    BOOST_TEST(v.reason.find("unreadable sender address") != std::string::npos);
}
