// popgated_sigterm_test - SIGTERM in the middle of a message, through the
// real binary: `popgated --once --log=stderr` fetches three messages from
// the fake POP3 server through a PausingProxy that holds RETR's data back in
// the middle of message 2; the test sends SIGTERM, waits until popgated's
// signal thread has taken it (the signal is no longer pending in
// /proc/PID/status), and lets the data flow. popgated(8): "Finish the
// message in flight, send QUIT, exit." Then nothing is lost and nothing is
// doubled: a second run delivers the rest, every message reaches the MTA
// exactly once. LIST announces 700 KiB per message, so each is a batch of
// its own (the stop is looked at between batches; see tests/README.md).
#define BOOST_TEST_MODULE popgated_sigterm
#include "tests/support/fake_mailbox_server.h"
#include "tests/support/pausing_proxy.h"
#include "tests/support/smtp_sink.h"
#include "tests/support/testsupport.h"

#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>
#include <boost/test/unit_test.hpp>
#include <csignal>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

using namespace popgate;
using namespace popgate::test;

namespace
{

std::string text(int k)
{
    const std::string n = std::to_string(k);
    std::string body;
    for (int i = 0; i < 200; ++i)
        body += "line " + std::to_string(i) + " of message " + n + "\r\n";
    return "From: s" + n + "@example.org\r\nTo: desk@example.com\r\nSubject: sigterm " + n +
           "\r\nMessage-ID: <t" + n + ".sigterm@example.org>\r\n\r\n" + body;
}

int numberOf(const std::string& message)
{
    const auto at = message.find("Subject: sigterm ");
    return at == std::string::npos ? 0 : std::atoi(message.c_str() + at + 17);
}

/// signalPending - whether SIGTERM is still pending for the process (not yet
/// taken by its sigwait thread).
bool signalPending(int pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("ShdPnd:", 0) == 0 || line.rfind("SigPnd:", 0) == 0) {
            const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
            if (mask & (1ull << (SIGTERM - 1)))
                return true;
        }
    return false;
}

struct Setup {
    TempDir dir;
    SmtpSink sink;
    std::string conf;
    Setup()
    {
        conf = dir.write("popgate.conf",
                         "database.path = " + dir.file("popgate.db") +
                             "\nsecret_key_file = " + dir.file("secret.key") +
                             "\nheader_key_file = " + dir.file("header.key") +
                             "\naccounts_dir = " + dir.file("accounts.d") +
                             "\nsecrets_dir = " + dir.file("secrets") +
                             "\nspool_dir = " + dir.file("spool") +
                             "\nreinject.host = 127.0.0.1\nreinject.port = " +
                             std::to_string(sink.port()) + "\npop3.read_timeout = 20s\n");
        const auto r = run(binary("popgatectl/popgatectl"), {"--config=" + conf, "db", "migrate"});
        BOOST_TEST_REQUIRE(r.status == 0, r.err);
    }
    void add(int port) const
    {
        const auto r = run(binary("popgatectl/popgatectl"),
                           {"--config=" + conf, "account", "add", "desk", "--server=127.0.0.1",
                            "--port=" + std::to_string(port), "--user=desk", "--security=none",
                            "--plaintext-auth=yes", "--mailbox=desk@example.com",
                            "--password-stdin"},
                           "secret\n");
        BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(sigterm_mid_message_loses_nothing_and_sends_nothing_twice)
{
    std::vector<FakeMessage> messages;
    for (int k = 1; k <= 3; ++k)
        messages.push_back({wireFor(text(k)), "uid-" + std::to_string(k), 700 * 1024, ""});
    FakeMailboxServer server(messages);
    // Paused after message 2's header: its RETR is half read.
    PausingProxy proxy(server.port(), "Subject: sigterm 2\r\n");
    Setup s;
    s.add(proxy.port());

    handToPopgated(s.dir.path());
    Poco::Pipe outPipe, errPipe;
    Poco::ProcessHandle popgated = Poco::Process::launch(
        binary("plugin/popgated/popgated"), {"--config=" + s.conf, "--once", "--log=stderr"},
        nullptr, &outPipe, &errPipe);
    auto drain = [](Poco::Pipe& pipe) {
        return std::async(std::launch::async, [&pipe] {
            Poco::PipeInputStream in(pipe);
            std::string all;
            Poco::StreamCopier::copyToString(in, all);
            return all;
        });
    };
    auto out = drain(outPipe);
    auto err = drain(errPipe);

    const bool paused = proxy.awaitPaused(std::chrono::seconds(20));
    BOOST_TEST(paused, "popgated reached message 2");
    BOOST_TEST(::kill(popgated.id(), SIGTERM) == 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (signalPending(popgated.id()) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    BOOST_TEST(!signalPending(popgated.id()), "popgated took the signal");
    proxy.release();
    const int status = popgated.wait();
    const std::string log = err.get();
    out.get();
    BOOST_TEST_INFO("popgated stderr:\n" << log);
    BOOST_TEST(status == 0, "popgated exits 0 after SIGTERM");
    BOOST_TEST(server.awaitIdle());
    BOOST_TEST(log.find("stopping") != std::string::npos, "the poll saw the stop");

    std::map<int, int> accepted;
    for (const auto& m : s.sink.accepted())
        ++accepted[numberOf(m.text)];
    BOOST_TEST(accepted[1] == 1);
    BOOST_TEST(accepted[2] == 1, "the message in flight is finished");
    BOOST_TEST(accepted[3] == 0, "nothing after it is handed over");
    BOOST_TEST((server.held() == std::vector<std::string>{"uid-3"}),
               "delivered messages deleted, the rest kept");
    BOOST_TEST(server.sessions().back().quit, "QUIT was sent");

    // The next run delivers the rest; every message once.
    handToPopgated(s.dir.path());
    const RunResult again =
        run(binary("plugin/popgated/popgated"), {"--config=" + s.conf, "--once", "--log=stderr"});
    BOOST_TEST(again.status == 0, again.err);
    accepted.clear();
    for (const auto& m : s.sink.accepted())
        ++accepted[numberOf(m.text)];
    for (int k = 1; k <= 3; ++k)
        BOOST_TEST(accepted[k] == 1, "message " << k << " accepted exactly once");
    BOOST_TEST(server.held().empty());
}
