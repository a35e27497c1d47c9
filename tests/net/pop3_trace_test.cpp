// pop3_trace_test.cpp - the redaction of client lines, the header/body cut,
// the file trace, and the small pure helpers of pop3_errors (flattening,
// RFC 2449 response codes). The trace of a real session: pop3_dovecot_test.
#define BOOST_TEST_MODULE pop3_trace
#include "plugin/net/pop3_errors.h"
#include "plugin/net/pop3_trace.h"

#include <Poco/File.h>
#include <Poco/TemporaryFile.h>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

using namespace popgate;

namespace
{

struct RedactCase {
    const char* label;
    std::string line;
    bool continuation;
    std::string expected;
};

std::string slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

} // namespace

BOOST_AUTO_TEST_CASE(redaction_table)
{
    const std::vector<RedactCase> rows = {
        {"PASS hidden", "PASS s3cret", false, "PASS ********"},
        {"pass lower case", "pass s3cret with spaces", false, "PASS ********"},
        {"APOP digest hidden", "APOP alice c4c9334bac560ecc979e58001b3e22fb", false,
         "APOP alice ********"},
        {"AUTH initial response hidden", "AUTH PLAIN AGFsaWNlAHMzY3JldA==", false,
         "AUTH PLAIN ********"},
        {"AUTH without response kept", "AUTH LOGIN", false, "AUTH LOGIN"},
        {"SASL continuation hidden", "czNjcmV0", true, "********"},
        {"empty continuation hidden", "", true, "********"},
        {"SASL cancel kept", "*", true, "*"},
        {"USER kept", "USER alice", false, "USER alice"},
        {"RETR kept", "RETR 7", false, "RETR 7"},
        {"CAPA kept", "CAPA", false, "CAPA"},
    };
    for (const RedactCase& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            BOOST_TEST(redactClientLine(row.line, row.continuation) == row.expected);
        }
    }
}

BOOST_AUTO_TEST_CASE(body_cutter_logs_headers_only)
{
    TraceBodyCutter cutter;
    BOOST_TEST(cutter.line("Subject: hi", 13));
    BOOST_TEST(cutter.line(" folded", 9));
    BOOST_TEST(cutter.summary() == "");
    BOOST_TEST(cutter.line("", 2)); // the empty line ending the header is logged
    BOOST_TEST(!cutter.line("secret body", 13));
    BOOST_TEST(!cutter.line("", 2));
    BOOST_TEST(cutter.summary() == "[body not logged: 15 bytes]");
}

BOOST_AUTO_TEST_CASE(file_trace_writes_timestamped_lines_with_mode_0600)
{
    Poco::TemporaryFile dir;
    dir.createDirectories();
    std::string path = dir.path() + "/trace.log";
    {
        FileProtocolTrace trace(path);
        trace.sent(redactClientLine("PASS hunter2", false));
        trace.received("+OK Logged in.");
        trace.received("X-Evil: a\r\nS: forged");
    }
    {
        FileProtocolTrace again(path); // appends
        again.sent("QUIT");
    }
    std::string text = slurp(path);
    BOOST_TEST(text.find("hunter2") == std::string::npos);
    BOOST_TEST(text.find(" C: PASS ********\n") != std::string::npos);
    BOOST_TEST(text.find(" S: +OK Logged in.\n") != std::string::npos);
    BOOST_TEST(text.find(" S: X-Evil: a\\x0D\\x0AS: forged\n") != std::string::npos);
    BOOST_TEST(text.find(" C: QUIT\n") != std::string::npos);
    // "2026-11-28T18:30:00.123Z C: ..."
    BOOST_TEST(text.size() > 25u);
    BOOST_TEST(text[4] == '-');
    BOOST_TEST(text[10] == 'T');
    BOOST_TEST(text[23] == 'Z');
    struct stat st;
    BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_CHECK_THROW(FileProtocolTrace(dir.path() + "/missing/dir/trace.log"), OperationError);
}

BOOST_AUTO_TEST_CASE(response_codes)
{
    const std::vector<std::pair<std::string, std::string>> rows = {
        {"-ERR [IN-USE] locked", "IN-USE"},
        {"-ERR [LOGIN-DELAY] wait", "LOGIN-DELAY"},
        {"-ERR [SYS/TEMP] try later", "SYS/TEMP"},
        {"-ERR [SYS/PERM] gone", "SYS/PERM"},
        {"-ERR [AUTH] Authentication failed.", "AUTH"},
        {"-ERR no code", ""},
        {"-ERR [unterminated", ""},
        {"-ERR [bad code!] x", ""},
        {"-ERR", ""},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.first)
        {
            BOOST_TEST(parseResponseCode(row.first) == row.second);
        }
    }
}

BOOST_AUTO_TEST_CASE(errors_flatten_server_words)
{
    Pop3ServerError e(Pop3Stage::Retr, "RETR 7", "-ERR [SYS/TEMP] disk\r\nfull\xff");
    BOOST_TEST(std::string(e.what()) ==
               "RETR 7: server said: -ERR [SYS/TEMP] disk\\x0D\\x0Afull\\xFF");
    BOOST_TEST(e.responseCode() == "SYS/TEMP");
    BOOST_TEST(e.stage() == Pop3Stage::Retr);
    BOOST_TEST(flattenServerText(std::string(600, 'x')).size() == 515u);
    const OperationError& base = e; // callers may catch the core type
    BOOST_TEST(std::string(base.what()).find("RETR 7") == 0u);
}
