// oauth_store_dialects_test - OAuthStore (core/oauth.cpp) on both dialects:
// profiles and token state written and read back on SQLite and on the real
// PostgreSQL of scripts/servers/ ($POPGATE_TEST_PG_CONNECT; a missing server
// fails the suite). oauth_store_test covers validation and SQLite only.
#define BOOST_TEST_MODULE oauth_store_dialects
#include "core/errors.h"
#include "core/oauth.h"
#include "core/store.h"
#include "tests/support/testdb.h"

#include <boost/test/unit_test.hpp>

using namespace popgate;

BOOST_AUTO_TEST_CASE(profiles_and_tokens_round_trip)
{
    for (const char* dialect : test::kDialects) {
        BOOST_TEST_CONTEXT(dialect)
        {
            test::TestDatabase database(dialect);
            Store store(database.config(), Store::Open::CreateFile);
            store.migrate();
            BOOST_TEST(store.dialect() == dialect);
            OAuthStore os(store);

            OAuthProfile p;
            p.name = "m365";
            p.provider = OAuthProvider::Microsoft;
            p.grant = OAuthGrant::ClientCredentials;
            p.clientId = "client-\xc3\xa9'\"id"; // quotes and UTF-8 survive the bindings
            p.tenant = "contoso.onmicrosoft.com";
            p.sealedClientSecret = "gcm1:sealed";
            os.addProfile(p);
            BOOST_TEST(p.id > 0);
            BOOST_CHECK_THROW(os.addProfile(p), InputError); // the name is unique
            auto back = os.profile("m365");
            BOOST_TEST_REQUIRE(back.has_value());
            BOOST_TEST(back->clientId == p.clientId);
            BOOST_TEST(back->tenant == "contoso.onmicrosoft.com");
            BOOST_TEST((back->grant == OAuthGrant::ClientCredentials));
            BOOST_TEST((back->provider == OAuthProvider::Microsoft));
            BOOST_TEST(back->sealedClientSecret == "gcm1:sealed");
            back->scope = "https://outlook.office365.com/.default";
            os.updateProfile(*back);
            BOOST_TEST(os.profiles().size() == 1u);
            BOOST_TEST(os.profile("m365")->scope == "https://outlook.office365.com/.default");
            BOOST_TEST(!os.profile("absent").has_value());

            Account a;
            a.name = "helpdesk";
            a.server = "outlook.office365.com";
            a.auth = AuthKind::OAuth2;
            a.oauthProfile = "m365";
            store.addAccount(a);
            BOOST_CHECK_THROW(os.removeProfile("m365"), InputError); // still used

            OAuthTokenState st = os.tokens(a.id);
            BOOST_TEST(!st.hasAccessToken());
            BOOST_TEST(!st.hasRefreshToken());
            const std::int64_t expires = nowSeconds() + 3600;
            st.sealedAccessToken = "gcm1:a";
            st.sealedRefreshToken = "gcm1:r";
            st.expiresAt = expires;
            os.saveTokens(st);
            st.lastError = "token refresh failed: invalid_grant (x)";
            os.saveTokens(st); // the upsert: one row, updated
            const OAuthTokenState again = os.tokens(a.id);
            BOOST_TEST(again.sealedAccessToken == "gcm1:a");
            BOOST_TEST(again.sealedRefreshToken == "gcm1:r");
            BOOST_TEST(again.expiresAt == expires);
            BOOST_TEST(again.lastError == "token refresh failed: invalid_grant (x)");
            BOOST_TEST(again.accessTokenFresh(nowSeconds()));
            BOOST_TEST(os.clearTokens(a.id));
            BOOST_TEST(!os.tokens(a.id).hasRefreshToken());
            BOOST_TEST(!os.tokens(a.id).hasAccessToken());

            store.removeAccount("helpdesk");
            BOOST_TEST(os.removeProfile("m365"));
            BOOST_TEST(!os.removeProfile("m365"));
            BOOST_TEST(os.profiles().empty());
        }
    }
}
