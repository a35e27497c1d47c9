// oauth_grants.h - what only `popgatectl account authorize` needs of OAuth 2.0:
// PKCE (RFC 7636), the anti-CSRF state and the loopback redirect of the
// authorization-code flow (RFC 8252 7.3). popgated never runs a grant flow,
// so none of this is linked into it.
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace popgate
{

/// PKCE (RFC 7636): a random verifier and its S256 challenge.
struct Pkce {
    std::string verifier;
    std::string challenge;
};
/// makePkce - 32 random bytes, base64url; challenge = base64url(SHA-256(verifier)).
Pkce makePkce();
/// randomState - 16 random bytes, base64url (the anti-CSRF state parameter).
std::string randomState();

/// The loopback redirect of the authorization-code flow (RFC 8252 7.3): an
/// HTTP server on 127.0.0.1, port chosen by the system, that waits for one
/// request carrying code and state.
class LoopbackRedirect
{
public:
    /// LoopbackRedirect - listens at once; throws OperationError when it cannot.
    LoopbackRedirect();
    ~LoopbackRedirect();
    LoopbackRedirect(const LoopbackRedirect&) = delete;
    LoopbackRedirect& operator=(const LoopbackRedirect&) = delete;

    /// redirectUri - "http://127.0.0.1:PORT/".
    std::string redirectUri() const;
    /// awaitCode - the code of the first redirect whose state matches; throws
    /// OAuthError when the provider sent an error or nothing came within timeout.
    std::string awaitCode(const std::string& state, std::chrono::seconds timeout);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace popgate
