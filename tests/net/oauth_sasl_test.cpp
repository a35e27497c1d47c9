// oauth_sasl_test - SASL XOAUTH2 and OAUTHBEARER (plugin/net/oauth_sasl.cpp)
// byte-exact against the scripted fake POP3 server, for what Dovecot will not
// do: Microsoft 365's two-step AUTH, a server that refuses or ignores an
// initial response, the error challenge, a mechanism that is not offered.
// The real-server cases are in oauth_dovecot_test.cpp.
#define BOOST_TEST_MODULE oauth_sasl
#include "plugin/net/oauth_sasl.h"
#include "tests/support/fake_pop3_server.h"

#include <boost/test/unit_test.hpp>

using namespace popgate;
using namespace popgate::test;
using Steps = std::vector<Step>;

namespace
{

const std::string kUser = "alice@example.com";
const std::string kToken = "tok-123";
// base64 of xoauth2Response(kUser, kToken) and oauthBearerResponse(kUser, "127.0.0.1", 110, kToken)
const std::string kXoauth2 = "dXNlcj1hbGljZUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB0b2stMTIzAQE=";
const std::string kBearer =
    "bixhPWFsaWNlQGV4YW1wbGUuY29tLAFob3N0PTEyNy4wLjAuMQFwb3J0PTExMAFhdXRoPUJlYXJlciB0b2stMTIzAQE=";
// {"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}
const std::string kErrorJson = "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJodHRwczo"
                               "vL21haWwuZ29vZ2xlLmNvbS8ifQ==";

Pop3Settings settingsFor(int port)
{
    Pop3Settings s;
    s.host = "127.0.0.1";
    s.port = port;
    s.security = Security::None;
    s.allowPlaintextAuth = true;
    s.connectTimeout = std::chrono::milliseconds(2000);
    s.readTimeout = std::chrono::milliseconds(500);
    return s;
}

Steps operator+(Steps a, const Steps& b)
{
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

Steps greeting(const std::string& sasl = "SASL PLAIN XOAUTH2 OAUTHBEARER")
{
    return {send("+OK fake ready\r\n"), expect("CAPA"),
            send("+OK\r\nUSER\r\nUIDL\r\n" + sasl + "\r\n.\r\n")};
}

Steps quit()
{
    return {expect("QUIT"), send("+OK bye\r\n"), awaitClose()};
}

// login - runs authenticateOAuth with the given mechanism and mode, then QUIT.
void login(FakePop3Server& server, const std::string& mechanism, OAuthSaslMode mode)
{
    Pop3Client client(settingsFor(server.port()));
    client.open();
    authenticateOAuth(client, mechanism, kUser, "127.0.0.1", 110, kToken, mode);
    client.quit();
}

} // namespace

BOOST_AUTO_TEST_CASE(responses_are_as_the_specifications_write_them)
{
    BOOST_TEST(xoauth2Response("u@x", "T") == std::string("user=u@x\x01"
                                                          "auth=Bearer T\x01\x01"));
    BOOST_TEST(oauthBearerResponse("u@x", "pop.x", 995, "T") ==
               std::string("n,a=u@x,\x01"
                           "host=pop.x\x01"
                           "port=995\x01"
                           "auth=Bearer T\x01\x01"));
    // RFC 5801: ',' and '=' in the authorization identity are escaped
    BOOST_TEST(oauthBearerResponse("a,b=c", "h", 1, "T").substr(0, 14) == "n,a=a=2Cb=3Dc,");
}

BOOST_AUTO_TEST_CASE(sasl_mode_per_server)
{
    struct Row {
        const char* label;
        const char* server;
        OAuthSaslMode mode;
    };
    const std::vector<Row> rows = {
        {"Microsoft 365", "outlook.office365.com", OAuthSaslMode::Continuation},
        {"Microsoft 365, upper case", "Outlook.Office365.com", OAuthSaslMode::Continuation},
        {"outlook.com", "pop-mail.outlook.com", OAuthSaslMode::Continuation},
        {"Gmail", "pop.gmail.com", OAuthSaslMode::Auto},
        {"look-alike", "evil-office365.com.example", OAuthSaslMode::Auto},
        {"suffix without dot", "notoutlook.com", OAuthSaslMode::Auto},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Account a;
            a.server = row.server;
            BOOST_TEST((saslModeFor(a) == row.mode));
        }
    }
}

BOOST_AUTO_TEST_CASE(xoauth2_and_oauthbearer_with_initial_response)
{
    {
        FakePop3Server server(
            greeting() + Steps{expect("AUTH XOAUTH2 " + kXoauth2), send("+OK in\r\n")} + quit());
        login(server, "XOAUTH2", OAuthSaslMode::Auto);
        BOOST_TEST(server.finish() == "");
    }
    {
        FakePop3Server server(
            greeting() + Steps{expect("AUTH OAUTHBEARER " + kBearer), send("+OK in\r\n")} + quit());
        login(server, "oauthbearer", OAuthSaslMode::Auto);
        BOOST_TEST(server.finish() == "");
    }
}

BOOST_AUTO_TEST_CASE(microsoft_two_step_sends_the_token_after_the_plus)
{
    // outlook.office365.com: "AUTH XOAUTH2", then "+", then the token line.
    FakePop3Server server(greeting("SASL PLAIN XOAUTH2") +
                          Steps{expect("AUTH XOAUTH2"), nothingPending(), send("+\r\n"),
                                expect(kXoauth2),
                                send("+OK User successfully authenticated.\r\n")} +
                          quit());
    Pop3Client client(settingsFor(server.port()));
    client.open();
    Account a;
    a.auth = AuthKind::OAuth2;
    a.user = kUser;
    a.server = "outlook.office365.com"; // decides the mode; the fake server listens on 127.0.0.1
    authenticateOAuth(client, a, kToken);
    client.quit();
    BOOST_TEST(server.finish() == "");
}

BOOST_AUTO_TEST_CASE(server_without_initial_response_gets_it_in_two_steps)
{
    // A bare -ERR to the inline form (no challenge asked, token not looked at):
    // once more without the initial response.
    FakePop3Server server(
        greeting() +
        Steps{expect("AUTH XOAUTH2 " + kXoauth2), send("-ERR Initial response not supported\r\n"),
              expect("AUTH XOAUTH2"), send("+ \r\n"), expect(kXoauth2), send("+OK in\r\n")} +
        quit());
    login(server, "XOAUTH2", OAuthSaslMode::Auto);
    BOOST_TEST(server.finish() == "");
}

BOOST_AUTO_TEST_CASE(server_that_ignores_the_initial_response_asks_again)
{
    FakePop3Server server(greeting() +
                          Steps{expect("AUTH OAUTHBEARER " + kBearer), send("+ \r\n"),
                                expect(kBearer), send("+OK in\r\n")} +
                          quit());
    login(server, "OAUTHBEARER", OAuthSaslMode::Auto);
    BOOST_TEST(server.finish() == "");
}

BOOST_AUTO_TEST_CASE(error_challenge_is_answered_and_reported)
{
    struct Row {
        const char* label;
        const char* mechanism;
        std::string first;  // the AUTH line
        std::string answer; // the client's reply to the error challenge
    };
    const std::vector<Row> rows = {
        {"XOAUTH2 answers with an empty line", "XOAUTH2", "AUTH XOAUTH2 " + kXoauth2, ""},
        {"OAUTHBEARER answers with %x01", "OAUTHBEARER", "AUTH OAUTHBEARER " + kBearer, "AQ=="},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            FakePop3Server server(
                greeting() + Steps{expect(row.first), send("+ " + kErrorJson + "\r\n"),
                                   expect(row.answer),
                                   send("-ERR [AUTH] Authentication failed.\r\n"), awaitClose()});
            std::string message;
            {
                Pop3Client client(settingsFor(server.port()));
                client.open();
                try {
                    authenticateOAuth(client, row.mechanism, kUser, "127.0.0.1", 110, kToken,
                                      OAuthSaslMode::Auto);
                    BOOST_FAIL("must throw");
                } catch (const Pop3AuthError& e) {
                    message = e.what();
                    BOOST_TEST(e.responseCode() == "AUTH");
                }
            }
            BOOST_TEST(server.finish() == ""); // and no second attempt: the token was looked at
            BOOST_TEST(
                message.find("access token refused (status 401, scope https://mail.google.com/") !=
                    std::string::npos,
                message);
            BOOST_TEST(message.find(kToken) == std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(mechanism_not_offered_sends_nothing)
{
    FakePop3Server server(greeting("SASL PLAIN LOGIN") + Steps{awaitClose()});
    std::string message;
    {
        Pop3Client client(settingsFor(server.port()));
        client.open();
        try {
            authenticateOAuth(client, "XOAUTH2", kUser, "127.0.0.1", 110, kToken,
                              OAuthSaslMode::Auto);
            BOOST_FAIL("must throw");
        } catch (const Pop3AuthError& e) {
            message = e.what();
        }
    }
    BOOST_TEST(server.finish() == "");
    BOOST_TEST(server.received() == std::vector<std::string>{"CAPA"},
               boost::test_tools::per_element());
    BOOST_TEST(message ==
               "AUTH XOAUTH2: server does not offer SASL XOAUTH2 (it offers PLAIN LOGIN)");
}

BOOST_AUTO_TEST_CASE(long_token_goes_after_the_plus)
{
    // RFC 5034: AUTH with its initial response must fit 255 octets; a real
    // provider token never does, so the client waits for "+" by itself.
    const std::string token(400, 'x');
    FakePop3Server server(greeting() +
                          Steps{expect("AUTH XOAUTH2"), send("+ \r\n"), awaitClose(3000)});
    {
        Pop3Client client(settingsFor(server.port()));
        client.open();
        try {
            authenticateOAuth(client, "XOAUTH2", kUser, "127.0.0.1", 110, token,
                              OAuthSaslMode::Auto);
        } catch (const Pop3Error&) {
            // the script ends after "+ "; the client's next read times out
        }
    }
    server.finish();
    const auto lines = server.received();
    BOOST_TEST_REQUIRE(lines.size() >= 3u);
    BOOST_TEST(lines[1] == "AUTH XOAUTH2");
    BOOST_TEST(lines[2].size() > 500u);
}
