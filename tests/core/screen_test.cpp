// screen_test - the network-free admission checks (core/screen.cpp) that
// popgated and popgate-milter share: the envelope sender, loops, duplicates,
// the filter verdict, and an unreadable sender blocked rather than let in.
#define BOOST_TEST_MODULE screen
#include "core/screen.h"

#include <boost/test/unit_test.hpp>
#include <sstream>
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
    if (!from.empty())
        addFromField(f, from);
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
        BOOST_TEST_CONTEXT(r.label)
        {
            BOOST_TEST(envelopeSender(r.facts) == r.expected);
        }
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
        {"own mailbox after popgate", facts("desk@company.example", "", 1), "Desk@Company.Example",
         "", true, ScreenReason::OwnMailbox},
        {"own mailbox, first pass", facts("desk@company.example"), "desk@company.example", "", true,
         ScreenReason::None},
        {"duplicate Message-ID", facts("a@ok.example"), "a@ok.example", "uidl-7", true,
         ScreenReason::Duplicate},
        {"a loop is judged before the filter", facts("x@spam.example", "", 9), "x@spam.example", "",
         true, ScreenReason::Loop},
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
    BOOST_TEST(
        screenFetched(rules, facts("a@ok.example"), "a@ok.example", "uidl-7", &filter).admitted());
}

BOOST_AUTO_TEST_CASE(milter_reading_is_the_same)
{
    // The milter asks judgeSenders with and without the From field: the same
    // reasons, and a Verdict for its reply that agrees.
    const CompiledFilter filter = denySpam();
    Verdict v;
    const MessageFacts from = facts("x@spam.example");
    BOOST_TEST(judgeSenders(filter, "a@ok.example", &from, &v).reason == ScreenReason::Blocked);
    BOOST_TEST(v.blocked);
    BOOST_TEST(judgeSenders(filter, "x@spam.example", nullptr, &v).reason == ScreenReason::Blocked);
    BOOST_TEST(judgeSenders(filter, "", nullptr, &v).admitted()); // <> allowed by default
    BOOST_TEST(!v.blocked);
    const MessageFacts bad = facts("<<<");
    BOOST_TEST(judgeSenders(filter, "a@ok.example", &bad, &v).reason ==
               ScreenReason::SenderUnreadable);
    BOOST_TEST(v.blocked);
    BOOST_TEST(v.reason.find("sender unreadable: ") == 0u, v.reason);
}

namespace
{

/// fetched - the facts of a header section as the fetcher learns them (MessageRewriter).
MessageFacts fetched(const std::string& header)
{
    std::ostringstream sink;
    MessageRewriter rewriter(sink, "");
    std::ostream out(&rewriter);
    out << header << "\r\nbody\r\n";
    out.flush();
    return rewriter.finish();
}

} // namespace

BOOST_AUTO_TEST_CASE(every_originator_is_judged_however_the_mail_is_built)
{
    // Issue [H]: each attack through the fetch path's facts and screenFetched,
    // and the milter's way (addFromField per header, judgeSenders at the end).
    const CompiledFilter filter = denySpam();
    ScreenRules rules;
    struct Row {
        const char* label;
        std::vector<std::string> froms; ///< From field bodies, in order
        std::string returnPath;         ///< "" for none
        ScreenReason expected;
        const char* detail; ///< part of the verdict's detail; "" for none
    };
    const std::string huge(70000, 'A');
    std::vector<std::string> seventeen(17, "a@ok.example");
    std::vector<std::string> sixteen(16, "a@ok.example");
    const std::vector<Row> rows = {
        {"70 000-character display name, blocked domain, no Return-Path",
         {"\"" + huge + "\" <x@spam.example>"},
         "",
         ScreenReason::SenderUnreadable,
         "sender unreadable: From field longer than 16384 octets"},
        {"70 000-character display name, allowed domain: fails closed too",
         {"\"" + huge + "\" <a@ok.example>"},
         "a@ok.example",
         ScreenReason::SenderUnreadable,
         "From field longer than"},
        {"20 000-character From",
         {"\"" + std::string(20000, 'A') + "\" <a@ok.example>"},
         "",
         ScreenReason::SenderUnreadable,
         "From field longer than"},
        {"second From blocked",
         {"a@ok.example", "x@spam.example"},
         "",
         ScreenReason::Blocked,
         "From <x@spam.example> blocked"},
        {"first From blocked, second allowed",
         {"x@spam.example", "a@ok.example"},
         "",
         ScreenReason::Blocked,
         "blocked"},
        {"two allowed From fields",
         {"a@ok.example", "B <b@ok.example>"},
         "",
         ScreenReason::None,
         ""},
        {"17 From fields", seventeen, "a@ok.example", ScreenReason::SenderUnreadable,
         "more than 16 From fields (17)"},
        {"16 From fields", sixteen, "a@ok.example", ScreenReason::None, ""},
        {"second From unreadable",
         {"a@ok.example", "<<<"},
         "",
         ScreenReason::SenderUnreadable,
         "From field 2 of 2"},
        {"Latin-1 display name is delivered",
         {"J\xfcrgen <a@ok.example>"},
         "",
         ScreenReason::None,
         ""},
        {"Latin-1 display name, blocked domain",
         {"J\xfcrgen <x@spam.example>"},
         "",
         ScreenReason::Blocked,
         "blocked"},
        {"CP1252 display name",
         {"\x93"
          "Boss\x94 <a@ok.example>"},
         "",
         ScreenReason::None,
         ""},
        {"broken UTF-8 in a quoted name",
         {"\"\xc3\xc3\" <a@ok.example>"},
         "",
         ScreenReason::None,
         ""},
        {"RFC 2047 word naming an allowed address",
         {"=?utf-8?q?a=40ok.example?= <x@spam.example>"},
         "",
         ScreenReason::Blocked,
         "blocked"},
        {"a group's blocked member",
         {"Friends: a@ok.example, x@spam.example;"},
         "",
         ScreenReason::Blocked,
         "blocked"},
        {"obsolete blanks around '@'", {"x @ spam.example"}, "", ScreenReason::Blocked, "blocked"},
        {"source route",
         {"<@relay.ok.example:x@spam.example>"},
         "",
         ScreenReason::Blocked,
         "blocked"},
        {"address hidden in a group name",
         {"x@spam.example: a@ok.example;"},
         "",
         ScreenReason::SenderUnreadable,
         "is not a phrase"},
        {"Latin-1 local part",
         {"j\xfcrgen@ok.example"},
         "a@ok.example",
         ScreenReason::SenderUnreadable,
         "local part not valid UTF-8"},
        {"UTF-8 local part", {"j\xc3\xbcrgen@ok.example"}, "", ScreenReason::None, ""},
        {"empty group, Return-Path blocked",
         {"undisclosed-recipients:;"},
         "x@spam.example",
         ScreenReason::Blocked,
         "sender <x@spam.example> blocked"},
        // NUL and other control bytes (issue [H] item 5): a From field that
        // holds one is unreadable on both paths, whatever the address says.
        {"NUL between two addresses",
         {std::string("<a@ok.example>\0<x@spam.example>", 31)},
         "",
         ScreenReason::SenderUnreadable,
         "control byte 0x00 at octet 15"},
        {"NUL after an allowed address",
         {std::string("a@ok.example\0, x@spam.example", 29)},
         "",
         ScreenReason::SenderUnreadable,
         "control byte 0x00"},
        {"lone CR hiding a blocked address",
         {"a@ok.example\r<x@spam.example>"},
         "",
         ScreenReason::SenderUnreadable,
         "control byte 0x0d"},
        {"terminal escape in a display name",
         {"\x1b[2K\rBoss <a@ok.example>"},
         "",
         ScreenReason::SenderUnreadable,
         "control byte 0x1b at octet 1"},
        {"DEL in a display name",
         {"Bo\x7fss <a@ok.example>"},
         "",
         ScreenReason::SenderUnreadable,
         "control byte 0x7f"},
        {"control byte in the second From field",
         {"a@ok.example", "B\x01 <b@ok.example>"},
         "",
         ScreenReason::SenderUnreadable,
         "From field 2 holds control byte 0x01"},
        {"raw ISO-2022-JP display name (old Japanese mailers) is delivered",
         {"\x1b$B$3$s$K$A$O\x1b(B <a@ok.example>"},
         "",
         ScreenReason::None,
         ""},
        {"raw ISO-2022-JP display name, blocked address",
         {"\x1b$B$3$s\x1b(B <x@spam.example>"},
         "",
         ScreenReason::Blocked,
         "blocked"},
        {"ESC that is not an ISO-2022-JP designation",
         {"\x1b(Z <a@ok.example>"},
         "",
         ScreenReason::SenderUnreadable,
         "control byte 0x1b"},
        {"ESC at the end of the field",
         {"a@ok.example (x\x1b)"},
         "",
         ScreenReason::SenderUnreadable,
         "control byte 0x1b"},
        {"HTAB is white space, not a control byte",
         {"Ann\t<a@ok.example>"},
         "",
         ScreenReason::None,
         ""},
        {"folded From (CR LF SP) is unfolded, not refused",
         {"Ann\r\n <a@ok.example>"},
         "",
         ScreenReason::None,
         ""},
        {"folded From with a blocked address",
         {"Ann\r\n\t<x@spam.example>"},
         "",
         ScreenReason::Blocked,
         "blocked"},
        {"Return-Path blocked, two allowed From fields",
         {"a@ok.example", "b@ok.example"},
         "x@spam.example",
         ScreenReason::Blocked,
         "sender <x@spam.example> blocked"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            std::string header;
            if (!r.returnPath.empty())
                header += "Return-Path: <" + r.returnPath + ">\r\n";
            for (const std::string& f : r.froms)
                header += "From: " + f + "\r\n";
            const MessageFacts f = fetched(header + "Subject: s\r\n");
            const ScreenVerdict fetch = screenFetched(rules, f, envelopeSender(f), "", &filter);
            BOOST_TEST(screenReasonName(fetch.reason) == screenReasonName(r.expected));
            BOOST_TEST(fetch.detail.find(r.detail) != std::string::npos, fetch.detail);

            MessageFacts milter; // the milter: one addFromField per header callback
            for (const std::string& from : r.froms)
                addFromField(milter, from);
            Verdict v;
            const ScreenVerdict m = judgeSenders(filter, r.returnPath, &milter, &v);
            BOOST_TEST(screenReasonName(m.reason) == screenReasonName(r.expected));
            BOOST_TEST(v.blocked == !m.admitted());
            BOOST_TEST(v.reason.find(r.detail) != std::string::npos, v.reason);
        }
    }
}

BOOST_AUTO_TEST_CASE(no_readable_originator_is_the_null_sender)
{
    // Issue [H] item C: "From: x:;" (an empty group) and no Return-Path name no
    // originator. popgated reinjects such a message with MAIL FROM:<> and both
    // paths judge it as the null sender: allow_null_sender decides, so an
    // operator who refuses bounces refuses these too.
    for (const bool allowNull : {true, false}) {
        EmailAddressFilter f;
        f.name = "spam";
        f.type = FilterType::Deny;
        f.domains = {"spam.example"};
        SystemAddressFilter sys;
        sys.name = "inbound-default";
        sys.addressFilters = {f};
        FilterOptions options;
        options.allowNullSender = allowNull;
        const CompiledFilter filter(sys, options);
        for (const char* from : {"x:;", "undisclosed-recipients: ;", "Team: (nobody);"}) {
            BOOST_TEST_CONTEXT("allow_null_sender " << allowNull << ", From: " << from)
            {
                const MessageFacts fetch = fetched(std::string("From: ") + from + "\r\n");
                BOOST_TEST(envelopeSender(fetch) == "");
                const ScreenVerdict v = screenFetched(ScreenRules(), fetch, "", "", &filter);
                BOOST_TEST(v.admitted() == allowNull, v.detail);
                if (!allowNull) {
                    BOOST_TEST(screenReasonName(v.reason) == "blocked");
                    BOOST_TEST(v.detail.find("null sender, bounces not allowed") !=
                                   std::string::npos,
                               v.detail);
                }
                MessageFacts milter; // MAIL FROM:<> and the same From field
                addFromField(milter, from);
                Verdict verdict;
                BOOST_TEST(judgeSenders(filter, "", &milter, &verdict).admitted() == allowNull);
                BOOST_TEST(verdict.blocked == !allowNull);
                // with a real envelope sender the empty group changes nothing
                BOOST_TEST(judgeSenders(filter, "a@ok.example", &milter, nullptr).admitted());
                BOOST_TEST(!judgeSenders(filter, "x@spam.example", &milter, nullptr).admitted());
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(idn_u_label_and_a_label_are_one_domain)
{
    // A filter written with a U-label blocks the A-label and the other way
    // round, on both paths; a domain libidn2 refuses is unreadable.
    for (const char* listed : {"bücher.example", "xn--bcher-kva.example"}) {
        EmailAddressFilter f;
        f.name = "idn";
        f.type = FilterType::Deny;
        f.domains = {listed};
        SystemAddressFilter sys;
        sys.name = "inbound-default";
        sys.addressFilters = {f};
        const CompiledFilter filter(sys);
        struct Row {
            const char* from;
            ScreenReason expected;
        };
        const std::vector<Row> rows = {
            {"x@bücher.example", ScreenReason::Blocked},
            {"x@BÜCHER.EXAMPLE", ScreenReason::Blocked},
            {"x@xn--bcher-kva.example", ScreenReason::Blocked},
            {"x@XN--BCHER-KVA.Example", ScreenReason::Blocked},
            {"x@bu\xcc\x88"
             "cher.example",
             ScreenReason::Blocked}, // u + U+0308, NFC'd
            {"x@bücher\xe3\x80\x82"
             "example",
             ScreenReason::Blocked}, // ideographic full stop
            {"x@xn--zz.example", ScreenReason::SenderUnreadable},
            {"x@b\xe2\x80\x8d"
             "ücher.example",
             ScreenReason::SenderUnreadable}, // ZWJ
            {"x@buecher.example", ScreenReason::None},
        };
        for (const Row& r : rows)
            BOOST_TEST_CONTEXT("filter lists " << listed << ", From: " << r.from)
            {
                const MessageFacts fetch = fetched(std::string("From: ") + r.from + "\r\n");
                const ScreenVerdict v =
                    screenFetched(ScreenRules(), fetch, envelopeSender(fetch), "", &filter);
                BOOST_TEST(screenReasonName(v.reason) == screenReasonName(r.expected), v.detail);
                MessageFacts milter;
                addFromField(milter, r.from);
                BOOST_TEST(screenReasonName(judgeSenders(filter, "a@ok.example", &milter).reason) ==
                           screenReasonName(r.expected));
            }
    }
}
