// pop3_client_test.cpp - Pop3Client against a scripted fake server for what
// Dovecot will not do: missing or refused STLS, stalls, drops, lying sizes,
// overlong and 8-bit lines, bad multi-line ends, RFC 2449 codes, pipelining.
// Also the pure mechanism choice. Real-server cases: pop3_dovecot_test.cpp.
#define BOOST_TEST_MODULE pop3_client
#include "plugin/net/pop3_client.h"
#include "tests/support/fake_pop3_server.h"

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
        {"line starting with a lone dot",
         loggedIn() + Steps{expect("RETR 1"), send("+OK\r\nSubject: x\r\n\r\n.bad\r\n.\r\n")},
         [](Pop3Client& c) {
             login(c);
             retr(c, 1);
         },
         K::Protocol, S::Retr, "neither the end mark nor dot-stuffed", ""},
        {"end mark with trailing space",
         loggedIn() + Steps{expect("RETR 1"), send("+OK\r\nbody\r\n. \r\n")},
         [](Pop3Client& c) {
             login(c);
             retr(c, 1);
         },
         K::Protocol, S::Retr, "end mark", ""},
        {"RETR longer than LIST said",
         loggedIn() + Steps{expect("LIST 1"), send("+OK 1 10\r\n"), expect("RETR 1"),
                            send("+OK\r\n0123456789abcdefgh\r\n.\r\n")},
         [](Pop3Client& c) {
             login(c);
             retr(c, 1, c.list(1).octets);
         },
         K::Protocol, S::Retr, "size mismatch: LIST said 10 octets, RETR delivered 20", ""},
        {"RETR shorter than LIST said",
         loggedIn() + Steps{expect("LIST 1"), send("+OK 1 500\r\n"), expect("RETR 1"),
                            send("+OK\r\nshort\r\n.\r\n")},
         [](Pop3Client& c) {
             login(c);
             retr(c, 1, c.list(1).octets);
         },
         K::Protocol, S::Retr, "LIST said 500 octets, RETR delivered 7", ""},
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

BOOST_AUTO_TEST_CASE(retr_unstuffs_dots_and_keeps_8bit_and_line_ends)
{
    const std::string wire = "Subject: caf\xC3\xA9\r\n\r\n..leading dot\r\n...\r\n..\r\n"
                             "bare lf\n\xFF\x01 binary\r\n";
    const std::string body = "Subject: caf\xC3\xA9\r\n\r\n.leading dot\r\n..\r\n.\r\n"
                             "bare lf\n\xFF\x01 binary\r\n";
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

BOOST_AUTO_TEST_CASE(pipelining_advertised_sends_commands_together)
{
    FakePop3Server server(loggedIn(kCapaPipelining) +
                          Steps{// all three arrive before any reply is sent
                                expect("RETR 1"), expect("RETR 2"), expect("RETR 3"),
                                send("+OK\r\none\r\n.\r\n-ERR gone\r\n+OK\r\nthree\r\n.\r\n"),
                                expect("DELE 1"), expect("DELE 3"), send("+OK\r\n+OK\r\n"),
                                expect("QUIT"), send("+OK\r\n")});
    Pop3Client client(settingsFor(server.port()));
    login(client);
    BOOST_TEST(client.pipelining());
    std::map<int, std::ostringstream> sinks;
    auto replies = client.retrieveMany({{1, 5}, {2, -1}, {3, 99}},
                                       [&](int n) -> std::ostream& { return sinks[n]; });
    BOOST_TEST_REQUIRE(replies.size() == 3u);
    BOOST_TEST(replies[0].ok);
    BOOST_TEST(sinks[1].str() == "one\r\n");
    BOOST_TEST(!replies[1].ok);
    BOOST_TEST(replies[1].problem == "-ERR gone");
    BOOST_TEST(!replies[2].ok); // LIST said 99
    BOOST_TEST(replies[2].problem.find("size mismatch") != std::string::npos);
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
    auto replies =
        client.retrieveMany({{1, 5}, {2, 5}}, [&](int n) -> std::ostream& { return sinks[n]; });
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
    std::string expected; ///< mechanism name, or "error"
};

} // namespace

BOOST_AUTO_TEST_CASE(mechanism_choice)
{
    const std::vector<std::string> all = {"USER", "SASL PLAIN LOGIN"};
    const std::vector<std::string> userOnly = {"USER"};
    const std::vector<std::string> loginOnly = {"SASL LOGIN"};
    const std::vector<MechanismCase> rows = {
        {"auto over TLS prefers PLAIN", Pop3Mechanism::Auto, all, true, true, false, "plain"},
        {"auto over TLS, only LOGIN", Pop3Mechanism::Auto, loginOnly, true, true, false, "login"},
        {"auto over TLS, no SASL, APOP", Pop3Mechanism::Auto, userOnly, true, true, false, "apop"},
        {"auto over TLS, USER only", Pop3Mechanism::Auto, userOnly, false, true, false, "user"},
        {"auto over TLS, no CAPA: USER", Pop3Mechanism::Auto, {}, false, true, false, "user"},
        {"auto in clear prefers APOP", Pop3Mechanism::Auto, all, true, false, false, "apop"},
        {"auto in clear without APOP refused", Pop3Mechanism::Auto, all, false, false, false,
         "error"},
        {"auto in clear, allowed", Pop3Mechanism::Auto, all, false, false, true, "plain"},
        {"user in clear refused", Pop3Mechanism::User, all, true, false, false, "error"},
        {"plain in clear refused", Pop3Mechanism::Plain, all, true, false, false, "error"},
        {"apop without timestamp", Pop3Mechanism::Apop, all, false, true, false, "error"},
        {"apop in clear is fine", Pop3Mechanism::Apop, all, true, false, false, "apop"},
        {"plain not offered", Pop3Mechanism::Plain, userOnly, false, true, false, "error"},
        {"login offered", Pop3Mechanism::Login, loginOnly, false, true, false, "login"},
    };
    for (const MechanismCase& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Pop3Capabilities caps;
            caps.known = !row.capa.empty();
            caps.lines = row.capa;
            std::string got;
            try {
                got = pop3MechanismName(
                    chooseMechanism(row.wanted, caps, row.apop, row.tls, row.plaintextAllowed));
            } catch (const Pop3AuthError&) {
                got = "error";
            }
            BOOST_TEST(got == row.expected);
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
