// text_test - escapeText (core/text.cpp): each hostile value from mail or from a
// server, with what a log field, a log line's free text and the admin's terminal
// get. One row per attack, with its label.
#define BOOST_TEST_MODULE text
#include "core/text.h"

#include <boost/test/unit_test.hpp>
#include <string>

using namespace popgate;
using namespace std::string_literals;

namespace
{

struct Row {
    const char* label;
    std::string value;
    std::string field;    ///< EscapeFor::LogField
    std::string text;     ///< EscapeFor::LogText
    std::string terminal; ///< EscapeFor::Terminal
};

const Row kRows[] = {
    {"plain Message-ID kept", "<m@ok.example>", "<m@ok.example>", "<m@ok.example>",
     "<m@ok.example>"},
    {"ESC colour sequence and BEL", "<esc\x1b[31mRED\x1b[0m\x07@x>",
     "<esc\\x1b[31mRED\\x1b[0m\\x07@x>", "<esc\\x1b[31mRED\\x1b[0m\\x07@x>",
     "<esc\\x1b[31mRED\\x1b[0m\\x07@x>"},
    {"CR LF: a forged second line", "a\r\nJan  1 popgated: status=sent",
     "a\\x0d\\x0aJan\\x20\\x20"
     "1\\x20popgated:\\x20status=sent",
     "a Jan  1 popgated: status\\x3dsent", "a\\x0d\\x0aJan  1 popgated: status=sent"},
    {"NUL", "a\0b"s, "a\\x00b", "a\\x00b", "a\\x00b"},
    {"DEL",
     "a\x7f"
     "b",
     "a\\x7fb", "a\\x7fb", "a\\x7fb"},
    {"TAB", "a\tb", "a\\x09b", "a\\x09b", "a\\x09b"},
    {"invalid UTF-8: Latin-1 byte", "caf\xe9", "caf\\xe9", "caf\\xe9", "caf\\xe9"},
    {"invalid UTF-8: overlong slash",
     "a\xc0\xaf"
     "b",
     "a\\xc0\\xafb", "a\\xc0\\xafb", "a\\xc0\\xafb"},
    {"invalid UTF-8: surrogate", "\xed\xa0\x80", "\\xed\\xa0\\x80", "\\xed\\xa0\\x80",
     "\\xed\\xa0\\x80"},
    {"invalid UTF-8: cut short at the end", "ok\xe2\x82", "ok\\xe2\\x82", "ok\\xe2\\x82",
     "ok\\xe2\\x82"},
    {"C1 control CSI (U+009B) escaped",
     "a\xc2\x9b"
     "31mb",
     "a\\xc2\\x9b31mb", "a\\xc2\\x9b31mb", "a\\xc2\\x9b31mb"},
    {"valid UTF-8 kept", "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x93\xa7",
     "J\xc3\xbcrgen\\x20\xe2\x82\xac\\x20\xf0\x9f\x93\xa7",
     "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x93\xa7", "J\xc3\xbcrgen \xe2\x82\xac \xf0\x9f\x93\xa7"},
    {"spaces", "a b  c", "a\\x20b\\x20\\x20c", "a b  c", "a b  c"},
    {"forged fields", "<m@ok.example> status=delivered account=other",
     "<m@ok.example>\\x20status=delivered\\x20account=other",
     "<m@ok.example> status\\x3ddelivered account\\x3dother",
     "<m@ok.example> status=delivered account=other"},
    {"quotes kept", "\"x\" 'y'", "\"x\"\\x20'y'", "\"x\" 'y'", "\"x\" 'y'"},
    {"backslash: doubled in a field (a literal \\x1b is not an escape), kept in text", "a\\x1b\\",
     "a\\\\x1b\\\\", "a\\x1b\\", "a\\x1b\\"},
    {"empty", "", "", "", ""},
};

} // namespace

BOOST_AUTO_TEST_CASE(escape_table)
{
    for (const Row& r : kRows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            BOOST_TEST(escapeText(r.value, EscapeFor::LogField) == r.field);
            BOOST_TEST(escapeText(r.value, EscapeFor::LogText) == r.text);
            BOOST_TEST(escapeText(r.value, EscapeFor::Terminal) == r.terminal);
        }
    }
}

BOOST_AUTO_TEST_CASE(json_keeps_code_points_exact_and_replaces_invalid_bytes)
{
    // Poco::JSON writes C0 controls as \u00HH itself; DEL, C1 and invalid UTF-8 it passes raw.
    BOOST_TEST(escapeText("{\"a\": \"<e\\u001B\x7f\xc2\x9b\xc3\xbc\\\\\xff\xc0\xaf>\"}",
                          EscapeFor::Json) ==
               "{\"a\": \"<e\\u001B\\u007f\\u009b\xc3\xbc\\\\\\ufffd\\ufffd\\ufffd>\"}");
    BOOST_TEST(escapeText("[\n\t\"\xf0\x9f\x93\xa7 ok\"\r\n]", EscapeFor::Json) ==
               "[\n\t\"\xf0\x9f\x93\xa7 ok\"\r\n]");
}

BOOST_AUTO_TEST_CASE(escaped_output_has_no_control_byte_and_no_space_in_a_field)
{
    std::string all;
    for (int c = 0; c < 256; ++c)
        all += static_cast<char>(c);
    for (EscapeFor w :
         {EscapeFor::LogField, EscapeFor::LogText, EscapeFor::Terminal, EscapeFor::Json}) {
        const std::string out = escapeText(all, w);
        for (unsigned char c : out) {
            if (w == EscapeFor::Json && (c == '\t' || c == '\n' || c == '\r'))
                continue; // JSON's white space
            BOOST_TEST((c >= 0x20 && c < 0x7f), "byte " << int(c) << " left in the output");
            if (w == EscapeFor::LogField)
                BOOST_TEST(c != ' ');
        }
    }
}
