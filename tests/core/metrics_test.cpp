// metrics_test - core/metrics.cpp: label values escaped for the text
// exposition format 0.0.4 (hostile account names, one row each), the exact
// lines popgated's and popgate-milter's registries render, and the format's
// structure (one # TYPE per family, its samples together right after it).
#define BOOST_TEST_MODULE metrics
#include "core/metrics.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace popgate;
using namespace std::string_literals;

namespace
{

struct Row {
    const char* label;
    std::string value;
    std::string escaped; ///< what goes between the quotes
};

const Row kRows[] = {
    {"plain name kept", "helpdesk", "helpdesk"},
    {"dots, dashes, underscores kept", "sales.eu-1_x", "sales.eu-1_x"},
    {"double quote ends no value", "a\"b", "a\\\"b"},
    {"backslash doubled", "a\\b", "a\\\\b"},
    {"line feed: no second sample line", "a\nx 1", "a\\\\x0ax 1"},
    {"CR", "a\rb", "a\\\\x0db"},
    {"NUL", "a\0b"s, "a\\\\x00b"},
    {"ESC sequence", "a\x1b[31m", "a\\\\x1b[31m"},
    {"invalid UTF-8: the format is UTF-8", "caf\xe9", "caf\\\\xe9"},
    {"valid UTF-8 kept", "Z\xc3\xbcrich", "Z\xc3\xbcrich"},
    {"quote, brace and space: a forged label", "x\",evil=\"1\"} 9", "x\\\",evil=\\\"1\\\"} 9"},
};

// Sample - one parsed line "NAME{LABELS} VALUE".
struct Sample {
    std::string name, labels, value;
};

// parse - the exposition text's samples, checking the structure as it goes: a
// # TYPE line once per family before its samples, which are not interleaved with
// another family's; a sample is NAME[{LABELS}] VALUE with quoted label values.
std::vector<Sample> parse(const std::string& text)
{
    std::vector<Sample> out;
    std::set<std::string> families;
    std::string current;
    std::istringstream in(text);
    std::string line;
    BOOST_TEST_REQUIRE((!text.empty() && text.back() == '\n'), "ends with a line feed");
    while (std::getline(in, line)) {
        BOOST_TEST_CONTEXT(line)
        {
            if (line.rfind("# HELP ", 0) == 0)
                continue;
            if (line.rfind("# TYPE ", 0) == 0) {
                std::istringstream t(line.substr(7));
                std::string name, type;
                t >> name >> type;
                BOOST_TEST(families.insert(name).second, "one # TYPE per family");
                BOOST_TEST((type == "counter" || type == "gauge" || type == "summary"));
                current = name;
                continue;
            }
            Sample s;
            const auto brace = line.find('{');
            const auto space = line.rfind(' ');
            BOOST_TEST_REQUIRE(space != std::string::npos);
            if (brace != std::string::npos && brace < space) {
                s.name = line.substr(0, brace);
                const auto close = line.rfind('}');
                BOOST_TEST_REQUIRE(close == space - 1);
                s.labels = line.substr(brace + 1, close - brace - 1);
            } else {
                s.name = line.substr(0, space);
            }
            s.value = line.substr(space + 1);
            BOOST_TEST(s.value.find_first_not_of("0123456789.") == std::string::npos);
            // A summary's samples are FAMILY_sum and FAMILY_count.
            BOOST_TEST(
                (s.name == current || s.name == current + "_sum" || s.name == current + "_count"),
                "sample inside its family " << current);
            out.push_back(s);
        }
    }
    return out;
}

std::string valueOf(const std::vector<Sample>& samples, const std::string& name,
                    const std::string& labels)
{
    for (const auto& s : samples)
        if (s.name == name && s.labels == labels)
            return s.value;
    return "(absent)";
}

} // namespace

BOOST_AUTO_TEST_CASE(label_values_escaped)
{
    for (const Row& row : kRows)
        BOOST_TEST_CONTEXT(row.label)
        {
            BOOST_TEST(prometheusLabelValue(row.value) == row.escaped);
        }
}

BOOST_AUTO_TEST_CASE(popgated_series_exact)
{
    FetchMetrics m;
    m.setAccounts(3);
    AccountMetrics& a = m.account("helpdesk");
    a.countMessages({3, 1, 0, 2, 4096});
    a.countMessages({1, 0, 1, 0, 10});
    a.pollEnded(std::chrono::milliseconds(1500), 1700000000, 0);
    a.pollEnded(std::chrono::microseconds(250), 1700000100, 0);
    BOOST_TEST(&m.account("helpdesk") == &a, "one entry per account");
    m.account("down").pollEnded(std::chrono::seconds(2), 0, 4);
    m.account("x\"y\nz"); // hostile name: escaped, never a line of its own

    std::ostringstream out;
    m.render(out);
    const std::string text = out.str();
    const auto s = parse(text);
    const std::string h = "account=\"helpdesk\"";
    BOOST_TEST(valueOf(s, "popgated_info", "version=\"" POPGATE_VERSION "\"") == "1");
    BOOST_TEST(valueOf(s, "popgated_accounts", "") == "3");
    BOOST_TEST(valueOf(s, "popgated_messages_total", h + ",outcome=\"delivered\"") == "4");
    BOOST_TEST(valueOf(s, "popgated_messages_total", h + ",outcome=\"ignored\"") == "1");
    BOOST_TEST(valueOf(s, "popgated_messages_total", h + ",outcome=\"deferred\"") == "1");
    BOOST_TEST(valueOf(s, "popgated_messages_total", h + ",outcome=\"failed\"") == "2");
    BOOST_TEST(valueOf(s, "popgated_delivered_bytes_total", h) == "4106");
    BOOST_TEST(valueOf(s, "popgated_poll_duration_seconds_sum", h) == "1.500250");
    BOOST_TEST(valueOf(s, "popgated_poll_duration_seconds_count", h) == "2");
    BOOST_TEST(valueOf(s, "popgated_last_success_timestamp_seconds", h) == "1700000100");
    BOOST_TEST(valueOf(s, "popgated_consecutive_failures", h) == "0");
    const std::string d = "account=\"down\"";
    BOOST_TEST(valueOf(s, "popgated_consecutive_failures", d) == "4");
    BOOST_TEST(valueOf(s, "popgated_last_success_timestamp_seconds", d) == "0");
    BOOST_TEST(valueOf(s, "popgated_messages_total", d + ",outcome=\"delivered\"") == "0");
    BOOST_TEST(valueOf(s, "popgated_poll_duration_seconds_sum", d) == "2.000000");
    BOOST_TEST(valueOf(s, "popgated_consecutive_failures", "account=\"x\\\"y\\\\x0az\"") == "0");
    BOOST_TEST(text.find("popgated_delivered_bytes_total{account=\"down\"} 0\n"
                         "popgated_delivered_bytes_total{account=\"helpdesk\"} 4106\n") !=
                   std::string::npos,
               "accounts in name order:\n"
                   << text);
    BOOST_TEST(text.find("# TYPE popgated_poll_duration_seconds summary\n") != std::string::npos);
    BOOST_TEST(text.find("# TYPE popgated_messages_total counter\n") != std::string::npos);
    BOOST_TEST(valueOf(s, "popgated_receiving", "") == "(absent)", "not rendered until set");
    m.setReceiving(false);
    std::ostringstream again;
    m.render(again);
    BOOST_TEST(valueOf(parse(again.str()), "popgated_receiving", "") == "0");
}

BOOST_AUTO_TEST_CASE(milter_verdicts_exact)
{
    MilterMetrics m;
    m.count(MilterVerdict::Rejected);
    m.count(MilterVerdict::Rejected);
    m.count(MilterVerdict::DuplicateDropped);
    std::ostringstream out;
    m.render(out);
    const auto s = parse(out.str());
    const std::map<std::string, std::string> want = {
        {"accepted", "0"},
        {"rejected", "2"},
        {"discarded", "0"},
        {"quarantined", "0"},
        {"tagged", "0"},
        {"reinjected", "0"},
        {"duplicate_dropped", "1"},
        {"accepted_unfiltered", "0"},
        {"tempfailed", "0"},
    };
    for (const auto& [verdict, value] : want)
        BOOST_TEST_CONTEXT(verdict)
        {
            BOOST_TEST(valueOf(s, "popgate_milter_verdicts_total", "verdict=\"" + verdict + "\"") ==
                       value);
        }
    std::size_t verdicts = 0;
    for (const auto& x : s)
        verdicts += x.name == "popgate_milter_verdicts_total";
    BOOST_TEST(verdicts == want.size(), "every verdict, and no other");
    BOOST_TEST(valueOf(s, "popgate_milter_info", "version=\"" POPGATE_VERSION "\"") == "1");
}

// Ten thousand accounts: the scrape's size and time, for the record (bench/ is
// where timings are judged; nothing here fails on a slow machine).
BOOST_AUTO_TEST_CASE(ten_thousand_accounts_render)
{
    FetchMetrics m;
    for (int i = 0; i < 10000; ++i) {
        AccountMetrics& a = m.account("account-" + std::to_string(i));
        a.countMessages({i, 1, 0, 0, i * 1000});
        a.pollEnded(std::chrono::milliseconds(i), 1700000000 + i, 0);
    }
    std::ostringstream out;
    const auto t0 = std::chrono::steady_clock::now();
    m.render(out);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    // Counted, not parsed: parse() checks each line with an assertion of its own.
    const std::string text = out.str();
    std::size_t samples = 0;
    for (std::size_t at = 0; at < text.size();) {
        samples += text[at] != '#';
        const auto end = text.find('\n', at);
        at = end == std::string::npos ? text.size() : end + 1;
    }
    BOOST_TEST(samples == 3u + 10000u * 9u);
    BOOST_TEST(text.find("popgated_consecutive_failures{account=\"account-9999\"} 0\n") !=
               std::string::npos);
    BOOST_TEST_MESSAGE("10000 accounts: " << samples << " samples, " << text.size()
                                          << " octets, rendered in " << ms << " ms");
}
