// oauth_dovecot_test - OAuth end to end: a real Dovecot (scripts/servers/
// dovecot-oauth.sh) whose oauth2 passdb introspects bearer tokens at the
// test's token server (token_server.h), popgated's token lifecycle
// (plugin/net/oauth_client.cpp), XOAUTH2/OAUTHBEARER logins, popgatectl's
// oauth commands, and that no token or client secret shows up anywhere.
// Needs root (Dovecot); a Dovecot that does not start fails the suite.
#define BOOST_TEST_MODULE oauth_dovecot
#include "core/dbdrivers.h"
#include "core/oauth.h"
#include "plugin/net/oauth_client.h"
#include "plugin/net/oauth_sasl.h"
#include "plugin/net/pop3_client.h"
#include "popgatectl/oauth_grants.h"
#include "tests/support/testsupport.h"
#include "tests/support/token_server.h"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/File.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/URI.h>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <type_traits>

using namespace popgate;

namespace
{

// CaptureChannel - every log line popgated's code writes, for the redaction check.
class CaptureChannel : public Poco::Channel
{
public:
    void log(const Poco::Message& msg) override
    {
        std::lock_guard<std::mutex> lock(mutex_);
        text_ += msg.getText() + "\n";
    }
    std::string text()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return text_;
    }

private:
    std::mutex mutex_;
    std::string text_;
};

// World - token server, its Dovecot, a migrated SQLite store and a key; one per run.
struct World {
    test::TempDir dir;
    test::TokenServer tokens;
    std::map<std::string, std::string> env;
    Config config = Config::defaults();
    std::unique_ptr<Store> store;
    std::unique_ptr<SecretBox> box;
    Poco::AutoPtr<CaptureChannel> channel = new CaptureChannel;
    Poco::Logger& log = Poco::Logger::get("oauth-test");
    std::string keyFile;

    World()
    {
        ::chmod(dir.path().c_str(), 0755);
        const std::string state = dir.file("dovecot");
        const auto r =
            test::run(std::string(POPGATE_SOURCE_DIR) + "/scripts/servers/dovecot-oauth.sh",
                      {"start", state, std::to_string(tokens.port())});
        if (r.status != 0)
            throw std::runtime_error("dovecot-oauth.sh start failed: " + r.err + r.out);
        std::ifstream in(state + "/env");
        for (std::string line; std::getline(in, line);)
            if (line.find('=') != std::string::npos)
                env[line.substr(0, line.find('='))] = line.substr(line.find('=') + 1);
        tokens.appUser = user();
        tokens.deviceUser = user();
        registerDatabaseDrivers();
        config.set("database.path", dir.file("popgate.db"));
        keyFile = dir.file("secret.key");
        config.set("secret_key_file", keyFile);
        store = std::make_unique<Store>(config, Store::Open::CreateFile);
        store->migrate();
        box = std::make_unique<SecretBox>(SecretBox::loadOrCreate(keyFile));
        log.setChannel(channel);
        log.setLevel(Poco::Message::PRIO_DEBUG);
    }
    ~World()
    {
        test::run(std::string(POPGATE_SOURCE_DIR) + "/scripts/servers/dovecot-oauth.sh",
                  {"stop", dir.file("dovecot")});
    }
    int port() const { return std::stoi(env.at("POPGATE_TEST_OAUTH_DOVECOT_PORT")); }
    std::string user() const { return env.at("POPGATE_TEST_OAUTH_DOVECOT_USER"); }
    std::string maildir() const { return env.at("POPGATE_TEST_OAUTH_DOVECOT_MAILDIR"); }

    OAuthProfile profile(const std::string& name, OAuthGrant grant)
    {
        OAuthStore os(*store);
        if (auto p = os.profile(name))
            return *p;
        OAuthProfile p;
        p.name = name;
        p.clientId = tokens.clientId;
        p.sealedClientSecret = box->seal(tokens.clientSecret);
        p.tokenUrl = tokens.url("/token");
        p.authorizationUrl = tokens.url("/authorize");
        p.deviceAuthorizationUrl = tokens.url("/device");
        p.scope = "mail";
        p.grant = grant;
        requireValidProfile(p);
        os.addProfile(p);
        return p;
    }
    Account account(const std::string& name, AuthKind auth, const std::string& profileName)
    {
        if (auto a = store->account(name))
            return *a;
        Account a;
        a.name = name;
        a.auth = auth;
        a.server = "127.0.0.1";
        a.port = port();
        a.security = Security::None;
        a.plaintextAuth = true;
        a.user = user();
        a.mailbox = user() + "@example.com";
        a.oauthProfile = profileName;
        store->addAccount(a);
        return a;
    }
    Pop3Settings settings(ProtocolTrace* trace = nullptr) const
    {
        Pop3Settings s;
        s.host = "127.0.0.1";
        s.port = port();
        s.security = Security::None;
        s.allowPlaintextAuth = true;
        s.readTimeout = std::chrono::milliseconds(10000);
        s.trace = trace;
        return s;
    }
};

World& world()
{
    static World w;
    return w;
}

// deliver - a message into the Dovecot user's maildir, owned by nobody.
void deliver(const std::string& maildir, const std::string& message)
{
    static int counter = 0;
    const std::string name =
        std::to_string(::time(nullptr)) + ".oauth" + std::to_string(++counter) + ".test";
    const std::string tmp = maildir + "/tmp/" + name;
    {
        std::ofstream out(tmp, std::ios::binary);
        out << message;
    }
    if (::chown(tmp.c_str(), 65534, 65534) != 0 ||
        ::rename(tmp.c_str(), (maildir + "/new/" + name).c_str()) != 0)
        throw std::runtime_error("cannot deliver into " + maildir);
}

// StringTrace - the protocol trace in memory.
struct StringTrace : ProtocolTrace {
    std::string text;
    void sent(const std::string& line) override { text += "C: " + line + "\n"; }
    void received(const std::string& line) override { text += "S: " + line + "\n"; }
};

void seedTokens(World& w, const Account& a, const std::string& access, std::int64_t expiresAt,
                const std::string& refresh)
{
    OAuthStore os(*w.store);
    OAuthTokenState st;
    st.accountId = a.id;
    st.sealedAccessToken = access.empty() ? "" : w.box->seal(access);
    st.sealedRefreshToken = refresh.empty() ? "" : w.box->seal(refresh);
    st.expiresAt = expiresAt;
    os.saveTokens(st);
}

} // namespace

BOOST_AUTO_TEST_CASE(xoauth2_and_oauthbearer_log_in_to_dovecot)
{
    World& w = world();
    for (AuthKind kind : {AuthKind::OAuth2, AuthKind::OAuth}) {
        BOOST_TEST_CONTEXT(authName(kind))
        {
            const std::string token = w.tokens.issueAccessToken(w.user(), 3600);
            StringTrace trace;
            Pop3Client client(w.settings(&trace));
            client.open();
            Account a;
            a.auth = kind;
            a.user = w.user();
            a.server = "127.0.0.1";
            a.port = w.port();
            authenticateOAuth(client, a, token);
            // Logged in as that user: STAT sees exactly what is in its maildir.
            int inMaildir = 0;
            for (const char* sub : {"/new", "/cur"}) {
                std::vector<std::string> names;
                Poco::File(w.maildir() + sub).list(names);
                inMaildir += static_cast<int>(names.size());
            }
            BOOST_TEST(client.stat().messages == inMaildir);
            client.quit();
            BOOST_TEST(trace.text.find(token) == std::string::npos, trace.text);
            BOOST_TEST(
                trace.text.find(kind == AuthKind::OAuth ? "AUTH OAUTHBEARER" : "AUTH XOAUTH2") !=
                std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(dovecot_refuses_an_unknown_token_clearly)
{
    World& w = world();
    const std::string token = "at-not-issued-by-anyone";
    Pop3Client client(w.settings());
    client.open();
    Account a;
    a.auth = AuthKind::OAuth2;
    a.user = w.user();
    a.server = "127.0.0.1";
    try {
        authenticateOAuth(client, a, token);
        BOOST_FAIL("must throw");
    } catch (const Pop3AuthError& e) {
        const std::string message = e.what();
        BOOST_TEST(message.find("AUTH XOAUTH2: access token refused (status 401") == 0u, message);
        BOOST_TEST(message.find(token) == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(expired_access_token_is_refreshed_and_the_fetch_goes_on)
{
    World& w = world();
    w.profile("test", OAuthGrant::AuthorizationCode);
    const Account a = w.account("expiring", AuthKind::OAuth2, "test");
    const std::string old = w.tokens.issueAccessToken(w.user(), -5); // Dovecot would refuse it
    const std::string refresh = w.tokens.issueRefreshToken(w.user());

    struct Row {
        const char* label;
        std::int64_t expiresIn; // what our state says about the stored token
        bool refreshed;
    };
    const std::vector<Row> rows = {
        {"expired 5 s ago", -5, true},
        {"expires within the 60 s margin", 30, true},
        {"valid for an hour: reused", 3600, false},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const std::string stored =
                row.refreshed ? old : w.tokens.issueAccessToken(w.user(), 3600);
            seedTokens(w, a, stored, nowSeconds() + row.expiresIn, refresh);
            const int before = w.tokens.grants("refresh_token");
            const std::string token = accessTokenFor(*w.store, *w.box, a, w.log);
            BOOST_TEST(w.tokens.grants("refresh_token") == before + (row.refreshed ? 1 : 0));
            BOOST_TEST((token == stored) == !row.refreshed);
            const OAuthTokenState st = OAuthStore(*w.store).tokens(a.id);
            BOOST_TEST(st.expiresAt > nowSeconds() + 3000);
            BOOST_TEST(w.box->open(st.sealedAccessToken) == token);
            BOOST_TEST(w.box->open(st.sealedRefreshToken) ==
                       refresh); // none new: the old one stays
            BOOST_TEST(st.lastError.empty());
        }
    }

    // and the fetch goes on with the refreshed token: login, UIDL, RETR
    seedTokens(w, a, old, nowSeconds() - 5, refresh);
    deliver(w.maildir(), "From: a@example.com\r\nSubject: oauth\r\n\r\nhello over oauth\r\n");
    const std::string token = accessTokenFor(*w.store, *w.box, a, w.log);
    Pop3Client client(w.settings());
    client.open();
    authenticateOAuth(client, a, token);
    const auto uids = client.uidl();
    BOOST_TEST_REQUIRE(!uids.empty());
    std::ostringstream body;
    client.retrieve(uids.back().number, body);
    BOOST_TEST(body.str().find("hello over oauth") != std::string::npos);
    client.quit();
    BOOST_TEST(w.channel->text().find("oauth: new access token (refresh_token grant)") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(revoked_refresh_token_gives_the_clear_error)
{
    World& w = world();
    w.profile("test", OAuthGrant::AuthorizationCode);
    const Account a = w.account("revoked", AuthKind::OAuth2, "test");
    const std::string refresh = w.tokens.issueRefreshToken(w.user());
    w.tokens.revokeRefreshToken(refresh);
    seedTokens(w, a, "", 0, refresh);
    for (int poll = 1; poll <= 2; ++poll) { // every poll: the same error, no crash
        BOOST_TEST_CONTEXT("poll " << poll)
        {
            try {
                accessTokenFor(*w.store, *w.box, a, w.log);
                BOOST_FAIL("must throw");
            } catch (const OAuthError& e) {
                BOOST_TEST(std::string(e.what()) ==
                           "token refresh failed: invalid_grant (Token has been revoked)");
                BOOST_TEST((e.kind() == OAuthErrorKind::Refused));
                BOOST_TEST(e.oauthError() == "invalid_grant");
            }
            const OAuthTokenState st = OAuthStore(*w.store).tokens(a.id);
            BOOST_TEST(st.lastError ==
                       "token refresh failed: invalid_grant (Token has been revoked)");
            BOOST_TEST(st.lastErrorAt > 0);
        }
    }
    // no refresh token at all: says what to run
    const Account b = w.account("never-authorized", AuthKind::OAuth2, "test");
    try {
        accessTokenFor(*w.store, *w.box, b, w.log);
        BOOST_FAIL("must throw");
    } catch (const OAuthError& e) {
        BOOST_TEST(std::string(e.what()).find("popgatectl account authorize never-authorized") !=
                   std::string::npos);
    }
}

// What popgated's scheduler tells apart by type, never by text: a grant the
// provider refused (the operator must act), a token endpoint that cannot be
// reached (retry later), and a stored token that does not open under the key
// (neither: Failure::Secret). An OAuthError is no POP3 error.
BOOST_AUTO_TEST_CASE(token_failures_are_typed)
{
    World& w = world();
    w.profile("test", OAuthGrant::AuthorizationCode);
    int closed = 0;
    {
        Poco::Net::ServerSocket s(Poco::Net::SocketAddress("127.0.0.1", 0));
        closed = s.address().port();
    }
    {
        OAuthProfile p = w.profile("test", OAuthGrant::AuthorizationCode);
        p.name = "down";
        p.tokenUrl = "http://127.0.0.1:" + std::to_string(closed) + "/token";
        OAuthStore(*w.store).addProfile(p);
    }
    enum class Expect { Refused, Unavailable, Secret };
    struct Row {
        const char* label;
        std::string account, profile;
        std::function<void(const Account&)> seed;
        Expect expect;
        std::string words;
    };
    const std::vector<Row> rows = {
        {"revoked refresh token", "typed-revoked", "test",
         [&](const Account& a) {
             const std::string refresh = w.tokens.issueRefreshToken(w.user());
             w.tokens.revokeRefreshToken(refresh);
             seedTokens(w, a, "", 0, refresh);
         },
         Expect::Refused, "invalid_grant"},
        {"no refresh token stored", "typed-never", "test", [](const Account&) {}, Expect::Refused,
         "popgatectl account authorize typed-never"},
        {"no such profile", "typed-orphan", "gone", [](const Account&) {}, Expect::Refused,
         "oauth profile 'gone' does not exist"},
        {"token endpoint down", "typed-down", "down",
         [&](const Account& a) { seedTokens(w, a, "", 0, w.tokens.issueRefreshToken(w.user())); },
         Expect::Unavailable, "token refresh failed: http://127.0.0.1:" + std::to_string(closed)},
        {"refresh token sealed under another key", "typed-rekeyed", "test",
         [&](const Account& a) {
             OAuthTokenState st;
             st.accountId = a.id;
             st.sealedRefreshToken =
                 SecretBox::fromKey(std::vector<unsigned char>(32, 7)).seal("rt-elsewhere");
             OAuthStore(*w.store).saveTokens(st);
         },
         Expect::Secret, "account 'typed-rekeyed': refresh token: "},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const Account a = w.account(row.account, AuthKind::OAuth2, row.profile);
            row.seed(a);
            std::optional<Expect> got;
            std::string what;
            try {
                accessTokenFor(*w.store, *w.box, a, w.log);
            } catch (const OAuthError& e) {
                got = e.kind() == OAuthErrorKind::Refused ? Expect::Refused : Expect::Unavailable;
                what = e.what();
                BOOST_TEST(!e.command().empty());
                BOOST_TEST(oauthErrorKindName(e.kind()) ==
                           (row.expect == Expect::Refused ? "refused" : "unavailable"));
            } catch (const SecretError& e) {
                got = Expect::Secret;
                what = e.what();
            }
            BOOST_TEST_REQUIRE(got.has_value(), "must throw");
            BOOST_TEST((*got == row.expect), what);
            BOOST_TEST(what.find(row.words) != std::string::npos, what);
        }
    }
    // Not a Pop3Error, and an OperationError as every failed piece of work is (exit 1).
    static_assert(!std::is_base_of<Pop3Error, OAuthError>::value);
    static_assert(std::is_base_of<OperationError, OAuthError>::value);
    static_assert(std::is_base_of<OperationError, SecretError>::value);
}

BOOST_AUTO_TEST_CASE(client_credentials_grant_logs_in)
{
    World& w = world();
    w.profile("app", OAuthGrant::ClientCredentials);
    const Account a = w.account("app-only", AuthKind::OAuth2, "app");
    const int before = w.tokens.grants("client_credentials");
    const std::string token = accessTokenFor(*w.store, *w.box, a, w.log);
    BOOST_TEST(w.tokens.grants("client_credentials") == before + 1);
    BOOST_TEST(accessTokenFor(*w.store, *w.box, a, w.log) == token); // cached until near expiry
    BOOST_TEST(accessTokenFor(*w.store, *w.box, a, w.log, true) != token); // forced
    Pop3Client client(w.settings());
    client.open();
    authenticateOAuth(client, a, accessTokenFor(*w.store, *w.box, a, w.log));
    client.quit();
}

BOOST_AUTO_TEST_CASE(authorization_code_with_loopback_redirect)
{
    World& w = world();
    OAuthClient client(w.profile("test", OAuthGrant::AuthorizationCode), w.tokens.clientSecret);
    LoopbackRedirect redirect;
    const Pkce pkce = makePkce();
    const std::string state = randomState();
    const Poco::URI url(client.authorizationUrl(redirect.redirectUri(), state, pkce.challenge));
    std::map<std::string, std::string> q;
    for (const auto& [k, v] : url.getQueryParameters())
        q[k] = v;
    BOOST_TEST(q["response_type"] == "code");
    BOOST_TEST(q["redirect_uri"] == redirect.redirectUri());
    BOOST_TEST(q["code_challenge_method"] == "S256");
    // the browser: the user logs in, the server redirects to the loopback address
    w.tokens.approveCode("code-42", w.user(), q["code_challenge"]);
    std::thread browser([&] {
        Poco::Net::HTTPClientSession http("127.0.0.1", Poco::URI(redirect.redirectUri()).getPort());
        Poco::Net::HTTPRequest wrong(Poco::Net::HTTPRequest::HTTP_GET, "/?code=forged&state=other");
        http.sendRequest(wrong);
        Poco::Net::HTTPResponse r1;
        http.receiveResponse(r1).ignore(1 << 20);
        Poco::Net::HTTPClientSession http2("127.0.0.1",
                                           Poco::URI(redirect.redirectUri()).getPort());
        Poco::URI back(redirect.redirectUri());
        back.addQueryParameter("code", "code-42");
        back.addQueryParameter("state", state);
        Poco::Net::HTTPRequest ok(Poco::Net::HTTPRequest::HTTP_GET, back.getPathEtc());
        http2.sendRequest(ok);
        Poco::Net::HTTPResponse r2;
        http2.receiveResponse(r2).ignore(1 << 20);
    });
    const std::string code = redirect.awaitCode(state, std::chrono::seconds(10));
    browser.join();
    BOOST_TEST(code == "code-42");
    const OAuthTokens t = client.exchangeCode(code, redirect.redirectUri(), pkce.verifier);
    BOOST_TEST(!t.refreshToken.empty());
    Pop3Client pop(w.settings());
    pop.open();
    authenticateOAuth(pop, "XOAUTH2", w.user(), "127.0.0.1", w.port(), t.accessToken,
                      OAuthSaslMode::Auto);
    pop.quit();
    // a wrong verifier is refused by the server, and said so
    w.tokens.approveCode("code-43", w.user(), q["code_challenge"]);
    try {
        client.exchangeCode("code-43", redirect.redirectUri(), "not-the-verifier");
        BOOST_FAIL("must throw");
    } catch (const OAuthError& e) {
        BOOST_TEST(std::string(e.what()) ==
                   "authorization code exchange failed: invalid_grant (PKCE verification failed)");
    }
}

BOOST_AUTO_TEST_CASE(popgatectl_device_flow_and_nothing_secret_anywhere)
{
    World& w = world();
    test::TempDir cliDir;
    const std::string conf =
        cliDir.write("popgate.conf", "database.path = " + w.dir.file("popgate.db") +
                                         "\nsecret_key_file = " + w.keyFile +
                                         "\naccounts_dir = " + cliDir.file("accounts.d") + "\n");
    std::string everything; // every output, for the redaction check at the end
    auto ctl = [&](std::vector<std::string> args, const std::string& input = "") {
        args.insert(args.begin(), "--config=" + conf);
        const auto r = test::run(test::binary("popgatectl/popgatectl"), args, input);
        everything += r.out + r.err;
        return r;
    };
    auto r = ctl({"oauth", "profile", "add", "--client-secret=x", "dev"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(r.err.find("never given as an argument") != std::string::npos, r.err);
    r = ctl({"oauth", "profile", "add", "dev", "--client-id=" + w.tokens.clientId,
             "--grant=device_code", "--token-url=" + w.tokens.url("/token"),
             "--device-url=" + w.tokens.url("/device"), "--scope=mail", "--client-secret-stdin"},
            w.tokens.clientSecret + "\n");
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    r = ctl({"oauth", "profile", "add", "plain", "--client-id=x",
             "--token-url=http://example.com/token", "--grant=client_credentials"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(r.err.find("token-url: must be https://") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("client-secret: is required with grant client_credentials") !=
                   std::string::npos,
               r.err);
    r = ctl({"account", "add", "device", "--server=127.0.0.1", "--port=" + std::to_string(w.port()),
             "--security=none", "--plaintext-auth=yes", "--auth=oauth", "--oauth-profile=dev",
             "--user=" + w.user(), "--mailbox=" + w.user() + "@example.com"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);

    w.tokens.pendingPolls = 1;
    r = ctl({"account", "authorize", "device"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err + r.out);
    BOOST_TEST(r.out.find("enter the code WDJB-MJHT") != std::string::npos, r.out);
    BOOST_TEST(
        r.out.find("account 'device' authorized (device_code): access token stored, expires ") !=
            std::string::npos,
        r.out);
    BOOST_TEST(r.out.find("refresh token: stored") != std::string::npos);
    const std::string issued = w.tokens.lastAccessToken();

    r = ctl({"oauth", "status", "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    Poco::JSON::Parser parser;
    auto arr = parser.parse(r.out).extract<Poco::JSON::Array::Ptr>();
    bool found = false;
    for (std::size_t i = 0; i < arr->size(); ++i)
        if (arr->getObject(i)->getValue<std::string>("account") == "device") {
            found = true;
            BOOST_TEST(arr->getObject(i)->getValue<bool>("access_token"));
            BOOST_TEST(arr->getObject(i)->getValue<bool>("refresh_token"));
        }
    BOOST_TEST(found);
    r = ctl({"oauth", "profile", "show", "dev", "--json"});
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out.find("\"client_secret_set\": true") != std::string::npos, r.out);
    ctl({"oauth", "profile", "list", "--json"});
    ctl({"oauth", "profile", "show", "dev"});
    ctl({"oauth", "status"});
    ctl({"account", "show", "device", "--json"});
    r = ctl({"oauth", "profile", "remove", "dev"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(r.err.find("still used by account(s) device") != std::string::npos, r.err);

    // popgated's path with what popgatectl stored: the token works in Dovecot
    const Account a = *w.store->account("device");
    StringTrace trace;
    const std::string token = accessTokenFor(*w.store, *w.box, a, w.log);
    BOOST_TEST(token == issued);
    {
        Pop3Client client(w.settings(&trace));
        client.open();
        authenticateOAuth(client, a, token);
        client.quit();
    }
    // a revoked refresh token through the whole chain: error text, log, status
    const std::string refresh = w.box->open(OAuthStore(*w.store).tokens(a.id).sealedRefreshToken);
    w.tokens.revokeRefreshToken(refresh);
    std::string error;
    try {
        accessTokenFor(*w.store, *w.box, a, w.log, true);
    } catch (const OAuthError& e) {
        error = e.what();
    }
    BOOST_TEST(error == "token refresh failed: invalid_grant (Token has been revoked)");
    r = ctl({"oauth", "status", "device"});
    BOOST_TEST(r.out.find("token refresh failed: invalid_grant (Token has been revoked)") !=
                   std::string::npos,
               r.out);
    // a Dovecot refusal, with the trace on
    {
        Pop3Client client(w.settings(&trace));
        client.open();
        bool refused = false;
        try {
            authenticateOAuth(client, a, token + "x");
        } catch (const Pop3Error& e) {
            refused = true;
            BOOST_TEST(std::string(e.what()).find(
                           "AUTH OAUTHBEARER: access token refused (status invalid_token)") == 0u,
                       e.what());
            error += std::string("\n") + e.what();
        }
        BOOST_TEST(refused, "Dovecot refuses a wrong token");
    }

    const std::string all =
        everything + "\n" + error + "\n" + trace.text + "\n" + w.channel->text();
    for (const std::string& secret : {issued, token, refresh, w.tokens.clientSecret}) {
        BOOST_TEST_CONTEXT("secret of " << secret.size() << " bytes")
        {
            BOOST_TEST(all.find(secret) == std::string::npos);
        }
    }
    BOOST_TEST(trace.text.find("AUTH OAUTHBEARER ********") != std::string::npos, trace.text);
}
