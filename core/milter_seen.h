// milter_seen.h - the milter's duplicate backstop for reinjected mail: which
// copies of (account, UIDL) popgate-milter let through, with their MTA queue
// id, and the rule that turns that plus the fetcher's ledger into "accept" or
// "discard as duplicate". Same SQL for both dialects ($n placeholders); no
// libmilter here: the milter asks, this answers.
#pragma once

#include "core/message_store.h"
#include "core/store.h"

#include <cstdint>
#include <optional>
#include <string>

namespace popgate
{

/// What the milter does with a copy carrying a valid X-Popgate-Id.
enum class ReinjectedAction {
    Accept,          ///< first copy (or the earlier one failed): record it and let it through
    DiscardInjected, ///< the ledger says injected: the MTA has it already
    DiscardInFlight, ///< an earlier copy passed the milter and the ledger still says injecting
};

/// judgeReinjected - the decision for one reinjected copy. ledger: the state of
/// the (account, UIDL) row, nothing when there is no row; seenQueueId: the queue
/// id of an earlier copy that passed the milter, nothing when none did.
ReinjectedAction judgeReinjected(const std::optional<MessageState>& ledger,
                                 const std::optional<std::string>& seenQueueId);

/// What the milter reads for one reinjected copy: the account, its ledger row's
/// state and the copy that passed before (each nothing when there is none).
struct ReinjectedFacts {
    std::optional<std::int64_t> accountId;   ///< nothing: no account of that name
    std::optional<MessageState> ledger;      ///< judgeReinjected's ledger
    std::optional<std::string> seenQueueId;  ///< judgeReinjected's seenQueueId
};

class MilterSeen
{
public:
    explicit MilterSeen(Store& store) : store_(store) {}

    /// record - remember that a copy of (accountId, uidl) passed with this queue
    /// id (replaces an earlier one). Throws OperationError naming the database.
    void record(std::int64_t accountId, const std::string& uidl, const std::string& queueId);
    /// seenBefore - the queue id of the copy that passed, or nothing. Throws OperationError.
    std::optional<std::string> seenBefore(std::int64_t accountId, const std::string& uidl);
    /// forget - the MTA refused that copy: a later copy must not be taken for a
    /// duplicate. No row is fine. Throws OperationError.
    void forget(std::int64_t accountId, const std::string& uidl);

    /// accountId - the id of the account of that name, or nothing; reads no secret.
    /// Throws OperationError.
    std::optional<std::int64_t> accountId(const std::string& name);
    /// ledgerState - the state of the messages row for (accountId, uidl), or nothing.
    /// Throws OperationError.
    std::optional<MessageState> ledgerState(std::int64_t accountId, const std::string& uidl);
    /// facts - accountId, ledgerState and seenBefore at once: one statement, prepared
    /// once per connection where the driver can (SQLite; the milter's per-message read,
    /// issue Perf), else the three above. Throws OperationError.
    ReinjectedFacts facts(const std::string& account, const std::string& uidl);

private:
    Store& store_;
};

} // namespace popgate
