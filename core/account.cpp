// account.cpp - the account field table and validation (see account.h).
// Parsing a single field only checks that field; validateAccount checks the
// record as a whole (password iff authentication is password, and so on).
#include "core/account.h"

#include "core/errors.h"
#include "core/recipients.h"
#include "core/text.h"

#include <Poco/String.h>
#include <algorithm>
#include <arpa/inet.h>
#include <cctype>

namespace popgate
{

const char* const kInsecureSecurityWarning =
    "connection security is not ssl-tls: selecting a less secure protocol like STARTTLS or "
    "None may expose your data; to better protect it, select ssl-tls";

std::string authName(AuthKind kind)
{
    switch (kind) {
    case AuthKind::None:
        return "none";
    case AuthKind::Password:
        return "password";
    case AuthKind::OAuth:
        return "oauth";
    case AuthKind::OAuth2:
        return "oauth2";
    }
    return "?";
}

std::string securityName(Security security)
{
    switch (security) {
    case Security::None:
        return "none";
    case Security::StartTls:
        return "starttls";
    case Security::SslTls:
        return "ssl-tls";
    }
    return "?";
}

AuthKind parseAuth(const std::string& text)
{
    const std::string v = Poco::toLower(trim(text));
    if (v == "none")
        return AuthKind::None;
    if (v == "password")
        return AuthKind::Password;
    if (v == "oauth")
        return AuthKind::OAuth;
    if (v == "oauth2")
        return AuthKind::OAuth2;
    throw InputError("unknown authentication '" + flatten(text) +
                     "' (expected none, password, oauth or oauth2)");
}

Security parseSecurity(const std::string& text)
{
    const std::string v = Poco::toLower(trim(text));
    if (v == "none")
        return Security::None;
    if (v == "starttls")
        return Security::StartTls;
    if (v == "ssl-tls" || v == "ssl/tls" || v == "tls")
        return Security::SslTls;
    throw InputError("unknown connection security '" + flatten(text) +
                     "' (expected none, starttls or ssl-tls)");
}

int Account::effectivePort() const
{
    if (port != 0)
        return port;
    return security == Security::SslTls ? 995 : 110;
}

std::vector<std::string> Account::recipients() const
{
    std::vector<std::string> list = splitList(deliverTo);
    if (list.empty() && !mailbox.empty())
        list.push_back(mailbox);
    return list;
}

namespace
{

constexpr std::size_t kMaxText = 1024;

std::string boundedText(const std::string& value, std::size_t limit = kMaxText)
{
    std::string v = trim(value);
    if (v.size() > limit)
        throw InputError("too long (" + std::to_string(v.size()) + " characters, at most " +
                         std::to_string(limit) + ")");
    for (unsigned char c : v)
        if (c < 0x20 || c == 0x7f)
            throw InputError("contains a control character");
    return v;
}

bool isHostName(const std::string& host)
{
    if (host.empty() || host.size() > 253)
        return false;
    std::string::size_type start = 0;
    while (true) {
        auto dot = host.find('.', start);
        std::string label = host.substr(start, dot == std::string::npos ? dot : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (unsigned char c : label)
            if (!std::isalnum(c) && c != '-' && c != '_')
                return false;
        if (dot == std::string::npos)
            return true;
        start = dot + 1;
        if (start == host.size())
            return true; // a trailing dot: fully qualified
    }
}

bool isIpAddress(const std::string& host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool isMailAddress(const std::string& address, bool domainRequired)
{
    const auto at = address.rfind('@');
    if (at == std::string::npos)
        return !domainRequired && !address.empty() &&
               address.find_first_of(" <>,;\"") == std::string::npos;
    const std::string local = address.substr(0, at);
    const std::string domain = address.substr(at + 1);
    return !local.empty() && local.find_first_of(" <>,;") == std::string::npos &&
           isHostName(domain);
}

std::string normalisePin(const std::string& value)
{
    std::string hex;
    for (char c : trim(value))
        if (c != ':')
            hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
        throw InputError("expected a SHA-256 fingerprint (64 hex digits, colons allowed)");
    return hex;
}

std::string filterName(const std::string& value)
{
    std::string v = trim(value);
    if (!v.empty() && !isValidName(v))
        throw InputError("'" + flatten(v).substr(0, 80) +
                         "' is not a filter name (1-64 of A-Z a-z 0-9 . _ -)");
    return v;
}

std::vector<AccountField> makeFields()
{
    return {
        {"type", "type of mail server (pop3)",
         [](Account& a, const std::string& v) {
             const std::string t = Poco::toLower(trim(v));
             if (t != "pop3")
                 throw InputError("unknown type '" + flatten(v) + "' (expected pop3)");
             a.type = t;
         },
         [](const Account& a) { return a.type; }},
        {"auth", "authentication: none, password, oauth or oauth2",
         [](Account& a, const std::string& v) { a.auth = parseAuth(v); },
         [](const Account& a) { return authName(a.auth); }},
        {"server", "remote POP3 server: fully qualified host name or IP address",
         [](Account& a, const std::string& v) { a.server = Poco::toLower(boundedText(v, 253)); },
         [](const Account& a) { return a.server; }},
        {"port", "TCP port (default 995 for ssl-tls, else 110)",
         [](Account& a, const std::string& v) {
             a.port = static_cast<int>(parseInteger(v, 1, 65535));
         },
         [](const Account& a) { return std::to_string(a.effectivePort()); }},
        {"user", "user name or ID to authenticate with",
         [](Account& a, const std::string& v) { a.user = boundedText(v, 256); },
         [](const Account& a) { return a.user; }},
        {"security", "connection security: none, starttls or ssl-tls",
         [](Account& a, const std::string& v) { a.security = parseSecurity(v); },
         [](const Account& a) { return securityName(a.security); }},
        {"filter", "system address filter (empty: the default inbound filter)",
         [](Account& a, const std::string& v) { a.filter = filterName(v); },
         [](const Account& a) { return a.filter; }},
        {"active", "fetch this account (yes/no)",
         [](Account& a, const std::string& v) { a.active = parseBool(v); },
         [](const Account& a) { return std::string(yesNo(a.active)); }},
        {"debug-logging", "write the raw protocol exchange to the debug log (yes/no)",
         [](Account& a, const std::string& v) { a.debugLogging = parseBool(v); },
         [](const Account& a) { return std::string(yesNo(a.debugLogging)); }},
        {"mailbox", "the mailbox's own address, e.g. service-desk@company.com",
         [](Account& a, const std::string& v) { a.mailbox = boundedText(v, 254); },
         [](const Account& a) { return a.mailbox; }},
        {"deliver-to", "local recipient(s) for reinjection, comma-separated (default: mailbox)",
         [](Account& a, const std::string& v) { a.deliverTo = boundedText(v, 2048); },
         [](const Account& a) { return a.deliverTo; }},
        {"poll-interval", "seconds between polls (10s-1d, default 120s)",
         [](Account& a, const std::string& v) {
             const std::int64_t s = parseDuration(v);
             if (s < 10 || s > 86400)
                 throw InputError("must be between 10s and 1d (got " + trim(v) + ")");
             a.pollInterval = static_cast<int>(s);
         },
         [](const Account& a) { return std::to_string(a.pollInterval); }},
        {"keep-on-server", "leave fetched messages on the server (yes/no)",
         [](Account& a, const std::string& v) { a.keepOnServer = parseBool(v); },
         [](const Account& a) { return std::string(yesNo(a.keepOnServer)); }},
        {"max-message-size", "largest message to fetch, e.g. 50M (0: no limit)",
         [](Account& a, const std::string& v) { a.maxMessageSize = parseSize(v); },
         [](const Account& a) { return std::to_string(a.maxMessageSize); }},
        {"tls-ca-file", "PEM file of CAs to verify the server with (default: system CAs)",
         [](Account& a, const std::string& v) {
             std::string p = boundedText(v);
             if (!p.empty() && p.front() != '/')
                 throw InputError("must be an absolute path");
             a.tlsCaFile = p;
         },
         [](const Account& a) { return a.tlsCaFile; }},
        {"tls-pin", "SHA-256 fingerprint the server certificate must have",
         [](Account& a, const std::string& v) {
             a.tlsPin = trim(v).empty() ? std::string() : normalisePin(v);
         },
         [](const Account& a) { return a.tlsPin; }},
        {"auth-mechanism", "how to send the password: auto, user, apop, plain or login",
         [](Account& a, const std::string& v) {
             const std::string m = Poco::toLower(trim(v));
             if (m != "auto" && m != "user" && m != "apop" && m != "plain" && m != "login")
                 throw InputError("unknown mechanism '" + flatten(v) +
                                  "' (expected auto, user, apop, plain or login)");
             a.authMechanism = m;
         },
         [](const Account& a) { return a.authMechanism; }},
        {"plaintext-auth", "allow the password in clear when security is none (yes/no)",
         [](Account& a, const std::string& v) { a.plaintextAuth = parseBool(v); },
         [](const Account& a) { return std::string(yesNo(a.plaintextAuth)); }},
        {"tls-min-version",
         "lowest TLS version accepted: 1.2 (default) or 1.3; 1.0 and 1.1 only on purpose",
         [](Account& a, const std::string& v) {
             const std::string t = trim(v);
             if (t != "1.0" && t != "1.1" && t != "1.2" && t != "1.3")
                 throw InputError("expected 1.0, 1.1, 1.2 or 1.3, got '" + flatten(v) + "'");
             a.tlsMinVersion = t;
         },
         [](const Account& a) { return a.tlsMinVersion; }},
        {"oauth-profile", "OAuth profile for the oauth and oauth2 authentication kinds",
         [](Account& a, const std::string& v) { a.oauthProfile = filterName(v); },
         [](const Account& a) { return a.oauthProfile; }},
        {"recipients",
         "where the recipients come from: fixed (deliver-to, the default) or envelope (a domain "
         "mailbox: envelope-header names them)",
         [](Account& a, const std::string& v) { a.recipientSource = parseRecipientSource(v); },
         [](const Account& a) { return recipientSourceName(a.recipientSource); }},
        {"envelope-header",
         "with recipients envelope: the header the provider writes the recipient in: "
         "Delivered-To, X-Original-To, Envelope-To or X-Envelope-To",
         [](Account& a, const std::string& v) { a.envelopeHeader = canonicalEnvelopeHeader(v); },
         [](const Account& a) { return a.envelopeHeader; }},
        {"envelope-header-skip",
         "fields of envelope-header to skip, counted from the top (0: the topmost, the "
         "provider's own; default 0)",
         [](Account& a, const std::string& v) {
             a.envelopeHeaderSkip = static_cast<int>(parseInteger(v, 0, 16));
         },
         [](const Account& a) { return std::to_string(a.envelopeHeaderSkip); }},
        {"local-domains",
         "with recipients envelope: the recipient domains delivered as addressed, comma-separated",
         [](Account& a, const std::string& v) {
             const std::string t = boundedText(v, 2048);
             std::string joined;
             for (const auto& d : parseLocalDomains(t))
                 joined += (joined.empty() ? "" : ", ") + d;
             a.localDomains = joined;
         },
         [](const Account& a) { return a.localDomains; }},
        {"recipient-map",
         "with recipients envelope: ADDRESS=RECIPIENT rewrites, comma-separated "
         "(sales@company.example=sales-team)",
         [](Account& a, const std::string& v) {
             const std::string t = boundedText(v, 8192);
             std::string joined;
             for (const auto& e : parseRecipientMap(t))
                 joined += (joined.empty() ? "" : ", ") + e.address + "=" + e.recipient;
             a.recipientMap = joined;
         },
         [](const Account& a) { return a.recipientMap; }},
        {"fallback-recipient",
         "with recipients envelope: who gets mail with no envelope header or for another "
         "domain (empty: quarantine or refuse)",
         [](Account& a, const std::string& v) {
             const std::string t = boundedText(v, 254);
             if (!t.empty() && !isLocalRecipientName(t))
                 throw InputError("'" + flatten(t).substr(0, 80) +
                                  "' is not a mail address or local name");
             a.fallbackRecipient = t;
         },
         [](const Account& a) { return a.fallbackRecipient; }},
    };
}

} // namespace

const std::vector<AccountField>& accountFields()
{
    static const std::vector<AccountField> fields = makeFields();
    return fields;
}

const AccountField* findAccountField(const std::string& name)
{
    for (const auto& f : accountFields())
        if (name == f.name)
            return &f;
    return nullptr;
}

void setAccountField(Account& account, const std::string& field, const std::string& value)
{
    const AccountField* f = findAccountField(field);
    if (!f)
        throw InputError("unknown field '" + flatten(field).substr(0, 80) + "'");
    try {
        f->set(account, value);
    } catch (const InputError& e) {
        throw InputError(field + ": " + e.what());
    }
}

bool isValidName(const std::string& name)
{
    if (name.empty() || name.size() > 64)
        return false;
    return std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '_' || c == '-';
    });
}

AccountCheck validateAccount(const Account& a)
{
    AccountCheck check;
    auto error = [&](const char* field, const std::string& msg) {
        check.errors.push_back({field, msg});
    };
    if (!isValidName(a.name))
        error("name", "must be 1-64 characters of A-Z a-z 0-9 . _ -");
    if (a.type != "pop3")
        error("type", "must be pop3");
    if (a.server.empty())
        error("server", "is required");
    else if (!isHostName(a.server) && !isIpAddress(a.server))
        error("server", "'" + flatten(a.server) + "' is not a host name or IP address");
    if (a.port < 0 || a.port > 65535)
        error("port", "must be 1-65535");
    if (a.auth != AuthKind::None && a.user.empty())
        error("user", "is required with authentication " + authName(a.auth));
    if (a.auth == AuthKind::Password && !a.hasSecret())
        error("password", "is required with authentication password");
    if (a.auth != AuthKind::Password && a.hasSecret())
        error("password", "is set but authentication is " + authName(a.auth) +
                              " (a password is used only with authentication password)");
    if ((a.auth == AuthKind::OAuth || a.auth == AuthKind::OAuth2) && a.oauthProfile.empty())
        error("oauth-profile", "is required with authentication " + authName(a.auth));
    if (!a.mailbox.empty() && !isMailAddress(a.mailbox, true))
        error("mailbox", "'" + flatten(a.mailbox) + "' is not a mail address");
    for (const auto& r : splitList(a.deliverTo))
        if (!isMailAddress(r, false))
            error("deliver-to", "'" + flatten(r) + "' is not a mail address or local name");
    if (a.recipientSource == RecipientSource::Fixed && a.recipients().empty())
        error("deliver-to", "no local recipient: set mailbox or deliver-to");
    if (a.recipientSource == RecipientSource::Envelope) {
        // fetchmail's lesson: no multidrop without an explicit envelope header.
        if (a.envelopeHeader.empty())
            error("envelope-header", "is required with recipients envelope");
        if (trim(a.localDomains).empty() && trim(a.recipientMap).empty())
            error("local-domains", "is required with recipients envelope (or a recipient-map)");
        if (!trim(a.deliverTo).empty())
            check.warnings.push_back("deliver-to is not used with recipients envelope");
    } else if (!a.envelopeHeader.empty() || !trim(a.localDomains).empty() ||
               !trim(a.recipientMap).empty() || !trim(a.fallbackRecipient).empty()) {
        check.warnings.push_back("envelope-header, local-domains, recipient-map and "
                                 "fallback-recipient are used only with recipients envelope");
    }
    if (a.pollInterval < 10 || a.pollInterval > 86400)
        error("poll-interval", "must be between 10s and 1d");
    if (a.maxMessageSize < 0)
        error("max-message-size", "must not be negative");
    if (a.plaintextAuth && a.security != Security::None)
        error("plaintext-auth", "only means something with security none");
    if (a.security != Security::SslTls)
        check.warnings.push_back(kInsecureSecurityWarning);
    if (a.tlsMinVersion == "1.0" || a.tlsMinVersion == "1.1")
        check.warnings.push_back("tls-min-version " + a.tlsMinVersion +
                                 " accepts TLS versions with known weaknesses");
    return check;
}

void requireValid(const Account& account)
{
    const AccountCheck check = validateAccount(account);
    if (check.ok())
        return;
    std::string msg = "account '" + flatten(account.name).substr(0, 80) + "': ";
    for (std::size_t i = 0; i < check.errors.size(); ++i) {
        if (i)
            msg += "; ";
        msg += check.errors[i].field + ": " + check.errors[i].message;
    }
    throw InputError(msg);
}

} // namespace popgate
