// callbacks.cpp - see callbacks.h. Each callback translates and asks; what a
// verdict or a failure means is decided by the core and by the snapshot's
// settings. No exception leaves a callback: an unexpected one tempfails.
// SECURITY: input is the MTA's view of untrusted mail; nothing here is trusted
// except an X-Popgate-Id whose MAC verifies under the header key.
#include "plugin/popgate-milter/callbacks.h"

#include "core/errors.h"
#include "core/message.h"
#include "core/metrics.h"
#include "core/milter_seen.h"
#include "core/screen.h"
#include "core/text.h"

#include <Poco/String.h>
#include <algorithm>
#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace popgate
{

namespace
{

SnapshotSource* gSource = nullptr;
StorePool* gPool = nullptr;
Poco::Logger* gLog = nullptr;
bool gNoNagle = false; ///< the socket is a unix one: no Nagle, so no step needs an answer to carry an ACK

const unsigned long kActions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;

const char* const kHeaderPrefix = "x-popgate-";
const char* const kIdHeader = "x-popgate-id";

struct PopgateHeader {
    std::string name; ///< as the MTA gave it
    int index = 0;    ///< 1-based among fields of that name (case-insensitive), smfi_chgheader's
    std::string value;
};

/// One SMTP transaction; reset at MAIL FROM, end of message and abort.
struct Envelope {
    std::string sender;      ///< MAIL FROM without angle brackets; "" for <>
    MessageFacts headers;    ///< every From field, under core's limits (addFromField)
    bool unfiltered = false; ///< the database failed and milter.on_database_error = accept
    std::vector<PopgateHeader> popgateHeaders;
    std::map<std::string, int> counts; ///< lower-case X-Popgate-* name -> fields seen
    bool headerFailed = false; ///< a header callback failed unanswered (logged): tempfail at the end
};

/// One SMTP connection: the snapshot it started with stays until close.
struct Connection {
    std::shared_ptr<const Snapshot> snapshot;
    std::string daemonName;
    Envelope envelope;
    bool headerNoReply = false; ///< negotiated SMFIP_NR_HDR: headers are never answered
};

Connection* connectionOf(SMFICTX* ctx)
{
    return static_cast<Connection*>(smfi_getpriv(ctx));
}

std::string macro(SMFICTX* ctx, const char* name)
{
    const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
    return v ? std::string(v) : std::string();
}

std::string queueIdOf(SMFICTX* ctx)
{
    const std::string id = macro(ctx, "i");
    return id.empty() ? "NOQUEUE"
                      : escapeText(id, EscapeFor::LogField); // Postfix: no queue file before RCPT
}

std::string who(SMFICTX* ctx, const Envelope& e)
{
    return "queue-id=" + queueIdOf(ctx) + " from=<" + escapeText(e.sender, EscapeFor::LogField) +
           ">";
}

/// unfold - a header field body on one line (the line breaks of folding, LF or
/// CR LF, removed; the WSP kept). A lone CR stays, for the screen to refuse in
/// a From field, as popgated's reading does. The MTA hands the value over as a
/// C string: Postfix cuts it at a NUL (see docs/popgate-milter.md).
std::string unfold(const char* value)
{
    std::string out;
    for (const char* p = value; p && *p; ++p)
        if (*p != '\n' && !(*p == '\r' && p[1] == '\n'))
            out += *p;
    return out;
}

bool setReply(SMFICTX* ctx, const char* code, const char* xcode, const std::string& text)
{
    std::string safe = smtpReplyText(text);
    return smfi_setreply(ctx, const_cast<char*>(code), const_cast<char*>(xcode), safe.data()) ==
           MI_SUCCESS;
}

/// tempfail - 451 4.3.0 with a short reason (the details go to the log only).
sfsistat tempfail(SMFICTX* ctx, const std::string& text)
{
    setReply(ctx, "451", "4.3.0", text);
    milterMetrics().count(MilterVerdict::Tempfailed);
    return SMFIS_TEMPFAIL;
}

/// failure - the snapshot cannot judge or the database failed: the configured policy.
sfsistat failure(SMFICTX* ctx, Connection& c, const std::string& what, bool database,
                 bool atMailFrom)
{
    const MilterSettings& s = c.snapshot->settings;
    if (database && !s.tempfailOnDatabaseError) {
        gLog->warning(who(ctx, c.envelope) +
                      " action=accept (unfiltered: " + escapeText(what, EscapeFor::LogText) +
                      "; milter.on_database_error = accept)");
        milterMetrics().count(MilterVerdict::AcceptedUnfiltered);
        if (atMailFrom) {
            c.envelope.unfiltered = true;
            return SMFIS_CONTINUE; // forged X-Popgate-* headers are still removed at the end
        }
        return SMFIS_ACCEPT;
    }
    gLog->error(who(ctx, c.envelope) + " action=tempfail (" + (database ? "database error: " : "") +
                escapeText(what, EscapeFor::LogText) + ")");
    return tempfail(ctx, database
                             ? "popgate-milter: database unavailable, try again later"
                             : "popgate-milter: filter configuration unavailable, try again later");
}

/// act - the configured action for blocked mail, with its one log line.
sfsistat act(SMFICTX* ctx, Connection& c, const std::string& reason)
{
    const BlockAction action = c.snapshot->settings.action;
    const std::string line = flatten(reason);
    gLog->notice(who(ctx, c.envelope) + " action=" + blockActionName(action) + " (" +
                 escapeText(reason, EscapeFor::LogText) + ")");
    switch (action) {
    case BlockAction::Reject:
        if (!setReply(ctx, "550", "5.7.1", line))
            gLog->error(who(ctx, c.envelope) +
                        " smfi_setreply failed; the MTA answers its default 550");
        milterMetrics().count(MilterVerdict::Rejected);
        return SMFIS_REJECT;
    case BlockAction::Discard:
        milterMetrics().count(MilterVerdict::Discarded);
        return SMFIS_DISCARD;
    case BlockAction::Quarantine: {
        std::string text = smtpReplyText(line);
        if (smfi_quarantine(ctx, text.data()) != MI_SUCCESS)
            return tempfail(ctx, "popgate-milter: cannot quarantine, try again later");
        milterMetrics().count(MilterVerdict::Quarantined);
        return SMFIS_ACCEPT;
    }
    case BlockAction::Tag: {
        std::string value = "blocked; " + line;
        if (smfi_addheader(ctx, const_cast<char*>("X-Popgate-Filter"), value.data()) != MI_SUCCESS)
            return tempfail(ctx, "popgate-milter: cannot tag, try again later");
        milterMetrics().count(MilterVerdict::Tagged);
        return SMFIS_ACCEPT;
    }
    }
    return SMFIS_TEMPFAIL;
}

/// judge - the core's verdict on the envelope sender and, with the headers,
/// every From field (core/screen.h: a sender that cannot be read, a From field
/// too large or too many of them block the message, the rule popgated applies).
Verdict judge(const CompiledFilter& filter, const Envelope& e, bool withHeaders)
{
    Verdict v;
    judgeSenders(filter, e.sender, withHeaders ? &e.headers : nullptr, &v);
    return v;
}

/// removeForged - delete X-Popgate-* fields other than the valid id (keep < 0: none
/// is valid), highest index first so that the remaining indexes stay right.
void removeForged(SMFICTX* ctx, const Envelope& e, int keep)
{
    std::vector<const PopgateHeader*> drop;
    for (std::size_t i = 0; i < e.popgateHeaders.size(); ++i)
        if (static_cast<int>(i) != keep)
            drop.push_back(&e.popgateHeaders[i]);
    std::sort(drop.begin(), drop.end(), [](auto* a, auto* b) { return a->index > b->index; });
    for (const PopgateHeader* h : drop) {
        const bool isId = Poco::icompare(h->name, kIdHeader) == 0;
        std::string name = h->name;
        const bool ok = smfi_chgheader(ctx, name.data(), h->index, nullptr) == MI_SUCCESS;
        gLog->notice(
            who(ctx, e) + (ok ? " removed header " : " could not remove header ") +
            escapeText(h->name, EscapeFor::LogField) +
            (isId ? " (invalid X-Popgate-Id: " + escapeText(h->value, EscapeFor::LogText) + ")"
             : keep < 0 ? " (no valid X-Popgate-Id: not from popgated)"
                        : " (not written by popgated)"));
    }
}

/// reinjected - a copy popgated sent: no filter; the ledger decides duplicates.
sfsistat reinjected(SMFICTX* ctx, Connection& c, const PopgateId& id)
{
    const std::string queueId = macro(ctx, "i");
    const std::string subject = who(ctx, c.envelope) +
                                " account=" + escapeText(id.account, EscapeFor::LogField) +
                                " uidl=" + escapeText(id.uidl, EscapeFor::LogField);
    try {
        auto lease = gPool->acquire();
        try {
            MilterSeen seen(**lease);
            const ReinjectedFacts facts = seen.facts(id.account, id.uidl);
            const auto& accountId = facts.accountId;
            if (!accountId) {
                gLog->warning(subject +
                              " action=accept (reinjected by popgated for an account that no "
                              "longer exists; not filtered again)");
                milterMetrics().count(MilterVerdict::Reinjected);
                return SMFIS_ACCEPT;
            }
            const auto& before = facts.seenQueueId;
            switch (judgeReinjected(facts.ledger, before)) {
            case ReinjectedAction::DiscardInjected:
                gLog->notice(
                    subject + " action=discard (duplicate: the ledger says injected" +
                    (before ? ", first copy queue-id=" +
                                  escapeText(before->empty() ? "-" : *before, EscapeFor::LogField)
                            : "") +
                    ")");
                milterMetrics().count(MilterVerdict::DuplicateDropped);
                return SMFIS_DISCARD;
            case ReinjectedAction::DiscardInFlight:
                gLog->notice(subject + " action=discard (duplicate: copy queue-id=" +
                             escapeText(before->empty() ? "-" : *before, EscapeFor::LogField) +
                             " passed already and the ledger says injecting)");
                milterMetrics().count(MilterVerdict::DuplicateDropped);
                return SMFIS_DISCARD;
            case ReinjectedAction::Accept:
                seen.record(*accountId, id.uidl, queueId);
                gLog->information(subject +
                                  " action=accept (reinjected by popgated; not filtered again)");
                milterMetrics().count(MilterVerdict::Reinjected);
                return SMFIS_ACCEPT;
            }
        } catch (const OperationError&) {
            lease->broken();
            throw;
        }
    } catch (const OperationError& e) {
        return failure(ctx, c, e.what(), true, false);
    }
    return SMFIS_TEMPFAIL;
}

template <typename F> sfsistat guarded(SMFICTX* ctx, const char* stage, F&& body)
{
    try {
        return body();
    } catch (const std::exception& e) {
        gLog->error("queue-id=" + queueIdOf(ctx) + " internal error at " + stage + ": " +
                    escapeText(e.what(), EscapeFor::LogText) + " (action=tempfail)");
    } catch (...) {
        gLog->error("queue-id=" + queueIdOf(ctx) + " internal error at " + stage +
                    " (action=tempfail)");
    }
    return tempfail(ctx, "popgate-milter: internal error, try again later");
}

// onNegotiate - the steps the MTA need not send and the answers it need not wait
// for, asked per connection (issue Perf, goal 0: each answer is a round trip per
// message between two processes). libmilter's own choice, *pf1 on entry, skips
// the steps without a callback (HELO, RCPT, end of headers, body, unknown). On a
// unix socket popgate also asks the MTA not to send DATA (nothing to decide
// there) and not to wait for an answer to each header (the header callback never
// refuses: it only collects; a failure there tempfails at the end of the
// message). On a TCP socket neither: a write of the MTA's that nothing answers
// leaves the next one in its Nagle buffer until our delayed ACK, about 40 ms
// (bench/README.md, "The milter on a TCP socket").
sfsistat onNegotiate(SMFICTX* ctx, unsigned long, unsigned long f1, unsigned long,
                     unsigned long, unsigned long* pf0, unsigned long* pf1, unsigned long*,
                     unsigned long*)
{
    *pf0 = kActions; // as without negotiation: libmilter refuses an MTA that lacks one
    auto c = std::make_unique<Connection>();
    if (gNoNagle) {
        if ((f1 & SMFIP_NODATA) != 0)
            *pf1 |= SMFIP_NODATA;
        if ((f1 & SMFIP_NR_HDR) != 0) {
            *pf1 |= SMFIP_NR_HDR;
            c->headerNoReply = true;
        }
    }
    delete connectionOf(ctx);
    smfi_setpriv(ctx, c.release());
    return SMFIS_CONTINUE;
}

sfsistat onConnect(SMFICTX* ctx, char*, _SOCK_ADDR*)
{
    return guarded(ctx, "connect", [&] {
        auto c = std::make_unique<Connection>();
        c->snapshot = gSource->current();
        c->daemonName = macro(ctx, "{daemon_name}");
        if (Connection* negotiated = connectionOf(ctx))
            c->headerNoReply = negotiated->headerNoReply;
        delete connectionOf(ctx);
        smfi_setpriv(ctx, c.release());
        return SMFIS_CONTINUE;
    });
}

sfsistat onEnvfrom(SMFICTX* ctx, char** argv)
{
    return guarded(ctx, "MAIL FROM", [&] {
        Connection* c = connectionOf(ctx);
        if (!c || !c->snapshot) // no connect callback, or it failed (negotiation made c)
            return tempfail(ctx, "popgate-milter: no connection context, try again later");
        c->envelope = Envelope();
        std::string sender = argv && argv[0] ? argv[0] : "";
        if (sender.size() >= 2 && sender.front() == '<' && sender.back() == '>')
            sender = sender.substr(1, sender.size() - 2);
        c->envelope.sender = sender;
        const Snapshot& snap = *c->snapshot;
        // popgated's listener: the X-Popgate-Id decides at the end whether to filter.
        if (!snap.settings.reinjectDaemonName.empty() &&
            c->daemonName == snap.settings.reinjectDaemonName)
            return SMFIS_CONTINUE;
        if (!snap.error.empty())
            return failure(ctx, *c, snap.error, snap.databaseError, true);
        if (!snap.filter || snap.settings.action != BlockAction::Reject)
            return SMFIS_CONTINUE; // other actions act on the whole message, at the end
        const Verdict v = judge(*snap.filter, c->envelope, false);
        if (v.blocked) {
            const sfsistat r = act(ctx, *c, v.reason);
            c->envelope = Envelope();
            return r;
        }
        return SMFIS_CONTINUE;
    });
}

// onData - nothing to decide at DATA; registered so that the MTA waits for an answer.
// Without it libmilter negotiates SMFIP_NODATA, and the MTA's last write before the
// headers (the DATA macros) expects no reply: on a TCP socket the first header then
// waits in the MTA's Nagle buffer for our delayed ACK, about 40 ms per message.
sfsistat onData(SMFICTX*)
{
    return SMFIS_CONTINUE;
}

/// collectHeader - remember the fields the end of the message judges: every From
/// field and every X-Popgate-* field. Never refuses.
sfsistat collectHeader(Connection* c, const char* name, const char* value)
{
    if (!c || !name)
        return SMFIS_CONTINUE;
    const std::string field = name;
    const std::string lower = Poco::toLower(field);
    if (lower == "from") {
        addFromField(c->envelope.headers, unfold(value));
    } else if (lower.compare(0, std::string(kHeaderPrefix).size(), kHeaderPrefix) == 0) {
        PopgateHeader h;
        h.name = field;
        h.index = ++c->envelope.counts[lower];
        h.value = unfold(value);
        c->envelope.popgateHeaders.push_back(std::move(h));
    }
    return SMFIS_CONTINUE;
}

sfsistat onHeader(SMFICTX* ctx, char* name, char* value)
{
    Connection* c = connectionOf(ctx);
    if (c && c->headerNoReply) {
        // No answer is expected: a failure is remembered and tempfails at the end.
        if (c->envelope.headerFailed)
            return SMFIS_NOREPLY;
        try {
            collectHeader(c, name, value);
        } catch (const std::exception& e) {
            c->envelope.headerFailed = true;
            gLog->error("queue-id=" + queueIdOf(ctx) + " internal error at header: " +
                        escapeText(e.what(), EscapeFor::LogText) +
                        " (action=tempfail at the end of the message)");
        } catch (...) {
            c->envelope.headerFailed = true;
            gLog->error("queue-id=" + queueIdOf(ctx) +
                        " internal error at header (action=tempfail at the end of the message)");
        }
        return SMFIS_NOREPLY;
    }
    return guarded(ctx, "header", [&] { return collectHeader(c, name, value); });
}

sfsistat onEom(SMFICTX* ctx)
{
    sfsistat r = guarded(ctx, "end of message", [&] {
        Connection* c = connectionOf(ctx);
        if (!c || !c->snapshot)
            return tempfail(ctx, "popgate-milter: no connection context, try again later");
        const Snapshot& snap = *c->snapshot;
        Envelope& e = c->envelope;
        if (e.headerFailed) // logged at the header
            return tempfail(ctx, "popgate-milter: internal error, try again later");

        int valid = -1;
        PopgateId id;
        for (std::size_t i = 0; i < e.popgateHeaders.size() && valid < 0; ++i)
            if (Poco::icompare(e.popgateHeaders[i].name, kIdHeader) == 0 &&
                verifyPopgateId(snap.settings.headerKey, e.popgateHeaders[i].value, id))
                valid = static_cast<int>(i);
        removeForged(ctx, e, valid);
        if (valid >= 0)
            return reinjected(ctx, *c, id);

        if (e.unfiltered)
            return SMFIS_ACCEPT; // logged at MAIL FROM
        if (!snap.error.empty())
            return failure(ctx, *c, snap.error, snap.databaseError, false);
        if (!snap.filter) {
            gLog->information(who(ctx, e) + " action=accept (no system filter: " + snap.filterName +
                              ")");
            milterMetrics().count(MilterVerdict::Accepted);
            return SMFIS_ACCEPT;
        }
        const Verdict v = judge(*snap.filter, e, true);
        if (v.blocked)
            return act(ctx, *c, v.reason);
        gLog->information(who(ctx, e) + " action=accept (" +
                          escapeText(v.reason, EscapeFor::LogText) + ")");
        milterMetrics().count(MilterVerdict::Accepted);
        return SMFIS_ACCEPT;
    });
    if (Connection* c = connectionOf(ctx))
        c->envelope = Envelope();
    return r;
}

sfsistat onAbort(SMFICTX* ctx)
{
    if (Connection* c = connectionOf(ctx))
        c->envelope = Envelope();
    return SMFIS_CONTINUE;
}

sfsistat onClose(SMFICTX* ctx)
{
    delete connectionOf(ctx); // NULL-safe: close may come without connect
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

} // namespace

std::string smtpReplyText(const std::string& text)
{
    std::string out;
    for (unsigned char ch : text) {
        if (out.size() >= 900) {
            out += "...";
            break;
        }
        if (ch == '\r' || ch == '\n' || ch == '\t')
            out += ' ';
        else if (ch == '%')
            out += "%%";
        else if (ch < 0x20 || ch >= 0x7f)
            out += '?';
        else
            out += static_cast<char>(ch);
    }
    return out;
}

bool isUnixSocket(const std::string& socket)
{
    // libmilter's forms: unix:/path, local:/path, a bare path; inet:, inet6: are TCP.
    return socket.rfind("unix:", 0) == 0 || socket.rfind("local:", 0) == 0 ||
           socket.find(':') == std::string::npos;
}

void registerMilter(SnapshotSource& source, StorePool& pool, Poco::Logger& log,
                    const std::string& socket)
{
    gSource = &source;
    gPool = &pool;
    gLog = &log;
    gNoNagle = isUnixSocket(socket);
    static struct smfiDesc desc {
    };
    desc.xxfi_name = const_cast<char*>("popgate-milter");
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = kActions;
    desc.xxfi_connect = onConnect;
    desc.xxfi_envfrom = onEnvfrom;
    desc.xxfi_data = onData;
    desc.xxfi_header = onHeader;
    desc.xxfi_eom = onEom;
    desc.xxfi_abort = onAbort;
    desc.xxfi_close = onClose;
    desc.xxfi_negotiate = onNegotiate;
    if (smfi_register(desc) != MI_SUCCESS)
        throw OperationError("libmilter: smfi_register failed");
    // libmilter's default limit (64 KiB per command) would drop the session on a
    // longer header field, and the MTA would only tempfail it; with 1 MiB the
    // field arrives (Postfix's header_size_limit is 100 KiB) and the core judges
    // it: a From field over kMaxFromField is rejected as unreadable.
    smfi_setmaxdatasize(1024 * 1024);
}

} // namespace popgate
