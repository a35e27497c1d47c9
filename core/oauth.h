// oauth.h - OAuth profiles (one client registration per provider: endpoints,
// client id, sealed client secret, scope, tenant, grant) and each account's
// token state (sealed refresh and access tokens, expiry, last refresh error),
// with their store over Store. Pure: no HTTP, no sockets (those live in
// plugin/net/oauth_client.h). Plaintext tokens and secrets never live here.
#pragma once

#include "core/store.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace popgate
{

enum class OAuthProvider { Generic, Google, Microsoft };
enum class OAuthGrant { AuthorizationCode, DeviceCode, ClientCredentials };

/// oauthProviderName - "generic" | "google" | "microsoft".
std::string oauthProviderName(OAuthProvider provider);
/// oauthGrantName - "authorization_code" | "device_code" | "client_credentials".
std::string oauthGrantName(OAuthGrant grant);
/// parseOAuthProvider / parseOAuthGrant - throw InputError naming the accepted values.
OAuthProvider parseOAuthProvider(const std::string& text);
OAuthGrant parseOAuthGrant(const std::string& text);

/// Refresh an access token this many seconds before it expires.
constexpr std::int64_t kOAuthRefreshMargin = 60;
/// The lifetime assumed when a token endpoint does not say (expires_in).
constexpr std::int64_t kOAuthDefaultLifetime = 3600;

struct OAuthProfile {
    std::int64_t id = 0;
    std::string name;
    OAuthProvider provider = OAuthProvider::Generic;
    std::string clientId;
    std::string sealedClientSecret; ///< SecretBox ciphertext; empty for a public client
    std::string authorizationUrl;   ///< empty: the provider's default
    std::string tokenUrl;
    std::string deviceAuthorizationUrl;
    std::string scope;  ///< space-separated; empty: the provider's default for the grant
    std::string tenant; ///< Microsoft: tenant id or domain; empty = "common"
    OAuthGrant grant = OAuthGrant::AuthorizationCode;
    std::int64_t createdAt = 0;
    std::int64_t updatedAt = 0;

    bool hasClientSecret() const { return !sealedClientSecret.empty(); }
};

/// effectiveProfile - the profile with empty URLs and scope filled from the
/// provider (Google, Microsoft with its tenant); a generic profile unchanged.
OAuthProfile effectiveProfile(const OAuthProfile& profile);

/// validateProfile - problems ("FIELD: reason") of the effective profile; a
/// sealed client secret counts as set. Token endpoints must be https, or http
/// on a loopback address. Empty when valid.
std::vector<std::string> validateProfile(const OAuthProfile& profile);
/// requireValidProfile - throws InputError "oauth profile 'NAME': FIELD: reason; ...".
void requireValidProfile(const OAuthProfile& profile);

struct OAuthTokenState {
    std::int64_t accountId = 0;
    std::string sealedRefreshToken; ///< SecretBox ciphertext; empty: none
    std::string sealedAccessToken;  ///< SecretBox ciphertext; empty: none
    std::int64_t expiresAt = 0;     ///< Unix seconds the access token expires
    std::int64_t lastRefreshAt = 0;
    std::string lastError; ///< "token refresh failed: invalid_grant (...)"; never a token
    std::int64_t lastErrorAt = 0;
    std::int64_t updatedAt = 0;

    bool hasRefreshToken() const { return !sealedRefreshToken.empty(); }
    bool hasAccessToken() const { return !sealedAccessToken.empty(); }
    /// accessTokenFresh - an access token that stays valid for more than margin seconds after now.
    bool accessTokenFresh(std::int64_t now, std::int64_t margin = kOAuthRefreshMargin) const
    {
        return hasAccessToken() && expiresAt - now > margin;
    }
};

class OAuthStore
{
public:
    explicit OAuthStore(Store& store) : store_(store) {}

    /// profiles - all profiles by name.
    std::vector<OAuthProfile> profiles();
    /// profile - one profile, or nothing.
    std::optional<OAuthProfile> profile(const std::string& name);
    /// addProfile - insert; sets id and times. Throws InputError if the name exists.
    void addProfile(OAuthProfile& profile);
    /// updateProfile - write every field of an existing profile (by id); sets updatedAt.
    void updateProfile(OAuthProfile& profile);
    /// removeProfile - false when there was no such profile. Throws InputError
    /// while accounts still name it.
    bool removeProfile(const std::string& name);
    /// accountsUsing - the names of the accounts whose oauth-profile is name.
    std::vector<std::string> accountsUsing(const std::string& name);

    /// tokens - an account's token state (empty, accountId set, when it has none).
    OAuthTokenState tokens(std::int64_t accountId);
    /// saveTokens - insert or replace the account's token state; sets updatedAt.
    void saveTokens(OAuthTokenState& state);
    /// clearTokens - forget the account's tokens; false when it had none.
    bool clearTokens(std::int64_t accountId);

private:
    Store& store_;
};

} // namespace popgate
