// poll_deliver.cpp - the deliver stage (see poll.h): the batch's `injecting`
// messages to the MTA over one SMTP session, RFC 2920 pipelined when offered.
// Each 250 is appended to the delivery journal (journal.h) as soon as it is
// read, and the reinjector reads it before it sends the next message's end
// of data: so a crash of popgated can leave at most ONE message per session
// whose 250 nothing recorded (the one in flight), which the next poll sends
// again with the same X-Popgate-Id. The outcomes are committed with their
// message-log rows in groups (16 replies or 10 ms); those commits are not
// flushed one by one (they survive a crash of popgated, not of the machine);
// the batch's last one is, before anything depends on them (DELE).
// A domain mailbox's message (recipients envelope) goes in one transaction to
// the recipients its rows say it has not reached; each recipient's outcome is
// written to its row and committed at once (recipientOutcome), not journalled.
// With reinject.xclient each message carries its origin, read here from the
// provider's Received: field in the spool (core/received.h).
#include "core/milter_seen.h"
#include "core/received.h"
#include "core/text.h"
#include "plugin/popgated/poll.h"

#include <atomic>

namespace popgate
{

namespace
{

constexpr std::size_t kOutcomeGroup = 16;              ///< MTA replies per commit, at most
constexpr std::chrono::milliseconds kOutcomeDelay{10}; ///< and the oldest waits no longer

Failure failureOf(SmtpResult::Kind kind)
{
    switch (kind) {
    case SmtpResult::Kind::Temporary:
        return Failure::MtaTemporary;
    case SmtpResult::Kind::Permanent:
        return Failure::MtaPermanent;
    case SmtpResult::Kind::Uncertain:
        return Failure::MtaUncertain;
    case SmtpResult::Kind::Unreachable:
    case SmtpResult::Kind::Accepted:
        break;
    }
    return Failure::MtaUnreachable;
}

constexpr std::size_t kOriginScan = 256 * 1024; ///< header octets read for the origin, at most

// headerOf - the spooled message up to its blank line (kOriginScan at most); rewound.
std::string headerOf(Spool& spool)
{
    std::string header;
    char chunk[8192];
    while (header.size() < kOriginScan) {
        const std::size_t n = spool.read(chunk, sizeof chunk);
        if (n == 0)
            break;
        header.append(chunk, n);
        if (header.find("\n\r\n") != std::string::npos || header.find("\n\n") != std::string::npos)
            break;
    }
    spool.rewind();
    return header;
}

// originOf - the host that handed the message to the provider, from the provider's
// Received: field number hop (popgate's own, always the first, not counted);
// nullopt, and a log line saying why, when that field is missing or unreadable:
// never a guess. who is the log line's "account=NAME uidl=X".
std::optional<ReceivedOrigin> originOf(Spool& spool, int hop, Poco::Logger& log,
                                       const std::string& who)
{
    std::optional<std::string> field;
    try {
        field = receivedField(headerOf(spool), hop + 1);
    } catch (const SpoolError&) {
        return std::nullopt; // reading the text for SMTP fails the same way, and says so
    }
    std::optional<ReceivedOrigin> o;
    if (field)
        o = parseReceived(*field);
    if (!o)
        log.warning(
            who + " xclient=none (Received: field " + std::to_string(hop) +
            (field ? " unreadable: " + escapeText(*field, EscapeFor::LogText) : " missing") + ")");
    return o;
}

} // namespace

void Poll::deliver(Batch& batch)
{
    std::vector<Item*> sending;
    std::vector<SmtpMessage> messages;
    for (Item& it : batch.items) {
        if (it.retrieval != Retrieval::Retrieved || it.rec.state != MessageState::Injecting)
            continue;
        sending.push_back(&it);
        SmtpMessage m;
        m.sender = it.rec.envelopeFrom;
        if (envelope()) { // a domain mailbox: whom it did not reach yet, one transaction
            m.perRecipient = true;
            for (const auto& r : it.rcpts)
                if (r.state == RecipientState::Pending || r.state == RecipientState::Deferred)
                    m.recipients.push_back(r.recipient);
        } else {
            m.recipients = recipients_;
        }
        m.size = it.rec.size;
        if (settings_.mta.xclient)
            m.origin = originOf(*it.spool, settings_.xclientHop, log_,
                                who_ + " uidl=" + escapeText(it.uid.uid, EscapeFor::LogField));
        Spool* spool = it.spool.get();
        m.body = [spool](char* buffer, std::size_t capacity) {
            return spool->read(buffer, capacity);
        };
        messages.push_back(std::move(m));
    }
    if (messages.empty())
        return;

    bool relaxed = false; // commits not flushed one by one
    auto setSync = [&](bool sync) {
        if (sync == relaxed) {
            store_.setCommitSync(sync);
            relaxed = !sync;
        }
    };
    struct Outcome {
        Item* it;
        std::string status; ///< delivered, deferred, failed, uncertain
        std::string detail; ///< the MTA's reply, or what went wrong
    };
    std::vector<Outcome> outcomes;
    auto oldest = std::chrono::steady_clock::now();
    // flushOutcomes - one commit for the outcomes read so far; the batch's
    // last one is synced, and then the journal holds nothing the ledger lacks.
    auto flushOutcomes = [&](bool last) {
        setSync(last);
        commit("the deliveries", [&] {
            for (const auto& o : outcomes) {
                stageRow(o.it->rec);
                if (!o.it->rcpts.empty())
                    ledger_.saveRecipients(o.it->rcpts);
                // A copy that did not get in: the milter must not count it as delivered.
                if (o.it->rec.state == MessageState::Deferred ||
                    o.it->rec.state == MessageState::Failed)
                    MilterSeen(store_).forget(account_.id, o.it->uid.uid);
                stageLog(*o.it, o.status, o.it->rec.queueId, o.detail);
            }
        });
        for (const auto& o : outcomes) {
            Item& it = *o.it;
            if (o.status == "delivered") {
                logLine(it, "delivered",
                        "relay=" + mta_.relay() + " queue-id=" +
                            (it.rec.queueId.empty()
                                 ? "-"
                                 : escapeText(it.rec.queueId, EscapeFor::LogField)) +
                            " (" + escapeText(o.detail, EscapeFor::LogText) + ")");
                ++report_.delivered;
                report_.deliveredBytes += it.rec.size;
                scheduleDelete(it.uid);
                continue;
            }
            logLine(it, o.status,
                    "relay=" + mta_.relay() + " (" + escapeText(o.detail, EscapeFor::LogText) +
                        ")");
            if (it.rec.state == MessageState::Deferred)
                ++report_.deferred;
            else if (it.rec.state == MessageState::Failed)
                ++report_.failed;
        }
        outcomes.clear();
        if (last)
            journal_.clear();
    };
    auto outcome = [&](std::size_t k, const SmtpResult& r) {
        Item& it = *sending[k];
        if (!r.xclientRefused.empty())
            log_.warning(who_ + " uidl=" + escapeText(it.uid.uid, EscapeFor::LogField) +
                         " xclient=refused, handed over without its origin (" +
                         escapeText(r.xclientRefused, EscapeFor::LogText) + ")");
        if (outcomes.empty())
            oldest = std::chrono::steady_clock::now();
        bool now = false; // commit at once: the journal could not take it
        if (envelope()) {
            // Per recipient: committed at once (the journal knows messages, not
            // recipients), so a crash resends only to the recipients whose
            // rows still say pending, with the same X-Popgate-Id.
            recipientOutcome(it, r);
            now = true;
            outcomes.push_back({&it,
                                it.rec.state == MessageState::Injected ? "delivered"
                                : it.rec.state == MessageState::Injecting
                                    ? "uncertain"
                                    : messageStateName(it.rec.state),
                                it.rec.reason.empty() ? r.reply : it.rec.reason});
            if (r.kind == SmtpResult::Kind::Unreachable || r.kind == SmtpResult::Kind::Uncertain) {
                const Failure f = failureOf(r.kind);
                if (decide(f).endSession)
                    endSession(f, r.describe(mta_.relay()));
            }
        } else if (r.kind == SmtpResult::Kind::Accepted) {
            it.rec.state = MessageState::Injected;
            it.rec.queueId = r.queueId;
            it.rec.reason.clear();
            // Before the next message's end of data: see journal.h. Under a lease
            // (several hosts) each outcome is committed at once, fenced: the
            // journal is this host's, and a host taking the account over must
            // find every 250 but the one in flight in the ledger.
            now = !journal_.append({it.uid.uid, r.queueId}) || lease_ != nullptr;
            outcomes.push_back({&it, "delivered", r.reply});
        } else {
            const Failure f = failureOf(r.kind);
            const Decision d = decide(f);
            const std::string detail = r.describe(mta_.relay());
            switch (d.message) {
            case MessageOutcome::RetryLater:
                it.rec.state = MessageState::Deferred;
                it.rec.retryAt = nowSeconds() + messageRetryDelay(it.rec.attempts);
                break;
            case MessageOutcome::MarkFailed:
                markFailed(it, detail);
                break;
            case MessageOutcome::Uncertain:
            case MessageOutcome::None:
                break; // stays "injecting": resent with the same X-Popgate-Id
            }
            it.rec.reason = detail;
            outcomes.push_back({&it,
                                it.rec.state == MessageState::Injecting
                                    ? "uncertain"
                                    : messageStateName(it.rec.state),
                                detail});
            if (d.endSession)
                endSession(f, detail);
        }
        // The last reply of the batch (or the one that ended the session) is flushed.
        const bool last = k + 1 == sending.size() || r.kind == SmtpResult::Kind::Unreachable ||
                          r.kind == SmtpResult::Kind::Uncertain;
        if (last || now || outcomes.size() >= kOutcomeGroup ||
            std::chrono::steady_clock::now() - oldest >= kOutcomeDelay)
            flushOutcomes(last);
    };

    std::size_t attempted = 0;
    try {
        // A stop (SIGTERM) finishes the message on its way and hands over no more:
        // the rest stay on the server, as they were, for the next run.
        attempted =
            mta_.deliverMany(messages, outcome, [this] { return stopping_.load(); }).size();
    } catch (...) {
        if (relaxed) {
            try {
                store_.setCommitSync(true);
            } catch (...) {
            }
        }
        throw;
    }
    static std::atomic<bool> xclientWarned{false};
    if (settings_.mta.xclient && attempted > 0 && !mta_.xclientOffered() &&
        !xclientWarned.exchange(true))
        log_.warning("reinject.xclient is on but " + mta_.relay() +
                     " does not offer XCLIENT to popgated (smtpd_authorized_xclient_hosts): "
                     "messages are handed over without their origin");
    if (!outcomes.empty()) // stopped before the batch's last message: its results
        flushOutcomes(true);
    if (relaxed) // only when the last result never came: cannot happen, but be sure
        store_.setCommitSync(true);
    if (attempted < sending.size()) {
        // Never handed over (the session ended first): as they were.
        commit("the messages not handed over", [&] {
            for (std::size_t k = attempted; k < sending.size(); ++k) {
                Item& it = *sending[k];
                if (it.hadRow) {
                    it.rec = it.original;
                } else {
                    it.rec.state = MessageState::Deferred;
                    it.rec.retryAt = 0;
                    it.rec.attempts = 0;
                    it.rec.reason = "not handed over: the MTA session ended before it";
                }
                stageRow(it.rec);
            }
        });
    }
}

void Poll::recipientOutcome(Item& it, const SmtpResult& r)
{
    const std::string relay = mta_.relay();
    std::map<std::string, const SmtpResult::Recipient*> said;
    for (const auto& x : r.recipients)
        said[x.address] = &x;
    int delivered = 0;
    int retry = 0;
    std::string to, notes;
    for (RecipientRecord& row : it.rcpts) {
        if (row.state == RecipientState::Delivered) {
            ++delivered;
            continue;
        }
        if (row.state != RecipientState::Pending && row.state != RecipientState::Deferred)
            continue;
        const auto s = said.find(row.recipient);
        const bool ownReply = s != said.end() && s->second->kind != SmtpResult::Kind::Accepted;
        if (r.kind == SmtpResult::Kind::Accepted && s != said.end() && !ownReply) {
            row.state = RecipientState::Delivered;
            row.queueId = r.queueId;
            row.reason = r.reply;
            ++delivered;
            to += (to.empty() ? "" : ", ") + row.recipient;
            continue;
        }
        // Its own RCPT refusal, else what the whole message got.
        const Failure f = ownReply ? (s->second->kind == SmtpResult::Kind::Temporary
                                          ? Failure::RecipientTemporary
                                          : Failure::RecipientPermanent)
                                   : failureOf(r.kind);
        row.reason = ownReply ? relay + " said: " + s->second->reply + " (in reply to RCPT TO:<" +
                                    row.recipient + ">)"
                              : r.describe(relay);
        switch (decide(f).message) {
        case MessageOutcome::RetryLater:
            row.state = RecipientState::Deferred;
            ++retry;
            break;
        case MessageOutcome::MarkFailed:
            row.state = RecipientState::Failed;
            break;
        case MessageOutcome::Uncertain:
        case MessageOutcome::None:
            row.state = RecipientState::Pending; // resent with the same X-Popgate-Id
            ++retry;
            break;
        }
        if (ownReply)
            notes += "; " + row.recipient + " " + recipientStateName(row.state) + ": " +
                     s->second->reply;
    }
    if (r.kind == SmtpResult::Kind::Accepted)
        it.rec.queueId = r.queueId;
    const std::string summary = (to.empty() ? std::string() : r.reply + "; to " + to) + notes;
    it.rec.reason = summary.compare(0, 2, "; ") == 0 ? summary.substr(2) : summary;
    if (r.kind == SmtpResult::Kind::Unreachable || r.kind == SmtpResult::Kind::Uncertain) {
        const Decision d = decide(failureOf(r.kind));
        it.rec.reason = r.describe(relay);
        if (d.message == MessageOutcome::RetryLater) {
            it.rec.state = MessageState::Deferred;
            it.rec.retryAt = nowSeconds() + messageRetryDelay(it.rec.attempts);
        } // else it stays injecting: resent with the same X-Popgate-Id
        return;
    }
    if (r.kind != SmtpResult::Kind::Accepted && r.recipients.empty())
        it.rec.reason = r.describe(relay); // MAIL, DATA or the final dot refused
    if (messageDoneForRecipients(delivered, retry)) {
        it.rec.state = MessageState::Injected;
    } else if (retry > 0) {
        it.rec.state = MessageState::Deferred;
        it.rec.retryAt = nowSeconds() + messageRetryDelay(it.rec.attempts);
    } else {
        markFailed(it, it.rec.reason);
    }
}

} // namespace popgate
