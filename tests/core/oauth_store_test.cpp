// oauth_store_test - OAuth profiles and token state (core/oauth.cpp): the
// provider defaults, validation, and the store on a real SQLite database.
#define BOOST_TEST_MODULE oauth_store
#include "core/dbdrivers.h"
#include "core/errors.h"
#include "core/oauth.h"
#include "tests/support/testsupport.h"

#include <boost/test/unit_test.hpp>

using namespace popgate;

namespace
{

OAuthProfile base(OAuthProvider provider, OAuthGrant grant)
{
    OAuthProfile p;
    p.name = "p";
    p.provider = provider;
    p.grant = grant;
    p.clientId = "client";
    return p;
}

} // namespace

BOOST_AUTO_TEST_CASE(provider_defaults)
{
    OAuthProfile g = effectiveProfile(base(OAuthProvider::Google, OAuthGrant::AuthorizationCode));
    BOOST_TEST(g.tokenUrl == "https://oauth2.googleapis.com/token");
    BOOST_TEST(g.scope == "https://mail.google.com/");
    OAuthProfile m = base(OAuthProvider::Microsoft, OAuthGrant::ClientCredentials);
    m.tenant = "contoso.onmicrosoft.com";
    m = effectiveProfile(m);
    BOOST_TEST(m.tokenUrl ==
               "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    BOOST_TEST(m.scope == "https://outlook.office365.com/.default");
    OAuthProfile d = effectiveProfile(base(OAuthProvider::Microsoft, OAuthGrant::DeviceCode));
    BOOST_TEST(d.deviceAuthorizationUrl ==
               "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode");
    BOOST_TEST(d.scope.find("offline_access") != std::string::npos);
    OAuthProfile own = base(OAuthProvider::Google, OAuthGrant::AuthorizationCode);
    own.scope = "custom";
    BOOST_TEST(effectiveProfile(own).scope == "custom");
}

BOOST_AUTO_TEST_CASE(validation)
{
    struct Row {
        const char* label;
        OAuthProfile profile;
        std::string problem; // empty: valid
    };
    auto with = [](OAuthProfile p, const std::function<void(OAuthProfile&)>& change) {
        change(p);
        return p;
    };
    const OAuthProfile generic =
        with(base(OAuthProvider::Generic, OAuthGrant::AuthorizationCode), [](auto& p) {
            p.tokenUrl = "https://idp.example.com/token";
            p.authorizationUrl = "https://idp.example.com/auth";
        });
    const std::vector<Row> rows = {
        {"google code grant", base(OAuthProvider::Google, OAuthGrant::AuthorizationCode), ""},
        {"generic complete", generic, ""},
        {"generic without token url", with(generic, [](auto& p) { p.tokenUrl.clear(); }),
         "token-url: is required"},
        {"http to a remote host",
         with(generic, [](auto& p) { p.tokenUrl = "http://idp.example.com/t"; }),
         "token-url: must be https://"},
        {"http to loopback", with(generic, [](auto& p) { p.tokenUrl = "http://127.0.0.1:8080/t"; }),
         ""},
        {"no client id", with(generic, [](auto& p) { p.clientId.clear(); }),
         "client-id: is required"},
        {"device grant needs its url",
         with(generic, [](auto& p) { p.grant = OAuthGrant::DeviceCode; }),
         "device-url: is required"},
        {"client credentials need a secret",
         with(generic, [](auto& p) { p.grant = OAuthGrant::ClientCredentials; }),
         "client-secret: is required with grant client_credentials"},
        {"microsoft app-only needs a tenant",
         with(base(OAuthProvider::Microsoft, OAuthGrant::ClientCredentials),
              [](auto& p) { p.sealedClientSecret = "gcm1:x"; }),
         "tenant: grant client_credentials needs the directory (tenant) id"},
        {"tenant with a slash",
         with(base(OAuthProvider::Microsoft, OAuthGrant::DeviceCode),
              [](auto& p) { p.tenant = "a/b"; }),
         "tenant: must be a tenant id or domain"},
        {"bad name", with(generic, [](auto& p) { p.name = "a b"; }), "name: must be"},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            std::string all;
            for (const auto& p : validateProfile(row.profile))
                all += p + "; ";
            if (row.problem.empty())
                BOOST_TEST(all == "");
            else
                BOOST_TEST(all.find(row.problem) != std::string::npos, all);
        }
    }
    BOOST_CHECK_THROW(requireValidProfile(with(generic, [](auto& p) { p.clientId.clear(); })),
                      InputError);
    BOOST_CHECK_THROW(parseOAuthGrant("password"), InputError);
    BOOST_CHECK_THROW(parseOAuthProvider("yahoo"), InputError);
}

BOOST_AUTO_TEST_CASE(store_round_trip_on_sqlite)
{
    test::TempDir dir;
    registerDatabaseDrivers();
    Config config = Config::defaults();
    config.set("database.path", dir.file("popgate.db"));
    Store store(config, Store::Open::CreateFile);
    store.migrate();
    OAuthStore os(store);

    OAuthProfile p = base(OAuthProvider::Microsoft, OAuthGrant::ClientCredentials);
    p.name = "m365";
    p.tenant = "contoso.onmicrosoft.com";
    p.sealedClientSecret = "gcm1:sealed";
    os.addProfile(p);
    BOOST_TEST(p.id > 0);
    BOOST_CHECK_THROW(os.addProfile(p), InputError);
    auto back = os.profile("m365");
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST(back->tenant == "contoso.onmicrosoft.com");
    BOOST_TEST((back->grant == OAuthGrant::ClientCredentials));
    BOOST_TEST((back->provider == OAuthProvider::Microsoft));
    BOOST_TEST(back->sealedClientSecret == "gcm1:sealed");
    back->scope = "https://outlook.office365.com/.default";
    os.updateProfile(*back);
    BOOST_TEST(os.profiles().size() == 1u);
    BOOST_TEST(os.profile("m365")->scope == "https://outlook.office365.com/.default");

    Account a;
    a.name = "helpdesk";
    a.server = "outlook.office365.com";
    a.auth = AuthKind::OAuth2;
    a.oauthProfile = "m365";
    store.addAccount(a);
    BOOST_CHECK_THROW(os.removeProfile("m365"), InputError); // still used

    OAuthTokenState st = os.tokens(a.id);
    BOOST_TEST(!st.hasAccessToken());
    BOOST_TEST(!st.accessTokenFresh(nowSeconds()));
    st.sealedAccessToken = "gcm1:a";
    st.sealedRefreshToken = "gcm1:r";
    st.expiresAt = nowSeconds() + 3600;
    os.saveTokens(st);
    st.lastError = "token refresh failed: invalid_grant (x)";
    os.saveTokens(st); // the upsert
    const OAuthTokenState again = os.tokens(a.id);
    BOOST_TEST(again.sealedRefreshToken == "gcm1:r");
    BOOST_TEST(again.lastError == "token refresh failed: invalid_grant (x)");
    BOOST_TEST(again.accessTokenFresh(nowSeconds()));
    BOOST_TEST(!again.accessTokenFresh(nowSeconds() + 3560)); // inside the 60 s margin
    BOOST_TEST(os.clearTokens(a.id));
    BOOST_TEST(!os.tokens(a.id).hasRefreshToken());

    store.removeAccount("helpdesk");
    BOOST_TEST(os.removeProfile("m365"));
    BOOST_TEST(!os.removeProfile("m365"));
}
