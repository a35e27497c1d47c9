// oauth_sasl.cpp - see oauth_sasl.h. The SASL exchange itself (base64,
// continuations, the 255-octet AUTH limit, trace redaction) is Pop3Client's;
// this file builds the two responses and decides how to send them.
#include "plugin/net/oauth_sasl.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/String.h>
#include <algorithm>

namespace popgate
{

namespace
{

// describeErrorChallenge - "status 401, scope https://mail.google.com/" from the
// JSON a server sends instead of +OK (RFC 7628 3.2.2); never holds a token.
std::string describeErrorChallenge(const std::string& challenge)
{
    try {
        Poco::JSON::Parser parser;
        auto o = parser.parse(challenge).extract<Poco::JSON::Object::Ptr>();
        std::string out;
        for (const char* key : {"status", "scope", "schemes"})
            if (o->has(key) && !o->isNull(key))
                out += (out.empty() ? "" : ", ") + std::string(key) + " " +
                       flattenServerText(o->get(key).convert<std::string>()).substr(0, 120);
        if (!out.empty())
            return out;
    } catch (const Poco::Exception&) {
    }
    return "server said: " + flattenServerText(challenge).substr(0, 200);
}

bool endsWith(const std::string& text, const std::string& tail)
{
    return text.size() >= tail.size() &&
           text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

std::size_t base64Length(std::size_t bytes)
{
    return (bytes + 2) / 3 * 4;
}

} // namespace

std::string xoauth2Response(const std::string& user, const std::string& token)
{
    return "user=" + user +
           "\x01"
           "auth=Bearer " +
           token + "\x01\x01";
}

std::string oauthBearerResponse(const std::string& user, const std::string& host, int port,
                                const std::string& token)
{
    std::string authzid; // RFC 5801 saslname: ',' -> =2C, '=' -> =3D
    for (char c : user) {
        if (c == ',')
            authzid += "=2C";
        else if (c == '=')
            authzid += "=3D";
        else
            authzid += c;
    }
    return "n,a=" + authzid +
           ",\x01"
           "host=" +
           host +
           "\x01"
           "port=" +
           std::to_string(port) +
           "\x01"
           "auth=Bearer " +
           token + "\x01\x01";
}

OAuthSaslMode saslModeFor(const Account& account)
{
    const std::string host = Poco::toLower(account.server);
    for (const char* microsoft : {"office365.com", "outlook.office.com", "outlook.com"})
        if (host == microsoft || endsWith(host, std::string(".") + microsoft))
            return OAuthSaslMode::Continuation;
    return OAuthSaslMode::Auto;
}

void authenticateOAuth(Pop3Client& client, const Account& account, const std::string& accessToken)
{
    const std::string mechanism = account.auth == AuthKind::OAuth ? "OAUTHBEARER" : "XOAUTH2";
    authenticateOAuth(client, mechanism, account.user, account.server, account.effectivePort(),
                      accessToken, saslModeFor(account));
}

void authenticateOAuth(Pop3Client& client, const std::string& mechanismName,
                       const std::string& user, const std::string& host, int port,
                       const std::string& accessToken, OAuthSaslMode mode)
{
    const std::string mechanism = Poco::toUpper(mechanismName);
    const std::string command = "AUTH " + mechanism;
    if (mechanism != "XOAUTH2" && mechanism != "OAUTHBEARER")
        throw Pop3AuthError(Pop3Stage::Auth, command, "not an OAuth SASL mechanism");
    const Pop3Capabilities& caps = client.capabilities();
    if (caps.known && caps.has("SASL")) {
        const auto offered = caps.saslMechanisms();
        if (std::find(offered.begin(), offered.end(), mechanism) == offered.end()) {
            std::string list;
            for (const auto& m : offered)
                list += (list.empty() ? "" : " ") + m;
            throw Pop3AuthError(Pop3Stage::Auth, command,
                                "server does not offer SASL " + mechanism + " (it offers " + list +
                                    ")");
        }
    }
    const std::string payload = mechanism == "XOAUTH2"
                                    ? xoauth2Response(user, accessToken)
                                    : oauthBearerResponse(user, host, port, accessToken);

    // attempt - one AUTH; challenged says whether the server answered with a
    // challenge at all (a bare -ERR to the inline form is a refusal of the form).
    auto attempt = [&](bool inlineResponse, bool& challenged) {
        bool sentAsContinuation = false;
        std::string errorChallenge;
        try {
            client.authSasl(
                mechanism, inlineResponse ? std::optional<std::string>(payload) : std::nullopt,
                [&](const std::string& challenge) -> std::string {
                    challenged = true;
                    // "+ " with nothing: the server wants the token now (two-step,
                    // or it ignored the inline response).
                    if (challenge.empty() && !sentAsContinuation) {
                        sentAsContinuation = true;
                        return payload;
                    }
                    // Anything else is the error report; the client must answer it
                    // (XOAUTH2: empty line, OAUTHBEARER: %x01) to get the -ERR.
                    errorChallenge = challenge.empty() ? std::string("(empty)") : challenge;
                    return mechanism == "OAUTHBEARER" ? std::string("\x01") : std::string();
                });
        } catch (const Pop3AuthError& e) {
            if (errorChallenge.empty())
                throw;
            throw Pop3AuthError(Pop3Stage::Auth, command,
                                "access token refused (" + describeErrorChallenge(errorChallenge) +
                                    ")",
                                e.serverText());
        }
    };

    bool challenged = false;
    if (mode == OAuthSaslMode::Continuation) {
        attempt(false, challenged);
        return;
    }
    // Pop3Client sends a response that would make AUTH longer than 255 octets
    // after the "+" anyway; only a truly inline response can be refused as such.
    const bool reallyInline = command.size() + 1 + base64Length(payload.size()) <= 253;
    try {
        attempt(true, challenged);
    } catch (const Pop3AuthError& refused) {
        if (mode != OAuthSaslMode::Auto || challenged || !reallyInline)
            throw;
        // The server said -ERR to the inline form without asking for anything:
        // some servers do not take an initial response. Once more, two-step.
        bool again = false;
        try {
            attempt(false, again);
        } catch (const Pop3Error& e) {
            if (e.kind() == Pop3ErrorKind::Network || e.kind() == Pop3ErrorKind::Timeout)
                throw refused; // the server hung up after its -ERR: its first answer is the story
            throw;
        }
    }
}

} // namespace popgate
