// oauth_commands.cpp - `popgatectl oauth profile add|set|list|show|remove`,
// `popgatectl oauth status [ACCOUNT]` and `popgatectl account authorize NAME`
// (device-code, authorization-code with a loopback redirect, or
// client_credentials). Client secrets come from stdin or a file, never as an
// argument; tokens are stored sealed and only their existence and expiry shown.
#include "core/errors.h"
#include "core/oauth.h"
#include "core/text.h"
#include "plugin/net/oauth_client.h"
#include "popgatectl/oauth_grants.h"
#include "popgatectl/cli.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Util/Option.h>
#include <fstream>
#include <iomanip>
#include <iostream>

namespace popgate::cli
{

namespace
{

using Poco::Util::Option;
using Poco::Util::OptionSet;

const char* const kProfileUsage =
    "usage: popgatectl oauth profile add|set NAME [--provider=generic|google|microsoft] "
    "[--client-id=ID] [--client-secret-stdin|--client-secret-file=F] [--auth-url=URL] "
    "[--token-url=URL] [--device-url=URL] [--scope=S] [--tenant=T] "
    "[--grant=authorization_code|device_code|client_credentials] | list [--json] | show NAME "
    "[--json] "
    "| remove NAME";

OptionSet profileOptions(bool fields)
{
    OptionSet set;
    if (fields) {
        set.addOption(Option("provider", "", "generic, google or microsoft").argument("P"));
        set.addOption(Option("client-id", "", "OAuth client (application) id").argument("ID"));
        set.addOption(
            Option("client-secret-stdin", "", "read the client secret from standard input"));
        set.addOption(
            Option("client-secret-file", "", "read the client secret from a file").argument("F"));
        set.addOption(Option("clear-client-secret", "", "remove the stored client secret"));
        set.addOption(Option("auth-url", "", "authorization endpoint").argument("URL"));
        set.addOption(Option("token-url", "", "token endpoint").argument("URL"));
        set.addOption(Option("device-url", "", "device authorization endpoint").argument("URL"));
        set.addOption(Option("scope", "", "space-separated scopes").argument("S"));
        set.addOption(Option("tenant", "", "Microsoft tenant id or domain").argument("T"));
        set.addOption(Option("grant", "", "authorization_code, device_code or client_credentials")
                          .argument("G"));
    }
    set.addOption(Option("json", "", "JSON output"));
    return set;
}

// refuseArgumentSecret - a client secret on the command line is readable in ps.
void refuseArgumentSecret(const std::vector<std::string>& rest)
{
    for (const auto& arg : rest) {
        const std::string opt = arg.substr(0, arg.find('='));
        if (opt == "--client-secret" || opt == "--secret")
            throw InputError(
                "oauth profile '" + (rest.empty() ? std::string() : rest[0]) +
                "': client-secret: never given as an argument (other users can read it "
                "in ps); use --client-secret-stdin or --client-secret-file");
    }
}

std::optional<std::string> readClientSecret(const ParsedArgs& args, const std::string& profile)
{
    std::string secret;
    const std::string who = "oauth profile '" + profile + "': client-secret: ";
    if (args.has("client-secret-stdin")) {
        if (!std::getline(std::cin, secret))
            throw InputError(who + "nothing on standard input");
    } else if (args.has("client-secret-file")) {
        std::ifstream in(args.options.at("client-secret-file"));
        if (!in || !std::getline(in, secret))
            throw InputError(who + "cannot read " + args.options.at("client-secret-file"));
    } else {
        return std::nullopt;
    }
    if (!secret.empty() && secret.back() == '\r')
        secret.pop_back();
    if (secret.empty())
        throw InputError(who + "is empty");
    if (secret.size() > 4096)
        throw InputError(who + "too long (at most 4096 bytes)");
    return secret;
}

void applyProfileOptions(OAuthProfile& p, const ParsedArgs& args)
{
    try {
        for (const auto& [name, value] : args.ordered) {
            if (name == "provider")
                p.provider = parseOAuthProvider(value);
            else if (name == "client-id")
                p.clientId = trim(value);
            else if (name == "auth-url")
                p.authorizationUrl = trim(value);
            else if (name == "token-url")
                p.tokenUrl = trim(value);
            else if (name == "device-url")
                p.deviceAuthorizationUrl = trim(value);
            else if (name == "scope")
                p.scope = trim(value);
            else if (name == "tenant")
                p.tenant = trim(value);
            else if (name == "grant")
                p.grant = parseOAuthGrant(value);
        }
    } catch (const InputError& e) {
        throw InputError("oauth profile '" + p.name + "': " + e.what());
    }
}

OAuthProfile requireProfile(Context& ctx, const std::string& name)
{
    auto p = OAuthStore(ctx.store()).profile(name);
    if (!p)
        throw InputError("oauth profile '" + flatten(name).substr(0, 80) + "': no such profile");
    return *p;
}

Poco::JSON::Object::Ptr profileJson(const OAuthProfile& p)
{
    const OAuthProfile e = effectiveProfile(p);
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("name", p.name);
    o->set("provider", oauthProviderName(p.provider));
    o->set("grant", oauthGrantName(p.grant));
    o->set("client_id", p.clientId);
    o->set("client_secret_set", p.hasClientSecret());
    o->set("auth_url", e.authorizationUrl);
    o->set("token_url", e.tokenUrl);
    o->set("device_url", e.deviceAuthorizationUrl);
    o->set("scope", e.scope);
    o->set("tenant", p.tenant);
    o->set("created", isoTime(p.createdAt));
    o->set("updated", isoTime(p.updatedAt));
    return o;
}

int profileAdd(Context& ctx, const std::vector<std::string>& rest, bool update)
{
    refuseArgumentSecret(rest);
    const ParsedArgs args = parseArgs(rest, profileOptions(true));
    requirePositional(args, 1,
                      std::string("oauth profile ") + (update ? "set" : "add") + " NAME ...");
    OAuthStore store(ctx.store());
    OAuthProfile p;
    if (update) {
        p = requireProfile(ctx, args.positional[0]);
    } else {
        p.name = args.positional[0];
        if (!isValidName(p.name))
            throw InputError("oauth profile '" + flatten(p.name).substr(0, 80) +
                             "': name: must be 1-64 characters of A-Z a-z 0-9 . _ -");
        if (store.profile(p.name))
            throw InputError("oauth profile '" + p.name +
                             "': name: a profile of that name exists already");
    }
    applyProfileOptions(p, args);
    // Everything but the secret first, so that a typo is reported before stdin is read.
    OAuthProfile probe = p;
    if (args.has("client-secret-stdin") || args.has("client-secret-file"))
        probe.sealedClientSecret = "set";
    if (args.has("clear-client-secret"))
        probe.sealedClientSecret.clear();
    requireValidProfile(probe);
    if (args.has("clear-client-secret"))
        p.sealedClientSecret.clear();
    else if (auto secret = readClientSecret(args, p.name))
        p.sealedClientSecret = ctx.secrets().seal(*secret);
    requireValidProfile(p);
    if (update)
        store.updateProfile(p);
    else
        store.addProfile(p);
    *ctx.out << "oauth profile '" << p.name << "' " << (update ? "updated" : "added") << "\n";
    return 0;
}

int profileList(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, profileOptions(false));
    requirePositional(args, 0, "oauth profile list [--json]");
    const auto profiles = OAuthStore(ctx.store()).profiles();
    if (ctx.json || args.has("json")) {
        Poco::JSON::Array arr;
        for (const auto& p : profiles)
            arr.add(profileJson(p));
        printJson(*ctx.out, arr);
        *ctx.out << "\n";
        return 0;
    }
    auto& out = *ctx.out;
    out << std::left << std::setw(20) << "NAME" << std::setw(11) << "PROVIDER" << std::setw(20)
        << "GRANT" << std::setw(8) << "SECRET"
        << "CLIENT ID\n";
    for (const auto& p : profiles)
        out << std::left << std::setw(20) << p.name << std::setw(11)
            << oauthProviderName(p.provider) << std::setw(20) << oauthGrantName(p.grant)
            << std::setw(8) << yesNo(p.hasClientSecret()) << p.clientId << "\n";
    return 0;
}

int profileShow(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, profileOptions(false));
    requirePositional(args, 1, "oauth profile show NAME [--json]");
    const OAuthProfile p = requireProfile(ctx, args.positional[0]);
    if (ctx.json || args.has("json")) {
        printJson(*ctx.out, *profileJson(p));
        *ctx.out << "\n";
        return 0;
    }
    const OAuthProfile e = effectiveProfile(p);
    auto row = [&](const std::string& k, const std::string& v, bool defaulted = false) {
        *ctx.out << std::left << std::setw(15) << (k + ":") << v
                 << (defaulted ? " (provider default)" : "") << "\n";
    };
    row("name", p.name);
    row("provider", oauthProviderName(p.provider));
    row("grant", oauthGrantName(p.grant));
    row("client-id", p.clientId);
    row("client-secret", p.hasClientSecret() ? "(set)" : "(not set)");
    row("auth-url", e.authorizationUrl, p.authorizationUrl.empty() && !e.authorizationUrl.empty());
    row("token-url", e.tokenUrl, p.tokenUrl.empty() && !e.tokenUrl.empty());
    row("device-url", e.deviceAuthorizationUrl,
        p.deviceAuthorizationUrl.empty() && !e.deviceAuthorizationUrl.empty());
    row("scope", e.scope, p.scope.empty() && !e.scope.empty());
    row("tenant", p.tenant);
    row("used by", [&] {
        std::string list;
        for (const auto& a : OAuthStore(ctx.store()).accountsUsing(p.name))
            list += (list.empty() ? "" : ", ") + a;
        return list.empty() ? std::string("-") : list;
    }());
    row("created", isoTime(p.createdAt));
    row("updated", isoTime(p.updatedAt));
    return 0;
}

int profileRemove(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, OptionSet());
    requirePositional(args, 1, "oauth profile remove NAME");
    const OAuthProfile p = requireProfile(ctx, args.positional[0]);
    OAuthStore(ctx.store()).removeProfile(p.name);
    *ctx.out << "oauth profile '" << p.name << "' removed\n";
    return 0;
}

bool isOAuth(const Account& a)
{
    return a.auth == AuthKind::OAuth || a.auth == AuthKind::OAuth2;
}

Poco::JSON::Object::Ptr tokenJson(const Account& a, const OAuthTokenState& st)
{
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("account", a.name);
    o->set("oauth_profile", a.oauthProfile);
    o->set("access_token", st.hasAccessToken());
    o->set("access_token_expires", isoTime(st.hasAccessToken() ? st.expiresAt : 0));
    o->set("refresh_token", st.hasRefreshToken());
    o->set("last_refresh", isoTime(st.lastRefreshAt));
    o->set("last_error", st.lastError);
    o->set("last_error_at", isoTime(st.lastErrorAt));
    return o;
}

// status - each OAuth account's token state: whether tokens exist, when the
// access token expires, the last refresh error. Never a token.
int status(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, profileOptions(false));
    if (args.positional.size() > 1)
        throw InputError("usage: popgatectl oauth status [ACCOUNT] [--json]");
    std::vector<Account> accounts;
    if (args.positional.size() == 1) {
        auto a = ctx.store().account(args.positional[0]);
        if (!a)
            throw InputError("account '" + flatten(args.positional[0]).substr(0, 80) +
                             "': no such account");
        accounts.push_back(*a);
    } else {
        for (const auto& a : ctx.store().accounts())
            if (isOAuth(a))
                accounts.push_back(a);
    }
    OAuthStore store(ctx.store());
    const bool json = ctx.json || args.has("json");
    Poco::JSON::Array arr;
    auto& out = *ctx.out;
    if (!json)
        out << std::left << std::setw(20) << "ACCOUNT" << std::setw(16) << "PROFILE" << std::setw(9)
            << "REFRESH" << std::setw(22) << "ACCESS EXPIRES"
            << "LAST ERROR\n";
    for (const auto& a : accounts) {
        const OAuthTokenState st = store.tokens(a.id);
        if (json) {
            arr.add(tokenJson(a, st));
            continue;
        }
        out << std::left << std::setw(20) << a.name << std::setw(16)
            << (a.oauthProfile.empty() ? "-" : a.oauthProfile) << std::setw(9)
            << yesNo(st.hasRefreshToken()) << std::setw(22)
            << (st.hasAccessToken() ? isoTime(st.expiresAt) : std::string("none"))
            << (st.lastError.empty() ? "-" : escapeText(st.lastError, EscapeFor::Terminal)) << "\n";
    }
    if (json) {
        printJson(out, arr);
        out << "\n";
    }
    return 0;
}

} // namespace

int oauthCommand(Context& ctx, const std::vector<std::string>& args)
{
    if (args.empty())
        throw InputError(std::string(kProfileUsage) +
                         "; or: popgatectl oauth status [ACCOUNT] [--json]");
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (args[0] == "status")
        return status(ctx, rest);
    if (args[0] != "profile" || rest.empty())
        throw InputError(std::string("unknown command 'oauth ") + flatten(args[0]).substr(0, 40) +
                         "'; " + kProfileUsage);
    const std::string verb = rest[0];
    const std::vector<std::string> more(rest.begin() + 1, rest.end());
    if (verb == "add")
        return profileAdd(ctx, more, false);
    if (verb == "set")
        return profileAdd(ctx, more, true);
    if (verb == "list")
        return profileList(ctx, more);
    if (verb == "show")
        return profileShow(ctx, more);
    if (verb == "remove")
        return profileRemove(ctx, more);
    throw InputError("unknown command 'oauth profile " + flatten(verb).substr(0, 40) + "'; " +
                     kProfileUsage);
}

int authorizeAccount(Context& ctx, const std::vector<std::string>& rest)
{
    OptionSet opts;
    opts.addOption(
        Option("timeout", "", "how long to wait for the user (default 10m)").argument("DURATION"));
    opts.addOption(Option("json", "", "JSON output"));
    const ParsedArgs args = parseArgs(rest, opts);
    requirePositional(args, 1, "account authorize NAME [--timeout=10m] [--json]");
    auto found = ctx.store().account(args.positional[0]);
    if (!found)
        throw InputError("account '" + flatten(args.positional[0]).substr(0, 80) +
                         "': no such account");
    const Account a = *found;
    if (!isOAuth(a))
        throw InputError("account '" + a.name + "': auth: is " + authName(a.auth) +
                         "; only oauth and oauth2 accounts are authorized");
    auto profile = OAuthStore(ctx.store()).profile(a.oauthProfile);
    if (!profile)
        throw InputError("account '" + a.name + "': oauth-profile: no profile named '" +
                         flatten(a.oauthProfile) + "' (see `popgatectl oauth profile list`)");
    requireValidProfile(*profile);
    const std::int64_t timeout =
        args.has("timeout") ? parseDuration(args.options.at("timeout")) : 600;
    const SecretBox& box = ctx.secrets();
    OAuthClient client(*profile,
                       profile->hasClientSecret() ? box.open(profile->sealedClientSecret) : "");
    // Prompts go to stderr with --json so that stdout stays one JSON document.
    const bool json = ctx.json || args.has("json");
    std::ostream& talk = json ? *ctx.err : *ctx.out;

    OAuthTokens tokens;
    try {
        switch (profile->grant) {
        case OAuthGrant::ClientCredentials:
            tokens = client.clientCredentials();
            break;
        case OAuthGrant::DeviceCode: {
            DeviceAuthorization d = client.startDeviceAuthorization();
            d.expiresIn = std::min(d.expiresIn, timeout);
            talk << "To authorize account '" << a.name << "', open " << d.verificationUri
                 << " in a browser and enter the code " << d.userCode << std::endl;
            if (!d.verificationUriComplete.empty())
                talk << "(or open " << d.verificationUriComplete << ")" << std::endl;
            talk << "Waiting for the approval (up to " << d.expiresIn << " s) ..." << std::endl;
            tokens = client.awaitDeviceAuthorization(d);
            break;
        }
        case OAuthGrant::AuthorizationCode: {
            LoopbackRedirect redirect;
            const Pkce pkce = makePkce();
            const std::string state = randomState();
            const std::string uri = redirect.redirectUri();
            const std::string port =
                uri.substr(uri.rfind(':') + 1, uri.size() - uri.rfind(':') - 2);
            talk << "To authorize account '" << a.name << "', open this URL in a browser on this "
                 << "machine (or forward port " << port << " with ssh -L " << port
                 << ":127.0.0.1:" << port << "):" << std::endl
                 << client.authorizationUrl(redirect.redirectUri(), state, pkce.challenge)
                 << std::endl
                 << "Waiting for the redirect to " << redirect.redirectUri() << " (up to "
                 << timeout << " s) ..." << std::endl;
            const std::string code = redirect.awaitCode(state, std::chrono::seconds(timeout));
            tokens = client.exchangeCode(code, redirect.redirectUri(), pkce.verifier);
            break;
        }
        }
    } catch (const OAuthError& e) {
        throw OperationError("account '" + a.name + "': " + e.what());
    }
    const OAuthTokenState st = storeGrantedTokens(ctx.store(), box, a, tokens);
    if (json) {
        printJson(*ctx.out, *tokenJson(a, st));
        *ctx.out << "\n";
        return 0;
    }
    *ctx.out << "account '" << a.name << "' authorized (" << oauthGrantName(profile->grant)
             << "): access token stored, expires " << isoTime(st.expiresAt)
             << "; refresh token: " << (st.hasRefreshToken() ? "stored" : "none") << "\n";
    return 0;
}

} // namespace popgate::cli
