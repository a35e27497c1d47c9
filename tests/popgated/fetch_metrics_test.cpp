// fetch_metrics_test - popgated's metrics endpoint (metrics_listen, issue [O]
// item 9) scraped over HTTP while the real daemon runs against the real Dovecot
// and Postfix: one account delivers three messages, has one ignored (a
// duplicate Message-ID) and one failed (over its size limit); another account's
// server refuses the connection. The scrape must say exactly that, with the
// delivered octets equal to the ledger's sizes. The port is the kernel's choice
// (127.0.0.1:0), read from popgated's log line: no port is guessed or raced for.
#define BOOST_TEST_MODULE fetch_metrics
#include "tests/popgated/fetch_support.h"
#include "tests/support/reserved_port.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <regex>
#include <signal.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

using Clock = std::chrono::steady_clock;

// scrape - GET /metrics; the body, or "" when the endpoint does not answer 200.
std::string scrape(int port)
{
    try {
        Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
        session.setTimeout(Poco::Timespan(5, 0));
        Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, "/metrics",
                                   Poco::Net::HTTPMessage::HTTP_1_1);
        session.sendRequest(req);
        Poco::Net::HTTPResponse resp;
        std::istream& in = session.receiveResponse(resp);
        std::ostringstream body;
        Poco::StreamCopier::copyStream(in, body);
        if (resp.getStatus() != 200 ||
            resp.getContentType() != "text/plain; version=0.0.4; charset=utf-8")
            return "";
        return body.str();
    } catch (const Poco::Exception&) {
        return "";
    }
}

// sample - the value of the sample line "SERIES VALUE" (series with its labels), or -1.
double sample(const std::string& text, const std::string& series)
{
    const std::string key = "\n" + series + " ";
    const auto at = ("\n" + text).find(key);
    if (at == std::string::npos)
        return -1;
    return std::stod(text.substr(at + key.size() - 1));
}

std::string mid(const std::string& tag)
{
    return "<metrics-" + tag + "." + std::to_string(::getpid()) + "@fetch.test>";
}

} // namespace

BOOST_AUTO_TEST_CASE(scrape_counts_what_the_polls_did)
{
    const auto begun = std::chrono::system_clock::now();
    Servers s;
    EmptyMailboxes mailboxes({s.maildir});
    Gateway gw(s);
    gw.set("metrics_listen", "127.0.0.1:0");
    const std::string to = uniqueAddress("metrics");

    for (const char* tag : {"one", "two", "three"})
        dropMessage(s.maildir, message({"From: a@example.com", "Message-ID: " + mid(tag)},
                                       std::string("body ") + tag + "\r\n"));
    dropMessage(s.maildir, message({"From: a@example.com", "Message-ID: " + mid("one")},
                                   "the same Message-ID again\r\n"));
    dropMessage(s.maildir, message({"From: a@example.com", "Message-ID: " + mid("big")},
                                   std::string(3000, 'x') + "\r\n"));
    gw.addDovecotAccount("good", s.user, to, {"--poll-interval=10s", "--max-message-size=2k"});
    ReservedPort refused;
    gw.addFakeAccount("down", refused.port(), to);
    gw.ctl({"account", "set", "down", "--poll-interval=10s"});

    const std::string logFile = gw.file("daemon.log");
    pid_t pid =
        spawn({binary("plugin/popgated/popgated"), "--config=" + gw.configFile(), "--log=stderr"},
              logFile);
    struct Reap {
        pid_t& pid;
        ~Reap()
        {
            if (pid > 0) {
                ::kill(pid, SIGKILL); // our own child
                waitExit(pid);
            }
        }
    } reap{pid};

    // The port the kernel gave, from the start's log line.
    int port = 0;
    const std::regex listening(R"(metrics: listening on 127\.0\.0\.1:(\d+) \(http://)");
    for (auto until = Clock::now() + std::chrono::seconds(10); port == 0 && Clock::now() < until;
         std::this_thread::sleep_for(std::chrono::milliseconds(50))) {
        std::smatch m;
        const std::string log = readFile(logFile);
        if (std::regex_search(log, m, listening))
            port = std::stoi(m[1]);
    }
    BOOST_TEST_REQUIRE(port > 0, "no metrics line in:\n" << readFile(logFile));

    // Both accounts' first polls (spread over their 10 s interval at the start).
    std::string text;
    const std::string good = "{account=\"good\"}", down = "{account=\"down\"}";
    for (auto until = Clock::now() + std::chrono::seconds(30); Clock::now() < until;
         std::this_thread::sleep_for(std::chrono::milliseconds(200))) {
        text = scrape(port);
        if (sample(text, "popgated_poll_duration_seconds_count" + good) >= 1 &&
            sample(text, "popgated_poll_duration_seconds_count" + down) >= 1)
            break;
    }
    BOOST_TEST_REQUIRE(sample(text, "popgated_poll_duration_seconds_count" + down) >= 1,
                       "scrape:\n"
                           << text << "\nlog:\n"
                           << readFile(logFile));
    BOOST_TEST_REQUIRE(sample(text, "popgated_poll_duration_seconds_count" + good) >= 1,
                       "scrape:\n"
                           << text << "\nlog:\n"
                           << readFile(logFile));
    BOOST_TEST_MESSAGE("scrape:\n" << text);

    BOOST_TEST(sample(text, "popgated_info{version=\"" POPGATE_VERSION "\"}") == 1);
    BOOST_TEST(sample(text, "popgated_accounts") == 2);
    const auto messages = [&](const std::string& account, const char* outcome) {
        return sample(text, "popgated_messages_total{account=\"" + account + "\",outcome=\"" +
                                outcome + "\"}");
    };
    BOOST_TEST(messages("good", "delivered") == 3);
    BOOST_TEST(messages("good", "ignored") == 1);
    BOOST_TEST(messages("good", "deferred") == 0);
    BOOST_TEST(messages("good", "failed") == 1);
    const std::string bytes =
        gw.sql("SELECT sum(m.size) FROM messages m JOIN accounts a ON a.id = m.account_id "
               "WHERE a.name = 'good' AND m.state = 'injected'");
    BOOST_TEST_REQUIRE(std::stod(bytes) > 0);
    BOOST_TEST(sample(text, "popgated_delivered_bytes_total" + good) == std::stod(bytes));
    BOOST_TEST(sample(text, "popgated_consecutive_failures" + good) == 0);
    const double success = sample(text, "popgated_last_success_timestamp_seconds" + good);
    const auto unixSeconds = [](std::chrono::system_clock::time_point t) {
        return static_cast<double>(
            std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count());
    };
    BOOST_TEST(success >= unixSeconds(begun));
    BOOST_TEST(success <= unixSeconds(std::chrono::system_clock::now()));
    BOOST_TEST(sample(text, "popgated_poll_duration_seconds_sum" + good) > 0);

    for (const char* outcome : {"delivered", "ignored", "deferred", "failed"})
        BOOST_TEST(messages("down", outcome) == 0, outcome);
    BOOST_TEST(sample(text, "popgated_last_success_timestamp_seconds" + down) == 0);
    // Every poll of it failed (the back-off puts the second 20 s after the first).
    BOOST_TEST(sample(text, "popgated_consecutive_failures" + down) ==
               sample(text, "popgated_poll_duration_seconds_count" + down));
    BOOST_TEST(sample(text, "popgated_consecutive_failures" + down) >= 1);

    // Served by popgated as its own user, never root.
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("Uid:", 0) == 0)
            BOOST_TEST(std::stoi(line.substr(4)) != 0, line);

    // Stopped, the endpoint goes with it (the exit status is 1: a poll failed).
    ::kill(pid, SIGTERM);
    BOOST_TEST(waitExit(pid) < 128, "stopped by SIGTERM, not killed:\n" << readFile(logFile));
    pid = -1;
    BOOST_TEST(scrape(port).empty(), "the endpoint is gone with popgated");
}
