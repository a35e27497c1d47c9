// oauth.cpp - see oauth.h. The provider defaults are the one place that knows
// Google's and Microsoft's endpoints; the SQL is the same for both dialects
// ($n placeholders, INSERT ... ON CONFLICT for the token upsert).
#include "core/oauth.h"

#include "core/errors.h"
#include "core/rows.h"
#include "core/text.h"

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <Poco/URI.h>
#include <cctype>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace popgate
{

using rows::dbError;
using rows::number;
using rows::text;

namespace
{

const char* const kProfileColumns =
    "id, name, provider, client_id, client_secret, authorization_url, token_url, "
    "device_authorization_url, scope, tenant, grant_type, created_at, updated_at";

OAuthProfile readProfile(RecordSet& rs)
{
    OAuthProfile p;
    p.id = number(rs, "id");
    p.name = text(rs, "name");
    p.provider = parseOAuthProvider(text(rs, "provider"));
    p.clientId = text(rs, "client_id");
    p.sealedClientSecret = text(rs, "client_secret");
    p.authorizationUrl = text(rs, "authorization_url");
    p.tokenUrl = text(rs, "token_url");
    p.deviceAuthorizationUrl = text(rs, "device_authorization_url");
    p.scope = text(rs, "scope");
    p.tenant = text(rs, "tenant");
    p.grant = parseOAuthGrant(text(rs, "grant_type"));
    p.createdAt = number(rs, "created_at");
    p.updatedAt = number(rs, "updated_at");
    return p;
}

bool isLoopbackHost(const std::string& host)
{
    return host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]";
}

// urlProblem - empty when url is https://HOST/..., or http:// on a loopback
// host (a test or a local proxy); a token must not cross a network in clear.
std::string urlProblem(const std::string& url)
{
    try {
        const Poco::URI uri(url);
        if (uri.getHost().empty())
            return "must be an absolute URL (got '" + flatten(url).substr(0, 120) + "')";
        if (uri.getScheme() == "https")
            return {};
        if (uri.getScheme() == "http" && isLoopbackHost(uri.getHost()))
            return {};
        return "must be https:// (http:// only on a loopback address), got '" +
               flatten(url).substr(0, 120) + "'";
    } catch (const Poco::Exception&) {
        return "is not a URL: '" + flatten(url).substr(0, 120) + "'";
    }
}

bool isMicrosoftCommonTenant(const std::string& tenant)
{
    return tenant.empty() || tenant == "common" || tenant == "organizations" ||
           tenant == "consumers";
}

} // namespace

std::string oauthProviderName(OAuthProvider provider)
{
    switch (provider) {
    case OAuthProvider::Generic:
        return "generic";
    case OAuthProvider::Google:
        return "google";
    case OAuthProvider::Microsoft:
        return "microsoft";
    }
    return "?";
}

std::string oauthGrantName(OAuthGrant grant)
{
    switch (grant) {
    case OAuthGrant::AuthorizationCode:
        return "authorization_code";
    case OAuthGrant::DeviceCode:
        return "device_code";
    case OAuthGrant::ClientCredentials:
        return "client_credentials";
    }
    return "?";
}

OAuthProvider parseOAuthProvider(const std::string& text)
{
    for (OAuthProvider p :
         {OAuthProvider::Generic, OAuthProvider::Google, OAuthProvider::Microsoft})
        if (oauthProviderName(p) == text)
            return p;
    throw InputError("provider: unknown provider '" + flatten(text).substr(0, 40) +
                     "' (expected generic, google or microsoft)");
}

OAuthGrant parseOAuthGrant(const std::string& text)
{
    for (OAuthGrant g :
         {OAuthGrant::AuthorizationCode, OAuthGrant::DeviceCode, OAuthGrant::ClientCredentials})
        if (oauthGrantName(g) == text)
            return g;
    throw InputError("grant: unknown grant '" + flatten(text).substr(0, 40) +
                     "' (expected authorization_code, device_code or client_credentials)");
}

OAuthProfile effectiveProfile(const OAuthProfile& profile)
{
    OAuthProfile p = profile;
    auto fill = [](std::string& field, const std::string& value) {
        if (field.empty())
            field = value;
    };
    switch (p.provider) {
    case OAuthProvider::Generic:
        break;
    case OAuthProvider::Google:
        fill(p.authorizationUrl, "https://accounts.google.com/o/oauth2/v2/auth");
        fill(p.tokenUrl, "https://oauth2.googleapis.com/token");
        fill(p.deviceAuthorizationUrl, "https://oauth2.googleapis.com/device/code");
        fill(p.scope, "https://mail.google.com/");
        break;
    case OAuthProvider::Microsoft: {
        const std::string base = "https://login.microsoftonline.com/" +
                                 (p.tenant.empty() ? std::string("common") : p.tenant);
        fill(p.authorizationUrl, base + "/oauth2/v2.0/authorize");
        fill(p.tokenUrl, base + "/oauth2/v2.0/token");
        fill(p.deviceAuthorizationUrl, base + "/oauth2/v2.0/devicecode");
        // App-only access (POP.AccessAsApp) asks for the resource's .default scope;
        // delegated access needs offline_access to get a refresh token.
        fill(p.scope, p.grant == OAuthGrant::ClientCredentials
                          ? "https://outlook.office365.com/.default"
                          : "https://outlook.office.com/POP.AccessAsUser.All offline_access");
        break;
    }
    }
    return p;
}

std::vector<std::string> validateProfile(const OAuthProfile& profile)
{
    std::vector<std::string> problems;
    const OAuthProfile p = effectiveProfile(profile);
    if (!isValidName(p.name))
        problems.push_back("name: must be 1-64 characters of A-Z a-z 0-9 . _ -");
    if (p.clientId.empty())
        problems.push_back("client-id: is required");
    auto url = [&](const char* field, const std::string& value, bool required) {
        if (value.empty()) {
            if (required)
                problems.push_back(std::string(field) + ": is required with grant " +
                                   oauthGrantName(p.grant) + " and provider " +
                                   oauthProviderName(p.provider));
            return;
        }
        const std::string problem = urlProblem(value);
        if (!problem.empty())
            problems.push_back(std::string(field) + ": " + problem);
    };
    url("token-url", p.tokenUrl, true);
    url("auth-url", p.authorizationUrl, p.grant == OAuthGrant::AuthorizationCode);
    url("device-url", p.deviceAuthorizationUrl, p.grant == OAuthGrant::DeviceCode);
    for (char c : p.tenant)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')) {
            problems.push_back("tenant: must be a tenant id or domain (A-Z a-z 0-9 . -)");
            break;
        }
    if (p.grant == OAuthGrant::ClientCredentials) {
        if (!p.hasClientSecret())
            problems.push_back("client-secret: is required with grant client_credentials");
        if (p.provider == OAuthProvider::Microsoft && isMicrosoftCommonTenant(p.tenant))
            problems.push_back("tenant: grant client_credentials needs the directory (tenant) id "
                               "or domain, not '" +
                               (p.tenant.empty() ? std::string("common") : p.tenant) + "'");
    }
    if (p.scope.size() > 2000)
        problems.push_back("scope: too long (at most 2000 characters)");
    return problems;
}

void requireValidProfile(const OAuthProfile& profile)
{
    const auto problems = validateProfile(profile);
    if (problems.empty())
        return;
    std::string text;
    for (const auto& p : problems)
        text += (text.empty() ? "" : "; ") + p;
    throw InputError("oauth profile '" + flatten(profile.name).substr(0, 80) + "': " + text);
}

std::vector<OAuthProfile> OAuthStore::profiles()
{
    std::vector<OAuthProfile> out;
    try {
        Statement select(store_.session());
        select << "SELECT " << kProfileColumns << " FROM oauth_profiles ORDER BY name";
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out.push_back(readProfile(rs));
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the oauth profiles", e);
    }
    return out;
}

std::optional<OAuthProfile> OAuthStore::profile(const std::string& name)
{
    try {
        Statement select(store_.session());
        select << "SELECT " << kProfileColumns << " FROM oauth_profiles WHERE name = $1",
            bind(name);
        select.execute();
        RecordSet rs(select);
        if (rs.moveFirst())
            return readProfile(rs);
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read oauth profile '" + flatten(name) + "'", e);
    }
    return std::nullopt;
}

void OAuthStore::addProfile(OAuthProfile& p)
{
    p.createdAt = p.updatedAt = nowSeconds();
    auto& session = store_.session();
    try {
        Transaction tx(session);
        int exists = 0;
        session << "SELECT count(*) FROM oauth_profiles WHERE name = $1", bind(p.name),
            into(exists), now;
        if (exists)
            throw InputError("oauth profile '" + p.name +
                             "': name: a profile of that name exists already");
        session
            << "INSERT INTO oauth_profiles (name, provider, client_id, client_secret, "
               "authorization_url, token_url, device_authorization_url, scope, tenant, grant_type, "
               "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            bind(p.name), bind(oauthProviderName(p.provider)), bind(p.clientId),
            bind(p.sealedClientSecret), bind(p.authorizationUrl), bind(p.tokenUrl),
            bind(p.deviceAuthorizationUrl), bind(p.scope), bind(p.tenant),
            bind(oauthGrantName(p.grant)), bind(Poco::Int64(p.createdAt)),
            bind(Poco::Int64(p.updatedAt)), now;
        Poco::Int64 id = 0;
        session << "SELECT id FROM oauth_profiles WHERE name = $1", bind(p.name), into(id), now;
        tx.commit();
        p.id = id;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot add oauth profile '" + flatten(p.name) + "'", e);
    }
}

void OAuthStore::updateProfile(OAuthProfile& p)
{
    p.updatedAt = nowSeconds();
    try {
        store_.session()
            << "UPDATE oauth_profiles SET provider = $1, client_id = $2, client_secret = $3, "
               "authorization_url = $4, token_url = $5, device_authorization_url = $6, "
               "scope = $7, tenant = $8, grant_type = $9, updated_at = $10 WHERE id = $11",
            bind(oauthProviderName(p.provider)), bind(p.clientId), bind(p.sealedClientSecret),
            bind(p.authorizationUrl), bind(p.tokenUrl), bind(p.deviceAuthorizationUrl),
            bind(p.scope), bind(p.tenant), bind(oauthGrantName(p.grant)),
            bind(Poco::Int64(p.updatedAt)), bind(Poco::Int64(p.id)), now;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot update oauth profile '" + flatten(p.name) + "'", e);
    }
}

std::vector<std::string> OAuthStore::accountsUsing(const std::string& name)
{
    std::vector<std::string> out;
    try {
        Statement select(store_.session());
        select << "SELECT name FROM accounts WHERE oauth_profile = $1 ORDER BY name", bind(name);
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out.push_back(text(rs, "name"));
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the accounts", e);
    }
    return out;
}

bool OAuthStore::removeProfile(const std::string& name)
{
    const auto users = accountsUsing(name);
    if (!users.empty()) {
        std::string list;
        for (const auto& u : users)
            list += (list.empty() ? "" : ", ") + u;
        throw InputError("oauth profile '" + flatten(name) + "': still used by account(s) " + list);
    }
    try {
        int existed = 0;
        store_.session() << "SELECT count(*) FROM oauth_profiles WHERE name = $1", bind(name),
            into(existed), now;
        store_.session() << "DELETE FROM oauth_profiles WHERE name = $1", bind(name), now;
        return existed != 0;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot remove oauth profile '" + flatten(name) + "'", e);
    }
}

OAuthTokenState OAuthStore::tokens(std::int64_t accountId)
{
    OAuthTokenState s;
    s.accountId = accountId;
    try {
        Statement select(store_.session());
        select << "SELECT refresh_token, access_token, expires_at, last_refresh_at, last_error, "
                  "last_error_at, updated_at FROM oauth_tokens WHERE account_id = $1",
            bind(Poco::Int64(accountId));
        select.execute();
        RecordSet rs(select);
        if (rs.moveFirst()) {
            s.sealedRefreshToken = text(rs, "refresh_token");
            s.sealedAccessToken = text(rs, "access_token");
            s.expiresAt = number(rs, "expires_at");
            s.lastRefreshAt = number(rs, "last_refresh_at");
            s.lastError = text(rs, "last_error");
            s.lastErrorAt = number(rs, "last_error_at");
            s.updatedAt = number(rs, "updated_at");
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the oauth tokens", e);
    }
    return s;
}

void OAuthStore::saveTokens(OAuthTokenState& s)
{
    s.updatedAt = nowSeconds();
    try {
        store_.session()
            << "INSERT INTO oauth_tokens (account_id, refresh_token, access_token, expires_at, "
               "last_refresh_at, last_error, last_error_at, updated_at) VALUES ($1, $2, $3, $4, "
               "$5, $6, "
               "$7, $8) ON CONFLICT (account_id) DO UPDATE SET refresh_token = "
               "excluded.refresh_token, "
               "access_token = excluded.access_token, expires_at = excluded.expires_at, "
               "last_refresh_at = excluded.last_refresh_at, last_error = excluded.last_error, "
               "last_error_at = excluded.last_error_at, updated_at = excluded.updated_at",
            bind(Poco::Int64(s.accountId)), bind(s.sealedRefreshToken), bind(s.sealedAccessToken),
            bind(Poco::Int64(s.expiresAt)), bind(Poco::Int64(s.lastRefreshAt)), bind(s.lastError),
            bind(Poco::Int64(s.lastErrorAt)), bind(Poco::Int64(s.updatedAt)), now;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot save the oauth tokens", e);
    }
}

bool OAuthStore::clearTokens(std::int64_t accountId)
{
    const bool had = tokens(accountId).updatedAt != 0;
    try {
        store_.session() << "DELETE FROM oauth_tokens WHERE account_id = $1",
            bind(Poco::Int64(accountId)), now;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot clear the oauth tokens", e);
    }
    return had;
}

} // namespace popgate
