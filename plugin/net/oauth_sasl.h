// oauth_sasl.h - logging in to POP3 with an OAuth 2.0 bearer token: SASL
// XOAUTH2 (Google, Microsoft) and OAUTHBEARER (RFC 7628) over Pop3Client::authSasl.
// Knows the variants: the initial response inline (RFC 5034), the mechanism
// name first and the token in a continuation (Microsoft 365, servers that
// refuse an initial response), and the error challenge servers send before -ERR.
// SECURITY: the token goes out only through authSasl (redacted in the trace).
#pragma once

#include "core/account.h"
#include "plugin/net/pop3_client.h"

#include <string>

namespace popgate
{

/// How the token travels: with AUTH (initial response), after the server's "+"
/// (continuation), or Auto: inline, and once more as a continuation when the
/// server refuses the inline form without looking at the token.
enum class OAuthSaslMode { Auto, InitialResponse, Continuation };

/// xoauth2Response - "user=U\x01auth=Bearer T\x01\x01" (before base64).
std::string xoauth2Response(const std::string& user, const std::string& token);
/// oauthBearerResponse - RFC 7628 "n,a=U,\x01host=H\x01port=P\x01auth=Bearer T\x01\x01"
/// with ',' and '=' in U escaped as RFC 5801 wants.
std::string oauthBearerResponse(const std::string& user, const std::string& host, int port,
                                const std::string& token);

/// saslModeFor - Continuation for Microsoft 365's POP3 servers (they want
/// `AUTH XOAUTH2` alone, then the token), Auto for everyone else.
OAuthSaslMode saslModeFor(const Account& account);

/// authenticateOAuth - AUTH XOAUTH2 (auth oauth2) or AUTH OAUTHBEARER (auth
/// oauth) as account.user with the token; mode from saslModeFor(account).
/// Throws Pop3AuthError ("access token refused (status 401 ...)" when the server
/// sent an error challenge; "server does not offer SASL XOAUTH2" when CAPA lists
/// other mechanisms only), Pop3ServerError ([SYS/TEMP] ...), other Pop3Errors.
void authenticateOAuth(Pop3Client& client, const Account& account, const std::string& accessToken);
/// authenticateOAuth - the same with an explicit mechanism ("XOAUTH2" or
/// "OAUTHBEARER"), host and port for OAUTHBEARER, and mode.
void authenticateOAuth(Pop3Client& client, const std::string& mechanism, const std::string& user,
                       const std::string& host, int port, const std::string& accessToken,
                       OAuthSaslMode mode);

} // namespace popgate
