// received_test.cpp - core/received.cpp: the origin in the Received: fields
// providers write (Postfix, Sendmail, Gmail, Exim; IPv4 and IPv6), everything
// else refused rather than guessed; the n-th field of a header section
// (folded, LF or CRLF, not past the blank line); xtext.
#define BOOST_TEST_MODULE received
#include "core/received.h"

#include <boost/test/unit_test.hpp>

using namespace popgate;

namespace
{

struct Row {
    const char* label;
    std::string value;
    bool parsed;
    std::string address;
    bool ipv6;
    std::string name;
};

} // namespace

BOOST_AUTO_TEST_CASE(the_forms_providers_write)
{
    const std::vector<Row> rows = {
        {"postfix",
         "from mail.example.org (mail.example.org [192.0.2.10]) by mx.provider.test "
         "(Postfix) with ESMTPS id 4ABC for <u@provider.test>; Thu, 3 Dec 2026 10:00:00 +0000",
         true, "192.0.2.10", false, "mail.example.org"},
        {"postfix, HELO differs", "from helo.claims.test (real.example.org [198.51.100.7])", true,
         "198.51.100.7", false, "real.example.org"},
        {"postfix, no reverse DNS", "from helo.test (unknown [203.0.113.5])", true, "203.0.113.5",
         false, ""},
        {"postfix IPv6", "from mail.example.org (mail.example.org [IPv6:2001:db8::25])", true,
         "2001:db8::25", true, "mail.example.org"},
        {"gmail: trailing dot, plain IPv6",
         "from mail-sor-f41.google.com (mail-sor-f41.google.com. [2607:f8b0:4864:20::a41])", true,
         "2607:f8b0:4864:20::a41", true, "mail-sor-f41.google.com"},
        {"sendmail: (may be forged)",
         "from helo.test (host.example.org [192.0.2.20] (may be forged)) by mx.test", true,
         "192.0.2.20", false, "host.example.org"},
        {"sendmail, no name: HELO not taken", "from helo.example.org ([192.0.2.21]) by mx.test",
         true, "192.0.2.21", false, ""},
        {"exim: [IP] helo=", "from host.example.org ([192.0.2.22] helo=other.test) by mx.test",
         true, "192.0.2.22", false, ""},
        {"HELO is an address literal", "from [192.0.2.23] (h.example.org [192.0.2.23])", true,
         "192.0.2.23", false, "h.example.org"},
        {"IPv6 written long is made canonical",
         "from a.test (b.example.org [IPv6:2001:0db8:0000:0000:0000:0000:0000:0001])", true,
         "2001:db8::1", true, "b.example.org"},
        {"folded whitespace", "from\ta.test\t(\tb.example.org\t[192.0.2.24])", true, "192.0.2.24",
         false, "b.example.org"},
        {"upper-case FROM", "FROM a.test (b.example.org [192.0.2.25])", true, "192.0.2.25", false,
         "b.example.org"},
        // refused: never a guess
        {"no from clause", "by mx.test with ESMTP id X; Thu, 3 Dec 2026", false, "", false, ""},
        {"qmail: no brackets", "from unknown (HELO foo.test) (192.0.2.30)", false, "", false, ""},
        {"exim without a name: helo= only", "from [192.0.2.31] (helo=foo.test)", false, "", false,
         ""},
        {"microsoft: address without brackets",
         "from DM6PR.prod.outlook.com (2603:10b6:5:1c0::33) by DM5PR.prod.outlook.com", false, "",
         false, ""},
        {"not an address", "from a.test (b.example.org [999.1.1.1])", false, "", false, ""},
        {"IPv4 with a leading zero", "from a.test (b.example.org [192.0.02.1])", false, "", false,
         ""},
        {"hostname in the brackets", "from a.test (b.example.org [c.example.org])", false, "",
         false, ""},
        {"unterminated bracket", "from a.test (b.example.org [192.0.2.1", false, "", false, ""},
        {"junk after the bracket", "from a.test (b.example.org [192.0.2.1]x)", false, "", false,
         ""},
        {"name with a space-less injection", "from a.test (evil;name [192.0.2.1])", false, "",
         false, ""},
        {"name with an underscore", "from a.test (b_c.example.org [192.0.2.1])", false, "", false,
         ""},
        {"numeric name", "from a.test (192.0.2.1 [192.0.2.1])", false, "", false, ""},
        {"name ending with a hyphen", "from a.test (b-.example.org [192.0.2.1])", false, "", false,
         ""},
        {"8-bit name", "from a.test (b\xC3\xA9.example.org [192.0.2.1])", false, "", false, ""},
        {"NUL in the address", std::string("from a.test (b.test [192.0.2.1\0])", 33), false, "",
         false, ""},
        {"no HELO", "from (b.example.org [192.0.2.1])", false, "", false, ""},
        {"no comment", "from a.test [192.0.2.1]", false, "", false, ""},
        {"empty", "", false, "", false, ""},
        {"too long", "from a.test (b.test [192.0.2.1]) " + std::string(kMaxReceivedField, 'x'),
         false, "", false, ""},
    };
    for (const auto& row : rows) {
        const auto o = parseReceived(row.value);
        BOOST_TEST(o.has_value() == row.parsed, row.label);
        if (!o || !row.parsed)
            continue;
        BOOST_TEST(o->address == row.address, row.label);
        BOOST_TEST(o->ipv6 == row.ipv6, row.label);
        BOOST_TEST(o->name == row.name, row.label);
    }
}

BOOST_AUTO_TEST_CASE(the_nth_field_of_a_header_section)
{
    const std::string header = "Received: from gw by us (popgate) with POP3;\r\n"
                               "\tThu, 3 Dec 2026\r\n"
                               "X-Popgate-Id: v1\r\n"
                               "received : from a.test\r\n"
                               " (b.example.org [192.0.2.1])\r\n"
                               "\tby mx.test; Thu, 3 Dec 2026\r\n"
                               "Subject: Received: from fake (x [192.0.2.99])\r\n"
                               "Received: from c.test (d.example.org [192.0.2.2])\r\n"
                               "\r\n"
                               "Received: from body (e.test [192.0.2.3])\r\n";
    BOOST_TEST(*receivedField(header, 1) == "from gw by us (popgate) with POP3;\tThu, 3 Dec 2026");
    BOOST_TEST(*receivedField(header, 2) ==
               "from a.test (b.example.org [192.0.2.1])\tby mx.test; Thu, 3 Dec 2026");
    BOOST_TEST(*receivedField(header, 3) == "from c.test (d.example.org [192.0.2.2])");
    BOOST_TEST(!receivedField(header, 4), "the body is not the header");
    BOOST_TEST(!receivedField(header, 0));
    BOOST_TEST(parseReceived(*receivedField(header, 2))->address == "192.0.2.1");
    // LF line ends, and a section that ends without a blank line
    BOOST_TEST(*receivedField("Received: one\nReceived: two\n two more", 2) == "two two more");
    BOOST_TEST(!receivedField("", 1));
}

BOOST_AUTO_TEST_CASE(xtext_encodes_what_must_not_travel_plain)
{
    BOOST_TEST(xtext("mail.example.org") == "mail.example.org");
    BOOST_TEST(xtext("IPV6:2001:db8::1") == "IPV6:2001:db8::1");
    BOOST_TEST(xtext("[UNAVAILABLE]") == "[UNAVAILABLE]");
    BOOST_TEST(xtext("a+b=c d") == "a+2Bb+3Dc+20d");
    BOOST_TEST(xtext(std::string("\r\n\x7f\xff", 4)) == "+0D+0A+7F+FF");
}
