// oauth_client.h - the token endpoint side of OAuth 2.0 (RFC 6749, 8628, 7636)
// over Poco::Net HTTP(S) and Poco::JSON: refresh_token, client_credentials,
// device-code and authorization-code grants, and accessTokenFor(), the one
// call popgated and Test Connection make. The loopback redirect and PKCE,
// which only `popgatectl account authorize` needs, are in popgatectl/oauth_grants.h.
// SECURITY: no token, refresh token or client secret ever appears in an
// exception, a log line or the debug trace; http:// only to loopback hosts.
#pragma once

#include "core/account.h"
#include "core/errors.h"
#include "core/oauth.h"
#include "core/secretbox.h"
#include "core/store.h"

#include <Poco/Logger.h>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace popgate
{

/// Whether a failure to obtain a token needs the operator or only time.
enum class OAuthErrorKind {
    Refused,     ///< the provider refused the grant (invalid_grant, invalid_client, no
                 ///< refresh token stored, device code expired): the operator must act
    Unavailable, ///< the endpoint could not be reached, timed out, failed TLS, answered
                 ///< 5xx/429 or nonsense: retry later
};

/// oauthErrorKindName - "refused" | "unavailable".
std::string oauthErrorKindName(OAuthErrorKind kind);

/// A failure to obtain a token: not a POP3 error (no POP3 server was involved).
/// what() is the whole sentence, e.g. "token refresh failed: invalid_grant
/// (Token has been revoked)"; command() says which request ("token refresh").
/// core/policy.h's Failure::OAuthRefused / OAuthUnavailable say what it means.
class OAuthError : public OperationError
{
public:
    OAuthError(OAuthErrorKind kind, std::string command, const std::string& message,
               std::string oauthError = std::string());
    OAuthErrorKind kind() const { return kind_; }
    /// command - "token refresh", "token request", "device authorization", ...; never a secret.
    const std::string& command() const { return command_; }
    /// oauthError - the RFC 6749 error code ("invalid_grant"), empty if none.
    const std::string& oauthError() const { return oauthError_; }

private:
    OAuthErrorKind kind_;
    std::string command_;
    std::string oauthError_;
};

/// What a token endpoint granted. expiresIn 0: it did not say.
struct OAuthTokens {
    std::string accessToken;
    std::string refreshToken; ///< empty: none issued (keep the old one)
    std::int64_t expiresIn = 0;
    std::string scope;
    std::string tokenType;
};

/// The answer of a device authorization endpoint (RFC 8628 section 3.2).
struct DeviceAuthorization {
    std::string deviceCode; ///< secret: sent back to the token endpoint only
    std::string userCode;
    std::string verificationUri;
    std::string verificationUriComplete; ///< may be empty
    std::string message;                 ///< Microsoft's ready-made instruction; may be empty
    std::int64_t expiresIn = 900;
    std::int64_t interval = 5;
};

struct OAuthHttpSettings {
    std::chrono::milliseconds timeout{30000};
    std::string caFile; ///< trusted CAs for https; empty = the system CAs
};

class OAuthClient
{
public:
    /// OAuthClient - profile is taken through effectiveProfile(); clientSecret
    /// is the unsealed secret (empty for a public client).
    OAuthClient(const OAuthProfile& profile, std::string clientSecret,
                OAuthHttpSettings settings = OAuthHttpSettings());

    /// refresh - the refresh_token grant; throws OAuthError ("token refresh failed: ...").
    OAuthTokens refresh(const std::string& refreshToken);
    /// clientCredentials - the client_credentials grant (app-only access);
    /// throws OAuthError ("token request failed: ...").
    OAuthTokens clientCredentials();
    /// startDeviceAuthorization - RFC 8628 step 1; throws OAuthError.
    DeviceAuthorization startDeviceAuthorization();
    /// awaitDeviceAuthorization - polls the token endpoint every interval
    /// (slow_down adds 5 s) until the user approved, refused or the code
    /// expired; sleep is replaceable for tests. Throws OAuthError.
    OAuthTokens awaitDeviceAuthorization(const DeviceAuthorization& device,
                                         const std::function<void(std::chrono::seconds)>& sleep =
                                             std::function<void(std::chrono::seconds)>());
    /// authorizationUrl - the URL the user opens (RFC 6749 4.1.1 with PKCE S256).
    std::string authorizationUrl(const std::string& redirectUri, const std::string& state,
                                 const std::string& codeChallenge) const;
    /// exchangeCode - the authorization_code grant; throws OAuthError.
    OAuthTokens exchangeCode(const std::string& code, const std::string& redirectUri,
                             const std::string& codeVerifier);

    const OAuthProfile& profile() const { return profile_; }

private:
    OAuthTokens tokenRequest(const std::string& what,
                             const std::vector<std::pair<std::string, std::string>>& fields);

    OAuthProfile profile_;
    std::string clientSecret_;
    OAuthHttpSettings settings_;
};

/// accessTokenFor - a usable access token for an oauth/oauth2 account: the
/// stored one while it is valid for more than 60 s, else a new one (refresh_token
/// grant, or client_credentials for an app-only profile), sealed and stored with
/// its expiry. forceRefresh ignores the stored access token (the server refused it).
/// Throws OAuthError (Refused: refused, no such profile or no token stored, "run
/// `popgatectl account authorize NAME`"; Unavailable: try later), SecretError (a
/// stored token or client secret does not open under the key), OperationError (database).
std::string accessTokenFor(Store& store, const SecretBox& box, const Account& account,
                           Poco::Logger& log, bool forceRefresh = false);

/// storeGrantedTokens - seal and store what a grant returned for the account
/// (keeping the old refresh token when none came); returns the saved state.
OAuthTokenState storeGrantedTokens(Store& store, const SecretBox& box, const Account& account,
                                   const OAuthTokens& tokens);

} // namespace popgate
