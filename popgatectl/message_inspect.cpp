// message_inspect.cpp - looking at one message and clearing the quarantine by
// hand: `message show ID [--body]` (postcat for popgate: envelope, headers, the
// filter's verdict with every step as core/screen judges it, the ledger state and
// the message's log lines), `message delete ID` and `message purge
// --older-than=AGE` (what quarantine_retention does, now). Everything that came
// with the mail is escaped for the terminal (escapeText), exact in --json.
// Removal order, as retention's: the quarantined file goes first, then the
// ledger row forgets it, both inside one transaction; a row is never deleted
// (it is the ledger that keeps a message from being fetched twice).
#include "core/errors.h"
#include "core/filter_store.h"
#include "core/message.h"
#include "core/message_store.h"
#include "core/screen.h"
#include "core/text.h"
#include "popgatectl/cli.h"

#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Util/Option.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace popgate::cli
{

namespace
{

using Poco::Util::Option;
using Poco::Util::OptionSet;

// The header section shown is cut here: a hostile message cannot make `show` print without end.
constexpr std::size_t kMaxHeaderBytes = 1024 * 1024;
// An age under this is refused by purge: popgated writes a quarantined file just
// before the commit that records it, and such a file must not look orphaned.
constexpr std::int64_t kMinPurgeAge = 60;

const char* const kDeletedReason = "quarantined copy deleted by popgatectl";

std::string terminal(const std::string& text)
{
    return escapeText(text, EscapeFor::Terminal);
}

// Copy - what the quarantined file holds, read once.
struct Copy {
    enum class Kind { None, Gone, Kept } kind = Kind::None;
    std::int64_t bytes = 0;
    std::vector<std::string> headers; ///< lines, without line ends
    bool headersCut = false;
    MessageFacts facts;
};

// readCopy - the quarantined file's header lines and the facts MessageRewriter
// (the fetcher's own parser) finds in them. Reads at most kMaxHeaderBytes: a
// hostile header section (one endless line) costs no more memory than that.
Copy readCopy(const MessageRecord& m)
{
    Copy c;
    if (m.quarantinePath.empty())
        return c;
    struct stat st {
    };
    if (::stat(m.quarantinePath.c_str(), &st) != 0) {
        c.kind = Copy::Kind::Gone;
        return c;
    }
    c.kind = Copy::Kind::Kept;
    c.bytes = st.st_size;
    std::ifstream in(m.quarantinePath, std::ios::binary);
    if (!in)
        throw OperationError("message " + std::to_string(m.id) + ": quarantined copy " +
                             m.quarantinePath + " cannot be read: " + std::strerror(errno));
    std::string head(kMaxHeaderBytes, '\0');
    in.read(&head[0], static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<std::size_t>(in.gcount()));
    std::ostringstream sink; // the parser's output, at most head's size
    MessageRewriter parser(sink, "");
    std::ostream feed(&parser);
    std::size_t at = 0;
    for (;;) {
        const std::size_t end = head.find('\n', at);
        if (end == std::string::npos) { // no line end within the bound (or the file ended)
            c.headersCut = at < head.size() && head.size() == kMaxHeaderBytes;
            if (!c.headersCut && at < head.size())
                c.headers.push_back(head.substr(at)); // a last line without its end
            break;
        }
        std::string line = head.substr(at, end - at);
        feed.write(head.data() + at, static_cast<std::streamsize>(end - at + 1));
        at = end + 1;
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.empty())
            break; // the end of the header section
        c.headers.push_back(std::move(line));
    }
    c.facts = parser.finish();
    return c;
}

// Judgement - the account's filter as it stands, asked the way popgated asks it.
struct Judgement {
    std::string filter; ///< "" when no system filter applies
    std::string source; ///< why this filter
    std::string problem;
    ScreenVerdict screen;
    Verdict verdict;
};

Judgement judge(Context& ctx, const Account* account, const MessageRecord& m, const Copy& copy)
{
    Judgement j;
    if (!account) {
        j.problem = "the account no longer exists";
        return j;
    }
    FilterStore filters(ctx.store());
    FilterResolution r;
    try {
        r = filters.resolveForAccount(*account);
    } catch (const OperationError& e) {
        j.problem = e.what();
        return j;
    }
    if (!r.filter) {
        j.source = "no system filter applies (the account names none, no active inbound default)";
        return j;
    }
    j.filter = r.filter->name;
    j.source = r.source == FilterSource::Account ? "the account's filter" : "the inbound default";
    if (!r.warning.empty())
        j.source += "; " + r.warning;
    FilterOptions options;
    options.allowNullSender = ctx.config.flag("allow_null_sender");
    const CompiledFilter compiled(*r.filter, options, filters.limits());
    MessageFacts facts = copy.facts;
    if (copy.kind != Copy::Kind::Kept && !m.headerFrom.empty())
        facts.from = m.headerFrom; // only the ledger's first From is left to judge
    j.screen = judgeSenders(compiled, m.envelopeFrom, &facts, &j.verdict);
    return j;
}

std::optional<Account> accountOf(Context& ctx, const MessageRecord& m)
{
    for (auto& a : ctx.store().accounts())
        if (a.id == m.accountId)
            return std::move(a);
    return std::nullopt;
}

// printBody - the body of the quarantined copy, each line escaped for the terminal.
void printBody(std::ostream& out, const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    bool body = false;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (body)
            out << "  " << terminal(line) << "\n";
        else if (line.empty())
            body = true;
    }
}

std::string readBody(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const char* sep : {"\r\n\r\n", "\n\n"}) {
        const auto at = all.find(sep);
        if (at != std::string::npos)
            return all.substr(at + std::strlen(sep));
    }
    return {};
}

Poco::JSON::Object::Ptr logJson(const LogEntry& e)
{
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("at", isoTime(e.at));
    o->set("status", e.status);
    o->set("relay", e.relay);
    o->set("queue_id", e.queueId);
    o->set("detail", e.detail);
    return o;
}

// removeCopy - the quarantined file first, then the row forgets it, in one transaction:
// a failed removal changes nothing; a failed commit leaves the row naming a file that
// is gone (what retention leaves, and what `message release` reports). Returns false
// when the row changed meanwhile (released, or deleted by another popgatectl).
bool removeCopy(Context& ctx, MessageStore& ms, const MessageRecord& m, const std::string& account,
                const std::string& why)
{
    Transaction tx(ctx.store().session());
    if (!ms.dropQuarantinePath(m.id, m.quarantinePath, kDeletedReason))
        return false;
    if (::unlink(m.quarantinePath.c_str()) != 0 && errno != ENOENT)
        throw OperationError("message " + std::to_string(m.id) + ": quarantined copy " +
                             m.quarantinePath + " cannot be removed: " + std::strerror(errno) +
                             " (nothing changed)");
    LogEntry e;
    e.account = account;
    e.uidl = m.uidl;
    e.messageId = m.messageId;
    e.sender = m.envelopeFrom;
    e.size = m.size;
    e.status = "purged";
    e.detail = why;
    ms.log(e);
    try {
        tx.commit();
    } catch (const std::exception& ex) {
        throw OperationError("message " + std::to_string(m.id) + ": quarantined copy " +
                             m.quarantinePath +
                             " removed, but the ledger still names it: " + ex.what());
    }
    return true;
}

} // namespace

int messageShow(Context& ctx, const std::vector<std::string>& rest)
{
    OptionSet opts;
    opts.addOption(Option("body", "", "also the body of the quarantined copy"));
    opts.addOption(Option("json", "", "JSON output"));
    const ParsedArgs args = parseArgs(rest, opts);
    requirePositional(args, 1, "message show ID [--body] [--json]");
    MessageStore ms(ctx.store());
    const MessageRecord m = requireMessageRecord(ms, args.positional[0]);
    const std::optional<Account> account = accountOf(ctx, m);
    const Copy copy = readCopy(m);
    const Judgement j = judge(ctx, account ? &*account : nullptr, m, copy);
    const std::vector<LogEntry> log =
        account ? ms.logOf(account->name, m.uidl) : std::vector<LogEntry>{};
    // A domain mailbox's message: its recipients as the ledger has them.
    const std::vector<RecipientRecord> perRecipient =
        account && account->recipientSource == RecipientSource::Envelope
            ? ms.recipientsOf(account->id, m.uidl)
            : std::vector<RecipientRecord>{};
    std::vector<std::string> rcpts = account && account->recipientSource == RecipientSource::Fixed
                                         ? account->recipients()
                                         : std::vector<std::string>{};
    for (const auto& r : perRecipient)
        rcpts.push_back(r.recipient);
    const std::int64_t age = nowSeconds() - m.createdAt;
    const bool body = args.has("body");
    const char* copyState = copy.kind == Copy::Kind::Kept   ? "kept"
                            : copy.kind == Copy::Kind::Gone ? "gone"
                                                            : "none";

    if (ctx.json || args.has("json")) {
        Poco::JSON::Object o(true);
        o.set("id", m.id);
        o.set("account", account ? account->name : std::string());
        o.set("uidl", m.uidl);
        o.set("state", messageStateName(m.state));
        o.set("deleted_from_server", m.deleted);
        o.set("reason", m.reason);
        o.set("created", isoTime(m.createdAt));
        o.set("updated", isoTime(m.updatedAt));
        o.set("age_seconds", age);
        o.set("attempts", m.attempts);
        o.set("retry_at", isoTime(m.retryAt));
        o.set("queue_id", m.queueId);
        o.set("envelope_from", m.envelopeFrom);
        Poco::JSON::Array::Ptr to = new Poco::JSON::Array;
        for (const auto& r : rcpts)
            to->add(r);
        o.set("envelope_to", to);
        Poco::JSON::Array::Ptr each = new Poco::JSON::Array;
        for (const auto& r : perRecipient) {
            Poco::JSON::Object::Ptr x = new Poco::JSON::Object(true);
            x->set("recipient", r.recipient);
            x->set("state", recipientStateName(r.state));
            x->set("queue_id", r.queueId);
            x->set("reason", r.reason);
            each->add(x);
        }
        o.set("recipients", each);
        o.set("message_id", m.messageId);
        o.set("header_from", m.headerFrom);
        o.set("size", m.size);
        Poco::JSON::Object::Ptr q = new Poco::JSON::Object(true);
        q->set("copy", copyState);
        q->set("path", m.quarantinePath);
        q->set("bytes", copy.bytes);
        o.set("quarantine", q);
        Poco::JSON::Array::Ptr headers = new Poco::JSON::Array;
        for (const auto& h : copy.headers)
            headers->add(h);
        o.set("headers", headers);
        o.set("headers_cut", copy.headersCut);
        Poco::JSON::Object::Ptr f = new Poco::JSON::Object(true);
        f->set("system_filter", j.filter);
        f->set("source", j.source);
        f->set("problem", j.problem);
        f->set("verdict", j.filter.empty()      ? (j.problem.empty() ? "allowed" : "unknown")
                          : j.screen.admitted() ? "allowed"
                                                : "blocked");
        f->set("reason", j.screen.admitted() ? j.verdict.reason : j.screen.detail);
        Poco::JSON::Array::Ptr steps = new Poco::JSON::Array;
        for (const FilterStep& s : j.verdict.steps)
            steps->add(s.text());
        f->set("steps", steps);
        o.set("filter_now", f);
        Poco::JSON::Array::Ptr lines = new Poco::JSON::Array;
        for (const auto& e : log)
            lines->add(logJson(e));
        o.set("log", lines);
        if (body)
            o.set("body", copy.kind == Copy::Kind::Kept ? readBody(m.quarantinePath) : "");
        printJson(*ctx.out, o);
        *ctx.out << "\n";
        return 0;
    }

    auto& out = *ctx.out;
    auto row = [&](const std::string& k, const std::string& v) {
        out << std::left << std::setw(16) << (k + ":") << v << "\n";
    };
    row("message", std::to_string(m.id));
    row("account", account ? account->name : "(gone: id " + std::to_string(m.accountId) + ")");
    row("uidl", terminal(m.uidl));
    row("state", messageStateName(m.state) +
                     (m.deleted ? " (deleted from the server)" : " (still on the server)"));
    if (!m.reason.empty())
        row("reason", terminal(m.reason));
    row("fetched", isoTime(m.createdAt) + " (" + ageText(age) + " ago)");
    row("updated", isoTime(m.updatedAt));
    if (m.attempts)
        row("attempts", std::to_string(m.attempts));
    if (m.retryAt)
        row("retry at", isoTime(m.retryAt));
    if (!m.queueId.empty())
        row("MTA queue id", terminal(m.queueId));
    row("envelope from", "<" + terminal(m.envelopeFrom) + ">");
    std::string to;
    for (const auto& r : rcpts)
        to += (to.empty() ? "<" : ", <") + terminal(r) + ">";
    row("envelope to", to.empty() ? "-" : to);
    for (const auto& r : perRecipient)
        row("  " + terminal(r.recipient),
            recipientStateName(r.state) +
                (r.queueId.empty() ? std::string() : " queue id " + terminal(r.queueId)) +
                (r.reason.empty() || r.state == RecipientState::Delivered
                     ? std::string()
                     : " (" + terminal(r.reason) + ")"));
    row("message-id", m.messageId.empty() ? "-" : terminal(m.messageId));
    row("from", m.headerFrom.empty() ? "-" : terminal(m.headerFrom));
    row("size", std::to_string(m.size));
    switch (copy.kind) {
    case Copy::Kind::None:
        row("quarantine", "no copy kept");
        break;
    case Copy::Kind::Gone:
        row("quarantine", m.quarantinePath + " (not here: another gateway host's spool_dir, or removed by quarantine_retention)");
        break;
    case Copy::Kind::Kept:
        row("quarantine", m.quarantinePath + " (" + std::to_string(copy.bytes) + " bytes)");
        break;
    }
    if (!j.problem.empty()) {
        row("filter now", "cannot judge: " + terminal(j.problem));
    } else if (j.filter.empty()) {
        row("filter now", "allowed: " + j.source);
    } else {
        row("filter now", "system filter \"" + j.filter + "\" (" + j.source + ")");
        out << "  "
            << (j.screen.admitted() ? "allowed: " + terminal(j.verdict.reason)
                                    : "blocked: " + terminal(j.screen.detail))
            << "\n";
        for (const FilterStep& s : j.verdict.steps)
            out << "  " << terminal(s.text()) << "\n";
        if (copy.kind != Copy::Kind::Kept)
            out << "  (judged by the ledger's sender and first From; no copy to read)\n";
    }
    if (copy.kind == Copy::Kind::Kept) {
        out << "headers:\n";
        for (const auto& h : copy.headers)
            out << "  " << terminal(h) << "\n";
        if (copy.headersCut)
            out << "  [header section cut: not ended within " << kMaxHeaderBytes << " bytes]\n";
    }
    out << "log:\n";
    for (const auto& e : log) {
        out << "  " << isoTime(e.at) << " " << e.status;
        if (!e.queueId.empty())
            out << " queue-id=" << escapeText(e.queueId, EscapeFor::LogField);
        if (!e.detail.empty())
            out << " (" << escapeText(e.detail, EscapeFor::LogText) << ")";
        out << "\n";
    }
    if (log.empty())
        out << "  (no lines)\n";
    if (body) {
        if (copy.kind == Copy::Kind::Kept) {
            out << "body:\n";
            printBody(out, m.quarantinePath);
        } else {
            out << "body: (no quarantined copy to show)\n";
        }
    }
    return 0;
}

int messageDelete(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, OptionSet());
    requirePositional(args, 1, "message delete ID");
    MessageStore ms(ctx.store());
    const MessageRecord m = requireMessageRecord(ms, args.positional[0]);
    const std::string who = "message " + std::to_string(m.id);
    if (m.state != MessageState::Ignored)
        throw InputError(who + ": state " + messageStateName(m.state) +
                         " (only quarantined messages, state ignored, are deleted)");
    if (m.quarantinePath.empty())
        throw InputError(who + ": no quarantined copy is kept (" + terminal(m.reason) + ")");
    // Not here: another gateway host's quarantine (each host has its own spool_dir),
    // or already removed by quarantine_retention. The row is left as it is.
    if (::access(m.quarantinePath.c_str(), F_OK) != 0)
        throw OperationError(who + ": the quarantined copy " + terminal(m.quarantinePath) +
                             " is not on this host (another gateway host's spool_dir, or "
                             "removed by quarantine_retention); nothing changed");
    const auto account = accountOf(ctx, m);
    if (!removeCopy(ctx, ms, m, account ? account->name : "",
                    "deleted from quarantine (message delete)"))
        throw OperationError(who + ": changed meanwhile (released or deleted); nothing removed");
    *ctx.out << who << ": quarantined copy deleted (" << m.quarantinePath << ")\n";
    return 0;
}

int messagePurge(Context& ctx, const std::vector<std::string>& rest)
{
    OptionSet opts;
    opts.addOption(Option("older-than", "", "quarantined longer than this (1m, 2h, 30d)")
                       .required(true)
                       .argument("AGE"));
    opts.addOption(Option("account", "", "only this account").argument("NAME"));
    opts.addOption(Option("json", "", "JSON output"));
    const ParsedArgs args = parseArgs(rest, opts);
    requirePositional(args, 0, "message purge --older-than=AGE [--account=NAME] [--json]");
    const std::int64_t age = parseDuration(args.options.at("older-than"));
    if (age < kMinPurgeAge)
        throw InputError("--older-than: at least 1m (popgated may be recording a younger copy "
                         "right now), got '" +
                         flatten(args.options.at("older-than")) + "'");
    std::int64_t onlyAccount = 0;
    std::string accountName;
    if (args.has("account")) {
        accountName = args.options.at("account");
        const auto a = ctx.store().account(accountName);
        if (!a)
            throw InputError("account '" + flatten(accountName).substr(0, 80) +
                             "': no such account");
        onlyAccount = a->id;
    }
    const std::int64_t cutoff = nowSeconds() - age;
    std::map<std::int64_t, std::string> names; // account id -> name, for the log lines
    for (const auto& a : ctx.store().accounts())
        names[a.id] = a.name;
    MessageStore ms(ctx.store());
    std::vector<std::int64_t> purged;
    // Files rows name, by device and inode: a path spelled another way (a "//", a
    // symlinked spool_dir) is still the same file.
    std::set<std::pair<dev_t, ino_t>> referenced;
    for (const MessageRecord& m : ms.quarantined()) {
        struct stat named {
        };
        if (::stat(m.quarantinePath.c_str(), &named) == 0)
            referenced.insert({named.st_dev, named.st_ino}); // also a copy being released now
        if (m.state != MessageState::Ignored || (onlyAccount && m.accountId != onlyAccount))
            continue;
        struct stat st {
        };
        // Retention's test: the file's own time. A row whose file is not here is left
        // alone: it may be another gateway host's quarantine (each host has its own
        // spool_dir), and that host's purge decides.
        if (::stat(m.quarantinePath.c_str(), &st) != 0 || st.st_mtime >= cutoff)
            continue;
        if (removeCopy(ctx, ms, m, names[m.accountId],
                       "purged from quarantine (message purge --older-than=" +
                           flatten(args.options.at("older-than")) + ")"))
            purged.push_back(m.id);
    }
    // Files no row names (left by a crash between write and commit): retention removes
    // them by age, and so does purge.
    std::vector<std::string> orphans;
    const std::string dir = ctx.config.str("spool_dir") + "/quarantine";
    if (Poco::File(dir).exists()) {
        for (Poco::DirectoryIterator acc(dir), end; acc != end; ++acc) {
            if (!acc->isDirectory() || (onlyAccount && acc.name() != accountName))
                continue;
            for (Poco::DirectoryIterator f(acc->path()); f != end; ++f) {
                struct stat st {
                };
                if (::lstat(f->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
                    st.st_mtime >= cutoff || referenced.count({st.st_dev, st.st_ino}))
                    continue;
                if (::unlink(f->path().c_str()) == 0)
                    orphans.push_back(f->path());
                else
                    *ctx.err << "popgatectl: warning: " << f->path()
                             << ": cannot remove it: " << std::strerror(errno) << "\n";
            }
        }
    }
    if (ctx.json || args.has("json")) {
        Poco::JSON::Object o(true);
        Poco::JSON::Array::Ptr ids = new Poco::JSON::Array;
        for (auto id : purged)
            ids->add(id);
        o.set("purged", ids);
        Poco::JSON::Array::Ptr files = new Poco::JSON::Array;
        for (const auto& f : orphans)
            files->add(f);
        o.set("files_without_row", files);
        printJson(*ctx.out, o);
        *ctx.out << "\n";
        return 0;
    }
    for (auto id : purged)
        *ctx.out << "message " << id << ": quarantined copy deleted\n";
    for (const auto& f : orphans)
        *ctx.out << f << ": deleted (no ledger row names it)\n";
    *ctx.out << "purged " << purged.size() << " quarantined message(s) older than "
             << flatten(args.options.at("older-than")) << "\n";
    return 0;
}

} // namespace popgate::cli
