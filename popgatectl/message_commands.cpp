// message_commands.cpp - what an operator does with fetched mail and its
// traces: `message list|release|retry` and `log` (the message log, and
// --follow); `message show|delete|purge` are in message_inspect.cpp, `status`
// in status_commands.cpp.
#include "core/errors.h"
#include "core/message_store.h"
#include "core/milter_seen.h"
#include "core/provisioning.h"
#include "core/text.h"
#include "plugin/net/reinject.h"
#include "popgatectl/cli.h"

#include <Poco/DateTimeParser.h>
#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/NumberParser.h>
#include <Poco/String.h>
#include <Poco/Util/Option.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <map>
#include <optional>
#include <signal.h>
#include <unistd.h>

namespace popgate::cli
{

namespace
{

using Poco::Util::Option;
using Poco::Util::OptionSet;

// headerValue - the first `name:` field of the message in file, trimmed; ""
// when absent or unreadable (it only helps the operator look).
std::string headerValue(const std::string& file, const std::string& name)
{
    std::ifstream in(file, std::ios::binary);
    const std::string prefix = Poco::toLower(name) + ":";
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.empty())
            break; // end of the header section
        if (Poco::toLower(line.substr(0, prefix.size())) == prefix)
            return flatten(Poco::trim(line.substr(prefix.size())));
    }
    return {};
}

// howToCheck - what an operator looks at when a release's outcome is unknown,
// and how to send the message again.
std::string howToCheck(const MessageRecord& m, const std::string& account)
{
    const std::string id = headerValue(m.quarantinePath, "X-Popgate-Id");
    return "Look in the MTA's log for " +
           (m.messageId.empty() ? std::string("the message")
                                : "message-id=" + flatten(m.messageId)) +
           " and in popgate-milter's for account=" + account + " uidl=" + flatten(m.uidl) +
           ", or in the recipients' mailboxes for " +
           (id.empty() ? std::string("its X-Popgate-Id header") : "X-Popgate-Id: " + id) +
           "; if it did not arrive, run `popgatectl message release " + std::to_string(m.id) +
           " --force` (popgate-milter, where in place, drops a second copy)";
}

std::int64_t accountId(Context& ctx, const std::string& name)
{
    auto a = ctx.store().account(name);
    if (!a)
        throw InputError("account '" + flatten(name).substr(0, 80) + "': no such account");
    return a->id;
}

// cell - a table cell of at most `width` columns: the text escaped for the
// terminal and cut so that no \xHH escape is cut in two.
std::string cell(const std::string& text, std::size_t width)
{
    std::string shown;
    for (std::size_t n = 1; n <= text.size(); ++n) {
        std::string next = escapeText(text.substr(0, n), EscapeFor::Terminal);
        if (next.size() > width)
            break;
        shown = std::move(next);
    }
    return shown;
}

// list - the ledger, oldest first by the time each message was first recorded;
// --limit keeps the newest N (the end of the list, as `log` does).
int list(Context& ctx, const std::vector<std::string>& rest)
{
    OptionSet opts;
    opts.addOption(Option("account", "", "only this account").argument("NAME"));
    opts.addOption(Option("state", "", "only this state").argument("STATE"));
    opts.addOption(Option("since", "", "fetched after: 2h, 1d, or a date").argument("WHEN"));
    opts.addOption(Option("limit", "", "only the newest N").argument("N"));
    opts.addOption(Option("json", "", "JSON output"));
    const ParsedArgs args = parseArgs(rest, opts);
    requirePositional(args, 0,
                      "message list [--account=NAME] [--state=STATE] [--since=WHEN] [--limit=N] "
                      "[--json]");
    MessageQuery q;
    if (args.has("state"))
        q.state = messageStateName(parseMessageState(args.options.at("state")));
    if (args.has("account"))
        q.accountId = accountId(ctx, args.options.at("account"));
    if (args.has("since"))
        q.since = parseSince(args.options.at("since"));
    if (args.has("limit"))
        q.limit = parseInteger(args.options.at("limit"), 1, 1000000000);
    MessageStore ms(ctx.store());
    const auto rows = ms.list(q);
    const std::int64_t now = nowSeconds();
    // Domain mailboxes' messages: their recipients (message_recipients), one
    // query per account; a fixed account's rows have none.
    std::map<std::int64_t, std::vector<std::string>> uidlsOf;
    for (const auto& [m, account] : rows)
        uidlsOf[m.accountId].push_back(m.uidl);
    std::map<std::pair<std::int64_t, std::string>, std::vector<RecipientRecord>> rcptsOf;
    for (const auto& [id, uidls] : uidlsOf)
        for (auto& [uidl, rs] : ms.recipientsOfMany(id, uidls))
            rcptsOf[{id, uidl}] = std::move(rs);
    auto recipientsOf = [&](const MessageRecord& m) -> const std::vector<RecipientRecord>& {
        static const std::vector<RecipientRecord> none;
        const auto it = rcptsOf.find({m.accountId, m.uidl});
        return it == rcptsOf.end() ? none : it->second;
    };
    auto& out = *ctx.out;
    if (ctx.json || args.has("json")) {
        Poco::JSON::Array arr;
        for (const auto& [m, account] : rows) {
            Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
            o->set("id", m.id);
            o->set("account", account);
            o->set("uidl", m.uidl);
            o->set("state", messageStateName(m.state));
            o->set("deleted_from_server", m.deleted);
            o->set("message_id", m.messageId);
            o->set("envelope_from", m.envelopeFrom);
            o->set("size", m.size);
            o->set("queue_id", m.queueId);
            o->set("reason", m.reason);
            o->set("attempts", m.attempts);
            o->set("quarantine_path", m.quarantinePath);
            o->set("created", isoTime(m.createdAt));
            o->set("age_seconds", now - m.createdAt);
            o->set("updated", isoTime(m.updatedAt));
            Poco::JSON::Array::Ptr each = new Poco::JSON::Array;
            for (const auto& r : recipientsOf(m)) {
                Poco::JSON::Object::Ptr x = new Poco::JSON::Object(true);
                x->set("recipient", r.recipient);
                x->set("state", recipientStateName(r.state));
                each->add(x);
            }
            o->set("recipients", each);
            arr.add(o);
        }
        printJson(out, arr);
        out << "\n";
        return 0;
    }
    out << std::left << std::setw(7) << "ID" << std::setw(6) << "AGE" << std::setw(16) << "ACCOUNT"
        << std::setw(10) << "STATE" << std::setw(34) << "MESSAGE-ID"
        << "REASON\n";
    for (const auto& [m, account] : rows) {
        std::string to; // a domain mailbox's message: "to a (delivered), b (failed); "
        for (const auto& r : recipientsOf(m))
            to += (to.empty() ? "to " : ", ") + r.recipient + " (" + recipientStateName(r.state) +
                  ")";
        out << std::left << std::setw(7) << m.id << std::setw(6) << ageText(now - m.createdAt)
            << std::setw(16) << account << std::setw(10) << messageStateName(m.state)
            << std::setw(34) << (m.messageId.empty() ? "-" : cell(m.messageId, 33))
            << escapeText(to.empty() ? m.reason : to + "; " + m.reason, EscapeFor::Terminal)
            << "\n";
    }
    return 0;
}

// release - hand a quarantined (ignored) message to the MTA after all, with
// the ledger states popgated uses: the row says "injecting" (committed) before
// the MTA sees the message, "injected" with the queue id after its 250, and
// "ignored" again after a refusal. No reply after the final dot leaves it
// "injecting": the outcome is unknown, and a second release refuses until the
// operator has looked (--force sends again). The quarantined copy carries the
// X-Popgate-Id it was fetched with, so popgate-milter drops a second copy.
int release(Context& ctx, const std::vector<std::string>& rest)
{
    OptionSet opts;
    opts.addOption(
        Option("force", "", "send again a message whose earlier release has an unknown outcome"));
    const ParsedArgs args = parseArgs(rest, opts);
    requirePositional(args, 1, "message release ID [--force]");
    const bool force = args.has("force");
    MessageStore ms(ctx.store());
    const std::string subject = "message " + flatten(args.positional[0]).substr(0, 40);
    MessageRecord m = requireMessageRecord(ms, args.positional[0]);
    std::optional<Account> account;
    for (auto& a : ctx.store().accounts())
        if (a.id == m.accountId)
            account = std::move(a);
    if (!account)
        throw OperationError(subject + ": its account (id " + std::to_string(m.accountId) +
                             ") no longer exists");
    const std::string who =
        subject + " (account '" + account->name + "', uidl " + flatten(m.uidl).substr(0, 80) + ")";
    // releaseTo - a domain mailbox's message goes to the recipients it was kept
    // from (rows still pending: a filter kept it out), else to the fallback
    // recipient; never to the account's own mailbox address.
    std::vector<std::string> releaseTo = account->recipients();
    if (account->recipientSource == RecipientSource::Envelope) {
        releaseTo.clear();
        for (const auto& r : ms.recipientsOf(account->id, m.uidl))
            if (r.state == RecipientState::Pending)
                releaseTo.push_back(r.recipient);
        if (releaseTo.empty() && !account->fallbackRecipient.empty())
            releaseTo.push_back(account->fallbackRecipient);
        if (releaseTo.empty())
            throw InputError(who + ": the account reads its recipients from the envelope and "
                                   "this message names none it may deliver to; set the account's "
                                   "fallback-recipient to release such mail");
    }

    // Claim the row: re-read and write it in one transaction, so that two
    // releases at once do not both go ahead (SQLite refuses the second writer).
    bool again = false; // an earlier release left it "injecting" (--force)
    std::ifstream in;
    {
        Transaction tx(ctx.store().session());
        m = requireMessageRecord(ms, args.positional[0]);
        switch (m.state) {
        case MessageState::Injected:
            throw InputError(who + ": already delivered (" +
                             (m.queueId.empty() ? std::string("no queue id recorded")
                                                : "MTA queue id " + m.queueId) +
                             "); not sent again");
        case MessageState::Injecting:
            if (m.quarantinePath.empty())
                throw InputError(who + ": being handed to the MTA by popgated, not in quarantine");
            if (!force)
                throw InputError(who + ": an earlier release (" + isoTime(m.updatedAt) +
                                 ") has an unknown outcome: the MTA may have it already. " +
                                 howToCheck(m, account->name));
            break;
        case MessageState::Ignored:
            if (m.quarantinePath.empty())
                throw InputError(who + ": ignored, but no quarantined copy was kept");
            break;
        case MessageState::Failed:
        case MessageState::Deferred:
            throw InputError(who + ": not in quarantine (state " + messageStateName(m.state) +
                             "; see `popgatectl message retry`)");
        }
        in.open(m.quarantinePath, std::ios::binary);
        if (!in)
            throw OperationError(who + ": quarantined copy " + m.quarantinePath +
                                 " cannot be read: " + std::strerror(errno));
        again = m.state == MessageState::Injecting;
        m.state = MessageState::Injecting;
        ++m.attempts;
        m.reason = again ? "released from quarantine (forced; an earlier release had an unknown "
                           "outcome)"
                         : "released from quarantine";
        ms.save(m);
        tx.commit();
    }

    // From here on the row says "injecting": every way out decides it.
    LogEntry e;
    e.account = account->name;
    e.uidl = m.uidl;
    e.messageId = m.messageId;
    e.sender = m.envelopeFrom;
    e.size = m.size;
    // back - nothing was handed over: the row says "ignored" again. Throws
    // OperationError saying both why and that the row could not be put back.
    auto back = [&](const std::string& why) {
        m.state = MessageState::Ignored;
        m.reason = "release refused: " + why;
        try {
            Transaction tx(ctx.store().session());
            ms.save(m);
            // A copy the MTA refused must not look delivered to the milter.
            MilterSeen(ctx.store()).forget(m.accountId, m.uidl);
            e.status = "ignored";
            e.detail = m.reason;
            ms.log(e);
            tx.commit();
        } catch (const std::exception& ex) {
            throw OperationError(who + ": not released: " + why +
                                 "; and the ledger still says injecting (" + ex.what() +
                                 "): the MTA does not have it, `popgatectl message release " +
                                 std::to_string(m.id) + " --force` is safe");
        }
    };
    SmtpTarget target;
    target.host = ctx.config.str("reinject.host");
    target.port = static_cast<int>(ctx.config.integer("reinject.port"));
    target.helo = ctx.config.str("reinject.helo");
    target.timeout = std::chrono::seconds(ctx.config.integer("reinject.timeout"));
    SmtpReinjector mta(target);
    e.relay = mta.relay();
    SmtpResult r;
    try {
        r = mta.deliver(m.envelopeFrom, releaseTo, in, m.size);
    } catch (const std::exception& ex) {
        r.kind = SmtpResult::Kind::Uncertain; // not known to have stopped before the dot
        r.reply = flatten(ex.what());
        r.command = "DATA";
    }
    mta.close();
    in.close();
    const std::string words = r.describe(mta.relay());

    switch (r.kind) {
    case SmtpResult::Kind::Accepted: {
        const std::string copy = m.quarantinePath;
        m.state = MessageState::Injected;
        m.queueId = r.queueId;
        m.quarantinePath.clear(); // removed below: the MTA has the message now
        try {
            Transaction tx(ctx.store().session());
            ms.save(m);
            if (account->recipientSource == RecipientSource::Envelope) {
                // Whom the release reached: delivered, as popgated records it.
                std::vector<RecipientRecord> got;
                for (const auto& to : releaseTo)
                    got.push_back({account->id, m.uidl, to, RecipientState::Delivered, m.messageId,
                                   r.queueId, "released from quarantine", 0});
                ms.saveRecipients(got);
            }
            e.status = "released";
            e.queueId = r.queueId;
            e.detail = r.reply;
            ms.log(e);
            tx.commit();
        } catch (const std::exception& ex) {
            throw OperationError(who + ": delivered (" + mta.relay() + " queued it as " +
                                 (r.queueId.empty() ? "-" : r.queueId) +
                                 "), but the ledger still says injecting: " + ex.what() +
                                 "; do not release it again");
        }
        try {
            Poco::File(copy).remove();
        } catch (const Poco::Exception& ex) {
            *ctx.err << "popgatectl: warning: " << who << ": delivered, but the quarantined copy "
                     << copy << " cannot be removed: " << flatten(ex.displayText()) << "\n";
        }
        *ctx.out << "message " << m.id << " released: " << mta.relay() << " queued it as "
                 << (r.queueId.empty() ? "-" : r.queueId) << "\n";
        return 0;
    }
    case SmtpResult::Kind::Temporary:
    case SmtpResult::Kind::Permanent:
    case SmtpResult::Kind::Unreachable:
        back(words);
        throw OperationError(who + ": not released (still in quarantine): " + words);
    case SmtpResult::Kind::Uncertain:
        break;
    }
    // No reply after the final dot: the MTA may or may not have it. The row
    // stays "injecting"; say what to look for.
    e.status = "uncertain";
    e.detail = "release: " + words;
    try {
        ms.log(e);
    } catch (const std::exception& ex) {
        *ctx.err << "popgatectl: warning: cannot write the message log: " << ex.what() << "\n";
    }
    throw OperationError(who + ": outcome unknown: " + words +
                         ". The MTA may have queued it; the ledger says injecting. " +
                         howToCheck(m, account->name));
}

// retry - a failed or deferred message is fetched again at the next poll.
int retry(Context& ctx, const std::vector<std::string>& rest)
{
    OptionSet opts;
    opts.addOption(
        Option("account", "", "every failed or deferred message of the account").argument("NAME"));
    const ParsedArgs args = parseArgs(rest, opts);
    MessageStore ms(ctx.store());
    std::vector<MessageRecord> todo;
    if (args.has("account") && args.positional.empty()) {
        for (const auto& [uidl, m] : ms.forAccount(accountId(ctx, args.options.at("account"))))
            if (m.state == MessageState::Failed || m.state == MessageState::Deferred)
                todo.push_back(m);
    } else {
        requirePositional(args, 1, "message retry ID | --account=NAME");
        MessageRecord m = requireMessageRecord(ms, args.positional[0]);
        if (m.state != MessageState::Failed && m.state != MessageState::Deferred)
            throw InputError("message " + std::to_string(m.id) + ": state " +
                             messageStateName(m.state) +
                             " (only failed or deferred messages are retried)");
        todo.push_back(m);
    }
    for (auto& m : todo) {
        m.state = MessageState::Deferred;
        m.retryAt = 0;
        ms.save(m);
        *ctx.out << "message " << m.id << " will be fetched again at the next poll\n";
    }
    return 0;
}

} // namespace

int messageCommand(Context& ctx, const std::vector<std::string>& args)
{
    const std::string usage = "usage: popgatectl message list|show|delete|purge|release|retry ...";
    if (args.empty())
        throw InputError(usage);
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (args[0] == "list")
        return list(ctx, rest);
    if (args[0] == "show")
        return messageShow(ctx, rest);
    if (args[0] == "delete")
        return messageDelete(ctx, rest);
    if (args[0] == "purge")
        return messagePurge(ctx, rest);
    if (args[0] == "release")
        return release(ctx, rest);
    if (args[0] == "retry")
        return retry(ctx, rest);
    throw InputError("unknown command 'message " + flatten(args[0]).substr(0, 40) + "'; " + usage);
}

namespace
{

// The statuses the message log holds (popgated's and popgatectl's writers).
const char* const kLogStatuses[] = {"delivered", "ignored", "deferred", "failed", "uncertain",
                                    "released",  "purged",  "poll",     "error"};

volatile std::sig_atomic_t followStop = 0;

extern "C" void onFollowSignal(int)
{
    followStop = 1;
}

Poco::JSON::Object::Ptr logJson(const LogEntry& e)
{
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("at", isoTime(e.at));
    o->set("account", e.account);
    o->set("uidl", e.uidl);
    o->set("message_id", e.messageId);
    o->set("sender", e.sender);
    o->set("size", e.size);
    o->set("status", e.status);
    o->set("relay", e.relay);
    o->set("queue_id", e.queueId);
    o->set("detail", e.detail);
    return o;
}

// printLogLine - one line as popgated's syslog line reads; values from mail escaped.
void printLogLine(std::ostream& out, const LogEntry& e)
{
    out << isoTime(e.at) << " account=" << e.account;
    if (!e.uidl.empty())
        out << " uidl=" << escapeText(e.uidl, EscapeFor::LogField) << " message-id="
            << (e.messageId.empty() ? "-" : escapeText(e.messageId, EscapeFor::LogField))
            << " from=<" << escapeText(e.sender, EscapeFor::LogField) << "> size=" << e.size;
    out << " status=" << e.status;
    if (!e.queueId.empty())
        out << " relay=" << e.relay << " queue-id=" << escapeText(e.queueId, EscapeFor::LogField);
    if (!e.detail.empty())
        out << " (" << escapeText(e.detail, EscapeFor::LogText) << ")";
    out << "\n";
}

// follow - `log --follow`: polls the log rows after the last one shown, once a
// second, until SIGINT or SIGTERM (then exits 0). JSON: one object per line.
int follow(Context& ctx, LogQuery q, std::int64_t lastId, bool json)
{
    struct sigaction sa {
    };
    sa.sa_handler = onFollowSignal; // no SA_RESTART: the sleep ends at once
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    MessageStore ms(ctx.store());
    q.limit = 1000;
    while (!followStop) {
        for (const auto& e : ms.logAfter(q, lastId)) {
            lastId = e.id;
            if (json) {
                printJsonLine(*ctx.out, *logJson(e));
            } else {
                printLogLine(*ctx.out, e);
            }
        }
        ctx.out->flush();
        if (!*ctx.out)
            return 1; // the reader went away
        for (int i = 0; i < 10 && !followStop; ++i)
            ::usleep(100 * 1000);
    }
    return 0;
}

} // namespace

int logCommand(Context& ctx, const std::vector<std::string>& rest)
{
    std::string statuses;
    for (const char* s : kLogStatuses)
        statuses += std::string(statuses.empty() ? "" : ", ") + s;
    OptionSet opts;
    opts.addOption(Option("account", "", "only this account").argument("NAME"));
    opts.addOption(Option("since", "", "newer than: 2h, 1d, or a date").argument("WHEN"));
    opts.addOption(Option("state", "", "only this status: " + statuses).argument("STATUS"));
    opts.addOption(Option("limit", "", "at most this many lines (default 1000)").argument("N"));
    opts.addOption(Option("follow", "f", "then print new lines as they come, until interrupted"));
    opts.addOption(Option("json", "", "JSON output"));
    const ParsedArgs args = parseArgs(rest, opts);
    requirePositional(args, 0,
                      "log [--account=NAME] [--since=WHEN] [--state=STATUS] [--limit=N] "
                      "[--follow] [--json]");
    LogQuery q;
    if (args.has("state")) {
        q.status = args.options.at("state");
        if (std::find(std::begin(kLogStatuses), std::end(kLogStatuses), q.status) ==
            std::end(kLogStatuses))
            throw InputError("--state: unknown status '" + flatten(q.status).substr(0, 40) +
                             "' (expected " + statuses + ")");
    }
    if (args.has("since"))
        q.since = parseSince(args.options.at("since"));
    if (args.has("limit"))
        q.limit = static_cast<int>(parseInteger(args.options.at("limit"), 1, 1000000));
    MessageStore ms(ctx.store());
    if (args.has("account")) {
        q.account = args.options.at("account");
        // An account removed since still has its lines; a name nothing knows is a typo.
        if (!ctx.store().account(q.account) && !ms.logMentions(q.account))
            throw InputError("account '" + flatten(q.account).substr(0, 80) +
                             "': no such account (and no log line names it)");
    }
    const auto entries = ms.logEntries(q);
    const bool json = ctx.json || args.has("json");
    std::int64_t lastId = 0;
    for (const auto& e : entries)
        lastId = std::max(lastId, e.id);
    if (args.has("follow")) {
        for (const auto& e : entries) {
            if (json) {
                printJsonLine(*ctx.out, *logJson(e));
            } else {
                printLogLine(*ctx.out, e);
            }
        }
        return follow(ctx, q, lastId, json);
    }
    if (json) {
        Poco::JSON::Array arr;
        for (const auto& e : entries)
            arr.add(logJson(e));
        printJson(*ctx.out, arr);
        *ctx.out << "\n";
        return 0;
    }
    for (const auto& e : entries)
        printLogLine(*ctx.out, e);
    return 0;
}

} // namespace popgate::cli
