// oauth_daemon_test - popgated's own OAuth path (plugin/popgated/scheduler.cpp
// accountSecret, plugin/net/oauth_client.cpp accessTokenFor): runScheduler
// in-process with an oauth2 account, the token endpoint of
// tests/support/token_server.h and the fake POP3 server (which offers no
// XOAUTH2, so every login is refused after the token is had). Promised: an
// expired access token is refreshed with the stored refresh token, and the
// new one stored sealed; a refused login does not trust the cached token (the
// next poll refreshes); a refused grant (invalid_grant) is an authentication
// failure: the account backs off, never connects without a token, records
// the endpoint's words, and auto_deactivate_after counts it.
#define BOOST_TEST_MODULE oauth_daemon
#include "core/message_store.h"
#include "core/oauth.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "plugin/popgated/scheduler.h"
#include "tests/support/fake_mailbox_server.h"
#include "tests/support/smtp_sink.h"
#include "tests/support/testdb.h"
#include "tests/support/testsupport.h"
#include "tests/support/token_server.h"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <boost/test/unit_test.hpp>
#include <mutex>

using namespace popgate;
using namespace popgate::test;

namespace
{

class Lines : public Poco::Channel
{
public:
    void log(const Poco::Message& message) override
    {
        std::lock_guard<std::mutex> lock(mutex_);
        text_ += message.getText() + "\n";
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

} // namespace

BOOST_AUTO_TEST_CASE(refresh_and_back_off_after_invalid_grant)
{
    TokenServer idp;
    FakeMailboxServer pop3({});
    SmtpSink sink;
    TempDir dir;
    TestDatabase database("sqlite");
    Config config = database.config();
    config.set("secret_key_file", dir.file("secret.key"));
    config.set("header_key_file", dir.file("header.key"));
    config.set("spool_dir", dir.file("spool"));
    config.set("accounts_dir", dir.file("accounts.d"));
    config.set("secrets_dir", dir.file("secrets"));
    config.set("reinject.host", "127.0.0.1");
    config.set("reinject.port", std::to_string(sink.port()));
    config.set("pop3.read_timeout", "5s");
    config.set("auto_deactivate_after", "3");
    Store store(config, Store::Open::CreateFile);
    store.migrate();
    const SecretBox box = SecretBox::loadOrCreate(config.str("secret_key_file"));
    OAuthStore os(store);

    OAuthProfile p;
    p.name = "idp";
    p.provider = OAuthProvider::Generic;
    p.grant = OAuthGrant::AuthorizationCode;
    p.clientId = idp.clientId;
    p.sealedClientSecret = box.seal(idp.clientSecret);
    p.tokenUrl = idp.url("/token");
    p.authorizationUrl = idp.url("/auth");
    os.addProfile(p);

    Account a;
    a.name = "desk";
    a.server = "127.0.0.1";
    a.port = pop3.port();
    a.security = Security::None;
    a.plaintextAuth = true;
    a.auth = AuthKind::OAuth2;
    a.oauthProfile = "idp";
    a.user = "desk";
    a.mailbox = "desk@example.com";
    a.pollInterval = 60;
    store.addAccount(a);
    const std::string refresh = idp.issueRefreshToken("desk");
    OAuthTokenState st = os.tokens(a.id);
    st.accountId = a.id;
    st.sealedRefreshToken = box.seal(refresh);
    os.saveTokens(st);

    Poco::AutoPtr<Lines> lines(new Lines);
    Poco::Logger& log = Poco::Logger::get("oauth_daemon_test");
    log.setChannel(lines);
    log.setLevel(Poco::Message::PRIO_DEBUG);
    std::atomic<bool> stopping{false}, reload{false};
    auto once = [&] {
        SchedulerOptions options;
        options.once = true;
        return runScheduler(config, options, log, stopping, reload);
    };
    auto status = [&] { return MessageStore(store).status(a.id); };
    auto active = [&] {
        for (const auto& x : store.accounts())
            if (x.name == "desk")
                return x.active;
        return false;
    };

    // No access token yet: refreshed, stored sealed, then used to log in.
    once();
    BOOST_TEST_INFO(lines->text());
    BOOST_TEST(idp.grants("refresh_token") == 1, "the refresh token was used");
    const OAuthTokenState got = os.tokens(a.id);
    BOOST_TEST_REQUIRE(got.hasAccessToken());
    BOOST_TEST(got.sealedAccessToken.rfind("gcm1:", 0) == 0u, "stored sealed");
    BOOST_TEST(box.open(got.sealedAccessToken) == idp.lastAccessToken());
    BOOST_TEST(got.accessTokenFresh(nowSeconds()));
    BOOST_TEST(pop3.sessions().size() == 1u, "it logged in with the token");
    BOOST_TEST(status().authFailures == 1, "the login was refused (no XOAUTH2 offered)");
    BOOST_TEST(lines->text().find(idp.lastAccessToken()) == std::string::npos,
               "the access token is never logged");
    BOOST_TEST(lines->text().find(refresh) == std::string::npos, "nor the refresh token");

    // The login was refused: the cached (still fresh) token is not trusted.
    once();
    BOOST_TEST(idp.grants("refresh_token") == 2, "refreshed again after a refused login");

    // The grant is revoked: invalid_grant is an authentication failure.
    idp.revokeRefreshToken(refresh);
    const std::size_t sessions = pop3.sessions().size();
    const int failuresBefore = status().consecutiveFailures;
    once();
    const AccountStatus refused = status();
    BOOST_TEST(refused.consecutiveFailures == failuresBefore + 1);
    BOOST_TEST(refused.authFailures == 3, "invalid_grant counts as an authentication failure");
    BOOST_TEST(refused.lastError.find("invalid_grant") != std::string::npos,
               "the endpoint's words: " << refused.lastError);
    BOOST_TEST(os.tokens(a.id).lastError.find("invalid_grant") != std::string::npos);
    BOOST_TEST(pop3.sessions().size() == sessions, "no POP3 session without a token");
    const std::int64_t wait = refused.nextPollAt - refused.lastPollAt;
    BOOST_TEST((wait >= 4 * 60 * 9 / 10 - 1 && wait <= 4 * 60 * 11 / 10 + 1),
               "third failure in a row: 4 x the interval, got " << wait << " s");
    BOOST_TEST(!active(), "deactivated after auto_deactivate_after (3) authentication failures");
}
