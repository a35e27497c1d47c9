// keyvalue_test - the "key = value" parser popgate.conf and accounts.d share
// (core/keyvalue.cpp): one row per rule of the format, with its label.
#define BOOST_TEST_MODULE keyvalue
#include "core/errors.h"
#include "core/keyvalue.h"

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

using namespace popgate;
using namespace std::string_literals;

namespace
{

struct Row {
    const char* label;
    std::string text;
    std::vector<std::string> lines;    ///< "LINE|key|value", in order
    std::vector<std::string> problems; ///< exactly, in order
};

// longValue - the value that makes the line "k = VALUE" exactly lineBytes long.
std::string longValue(std::size_t lineBytes)
{
    return std::string(lineBytes - 4, 'x');
}

} // namespace

BOOST_AUTO_TEST_CASE(format_table)
{
    const std::string atLimit = "k = " + longValue(kMaxKeyValueLine);
    const std::string overLimit = "k = " + longValue(kMaxKeyValueLine + 1);
    const std::vector<Row> rows = {
        {"empty text", "", {}, {}},
        {"one line without a line end", "a = 1", {"1|a|1"}, {}},
        {"comments and blank lines are skipped but counted",
         "# comment\n\n   \n\t# indented comment\nb = 2\n",
         {"5|b|2"},
         {}},
        {"spaces around '=' and the line are dropped",
         "  key   =   some value  \n",
         {"1|key|some value"},
         {}},
        {"no spaces at all", "key=value\n", {"1|key|value"}, {}},
        {"'=' inside the value stays in the value",
         "database.connect = host=127.0.0.1 password=a=b\n",
         {"1|database.connect|host=127.0.0.1 password=a=b"},
         {}},
        {"'#' after the value is part of the value",
         "k = v # not a comment\n",
         {"1|k|v # not a comment"},
         {}},
        {"empty value", "k =\n", {"1|k|"}, {}},
        {"CRLF line ends", "a = 1\r\n# c\r\n\r\nb = 2\r\n", {"1|a|1", "4|b|2"}, {}},
        {"missing '=' names the line",
         "a = 1\nno equals sign\nb = 2\n",
         {"1|a|1", "3|b|2"},
         {"f.conf:2: expected 'key = value'"}},
        {"a key set twice: the first stands",
         "a = 1\na = 2\n",
         {"1|a|1"},
         {"f.conf:2: a: set twice"}},
        {"a line of 64 KiB is accepted",
         atLimit + "\nb = 2\n",
         {"1|k|" + longValue(kMaxKeyValueLine), "2|b|2"},
         {}},
        {"a line over 64 KiB is an error naming it",
         "a = 1\n" + overLimit + "\nb = 2\n",
         {"1|a|1", "3|b|2"},
         {"f.conf:2: line longer than 65536 bytes"}},
        {"a NUL byte is an error naming the line",
         "a = 1\nk = v\0w\nb = 2\n"s,
         {"1|a|1", "3|b|2"},
         {"f.conf:2: contains a NUL byte"}},
        {"problems come in line order",
         "x\na = 1\na = 1\ny\n",
         {"2|a|1"},
         {"f.conf:1: expected 'key = value'", "f.conf:3: a: set twice",
          "f.conf:4: expected 'key = value'"}},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            std::vector<std::string> lines, problems;
            readKeyValues(r.text, "f.conf", "key", problems, [&lines](const KeyValue& kv) {
                lines.push_back(std::to_string(kv.line) + "|" + kv.key + "|" + kv.value);
            });
            BOOST_TEST(lines == r.lines, boost::test_tools::per_element());
            BOOST_TEST(problems == r.problems, boost::test_tools::per_element());
        }
    }
}

BOOST_AUTO_TEST_CASE(the_noun_names_what_the_file_holds)
{
    std::vector<std::string> problems;
    readKeyValues("no equals\n", "acct.conf", "field", problems, [](const KeyValue&) {});
    BOOST_TEST(problems == std::vector<std::string>{"acct.conf:1: expected 'field = value'"},
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(an_input_error_from_the_caller_names_the_line_and_parsing_goes_on)
{
    std::vector<std::string> problems, seen;
    readKeyValues("colour = blue\nsize = 1\n", "f.conf", "key", problems,
                  [&seen](const KeyValue& kv) {
                      seen.push_back(kv.key);
                      if (kv.key == "colour")
                          throw InputError("unknown key 'colour'");
                  });
    BOOST_TEST(seen == (std::vector<std::string>{"colour", "size"}),
               boost::test_tools::per_element());
    BOOST_TEST(problems == std::vector<std::string>{"f.conf:1: unknown key 'colour'"},
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(other_exceptions_from_the_caller_pass_through)
{
    std::vector<std::string> problems;
    BOOST_CHECK_THROW(readKeyValues("a = 1\n", "f.conf", "key", problems,
                                    [](const KeyValue&) { throw OperationError("disk"); }),
                      OperationError);
}

BOOST_AUTO_TEST_CASE(throw_problems_joins_them_one_per_line)
{
    BOOST_CHECK_NO_THROW(throwProblems({}));
    try {
        throwProblems({"a.conf:1: x", "a.conf:2: y"});
        BOOST_ERROR("no exception");
    } catch (const InputError& e) {
        BOOST_TEST(std::string(e.what()) == "a.conf:1: x\na.conf:2: y");
    }
}
