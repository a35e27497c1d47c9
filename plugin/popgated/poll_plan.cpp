// poll_plan.cpp - the plan stage (see poll.h): the server's UIDL and LIST
// against the account's ledger decide what this poll moves and what it only
// deletes; nextBatch() cuts the next batch, failing at once what is too large.
#include "core/text.h"
#include "plugin/popgated/poll.h"

#include <algorithm>
#include <map>
#include <set>

namespace popgate
{

namespace
{

constexpr std::size_t kBatchMessages = 128;          ///< messages per batch
constexpr std::int64_t kBatchOctets = 1024 * 1024;   ///< announced octets per batch

} // namespace

PlanAction planAction(const MessageRecord& r, std::int64_t now)
{
    switch (r.state) {
    case MessageState::Injected:
    case MessageState::Ignored:
        // Done: only deleted (again, if a server lists it after our QUIT).
        return PlanAction::DeleteOnly;
    case MessageState::Failed:
        // Kept until `message retry`, or failed_retry_polls intervals.
        return r.retryAt == 0 || r.retryAt > now ? PlanAction::Wait : PlanAction::Fetch;
    case MessageState::Deferred:
        return r.retryAt > now ? PlanAction::Wait : PlanAction::Fetch;
    case MessageState::Injecting:
        // A `message release` whose outcome is unknown: the server's copy was
        // screened out already; only deleted, never fetched again. Otherwise
        // the outcome is unknown: sent again, same X-Popgate-Id.
        return r.quarantinePath.empty() ? PlanAction::Fetch : PlanAction::DeleteOnly;
    }
    return PlanAction::Fetch;
}

void Poll::plan()
{
    const auto uids = pop_->uidl();
    std::map<int, std::int64_t> sizes;
    // An empty mailbox (most polls) needs no LIST: one round trip less.
    if (!uids.empty())
        for (const auto& l : pop_->list())
            sizes[l.number] = l.octets;
    auto rows = ledger_.forAccount(account_.id);
    settleJournal(rows);
    report_.listed = static_cast<int>(uids.size());

    // Rows whose message the server no longer lists were deleted (by our QUIT,
    // when a crash kept us from recording it, or by someone else).
    {
        std::set<std::string> listed;
        for (const auto& u : uids)
            listed.insert(u.uid);
        std::vector<std::string> gone;
        for (const auto& [uid, r] : rows)
            if (!r.deleted && !listed.count(uid))
                gone.push_back(uid);
        if (!gone.empty())
            commit("the deleted messages", [&] { ledger_.markDeleted(account_.id, gone); });
    }

    const std::int64_t now = nowSeconds();
    for (const auto& u : uids) {
        auto row = rows.find(u.uid);
        if (row != rows.end()) {
            const MessageRecord& r = row->second;
            const PlanAction action = planAction(r, now);
            if (action == PlanAction::Wait)
                continue;
            if (action == PlanAction::DeleteOnly) {
                if (r.deleted && r.state != MessageState::Injecting)
                    log_.notice(who_ + " uidl=" + escapeText(u.uid, EscapeFor::LogField) +
                                " server lists a message that was deleted already: deleting again");
                scheduleDelete(u);
                continue;
            }
        }
        auto size = sizes.find(u.number);
        Candidate c;
        c.uid = u;
        c.listed = size != sizes.end() ? size->second : -1;
        if (row != rows.end())
            c.row = std::make_unique<MessageRecord>(row->second);
        todo_.push_back(std::move(c));
    }
}

void Poll::settleJournal(std::map<std::string, MessageRecord>& rows)
{
    const auto entries = journal_.read();
    if (entries.empty())
        return;
    // The MTA accepted these; the poll that sent them ended before their
    // group commit. Recorded now, they are deleted, never sent again.
    std::vector<MessageRecord*> settled;
    for (const auto& e : entries) {
        auto row = rows.find(e.uidl);
        if (row == rows.end() || row->second.state != MessageState::Injecting)
            continue;
        row->second.state = MessageState::Injected;
        row->second.queueId = e.queueId;
        row->second.reason.clear();
        settled.push_back(&row->second);
    }
    commit("the delivery journal", [&] {
        for (MessageRecord* r : settled) {
            stageRow(*r);
            LogEntry e;
            e.account = account_.name;
            e.uidl = r->uidl;
            e.messageId = r->messageId;
            e.sender = r->envelopeFrom;
            e.size = r->size;
            e.status = "delivered";
            e.relay = mta_.relay();
            e.queueId = r->queueId;
            e.detail = "recorded from the delivery journal after an interrupted poll";
            pendingLog_.push_back(std::move(e));
        }
    });
    journal_.clear();
    if (!settled.empty())
        log_.notice(who_ + " " + std::to_string(settled.size()) +
                    " delivery(ies) of an interrupted poll recorded from the journal");
}

bool Poll::nextBatch(Batch& batch)
{
    std::int64_t octets = 0;
    batch.items.reserve(std::min(kBatchMessages, todo_.size() - next_));
    while (next_ < todo_.size() && batch.items.size() < kBatchMessages &&
           (batch.items.empty() ||
            octets + std::max<std::int64_t>(todo_[next_].listed, 0) <= kBatchOctets)) {
        const Candidate& c = todo_[next_++];
        Item it;
        it.uid = c.uid;
        it.listed = c.listed;
        it.hadRow = c.row != nullptr;
        if (c.row)
            it.original = *c.row;
        it.rec = it.original;
        it.rec.accountId = account_.id;
        it.rec.uidl = it.uid.uid;
        it.rec.size = it.listed;

        std::string tooLarge;
        if (account_.maxMessageSize > 0 && it.listed > account_.maxMessageSize)
            tooLarge = "message too large: " + std::to_string(it.listed) +
                       " octets, account limit " + std::to_string(account_.maxMessageSize);
        else if (mta_.sizeLimit() > 0 && it.listed > mta_.sizeLimit())
            tooLarge = "message too large: " + std::to_string(it.listed) + " octets, MTA SIZE " +
                       std::to_string(mta_.sizeLimit());
        if (!tooLarge.empty()) {
            const Decision d = decide(Failure::TooLarge);
            if (d.message == MessageOutcome::MarkFailed)
                markFailed(it, tooLarge);
            else {
                it.rec.state = MessageState::Deferred;
                it.rec.reason = tooLarge;
                it.rec.retryAt = nowSeconds() + messageRetryDelay(++it.rec.attempts);
            }
            const std::string status = messageStateName(it.rec.state);
            commit("a refusal", [&] {
                stageRow(it.rec);
                stageLog(it, status, "", tooLarge);
            });
            logLine(it, status, "(" + tooLarge + "; kept on the server)");
            if (it.rec.state == MessageState::Failed)
                ++report_.failed;
            else
                ++report_.deferred;
            continue;
        }
        octets += std::max<std::int64_t>(it.listed, 0);
        batch.items.push_back(std::move(it));
    }
    return !batch.items.empty();
}

} // namespace popgate
