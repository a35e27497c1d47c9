// import_parsers.cpp - the fetchmail, getmail6 and mpop file readers of
// import_parsers.h. Every option a reader knows is either mapped to a popgate
// account field here or named in kUnmapped with the reason; an option it does
// not know is named too. Pure: text in, entries out; must not depend on the
// store, the secret box or the file system.
#include "core/import_parsers.h"

#include "core/errors.h"
#include "core/recipients.h"
#include "core/text.h"

#include <Poco/String.h>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <set>

namespace popgate
{

const char* const kImportMultidrop =
    "not mapped: a multidrop option popgate does not have (see docs/multidrop.md)";

namespace
{

// kUnmapped - every option the readers recognise and do not map, with the
// reason: one table, so that mapping an option later is one line here.
struct Unmapped {
    const char* tool;
    const char* option;
    const char* why;
};
const char* const kDelivery = "not mapped: popgate hands every message to the local MTA by SMTP "
                              "(reinject.host in popgate.conf); deliver-to names the recipient";
const char* const kGlobal =
    "not mapped: a setting of popgate.conf or of popgated, not of an account";
const char* const kNoNeed = "not needed: popgate fetches what its ledger has not delivered";
const char* const kClientCert = "not mapped: popgate does not log in with a client certificate";
const char* const kEnvelopeHeaders = "not mapped: popgate reads only Delivered-To, X-Original-To, "
                                     "Envelope-To or X-Envelope-To";
const char* const kNoGuess =
    "not mapped: multidrop without envelope (popgate never guesses recipients from To/Cc)";
const Unmapped kUnmapped[] = {
    // multidrop: one mailbox for several local recipients. Mapped (see
    // fetchmailMultidrop, parseGetmailRc): fetchmail `envelope [N] HEADER`,
    // `localdomains`, `is * here`, `is 'ADDRESS'='LOCAL'`; getmail's Multidrop
    // retrievers with `envelope_recipient = HEADER:N`. The rest is named here.
    {"fetchmail", "qvirtual", kImportMultidrop},
    {"fetchmail", "aka", kImportMultidrop},
    {"fetchmail", "dns", kImportMultidrop},
    {"fetchmail", "checkalias", kImportMultidrop},
    {"fetchmail", "fetchdomains", kImportMultidrop},
    {"fetchmail", "envelope (a header popgate does not read)", kEnvelopeHeaders},
    {"fetchmail", "envelope (more than 16 to skip)",
     "not mapped: popgate skips at most 16 fields (envelope-header-skip)"},
    {"fetchmail", "no envelope", kNoGuess},
    {"fetchmail", "multidrop without envelope", kNoGuess},
    {"fetchmail", "envelope (one local name)",
     "not needed: fetchmail reads the envelope only for several local names or *"},
    {"fetchmail", "localdomains (one local name)",
     "not needed: fetchmail reads the envelope only for several local names or *"},
    {"fetchmail", "is (several local users)",
     "not mapped: local names without *: popgate delivers every address of local-domains as "
     "addressed, fetchmail only the names listed (list them in recipient-map)"},
    {"fetchmail", "is 'REMOTE'='LOCAL' (a name)",
     "not mapped: fetchmail maps the name at the server's own host names (poll, via, aka), never "
     "in localdomains; recipient-map takes an address (`account set NAME "
     "--recipient-map=NAME@DOMAIN=LOCAL`)"},
    {"getmail", "envelope_recipient (a header popgate does not read)", kEnvelopeHeaders},
    {"getmail", "envelope_recipient (not HEADER:N)",
     "not understood: expected HEADER:N, N from 1 to 17"},
    {"getmail", "envelope_recipient (not a Multidrop retriever)",
     "not needed: only a Multidrop retriever reads it"},
    // delivery: popgate always reinjects by SMTP
    {"fetchmail", "mda", kDelivery},
    {"fetchmail", "bsmtp", kDelivery},
    {"fetchmail", "lmtp", kDelivery},
    {"fetchmail", "smtpaddress", kDelivery},
    {"fetchmail", "antispam", "not mapped: popgate-milter and the MTA judge spam"},
    {"fetchmail", "folder", "not mapped: POP3 has one mailbox"},
    {"fetchmail", "preconnect", "not mapped: popgate runs no commands"},
    {"fetchmail", "postconnect", "not mapped: popgate runs no commands"},
    {"fetchmail", "plugin", "not mapped: popgate runs no commands"},
    {"fetchmail", "plugout", "not mapped: popgate runs no commands"},
    {"fetchmail", "sslcertpath",
     "not mapped: popgate takes a CA file (tls-ca-file), not a directory"},
    {"fetchmail", "sslcommonname", "not mapped: popgate checks the server's name"},
    {"fetchmail", "no sslcertck",
     "not mapped: popgate always verifies the server's certificate (give tls-ca-file or tls-pin)"},
    {"fetchmail", "sslfingerprint", "not mapped: popgate pins SHA-256 (tls-pin), not MD5"},
    {"fetchmail", "sslkey", kClientCert},
    {"fetchmail", "sslcert", kClientCert},
    {"fetchmail", "timeout", kGlobal},
    {"fetchmail", "interval", "not mapped: set poll-interval"},
    {"fetchmail", "interface", "not mapped: popgate does not watch interfaces"},
    {"fetchmail", "monitor", "not mapped: popgate does not watch interfaces"},
    {"fetchmail", "principal", "not mapped: no Kerberos login"},
    {"fetchmail", "esmtpname", kDelivery},
    {"fetchmail", "esmtppassword", kDelivery},
    {"fetchmail", "tracepolls", kGlobal},
    {"fetchmail", "bad-header", kGlobal},
    {"fetchmail", "retrieve-error", kGlobal},
    {"fetchmail", "fetchall", kNoNeed},
    {"fetchmail", "flush", kNoNeed},
    {"fetchmail", "limitflush", kNoNeed},
    {"fetchmail", "uidl", "not needed: popgate always uses UIDL"},
    {"fetchmail", "rewrite", "not mapped: popgate never rewrites addresses"},
    {"fetchmail", "forcecr", "not needed: popgate sends CRLF"},
    {"fetchmail", "stripcr", "not needed: popgate sends CRLF"},
    {"fetchmail", "pass8bits", "not needed: popgate passes 8-bit mail as it came"},
    {"fetchmail", "dropstatus", "not mapped: popgate does not edit headers"},
    {"fetchmail", "dropdelivered", "not mapped: popgate does not edit headers"},
    {"fetchmail", "mimedecode", "not mapped: popgate does not edit messages"},
    {"fetchmail", "idle", "not mapped: IMAP only"},
    {"fetchmail", "warnings", kGlobal},
    {"fetchmail", "fetchlimit", kGlobal},
    {"fetchmail", "fetchsizelimit", kGlobal},
    {"fetchmail", "fastuidl", kGlobal},
    {"fetchmail", "batchlimit", kGlobal},
    {"fetchmail", "expunge", kGlobal},
    {"fetchmail", "properties", "not mapped: no meaning to popgate"},
    {"fetchmail", "showdots", kGlobal},
    {"fetchmail", "sslproto", "not mapped: popgate speaks TLS 1.2 or later (tls-min-version)"},
    {"fetchmail", "set", kGlobal},
    {"fetchmail", "auth", "not mapped: popgate logs in with USER/PASS, APOP, PLAIN or LOGIN"},
    {"fetchmail", "smtphost", kDelivery},
    {"getmail", "password_command", "not mapped: give the password at the prompt after import"},
    {"getmail", "keyfile", kClientCert},
    {"getmail", "certfile", kClientCert},
    {"getmail", "ssl_cert_hostname", "not mapped: popgate checks the server's name"},
    {"getmail", "ssl_version", "not mapped: popgate speaks TLS 1.2 or later (tls-min-version)"},
    {"getmail", "ssl_ciphers", "not mapped: popgate uses the system's TLS ciphers"},
    {"getmail", "ssl_fingerprints", "not mapped: popgate pins SHA-256 (tls-pin): one fingerprint"},
    {"getmail", "timeout", kGlobal},
    {"getmail", "delete_after", "not mapped: popgate deletes at once or keeps (keep-on-server)"},
    {"getmail", "delete_bigger_than", "not mapped: popgate deletes at once or keeps"},
    {"getmail", "max_bytes_per_session", kGlobal},
    {"getmail", "max_messages_per_session", kGlobal},
    {"getmail", "read_all", kNoNeed},
    {"getmail", "delivered_to", "not mapped: popgate adds its own Received line"},
    {"getmail", "received", "not mapped: popgate adds its own Received line"},
    {"getmail", "[destination]", kDelivery},
    {"getmail", "[filter]", "not mapped: popgate filters with system address filters"},
    {"getmail", "verbose", kGlobal},
    {"getmail", "message_log", kGlobal},
    {"getmail", "message_log_syslog", kGlobal},
    {"getmail", "message_log_verbose", kGlobal},
    {"getmail", "use_xoauth2", "not mapped: set auth=oauth2 and an oauth-profile by hand"},
    {"getmail", "type = BrokenUIDLPOP3Retriever", "not mapped: imported as a plain POP3 account"},
    {"mpop", "passwordeval", "not mapped: a command; give the password at the prompt after import"},
    {"mpop", "tls_certcheck off",
     "not mapped: popgate always verifies the server's certificate (give tls-ca-file or tls-pin)"},
    {"mpop", "tls_fingerprint", "not mapped: popgate pins SHA-256 (tls-pin), not SHA-1 or MD5"},
    {"mpop", "tls_crl_file", "not mapped: popgate uses the system's revocation settings"},
    {"mpop", "tls_key_file", kClientCert},
    {"mpop", "tls_cert_file", kClientCert},
    {"mpop", "tls_priorities", "not mapped: popgate uses the system's TLS ciphers"},
    {"mpop", "tls_min_dh_prime_bits", "not mapped: popgate uses the system's TLS settings"},
    {"mpop", "tls_host_override", "not mapped: popgate checks the server's name"},
    {"mpop", "timeout", kGlobal},
    {"mpop", "pipelining", "not needed: popgate pipelines when the server offers it"},
    {"mpop", "received_header", "not mapped: popgate adds its own Received line"},
    {"mpop", "delivery", kDelivery},
    {"mpop", "only_new", kNoNeed},
    {"mpop", "killsize", "not mapped: popgate never deletes unread mail"},
    {"mpop", "filter", "not mapped: popgate filters with system address filters"},
    {"mpop", "proxy_host", "not mapped: popgate connects directly"},
    {"mpop", "proxy_port", "not mapped: popgate connects directly"},
    {"mpop", "socket", "not mapped: popgate connects by TCP"},
    {"mpop", "source_ip", "not mapped: popgate connects from the system's address"},
    {"mpop", "ntlmdomain", "not mapped: no NTLM login"},
    {"mpop", "auth", "not mapped: popgate logs in with USER/PASS, APOP, PLAIN or LOGIN"},
    {"mpop", "eval", "not mapped: popgate runs no commands"},
};

// why - the table's reason for tool's option, or that the importer does not know it.
std::string why(const std::string& tool, const std::string& option)
{
    for (const auto& u : kUnmapped)
        if (tool == u.tool && option == u.option)
            return u.why;
    return "not mapped: unknown to the importer";
}

ImportNote note(const std::string& tool, const std::string& file, int line,
                const std::string& option, const std::string& shown = "")
{
    return {file, line, shown.empty() ? option : shown, why(tool, option)};
}

// Lines - the text's lines, CR LF or LF, each bounded by kImportMaxLine.
std::vector<std::string> lines(const std::string& text, const std::string& file,
                               std::size_t maxBytes)
{
    if (text.size() > maxBytes)
        throw InputError(file + ": larger than " + std::to_string(maxBytes) + " bytes");
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        if (end - start > kImportMaxLine)
            throw InputError(file + ":" + std::to_string(out.size() + 1) + ": line longer than " +
                             std::to_string(kImportMaxLine) + " bytes");
        std::string l = text.substr(start, end - start);
        if (!l.empty() && l.back() == '\r')
            l.pop_back();
        out.push_back(std::move(l));
        start = end + 1;
    }
    return out;
}

std::string lower(std::string s)
{
    return Poco::toLower(s);
}

// isWholeNumber - digits only, at most 9 of them.
bool isWholeNumber(const std::string& s)
{
    return !s.empty() && s.size() <= 9 &&
           std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// sha256Pin - 32 hex bytes (colons allowed): a SHA-256 fingerprint; "" otherwise.
std::string sha256Pin(const std::string& value)
{
    std::string hex;
    for (char c : value)
        if (c != ':')
            hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
        return {};
    return hex;
}

void set(ImportEntry& e, const std::string& field, const std::string& value, int line,
         const std::string& option)
{
    e.settings.push_back({field, value, line, option});
    if (field == "deliver-to")
        e.hasRecipient = true;
}

// unset - drops every setting of field.
void unset(ImportEntry& e, const std::string& field)
{
    e.settings.erase(std::remove_if(e.settings.begin(), e.settings.end(),
                                    [&](const ImportSetting& s) { return s.field == field; }),
                     e.settings.end());
}

// envelopeHeader - popgate's name for one of the envelope headers it reads; "" otherwise.
std::string envelopeHeader(const std::string& name)
{
    try {
        return canonicalEnvelopeHeader(name);
    } catch (const InputError&) {
        return {};
    }
}

// recipientOfCommand - the recipient of a sendmail/msmtp command line: its last
// word that is not an option, when the program is one of those. "" otherwise.
std::string recipientOfCommand(const std::vector<std::string>& words)
{
    if (words.empty())
        return {};
    const std::string prog = words[0].substr(words[0].rfind('/') + 1);
    if (prog != "sendmail" && prog != "msmtp" && prog != "exim4" && prog != "exim")
        return {};
    const std::string last = words.back();
    if (words.size() < 2 || last.empty() || last[0] == '-' || last.find('%') != std::string::npos)
        return {};
    return last;
}

// shellWords - a command split at blanks, '...' and "..." quoting (no expansion).
std::vector<std::string> shellWords(const std::string& cmd)
{
    std::vector<std::string> out;
    std::string cur;
    bool in = false;
    char quote = 0;
    for (char c : cmd) {
        if (quote) {
            if (c == quote)
                quote = 0;
            else
                cur += c;
        } else if (c == '\'' || c == '"') {
            quote = c;
            in = true;
        } else if (c == ' ' || c == '\t') {
            if (in)
                out.push_back(cur);
            cur.clear();
            in = false;
        } else {
            cur += c;
            in = true;
        }
    }
    if (in)
        out.push_back(cur);
    return out;
}

// ---- fetchmail ----------------------------------------------------------------

struct Token {
    std::string text;
    bool quoted = false;
    int line = 0;
};

// fetchmailTokens - words, quoted strings (with fetchmail's backslash escapes)
// and the separators , ; : = as their own tokens; # starts a comment.
std::vector<Token> fetchmailTokens(const std::string& text, const std::string& file)
{
    const auto ls = lines(text, file, kImportMaxRcBytes);
    std::vector<Token> out;
    for (std::size_t n = 0; n < ls.size(); ++n) {
        const std::string& l = ls[n];
        const int line = static_cast<int>(n + 1);
        std::size_t i = 0;
        while (i < l.size()) {
            const char c = l[i];
            if (c == ' ' || c == '\t' || c == '\f' || c == '\v') {
                ++i;
            } else if (c == '#') {
                break;
            } else if (c == ',' || c == ';' || c == ':' || c == '=') {
                out.push_back({std::string(1, c), false, line});
                ++i;
            } else if (c == '"' || c == '\'') {
                std::string s;
                std::size_t j = i + 1;
                bool closed = false;
                while (j < l.size()) {
                    if (l[j] == c) {
                        closed = true;
                        break;
                    }
                    if (l[j] == '\\' && j + 1 < l.size()) {
                        const char e = l[++j];
                        if (e == 'n')
                            s += '\n';
                        else if (e == 't')
                            s += '\t';
                        else if (e == 'r')
                            s += '\r';
                        else if (e == 'x' && j + 2 < l.size() &&
                                 std::isxdigit(static_cast<unsigned char>(l[j + 1])) &&
                                 std::isxdigit(static_cast<unsigned char>(l[j + 2]))) {
                            s += static_cast<char>(std::stoi(l.substr(j + 1, 2), nullptr, 16));
                            j += 2;
                        } else
                            s += e;
                        ++j;
                        continue;
                    }
                    s += l[j++];
                }
                if (!closed)
                    throw InputError(file + ":" + std::to_string(line) +
                                     ": a quoted string is not closed on its line");
                out.push_back({s, true, line});
                i = j + 1;
            } else {
                // a word ends at a blank, a separator, a quote or '#'; a NUL (which
                // strchr would find as the terminator) is a byte of the word
                std::size_t j = i;
                while (j < l.size() && (l[j] == '\0' || !std::strchr(" \t\f\v#,;:=\"'", l[j])))
                    ++j;
                out.push_back({l.substr(i, j - i), false, line});
                i = j;
            }
        }
    }
    return out;
}

const std::set<std::string>& fetchmailNoise()
{
    static const std::set<std::string> s{"and", "with", "has", "wants", "options", ",", ";", ":"};
    return s;
}

// Arity of fetchmail's keywords: 0 flags, 1 one value, 2 a list of values.
const std::map<std::string, int>& fetchmailKeywords()
{
    static const std::map<std::string, int> k{
        {"poll", 1},
        {"skip", 1},
        {"defaults", 0},
        {"set", 0},
        {"via", 1},
        {"proto", 1},
        {"protocol", 1},
        {"port", 1},
        {"service", 1},
        {"auth", 1},
        {"authenticate", 1},
        {"timeout", 1},
        {"envelope", 1},
        {"qvirtual", 1},
        {"aka", 2},
        {"localdomains", 2},
        {"interface", 1},
        {"monitor", 1},
        {"plugin", 1},
        {"plugout", 1},
        {"principal", 1},
        {"esmtpname", 1},
        {"esmtppassword", 1},
        {"interval", 1},
        {"tracepolls", 0},
        {"bad-header", 1},
        {"retrieve-error", 1},
        {"dns", 0},
        {"checkalias", 0},
        {"uidl", 0},
        {"user", 1},
        {"username", 1},
        {"password", 1},
        {"pass", 1},
        {"is", 2},
        {"to", 2},
        {"here", 0},
        {"there", 0},
        {"folder", 2},
        {"smtphost", 2},
        {"smtphosts", 2},
        {"fetchdomains", 2},
        {"smtpaddress", 1},
        {"smtpname", 1},
        {"antispam", 2},
        {"mda", 1},
        {"bsmtp", 1},
        {"lmtp", 0},
        {"preconnect", 1},
        {"postconnect", 1},
        {"keep", 0},
        {"flush", 0},
        {"limitflush", 0},
        {"fetchall", 0},
        {"rewrite", 0},
        {"forcecr", 0},
        {"stripcr", 0},
        {"pass8bits", 0},
        {"dropstatus", 0},
        {"dropdelivered", 0},
        {"mimedecode", 0},
        {"idle", 0},
        {"limit", 1},
        {"warnings", 1},
        {"fetchlimit", 1},
        {"fetchsizelimit", 1},
        {"fastuidl", 1},
        {"batchlimit", 1},
        {"expunge", 1},
        {"ssl", 0},
        {"sslkey", 1},
        {"sslcert", 1},
        {"sslproto", 1},
        {"sslcertck", 0},
        {"sslcertfile", 1},
        {"sslcertpath", 1},
        {"sslcommonname", 1},
        {"sslfingerprint", 1},
        {"properties", 1},
        {"showdots", 0},
        {"no", 0},
        {"nokeep", 0},
        {"nofetchall", 0},
        {"norewrite", 0},
        {"noforcecr", 0},
        {"nostripcr", 0},
        {"nopass8bits", 0},
        {"nodropstatus", 0},
        {"nodropdelivered", 0},
        {"nomimedecode", 0},
        {"noidle", 0},
        {"noflush", 0},
        {"nolimitflush", 0},
        {"nodns", 0},
        {"nocheckalias", 0},
        {"nouidl", 0},
        {"nossl", 0},
        {"nosslcertck", 0},
        {"nolmtp", 0},
    };
    return k;
}

class FetchmailReader
{
public:
    FetchmailReader(std::vector<Token> tokens, std::string file)
        : t_(std::move(tokens)), file_(std::move(file))
    {
    }

    ImportParse read()
    {
        ImportEntry defaults;
        bool haveDefaults = false;
        while (more()) {
            const Token& tok = t_[i_];
            const std::string w = lower(tok.text);
            if (!tok.quoted && w == "set") {
                ++i_;
                readSet();
            } else if (!tok.quoted && (w == "poll" || w == "skip")) {
                ++i_;
                readPoll(w == "skip", haveDefaults ? &defaults : nullptr);
            } else if (!tok.quoted && w == "defaults") {
                ++i_;
                defaults = ImportEntry();
                defaults.file = file_;
                defaults.line = tok.line;
                std::vector<ImportEntry> users;
                readServerOptions(defaults);
                readUsers(defaults, users, true);
                haveDefaults = true;
                for (auto& n : defaults.notes)
                    out_.notes.push_back(n);
                defaults.notes.clear();
            } else {
                out_.notes.push_back({file_, tok.line, tok.text,
                                      "not understood: expected poll, skip, defaults or set"});
                ++i_;
            }
        }
        return std::move(out_);
    }

private:
    bool more() const { return i_ < t_.size(); }
    bool isKeyword(const Token& t) const
    {
        return !t.quoted && fetchmailKeywords().count(lower(t.text)) != 0;
    }
    bool atStatement() const
    {
        if (!more() || t_[i_].quoted)
            return false;
        const std::string w = lower(t_[i_].text);
        return w == "poll" || w == "skip" || w == "defaults" || w == "set";
    }
    void skipNoise()
    {
        while (more() && !t_[i_].quoted && fetchmailNoise().count(lower(t_[i_].text)))
            ++i_;
    }
    // value - the next token as a value (a string or any word), or nothing.
    std::optional<Token> value()
    {
        skipNoise();
        if (!more() || atStatement())
            return std::nullopt;
        return t_[i_++];
    }
    // list - values up to the next keyword.
    std::vector<Token> list()
    {
        std::vector<Token> out;
        for (;;) {
            skipNoise();
            if (!more() || isKeyword(t_[i_]))
                return out;
            out.push_back(t_[i_++]);
        }
    }

    void readSet()
    {
        skipNoise();
        if (!more())
            return;
        const Token key = t_[i_++];
        std::string k = lower(key.text);
        bool negated = false;
        if (k == "no" && more()) {
            negated = true;
            k = lower(t_[i_++].text);
        }
        if (k == "daemon") {
            if (auto v = value()) {
                if (isWholeNumber(v->text)) {
                    daemon_ = v->text + "s";
                    daemonLine_ = key.line;
                    return;
                }
            }
            out_.notes.push_back({file_, key.line, "set daemon", "not understood: no interval"});
            return;
        }
        if (k == "idfile") {
            if (auto v = value())
                out_.idFile = v->text;
            return;
        }
        // every other `set` takes one value or none; a value is never a keyword
        static const std::set<std::string> flags{"bouncemail", "spambounce", "softbounce",
                                                 "syslog",     "invisible",  "showdots"};
        if (!negated && !flags.count(k) && more() && !atStatement())
            ++i_;
        out_.notes.push_back({file_, key.line, "set " + (negated ? "no " : std::string()) + k,
                              why("fetchmail", "set")});
    }

    // readPoll - `poll NAME server-options users...`
    void readPoll(bool skip, const ImportEntry* defaults)
    {
        const int line = t_[i_ - 1].line;
        auto name = value();
        if (!name) {
            out_.notes.push_back(
                {file_, line, skip ? "skip" : "poll", "not understood: no server"});
            return;
        }
        ImportEntry server = defaults ? *defaults : ImportEntry();
        server.file = file_;
        server.line = line;
        server.label = (skip ? "skip " : "poll ") + name->text;
        server.server = name->text;
        set(server, "server", name->text, name->line, skip ? "skip" : "poll");
        if (!daemon_.empty())
            set(server, "poll-interval", daemon_, daemonLine_, "set daemon");
        if (skip)
            set(server, "active", "no", line, "skip");
        readServerOptions(server);
        std::vector<ImportEntry> users;
        readUsers(server, users, false);
        if (users.empty()) {
            // fetchmail's default: the login name of whoever runs it
            server.skipped = "no user: fetchmail would log in as the user running it";
            users.push_back(server);
        }
        for (auto& u : users) {
            fetchmailMultidrop(u);
            if (!u.setting("security")) // fetchmail 6.4 upgrades with STLS when offered
                set(u, "security", "starttls", u.line,
                    "no ssl (fetchmail's STARTTLS when offered)");
            if (u.skipped.empty() && !u.password)
                u.skipped = "no password in the file (fetchmail asks for it or reads ~/.netrc): "
                            "add this account with `popgatectl account add`";
            out_.entries.push_back(std::move(u));
        }
    }

    // option - handles one keyword for entry e; false when the token is not an option.
    bool option(ImportEntry& e, bool inUser)
    {
        skipNoise();
        if (!more() || atStatement())
            return false;
        const Token tok = t_[i_];
        std::string w = lower(tok.text);
        if (tok.quoted || !fetchmailKeywords().count(w)) {
            // a quoted string is not shown: it may be a password out of place
            e.notes.push_back({file_, tok.line, tok.quoted ? "a quoted string" : tok.text,
                               "not understood: not a fetchmail keyword"});
            ++i_;
            return true;
        }
        if (w == "user" || w == "username")
            return false; // a new user
        if (w == "here" || w == "there") {
            ++i_;
            return true;
        }
        ++i_;
        bool no = false;
        if (w == "no") {
            skipNoise();
            if (!more())
                return true;
            no = true;
            const Token& next = t_[i_++];
            w = lower(next.text);
            if (next.quoted || !fetchmailKeywords().count(w)) {
                e.notes.push_back({file_, tok.line,
                                   next.quoted ? "no (a quoted string)" : "no " + next.text,
                                   "not understood: not a fetchmail keyword"});
                return true;
            }
        } else if (w.size() > 2 && w.compare(0, 2, "no") == 0 &&
                   fetchmailKeywords().count(w.substr(2))) {
            no = true; // nokeep, nossl, ...
            w = w.substr(2);
        }
        const int line = tok.line;
        const std::string shown = no ? "no " + w : w;
        auto one = [&]() -> std::string {
            auto v = value();
            return v ? v->text : std::string();
        };
        if (w == "via") {
            const std::string v = one();
            set(e, "server", v, line, "via");
        } else if (w == "proto" || w == "protocol") {
            const std::string p = lower(one());
            if (p == "pop3" || p == "pop2" || p == "apop" || p == "rpop" || p == "kpop" ||
                p == "sdps") {
                if (p == "apop")
                    set(e, "auth-mechanism", "apop", line, "proto APOP");
                else if (p != "pop3")
                    e.notes.push_back({file_, line, "proto " + p, "not mapped: imported as POP3"});
            } else if (p == "auto") {
                e.notes.push_back({file_, line, "proto auto",
                                   "not mapped: imported as POP3 (popgate fetches POP3 only)"});
            } else {
                e.skipped = "protocol " + Poco::toUpper(p) + ": popgate fetches POP3 only";
            }
        } else if (w == "port" || w == "service") {
            const std::string v = one();
            if (isWholeNumber(v)) {
                e.port = std::stoi(v);
                set(e, "port", v, line, w);
            } else if (lower(v) == "pop3s") {
                e.port = 995;
                set(e, "port", "995", line, w);
            } else if (lower(v) == "pop3") {
                e.port = 110;
                set(e, "port", "110", line, w);
            } else {
                e.notes.push_back({file_, line, w + " " + v, "not understood: a port number"});
            }
        } else if (w == "auth" || w == "authenticate") {
            const std::string a = lower(one());
            if (a == "any")
                set(e, "auth-mechanism", "auto", line, "auth any");
            else if (a == "password")
                set(e, "auth-mechanism", "user", line, "auth password");
            else if (a == "apop")
                set(e, "auth-mechanism", "apop", line, "auth apop");
            else
                e.notes.push_back(note("fetchmail", file_, line, "auth", "auth " + a));
        } else if (w == "password" || w == "pass") {
            skipNoise();
            if (more() && !t_[i_].quoted && t_[i_].text == "=")
                ++i_;
            auto v = value();
            if (v)
                e.password = v->text;
        } else if (w == "is" || w == "to") {
            // local names, `*`, and 'REMOTE'='LOCAL' pairs
            auto names = list();
            bool wildcard = false;
            std::vector<std::string> locals;
            std::vector<std::pair<std::string, std::string>> pairs;
            for (std::size_t k = 0; k < names.size(); ++k) {
                const Token& n = names[k];
                if (!n.quoted && (n.text == "here" || n.text == "there" || n.text == "="))
                    continue;
                if (k + 2 < names.size() && !names[k + 1].quoted && names[k + 1].text == "=") {
                    pairs.emplace_back(n.text, names[k + 2].text);
                    k += 2;
                } else if (!n.quoted && n.text == "*") {
                    wildcard = true;
                } else {
                    locals.push_back(n.text);
                }
            }
            skipNoise();
            if (more() && !t_[i_].quoted &&
                (lower(t_[i_].text) == "here" || lower(t_[i_].text) == "there"))
                ++i_;
            if (pairs.size() == 1 && locals.empty() && !wildcard)
                locals.push_back(pairs[0].second); // one name: a single-drop mailbox
            if (wildcard || locals.size() + pairs.size() > 1) {
                // multidrop: fetchmailMultidrop decides once the entry is read
                set(e, "recipients", "envelope", line, w + " (several local names or *)");
                if (!wildcard)
                    e.notes.push_back(note("fetchmail", file_, line, "is (several local users)"));
                // an address as written is a recipient-map entry; a bare name is
                // mapped by fetchmail only at the server's host names: not guessed
                std::vector<std::string> map;
                for (const auto& [remote, local] : pairs) {
                    if (remote.find('@') != std::string::npos)
                        map.push_back(remote + "=" + local);
                    else
                        e.notes.push_back(note("fetchmail", file_, line,
                                               "is 'REMOTE'='LOCAL' (a name)",
                                               "is '" + remote + "'='" + local + "'"));
                }
                if (!map.empty()) {
                    std::string joined;
                    for (const auto& m : map)
                        joined += (joined.empty() ? "" : ", ") + m;
                    set(e, "recipient-map", joined, line, w + " 'REMOTE'='LOCAL'");
                }
            } else if (locals.size() == 1 && !e.setting("deliver-to")) {
                set(e, "deliver-to", locals[0], line, w);
            } else if (locals.size() == 1) {
                e.notes.push_back({file_, line, w + " " + locals[0],
                                   "not mapped: smtpname names the recipient already"});
            }
        } else if (w == "smtpname") {
            const std::string v = one();
            // smtpname is the full address fetchmail delivers to: it wins over `is`
            e.settings.erase(
                std::remove_if(e.settings.begin(), e.settings.end(),
                               [](const ImportSetting& s) { return s.field == "deliver-to"; }),
                e.settings.end());
            set(e, "deliver-to", v, line, "smtpname");
        } else if (w == "smtphost" || w == "smtphosts") {
            for (const auto& h : list())
                e.notes.push_back(
                    {file_, line, "smtphost " + h.text, why("fetchmail", "smtphost")});
        } else if (w == "keep") {
            set(e, "keep-on-server", no ? "no" : "yes", line, shown);
        } else if (w == "ssl") {
            set(e, "security", no ? "starttls" : "ssl-tls", line, shown);
        } else if (w == "sslproto") {
            const std::string p = lower(one());
            if (p.empty() && e.setting("security") != std::string("ssl-tls")) {
                set(e, "security", "none", line, "sslproto ''");
                set(e, "plaintext-auth", "yes", line, "sslproto ''");
            } else if (p == "tls1.2+" || p == "tls1.3+") {
                set(e, "tls-min-version", p.substr(3, 3), line, "sslproto " + p);
            } else if (p == "auto" || p == "tls1+" || p == "tls1.1+" || p == "ssl23" || p.empty()) {
                // TLS 1.2 or later in popgate: at least what fetchmail asked for
            } else {
                e.notes.push_back(note("fetchmail", file_, line, "sslproto", "sslproto " + p));
            }
        } else if (w == "sslcertck") {
            if (no)
                e.notes.push_back(note("fetchmail", file_, line, "no sslcertck"));
        } else if (w == "sslcertfile") {
            set(e, "tls-ca-file", one(), line, "sslcertfile");
        } else if (w == "sslfingerprint") {
            const std::string v = one();
            const std::string pin = sha256Pin(v);
            if (!pin.empty())
                set(e, "tls-pin", pin, line, "sslfingerprint");
            else
                e.notes.push_back(note("fetchmail", file_, line, "sslfingerprint"));
        } else if (w == "limit") {
            const std::string v = one();
            if (isWholeNumber(v))
                set(e, "max-message-size", v, line, "limit");
            else
                e.notes.push_back({file_, line, "limit " + v, "not understood: a size in bytes"});
        } else if (w == "envelope") {
            // `envelope [N] HEADER` (skip N fields from the top, as popgate counts)
            // or `no envelope` (fetchmail guesses from To/Cc)
            unset(e, "envelope-header");
            unset(e, "envelope-header-skip");
            if (no) {
                e.notes.push_back(note("fetchmail", file_, line, "no envelope"));
            } else {
                auto v = value();
                std::string skip = "0";
                if (v && isWholeNumber(v->text)) {
                    skip = v->text;
                    v = value();
                }
                const std::string header = v ? envelopeHeader(v->text) : "";
                const std::string written =
                    "envelope " + (skip == "0" ? "" : skip + " ") + (v ? v->text : std::string());
                if (header.empty())
                    e.notes.push_back(note("fetchmail", file_, line,
                                           "envelope (a header popgate does not read)", written));
                else if (std::stoi(skip) > 16)
                    e.notes.push_back(
                        note("fetchmail", file_, line, "envelope (more than 16 to skip)", written));
                else {
                    set(e, "envelope-header", header, line, written);
                    set(e, "envelope-header-skip", std::to_string(std::stoi(skip)), line, written);
                }
            }
        } else if (w == "localdomains" && !no) {
            std::string joined;
            for (const auto& d : list())
                joined += (joined.empty() ? "" : ", ") + d.text;
            if (!joined.empty())
                set(e, "local-domains", joined, line, "localdomains");
        } else {
            const int arity = fetchmailKeywords().at(w);
            if (arity == 1 && !no)
                value();
            else if (arity == 2 && !no)
                list();
            e.notes.push_back(note("fetchmail", file_, line, w, shown));
        }
        (void)inUser;
        return true;
    }

    // fetchmailMultidrop - an entry read whole: a multidrop user (several local
    // names or *) with an envelope header popgate reads becomes recipients
    // envelope; without one it is refused (popgate never guesses from To/Cc);
    // a single-drop user keeps deliver-to and drops the envelope settings.
    void fetchmailMultidrop(ImportEntry& e)
    {
        auto lineOf = [&](const std::string& field) {
            for (auto it = e.settings.rbegin(); it != e.settings.rend(); ++it)
                if (it->field == field)
                    return it->line;
            return e.line;
        };
        const bool multidrop = e.setting("recipients") == std::string("envelope");
        if (multidrop && e.setting("envelope-header"))
            return;
        if (multidrop) {
            e.notes.push_back(
                note("fetchmail", file_, lineOf("recipients"), "multidrop without envelope"));
            if (e.skipped.empty())
                e.skipped = "multidrop without envelope (popgate never guesses recipients from "
                            "To/Cc): add it with `popgatectl account add --recipients=envelope "
                            "--envelope-header=...` naming the header your provider writes";
        } else {
            if (e.setting("envelope-header"))
                e.notes.push_back(note("fetchmail", file_, lineOf("envelope-header"),
                                       "envelope (one local name)", "envelope"));
            if (e.setting("local-domains"))
                e.notes.push_back(note("fetchmail", file_, lineOf("local-domains"),
                                       "localdomains (one local name)", "localdomains"));
        }
        for (const char* f : {"recipients", "envelope-header", "envelope-header-skip",
                              "local-domains", "recipient-map"})
            unset(e, f);
    }

    void readServerOptions(ImportEntry& e)
    {
        while (more() && !atStatement()) {
            skipNoise();
            if (!more() || atStatement())
                return;
            const std::string w = lower(t_[i_].text);
            if (!t_[i_].quoted && (w == "user" || w == "username"))
                return;
            if (!option(e, false))
                return;
        }
    }

    // readUsers - `user NAME [there] [is LOCAL [here]] user-options`, repeated.
    void readUsers(ImportEntry& server, std::vector<ImportEntry>& users, bool isDefaults)
    {
        while (more() && !atStatement()) {
            skipNoise();
            if (!more() || atStatement())
                return;
            const Token tok = t_[i_];
            const std::string w = lower(tok.text);
            if (tok.quoted || (w != "user" && w != "username")) {
                ImportEntry& target = users.empty() ? server : users.back();
                option(target, true);
                continue;
            }
            ++i_;
            ImportEntry u = server;
            u.line = tok.line;
            auto name = value();
            if (!name)
                return;
            u.user = name->text;
            set(u, "user", name->text, name->line, "user");
            skipNoise();
            // `user LOCAL here is REMOTE there`: the reverse form
            if (more() && lower(t_[i_].text) == "here" && !t_[i_].quoted) {
                ++i_;
                skipNoise();
                if (more() && (t_[i_].text == "is" || t_[i_].text == "to" || t_[i_].text == "=")) {
                    ++i_;
                    if (auto remote = value()) {
                        u.settings.pop_back();
                        u.user = remote->text;
                        set(u, "user", remote->text, remote->line, "user");
                        set(u, "deliver-to", name->text, name->line, "user ... here");
                    }
                }
            } else if (more() && t_[i_].text == "=" && !t_[i_].quoted) {
                t_[i_].text = "is";
            }
            users.push_back(std::move(u));
            (void)isDefaults;
        }
    }

    std::vector<Token> t_;
    std::size_t i_ = 0;
    std::string file_;
    ImportParse out_;
    std::string daemon_;
    int daemonLine_ = 0;
};

} // namespace

std::optional<std::string> ImportEntry::setting(const std::string& field) const
{
    for (auto it = settings.rbegin(); it != settings.rend(); ++it)
        if (it->field == field)
            return it->value;
    return std::nullopt;
}

ImportParse parseFetchmailRc(const std::string& text, const std::string& file)
{
    FetchmailReader reader(fetchmailTokens(text, file), file);
    ImportParse p = reader.read();
    for (auto& e : p.entries)
        if (e.user.empty() && e.skipped.empty())
            e.skipped = "no user";
    return p;
}

// ---- getmail ----------------------------------------------------------------

ImportParse parseGetmailRc(const std::string& text, const std::string& file)
{
    const auto ls = lines(text, file, kImportMaxRcBytes);
    struct Item {
        std::string section, key, value;
        int line;
    };
    std::vector<Item> items;
    std::vector<std::pair<std::string, int>> sections;
    std::string section;
    ImportParse out;
    for (std::size_t n = 0; n < ls.size(); ++n) {
        const std::string& raw = ls[n];
        const int line = static_cast<int>(n + 1);
        const std::string l = trim(raw);
        if (l.empty() || l[0] == '#' || l[0] == ';')
            continue;
        if ((raw[0] == ' ' || raw[0] == '\t') && !items.empty() &&
            items.back().section == section) {
            items.back().value += "\n" + l; // a continuation line
            continue;
        }
        if (l[0] == '[') {
            const auto close = l.find(']');
            if (close == std::string::npos)
                throw InputError(file + ":" + std::to_string(line) +
                                 ": a section name without ']'");
            section = lower(trim(l.substr(1, close - 1)));
            sections.push_back({section, line});
            continue;
        }
        const auto sep = l.find_first_of("=:");
        if (sep == std::string::npos) {
            // only the first word: the rest may be a password written without '='
            out.notes.push_back({file, line, l.substr(0, l.find_first_of(" \t")),
                                 "not understood: expected key = value"});
            continue;
        }
        items.push_back({section, lower(trim(l.substr(0, sep))), trim(l.substr(sep + 1)), line});
    }

    ImportEntry e;
    e.file = file;
    e.line = 1;
    e.label = "[retriever]";
    bool ssl = false, haveRetriever = false;
    std::string retrieverType;
    int typeLine = 0;
    for (const auto& [name, line] : sections)
        if (name == "retriever") {
            e.line = line;
            haveRetriever = true;
            break;
        }
    std::string destType, destPath, destArgs, envelope;
    int destLine = 0, envelopeLine = 0;
    bool deleteSeen = false;
    for (const auto& it : items) {
        const std::string& k = it.key;
        const std::string& v = it.value;
        if (it.section == "retriever") {
            if (k == "type") {
                retrieverType = v;
                typeLine = it.line;
            } else if (k == "server") {
                e.server = v;
                set(e, "server", v, it.line, k);
            } else if (k == "port") {
                if (isWholeNumber(v)) {
                    e.port = std::stoi(v);
                    set(e, "port", v, it.line, k);
                } else
                    e.notes.push_back({file, it.line, k, "not understood: a port number"});
            } else if (k == "username") {
                e.user = v;
                set(e, "user", v, it.line, k);
            } else if (k == "password") {
                e.password = v;
            } else if (k == "use_apop") {
                bool on = false;
                try {
                    on = parseBool(v);
                } catch (const InputError&) {
                }
                if (on)
                    set(e, "auth-mechanism", "apop", it.line, k);
            } else if (k == "ca_certs") {
                set(e, "tls-ca-file", v, it.line, k);
            } else if (k == "ssl_fingerprints") {
                // a tuple of fingerprints; one SHA-256 maps to tls-pin
                std::string inner = v;
                inner.erase(std::remove_if(inner.begin(), inner.end(),
                                           [](char c) {
                                               return c == '(' || c == ')' || c == '\'' ||
                                                      c == '"' || c == ' ' || c == '\n';
                                           }),
                            inner.end());
                const auto parts = splitList(inner);
                if (parts.size() == 1 && !sha256Pin(parts[0]).empty())
                    set(e, "tls-pin", sha256Pin(parts[0]), it.line, k);
                else
                    e.notes.push_back(note("getmail", file, it.line, k));
            } else if (k == "envelope_recipient") {
                envelope = v;
                envelopeLine = it.line;
            } else if (k == "mailboxes" || k == "move_on_delete" || k == "use_peek" ||
                       k == "imap_search" || k == "imap_on_delete" || k == "record_mailbox" ||
                       k == "use_cram_md5" || k == "use_kerberos" || k == "use_imap_move") {
                e.notes.push_back({file, it.line, k, "not mapped: IMAP only"});
            } else {
                e.notes.push_back(note("getmail", file, it.line, k));
            }
        } else if (it.section == "destination") {
            if (k == "type") {
                destType = v;
                destLine = it.line;
            } else if (k == "path") {
                destPath = v;
            } else if (k == "arguments") {
                destArgs = v;
            }
        } else if (it.section == "options") {
            if (k == "delete") {
                bool on = false;
                try {
                    on = parseBool(v);
                } catch (const InputError&) {
                    e.notes.push_back({file, it.line, k, "not understood: true or false"});
                    continue;
                }
                deleteSeen = true;
                set(e, "keep-on-server", on ? "no" : "yes", it.line, "delete = " + v);
            } else if (k == "max_message_size") {
                if (isWholeNumber(v))
                    set(e, "max-message-size", v, it.line, k);
                else
                    e.notes.push_back({file, it.line, k, "not understood: a size in bytes"});
            } else {
                e.notes.push_back(note("getmail", file, it.line, k));
            }
        } else if (it.section.compare(0, 6, "filter") == 0) {
            if (k == "type")
                e.notes.push_back(
                    {file, it.line, "[" + it.section + "]", why("getmail", "[filter]")});
        } else {
            e.notes.push_back({file, it.line, "[" + it.section + "] " + k,
                               "not understood: outside getmail's sections"});
        }
    }
    // getmail keeps mail on the server unless told to delete it
    if (!deleteSeen)
        set(e, "keep-on-server", "yes", e.line, "delete (getmail's default: false)");

    const std::string type = retrieverType;
    if (!haveRetriever || type.empty()) {
        e.skipped = "no [retriever] type";
    } else if (type == "SimplePOP3Retriever" || type == "BrokenUIDLPOP3Retriever") {
        ssl = false;
    } else if (type == "SimplePOP3SSLRetriever" || type == "BrokenUIDLPOP3SSLRetriever") {
        ssl = true;
    } else if (type == "MultidropPOP3Retriever" || type == "MultidropPOP3SSLRetriever") {
        // envelope_recipient = HEADER:N, N counted from 1 at the top: skip N - 1
        ssl = type.find("SSL") != std::string::npos;
        const auto colon = envelope.rfind(':');
        const std::string header =
            colon == std::string::npos ? "" : envelopeHeader(envelope.substr(0, colon));
        const std::string n = colon == std::string::npos ? "" : trim(envelope.substr(colon + 1));
        const int lineOrType = envelopeLine ? envelopeLine : typeLine;
        if (envelope.empty()) {
            e.skipped = "type = " + type + " without envelope_recipient: getmail itself refuses it";
        } else if (!isWholeNumber(n) || std::stoi(n) < 1 || std::stoi(n) > 17) {
            e.notes.push_back(note("getmail", file, envelopeLine,
                                   "envelope_recipient (not HEADER:N)", "envelope_recipient"));
            e.skipped = "envelope_recipient (line " + std::to_string(envelopeLine) +
                        ") is not HEADER:N: add this account with `popgatectl account add`";
        } else if (header.empty()) {
            e.notes.push_back(note("getmail", file, envelopeLine,
                                   "envelope_recipient (a header popgate does not read)",
                                   "envelope_recipient"));
            e.skipped = "envelope_recipient (line " + std::to_string(envelopeLine) +
                        ") names a header popgate does not read";
        } else {
            set(e, "recipients", "envelope", typeLine, "type = " + type);
            set(e, "envelope-header", header, lineOrType, "envelope_recipient");
            set(e, "envelope-header-skip", std::to_string(std::stoi(n) - 1), lineOrType,
                "envelope_recipient");
        }
        envelope.clear();
    } else if (type.find("IMAP") != std::string::npos || type.find("SDPS") != std::string::npos) {
        e.skipped = "retriever " + type + ": popgate fetches POP3 only";
    } else {
        e.skipped = "retriever type '" + type + "': unknown to the importer";
    }
    if (!envelope.empty())
        e.notes.push_back(note("getmail", file, envelopeLine,
                               "envelope_recipient (not a Multidrop retriever)",
                               "envelope_recipient"));
    if (type.compare(0, 10, "BrokenUIDL") == 0)
        e.notes.push_back(
            {file, typeLine, "type = " + type, why("getmail", "type = BrokenUIDLPOP3Retriever")});
    if (e.skipped.empty()) {
        set(e, "security", ssl ? "ssl-tls" : "none", typeLine, "type = " + type);
        if (!ssl)
            set(e, "plaintext-auth", "yes", typeLine, "type = " + type);
    }
    if (e.port == 0)
        e.port = ssl ? 995 : 110; // getmail's oldmail file names the port

    // the recipient: a sendmail-like MDA's last argument
    if (!destType.empty()) {
        std::vector<std::string> words{destPath};
        std::string a = destArgs;
        a.erase(std::remove_if(a.begin(), a.end(),
                               [](char c) { return c == '(' || c == ')' || c == ','; }),
                a.end());
        for (const auto& w : shellWords(a))
            words.push_back(w);
        const std::string rcpt = destType == "MDA_external" ? recipientOfCommand(words) : "";
        if (!rcpt.empty())
            set(e, "deliver-to", rcpt, destLine, "[destination] arguments");
        else
            e.notes.push_back({file, destLine, "[destination] type = " + destType,
                               why("getmail", "[destination]")});
    }
    if (e.skipped.empty() && (e.server.empty() || e.user.empty()))
        e.skipped = e.server.empty() ? "no server" : "no username";
    if (e.skipped.empty() && !e.password)
        e.skipped = "no password in the file (password_command, or getmail asks for it): add this "
                    "account with `popgatectl account add`";
    out.entries.push_back(std::move(e));
    return out;
}

// ---- mpop -------------------------------------------------------------------

namespace
{

// mpopWords - a line split into its command and arguments; "..." quoting with
// backslash escapes, as mpop reads it.
std::vector<std::string> mpopWords(const std::string& l, const std::string& file, int line)
{
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < l.size()) {
        while (i < l.size() && (l[i] == ' ' || l[i] == '\t'))
            ++i;
        if (i >= l.size())
            break;
        if (out.size() == 1) {
            // everything after the command is one argument (mpop's rule)
            std::string rest = trim(l.substr(i));
            if (rest.size() >= 2 && rest.front() == '"') {
                std::string s;
                bool closed = false;
                for (std::size_t j = 1; j < rest.size(); ++j) {
                    if (rest[j] == '\\' && j + 1 < rest.size()) {
                        s += rest[++j];
                        continue;
                    }
                    if (rest[j] == '"') {
                        closed = true;
                        break;
                    }
                    s += rest[j];
                }
                if (!closed)
                    throw InputError(file + ":" + std::to_string(line) +
                                     ": a quoted string is not closed");
                out.push_back(s);
            } else {
                out.push_back(rest);
            }
            return out;
        }
        std::size_t j = i;
        while (j < l.size() && l[j] != ' ' && l[j] != '\t')
            ++j;
        out.push_back(l.substr(i, j - i));
        i = j;
    }
    return out;
}

struct MpopAccount {
    ImportEntry e;
    std::map<std::string, std::pair<std::string, int>> values; ///< command -> (argument, line)
    std::vector<std::string> order;
};

bool onOff(const std::string& v)
{
    const std::string l = lower(trim(v));
    return l.empty() || l == "on";
}

void mapMpop(MpopAccount& a, const std::string& file)
{
    ImportEntry& e = a.e;
    bool tls = false, starttls = true;
    int tlsLine = e.line;
    for (const auto& cmd : a.order) {
        const auto& [v, line] = a.values.at(cmd);
        if (cmd == "host") {
            e.server = v;
            set(e, "server", v, line, cmd);
        } else if (cmd == "port") {
            if (isWholeNumber(v)) {
                e.port = std::stoi(v);
                set(e, "port", v, line, cmd);
            } else
                e.notes.push_back({file, line, cmd, "not understood: a port number"});
        } else if (cmd == "user") {
            e.user = v;
            set(e, "user", v, line, cmd);
        } else if (cmd == "password") {
            e.password = v;
        } else if (cmd == "tls") {
            tls = onOff(v);
            tlsLine = line;
        } else if (cmd == "tls_starttls") {
            starttls = onOff(v);
            tlsLine = line;
        } else if (cmd == "tls_trust_file") {
            if (v != "system" && !v.empty())
                set(e, "tls-ca-file", v, line, cmd);
        } else if (cmd == "tls_fingerprint") {
            const std::string pin = sha256Pin(v);
            if (!pin.empty())
                set(e, "tls-pin", pin, line, cmd);
            else if (!v.empty())
                e.notes.push_back(note("mpop", file, line, cmd));
        } else if (cmd == "tls_certcheck") {
            if (!onOff(v))
                e.notes.push_back(note("mpop", file, line, "tls_certcheck off"));
        } else if (cmd == "keep") {
            set(e, "keep-on-server", onOff(v) ? "yes" : "no", line, "keep " + v);
        } else if (cmd == "auth") {
            const std::string m = lower(v);
            if (m.empty() || m == "on")
                set(e, "auth-mechanism", "auto", line, "auth " + v);
            else if (m == "user" || m == "apop" || m == "plain" || m == "login")
                set(e, "auth-mechanism", m, line, "auth " + v);
            else if (m == "off")
                set(e, "auth", "none", line, "auth off");
            else
                e.notes.push_back(note("mpop", file, line, "auth", "auth " + v));
        } else if (cmd == "skipsize") {
            if (isWholeNumber(v))
                set(e, "max-message-size", v, line, cmd);
            else if (lower(v) != "off") {
                try {
                    set(e, "max-message-size", std::to_string(parseSize(v)), line, cmd);
                } catch (const InputError&) {
                    e.notes.push_back({file, line, cmd, "not understood: a size"});
                }
            }
        } else if (cmd == "uidls_file") {
            e.uidlFile = v;
        } else if (cmd == "delivery") {
            // delivery METHOD ARGUMENT, the argument quoted as a whole or not
            const std::string method = lower(v.substr(0, v.find_first_of(" \t")));
            std::string command = v.size() > method.size() ? trim(v.substr(method.size())) : "";
            if (command.size() >= 2 && command.front() == '"' && command.back() == '"')
                command = command.substr(1, command.size() - 2);
            std::string rcpt;
            if (method == "mda")
                rcpt = recipientOfCommand(shellWords(command));
            const std::vector<std::string> words{method};
            if (!rcpt.empty())
                set(e, "deliver-to", rcpt, line, "delivery mda");
            else
                e.notes.push_back({file, line, "delivery " + (words.empty() ? "" : words[0]),
                                   why("mpop", "delivery")});
        } else {
            e.notes.push_back(note("mpop", file, line, cmd));
        }
    }
    if (tls)
        set(e, "security", starttls ? "starttls" : "ssl-tls", tlsLine,
            starttls ? "tls_starttls on" : "tls_starttls off");
    else {
        set(e, "security", "none", tlsLine, "tls off");
        set(e, "plaintext-auth", "yes", tlsLine, "tls off");
    }
    if (e.port == 0)
        e.port = tls && !starttls ? 995 : 110;
    const bool noAuth = a.values.count("auth") && lower(a.values.at("auth").first) == "off";
    if (e.skipped.empty() && (e.server.empty() || (e.user.empty() && !noAuth)))
        e.skipped = e.server.empty() ? "no host" : "no user";
    if (e.skipped.empty() && !e.password && a.values.count("auth") &&
        lower(a.values.at("auth").first) == "off")
        return;
    if (e.skipped.empty() && !e.password)
        e.skipped = std::string("no password in the file") +
                    (a.values.count("passwordeval") ? " (passwordeval)" : "") +
                    ": add this account with `popgatectl account add`";
}

} // namespace

ImportParse parseMpopRc(const std::string& text, const std::string& file)
{
    const auto ls = lines(text, file, kImportMaxRcBytes);
    ImportParse out;
    MpopAccount defaults, discard;
    std::map<std::string, MpopAccount> byName;
    std::vector<std::string> names;
    MpopAccount* cur = &defaults;
    auto put = [](MpopAccount& a, const std::string& cmd, const std::string& v, int line) {
        if (!a.values.count(cmd))
            a.order.push_back(cmd);
        a.values[cmd] = {v, line};
    };
    for (std::size_t n = 0; n < ls.size(); ++n) {
        const int line = static_cast<int>(n + 1);
        const std::string l = trim(ls[n]);
        if (l.empty() || l[0] == '#')
            continue;
        auto words = mpopWords(l, file, line);
        const std::string cmd = lower(words[0]);
        const std::string arg = words.size() > 1 ? words[1] : "";
        if (cmd == "defaults") {
            cur = &defaults;
            continue;
        }
        if (cmd == "account") {
            // account NAME [: PARENT[,PARENT...]]
            std::string name = arg, parents;
            const auto colon = arg.find(':');
            if (colon != std::string::npos) {
                name = trim(arg.substr(0, colon));
                parents = arg.substr(colon + 1);
            }
            if (name.empty() || byName.count(name)) {
                out.notes.push_back({file, line, "account " + name,
                                     name.empty()
                                         ? "not understood: no name"
                                         : "not understood: the account is defined twice"});
                discard = MpopAccount(); // what follows belongs to no account we keep
                cur = &discard;
                continue;
            }
            MpopAccount a = defaults;
            for (const auto& p : splitList(parents)) {
                auto it = byName.find(p);
                if (it == byName.end()) {
                    out.notes.push_back({file, line, "account " + name + " : " + p,
                                         "not understood: no account of that name before it"});
                    continue;
                }
                for (const auto& c : it->second.order)
                    put(a, c, it->second.values.at(c).first, it->second.values.at(c).second);
            }
            a.e.file = file;
            a.e.line = line;
            a.e.label = "account " + name;
            byName[name] = std::move(a);
            names.push_back(name);
            cur = &byName[name];
            continue;
        }
        put(*cur, cmd, arg, line);
    }
    for (const auto& name : names) {
        MpopAccount& a = byName[name];
        mapMpop(a, file);
        out.entries.push_back(std::move(a.e));
    }
    return out;
}

// ---- UIDL records -------------------------------------------------------------

std::vector<UidlList> parseFetchmailIds(const std::string& text, std::size_t* skipped)
{
    const auto ls = lines(text, ".fetchids", kImportMaxUidlBytes);
    std::vector<UidlList> out;
    std::map<std::pair<std::string, std::string>, std::size_t> index;
    std::size_t bad = 0;
    for (const auto& l : ls) {
        if (l.empty())
            continue;
        // "user@host uidl": a UIDL has no blank (RFC 1939), a user may have one
        const auto space = l.rfind(' ');
        const auto at = space == std::string::npos ? std::string::npos : l.rfind('@', space);
        if (space == std::string::npos || at == std::string::npos || at == 0 ||
            space + 1 >= l.size() || at + 1 >= space) {
            ++bad;
            continue;
        }
        const std::string user = l.substr(0, at), host = l.substr(at + 1, space - at - 1);
        const auto key = std::make_pair(user, lower(host));
        auto it = index.find(key);
        if (it == index.end()) {
            it = index.emplace(key, out.size()).first;
            out.push_back({user, host, {}});
        }
        out[it->second].uidls.push_back(l.substr(space + 1));
    }
    if (skipped)
        *skipped = bad;
    return out;
}

std::vector<std::string> parseGetmailOldmail(const std::string& text, std::size_t* skipped)
{
    const auto ls = lines(text, "oldmail", kImportMaxUidlBytes);
    std::vector<std::string> out;
    std::size_t bad = 0;
    for (const auto& raw : ls) {
        const std::string l = trim(raw);
        if (l.empty())
            continue;
        const auto nul = l.find('\0');
        if (nul == std::string::npos || nul == 0) {
            ++bad;
            continue;
        }
        out.push_back(l.substr(0, nul));
    }
    if (skipped)
        *skipped = bad;
    return out;
}

std::vector<UidlList> parseMpopUidls(const std::string& text, std::size_t* skipped)
{
    const auto ls = lines(text, "uidls", kImportMaxUidlBytes);
    std::vector<UidlList> out;
    std::size_t bad = 0;
    std::size_t remaining = 0;
    for (const auto& l : ls) {
        if (remaining > 0) {
            if (l.empty() || l[0] == ' ') {
                ++bad; // the list ended before its count
                remaining = 0;
            } else {
                out.back().uidls.push_back(l);
                --remaining;
                continue;
            }
        }
        if (l.empty() || l[0] == '#')
            continue;
        if (l[0] != ' ') {
            ++bad;
            continue;
        }
        // " N host user": the user may hold blanks, the host does not
        const std::string rest = l.substr(1);
        const auto s1 = rest.find(' ');
        const auto s2 = s1 == std::string::npos ? std::string::npos : rest.find(' ', s1 + 1);
        if (s2 == std::string::npos || !isWholeNumber(rest.substr(0, s1))) {
            ++bad;
            continue;
        }
        out.push_back({rest.substr(s2 + 1), rest.substr(s1 + 1, s2 - s1 - 1), {}});
        remaining = std::stoul(rest.substr(0, s1));
    }
    if (skipped)
        *skipped = bad;
    return out;
}

std::string getmailOldmailName(const std::string& server, int port, const std::string& user)
{
    // getmail6: re.sub(r'[/\:;<>|]+', '-', 'oldmail-%(server)s-%(port)i-%(username)s')
    const std::string raw = "oldmail-" + server + "-" + std::to_string(port) + "-" + user;
    std::string out;
    bool run = false;
    for (char c : raw) {
        if (std::strchr("/\\:;<>|", c) && c != '\0') {
            if (!run)
                out += '-';
            run = true;
        } else {
            out += c;
            run = false;
        }
    }
    return out;
}

std::string importAccountName(const std::string& user, const std::string& server)
{
    std::string out;
    for (char c : user + "_at_" + server)
        out += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'
                   ? c
                   : '_';
    if (out.size() > 64)
        out.resize(64);
    return out;
}

} // namespace popgate
