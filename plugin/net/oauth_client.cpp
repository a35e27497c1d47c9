// oauth_client.cpp - see oauth_client.h. Requests are HTML forms
// (application/x-www-form-urlencoded, client_secret_post) written by
// Poco::Net::HTMLForm; answers are parsed by Poco::JSON. Error texts are built
// from the provider's error and error_description only, scrubbed of every
// secret this request carried, flattened and cut.
#include "plugin/net/oauth_client.h"

#include "core/errors.h"
#include "core/text.h"
#include "plugin/net/pop3_tls.h"

#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTMLForm.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/String.h>
#include <Poco/Timestamp.h>
#include <Poco/URI.h>
#include <mutex>
#include <sstream>
#include <thread>

namespace popgate
{

namespace
{

constexpr std::size_t kMaxResponse = 256 * 1024; // a token answer is a few kB

// scrub - text with every secret replaced, then flattened and cut: a provider
// that echoes what it was sent must not put a secret into our messages.
std::string scrub(std::string text, const std::vector<std::string>& secrets, std::size_t max = 300)
{
    for (const auto& s : secrets) {
        if (s.size() < 4)
            continue;
        for (std::size_t at = text.find(s); at != std::string::npos; at = text.find(s, at))
            text.replace(at, s.size(), "********");
    }
    text = flatten(text);
    if (text.size() > max)
        text = text.substr(0, max) + "...";
    return text;
}

std::string endpointName(const Poco::URI& uri)
{
    return uri.getScheme() + "://" + uri.getAuthority() + uri.getPath();
}

std::string stringField(const Poco::JSON::Object::Ptr& o, const std::string& name)
{
    if (!o || !o->has(name) || o->isNull(name))
        return {};
    try {
        return o->get(name).convert<std::string>();
    } catch (const Poco::Exception&) {
        return {};
    }
}

std::int64_t numberField(const Poco::JSON::Object::Ptr& o, const std::string& name,
                         std::int64_t fallback)
{
    if (!o || !o->has(name) || o->isNull(name))
        return fallback;
    try {
        return o->get(name)
            .convert<Poco::Int64>(); // a number, or a string of digits (some providers)
    } catch (const Poco::Exception&) {
        return fallback;
    }
}

struct HttpAnswer {
    int status = 0;
    std::string reason;
    Poco::JSON::Object::Ptr json; ///< null when the body is not a JSON object
};

// postForm - POST fields to url, read a JSON answer. Throws OAuthError
// (Network/Timeout) when the endpoint cannot be talked to.
HttpAnswer postForm(const std::string& url,
                    const std::vector<std::pair<std::string, std::string>>& fields,
                    const OAuthHttpSettings& settings, const std::string& what,
                    const std::vector<std::string>& secrets)
{
    const Poco::URI uri(url);
    const std::string endpoint = endpointName(uri);
    try {
        std::unique_ptr<Poco::Net::HTTPClientSession> session;
        if (uri.getScheme() == "https") {
            TlsSettings tls;
            tls.caFile = settings.caFile;
            session = std::make_unique<Poco::Net::HTTPSClientSession>(
                uri.getHost(), uri.getPort(), makeClientContext(tls, uri.getHost()));
        } else {
            session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
        }
        session->setTimeout(Poco::Timespan(
            std::chrono::duration_cast<std::chrono::microseconds>(settings.timeout).count()));
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, uri.getPathEtc(),
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        request.set("Accept", "application/json");
        request.set("User-Agent", std::string("popgate/") + POPGATE_VERSION);
        Poco::Net::HTMLForm form;
        form.setEncoding(Poco::Net::HTMLForm::ENCODING_URL);
        for (const auto& [name, value] : fields)
            form.add(name, value);
        form.prepareSubmit(request);
        form.write(session->sendRequest(request));

        Poco::Net::HTTPResponse response;
        std::istream& in = session->receiveResponse(response);
        std::string body;
        char chunk[8192];
        while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
            body.append(chunk, static_cast<std::size_t>(in.gcount()));
            if (body.size() > kMaxResponse)
                throw OAuthError(OAuthErrorKind::Unavailable, what,
                                 what + " failed: " + endpoint + " sent more than 256 kB");
        }
        HttpAnswer answer;
        answer.status = static_cast<int>(response.getStatus());
        answer.reason = response.getReason();
        try {
            Poco::JSON::Parser parser;
            answer.json = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
        } catch (const Poco::Exception&) {
            answer.json = nullptr;
        }
        return answer;
    } catch (const OAuthError&) {
        throw;
    } catch (const Pop3TlsError& e) {
        throw OAuthError(OAuthErrorKind::Unavailable, what,
                         what + " failed: " + endpoint + ": " + e.detail());
    } catch (const Poco::TimeoutException&) {
        throw OAuthError(OAuthErrorKind::Unavailable, what,
                         what + " failed: " + endpoint + " did not answer in time");
    } catch (const Poco::Exception& e) {
        throw OAuthError(OAuthErrorKind::Unavailable, what,
                         what + " failed: " + endpoint + ": " + scrub(e.displayText(), secrets));
    }
}

// failure - the OAuthError for an answer that is not a token.
OAuthError failure(const HttpAnswer& answer, const std::string& what, const std::string& endpoint,
                   const std::vector<std::string>& secrets)
{
    const std::string error = scrub(stringField(answer.json, "error"), secrets, 80);
    const std::string description = scrub(stringField(answer.json, "error_description"), secrets);
    if (!error.empty()) {
        // RFC 6749 5.2: errors that say "try later" are temporary; the rest need the operator.
        const bool temporary =
            answer.status >= 500 || error == "temporarily_unavailable" || error == "server_error";
        return OAuthError(temporary ? OAuthErrorKind::Unavailable : OAuthErrorKind::Refused, what,
                          what + " failed: " + error +
                              (description.empty() ? "" : " (" + description + ")"),
                          error);
    }
    return OAuthError(answer.status >= 500 || answer.status == 429 ? OAuthErrorKind::Unavailable
                                                                   : OAuthErrorKind::Refused,
                      what,
                      what + " failed: " + endpoint + " answered HTTP " +
                          std::to_string(answer.status) + " " + scrub(answer.reason, secrets, 80));
}

} // namespace

std::string oauthErrorKindName(OAuthErrorKind kind)
{
    switch (kind) {
    case OAuthErrorKind::Refused:
        return "refused";
    case OAuthErrorKind::Unavailable:
        return "unavailable";
    }
    return "?";
}

OAuthError::OAuthError(OAuthErrorKind kind, std::string command, const std::string& message,
                       std::string oauthError)
    : OperationError(message), kind_(kind), command_(std::move(command)),
      oauthError_(std::move(oauthError))
{
}

OAuthClient::OAuthClient(const OAuthProfile& profile, std::string clientSecret,
                         OAuthHttpSettings settings)
    : profile_(effectiveProfile(profile)), clientSecret_(std::move(clientSecret)),
      settings_(std::move(settings))
{
}

OAuthTokens
OAuthClient::tokenRequest(const std::string& what,
                          const std::vector<std::pair<std::string, std::string>>& fields)
{
    std::vector<std::pair<std::string, std::string>> all = fields;
    all.emplace_back("client_id", profile_.clientId);
    if (!clientSecret_.empty())
        all.emplace_back("client_secret", clientSecret_);
    std::vector<std::string> secrets{clientSecret_};
    for (const auto& [name, value] : fields)
        if (name != "grant_type" && name != "scope" && name != "redirect_uri")
            secrets.push_back(value);

    const HttpAnswer answer = postForm(profile_.tokenUrl, all, settings_, what, secrets);
    const std::string endpoint = endpointName(Poco::URI(profile_.tokenUrl));
    if (answer.status != 200 || !answer.json || answer.json->has("error"))
        throw failure(answer, what, endpoint, secrets);
    OAuthTokens t;
    t.accessToken = stringField(answer.json, "access_token");
    t.refreshToken = stringField(answer.json, "refresh_token");
    t.expiresIn = numberField(answer.json, "expires_in", 0);
    t.scope = stringField(answer.json, "scope");
    t.tokenType = stringField(answer.json, "token_type");
    if (t.accessToken.empty())
        throw OAuthError(OAuthErrorKind::Unavailable, what,
                         what + " failed: " + endpoint + " answered without an access_token");
    if (!t.tokenType.empty() && Poco::icompare(t.tokenType, "bearer") != 0)
        throw OAuthError(OAuthErrorKind::Unavailable, what,
                         what + " failed: token type '" + scrub(t.tokenType, secrets, 40) +
                             "' is not Bearer");
    return t;
}

OAuthTokens OAuthClient::refresh(const std::string& refreshToken)
{
    // The scope is left out: the refreshed token keeps the scope first granted.
    return tokenRequest("token refresh",
                        {{"grant_type", "refresh_token"}, {"refresh_token", refreshToken}});
}

OAuthTokens OAuthClient::clientCredentials()
{
    std::vector<std::pair<std::string, std::string>> fields{{"grant_type", "client_credentials"}};
    if (!profile_.scope.empty())
        fields.emplace_back("scope", profile_.scope);
    return tokenRequest("token request", fields);
}

DeviceAuthorization OAuthClient::startDeviceAuthorization()
{
    const std::string what = "device authorization";
    std::vector<std::pair<std::string, std::string>> fields{{"client_id", profile_.clientId}};
    if (!profile_.scope.empty())
        fields.emplace_back("scope", profile_.scope);
    const HttpAnswer answer =
        postForm(profile_.deviceAuthorizationUrl, fields, settings_, what, {clientSecret_});
    const std::string endpoint = endpointName(Poco::URI(profile_.deviceAuthorizationUrl));
    if (answer.status != 200 || !answer.json || answer.json->has("error"))
        throw failure(answer, what, endpoint, {clientSecret_});
    DeviceAuthorization d;
    d.deviceCode = stringField(answer.json, "device_code");
    d.userCode = stringField(answer.json, "user_code");
    d.verificationUri = stringField(answer.json, "verification_uri");
    if (d.verificationUri.empty())
        d.verificationUri = stringField(answer.json, "verification_url"); // Google's spelling
    d.verificationUriComplete = stringField(answer.json, "verification_uri_complete");
    d.message = stringField(answer.json, "message");
    d.expiresIn = numberField(answer.json, "expires_in", 900);
    d.interval = std::max<std::int64_t>(1, numberField(answer.json, "interval", 5));
    if (d.deviceCode.empty() || d.userCode.empty() || d.verificationUri.empty())
        throw OAuthError(OAuthErrorKind::Unavailable, what,
                         what + " failed: " + endpoint +
                             " answered without device_code, user_code or verification_uri");
    return d;
}

OAuthTokens
OAuthClient::awaitDeviceAuthorization(const DeviceAuthorization& device,
                                      const std::function<void(std::chrono::seconds)>& sleep)
{
    auto pause = sleep ? sleep : [](std::chrono::seconds s) { std::this_thread::sleep_for(s); };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(device.expiresIn);
    std::int64_t interval = device.interval;
    for (;;) {
        pause(std::chrono::seconds(interval));
        try {
            return tokenRequest("device authorization",
                                {{"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
                                 {"device_code", device.deviceCode}});
        } catch (const OAuthError& e) {
            if (e.oauthError() == "slow_down")
                interval += 5;
            else if (e.oauthError() != "authorization_pending")
                throw;
        }
        if (std::chrono::steady_clock::now() >= deadline)
            throw OAuthError(
                OAuthErrorKind::Refused, "device authorization",
                "device authorization failed: the code expired before it was approved");
    }
}

std::string OAuthClient::authorizationUrl(const std::string& redirectUri, const std::string& state,
                                          const std::string& codeChallenge) const
{
    Poco::URI uri(profile_.authorizationUrl);
    uri.addQueryParameter("response_type", "code");
    uri.addQueryParameter("client_id", profile_.clientId);
    uri.addQueryParameter("redirect_uri", redirectUri);
    if (!profile_.scope.empty())
        uri.addQueryParameter("scope", profile_.scope);
    uri.addQueryParameter("state", state);
    uri.addQueryParameter("code_challenge", codeChallenge);
    uri.addQueryParameter("code_challenge_method", "S256");
    if (profile_.provider == OAuthProvider::Google) {
        // Google issues a refresh token only for offline access, and again only on consent.
        uri.addQueryParameter("access_type", "offline");
        uri.addQueryParameter("prompt", "consent");
    }
    return uri.toString();
}

OAuthTokens OAuthClient::exchangeCode(const std::string& code, const std::string& redirectUri,
                                      const std::string& codeVerifier)
{
    return tokenRequest("authorization code exchange", {{"grant_type", "authorization_code"},
                                                        {"code", code},
                                                        {"redirect_uri", redirectUri},
                                                        {"code_verifier", codeVerifier}});
}

// --- the account's token ------------------------------------------------------

OAuthTokenState storeGrantedTokens(Store& store, const SecretBox& box, const Account& account,
                                   const OAuthTokens& tokens)
{
    OAuthStore os(store);
    OAuthTokenState st = os.tokens(account.id);
    const std::int64_t now = nowSeconds();
    st.sealedAccessToken = box.seal(tokens.accessToken);
    if (!tokens.refreshToken.empty())
        st.sealedRefreshToken = box.seal(tokens.refreshToken);
    st.expiresAt = now + (tokens.expiresIn > 0 ? tokens.expiresIn : kOAuthDefaultLifetime);
    st.lastRefreshAt = now;
    st.lastError.clear();
    st.lastErrorAt = 0;
    os.saveTokens(st);
    return st;
}

namespace
{

// unseal - box.open, its failure typed: a token that does not open under the
// key file is the key's problem (Failure::Secret), not the provider's.
std::string unseal(const SecretBox& box, const std::string& sealed, const std::string& who,
                   const char* what)
{
    try {
        return box.open(sealed);
    } catch (const OperationError& e) {
        throw SecretError(who + ": " + what + ": " + e.what());
    }
}

} // namespace

std::string accessTokenFor(Store& store, const SecretBox& box, const Account& account,
                           Poco::Logger& log, bool forceRefresh)
{
    const std::string who = "account '" + account.name + "'";
    OAuthStore os(store);
    const auto profile = os.profile(account.oauthProfile);
    if (!profile)
        throw OAuthError(OAuthErrorKind::Refused, "token refresh",
                         who + ": oauth profile '" + flatten(account.oauthProfile) +
                             "' does not exist (see `popgatectl oauth profile list`)");
    OAuthTokenState st = os.tokens(account.id);
    const std::int64_t now = nowSeconds();
    if (!forceRefresh && st.accessTokenFresh(now))
        return unseal(box, st.sealedAccessToken, who, "access token");

    OAuthClient client(*profile,
                       profile->hasClientSecret()
                           ? unseal(box, profile->sealedClientSecret, who, "oauth client secret")
                           : "");
    OAuthTokens granted;
    std::string how;
    try {
        if (profile->grant == OAuthGrant::ClientCredentials) {
            how = "client_credentials grant";
            granted = client.clientCredentials();
        } else if (st.hasRefreshToken()) {
            how = "refresh_token grant";
            granted = client.refresh(unseal(box, st.sealedRefreshToken, who, "refresh token"));
        } else {
            throw OAuthError(OAuthErrorKind::Refused, "token refresh",
                             "token refresh failed: no refresh token stored for " + who +
                                 "; run `popgatectl account authorize " + account.name + "`");
        }
    } catch (const OAuthError& e) {
        st.lastError = e.what();
        st.lastErrorAt = now;
        try {
            os.saveTokens(st);
        } catch (const std::exception& saveError) {
            log.warning("account=" + account.name + " oauth: cannot record the refresh error: " +
                        std::string(saveError.what()));
        }
        throw;
    }
    const OAuthTokenState saved = storeGrantedTokens(store, box, account, granted);
    log.information("account=" + account.name + " oauth: new access token (" + how + ") from " +
                    endpointName(Poco::URI(client.profile().tokenUrl)) + ", expires " +
                    Poco::DateTimeFormatter::format(Poco::Timestamp::fromEpochTime(saved.expiresAt),
                                                    Poco::DateTimeFormat::ISO8601_FORMAT));
    return granted.accessToken;
}

} // namespace popgate
