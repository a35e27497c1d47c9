// popgated_secrets_test - "secrets never logged", through the real binaries:
// an account added with `popgatectl account add --password-stdin`, debug
// logging on, then `popgated --once --log=stderr` against the fake POP3
// server (USER/PASS, so the password crosses the wire) and the SMTP sink of
// tests/support/. Neither popgated's stderr nor the account's debug log may
// hold the password, on a good login and on a refused one; the debug log
// must hold the dialogue, so the check cannot pass by an empty file.
#define BOOST_TEST_MODULE popgated_secrets
#include "tests/support/fake_mailbox_server.h"
#include "tests/support/smtp_sink.h"
#include "tests/support/testsupport.h"

#include <Poco/File.h>
#include <algorithm>
#include <boost/test/unit_test.hpp>

using namespace popgate;
using namespace popgate::test;

namespace
{

const std::string kPassword = "Daemon-Pa55-never-in-logs";

bool has(const std::vector<std::string>& lines, const std::string& line)
{
    return std::find(lines.begin(), lines.end(), line) != lines.end();
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
                             "\ndebug_log_dir = " + dir.file("debug") +
                             "\nreinject.host = 127.0.0.1\nreinject.port = " +
                             std::to_string(sink.port()) + "\npop3.read_timeout = 5s\n");
        BOOST_TEST_REQUIRE(ctl({"db", "migrate"}).status == 0);
    }
    RunResult ctl(std::vector<std::string> args, const std::string& input = "") const
    {
        args.insert(args.begin(), "--config=" + conf);
        return run(binary("popgatectl/popgatectl"), args, input);
    }
    RunResult popgated() const
    {
        handToPopgated(dir.path());
        return run(binary("plugin/popgated/popgated"),
                   {"--config=" + conf, "--once", "--log=stderr"});
    }
    void add(int port, const std::string& password) const
    {
        const auto r = ctl({"account", "add", "desk", "--server=127.0.0.1",
                            "--port=" + std::to_string(port), "--user=desk", "--security=none",
                            "--plaintext-auth=yes", "--auth-mechanism=user",
                            "--mailbox=desk@example.com", "--debug-logging=yes",
                            "--password-stdin"},
                           password + "\n");
        BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(password_absent_from_stderr_and_debug_log)
{
    const std::string message = "From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n";
    for (const bool right : {true, false}) {
        BOOST_TEST_CONTEXT((right ? "login accepted" : "login refused"))
        {
            FakeMailboxServer server({{wireFor(message), "uid-1", -1, ""}},
                                     MailboxOptions{"desk", right ? kPassword : "something else"});
            Setup s;
            s.add(server.port(), kPassword);
            const RunResult r = s.popgated();
            BOOST_TEST(r.status == (right ? 0 : 1), r.err);
            BOOST_TEST(server.awaitIdle());
            BOOST_TEST(has(server.commands(), "PASS " + kPassword),
                       "the password did cross the wire");
            BOOST_TEST(s.sink.accepted().size() == (right ? 1u : 0u));
            BOOST_TEST(r.err.find("account=desk") != std::string::npos, "popgated logged:\n"
                                                                            << r.err);
            BOOST_TEST(r.err.find(kPassword) == std::string::npos, "stderr:\n" << r.err);
            BOOST_TEST(r.out.find(kPassword) == std::string::npos);
            const std::string trace = readFile(s.dir.file("debug/desk.log"));
            BOOST_TEST(trace.find("C: USER desk") != std::string::npos, "debug log:\n" << trace);
            BOOST_TEST(trace.find("C: PASS") != std::string::npos);
            BOOST_TEST(trace.find(kPassword) == std::string::npos, "debug log:\n" << trace);
        }
    }
}
