// conntest_test.cpp - Test Connection: its printed stages, verdict line and
// exit code for each way a connection can go, against the real Dovecot of
// scripts/servers/dovecot.sh, plus a scripted fake for STLS refused, UIDL
// missing, QUIT -ERR and a refused APOP before USER/PASS (one line per try).
// Checks that it never deletes and never prints the secret.
#define BOOST_TEST_MODULE conntest
#include "plugin/net/conntest.h"
#include "tests/support/dovecot_env.h"
#include "tests/support/fake_pop3_server.h"

#include <Poco/DigestEngine.h>
#include <Poco/MD5Engine.h>
#include <Poco/TemporaryFile.h>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <functional>
#include <sstream>

using namespace popgate;
using namespace popgate::test;

namespace
{

ConnectionTestSettings settingsFor(const DovecotEnv& env)
{
    ConnectionTestSettings s;
    s.host = env.host;
    s.port = env.pop3sPort;
    s.security = Security::SslTls;
    s.user = env.user2;
    s.secret = env.password;
    s.caFile = env.ca;
    s.connectTimeout = std::chrono::milliseconds(3000);
    s.readTimeout = std::chrono::milliseconds(3000);
    return s;
}

/// closedPort - a loopback port nobody listens on (bound, then released).
int closedPort()
{
    Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
    int port = probe.address().port();
    probe.close();
    return port;
}

struct Case {
    const char* label;
    std::function<void(ConnectionTestSettings&, const DovecotEnv&)> change;
    int exitCode;
    std::string verdict;            ///< expected start of the last line
    std::vector<std::string> lines; ///< each must appear in the output
};

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

BOOST_AUTO_TEST_CASE(stages_verdicts_and_exit_codes_against_dovecot)
{
    DovecotEnv env;
    clearMaildir(env.maildir2);
    deliver(env.maildir2, "Subject: one\r\n\r\n" + std::string(1500000, 'x') + "\r\n");
    deliver(env.maildir2, "Subject: two\r\n\r\n" + std::string(1900000, 'y') + "\r\n");

    const std::vector<Case> rows = {
        {"ssl-tls, auto",
         [](auto&, auto&) {},
         kTestOk,
         "Connection successful: 2 messages, 3.4 MB",
         {"RESOLVE: 127.0.0.1 -> 127.0.0.1\n", "CONNECT: 127.0.0.1:", "TLS: TLSv1.",
          ", certificate CN=localhost, expires 2040-01-01 00:00:00 UTC\n", "GREETING: +OK Dovecot",
          "CAPA: ", "AUTH: APOP: ok (as popgate2)\n", "STAT: 2 messages, 3.4 MB\n",
          "UIDL: supported (2 ids)\n", "QUIT: ok\n"}},
        {"starttls, login",
         [](auto& s, auto& e) {
             s.security = Security::StartTls;
             s.port = e.port;
             s.mechanism = Pop3Mechanism::Login;
         },
         kTestOk,
         "Connection successful: 2 messages",
         {"TLS: TLSv1.", "AUTH: SASL LOGIN: ok (as popgate2)\n"}},
        {"plain, apop chosen without plaintext",
         [](auto& s, auto& e) {
             s.security = Security::None;
             s.port = e.port;
         },
         kTestOk,
         "Connection successful",
         {"AUTH: APOP: ok (as popgate2)\n"}},
        {"plain, user with plaintext allowed",
         [](auto& s, auto& e) {
             s.security = Security::None;
             s.port = e.port;
             s.mechanism = Pop3Mechanism::User;
             s.allowPlaintextAuth = true;
         },
         kTestOk,
         "Connection successful",
         {"AUTH: USER/PASS: ok (as popgate2)\n"}},
        {"plain, user without plaintext allowed",
         [](auto& s, auto& e) {
             s.security = Security::None;
             s.port = e.port;
             s.mechanism = Pop3Mechanism::User;
         },
         kTestAuth,
         "Connection failed at AUTH: refusing to send the password in clear",
         {}},
        {"wrong password",
         [](auto& s, auto&) { s.secret = "wrong"; },
         kTestAuth,
         "Connection failed at AUTH: -ERR [AUTH] Authentication failed.",
         {"CAPA: ", "AUTH: APOP: refused: -ERR [AUTH] Authentication failed.\n"
                    "AUTH: SASL PLAIN: refused: -ERR [AUTH] Authentication failed.\n"
                    "AUTH: USER/PASS: refused: -ERR [AUTH] Authentication failed.\n"
                    "Connection failed at AUTH"}},
        {"expired certificate",
         [](auto& s, auto& e) { s.port = e.expiredPort; },
         kTestTls,
         "Connection failed at TLS: certificate verify failed: certificate has expired",
         {"CONNECT: "}},
        {"wrong-host certificate",
         [](auto& s, auto& e) { s.port = e.wrongHostPort; },
         kTestTls,
         "Connection failed at TLS: certificate verify failed: IP address mismatch",
         {}},
        {"unknown CA",
         [](auto& s, auto&) { s.caFile.clear(); },
         kTestTls,
         "Connection failed at TLS: certificate verify failed: unable to get local issuer",
         {}},
        {"pin match",
         [](auto& s, auto& e) { s.pinSha256 = e.pin; },
         kTestOk,
         "Connection successful",
         {}},
        {"pin mismatch",
         [](auto& s, auto&) { s.pinSha256 = std::string(64, 'f'); },
         kTestTls,
         "Connection failed at TLS: certificate pin mismatch",
         {}},
        {"malformed pin",
         [](auto& s, auto&) { s.pinSha256 = "xyz"; },
         kTestBadSettings,
         "Connection failed at SETUP: tls pin",
         {}},
        {"closed port",
         [](auto& s, auto&) { s.port = closedPort(); },
         kTestConnect,
         "Connection failed at CONNECT: 127.0.0.1:",
         {"RESOLVE: "}},
        {"unresolvable host",
         [](auto& s, auto&) { s.host = "popgate-test.invalid"; },
         kTestResolve,
         "Connection failed at RESOLVE: cannot resolve",
         {}},
    };
    for (const Case& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            ConnectionTestSettings s = settingsFor(env);
            row.change(s, env);
            std::ostringstream out;
            ConnectionTestResult r = runConnectionTest(s, out);
            const std::string text = out.str();
            BOOST_TEST(r.exitCode == row.exitCode);
            BOOST_TEST(r.verdict.compare(0, row.verdict.size(), row.verdict) == 0, "output:\n"
                                                                                       << text);
            BOOST_TEST(text.size() >= r.verdict.size() + 1);
            BOOST_TEST(text.substr(text.size() - r.verdict.size() - 1) == r.verdict + "\n");
            for (const std::string& line : row.lines)
                BOOST_TEST(text.find(line) != std::string::npos, "missing: " << line
                                                                             << "\noutput:\n"
                                                                             << text);
            BOOST_TEST(text.find(env.password) == std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(test_connection_never_deletes_and_can_trace)
{
    DovecotEnv env;
    clearMaildir(env.maildir2);
    deliver(env.maildir2, "Subject: keep me\r\n\r\nbody\r\n");
    Poco::TemporaryFile dir;
    dir.createDirectories();
    ConnectionTestSettings s = settingsFor(env);
    s.mechanism = Pop3Mechanism::Plain; // the password goes over the wire: the trace hides it
    s.tracePath = dir.path() + "/trace.log";
    for (int i = 0; i < 2; ++i) {
        std::ostringstream out;
        ConnectionTestResult r = runConnectionTest(s, out);
        BOOST_TEST(r.exitCode == kTestOk);
        BOOST_TEST(r.messages == 1); // still there the second time
        BOOST_TEST(r.uidl);
        BOOST_TEST(r.tls.sha256 == env.pin);
    }
    std::string log = slurp(s.tracePath);
    BOOST_TEST(log.find(" C: AUTH PLAIN ********\n") != std::string::npos);
    BOOST_TEST(log.find(" C: STAT\n") != std::string::npos);
    BOOST_TEST(log.find(" C: QUIT\n") != std::string::npos);
    BOOST_TEST(log.find("DELE") == std::string::npos);
    BOOST_TEST(log.find(env.password) == std::string::npos);
    clearMaildir(env.maildir2);
}

BOOST_AUTO_TEST_CASE(session_stages_from_a_scripted_server)
{
    const std::string ready = "+OK fake\r\n";
    const std::string caps = "+OK\r\nUSER\r\nSTLS\r\n.\r\n";
    Poco::MD5Engine md5;
    md5.update(std::string("<1.2@fake>p"));
    const std::string apop = Poco::DigestEngine::digestToHex(md5.digest());
    struct FakeCase {
        const char* label;
        Security security;
        std::vector<Step> script;
        int exitCode;
        std::string verdict;
        std::string lines; ///< must appear in the output; may be empty
    };
    const std::vector<FakeCase> rows = {
        {"STLS refused",
         Security::StartTls,
         {send(ready), expect("CAPA"), send(caps), expect("STLS"), send("-ERR not today\r\n"),
          awaitClose()},
         kTestSession,
         "Connection failed at STLS: -ERR not today",
         ""},
        {"greeting -ERR",
         Security::None,
         {send("-ERR [SYS/TEMP] overloaded\r\n")},
         kTestSession,
         "Connection failed at GREETING: -ERR [SYS/TEMP] overloaded",
         ""},
        {"UIDL missing",
         Security::None,
         {send(ready), expect("CAPA"), send("-ERR\r\n"), expect("USER u"), send("+OK\r\n"),
          expect("PASS p"), send("+OK\r\n"), expect("STAT"), send("+OK 0 0\r\n"), expect("UIDL"),
          send("-ERR unknown command\r\n"), awaitClose()},
         kTestMailbox,
         "Connection failed at UIDL: -ERR unknown command",
         ""},
        {"QUIT -ERR",
         Security::None,
         {send(ready), expect("CAPA"), send("-ERR\r\n"), expect("USER u"), send("+OK\r\n"),
          expect("PASS p"), send("+OK\r\n"), expect("STAT"), send("+OK 0 0\r\n"), expect("UIDL"),
          send("+OK\r\n.\r\n"), expect("QUIT"), send("-ERR [SYS/TEMP] could not update\r\n")},
         kTestQuit,
         "Connection failed at QUIT: -ERR [SYS/TEMP] could not update",
         ""},
        {"stall after greeting",
         Security::None,
         {send(ready), awaitClose()},
         kTestSession,
         "Connection failed at CAPA: no data from server within 300 ms",
         ""},
        {"APOP refused, USER/PASS accepted",
         Security::None,
         {send("+OK fake <1.2@fake>\r\n"), expect("CAPA"), send("+OK\r\nUSER\r\n.\r\n"),
          expect("APOP u " + apop), send("-ERR [AUTH] Bad login\r\n"), expect("USER u"),
          send("+OK\r\n"), expect("PASS p"), send("+OK\r\n"), expect("STAT"), send("+OK 0 0\r\n"),
          expect("UIDL"), send("+OK\r\n.\r\n"), expect("QUIT"), send("+OK\r\n")},
         kTestOk,
         "Connection successful: 0 messages, 0 bytes",
         "AUTH: APOP: refused: -ERR [AUTH] Bad login\nAUTH: USER/PASS: ok (as u)\n"},
    };
    for (const FakeCase& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            FakePop3Server server(row.script);
            ConnectionTestSettings s;
            s.host = "127.0.0.1";
            s.port = server.port();
            s.security = row.security;
            s.user = "u";
            s.secret = "p";
            s.allowPlaintextAuth = true;
            s.readTimeout = std::chrono::milliseconds(300);
            std::ostringstream out;
            ConnectionTestResult r = runConnectionTest(s, out);
            BOOST_TEST(r.exitCode == row.exitCode);
            BOOST_TEST(r.verdict == row.verdict);
            BOOST_TEST(out.str().find(row.lines) != std::string::npos, "output:\n" << out.str());
            BOOST_TEST(server.finish() == "");
        }
    }
}

BOOST_AUTO_TEST_CASE(sizes_read_like_a_human_would)
{
    const std::vector<std::pair<std::int64_t, std::string>> rows = {
        {0, "0 bytes"},     {999, "999 bytes"},  {1000, "1.0 kB"},
        {12345, "12.3 kB"}, {3400000, "3.4 MB"}, {1200000000, "1.2 GB"},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.second)
        {
            BOOST_TEST(formatSize(row.first) == row.second);
        }
    }
}
