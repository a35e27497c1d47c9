// account_commands.cpp - `popgatectl account ...`: add, list, show, set,
// enable, disable, remove. Fields come from the core's field table, so every
// field is an option named as in accounts.d files (--server=HOST, ...).
// Secrets never come as arguments: prompt, --password-stdin or --password-file.
#include "core/errors.h"
#include "core/provisioning.h"
#include "core/recipients.h"
#include "core/text.h"
#include "plugin/net/conntest.h"
#include "plugin/net/oauth_client.h"
#include "plugin/net/reinject.h"
#include "popgatectl/cli.h"

#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Util/Option.h>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace popgate::cli
{

namespace
{

using Poco::Util::Option;
using Poco::Util::OptionSet;

OptionSet fieldOptions(bool secrets)
{
    OptionSet set;
    for (const auto& f : accountFields())
        set.addOption(Option(f.name, "", f.meaning).argument("VALUE"));
    if (secrets) {
        set.addOption(Option("password-stdin", "", "read the password from standard input"));
        set.addOption(
            Option("password-file", "", "read the password from a file").argument("FILE"));
        set.addOption(Option("clear-password", "", "remove the stored password"));
    }
    set.addOption(Option("json", "", "JSON output"));
    return set;
}

// refuseArgumentSecret - checked on the raw arguments, before option parsing.
void refuseArgumentSecret(const std::vector<std::string>& rest)
{
    for (const auto& arg : rest) {
        const std::string opt = arg.substr(0, arg.find('='));
        if (opt != "--password" && opt != "--secret" && opt != "--pass")
            continue;
        const std::string name = rest.empty() ? "" : rest[0];
        throw InputError("account '" + name +
                         "': password: never given as an argument (other users can read it in "
                         "ps); use the prompt, --password-stdin or --password-file");
    }
}

void applyFieldOptions(Account& account, const ParsedArgs& args)
{
    for (const auto& [name, value] : args.ordered) {
        if (!findAccountField(name))
            continue;
        try {
            setAccountField(account, name, value);
        } catch (const InputError& e) {
            throw InputError("account '" + account.name + "': " + e.what());
        }
    }
}

void printWarnings(Context& ctx, const Account& account)
{
    for (const auto& w : validateAccount(account).warnings)
        *ctx.err << "popgatectl: warning: account '" << account.name << "': " << w << "\n";
}

// checkEntered - what the options given name must exist: the filter and the
// OAuth profile in the store, the CA file as a PEM file with a certificate.
// Checked when entered, so that a typo is not found by every poll failing.
void checkEntered(Context& ctx, const Account& account, const ParsedArgs& args)
{
    const std::string who = "account '" + account.name + "': ";
    if (args.has("tls-ca-file") && !account.tlsCaFile.empty()) {
        try {
            checkCaFile(account.tlsCaFile);
        } catch (const InputError& e) {
            throw InputError(who + e.what());
        }
    }
    for (const auto& e : referenceProblems(ctx.store(), account))
        if (args.has(e.field))
            throw InputError(who + e.field + ": " + e.message);
}

Account requireAccount(Context& ctx, const std::string& name)
{
    auto account = ctx.store().account(name);
    if (!account)
        throw InputError("account '" + flatten(name).substr(0, 80) + "': no such account");
    return *account;
}

// refuseProvisioned - provisioned accounts are edited in their file.
void refuseProvisioned(Context& ctx, const Account& account, const std::string& what)
{
    if (!account.provisioned)
        return;
    const std::string file = ctx.config.str("accounts_dir") + "/" + account.name + ".conf";
    if (what == "remove" && !Poco::File(file).exists())
        return; // its file is gone: the operator may clean it up
    throw InputError("account '" + account.name + "': provisioned from " + file +
                     "; it can only be enabled or disabled here (to " + what +
                     " it, edit the file and run `popgatectl config apply`)");
}

Poco::JSON::Object::Ptr toJson(const Account& a)
{
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("name", a.name);
    o->set("type", a.type);
    o->set("auth", authName(a.auth));
    o->set("server", a.server);
    o->set("port", a.effectivePort());
    o->set("user", a.user);
    o->set("password_set", a.hasSecret());
    o->set("security", securityName(a.security));
    o->set("filter", a.filter);
    o->set("active", a.active);
    o->set("provisioned", a.provisioned);
    o->set("debug_logging", a.debugLogging);
    o->set("mailbox", a.mailbox);
    Poco::JSON::Array::Ptr rcpts = new Poco::JSON::Array;
    for (const auto& r : a.recipients())
        rcpts->add(r);
    o->set("deliver_to", rcpts);
    o->set("poll_interval", a.pollInterval);
    o->set("keep_on_server", a.keepOnServer);
    o->set("max_message_size", a.maxMessageSize);
    o->set("tls_ca_file", a.tlsCaFile);
    o->set("tls_pin", a.tlsPin);
    o->set("oauth_profile", a.oauthProfile);
    o->set("auth_mechanism", a.authMechanism);
    o->set("plaintext_auth", a.plaintextAuth);
    o->set("tls_min_version", a.tlsMinVersion);
    o->set("recipients", recipientSourceName(a.recipientSource));
    o->set("envelope_header", a.envelopeHeader);
    o->set("envelope_header_skip", a.envelopeHeaderSkip);
    o->set("local_domains", a.localDomains);
    o->set("recipient_map", a.recipientMap);
    o->set("fallback_recipient", a.fallbackRecipient);
    o->set("created", isoTime(a.createdAt));
    o->set("updated", isoTime(a.updatedAt));
    return o;
}

int test(Context& ctx, const std::vector<std::string>& rest);

// addGuided - the form (account_form.cpp), a summary, store, then offer Test
// Connection; returns the test's exit code when it ran, else 0.
int addGuided(Context& ctx, Account account)
{
    if (ctx.store().account(account.name))
        throw InputError("account '" + account.name +
                         "': name: an account of that name exists already");
    for (;;) {
        account = fillAccountForm(ctx, account);
        printAccountSummary(ctx, account);
        const AccountCheck check = validateAccount(account);
        for (const auto& e : check.errors)
            *ctx.err << "  " << e.field << ": " << e.message << "\n";
        if (check.ok() && askYesNo(ctx, "Store this account?", true))
            break;
        if (!askYesNo(ctx, "Change the answers?", true))
            throw InputError("account '" + account.name + "': not stored");
    }
    ctx.store().addAccount(account);
    printWarnings(ctx, account);
    *ctx.out << "account '" << account.name << "' added\n";
    if (!askYesNo(ctx, "Test Connection now?", true))
        return 0;
    return test(ctx, {account.name});
}

int add(Context& ctx, const std::vector<std::string>& rest)
{
    refuseArgumentSecret(rest);
    const ParsedArgs args = parseArgs(rest, fieldOptions(true));
    requirePositional(args, 1, "account add NAME --server=HOST [--FIELD=VALUE ...]");
    Account account;
    account.name = args.positional[0];
    if (!isValidName(account.name))
        throw InputError("account '" + flatten(account.name).substr(0, 80) +
                         "': name: must be 1-64 characters of A-Z a-z 0-9 . _ -");
    applyFieldOptions(account, args);
    // The guided form: a person at a terminal who gave no server gets the empty
    // account form (the options given are its defaults). Without a terminal,
    // what is missing is reported as before.
    if (!args.has("server") && !args.has("password-stdin") && !args.has("password-file") &&
        ::isatty(STDIN_FILENO))
        return addGuided(ctx, account);
    // Check everything but the secret first, so that a bad field is reported
    // before the operator is asked for a password.
    Account probe = account;
    probe.sealedSecret = account.auth == AuthKind::Password ? "set" : "";
    requireValid(probe);
    Store& store = ctx.store();
    if (store.account(account.name))
        throw InputError("account '" + account.name +
                         "': name: an account of that name exists already");
    checkEntered(ctx, account, args);
    if (auto secret = readSecret(args, account.auth == AuthKind::Password, account.name))
        account.sealedSecret = ctx.secrets().seal(*secret);
    requireValid(account);
    store.addAccount(account);
    printWarnings(ctx, account);
    *ctx.out << "account '" << account.name << "' added\n";
    return 0;
}

int list(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, fieldOptions(false));
    requirePositional(args, 0, "account list [--json]");
    const auto accounts = ctx.store().accounts();
    if (ctx.json || args.has("json")) {
        Poco::JSON::Array arr;
        for (const auto& a : accounts)
            arr.add(toJson(a));
        printJson(*ctx.out, arr);
        *ctx.out << "\n";
        return 0;
    }
    auto& out = *ctx.out;
    out << std::left << std::setw(20) << "NAME" << std::setw(28) << "SERVER" << std::setw(6)
        << "PORT" << std::setw(10) << "SECURITY" << std::setw(10) << "AUTH" << std::setw(7)
        << "ACTIVE"
        << "PROVISIONED\n";
    for (const auto& a : accounts)
        out << std::left << std::setw(20) << a.name << std::setw(28) << a.server << std::setw(6)
            << a.effectivePort() << std::setw(10) << securityName(a.security) << std::setw(10)
            << authName(a.auth) << std::setw(7) << yesNo(a.active) << yesNo(a.provisioned) << "\n";
    return 0;
}

int show(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, fieldOptions(false));
    requirePositional(args, 1, "account show NAME [--json]");
    const Account a = requireAccount(ctx, args.positional[0]);
    if (ctx.json || args.has("json")) {
        printJson(*ctx.out, *toJson(a));
        *ctx.out << "\n";
        return 0;
    }
    auto& out = *ctx.out;
    auto row = [&](const std::string& k, const std::string& v) {
        out << std::left << std::setw(18) << (k + ":") << v << "\n";
    };
    row("name", a.name);
    for (const auto& f : accountFields()) {
        row(f.name, f.get(a));
        if (std::string(f.name) == "user")
            row("password", a.hasSecret() ? "(set)" : "(not set)");
    }
    row("provisioned", yesNo(a.provisioned));
    row("created", isoTime(a.createdAt));
    row("updated", isoTime(a.updatedAt));
    for (const auto& w : validateAccount(a).warnings)
        out << "warning: " << w << "\n";
    return 0;
}

int set(Context& ctx, const std::vector<std::string>& rest)
{
    refuseArgumentSecret(rest);
    const ParsedArgs args = parseArgs(rest, fieldOptions(true));
    requirePositional(args, 1, "account set NAME --FIELD=VALUE ...");
    Account account = requireAccount(ctx, args.positional[0]);
    refuseProvisioned(ctx, account, "edit");
    applyFieldOptions(account, args);
    checkEntered(ctx, account, args);
    if (args.has("clear-password"))
        account.sealedSecret.clear();
    else if (auto secret = readSecret(args, false, account.name))
        account.sealedSecret = ctx.secrets().seal(*secret);
    requireValid(account);
    ctx.store().updateAccount(account);
    printWarnings(ctx, account);
    *ctx.out << "account '" << account.name << "' updated\n";
    return 0;
}

int setActive(Context& ctx, const std::vector<std::string>& rest, bool active)
{
    const ParsedArgs args = parseArgs(rest, OptionSet());
    requirePositional(args, 1, std::string("account ") + (active ? "enable" : "disable") + " NAME");
    Account account = requireAccount(ctx, args.positional[0]);
    if (active)
        requireValid(account);
    account.active = active;
    ctx.store().updateAccount(account);
    *ctx.out << "account '" << account.name << "' " << (active ? "enabled" : "disabled") << "\n";
    return 0;
}

int remove(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, OptionSet());
    requirePositional(args, 1, "account remove NAME");
    const Account account = requireAccount(ctx, args.positional[0]);
    refuseProvisioned(ctx, account, "remove");
    ctx.store().removeAccount(account.name);
    *ctx.out << "account '" << account.name << "' removed\n";
    return 0;
}

// TestReport - what `account test --json` prints: each line the stages printed,
// split at its first ": " ("AUTH", "plain: ok (as helpdesk)"), and the outcome.
struct TestReport {
    Poco::JSON::Object::Ptr json = new Poco::JSON::Object(true);
    Poco::JSON::Array::Ptr stages = new Poco::JSON::Array;

    void addLines(const std::string& text, const std::string& verdict)
    {
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);) {
            if (line.empty() || line == verdict)
                continue;
            Poco::JSON::Object::Ptr stage = new Poco::JSON::Object(true);
            const auto colon = line.find(": ");
            stage->set("stage", colon == std::string::npos ? line : line.substr(0, colon));
            stage->set("detail", colon == std::string::npos ? "" : line.substr(colon + 2));
            stages->add(stage);
        }
    }
    int finish(Context& ctx, int code, const std::string& failedStage, const std::string& verdict)
    {
        json->set("stages", stages);
        json->set("result", code == 0 ? "ok" : "failed");
        json->set("failed_stage", failedStage);
        json->set("verdict", verdict);
        json->set("exit_code", code);
        printJson(*ctx.out, *json);
        *ctx.out << "\n";
        return code;
    }
};

// test - Test Connection: the POP3 stages (never DELE), and with --deep the
// local MTA's reinjection listener (EHLO, MAIL, RCPT, RSET; no DATA).
// Exit codes: those of conntest.h, and 17 when only the MTA check failed.
int test(Context& ctx, const std::vector<std::string>& rest)
{
    OptionSet opts;
    opts.addOption(Option("deep", "", "also check the local MTA reinjection target"));
    opts.addOption(Option("json", "", "JSON output: the stages and the outcome"));
    const ParsedArgs args = parseArgs(rest, opts);
    requirePositional(args, 1, "account test NAME [--deep] [--json]");
    const Account a = requireAccount(ctx, args.positional[0]);
    const bool json = ctx.json || args.has("json");
    TestReport report;
    report.json->set("account", a.name);
    report.json->set("server", a.server);
    report.json->set("port", a.effectivePort());
    report.json->set("security", securityName(a.security));
    ConnectionTestSettings s;
    s.host = a.server;
    s.port = a.effectivePort();
    s.security = a.security;
    s.auth = a.auth;
    s.mechanism = parsePop3Mechanism(a.authMechanism);
    s.user = a.user;
    if (a.auth == AuthKind::OAuth || a.auth == AuthKind::OAuth2) {
        try {
            s.secret =
                accessTokenFor(ctx.store(), ctx.secrets(), a, Poco::Logger::get("popgatectl"));
        } catch (const OAuthError& e) {
            const std::string verdict =
                "Connection failed at AUTH: " + escapeText(e.what(), EscapeFor::Terminal);
            if (json)
                return report.finish(ctx, kTestAuth, "AUTH", verdict);
            *ctx.out << verdict << "\n";
            return kTestAuth;
        }
    } else if (a.hasSecret()) {
        s.secret = ctx.secrets().open(a.sealedSecret);
    }
    s.caFile = a.tlsCaFile;
    s.pinSha256 = a.tlsPin;
    s.minTlsVersion = a.tlsMinVersion;
    s.allowPlaintextAuth = a.plaintextAuth;
    s.connectTimeout = std::chrono::seconds(ctx.config.integer("pop3.connect_timeout"));
    s.readTimeout = std::chrono::seconds(ctx.config.integer("pop3.read_timeout"));
    // A domain mailbox: the recipients of the first messages, as popgated
    // would resolve them (core/recipients.h), from their header sections.
    Poco::JSON::Array::Ptr peeked = new Poco::JSON::Array;
    if (a.recipientSource == RecipientSource::Envelope) {
        s.peekHeaders = 5;
        s.onHeader = [&](int number, const std::string& header) {
            const RecipientResolution res = recipientsForMessage(a, header);
            std::string to;
            for (const auto& r : res.recipients)
                to += (to.empty() ? "" : ", ") + r;
            std::string refused;
            for (const auto& r : res.refused)
                refused += (refused.empty() ? "" : ", ") + r.address;
            if (json) {
                Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
                o->set("message", number);
                o->set("verdict", recipientVerdictName(res.verdict));
                Poco::JSON::Array::Ptr list = new Poco::JSON::Array;
                for (const auto& r : res.recipients)
                    list->add(r);
                o->set("recipients", list);
                Poco::JSON::Array::Ptr no = new Poco::JSON::Array;
                for (const auto& r : res.refused)
                    no->add(r.address);
                o->set("refused", no);
                o->set("detail", res.detail);
                peeked->add(o);
                return;
            }
            *ctx.out << "message " << number << ": "
                     << escapeText(res.deliverable() ? "to " + to : "quarantine: " + res.detail,
                                   EscapeFor::Terminal)
                     << (refused.empty() ? ""
                                         : "; refused: " + escapeText(refused, EscapeFor::Terminal))
                     << "\n";
        };
    }
    std::ostringstream lines;
    if (!json)
        *ctx.out << "Testing account '" << a.name << "' (" << a.server << ":" << a.effectivePort()
                 << ", " << securityName(a.security) << ")\n";
    const ConnectionTestResult r = runConnectionTest(s, json ? lines : *ctx.out);
    if (json) {
        report.addLines(lines.str(), r.verdict);
        report.json->set("messages", r.messages);
        report.json->set("octets", r.octets);
        if (a.recipientSource == RecipientSource::Envelope)
            report.json->set("recipients", peeked);
    }
    if (r.exitCode != kTestOk || !args.has("deep"))
        return json ? report.finish(ctx, r.exitCode, r.failedStage, r.verdict) : r.exitCode;
    SmtpTarget target;
    target.host = ctx.config.str("reinject.host");
    target.port = static_cast<int>(ctx.config.integer("reinject.port"));
    target.helo = ctx.config.str("reinject.helo");
    target.timeout = std::chrono::seconds(30);
    SmtpReinjector mta(target);
    // A domain mailbox's recipients are per message: probe its fallback
    // recipient, else the postmaster of its first local domain.
    std::vector<std::string> probeTo = a.recipients();
    if (a.recipientSource == RecipientSource::Envelope) {
        const auto domains = splitList(a.localDomains);
        probeTo = {!a.fallbackRecipient.empty() ? a.fallbackRecipient
                   : domains.empty()            ? std::string("postmaster")
                                                : "postmaster@" + domains.front()};
    }
    const SmtpResult probe = mta.probe(a.mailbox, probeTo);
    mta.close();
    if (probe.kind != SmtpResult::Kind::Accepted) {
        const std::string verdict =
            "MTA check failed: " + escapeText(probe.describe(mta.relay()), EscapeFor::Terminal);
        if (json)
            return report.finish(ctx, 17, "MTA", verdict);
        *ctx.out << verdict << "\n";
        return 17;
    }
    std::string line = "MTA " + mta.relay() + " accepts mail for";
    for (const auto& r2 : probeTo)
        line += " <" + r2 + ">";
    line += " (EHLO, MAIL, RCPT, RSET; no DATA sent)";
    if (json) {
        Poco::JSON::Object::Ptr stage = new Poco::JSON::Object(true);
        stage->set("stage", "MTA");
        stage->set("detail", line);
        report.stages->add(stage);
        return report.finish(ctx, 0, "", r.verdict);
    }
    *ctx.out << line << "\n";
    return 0;
}

} // namespace

int accountCommand(Context& ctx, const std::vector<std::string>& args)
{
    const std::string usage =
        "usage: popgatectl account add|list|show|set|enable|disable|remove|test ...";
    if (args.empty())
        throw InputError(usage);
    const std::string verb = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (verb == "add")
        return add(ctx, rest);
    if (verb == "list")
        return list(ctx, rest);
    if (verb == "show")
        return show(ctx, rest);
    if (verb == "set")
        return set(ctx, rest);
    if (verb == "enable")
        return setActive(ctx, rest, true);
    if (verb == "disable")
        return setActive(ctx, rest, false);
    if (verb == "remove")
        return remove(ctx, rest);
    if (verb == "test")
        return test(ctx, rest);
    if (verb == "authorize")
        return authorizeAccount(ctx, rest);
    throw InputError("unknown command 'account " + flatten(verb).substr(0, 40) + "'; " + usage);
}

} // namespace popgate::cli
