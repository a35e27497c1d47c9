// account_test_exit_codes_test - `popgatectl account test NAME [--deep]`
// through the real binary: the exit code for each failing stage as
// popgatectl(8) and plugin/net/conntest.h document them (0 ok, 10 resolve,
// 11 connect, 12 TLS, 13 greeting/CAPA/STLS, 14 authentication, 15 STAT or
// UIDL, 16 QUIT, 17 the MTA with --deep), each produced by a peer on
// loopback (the fake servers of tests/support/, a port held but never
// listening, a name under
// .invalid), on a throwaway SQLite database. No output shows the password.
#define BOOST_TEST_MODULE account_test_exit_codes
#include "tests/support/fake_mailbox_server.h"
#include "tests/support/fake_pop3_server.h"
#include "tests/support/reserved_port.h"
#include "tests/support/smtp_sink.h"
#include "tests/support/testsupport.h"

#include <Poco/Net/ServerSocket.h>
#include <boost/test/unit_test.hpp>
#include <functional>
#include <memory>

using namespace popgate;
using namespace popgate::test;

namespace
{

const std::string kPassword = "exit-code-Secret-77";

/// refused - a loopback port held, never listening: connection refused.
const ReservedPort& refused()
{
    static const ReservedPort port;
    return port;
}

struct Cli {
    TempDir dir;
    std::string conf;
    explicit Cli(int mtaPort)
    {
        conf = dir.write("popgate.conf", "database.path = " + dir.file("popgate.db") +
                                             "\nsecret_key_file = " + dir.file("secret.key") +
                                             "\naccounts_dir = " + dir.file("accounts.d") +
                                             "\nsecrets_dir = " + dir.file("secrets") +
                                             "\nreinject.host = 127.0.0.1\nreinject.port = " +
                                             std::to_string(mtaPort) +
                                             "\npop3.connect_timeout = 5s"
                                             "\npop3.read_timeout = 2s\n");
        const auto r = (*this)({"db", "migrate"});
        BOOST_TEST_REQUIRE(r.status == 0, r.err);
    }
    RunResult operator()(std::vector<std::string> args, const std::string& input = "") const
    {
        args.insert(args.begin(), "--config=" + conf);
        const auto r = run(binary("popgatectl/popgatectl"), args, input);
        BOOST_TEST(r.out.find(kPassword) == std::string::npos, "the password on stdout");
        BOOST_TEST(r.err.find(kPassword) == std::string::npos, "the password on stderr");
        return r;
    }
    void add(const std::string& host, int port, const std::string& security)
    {
        std::vector<std::string> args = {"account", "add", "desk", "--server=" + host,
                                         "--port=" + std::to_string(port), "--user=desk",
                                         "--security=" + security, "--mailbox=desk@example.com",
                                         "--password-stdin"};
        if (security == "none")
            args.push_back("--plaintext-auth=yes");
        const auto r = (*this)(args, kPassword + "\n");
        BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    }
};

const std::string kReady = "+OK fake\r\n";

/// loggedIn - a scripted session up to a successful USER/PASS.
std::vector<Step> loggedIn()
{
    return {send(kReady), expect("CAPA"), send("+OK\r\nUSER\r\n.\r\n"), expect("USER desk"),
            send("+OK\r\n"), expect("PASS " + kPassword), send("+OK\r\n")};
}

std::vector<Step> plus(std::vector<Step> a, const std::vector<Step>& b)
{
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

} // namespace

BOOST_AUTO_TEST_CASE(each_failing_stage_has_its_exit_code)
{
    struct Row {
        const char* label;
        int code;
        const char* verdict; ///< part of the output's last line
        /// the peer: sets host, port and security; returns what to keep alive
        std::function<std::shared_ptr<void>(std::string&, int&, std::string&)> peer;
        bool deep = false;
    };
    const std::vector<Row> rows = {
        {"ok", 0, "Connection successful",
         [](std::string& host, int& port, std::string& security) {
             auto s = std::make_shared<FakeMailboxServer>(std::vector<FakeMessage>{},
                                                          MailboxOptions{"desk", kPassword});
             host = "127.0.0.1", port = s->port(), security = "none";
             return std::shared_ptr<void>(s);
         }},
        {"10 resolve", 10, "RESOLVE",
         [](std::string& host, int& port, std::string& security) {
             host = "no-such-host.invalid", port = 110, security = "none";
             return std::shared_ptr<void>();
         }},
        {"11 connect", 11, "CONNECT",
         [](std::string& host, int& port, std::string& security) {
             host = "127.0.0.1", port = refused().port(), security = "none";
             return std::shared_ptr<void>();
         }},
        {"12 TLS: ssl-tls to a plaintext server", 12, "TLS",
         [](std::string& host, int& port, std::string& security) {
             auto s = std::make_shared<FakeMailboxServer>(std::vector<FakeMessage>{},
                                                          MailboxOptions{"desk", kPassword});
             host = "127.0.0.1", port = s->port(), security = "ssl-tls";
             return std::shared_ptr<void>(s);
         }},
        {"13 greeting -ERR", 13, "GREETING",
         [](std::string& host, int& port, std::string& security) {
             auto s = std::make_shared<FakePop3Server>(
                 std::vector<Step>{send("-ERR [SYS/TEMP] overloaded\r\n")});
             host = "127.0.0.1", port = s->port(), security = "none";
             return std::shared_ptr<void>(s);
         }},
        {"14 password refused", 14, "AUTH",
         [](std::string& host, int& port, std::string& security) {
             auto s = std::make_shared<FakeMailboxServer>(std::vector<FakeMessage>{},
                                                          MailboxOptions{"desk", "other"});
             host = "127.0.0.1", port = s->port(), security = "none";
             return std::shared_ptr<void>(s);
         }},
        {"15 STAT refused", 15, "STAT",
         [](std::string& host, int& port, std::string& security) {
             auto s = std::make_shared<FakePop3Server>(
                 plus(loggedIn(), {expect("STAT"), send("-ERR [SYS/TEMP] mailbox locked\r\n"),
                                   awaitClose()}));
             host = "127.0.0.1", port = s->port(), security = "none";
             return std::shared_ptr<void>(s);
         }},
        {"16 QUIT -ERR", 16, "QUIT",
         [](std::string& host, int& port, std::string& security) {
             auto s = std::make_shared<FakePop3Server>(
                 plus(loggedIn(), {expect("STAT"), send("+OK 0 0\r\n"), expect("UIDL"),
                                   send("+OK\r\n.\r\n"), expect("QUIT"),
                                   send("-ERR [SYS/TEMP] could not update\r\n")}));
             host = "127.0.0.1", port = s->port(), security = "none";
             return std::shared_ptr<void>(s);
         }},
        {"17 --deep, the MTA refuses", 17, "MTA check failed",
         [](std::string& host, int& port, std::string& security) {
             auto s = std::make_shared<FakeMailboxServer>(std::vector<FakeMessage>{},
                                                          MailboxOptions{"desk", kPassword});
             host = "127.0.0.1", port = s->port(), security = "none";
             return std::shared_ptr<void>(s);
         },
         true},
        {"0 --deep, the MTA accepts", 0, "accepts mail for",
         [](std::string& host, int& port, std::string& security) {
             auto s = std::make_shared<FakeMailboxServer>(std::vector<FakeMessage>{},
                                                          MailboxOptions{"desk", kPassword});
             host = "127.0.0.1", port = s->port(), security = "none";
             return std::shared_ptr<void>(s);
         },
         true},
    };
    SmtpSink sink; // the MTA for "--deep, the MTA accepts"
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const bool mtaUp = std::string(row.label).find("MTA accepts") != std::string::npos;
            Cli cli(mtaUp ? sink.port() : refused().port());
            std::string host, security;
            int port = 0;
            const auto keep = row.peer(host, port, security);
            cli.add(host, port, security);
            std::vector<std::string> args = {"account", "test", "desk"};
            if (row.deep)
                args.push_back("--deep");
            const auto r = cli(args);
            BOOST_TEST(r.status == row.code, "exit " << r.status << "\nout:\n"
                                                     << r.out << "err:\n"
                                                     << r.err);
            BOOST_TEST((r.out + r.err).find(row.verdict) != std::string::npos,
                       "'" << row.verdict << "' missing from:\n"
                           << r.out << r.err);
        }
    }
}
