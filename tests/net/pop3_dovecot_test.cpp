// pop3_dovecot_test.cpp - Pop3Client against a real Dovecot (started by
// scripts/servers/dovecot.sh): plain, STARTTLS and POP3S; USER, APOP, SASL
// PLAIN and LOGIN and auto's fallback (at most 3 tries); refused certificates, pins, CA file;
// byte-exact RETR/TOP, UIDL/LIST/STAT/DELE/RSET, pipelined batches with the
// step check after a LIST size that differs, and the trace of a real session.
#define BOOST_TEST_MODULE pop3_dovecot
#include "plugin/net/pop3_client.h"
#include "tests/support/dovecot_env.h"
#include "tests/support/fake_pop3_server.h"

#include <Poco/TemporaryFile.h>
#include <boost/test/unit_test.hpp>
#include <map>
#include <sstream>

using namespace popgate;
using namespace popgate::test;

namespace
{

Pop3Settings settingsFor(const DovecotEnv& env, Security security)
{
    Pop3Settings s;
    s.host = env.host;
    s.security = security;
    s.port = security == Security::SslTls ? env.pop3sPort : env.port;
    s.tls.caFile = env.ca;
    s.connectTimeout = std::chrono::milliseconds(3000);
    s.readTimeout = std::chrono::milliseconds(5000);
    return s;
}

const std::string kFirst = "From: alice@example.com\r\nTo: desk@example.com\r\n"
                           "Subject: first\r\n\r\nHello\r\n.leading dot\r\n..two dots\r\n.\r\n"
                           "last line\r\n";
const std::string kSecond = "From: bob@example.com\r\nSubject: caf\xC3\xA9\r\n"
                            "Content-Type: text/plain; charset=latin1\r\n\r\n"
                            "8-bit: \xE9\xFF\xFE\r\nlast line\r\n";

std::string bigMessage()
{
    std::string m = "From: big@example.com\r\nSubject: big\r\n\r\n";
    for (int i = 0; i < 4000; ++i)
        m += "line " + std::to_string(i) + " of a message that is larger than one socket read\r\n";
    return m;
}

std::string retrieveText(Pop3Client& c, int n, std::int64_t expected = -1)
{
    std::ostringstream out;
    c.retrieve(n, out, expected);
    return out.str();
}

struct LoginCase {
    const char* label;
    Security security;
    Pop3Mechanism wanted;
    bool allowPlaintext;
    Pop3Mechanism used;
};

} // namespace

BOOST_AUTO_TEST_CASE(logins_over_every_security_and_mechanism)
{
    DovecotEnv env;
    using M = Pop3Mechanism;
    const std::vector<LoginCase> rows = {
        {"none + USER (plaintext allowed)", Security::None, M::User, true, M::User},
        {"none + PLAIN (plaintext allowed)", Security::None, M::Plain, true, M::Plain},
        {"none + auto picks APOP", Security::None, M::Auto, false, M::Apop},
        {"starttls + auto picks APOP first", Security::StartTls, M::Auto, false, M::Apop},
        {"starttls + USER", Security::StartTls, M::User, false, M::User},
        {"starttls + LOGIN", Security::StartTls, M::Login, false, M::Login},
        {"ssl-tls + auto", Security::SslTls, M::Auto, false, M::Apop},
        {"ssl-tls + APOP", Security::SslTls, M::Apop, false, M::Apop},
        {"ssl-tls + LOGIN", Security::SslTls, M::Login, false, M::Login},
        {"ssl-tls + USER", Security::SslTls, M::User, false, M::User},
    };
    for (const LoginCase& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Pop3Settings s = settingsFor(env, row.security);
            s.allowPlaintextAuth = row.allowPlaintext;
            Pop3Client client(s);
            client.open();
            BOOST_TEST(client.tlsActive() == (row.security != Security::None));
            BOOST_TEST(client.capabilities().known);
            BOOST_TEST((!client.capabilities().has("STLS") || row.security == Security::None));
            client.authenticate(env.user, env.password, row.wanted);
            BOOST_TEST(client.usedMechanism() == row.used);
            client.stat();
            client.quit();
        }
    }
}

BOOST_AUTO_TEST_CASE(wrong_password_is_an_auth_error_with_the_servers_words)
{
    DovecotEnv env;
    for (Pop3Mechanism m :
         {Pop3Mechanism::User, Pop3Mechanism::Apop, Pop3Mechanism::Plain, Pop3Mechanism::Login}) {
        BOOST_TEST_CONTEXT(pop3MechanismName(m))
        {
            Pop3Client client(settingsFor(env, Security::SslTls));
            client.open();
            try {
                client.authenticate(env.user, "not-the-password", m);
                BOOST_ERROR("no exception");
            } catch (const Pop3AuthError& e) {
                BOOST_TEST(e.stage() == Pop3Stage::Auth);
                BOOST_TEST(e.responseCode() == "AUTH");
                BOOST_TEST(e.serverText() == "-ERR [AUTH] Authentication failed.");
                BOOST_TEST(std::string(e.what()).find("not-the-password") == std::string::npos);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(auto_with_a_wrong_password_is_refused_three_times_at_most)
{
    DovecotEnv env;
    Pop3Client client(settingsFor(env, Security::SslTls));
    client.open();
    BOOST_CHECK_THROW(client.authenticate(env.user, "not-the-password"), Pop3AuthError);
    std::string tried;
    for (const Pop3AuthAttempt& a : client.authAttempts()) {
        tried += (tried.empty() ? "" : " ") + pop3MechanismName(a.mechanism);
        BOOST_TEST(!a.ok);
        BOOST_TEST(a.reply == "-ERR [AUTH] Authentication failed.");
    }
    // one SASL mechanism (PLAIN): a wrong password costs three failed logins, not four
    BOOST_TEST(tried == "apop plain user");
}

BOOST_AUTO_TEST_CASE(plaintext_login_refused_without_the_flag)
{
    DovecotEnv env;
    Pop3Client client(settingsFor(env, Security::None));
    client.open();
    BOOST_CHECK_THROW(client.authenticate(env.user, env.password, Pop3Mechanism::User),
                      Pop3AuthError);
    BOOST_CHECK_THROW(client.authenticate(env.user, env.password, Pop3Mechanism::Plain),
                      Pop3AuthError);
}

namespace
{

struct CertCase {
    const char* label;
    int DovecotEnv::*port;
    Security security;
    bool useCa;
    bool verify;
    std::string pin;   ///< "good" = the server's pin
    std::string error; ///< "" = must connect
};

} // namespace

BOOST_AUTO_TEST_CASE(certificates_pins_and_ca_files)
{
    DovecotEnv env;
    const std::string wrongPin(64, '0');
    const std::vector<CertCase> rows = {
        {"good cert, CA file", &DovecotEnv::pop3sPort, Security::SslTls, true, true, "", ""},
        {"starttls, CA file", &DovecotEnv::port, Security::StartTls, true, true, "", ""},
        {"system CAs do not know the test CA", &DovecotEnv::pop3sPort, Security::SslTls, false,
         true, "", "certificate verify failed: unable to get local issuer certificate"},
        {"starttls, system CAs", &DovecotEnv::port, Security::StartTls, false, true, "",
         "certificate verify failed: unable to get local issuer certificate"},
        {"expired", &DovecotEnv::expiredPort, Security::SslTls, true, true, "",
         "certificate verify failed: certificate has expired"},
        {"wrong host", &DovecotEnv::wrongHostPort, Security::SslTls, true, true, "",
         "certificate verify failed: IP address mismatch"},
        {"pin match", &DovecotEnv::pop3sPort, Security::SslTls, true, true, "good", ""},
        {"pin match, chain not checked", &DovecotEnv::pop3sPort, Security::SslTls, false, false,
         "good", ""},
        {"pin mismatch", &DovecotEnv::pop3sPort, Security::SslTls, true, true, wrongPin,
         "certificate pin mismatch: server certificate sha256 " + env.pin},
        {"pin mismatch after STLS", &DovecotEnv::port, Security::StartTls, true, true, wrongPin,
         "certificate pin mismatch"},
        {"pin does not excuse an expired cert", &DovecotEnv::expiredPort, Security::SslTls, true,
         true, "good", "certificate has expired"},
    };
    for (const CertCase& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Pop3Settings s = settingsFor(env, row.security);
            s.port = env.*row.port;
            s.tls.caFile = row.useCa ? env.ca : std::string();
            s.tls.verify = row.verify;
            s.tls.pinSha256 = row.pin == "good" ? env.pin : row.pin;
            Pop3Client client(s);
            try {
                client.open();
                BOOST_TEST(row.error == "");
                BOOST_TEST(client.tlsInfo().sha256 == env.pin);
                client.authenticate(env.user, env.password);
                client.quit();
            } catch (const Pop3TlsError& e) {
                BOOST_TEST(e.stage() == Pop3Stage::Tls);
                BOOST_TEST(!row.error.empty(), "unexpected: " << e.what());
                BOOST_TEST(std::string(e.what()).find(row.error) != std::string::npos,
                           "what() = " << e.what());
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(tls_facts_after_the_handshake)
{
    DovecotEnv env;
    Pop3Settings s = settingsFor(env, Security::SslTls);
    s.host = "localhost"; // name check on DNS:localhost; ::1 may be tried first and refused
    Pop3Client client(s);
    client.open();
    const TlsInfo& tls = client.tlsInfo();
    BOOST_TEST((tls.protocol == "TLSv1.2" || tls.protocol == "TLSv1.3"), tls.protocol);
    BOOST_TEST(!tls.cipher.empty());
    BOOST_TEST(tls.subject.find("CN=localhost") != std::string::npos, tls.subject);
    BOOST_TEST(tls.issuer.find("popgate test CA") != std::string::npos, tls.issuer);
    BOOST_TEST(tls.notAfter == "2040-01-01 00:00:00 UTC");
    BOOST_TEST(tls.sha256 == env.pin);
    client.quit();

    Pop3Settings old = settingsFor(env, Security::SslTls);
    old.tls.minVersion = "1.3";
    Pop3Client modern(old);
    modern.open();
    BOOST_TEST(modern.tlsInfo().protocol == "TLSv1.3");
    modern.quit();
}

namespace
{

struct MemoryTrace : ProtocolTrace {
    std::vector<std::string> lines;
    void sent(const std::string& line) override { lines.push_back("C: " + line); }
    void received(const std::string& line) override { lines.push_back("S: " + line); }
};

} // namespace

BOOST_AUTO_TEST_CASE(bytes_sent_before_the_tls_handshake_are_discarded)
{
    // A fake server with the test certificate sends a forged CAPA reply right
    // behind "+OK" to STLS: it is not protected by TLS and must not count.
    DovecotEnv env;
    std::string tls = env.ca.substr(0, env.ca.rfind('/'));
    FakePop3Server server({send("+OK fake\r\n"), expect("CAPA"),
                           send("+OK\r\nSTLS\r\nUSER\r\n.\r\n"), expect("STLS"),
                           send("+OK begin TLS\r\n+OK\r\nINJECTED\r\nSASL PLAIN\r\n.\r\n"),
                           startTls(tls + "/server.pem", tls + "/server.key"), expect("CAPA"),
                           send("+OK\r\nUSER\r\n.\r\n"), expect("USER u"), send("+OK\r\n"),
                           expect("PASS p"), send("+OK\r\n"), expect("QUIT"), send("+OK\r\n")});
    MemoryTrace trace;
    Pop3Settings s = settingsFor(env, Security::StartTls);
    s.port = server.port();
    s.trace = &trace;
    Pop3Client client(s);
    client.open();
    BOOST_TEST(client.tlsActive());
    BOOST_TEST(!client.capabilities().has("INJECTED"));
    BOOST_TEST(client.capabilities().saslMechanisms().empty());
    client.authenticate("u", "p");
    BOOST_TEST(client.usedMechanism() == Pop3Mechanism::User);
    client.quit();
    BOOST_TEST(server.finish() == "");
    bool noted = false;
    for (const std::string& line : trace.lines)
        noted = noted || line.find("[discarded 30 bytes received before the TLS handshake]") !=
                             std::string::npos;
    BOOST_TEST(noted);
}

BOOST_AUTO_TEST_CASE(commands_and_byte_exact_messages)
{
    DovecotEnv env;
    clearMaildir(env.maildir);
    const std::vector<std::string> messages = {kFirst, kSecond, bigMessage()};
    for (const std::string& m : messages)
        deliver(env.maildir, m);
    std::int64_t total = 0;
    for (const std::string& m : messages)
        total += static_cast<std::int64_t>(m.size());

    {
        Pop3Client client(settingsFor(env, Security::SslTls));
        client.open();
        client.authenticate(env.user, env.password);
        BOOST_TEST(client.capabilities().has("UIDL"));
        Pop3Stat s = client.stat();
        BOOST_TEST(s.messages == 3);
        BOOST_TEST(s.octets == total);

        std::vector<Pop3Listing> list = client.list();
        BOOST_TEST_REQUIRE(list.size() == 3u);
        for (std::size_t i = 0; i < 3; ++i) {
            BOOST_TEST(list[i].number == static_cast<int>(i + 1));
            BOOST_TEST(list[i].octets == static_cast<std::int64_t>(messages[i].size()));
        }
        BOOST_TEST(client.list(2).octets == static_cast<std::int64_t>(kSecond.size()));

        std::vector<Pop3Uid> uids = client.uidl();
        BOOST_TEST_REQUIRE(uids.size() == 3u);
        BOOST_TEST(uids[0].uid != uids[1].uid);
        BOOST_TEST(client.uidl(2).uid == uids[1].uid);
        BOOST_CHECK_THROW(client.uidl(9), Pop3ServerError);

        for (std::size_t i = 0; i < 3; ++i)
            BOOST_TEST(retrieveText(client, static_cast<int>(i + 1), list[i].octets) ==
                       messages[i]);
        std::ostringstream head;
        client.top(1, 0, head);
        BOOST_TEST(head.str() == kFirst.substr(0, kFirst.find("\r\n\r\n") + 4));
        std::ostringstream head2;
        client.top(1, 2, head2);
        BOOST_TEST(head2.str() == kFirst.substr(0, kFirst.find("..two")));

        client.dele(2);
        BOOST_CHECK_THROW(client.list(2), Pop3ServerError);
        client.rset();
        BOOST_TEST(client.list().size() == 3u);
        client.dele(1);
        client.noop();
        client.quit();
    }
    {
        Pop3Client client(settingsFor(env, Security::StartTls));
        client.open();
        client.authenticate(env.user, env.password);
        BOOST_TEST(client.stat().messages == 2);
        BOOST_TEST(retrieveText(client, 1) == kSecond);
        client.quit();
    }
    clearMaildir(env.maildir);
}

BOOST_AUTO_TEST_CASE(pipelined_batches_against_dovecot)
{
    DovecotEnv env;
    clearMaildir(env.maildir);
    std::vector<std::string> messages;
    for (int i = 0; i < 40; ++i) // more than one pipeline window
        messages.push_back("Subject: batch " + std::to_string(i) + "\r\n\r\nbody " +
                           std::to_string(i) + "\r\n");
    for (const std::string& m : messages)
        deliver(env.maildir, m);
    {
        Pop3Client client(settingsFor(env, Security::SslTls));
        client.open();
        client.authenticate(env.user, env.password);
        BOOST_TEST(client.pipelining());
        std::vector<Pop3Listing> list = client.list();
        std::vector<Pop3Uid> uids = client.uidl();
        BOOST_TEST_REQUIRE(uids.size() == list.size());
        for (std::size_t i = 0; i < list.size(); ++i)
            list[i].uid = uids[i].uid;
        list[5].octets /= 2;          // LIST sizes are advisory: Dovecot answers "UIDL 6" in step
        list[30].octets *= 10;        // (checked once the pipeline window is read)
        list.push_back({99, 10, ""}); // no such message: a -ERR reply, not an exception
        std::map<int, std::ostringstream> sinks;
        auto replies = client.retrieveMany(list, [&](int n) -> std::ostream& { return sinks[n]; });
        BOOST_TEST_REQUIRE(replies.size() == 41u);
        for (int i = 0; i < 40; ++i) {
            BOOST_TEST(replies[static_cast<std::size_t>(i)].ok);
            BOOST_TEST(replies[static_cast<std::size_t>(i)].sizeDiffers() == (i == 5 || i == 30));
            BOOST_TEST(sinks[i + 1].str() == messages[static_cast<std::size_t>(i)]);
        }
        BOOST_TEST(!replies[40].ok);
        BOOST_TEST(replies[40].problem.find("-ERR") == 0u);
        std::vector<int> all;
        for (int i = 1; i <= 40; ++i)
            all.push_back(i);
        auto deleted = client.deleteMany(all);
        BOOST_TEST(deleted.size() == 40u);
        for (const auto& d : deleted)
            BOOST_TEST(d.ok);
        client.quit();
    }
    Pop3Client check(settingsFor(env, Security::SslTls));
    check.open();
    check.authenticate(env.user, env.password);
    BOOST_TEST(check.stat().messages == 0);
    check.quit();
}

BOOST_AUTO_TEST_CASE(trace_of_a_real_session_has_protocol_but_no_secret_or_body)
{
    DovecotEnv env;
    clearMaildir(env.maildir);
    deliver(env.maildir, "Subject: traced\r\nX-Mark: header-visible\r\n\r\nbody-secret-words\r\n");
    Poco::TemporaryFile dir;
    dir.createDirectories();
    std::string path = dir.path() + "/trace.log";
    for (Pop3Mechanism m :
         {Pop3Mechanism::User, Pop3Mechanism::Plain, Pop3Mechanism::Login, Pop3Mechanism::Apop}) {
        FileProtocolTrace trace(path);
        Pop3Settings s = settingsFor(env, Security::StartTls);
        s.trace = &trace;
        Pop3Client client(s);
        client.open();
        client.authenticate(env.user, env.password, m);
        std::ostringstream out;
        client.retrieve(1, out);
        std::ostringstream head;
        client.top(1, 5, head);
        client.quit();
    }
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    const std::string log = text.str();
    BOOST_TEST(log.find(" C: STLS\n") != std::string::npos);
    BOOST_TEST(log.find(" S: [TLS established: TLSv1.") != std::string::npos);
    BOOST_TEST(log.find(" C: USER " + env.user + "\n") != std::string::npos);
    BOOST_TEST(log.find(" C: PASS ********\n") != std::string::npos);
    BOOST_TEST(log.find(" C: AUTH PLAIN ********\n") != std::string::npos);
    BOOST_TEST(log.find(" C: AUTH LOGIN\n") != std::string::npos);
    BOOST_TEST(log.find(" C: APOP " + env.user + " ********\n") != std::string::npos);
    BOOST_TEST(log.find(" C: RETR 1\n") != std::string::npos);
    BOOST_TEST(log.find(" S: X-Mark: header-visible\n") != std::string::npos);
    BOOST_TEST(log.find(" S: [body not logged: 19 bytes]\n") != std::string::npos);
    BOOST_TEST(log.find(" S: +OK Logging out") != std::string::npos);
    BOOST_TEST(log.find(env.password) == std::string::npos);
    BOOST_TEST(log.find("body-secret-words") == std::string::npos);
    // the base64 forms of the password must not appear either
    BOOST_TEST(log.find("dDNzdC1TZWNyM3Q") == std::string::npos); // "t3st-Secr3t"
    BOOST_TEST(log.find("AHBvcGdhdGUAdDNzdC1TZWNyM3Q") == std::string::npos);
    clearMaildir(env.maildir);
}
