// poll_deliver.cpp - the deliver stage (see poll.h): the batch's `injecting`
// messages to the MTA over one SMTP session, RFC 2920 pipelined when offered.
// Each final reply is committed, with its message-log row, as soon as it is
// read, and the reinjector reads it before it sends the next message's end
// of data: so a crash of popgated can leave at most ONE message whose 250 the
// ledger does not know (the one in flight), which the next poll sends again
// with the same X-Popgate-Id. Those commits are not flushed one by one (they
// survive a crash of popgated, not of the machine); the batch's last one is,
// before anything depends on them (DELE).
#include "core/milter_seen.h"
#include "core/text.h"
#include "plugin/popgated/poll.h"

namespace popgate
{

namespace
{

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
        m.recipients = recipients_;
        m.size = it.rec.size;
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
    auto outcome = [&](std::size_t k, const SmtpResult& r) {
        Item& it = *sending[k];
        std::string status;
        std::string detail;
        if (r.kind == SmtpResult::Kind::Accepted) {
            it.rec.state = MessageState::Injected;
            it.rec.queueId = r.queueId;
            it.rec.reason.clear();
            status = "delivered";
            detail = r.reply;
        } else {
            const Failure f = failureOf(r.kind);
            const Decision d = decide(f);
            detail = r.describe(mta_.relay());
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
            status = it.rec.state == MessageState::Injecting ? "uncertain"
                                                             : messageStateName(it.rec.state);
            if (d.endSession)
                endSession(f, detail);
        }
        // The last reply of the batch (or the one that ended the session) is flushed.
        const bool last = k + 1 == sending.size() || r.kind == SmtpResult::Kind::Unreachable ||
                          r.kind == SmtpResult::Kind::Uncertain;
        setSync(last);
        commit("the delivery", [&] {
            stageRow(it.rec);
            // A copy that did not get in: the milter must not count it as delivered.
            if (it.rec.state == MessageState::Deferred || it.rec.state == MessageState::Failed)
                MilterSeen(store_).forget(account_.id, it.uid.uid);
            stageLog(it, status, it.rec.queueId, detail);
        });
        if (status == "delivered") {
            logLine(it, "delivered",
                    "relay=" + mta_.relay() + " queue-id=" +
                        (it.rec.queueId.empty() ? "-" : it.rec.queueId) + " (" + detail + ")");
            ++report_.delivered;
            scheduleDelete(it.uid);
        } else {
            logLine(it, status, "relay=" + mta_.relay() + " (" + detail + ")");
            if (it.rec.state == MessageState::Deferred)
                ++report_.deferred;
            else if (it.rec.state == MessageState::Failed)
                ++report_.failed;
        }
    };

    std::size_t attempted = 0;
    try {
        attempted = mta_.deliverMany(messages, outcome).size();
    } catch (...) {
        if (relaxed) {
            try {
                store_.setCommitSync(true);
            } catch (...) {
            }
        }
        throw;
    }
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

} // namespace popgate
