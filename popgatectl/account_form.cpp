// account_form.cpp - the guided form of `account add NAME` on a terminal: the
// reference page's empty email Account form, one question per field in its
// order (type, authentication, server, user name, password without echo,
// connection security with its warning, port defaulted from the security,
// system address filter chosen from those that exist, active), then the
// mailbox popgate delivers to, and whether it is a domain mailbox (recipients
// envelope: its header, the fields to skip, local domains, the fallback). Each answer goes through
// the core's field table (setAccountField) and the account check (validateAccount), so the form
// accepts exactly what --FIELD=VALUE accepts; a refused answer is asked again. Only used with a
// terminal on standard input: without one, `account add` says what is missing, as before.
#include "core/errors.h"
#include "core/filter_store.h"
#include "core/provisioning.h"
#include "core/recipients.h"
#include "core/text.h"
#include "popgatectl/cli.h"

#include <iomanip>
#include <iostream>

namespace popgate::cli
{

namespace
{

// ask - one question on the terminal; the default in brackets is taken for an
// empty answer. End of input cancels the form (nothing is stored).
std::string ask(Context& ctx, const std::string& question, const std::string& byDefault)
{
    *ctx.err << question << (byDefault.empty() ? "" : " [" + byDefault + "]") << ": " << std::flush;
    std::string line;
    if (!std::getline(std::cin, line))
        throw InputError("account add: form cancelled (end of input); nothing stored");
    line = trim(line);
    return line.empty() ? byDefault : line;
}

// askField - asks until the core's field table takes the answer.
void askField(Context& ctx, Account& a, const std::string& field, const std::string& question,
              const std::string& byDefault)
{
    for (;;) {
        const std::string answer = ask(ctx, question, byDefault);
        Account tried = a;
        try {
            setAccountField(tried, field, answer);
        } catch (const InputError& e) {
            *ctx.err << "  " << e.what() << "\n";
            continue;
        }
        // What the whole-account check says of this field (a host name, an address).
        std::string refused;
        for (const auto& e : validateAccount(tried).errors)
            if (e.field == field && !(e.message == "is required" && answer.empty()))
                refused = e.field + ": " + e.message;
        if (!refused.empty()) {
            *ctx.err << "  " << refused << "\n";
            continue;
        }
        a = std::move(tried);
        return;
    }
}

// askRequired - like askField, and an empty answer is refused at once.
void askRequired(Context& ctx, Account& a, const std::string& field, const std::string& question,
                 const std::string& byDefault)
{
    for (;;) {
        askField(ctx, a, field, question, byDefault);
        if (!findAccountField(field)->get(a).empty())
            return;
        *ctx.err << "  " << field << ": is required\n";
    }
}

} // namespace

bool askYesNo(Context& ctx, const std::string& question, bool byDefault)
{
    for (;;) {
        const std::string answer = ask(ctx, question, byDefault ? "yes" : "no");
        try {
            return parseBool(answer);
        } catch (const InputError&) {
            *ctx.err << "  answer yes or no\n";
        }
    }
}

Account fillAccountForm(Context& ctx, Account a)
{
    *ctx.err << "New email account '" << a.name << "' (Enter keeps the value in brackets; "
             << "Ctrl-D cancels)\n";
    askField(ctx, a, "type", "Type (pop3)", a.type);
    askField(ctx, a, "auth", "Authentication (none, password, oauth, oauth2)", authName(a.auth));
    askRequired(ctx, a, "server", "Server (FQDN or IP address)", a.server);
    if (a.auth != AuthKind::None)
        askRequired(ctx, a, "user", "User name", a.user);
    if (a.auth == AuthKind::Password) {
        ParsedArgs none;
        for (;;) {
            try {
                const auto secret = readSecret(none, true, a.name);
                if (secret) {
                    a.sealedSecret = ctx.secrets().seal(*secret);
                    break;
                }
                throw InputError("account add: form cancelled; nothing stored");
            } catch (const InputError& e) {
                if (!std::cin)
                    throw InputError("account add: form cancelled (end of input); nothing stored");
                *ctx.err << "  " << e.what() << "\n";
            }
        }
    } else if (a.auth == AuthKind::OAuth || a.auth == AuthKind::OAuth2) {
        for (;;) {
            askRequired(ctx, a, "oauth-profile", "OAuth profile", a.oauthProfile);
            const auto problems = referenceProblems(ctx.store(), a);
            if (problems.empty())
                break;
            *ctx.err << "  " << problems.front().field << ": " << problems.front().message
                     << " (see popgatectl oauth profile list)\n";
        }
    }
    askField(ctx, a, "security", "Connection security (none, starttls, ssl-tls)",
             securityName(a.security));
    if (a.security != Security::SslTls)
        *ctx.err << "  warning: " << kInsecureSecurityWarning << "\n";
    a.port = 0; // the default follows the security just chosen
    askField(ctx, a, "port", "Port", std::to_string(a.effectivePort()));

    FilterStore filters(ctx.store());
    std::vector<std::string> names;
    std::string byDefault = "(none)";
    for (const auto& f : filters.systemFilters()) {
        if (f.direction != Direction::Inbound)
            continue;
        names.push_back(f.name);
        if (f.isDefault && f.active)
            byDefault = f.name;
    }
    *ctx.err << "System address filters:";
    for (const auto& n : names)
        *ctx.err << " " << n;
    *ctx.err << (names.empty() ? " none defined" : "") << "\n";
    for (;;) {
        const std::string answer = ask(
            ctx, "System address filter (empty: the inbound default, " + byDefault + ")", a.filter);
        if (answer.empty() || std::find(names.begin(), names.end(), answer) != names.end()) {
            a.filter = answer;
            break;
        }
        *ctx.err << "  filter: no inbound system filter '"
                 << escapeText(answer, EscapeFor::Terminal) << "'\n";
    }
    askField(ctx, a, "active", "Active (yes, no)", yesNo(a.active));
    askRequired(ctx, a, "mailbox", "Mailbox address (its mail is delivered to it here)", a.mailbox);
    // A domain mailbox (docs/multidrop.md): recipients from one envelope header.
    askField(ctx, a, "recipients",
             "Recipients (fixed: all to the mailbox; envelope: a domain mailbox)",
             recipientSourceName(a.recipientSource));
    if (a.recipientSource == RecipientSource::Envelope) {
        askRequired(ctx, a, "envelope-header",
                    "Envelope header (Delivered-To, X-Original-To, Envelope-To, X-Envelope-To)",
                    a.envelopeHeader.empty() ? "Delivered-To" : a.envelopeHeader);
        askField(ctx, a, "envelope-header-skip",
                 "Fields of it to skip, from the top (0: the provider's own)",
                 std::to_string(a.envelopeHeaderSkip));
        const auto at = a.mailbox.rfind('@');
        askRequired(ctx, a, "local-domains", "Local domains (comma-separated)",
                    !a.localDomains.empty() || at == std::string::npos ? a.localDomains
                                                                       : a.mailbox.substr(at + 1));
        askField(ctx, a, "fallback-recipient",
                 "Fallback recipient (empty: quarantine mail without a local recipient)",
                 a.fallbackRecipient);
    }
    return a;
}

void printAccountSummary(Context& ctx, const Account& a)
{
    auto& out = *ctx.out;
    out << "Summary:\n";
    auto row = [&](const std::string& k, const std::string& v) {
        out << "  " << std::left << std::setw(24) << (k + ":") << v << "\n";
    };
    row("name", a.name);
    row("type", a.type);
    row("authentication", authName(a.auth));
    row("server", a.server);
    if (a.auth != AuthKind::None)
        row("user name", a.user);
    if (a.auth == AuthKind::Password)
        row("password", a.hasSecret() ? "(set)" : "(not set)");
    if (!a.oauthProfile.empty())
        row("oauth profile", a.oauthProfile);
    row("connection security", securityName(a.security));
    row("port", std::to_string(a.effectivePort()));
    row("system address filter", a.filter.empty() ? "(the inbound default)" : a.filter);
    row("active", yesNo(a.active));
    row("mailbox", a.mailbox);
    row("recipients", recipientSourceName(a.recipientSource));
    if (a.recipientSource == RecipientSource::Envelope) {
        row("envelope header",
            a.envelopeHeader +
                (a.envelopeHeaderSkip
                     ? " (skip " + std::to_string(a.envelopeHeaderSkip) + " from the top)"
                     : std::string(" (the topmost)")));
        row("local domains", a.localDomains);
        row("fallback recipient",
            a.fallbackRecipient.empty() ? "(none: quarantine)" : a.fallbackRecipient);
    }
}

} // namespace popgate::cli
