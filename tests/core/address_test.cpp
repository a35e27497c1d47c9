#define BOOST_TEST_MODULE address_test
#include <boost/test/unit_test.hpp>

// address_test - core/address.cpp: addr-spec parsing, comparison form, IDN
// A-labels through libidn2. Table-driven; one label per row.
#include "core/address.h"
#include "core/errors.h"

#include <Poco/UTF8Encoding.h>
#include <random>
#include <string>
#include <vector>

using namespace popgate;

namespace
{

// throwsWith - f() throws InputError whose message contains part.
template <class F> void checkInputError(F f, const std::string& part)
{
    try {
        f();
        BOOST_ERROR("no InputError; expected one containing: " << part);
    } catch (const InputError& e) {
        BOOST_TEST(std::string(e.what()).find(part) != std::string::npos,
                   "message \"" << e.what() << "\" lacks \"" << part << "\"");
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(parses_addr_specs)
{
    struct Row {
        const char* label;
        std::string input;
        std::string localPart;
        std::string spec;
        std::string key;
    };
    const std::vector<Row> rows = {
        {"plain", "x@bad.com", "x", "x@bad.com", "x@bad.com"},
        {"upper case compares lower", "X@BAD.COM", "X", "X@BAD.COM", "x@bad.com"},
        {"angle brackets", "<x@bad.com>", "x", "x@bad.com", "x@bad.com"},
        {"display name", "Joe Bloggs <x@bad.com>", "x", "x@bad.com", "x@bad.com"},
        {"quoted display name with <, comma and @", "\"Bloggs, Joe <a@b>\" <x@bad.com>", "x",
         "x@bad.com", "x@bad.com"},
        {"display name that looks like an address", "boss@corp.com <x@bad.com>", "x", "x@bad.com",
         "x@bad.com"},
        {"trailing comment", "x@bad.com (Joe)", "x", "x@bad.com", "x@bad.com"},
        {"nested comment before", "(a (b) \\) c) x@bad.com", "x", "x@bad.com", "x@bad.com"},
        {"surrounding white space", "  x@bad.com \r\n", "x", "x@bad.com", "x@bad.com"},
        {"plus tag", "x+tag@bad.com", "x+tag", "x+tag@bad.com", "x+tag@bad.com"},
        {"quoted local part with space", "\"john doe\"@example.com", "john doe",
         "\"john doe\"@example.com", "john doe@example.com"},
        {"quoted local part, mixed case", "\"John Doe\"@Example.com", "John Doe",
         "\"John Doe\"@Example.com", "john doe@example.com"},
        {"quoted local part with escapes", "\"a\\\"b\\\\c\"@example.com", "a\"b\\c",
         "\"a\\\"b\\\\c\"@example.com", "a\"b\\c@example.com"},
        {"quoted local part that needs no quotes", "\"john.doe\"@example.com", "john.doe",
         "john.doe@example.com", "john.doe@example.com"},
        {"quoted @ in local part", "\"a@b\"@example.com", "a@b", "\"a@b\"@example.com",
         "a@b@example.com"},
        {"empty quoted local part", "\"\"@example.com", "", "\"\"@example.com", "@example.com"},
        {"obsolete dots kept as written", "a..b.@docomo.ne.jp", "a..b.", "\"a..b.\"@docomo.ne.jp",
         "a..b.@docomo.ne.jp"},
        {"IDN domain to A-label", "x@bücher.example", "x", "x@bücher.example",
         "x@xn--bcher-kva.example"},
        {"IDN domain, upper case", "x@BÜCHER.Example", "x", "x@BÜCHER.Example",
         "x@xn--bcher-kva.example"},
        {"A-label input, upper case", "x@XN--BCHER-KVA.example", "x", "x@XN--BCHER-KVA.example",
         "x@xn--bcher-kva.example"},
        {"ideographic full stop separates labels", "x@bücher\u3002example", "x",
         "x@bücher\u3002example", "x@xn--bcher-kva.example"},
        {"CJK domain", "x@日本語.jp", "x", "x@日本語.jp", "x@xn--wgv71a119e.jp"},
        {"UTF-8 local part lowercased", "JÖRG@example.com", "JÖRG", "JÖRG@example.com",
         "jörg@example.com"},
        {"source route dropped", "<@relay.example,@b.example:x@bad.com>", "x", "x@bad.com",
         "x@bad.com"},
        {"domain literal", "x@[192.0.2.1]", "x", "x@[192.0.2.1]", "x@[192.0.2.1]"},
        {"IPv6 literal lowercased", "x@[IPv6:2001:DB8::1]", "x", "x@[IPv6:2001:DB8::1]",
         "x@[ipv6:2001:db8::1]"},
        {"underscore in domain", "x@my_host.example", "x", "x@my_host.example",
         "x@my_host.example"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            MailAddress a = parseAddress(r.input);
            BOOST_TEST(a.localPart == r.localPart);
            BOOST_TEST(a.spec() == r.spec);
            BOOST_TEST(a.key == r.key);
            BOOST_TEST(!a.isNull());
        }
    }
}

BOOST_AUTO_TEST_CASE(null_sender_forms)
{
    for (const char* text : {"<>", " < > ", "Mail Delivery System <>", "<> (bounce)"}) {
        BOOST_TEST_CONTEXT(text)
        {
            MailAddress a = parseAddress(text);
            BOOST_TEST(a.isNull());
            BOOST_TEST(a.spec() == "");
        }
    }
}

BOOST_AUTO_TEST_CASE(malformed_addresses_throw_input_error)
{
    struct Row {
        const char* label;
        std::string input;
        std::string message;
    };
    const std::string longLabel(64, 'a');
    const std::vector<Row> rows = {
        {"empty", "", "malformed address \"\": empty address"},
        {"only a comment", "(nobody)", "empty address"},
        {"no @", "xbad.com", "malformed address \"xbad.com\": no '@'"},
        {"empty local part", "@bad.com", "empty local part"},
        {"empty domain", "x@", "empty domain"},
        {"two @", "x@@bad.com", "more than one '@'"},
        {"double dot in domain", "x@bad..com", "empty label"},
        {"leading dot in domain", "x@.bad.com", "empty label"},
        {"trailing dot in domain", "x@bad.com.", "empty label"},
        {"space in local part", "x y@bad.com", "space not allowed in an unquoted local part"},
        {"comma in local part", "x,y@bad.com", "',' not allowed in an unquoted local part"},
        {"space in domain", "x@exa mple.com", "space not allowed in a domain"},
        {"bang in domain", "x@bad!.com", "character '!' not allowed in a domain"},
        {"label of 64 octets", "x@" + longLabel + ".com", "label longer than 63 octets"},
        {"domain over 253 octets",
         "x@" + std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') +
             "." + std::string(63, 'd'),
         "domain longer than 253 octets"},
        {"unterminated quoted local part", "\"john doe@example.com", "unterminated quoted"},
        {"text between quote and @", "\"a\"b@example.com",
         "expected '@' after the quoted local part"},
        {"control character in quotes", std::string("\"a\x01\"@example.com"),
         "byte 0x01 not allowed in a quoted local part"},
        {"NUL byte", std::string("x\0y@bad.com", 11), "byte 0x00 not allowed"},
        {"unterminated comment", "x@bad.com (Joe", "unterminated comment"},
        {"stray )", "x@bad.com)", "unbalanced ')'"},
        {"< without >", "<x@bad.com", "'<' without '>'"},
        {"> without <", "x@bad.com>", "'>' without '<'"},
        {"text after >", "<x@bad.com> more", "text after '>'"},
        {"route without colon", "<@relay.example>", "source route without ':'"},
        {"invalid UTF-8",
         "x@b\xff"
         "d.com",
         "not valid UTF-8"},
        {"overlong UTF-8",
         "x@b\xc0\xaf"
         "d.com",
         "not valid UTF-8"},
        {"unterminated domain literal", "x@[1.2.3.4", "unterminated domain literal"},
        {"header injection is flattened", "x@bad.com\r\nBcc: y@z", "\\x0d\\x0a"},
        {"wildcard is not allowed in an address", "x@*.bad.com", "'*' not allowed in a domain"},
        {"NBSP in IDN label", "x@b\u00a0ü.example", "refused by IDNA2008/UTS #46"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            checkInputError([&] { parseAddress(r.input); }, r.message);
        }
    }
}

BOOST_AUTO_TEST_CASE(address_lists)
{
    struct Row {
        const char* label;
        std::string input;
        std::vector<std::string> keys;
    };
    const std::vector<Row> rows = {
        {"empty header", "", {}},
        {"one address", "x@a.com", {"x@a.com"}},
        {"comma in quoted name and comment",
         "x@a.com, \"Doe, John\" <Y@B.com>, (c, d) z@c.com",
         {"x@a.com", "y@b.com", "z@c.com"}},
        {"empty elements skipped", "x@a.com,, y@b.com,", {"x@a.com", "y@b.com"}},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            std::vector<std::string> keys;
            for (const MailAddress& a : parseAddressList(r.input))
                keys.push_back(a.key);
            BOOST_TEST(keys == r.keys, boost::test_tools::per_element());
        }
    }
    checkInputError([] { parseAddressList("x@a.com, nonsense"); },
                    "malformed address \" nonsense\": no '@'");
    checkInputError([] { parseAddressList(" , "); }, "no address");
}

BOOST_AUTO_TEST_CASE(address_patterns)
{
    struct Row {
        const char* label;
        std::string input;
        std::string key;
    };
    const std::vector<Row> rows = {
        {"exact", "Boss@Bad.com", "boss@bad.com"},
        {"wildcard local part", "*-noreply@Example.com", "*-noreply@example.com"},
        {"wildcard domain", "boss@*", "boss@*"},
        {"wildcard sub-domain with IDN", "*@*.Bücher.example", "*@*.xn--bcher-kva.example"},
        {"quoted local part", "\"John Doe\"@example.com", "john doe@example.com"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            BOOST_TEST(parseAddressPattern(r.input).key == r.key);
        }
    }
    checkInputError([] { parseAddressPattern("<>"); }, "cannot be the null address");
    checkInputError([] { parseAddressPattern("x@*bücher.example"); },
                    "'*' cannot share a label with non-ASCII characters");
    checkInputError([] { parseAddressPattern("boss"); }, "malformed address pattern \"boss\"");
}

BOOST_AUTO_TEST_CASE(domains)
{
    struct Row {
        const char* label;
        std::string input;
        bool wildcard;
        std::string key;
    };
    const std::vector<Row> rows = {
        {"lower case", "Example.COM", false, "example.com"},
        {"IDN", "bücher.example", false, "xn--bcher-kva.example"},
        {"IDN sharp s kept (IDNA2008)", "faß.de", false, "xn--fa-hia.de"},
        {"fullwidth full stop", "bücher\uff0eexample", false, "xn--bcher-kva.example"},
        {"wildcard label with IDN", "*.Bücher.example", true, "*.xn--bcher-kva.example"},
        {"star alone", "*", true, "*"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            BOOST_TEST(normalizeDomain(r.input, r.wildcard) == r.key);
        }
    }
    checkInputError([] { normalizeDomain("*.example.com"); },
                    "malformed domain \"*.example.com\": character '*'");
    checkInputError([] { normalizeDomain(""); }, "empty domain");
}

BOOST_AUTO_TEST_CASE(idna_through_libidn2)
{
    struct Row {
        const char* label;
        std::string input;
        std::string key;
    };
    const std::vector<Row> rows = {
        {"U-label, upper case (UTS #46 maps case)", "BÜCHER.Example", "xn--bcher-kva.example"},
        {"decomposed e + U+0301 is NFC'd to é", "e\u0301.com", "xn--9ca.com"},
        {"precomposed é", "\u00e9.com", "xn--9ca.com"},
        {"non-transitional: ß is not mapped to ss", "faß.de", "xn--fa-hia.de"},
        {"A-label checked and lowercased", "XN--BCHER-KVA.Example", "xn--bcher-kva.example"},
        {"halfwidth ideographic full stop", "bücher\uff61example", "xn--bcher-kva.example"},
        {"compatibility character mapped (Roman numeral four)", "\u2163.com", "iv.com"},
        {"ASCII with -- in positions 3-4 kept (not an A-label)", "ab--c.example", "ab--c.example"},
        {"Arabic label (bidi rule holds)", "\u0645\u062b\u0627\u0644.example",
         "xn--mgbh0fb.example"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            BOOST_TEST(normalizeDomain(r.input) == r.key);
            // the same domain judged in an address gives the same key
            BOOST_TEST(parseAddress("x@" + r.input).key == "x@" + r.key);
        }
    }
}

BOOST_AUTO_TEST_CASE(domains_libidn2_refuses_fail_closed)
{
    struct Row {
        const char* label;
        std::string input;
        std::string message;
    };
    const std::vector<Row> rows = {
        {"A-label that is not punycode", "xn--zz.example", "refused by IDNA2008/UTS #46"},
        {"A-label that decodes to nothing valid", "xn--a.example", "refused by IDNA2008"},
        {"A-label in upper case, bad", "XN--ZZ.example", "refused by IDNA2008"},
        {"disallowed code point (parenthesised digit)", "\u2488x.com", "refused by IDNA2008"},
        {"zero width joiner without context (CONTEXTJ)", "a\u200db\u00fc.com",
         "refused by IDNA2008"},
        {"U-label starting with a hyphen", "-b\u00fccher.example", "refused by IDNA2008"},
        {"NBSP in a U-label", "b\u00a0\u00fc.example", "refused by IDNA2008"},
        {"symbol (snowman) is not IDNA2008", "\u2603.example", "refused by IDNA2008"},
        {"bidi: Arabic and Latin letters mixed", "\u0645a.example", "refused by IDNA2008"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            checkInputError([&] { normalizeDomain(r.input); }, r.message);
            // in an address the same fault makes the address malformed: the
            // screening code blocks such a sender as unreadable
            checkInputError([&] { parseAddress("x@" + r.input); }, "malformed address");
        }
    }
}

BOOST_AUTO_TEST_CASE(domain_for_display)
{
    BOOST_TEST(domainForDisplay("xn--bcher-kva.example") == "bücher.example");
    BOOST_TEST(domainForDisplay("example.com") == "example.com");
    BOOST_TEST(domainForDisplay("xn--zz.example") == "xn--zz.example"); // unchanged if bad
    BOOST_TEST(domainForDisplay("xn--a.example") == "xn--a.example");   // decodes to nothing
    BOOST_TEST(domainForDisplay("XN--BCHER-KVA.Example") == "bücher.example");
}

BOOST_AUTO_TEST_CASE(idna_random_u_labels_round_trip)
{
    // Property: every domain libidn2 accepts gives an ASCII key that is a
    // fixed point (normalizing it again changes nothing) and whose U-label
    // form normalizes back to it. Seeded; the seed is in the context.
    const unsigned seed = 5891;
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> length(1, 12), pick(0, 3);
    std::uniform_int_distribution<std::uint32_t> ascii('a', 'z'), latin(0xe0, 0xff),
        cjk(0x4e00, 0x9fff), any(0xa0, 0x2fff);
    int accepted = 0;
    for (int i = 0; i < 2000; ++i) {
        std::string label;
        for (int n = length(rng); n > 0; --n) {
            const int kind = pick(rng);
            const std::uint32_t c = kind == 0   ? ascii(rng)
                                    : kind == 1 ? latin(rng)
                                    : kind == 2 ? cjk(rng)
                                                : any(rng);
            Poco::UTF8Encoding utf8;
            unsigned char buf[4];
            const int len = utf8.convert(static_cast<int>(c), buf, 4);
            label.append(reinterpret_cast<char*>(buf), static_cast<std::size_t>(len));
        }
        const std::string domain = label + ".example";
        BOOST_TEST_CONTEXT("seed " << seed << " case " << i << " domain " << domain)
        {
            std::string key;
            try {
                key = normalizeDomain(domain);
            } catch (const InputError&) {
                continue; // refused: fails closed, checked by the table above
            }
            ++accepted;
            bool allAscii = true;
            for (char c : key)
                allAscii = allAscii && static_cast<unsigned char>(c) < 0x80;
            BOOST_TEST(allAscii);
            BOOST_TEST(normalizeDomain(key) == key);
            BOOST_TEST(normalizeDomain(domainForDisplay(key)) == key);
        }
    }
    BOOST_TEST(accepted > 500); // the generator reaches the accepting side
}

// ---- only the address must be readable (issue [H]) ---------------------------

BOOST_AUTO_TEST_CASE(eight_bit_outside_the_addr_spec_is_display_only)
{
    struct Row {
        const char* label;
        std::string input;
        std::string key; ///< "" when it must throw
        std::string message;
    };
    const std::vector<Row> rows = {
        {"Latin-1 display name", "J\xfcrgen <a@ok.example>", "a@ok.example", ""},
        {"Latin-1 quoted display name", "\"M\xfcller, J\xfcrgen\" <a@ok.example>", "a@ok.example",
         ""},
        {"CP1252 display name (curly quotes, euro)", "\x93The Boss\x94 \x80 <a@ok.example>",
         "a@ok.example", ""},
        {"broken UTF-8 display name", "J\xc3\x41rgen \xe2\x82 <a@ok.example>", "a@ok.example", ""},
        {"overlong UTF-8 in a quoted name", "\"\xc0\xaf\" <a@ok.example>", "a@ok.example", ""},
        {"Latin-1 in a comment", "a@ok.example (J\xfcrgen)", "a@ok.example", ""},
        {"RFC 2047 word is not decoded", "=?utf-8?q?x=40spam.example?= <a@ok.example>",
         "a@ok.example", ""},
        {"RFC 2047 word that names the address",
         "\"=?iso-8859-1?q?a@ok.example?=\" <x@spam.example>", "x@spam.example", ""},
        {"UTF-8 local part (SMTPUTF8) is accepted", "J\xc3\xbcrgen <j\xc3\xbcrgen@ok.example>",
         "j\xc3\xbcrgen@ok.example", ""},
        {"UTF-8 quoted local part", "\"j\xc3\xbc rgen\"@ok.example", "j\xc3\xbc rgen@ok.example",
         ""},
        {"Latin-1 local part is refused", "J\xfcrgen <j\xfcrgen@ok.example>", "",
         "local part not valid UTF-8"},
        {"Latin-1 in a quoted local part is refused", "\"j\xfc\"@ok.example", "",
         "local part not valid UTF-8"},
        {"Latin-1 in the domain is refused", "a@b\xfc.example", "", "not valid UTF-8"},
        {"obsolete blanks around '.' and '@'", "john . doe @ ok . example", "john.doe@ok.example",
         ""},
        {"obsolete blanks inside <>", "Joe < x @ spam.example >", "x@spam.example", ""},
        {"source route", "<@relay.ok.example,@b.example:x@spam.example>", "x@spam.example", ""},
        {"blanks between atoms still fail", "john doe@ok.example", "",
         "space not allowed in an unquoted local part"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            if (r.key.empty()) {
                checkInputError([&] { parseAddress(r.input); }, r.message);
            } else {
                BOOST_TEST(parseAddress(r.input).key == r.key);
                const auto list = parseAddressList(r.input);
                BOOST_TEST_REQUIRE(list.size() == 1u);
                BOOST_TEST(list[0].key == r.key);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(groups_and_obsolete_lists)
{
    struct Row {
        const char* label;
        std::string input;
        std::vector<std::string> keys;
        std::string message; ///< non-empty: must throw with this
    };
    const std::vector<Row> rows = {
        {"group with members",
         "Friends: a@ok.example, Spam <x@spam.example>;",
         {"a@ok.example", "x@spam.example"},
         ""},
        {"empty group names no mailbox", "undisclosed-recipients:;", {}, ""},
        {"mailboxes around a group",
         "a@ok.example, Team: b@ok.example; c@ok.example",
         {"a@ok.example", "b@ok.example", "c@ok.example"},
         ""},
        {"quoted group name with a colon", "\"A: B\": a@ok.example;", {"a@ok.example"}, ""},
        {"8-bit group name",
         "Gr\xfc\xdf"
         "e: a@ok.example;",
         {"a@ok.example"},
         ""},
        {"group left open is read as one", "Support: Team <a@ok.example>", {"a@ok.example"}, ""},
        {"colon inside <> is a route, not a group",
         "<@r.example:a@ok.example>, b@ok.example",
         {"a@ok.example", "b@ok.example"},
         ""},
        {"colon in a domain literal", "a@[IPv6:2001:db8::1]", {"a@[ipv6:2001:db8::1]"}, ""},
        {"group name hiding an address", "x@spam.example: a@ok.example;", {}, "is not a phrase"},
        {"group name with <>", "<x@spam.example>: a@ok.example;", {}, "is not a phrase"},
        {"group inside a group", "A: B: a@ok.example;;", {}, "a group inside a group"},
        {"';' outside a group", "a@ok.example; x@spam.example", {}, "';' outside a group"},
        {"unterminated quote", "\"a <x@spam.example>", {}, "unterminated quoted string"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            if (!r.message.empty()) {
                checkInputError([&] { parseAddressList(r.input); }, r.message);
                continue;
            }
            std::vector<std::string> keys;
            for (const MailAddress& a : parseAddressList(r.input))
                keys.push_back(a.key);
            BOOST_TEST(keys == r.keys, boost::test_tools::per_element());
        }
    }
}

BOOST_AUTO_TEST_CASE(raw_iso_2022_jp_display_names)
{
    // Old Japanese mailers write display names in raw ISO-2022-JP: its
    // escapes contain '(' and its double-byte runs any of '(', '"', '<', ','.
    // They are display text; the address outside them is judged.
    struct Row {
        const char* label;
        std::string input;
        std::vector<std::string> keys;
    };
    const std::vector<Row> rows = {
        {"kanji display name", "\x1b$B$3$s$K$A$O\x1b(B <Taro@Example.JP>", {"taro@example.jp"}},
        {"JIS bytes that look like ( \" < ,",
         "\x1b$B(\"<,\x1b(B <x@spam.example>",
         {"x@spam.example"}},
        {"JIS X 0208-1978 and Roman designations",
         "\x1b$@!!\x1b(J <a@ok.example>",
         {"a@ok.example"}},
        {"two mailboxes",
         "\x1b$B$\"\x1b(B <a@ok.example>, \x1b$B$$\x1b(B <x@spam.example>",
         {"a@ok.example", "x@spam.example"}},
    };
    for (const Row& r : rows)
        BOOST_TEST_CONTEXT(r.label)
        {
            std::vector<std::string> keys;
            for (const MailAddress& a : parseAddressList(r.input))
                keys.push_back(a.key);
            BOOST_TEST(keys == r.keys, boost::test_tools::per_element());
        }
    // an address inside the JIS run is not an address a reader sees
    checkInputError([] { parseAddress("\x1b$Bx@spam.example\x1b(B"); }, "malformed address");
    // another escape is not ISO-2022-JP: the parser sees its bytes as written
    checkInputError([] { parseAddress("\x1b(Z <a@ok.example>"); }, "unterminated comment");
}
