// postfix_smoke_test.cpp - the private Postfix of scripts/servers/postfix.sh as the
// other suites, the demo and the benchmarks rely on it: SMTP to the public and the
// reinjection listener lands byte-identical in MAILDIR/<local part>/new, the fault
// addresses answer 4xx/5xx at RCPT and after DATA, the slow address stalls, and the
// maillog names each queue id. Needs POPGATE_TEST_POSTFIX_* (fails, never skips, without).
#define BOOST_TEST_MODULE postfix_smoke
#include "tests/support/testsupport.h"

#include <Poco/Exception.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SMTPClientSession.h>
#include <Poco/Timespan.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <regex>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace popgate::test;
using Poco::Net::SMTPClientSession;
using Poco::Net::SMTPException;

namespace
{

struct PostfixEnv {
    std::string host = requireEnv("POPGATE_TEST_POSTFIX_HOST");
    int smtpPort = std::stoi(requireEnv("POPGATE_TEST_POSTFIX_SMTP_PORT"));
    int reinjectPort = std::stoi(requireEnv("POPGATE_TEST_POSTFIX_REINJECT_PORT"));
    std::string domain = requireEnv("POPGATE_TEST_POSTFIX_DOMAIN");
    std::string maildir = requireEnv("POPGATE_TEST_POSTFIX_MAILDIR");
    std::string log = requireEnv("POPGATE_TEST_POSTFIX_LOG");
    std::string failRcpt4xx = requireEnv("POPGATE_TEST_POSTFIX_FAIL_RCPT_4XX");
    std::string failRcpt5xx = requireEnv("POPGATE_TEST_POSTFIX_FAIL_RCPT_5XX");
    std::string failData4xx = requireEnv("POPGATE_TEST_POSTFIX_FAIL_DATA_4XX");
    std::string failData5xx = requireEnv("POPGATE_TEST_POSTFIX_FAIL_DATA_5XX");
    std::string slowRcpt = requireEnv("POPGATE_TEST_POSTFIX_SLOW_RCPT");
    int slowSeconds = std::stoi(requireEnv("POPGATE_TEST_POSTFIX_SLOW_SECONDS"));
};

const auto kDeliveryWait = std::chrono::seconds(8);

/// uniqueLocalPart - a recipient nobody else uses, so reruns against one instance
/// never see each other's mail.
std::string uniqueLocalPart(const std::string& label)
{
    static int counter = 0;
    auto now = std::chrono::system_clock::now().time_since_epoch();
    return "smoke-" + label + "-" + std::to_string(::getpid()) + "-" +
           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) +
           "-" + std::to_string(++counter);
}

/// message - a message whose body has everything SMTP transparency can break: lines
/// with leading dots, a lone dot, 8-bit bytes, tabs, trailing blanks, empty lines, a
/// long line. CRLF line ends, as on the wire.
std::string message(const std::string& to, const std::string& tag)
{
    std::string m = "From: Smoke Sender <smoke@example.com>\r\n"
                    "To: <" +
                    to +
                    ">\r\n"
                    "Subject: postfix smoke " +
                    tag +
                    "\r\n"
                    "Date: Mon, 2 Jan 2023 10:00:00 +0000\r\n"
                    "Message-ID: <" +
                    tag +
                    "@smoke.example.com>\r\n"
                    "X-Popgate-Id: " +
                    tag +
                    "\r\n"
                    "MIME-Version: 1.0\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Transfer-Encoding: 8bit\r\n"
                    "\r\n"
                    "first line\r\n"
                    ".leading dot\r\n"
                    "..two dots\r\n"
                    ".\r\n"
                    "caf\xC3\xA9 \xE2\x82\xAC and a latin1 byte \xE9\r\n"
                    "\ttab and trailing blanks   \r\n"
                    "\r\n"
                    "\r\n";
    m += std::string(900, 'x') + "\r\n";
    m += "last line\r\n";
    return m;
}

/// lf - CRLF turned into LF: Postfix stores delivered mail with UNIX line ends.
std::string lf(std::string s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n'))
            out += s[i];
    return out;
}

/// send - one SMTP transaction; throws SMTPException carrying the server's reply.
void send(const PostfixEnv& env, int port, const std::string& rcpt, const std::string& data,
          Poco::Timespan timeout = Poco::Timespan(15, 0))
{
    SMTPClientSession session(env.host, static_cast<Poco::UInt16>(port));
    session.setTimeout(timeout);
    session.login("smoke-client.example.com");
    session.sendAddresses("smoke-sender@" + env.domain, {rcpt});
    session.sendData();
    std::istringstream in(data);
    session.sendMessage(in);
    session.close();
}

/// waitForDelivery - content of the single file that appears in MAILDIR/<local>/new.
std::string waitForDelivery(const PostfixEnv& env, const std::string& local)
{
    namespace fs = std::filesystem;
    fs::path dir = fs::path(env.maildir) / local / "new";
    auto deadline = std::chrono::steady_clock::now() + kDeliveryWait;
    while (std::chrono::steady_clock::now() < deadline) {
        std::error_code ec;
        std::vector<fs::path> files;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
            files.push_back(it->path());
        if (!files.empty()) {
            BOOST_TEST_REQUIRE(files.size() == 1u, "one delivery in " << dir);
            return readFile(files.front().string());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    BOOST_FAIL("nothing delivered to " << dir << " within " << kDeliveryWait.count() << " s; see "
                                       << env.log);
    return {};
}

/// waitForLog - true once the maillog has a line matching the pattern.
bool waitForLog(const PostfixEnv& env, const std::regex& pattern)
{
    auto deadline = std::chrono::steady_clock::now() + kDeliveryWait;
    while (std::chrono::steady_clock::now() < deadline) {
        std::istringstream log(readFile(env.log));
        for (std::string line; std::getline(log, line);)
            if (std::regex_search(line, pattern))
                return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

/// checkRoundTrip - send to PORT, find the delivery, compare bytes, find the queue id
/// in the log under the listener's syslog name.
void checkRoundTrip(const PostfixEnv& env, int port, const std::string& label,
                    const std::string& syslogName)
{
    std::string local = uniqueLocalPart(label);
    std::string rcpt = local + "@" + env.domain;
    std::string sent = message(rcpt, local);
    send(env, port, rcpt, sent);

    std::string delivered = waitForDelivery(env, local);
    // Postfix prepends Return-Path, Delivered-To and Received; the rest is what was sent.
    std::string expected = lf(sent);
    BOOST_TEST_REQUIRE(delivered.size() >= expected.size());
    BOOST_TEST(delivered.substr(delivered.size() - expected.size()) == expected);
    BOOST_TEST(delivered.rfind("Return-Path: <smoke-sender@" + env.domain + ">\n", 0) == 0);
    BOOST_TEST(delivered.find("Delivered-To: " + rcpt + "\n") != std::string::npos);
    std::string body = delivered.substr(delivered.find("\n\n") + 2);
    std::string sentBody = sent.substr(sent.find("\r\n\r\n") + 4);
    BOOST_TEST(body == lf(sentBody));

    std::smatch m;
    BOOST_TEST_REQUIRE(std::regex_search(delivered, m, std::regex("with E?SMTP id ([0-9A-F]+)")),
                       "queue id in the Received header");
    std::string queueId = m[1];
    BOOST_TEST(waitForLog(env, std::regex(syslogName + "\\[[0-9]+\\]: " + queueId + ": client=")),
               "'" << queueId << ": client=' from " << syslogName << " in " << env.log);
    BOOST_TEST(waitForLog(env, std::regex(queueId + ": to=<" + rcpt + ">, relay=maildir.*" +
                                          "status=sent")),
               "'" << queueId << ": to=<" << rcpt << ">... status=sent' in " << env.log);
}

long long msSince(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start)
        .count();
}

struct FaultCase {
    const char* label;
    std::string PostfixEnv::*rcpt;
    int code;
    const char* text;
};

} // namespace

BOOST_AUTO_TEST_CASE(reinjection_listener_delivers_byte_identical)
{
    PostfixEnv env;
    checkRoundTrip(env, env.reinjectPort, "reinject", "postfix-popgate-test/reinject/smtpd");
}

BOOST_AUTO_TEST_CASE(public_listener_delivers_byte_identical)
{
    PostfixEnv env;
    checkRoundTrip(env, env.smtpPort, "public", "postfix-popgate-test/smtpd");
}

BOOST_AUTO_TEST_CASE(fault_addresses_answer_4xx_and_5xx)
{
    PostfixEnv env;
    const FaultCase cases[] = {
        {"RCPT tempfail", &PostfixEnv::failRcpt4xx, 450, "4.7.1"},
        {"RCPT reject", &PostfixEnv::failRcpt5xx, 550, "5.7.1"},
        {"end-of-DATA tempfail", &PostfixEnv::failData4xx, 451, "4.3.0"},
        {"end-of-DATA reject", &PostfixEnv::failData5xx, 554, "5.7.1"},
    };
    for (int port : {env.reinjectPort, env.smtpPort}) {
        for (const auto& c : cases) {
            BOOST_TEST_CONTEXT(c.label << " on port " << port)
            {
                const std::string& rcpt = env.*(c.rcpt);
                try {
                    send(env, port, rcpt, message(rcpt, uniqueLocalPart("fault")));
                    BOOST_ERROR("accepted, expected " << c.code);
                } catch (const SMTPException& e) {
                    BOOST_TEST(e.code() == c.code, e.displayText());
                    BOOST_TEST(e.displayText().find(c.text) != std::string::npos, e.displayText());
                    BOOST_TEST(e.displayText().find("popgate test") != std::string::npos,
                               e.displayText());
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(slow_address_stalls_the_end_of_data)
{
    PostfixEnv env;
    std::string rcpt = env.slowRcpt;
    auto started = std::chrono::steady_clock::now();
    // a client that waits less than the stall times out without a reply...
    BOOST_CHECK_THROW(send(env, env.reinjectPort, rcpt, message(rcpt, uniqueLocalPart("slow")),
                           Poco::Timespan(1, 0)),
                      Poco::TimeoutException);
    BOOST_TEST(msSince(started) < 3000);
    // ...one that waits long enough gets the 250
    started = std::chrono::steady_clock::now();
    send(env, env.reinjectPort, rcpt, message(rcpt, uniqueLocalPart("slow")),
         Poco::Timespan(env.slowSeconds + 10, 0));
    BOOST_TEST(msSince(started) >= env.slowSeconds * 1000 - 500);
}
