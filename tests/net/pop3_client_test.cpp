// pop3_client_test.cpp - Pop3Client against a scripted fake server for what
// Dovecot will not do: missing or refused STLS, stalls, drops, lying sizes,
// bare LF, messages cut short at an unstuffed ".", lines starting with a lone
// ".", long UIDLs, overlong and 8-bit lines (a message with a line over 1 MiB
// in a batch), RFC 2449 codes, pipelining, the fallback from one login
// mechanism to the next (with a reconnect through a relay).
// Also the pure mechanism choice. Real-server cases: pop3_dovecot_test.cpp.
#define BOOST_TEST_MODULE pop3_client
#include "plugin/net/pop3_client.h"
#include "tests/support/fake_pop3_server.h"

#include <Poco/DigestEngine.h>
#include <Poco/MD5Engine.h>
#include <Poco/SHA2Engine.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <sstream>

using namespace popgate;
using namespace popgate::test;
using Steps = std::vector<Step>;

namespace
{

Pop3Settings settingsFor(int port, Security security = Security::None)
{
    Pop3Settings s;
    s.host = "127.0.0.1";
    s.port = port;
    s.security = security;
    s.allowPlaintextAuth = true;
    s.connectTimeout = std::chrono::milliseconds(2000);
    s.readTimeout = std::chrono::milliseconds(300);
    return s;
}

Steps operator+(Steps a, const Steps& b)
{
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

const std::string kCapa = "+OK\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n";
const std::string kCapaPipelining = "+OK\r\nUSER\r\nUIDL\r\nPIPELINING\r\n.\r\n";

Steps greeting(const std::string& capa = kCapa)
{
    return {send("+OK fake ready\r\n"), expect("CAPA"), send(capa)};
}

Steps loggedIn(const std::string& capa = kCapa)
{
    return greeting(capa) +
           Steps{expect("USER u"), send("+OK\r\n"), expect("PASS p"), send("+OK\r\n")};
}

void login(Pop3Client& c)
{
    c.open();
    c.authenticate("u", "p", Pop3Mechanism::User);
}

} // namespace

BOOST_AUTO_TEST_CASE(starttls_without_stls_offered_aborts_before_any_credentials)
{
    FakePop3Server server(greeting() + Steps{awaitClose()});
    Pop3Client client(settingsFor(server.port(), Security::StartTls));
    try {
        client.open();
        BOOST_FAIL("open() must throw");
    } catch (const Pop3TlsError& e) {
        BOOST_TEST(e.stage() == Pop3Stage::StartTls);
        BOOST_TEST(std::string(e.what()).find("does not offer STLS") != std::string::npos);
    }
    BOOST_TEST(server.finish() == "");
    BOOST_TEST(server.received() == std::vector<std::string>{"CAPA"});
}

BOOST_AUTO_TEST_CASE(starttls_refused_aborts_never_plaintext)
{
    FakePop3Server server(
        greeting("+OK\r\nSTLS\r\nUSER\r\n.\r\n") +
        Steps{expect("STLS"), send("-ERR [SYS/TEMP] TLS not available\r\n"), awaitClose()});
    Pop3Client client(settingsFor(server.port(), Security::StartTls));
    try {
        client.open();
        BOOST_FAIL("open() must throw");
    } catch (const Pop3TlsError& e) {
        BOOST_TEST(e.stage() == Pop3Stage::StartTls);
        BOOST_TEST(e.serverText() == "-ERR [SYS/TEMP] TLS not available");
    }
    BOOST_TEST(server.finish() == "");
    BOOST_TEST(server.received() == (std::vector<std::string>{"CAPA", "STLS"}));
    BOOST_CHECK_THROW(client.authenticate("u", "p"), Pop3Error);
}

BOOST_AUTO_TEST_CASE(plaintext_password_refused_without_the_flag)
{
    FakePop3Server server(greeting() + Steps{awaitClose()});
    Pop3Settings s = settingsFor(server.port());
    s.allowPlaintextAuth = false;
    {
        Pop3Client client(s);
        client.open();
        BOOST_CHECK_THROW(client.authenticate("u", "p", Pop3Mechanism::User), Pop3AuthError);
        BOOST_CHECK_THROW(client.authenticate("u", "p", Pop3Mechanism::Auto), Pop3AuthError);
        BOOST_CHECK_THROW(client.authSasl("XOAUTH2", std::string("token")), Pop3AuthError);
    } // closed here: the server sees the hang-up
    BOOST_TEST(server.finish() == "");
    BOOST_TEST(server.received() == std::vector<std::string>{"CAPA"});
}

namespace
{

struct BrokenCase {
    const char* label;
    Steps script;
    std::function<void(Pop3Client&)> action;
    Pop3ErrorKind kind;
    Pop3Stage stage;
    std::string inWhat;
    std::string code;
};

std::string retr(Pop3Client& c, int n, std::int64_t expected = -1)
{
    std::ostringstream out;
    c.retrieve(n, out, expected);
    return out.str();
}

const std::string kLong(9000, 'a');

std::vector<BrokenCase> brokenCases()
{
    using K = Pop3ErrorKind;
    using S = Pop3Stage;
    auto open = [](Pop3Client& c) { c.open(); };
    return {
        {"stall at greeting", {awaitClose()}, open, K::Timeout, S::Greeting, "no data", ""},
        {"garbage greeting",
         {send("HTTP/1.1 400 Bad Request\r\n"), awaitClose()},
         open,
         K::Protocol,
         S::Greeting,
         "unexpected reply: HTTP/1.1 400",
         ""},
        {"overlong greeting",
         {send("+OK " + kLong + "\r\n"), awaitClose()},
         open,
         K::Protocol,
         S::Greeting,
         "longer than 8192 bytes",
         ""},
        {"greeting -ERR [SYS/TEMP]",
         {send("-ERR [SYS/TEMP] too busy\r\n")},
         open,
         K::ServerError,
         S::Greeting,
         "-ERR [SYS/TEMP] too busy",
         "SYS/TEMP"},
        {"[IN-USE] on PASS",
         greeting() + Steps{expect("USER u"), send("+OK\r\n"), expect("PASS p"),
                            send("-ERR [IN-USE] Mailbox locked by another session\r\n")},
         login, K::ServerError, S::Auth, "PASS: server said: -ERR [IN-USE] Mailbox locked",
         "IN-USE"},
        {"[LOGIN-DELAY] on PASS",
         greeting() + Steps{expect("USER u"), send("+OK\r\n"), expect("PASS p"),
                            send("-ERR [LOGIN-DELAY] wait 15 minutes\r\n")},
         login, K::ServerError, S::Auth, "[LOGIN-DELAY] wait", "LOGIN-DELAY"},
        {"[AUTH] with 8-bit and CR in the text",
         greeting() + Steps{expect("USER u"), send("+OK\r\n"), expect("PASS p"),
                            send("-ERR [AUTH] \xC3\xA9"
                                 "chec\rx\r\n")},
         login, K::Auth, S::Auth,
         "-ERR [AUTH] \\xC3\\xA9"
         "chec\\x0Dx",
         "AUTH"},
        {"drop mid-RETR",
         loggedIn() + Steps{expect("RETR 1"), send("+OK 100 octets\r\nSubject: x\r\n\r\npartial")},
         [](Pop3Client& c) {
             login(c);
             retr(c, 1);
         },
         K::Network, S::Retr, "RETR 1: connection closed by server", ""},
        {"stall mid-RETR",
         loggedIn() + Steps{expect("RETR 1"), send("+OK\r\nSubject: x\r\n"), awaitClose()},
         [](Pop3Client& c) {
             login(c);
             retr(c, 1);
         },
         K::Timeout, S::Retr, "RETR 1: no data", ""},
        {"RETR cut short at an unstuffed dot",
         loggedIn() + Steps{expect("LIST 1"), send("+OK 1 500\r\n"), expect("RETR 1"),
                            send("+OK\r\nshort\r\n.\r\nrest of it\r\n.\r\n"), expect("UIDL 1")},
         [](Pop3Client& c) {
             login(c);
             retr(c, 1, c.list(1).octets);
         },
         K::Protocol, S::Retr,
         "UIDL 1: RETR 1 delivered 7 octets, LIST said 500; the stream lost step", ""},
        {"data line over 1 MiB",
         loggedIn() + Steps{expect("RETR 1"),
                            send("+OK\r\n" + std::string(kMaxDataLine + 10, 'x') + "\r\n.\r\n")},
         [](Pop3Client& c) {
             login(c);
             retr(c, 1);
         },
         K::Protocol, S::Retr, "longer than 1048576 bytes", ""},
        {"8-bit UID", loggedIn() + Steps{expect("UIDL"), send("+OK\r\n1 caf\xC3\xA9\r\n.\r\n")},
         [](Pop3Client& c) {
             login(c);
             c.uidl();
         },
         K::Protocol, S::Uidl, "malformed UIDL line", ""},
        {"UIDL line over 64 KiB",
         loggedIn() + Steps{expect("UIDL"),
                            send("+OK\r\n1 short\r\n2 " + std::string(70000, 'u') + "\r\n.\r\n")},
         [](Pop3Client& c) {
             login(c);
             c.uidl();
         },
         K::Protocol, S::Uidl, "UIDL: the UIDL line of message 2 is longer than the 65536-byte cap",
         ""},
        {"STAT without numbers", loggedIn() + Steps{expect("STAT"), send("+OK lots\r\n")},
         [](Pop3Client& c) {
             login(c);
             c.stat();
         },
         K::Protocol, S::Stat, "malformed STAT", ""},
        {"DELE -ERR", loggedIn() + Steps{expect("DELE 9"), send("-ERR no such message\r\n")},
         [](Pop3Client& c) {
             login(c);
             c.dele(9);
         },
         K::ServerError, S::Dele, "DELE 9: server said: -ERR no such message", ""},
    };
}

} // namespace

BOOST_AUTO_TEST_CASE(broken_servers_yield_typed_errors)
{
    for (const BrokenCase& row : brokenCases()) {
        BOOST_TEST_CONTEXT(row.label)
        {
            FakePop3Server server(row.script);
            auto started = std::chrono::steady_clock::now();
            {
                Pop3Client client(settingsFor(server.port()));
                try {
                    row.action(client);
                    BOOST_ERROR("no exception");
                } catch (const Pop3Error& e) {
                    BOOST_TEST(pop3ErrorKindName(e.kind()) == pop3ErrorKindName(row.kind));
                    BOOST_TEST(pop3StageName(e.stage()) == pop3StageName(row.stage));
                    BOOST_TEST(std::string(e.what()).find(row.inWhat) != std::string::npos,
                               "what() = " << e.what());
                    BOOST_TEST(e.responseCode() == row.code);
                    BOOST_TEST(std::string(e.what()).find('\n') == std::string::npos);
                }
            }
            server.finish();
            auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - started);
            BOOST_TEST(took.count() < 3000);
        }
    }
}

BOOST_AUTO_TEST_CASE(session_is_unusable_after_a_protocol_error)
{
    FakePop3Server server(loggedIn() + Steps{expect("STAT"), send("+OK lots\r\n"), awaitClose()});
    Pop3Client client(settingsFor(server.port()));
    login(client);
    BOOST_CHECK_THROW(client.stat(), Pop3ProtocolError);
    try {
        client.noop();
        BOOST_FAIL("noop() must throw");
    } catch (const Pop3NetworkError& e) {
        BOOST_TEST(std::string(e.what()).find("unusable") != std::string::npos);
    }
    BOOST_TEST(server.finish() == "");
}

BOOST_AUTO_TEST_CASE(retr_unstuffs_dots_keeps_8bit_and_makes_bare_lf_crlf)
{
    const std::string wire = "Subject: caf\xC3\xA9\r\n\r\n..leading dot\r\n...\r\n..\r\n"
                             "bare lf\n\xFF\x01 binary\r\n";
    const std::string body = "Subject: caf\xC3\xA9\r\n\r\n.leading dot\r\n..\r\n.\r\n"
                             "bare lf\r\n\xFF\x01 binary\r\n";
    FakePop3Server server(loggedIn() + Steps{expect("RETR 1"), send("+OK\r\n" + wire + ".\r\n"),
                                             expect("TOP 1 0"),
                                             send("+OK\r\nSubject: x\r\n\r\n.\r\n"), expect("QUIT"),
                                             send("+OK bye\r\n")});
    Pop3Client client(settingsFor(server.port()));
    login(client);
    std::ostringstream out;
    BOOST_TEST(client.retrieve(1, out, static_cast<std::int64_t>(body.size())) ==
               static_cast<std::int64_t>(body.size()));
    BOOST_TEST(out.str() == body);
    std::ostringstream head;
    client.top(1, 0, head);
    BOOST_TEST(head.str() == "Subject: x\r\n\r\n");
    client.quit();
    BOOST_TEST(server.finish() == "");
}

BOOST_AUTO_TEST_CASE(a_line_starting_with_a_lone_dot_loses_the_dot)
{
    // RFC 1939's receiver rule, leniently: a line that starts with "." and is
    // not the end mark loses that dot even when the server forgot to stuff it
    // (".bad", ". "); the message and the session go on.
    const std::string wire = "Subject: x\r\n\r\n.bad\r\n. \r\n.\t\r\n..ok\r\nend\r\n";
    const std::string body = "Subject: x\r\n\r\nbad\r\n \r\n\t\r\n.ok\r\nend\r\n";
    FakePop3Server server(loggedIn(kCapaPipelining) +
                          Steps{expect("RETR 1"), send("+OK\r\n" + wire + ".\r\n"),
                                expect("RETR 1"), expect("RETR 2"),
                                send("+OK\r\n" + wire + ".\r\n+OK\r\n.lone\r\n.\r\n"),
                                expect("TOP 1 0"), send("+OK\r\n.Subject: y\r\n\r\n.\r\n"),
                                expect("QUIT"), send("+OK\r\n")});
    const auto size = static_cast<std::int64_t>(body.size());
    Pop3Client client(settingsFor(server.port()));
    login(client);
    std::ostringstream out;
    BOOST_TEST(client.retrieve(1, out, size) == size);
    BOOST_TEST(out.str() == body);
    std::map<int, std::ostringstream> sinks;
    auto replies = client.retrieveMany({{1, size, "u1"}, {2, 6, "u2"}},
                                       [&](int n) -> std::ostream& { return sinks[n]; });
    BOOST_TEST_REQUIRE(replies.size() == 2u);
    BOOST_TEST((replies[0].ok && replies[1].ok));
    BOOST_TEST((!replies[0].malformed && !replies[1].malformed));
    BOOST_TEST(sinks[1].str() == body);
    BOOST_TEST(sinks[2].str() == "lone\r\n");
    std::ostringstream head;
    client.top(1, 0, head);
    BOOST_TEST(head.str() == "Subject: y\r\n\r\n");
    client.quit();
    BOOST_TEST(server.finish() == "");
}

BOOST_AUTO_TEST_CASE(pipelining_advertised_sends_commands_together)
{
    FakePop3Server server(loggedIn(kCapaPipelining) +
                          Steps{// all three arrive before any reply is sent
                                expect("RETR 1"), expect("RETR 2"), expect("RETR 3"),
                                send("+OK\r\none\r\n.\r\n-ERR gone\r\n+OK\r\nthree\r\n.\r\n"),
                                // LIST said 99 for message 3: the step check, after the window
                                expect("UIDL 3"), send("+OK 3 uid-3\r\n"), expect("DELE 1"),
                                expect("DELE 3"), send("+OK\r\n+OK\r\n"), expect("QUIT"),
                                send("+OK\r\n")});
    Pop3Client client(settingsFor(server.port()));
    login(client);
    BOOST_TEST(client.pipelining());
    std::map<int, std::ostringstream> sinks;
    auto replies = client.retrieveMany({{1, 5, "uid-1"}, {2, -1, "uid-2"}, {3, 99, "uid-3"}},
                                       [&](int n) -> std::ostream& { return sinks[n]; });
    BOOST_TEST_REQUIRE(replies.size() == 3u);
    BOOST_TEST(replies[0].ok);
    BOOST_TEST(!replies[0].sizeDiffers());
    BOOST_TEST(sinks[1].str() == "one\r\n");
    BOOST_TEST(!replies[1].ok);
    BOOST_TEST(replies[1].problem == "-ERR gone");
    BOOST_TEST(replies[2].ok); // LIST said 99: advisory, the stream was in step
    BOOST_TEST(replies[2].sizeDiffers());
    BOOST_TEST(replies[2].listed == 99);
    BOOST_TEST(replies[2].octets == 7);
    BOOST_TEST(sinks[3].str() == "three\r\n");
    auto deleted = client.deleteMany({1, 3});
    BOOST_TEST(deleted.size() == 2u);
    BOOST_TEST((deleted[0].ok && deleted[1].ok));
    client.quit();
    BOOST_TEST(server.finish() == "");
}

BOOST_AUTO_TEST_CASE(without_pipelining_each_command_waits_for_its_reply)
{
    FakePop3Server server(loggedIn() +
                          Steps{expect("RETR 1"), nothingPending(), send("+OK\r\none\r\n.\r\n"),
                                expect("RETR 2"), nothingPending(), send("+OK\r\ntwo\r\n.\r\n"),
                                expect("DELE 1"), nothingPending(), send("+OK\r\n"),
                                expect("DELE 2"), nothingPending(), send("-ERR locked\r\n"),
                                expect("QUIT"), send("+OK\r\n")});
    Pop3Client client(settingsFor(server.port()));
    login(client);
    BOOST_TEST(!client.pipelining());
    std::map<int, std::ostringstream> sinks;
    auto replies = client.retrieveMany({{1, 5, "a"}, {2, 5, "b"}},
                                       [&](int n) -> std::ostream& { return sinks[n]; });
    BOOST_TEST((replies[0].ok && replies[1].ok));
    BOOST_TEST(sinks[2].str() == "two\r\n");
    auto deleted = client.deleteMany({1, 2});
    BOOST_TEST(deleted[0].ok);
    BOOST_TEST(!deleted[1].ok);
    client.quit();
    BOOST_TEST(server.finish() == "");
}

BOOST_AUTO_TEST_CASE(sasl_plain_login_and_generic_hook_on_the_wire)
{
    const std::string capa = "+OK\r\nSASL PLAIN LOGIN XOAUTH2\r\n.\r\n";
    FakePop3Server server(greeting(capa) +
                          Steps{expect("AUTH PLAIN AHUAcA=="), send("-ERR [AUTH] no\r\n"),
                                expect("AUTH LOGIN"), send("+ VXNlcm5hbWU6\r\n"), expect("dQ=="),
                                send("+ UGFzc3dvcmQ6\r\n"), expect("cA=="), send("+OK welcome\r\n"),
                                expect("AUTH XOAUTH2 dG9rZW4="),
                                send("+ eyJzdGF0dXMiOiI0MDEifQ==\r\n"), expect(""),
                                send("-ERR [AUTH] invalid token\r\n"), awaitClose()});
    Pop3Client client(settingsFor(server.port()));
    client.open();
    BOOST_CHECK_THROW(client.authenticate("u", "p", Pop3Mechanism::Plain), Pop3AuthError);
    client.authenticate("u", "p", Pop3Mechanism::Login);
    BOOST_TEST(client.usedMechanism() == Pop3Mechanism::Login);
    std::string seen;
    try {
        client.authSasl("XOAUTH2", std::string("token"), [&](const std::string& challenge) {
            seen = challenge;
            return std::string();
        });
        BOOST_FAIL("must throw");
    } catch (const Pop3AuthError& e) {
        BOOST_TEST(e.responseCode() == "AUTH");
        BOOST_TEST(e.command() == "AUTH XOAUTH2");
    }
    BOOST_TEST(seen == "{\"status\":\"401\"}");
}

namespace
{

struct MechanismCase {
    const char* label;
    Pop3Mechanism wanted;
    std::vector<std::string> capa; ///< empty: CAPA refused
    bool apop;
    bool tls;
    bool plaintextAllowed;
    std::string expected; ///< mechanism names in order, or "error"
};

} // namespace

BOOST_AUTO_TEST_CASE(mechanism_choice)
{
    const std::vector<std::string> all = {"USER", "SASL PLAIN LOGIN"};
    const std::vector<std::string> userOnly = {"USER"};
    const std::vector<std::string> loginOnly = {"SASL LOGIN"};
    const std::vector<std::string> saslOnly = {"SASL PLAIN"};
    const std::vector<std::string> loginFirst = {"USER", "SASL LOGIN XOAUTH2 PLAIN"};
    const std::vector<std::string> loginAndUser = {"SASL LOGIN", "USER"};
    const std::vector<MechanismCase> rows = {
        // One SASL mechanism only (PLAIN, else LOGIN): at most three tries.
        {"auto over TLS: APOP, PLAIN, USER", Pop3Mechanism::Auto, all, true, true, false,
         "apop plain user"},
        {"auto over TLS without APOP", Pop3Mechanism::Auto, all, false, true, false, "plain user"},
        {"auto over TLS, PLAIN listed after LOGIN", Pop3Mechanism::Auto, loginFirst, true, true,
         false, "apop plain user"},
        {"auto over TLS, only LOGIN", Pop3Mechanism::Auto, loginOnly, false, true, false, "login"},
        {"auto over TLS, LOGIN and USER", Pop3Mechanism::Auto, loginAndUser, true, true, false,
         "apop login user"},
        {"auto over TLS, no SASL", Pop3Mechanism::Auto, userOnly, true, true, false, "apop user"},
        {"auto over TLS, USER only", Pop3Mechanism::Auto, userOnly, false, true, false, "user"},
        {"auto over TLS, no CAPA: USER", Pop3Mechanism::Auto, {}, false, true, false, "user"},
        {"auto over TLS, CAPA without USER", Pop3Mechanism::Auto, saslOnly, false, true, false,
         "plain"},
        {"auto in clear: APOP only", Pop3Mechanism::Auto, all, true, false, false, "apop"},
        {"auto in clear without APOP refused", Pop3Mechanism::Auto, all, false, false, false,
         "error"},
        {"auto in clear, allowed", Pop3Mechanism::Auto, all, true, false, true, "apop plain user"},
        {"auto over TLS, nothing offered",
         Pop3Mechanism::Auto,
         {"TOP"},
         false,
         true,
         false,
         "error"},
        {"user in clear refused", Pop3Mechanism::User, all, true, false, false, "error"},
        {"plain in clear refused", Pop3Mechanism::Plain, all, true, false, false, "error"},
        {"apop without timestamp", Pop3Mechanism::Apop, all, false, true, false, "error"},
        {"apop in clear is fine", Pop3Mechanism::Apop, all, true, false, false, "apop"},
        {"plain not offered", Pop3Mechanism::Plain, userOnly, false, true, false, "error"},
        {"login offered", Pop3Mechanism::Login, loginOnly, false, true, false, "login"},
        {"user over TLS", Pop3Mechanism::User, all, true, true, false, "user"},
    };
    for (const MechanismCase& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Pop3Capabilities caps;
            caps.known = !row.capa.empty();
            caps.lines = row.capa;
            std::string got;
            try {
                for (Pop3Mechanism m :
                     chooseMechanisms(row.wanted, caps, row.apop, row.tls, row.plaintextAllowed))
                    got += (got.empty() ? "" : " ") + pop3MechanismName(m);
            } catch (const Pop3AuthError&) {
                got = "error";
            }
            BOOST_TEST(got == row.expected);
        }
    }
}

// --- LIST sizes are advisory; bare LF; the step check ----------------------

namespace
{

/// wireSize - what a message of these CRLF lines is on the wire after RETR.
std::int64_t octetsOf(const std::string& message)
{
    return static_cast<std::int64_t>(message.size());
}

struct SizeCase {
    const char* label;
    bool pipelined;
    std::int64_t listed; ///< what LIST says of message 2 ("two\r\nbody\r\n", 11 octets)
};

} // namespace

BOOST_AUTO_TEST_CASE(list_sizes_are_advisory_when_the_stream_stays_in_step)
{
    const std::string one = "one\r\n";
    const std::string two = "two\r\nbody\r\n";
    const std::string three = "three\r\n";
    const std::vector<SizeCase> rows = {
        {"LIST half, one at a time", false, octetsOf(two) / 2},
        {"LIST ten times, one at a time", false, octetsOf(two) * 10},
        {"LIST half, pipelined", true, octetsOf(two) / 2},
        {"LIST ten times, pipelined", true, octetsOf(two) * 10},
    };
    for (const SizeCase& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Steps script;
            if (row.pipelined)
                script =
                    loggedIn(kCapaPipelining) + Steps{expect("RETR 1"),
                                                      expect("RETR 2"),
                                                      expect("RETR 3"),
                                                      send("+OK\r\n" + one + ".\r\n+OK\r\n" + two +
                                                           ".\r\n+OK\r\n" + three + ".\r\n"),
                                                      expect("UIDL 2"),
                                                      nothingPending(),
                                                      send("+OK 2 uid-2\r\n")};
            else
                script =
                    loggedIn() + Steps{expect("RETR 1"), send("+OK\r\n" + one + ".\r\n"),
                                       expect("RETR 2"), send("+OK\r\n" + two + ".\r\n"),
                                       // checked before RETR 3 is sent
                                       expect("UIDL 2"), nothingPending(), send("+OK 2 uid-2\r\n"),
                                       expect("RETR 3"), send("+OK\r\n" + three + ".\r\n")};
            script = script + Steps{expect("QUIT"), send("+OK\r\n")};
            FakePop3Server server(script);
            Pop3Client client(settingsFor(server.port()));
            login(client);
            std::map<int, std::ostringstream> sinks;
            std::vector<int> done;
            auto replies = client.retrieveMany(
                {{1, octetsOf(one), "uid-1"}, {2, row.listed, "uid-2"}, {3, -1, "uid-3"}},
                [&](int n) -> std::ostream& { return sinks[n]; },
                [&](const Pop3BatchReply& r) { done.push_back(r.number); });
            BOOST_TEST_REQUIRE(replies.size() == 3u);
            BOOST_TEST((replies[0].ok && replies[1].ok && replies[2].ok));
            BOOST_TEST(!replies[0].sizeDiffers());
            BOOST_TEST(replies[1].sizeDiffers());
            BOOST_TEST(replies[1].listed == row.listed);
            BOOST_TEST(replies[1].octets == octetsOf(two));
            BOOST_TEST(!replies[2].sizeDiffers()); // LIST unknown: nothing to differ from
            BOOST_TEST(sinks[2].str() == two);
            BOOST_TEST(sinks[3].str() == three);
            BOOST_TEST((done == std::vector<int>{1, 2, 3}));
            client.quit();
            BOOST_TEST(server.finish() == "");
        }
    }
}

BOOST_AUTO_TEST_CASE(the_usual_two_extra_octets_need_no_check)
{
    // Dovecot adds the CRLF a stored message lacks: LIST + 2 is not a lie.
    FakePop3Server server(loggedIn() + Steps{expect("RETR 1"), send("+OK\r\nno end\r\n.\r\n"),
                                             expect("QUIT"), send("+OK\r\n")});
    Pop3Client client(settingsFor(server.port()));
    login(client);
    std::ostringstream sink;
    auto replies = client.retrieveMany({{1, 6, "u1"}}, [&](int) -> std::ostream& { return sink; });
    BOOST_TEST(replies.at(0).ok);
    BOOST_TEST(!replies.at(0).sizeDiffers());
    client.quit();
    BOOST_TEST(server.finish() == "");
}

BOOST_AUTO_TEST_CASE(bare_lf_becomes_crlf_and_dot_lf_ends_the_message)
{
    // A server that sends LF only, its end mark too; the next reply is in step.
    const std::string wire = "Subject: lf\n\nline one\nline two\r\n..dot\n\n.\n";
    const std::string crlf = "Subject: lf\r\n\r\nline one\r\nline two\r\n.dot\r\n\r\n";
    FakePop3Server server(loggedIn(kCapaPipelining) +
                          Steps{expect("RETR 1"), expect("RETR 2"),
                                send("+OK\n" + wire + "+OK\r\nnext\r\n.\r\n"), expect("TOP 1 0"),
                                send("+OK\nSubject: lf\n\n.\n"), expect("QUIT"), send("+OK\r\n")});
    Pop3Client client(settingsFor(server.port()));
    login(client);
    std::map<int, std::ostringstream> sinks;
    auto replies = client.retrieveMany({{1, octetsOf(crlf), "u1"}, {2, 6, "u2"}},
                                       [&](int n) -> std::ostream& { return sinks[n]; });
    BOOST_TEST_REQUIRE(replies.size() == 2u);
    BOOST_TEST((replies[0].ok && replies[1].ok));
    BOOST_TEST(sinks[1].str() == crlf);
    BOOST_TEST(replies[0].octets == octetsOf(crlf));
    BOOST_TEST(sinks[2].str() == "next\r\n");
    std::ostringstream head;
    client.top(1, 0, head);
    BOOST_TEST(head.str() == "Subject: lf\r\n\r\n");
    for (const std::string& text : {sinks[1].str(), head.str()})
        for (std::size_t i = 0; i < text.size(); ++i)
            if (text[i] == '\n')
                BOOST_TEST((i > 0 && text[i - 1] == '\r'), "bare LF at " << i);
    client.quit();
    BOOST_TEST(server.finish() == "");
}

namespace
{

struct CutCase {
    const char* label;
    bool pipelined;
    std::string second;   ///< what the server sends for RETR 2 (status line included)
    std::int64_t listed2; ///< what LIST said of message 2
    std::string last;     ///< the last line the client sends
    int suspect;
    std::vector<int> done; ///< numbers told to done() before the throw
    std::string inWhat;
};

} // namespace

BOOST_AUTO_TEST_CASE(a_message_cut_short_at_an_unstuffed_dot_is_never_good)
{
    // Message 2 holds a lone "." line: the server did not stuff it, so RETR 2
    // seems to end there and the rest of it ("+OK" lines, more body, its real
    // end mark) is read as what follows.
    const std::string cut = "+OK\r\ntwo\r\n.\r\n+OK quoted reply\r\n+OK 2 uid-x\r\nrest of two\r\n"
                            ".\r\n";
    const std::string cutPlain = "+OK\r\ntwo\r\n.\r\nrest of two\r\n.\r\n";
    const std::string lying = "+OK\r\ntwo\r\n.\r\n+OK 2 uid-2\r\n.\r\n";
    const std::vector<CutCase> rows = {
        {"one at a time, +OK lines follow the dot",
         false,
         cut,
         70,
         "UIDL 2",
         2,
         {1, 2},
         "UIDL 2: RETR 2 delivered 5 octets, LIST said 70; the stream lost step: UIDL 2 was not "
         "answered with \"+OK 2 uid-2\": +OK quoted reply"},
        {"pipelined, +OK lines follow the dot",
         true,
         cut,
         70,
         "UIDL 2",
         2,
         {1, 2, 3},
         "UIDL 2: RETR 2 delivered 5 octets, LIST said 70; the stream lost step"},
        {"pipelined, body follows the dot",
         true,
         cutPlain,
         70,
         "RETR 3",
         2,
         {1, 2},
         "RETR 3: the stream lost step after RETR 2 (its size differed from LIST): the reply is "
         "neither +OK nor -ERR: rest of two"},
        {"one at a time, LIST agrees with the cut: garbage for RETR 3",
         false,
         cutPlain,
         5,
         "RETR 3",
         3,
         {1, 2},
         "RETR 3: the stream lost step: the reply is neither +OK nor -ERR: rest of two"},
        {"one at a time, the rest mimics the check for another uid",
         false,
         lying,
         70,
         "UIDL 2",
         2,
         {1, 2},
         "was not answered with \"+OK 2 uid-2x\""},
    };
    for (const CutCase& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const std::string uid2 = row.second == lying ? "uid-2x" : "uid-2";
            Steps script;
            if (row.pipelined)
                script = loggedIn(kCapaPipelining) +
                         Steps{expect("RETR 1"), expect("RETR 2"), expect("RETR 3"),
                               send("+OK\r\none\r\n.\r\n" + row.second + "+OK\r\nthree\r\n.\r\n")};
            else
                script = loggedIn() + Steps{expect("RETR 1"), send("+OK\r\none\r\n.\r\n"),
                                            expect("RETR 2"),
                                            send(row.second + "+OK\r\nthree\r\n.\r\n")};
            if (!row.pipelined || row.last != "RETR 3")
                script.push_back(expect(row.last));
            script.push_back(awaitClose()); // no QUIT: the session is dropped
            FakePop3Server server(script);
            std::map<int, std::ostringstream> sinks;
            std::vector<int> done;
            std::vector<bool> doneOk;
            {
                Pop3Client client(settingsFor(server.port()));
                login(client);
                try {
                    client.retrieveMany(
                        {{1, 5, "uid-1"}, {2, row.listed2, uid2}, {3, 7, "uid-3"}},
                        [&](int n) -> std::ostream& { return sinks[n]; },
                        [&](const Pop3BatchReply& r) {
                            done.push_back(r.number);
                            doneOk.push_back(r.ok);
                        });
                    BOOST_ERROR("no exception");
                } catch (const Pop3OutOfStepError& e) {
                    BOOST_TEST(e.suspect() == row.suspect);
                    BOOST_TEST(e.kind() == Pop3ErrorKind::Protocol);
                    BOOST_TEST(e.stage() == Pop3Stage::Retr);
                    BOOST_TEST(std::string(e.what()).find(row.inWhat) != std::string::npos,
                               "what() = " << e.what());
                }
                BOOST_TEST(done == row.done);
                BOOST_TEST(doneOk.at(0)); // before the suspect: good, as delivered
                BOOST_TEST(sinks[1].str() == "one\r\n");
                BOOST_CHECK_THROW(client.noop(), Pop3NetworkError); // unusable from now on
            }
            BOOST_TEST(server.finish() == "");
            BOOST_TEST(server.received().back() == row.last); // no QUIT: dropped
        }
    }
}

BOOST_AUTO_TEST_CASE(retr_err_mid_pipeline_concerns_that_message_only)
{
    FakePop3Server server(loggedIn(kCapaPipelining) +
                          Steps{expect("RETR 1"), expect("RETR 2"), expect("RETR 3"),
                                expect("RETR 4"),
                                send("+OK\r\none\r\n.\r\n-ERR [SYS/TEMP] cannot read "
                                     "message\r\n+OK\r\nthree\r\n.\r\n+OK\r\nfour\r\n.\r\n"),
                                expect("QUIT"), send("+OK\r\n")});
    Pop3Client client(settingsFor(server.port()));
    login(client);
    std::map<int, std::ostringstream> sinks;
    auto replies = client.retrieveMany({{1, 5, "a"}, {2, 50, "b"}, {3, 7, "c"}, {4, 6, "d"}},
                                       [&](int n) -> std::ostream& { return sinks[n]; });
    BOOST_TEST_REQUIRE(replies.size() == 4u);
    BOOST_TEST(replies[0].ok);
    BOOST_TEST(!replies[1].ok);
    BOOST_TEST(replies[1].problem == "-ERR [SYS/TEMP] cannot read message");
    BOOST_TEST((replies[2].ok && replies[3].ok));
    BOOST_TEST(sinks[4].str() == "four\r\n");
    client.quit(); // still in step
    BOOST_TEST(server.finish() == "");
}

namespace
{

struct OverlongCase {
    const char* label;
    bool listRight; ///< LIST gives message 2's true size; else a wrong one (checked with UIDL 2)
};

} // namespace

BOOST_AUTO_TEST_CASE(a_line_over_1_mib_fails_that_message_only)
{
    // Message 2 holds a 1.5 MiB line: it is dropped, message 2 is read to its
    // end mark with nothing more written, reported malformed; 1 and 3 are
    // good, and the session is still in step for QUIT.
    const std::string head = "Subject: big\r\n\r\nbefore\r\n";
    const std::string big(kMaxDataLine + kMaxDataLine / 2, 'x');
    const std::string two = head + big + "\r\nafter\r\n.dotted\r\n";
    const std::string twoWire = head + big + "\r\nafter\r\n..dotted\r\n";
    for (const OverlongCase& row :
         {OverlongCase{"LIST right", true}, OverlongCase{"LIST wrong: step checked", false}}) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Steps script =
                loggedIn(kCapaPipelining) +
                Steps{expect("RETR 1"), expect("RETR 2"), expect("RETR 3"),
                      send("+OK\r\none\r\n.\r\n+OK\r\n" + twoWire + ".\r\n+OK\r\nthree\r\n.\r\n")};
            if (!row.listRight)
                script = script + Steps{expect("UIDL 2"), send("+OK 2 uid-2\r\n")};
            script = script + Steps{expect("QUIT"), send("+OK\r\n")};
            FakePop3Server server(script);
            Pop3Client client(settingsFor(server.port()));
            login(client);
            std::map<int, std::ostringstream> sinks;
            std::vector<int> done;
            const std::int64_t listed2 = row.listRight ? static_cast<std::int64_t>(two.size()) : 99;
            auto replies = client.retrieveMany(
                {{1, 5, "uid-1"}, {2, listed2, "uid-2"}, {3, 7, "uid-3"}},
                [&](int n) -> std::ostream& { return sinks[n]; },
                [&](const Pop3BatchReply& r) { done.push_back(r.number); });
            BOOST_TEST_REQUIRE(replies.size() == 3u);
            BOOST_TEST((replies[0].ok && !replies[0].malformed));
            BOOST_TEST(sinks[1].str() == "one\r\n");
            BOOST_TEST(!replies[1].ok);
            BOOST_TEST(replies[1].malformed);
            BOOST_TEST(replies[1].problem == "a line of message 2 is longer than 1048576 octets");
            BOOST_TEST(sinks[2].str() == head); // nothing after the long line
            BOOST_TEST(replies[1].octets == static_cast<std::int64_t>(head.size()));
            BOOST_TEST((replies[2].ok && !replies[2].malformed));
            BOOST_TEST(sinks[3].str() == "three\r\n");
            BOOST_TEST((done == std::vector<int>{1, 2, 3}));
            client.quit(); // still in step
            BOOST_TEST(server.finish() == "");
        }
    }
}

// --- UIDLs of any length ---------------------------------------------------

namespace
{

std::string sha256Key(const std::string& text)
{
    Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
    sha.update(text);
    return "sha256:" + Poco::DigestEngine::digestToHex(sha.digest());
}

} // namespace

BOOST_AUTO_TEST_CASE(long_uidls_become_bounded_keys)
{
    const std::string shared(9000, 'k');
    const std::string long1 = shared + std::string(1000, 'a'); // 10 000 characters
    const std::string long2 = shared + std::string(1000, 'b');
    const std::string edge(kMaxPlainUid, 'e');     // kept as it is
    const std::string over(kMaxPlainUid + 1, 'e'); // hashed
    FakePop3Server server(
        loggedIn() + Steps{expect("UIDL"),
                           send("+OK\r\n1 " + long1 + "\r\n2 " + long2 + "\r\n3 short-uid\r\n4 " +
                                edge + "\r\n5 " + over + "\r\n.\r\n"),
                           expect("UIDL 1"), send("+OK 1 " + long1 + "\r\n"), expect("RETR 1"),
                           send("+OK\r\nbody\r\n.\r\n"), expect("UIDL 1"),
                           send("+OK 1 " + long1 + "\r\n"), expect("QUIT"), send("+OK\r\n")});
    Pop3Client client(settingsFor(server.port()));
    login(client);
    std::vector<Pop3Uid> uids = client.uidl();
    BOOST_TEST_REQUIRE(uids.size() == 5u);
    BOOST_TEST(uids[0].uid == sha256Key(long1));
    BOOST_TEST(uids[0].uid.size() == 71u);
    BOOST_TEST(uids[1].uid == sha256Key(long2));
    BOOST_TEST(uids[0].uid != uids[1].uid);
    BOOST_TEST(uids[2].uid == "short-uid");
    BOOST_TEST(uids[3].uid == edge);
    BOOST_TEST(uids[4].uid == sha256Key(over));
    BOOST_TEST(client.uidl(1).uid == uids[0].uid);
    // the step check compares keys: a long UIDL answers in step
    std::ostringstream sink;
    auto replies =
        client.retrieveMany({{1, 900, uids[0].uid}}, [&](int) -> std::ostream& { return sink; });
    BOOST_TEST(replies.at(0).ok);
    BOOST_TEST(replies.at(0).sizeDiffers());
    client.quit();
    BOOST_TEST(server.finish() == "");
}

// --- authentication falls back ---------------------------------------------

namespace
{

const std::string kSecret = "s3cret-Pw";
const std::string kStamp = "<1896.697170952@fake.example>";

std::string apopLine(const std::string& stamp = kStamp)
{
    Poco::MD5Engine md5;
    md5.update(stamp + kSecret);
    return "APOP u " + Poco::DigestEngine::digestToHex(md5.digest());
}

Steps apopGreeting(const std::string& capa = kCapa)
{
    return {send("+OK fake ready " + kStamp + "\r\n"), expect("CAPA"), send(capa)};
}

struct MemoryTrace : ProtocolTrace {
    std::vector<std::string> lines;
    void sent(const std::string& line) override { lines.push_back("C: " + line); }
    void received(const std::string& line) override { lines.push_back("S: " + line); }
};

/// Relay - forwards the n-th connection to its port to backends[n], so a
/// client that reconnects meets the next scripted server.
class Relay
{
public:
    explicit Relay(std::vector<int> backends)
        : server_(Poco::Net::SocketAddress("127.0.0.1", 0)), backends_(std::move(backends))
    {
        thread_ = std::thread([this] { run(); });
    }
    ~Relay() { thread_.join(); }
    int port() const { return server_.address().port(); }
    int connections() const { return connections_; }

private:
    void run()
    {
        for (int backend : backends_) {
            if (!server_.poll(Poco::Timespan(5, 0), Poco::Net::Socket::SELECT_READ))
                return;
            Poco::Net::StreamSocket client = server_.acceptConnection();
            ++connections_;
            Poco::Net::StreamSocket peer;
            peer.connect(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(backend)));
            pump(client, peer);
        }
    }
    /// pump - copy both ways until either side hangs up, then close both.
    static void pump(Poco::Net::StreamSocket& a, Poco::Net::StreamSocket& b)
    {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        char chunk[16384];
        while (std::chrono::steady_clock::now() < until) {
            for (auto pair : {std::pair{&a, &b}, std::pair{&b, &a}}) {
                Poco::Net::StreamSocket& from = *pair.first;
                if (!from.poll(Poco::Timespan(0, 5000), Poco::Net::Socket::SELECT_READ))
                    continue;
                int n = 0;
                try {
                    n = from.receiveBytes(chunk, sizeof chunk);
                } catch (...) {
                }
                if (n <= 0) {
                    a.close();
                    b.close();
                    return;
                }
                try {
                    pair.second->sendBytes(chunk, n);
                } catch (...) {
                }
            }
        }
    }

    Poco::Net::ServerSocket server_;
    std::vector<int> backends_;
    std::atomic<int> connections_{0};
    std::thread thread_;
};

std::string flat(const std::vector<Pop3AuthAttempt>& attempts)
{
    std::string out;
    for (const Pop3AuthAttempt& a : attempts)
        out += (out.empty() ? "" : "; ") + pop3MechanismName(a.mechanism) + " " +
               (a.ok ? "ok" : "refused") + " " + a.reply;
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(apop_refused_then_user_pass_accepted)
{
    FakePop3Server server(apopGreeting() +
                          Steps{expect(apopLine()), send("-ERR [AUTH] Bad login\r\n"),
                                expect("USER u"), send("+OK\r\n"), expect("PASS " + kSecret),
                                send("+OK logged in\r\n"), expect("QUIT"), send("+OK\r\n")});
    MemoryTrace trace;
    Pop3Settings s = settingsFor(server.port());
    s.trace = &trace;
    Pop3Client client(s);
    client.open();
    client.authenticate("u", kSecret);
    BOOST_TEST(client.usedMechanism() == Pop3Mechanism::User);
    BOOST_TEST(flat(client.authAttempts()) ==
               "apop refused -ERR [AUTH] Bad login; user ok +OK logged in");
    client.quit();
    BOOST_TEST(server.finish() == "");
    for (const std::string& line : trace.lines)
        BOOST_TEST(line.find(kSecret) == std::string::npos, line);
}

BOOST_AUTO_TEST_CASE(apop_refused_server_hangs_up_reconnect_and_user_pass)
{
    FakePop3Server first(apopGreeting() +
                         Steps{expect(apopLine()), send("-ERR [AUTH] Bad login\r\n")});
    const std::string stamp2 = "<2.2@fake.example>";
    FakePop3Server second({send("+OK again " + stamp2 + "\r\n"), expect("CAPA"), send(kCapa),
                           expect("USER u"), send("+OK\r\n"), expect("PASS " + kSecret),
                           send("+OK in\r\n"), expect("STAT"), send("+OK 0 0\r\n"), expect("QUIT"),
                           send("+OK\r\n")});
    Relay relay({first.port(), second.port()});
    MemoryTrace trace;
    Pop3Settings s = settingsFor(relay.port());
    s.trace = &trace;
    {
        Pop3Client client(s);
        client.open();
        client.authenticate("u", kSecret);
        BOOST_TEST(client.usedMechanism() == Pop3Mechanism::User);
        BOOST_TEST(flat(client.authAttempts()) ==
                   "apop refused -ERR [AUTH] Bad login; user ok +OK in");
        BOOST_TEST(client.greeting() == "+OK again " + stamp2);
        BOOST_TEST(client.stat().messages == 0);
        client.quit();
    }
    BOOST_TEST(first.finish() == "");
    BOOST_TEST(second.finish() == "");
    BOOST_TEST(relay.connections() == 2);
    bool noted = false;
    for (const std::string& line : trace.lines) {
        BOOST_TEST(line.find(kSecret) == std::string::npos, line);
        noted = noted || line.find("[reconnecting") != std::string::npos;
    }
    BOOST_TEST(noted);
}

BOOST_AUTO_TEST_CASE(every_mechanism_refused_throws_the_last_refusal)
{
    const std::string capa = "+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n";
    FakePop3Server server(apopGreeting(capa) +
                          Steps{expect(apopLine()), send("-ERR [AUTH] no apop\r\n"),
                                expect("AUTH PLAIN AHUAczNjcmV0LVB3"),
                                send("-ERR [AUTH] no plain\r\n"), expect("USER u"), send("+OK\r\n"),
                                expect("PASS " + kSecret), send("-ERR [AUTH] no user\r\n"),
                                awaitClose()});
    Pop3Client client(settingsFor(server.port()));
    client.open();
    try {
        client.authenticate("u", kSecret);
        BOOST_ERROR("no exception");
    } catch (const Pop3AuthError& e) {
        BOOST_TEST(e.serverText() == "-ERR [AUTH] no user");
        BOOST_TEST(e.command() == "PASS");
        BOOST_TEST(std::string(e.what()).find(kSecret) == std::string::npos);
    }
    BOOST_TEST(flat(client.authAttempts()) == "apop refused -ERR [AUTH] no apop; plain refused "
                                              "-ERR [AUTH] no plain; user refused -ERR [AUTH] no "
                                              "user");
    BOOST_TEST(client.usedMechanism() == Pop3Mechanism::Auto);
}

namespace
{

struct StopCase {
    const char* label;
    bool plaintextAllowed;
    std::string apopReply;
    std::string exception; ///< "auth" | "server"
    std::string code;
};

} // namespace

BOOST_AUTO_TEST_CASE(auto_stops_where_it_must)
{
    const std::string capa = "+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n";
    const std::vector<StopCase> rows = {
        {"in clear without plaintext: APOP only", false, "-ERR [AUTH] Bad login", "auth", "AUTH"},
        {"[IN-USE] ends it at once", true, "-ERR [IN-USE] Mailbox locked", "server", "IN-USE"},
        {"[LOGIN-DELAY] ends it at once", true, "-ERR [LOGIN-DELAY] wait", "server", "LOGIN-DELAY"},
        {"[SYS/TEMP] ends it at once", true, "-ERR [SYS/TEMP] try later", "server", "SYS/TEMP"},
    };
    for (const StopCase& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            FakePop3Server server(apopGreeting(capa) + Steps{expect(apopLine()),
                                                             send(row.apopReply + "\r\n"),
                                                             awaitClose()});
            {
                Pop3Settings s = settingsFor(server.port());
                s.allowPlaintextAuth = row.plaintextAllowed;
                Pop3Client client(s);
                client.open();
                std::string got;
                try {
                    client.authenticate("u", kSecret);
                } catch (const Pop3AuthError& e) {
                    got = "auth";
                    BOOST_TEST(e.responseCode() == row.code);
                } catch (const Pop3ServerError& e) {
                    got = "server";
                    BOOST_TEST(e.responseCode() == row.code);
                }
                BOOST_TEST(got == row.exception);
                BOOST_TEST(flat(client.authAttempts()) == "apop refused " + row.apopReply);
            }
            BOOST_TEST(server.finish() == "");
            // nothing after APOP: no USER, no AUTH PLAIN
            BOOST_TEST(server.received().back() == apopLine());
        }
    }
}

BOOST_AUTO_TEST_CASE(pins_are_normalized)
{
    const std::string pin(64, 'a');
    BOOST_TEST(normalizePin(std::string(64, 'A')) == pin);
    std::string colons;
    for (int i = 0; i < 32; ++i)
        colons += std::string(i ? ":" : "") + "AA";
    BOOST_TEST(normalizePin(colons) == pin);
    BOOST_CHECK_THROW(normalizePin("abc"), InputError);
    BOOST_CHECK_THROW(normalizePin(std::string(64, 'g')), InputError);
}
