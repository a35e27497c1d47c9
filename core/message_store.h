// message_store.h - the fetcher's durable state on top of Store: the
// per-(account, UIDL) ledger that makes "never twice" hold across crashes,
// the message log operators query, and each account's poll status.
// Same SQL for both dialects ($n placeholders, bound values only).
#pragma once

#include "core/store.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace popgate
{

enum class MessageState {
    Injecting, ///< about to be handed to the MTA; outcome unknown after a crash
    Injected,  ///< the MTA said 250; never handed over again
    Ignored,   ///< a filter, loop or duplicate rule kept it out; quarantined
    Failed,    ///< the MTA refused it for good (5xx); kept on the server
    Deferred,  ///< the MTA said 4xx; kept on the server, retried at retryAt
};

/// messageStateName / parseMessageState - "injecting", "injected", ...;
/// parse throws InputError naming the accepted values.
std::string messageStateName(MessageState state);
MessageState parseMessageState(const std::string& text);

struct MessageRecord {
    std::int64_t id = 0;
    std::int64_t accountId = 0;
    std::string uidl;
    MessageState state = MessageState::Injecting;
    bool deleted = false; ///< DELE sent and QUIT confirmed it
    std::string messageId;
    std::string envelopeFrom;
    std::string headerFrom;
    std::int64_t size = 0;
    std::string queueId;
    std::string reason;
    int attempts = 0;
    std::int64_t retryAt = 0;
    std::string quarantinePath;
    std::int64_t createdAt = 0;
    std::int64_t updatedAt = 0;
};

/// Where one recipient of a domain-mailbox message stands (message_recipients).
enum class RecipientState {
    Pending,   ///< to be handed over (or on its way: outcome unknown after a crash)
    Delivered, ///< in a transaction the MTA accepted with 250: never handed over again
    Deferred,  ///< 4xx to its RCPT (or to the whole message): tried again with it
    Failed,    ///< 5xx to its RCPT: not tried again but by `message retry`
    Refused,   ///< popgate's own rule (outside local-domains): never handed over
};

/// recipientStateName / parseRecipientState - "pending", "delivered", ...
std::string recipientStateName(RecipientState state);
RecipientState parseRecipientState(const std::string& text);

struct RecipientRecord {
    std::int64_t accountId = 0;
    std::string uidl;
    std::string recipient;
    RecipientState state = RecipientState::Pending;
    std::string messageId;
    std::string queueId;
    std::string reason;
    std::int64_t updatedAt = 0;
};

struct LogEntry {
    std::int64_t id = 0; ///< the row's id (increasing), set when read back
    std::int64_t at = 0;
    std::string account;
    std::string uidl;
    std::string messageId;
    std::string sender;
    std::int64_t size = 0;
    std::string status; ///< delivered, ignored, deferred, failed, poll, error, released
    std::string relay;
    std::string queueId;
    std::string detail;
};

struct LogQuery {
    std::string account; ///< empty: all
    std::int64_t since = 0;
    std::string status; ///< empty: all
    int limit = 1000;
};

/// What `message list` asks for: rows sorted by the time they were first recorded.
struct MessageQuery {
    std::int64_t accountId = 0; ///< 0: all accounts
    std::string state;          ///< empty: all (else a messageStateName)
    std::int64_t since = 0;     ///< created_at >= since
    std::int64_t limit = 0;     ///< the newest `limit` rows; 0: all
};

/// A ledger row with its account's name (for listing).
struct ListedMessage {
    MessageRecord record;
    std::string account;
};

struct AccountStatus {
    std::int64_t accountId = 0;
    std::int64_t lastPollAt = 0;
    std::int64_t lastSuccessAt = 0;
    std::string lastError;
    std::int64_t lastErrorAt = 0;
    int consecutiveFailures = 0;
    int authFailures = 0;
    std::int64_t nextPollAt = 0;
    std::int64_t debugUntil = 0;
};

class MessageStore
{
public:
    explicit MessageStore(Store& store) : store_(store) {}

    /// forAccount - every ledger row of the account, by UIDL.
    std::map<std::string, MessageRecord> forAccount(std::int64_t accountId);
    /// find - one row by id, or nothing.
    std::optional<MessageRecord> find(std::int64_t id);
    /// save - insert or update by (accountId, uidl); sets id and times.
    void save(MessageRecord& record);
    /// claim - compare-and-set for a writer outside a poll (`message release`):
    /// write the row's state, reason, attempts and retry time only if it still
    /// says `expected` with `seenAttempts` attempts, as when the caller read it;
    /// false when another writer changed it first (on PostgreSQL two
    /// transactions can both read the old row; only one of them wins here).
    bool claim(MessageRecord& record, MessageState expected, int seenAttempts);
    /// saveMany - save() for many rows, a few multi-row statements instead of
    /// one each (ids are not read back). Call inside a Transaction.
    void saveMany(const std::vector<MessageRecord*>& records);
    /// markDeleted - the server confirmed these DELEs (QUIT said +OK).
    void markDeleted(std::int64_t accountId, const std::vector<std::string>& uidls);
    /// duplicateOf - the UIDL of another message of this account with the same
    /// Message-ID handed over or ignored since `since`; nothing if none.
    std::optional<std::string> duplicateOf(std::int64_t accountId, const std::string& messageId,
                                           const std::string& uidl, std::int64_t since);
    /// duplicatesOf - duplicateOf() for many Message-IDs in one query: for each
    /// one that has rows, the UIDLs of those rows (the caller skips its own).
    std::map<std::string, std::vector<std::string>>
    duplicatesOf(std::int64_t accountId, const std::vector<std::string>& messageIds,
                 std::int64_t since);
    /// recipientsOf - the per-recipient rows of one message (envelope accounts;
    /// none for a fixed account's), in the order they were first written.
    std::vector<RecipientRecord> recipientsOf(std::int64_t accountId, const std::string& uidl);
    /// recipientsOfMany - recipientsOf() for many messages of an account: UIDL -> rows.
    std::map<std::string, std::vector<RecipientRecord>>
    recipientsOfMany(std::int64_t accountId, const std::vector<std::string>& uidls);
    /// saveRecipients - insert or update by (account, uidl, recipient); sets
    /// updatedAt. Call inside the Transaction that saves the message's row.
    void saveRecipients(std::vector<RecipientRecord>& rows);
    /// recipientsHaving - for each Message-ID, the (UIDL, recipient) pairs of this
    /// account that were handed it or are on their way (delivered, pending) since
    /// `since`: the same Message-ID is delivered once per recipient.
    std::map<std::string, std::vector<std::pair<std::string, std::string>>>
    recipientsHaving(std::int64_t accountId, const std::vector<std::string>& messageIds,
                     std::int64_t since);
    /// forget - drop the ledger rows of deleted messages older than `before`
    /// (and their per-recipient rows).
    std::size_t forget(std::int64_t before);

    /// list - the rows query asks for, oldest first (created_at, then id); with a
    /// limit, the newest `limit` of them. Throws OperationError.
    std::vector<ListedMessage> list(const MessageQuery& query);
    /// quarantined - the rows of the account (0: all) that name a quarantined copy,
    /// oldest first: `ignored` ones, and `injecting` ones a release is sending.
    /// Throws OperationError.
    std::vector<MessageRecord> quarantined(std::int64_t accountId = 0);
    /// dropQuarantinePath - the row forgets its quarantined copy (path cleared, reason
    /// noted) if it is still `ignored` with that path; false when it changed meanwhile
    /// (released, deleted by someone else). Call inside the Transaction that removes the
    /// file, so that the row and the file go together. Throws OperationError.
    bool dropQuarantinePath(std::int64_t id, const std::string& path, const std::string& reason);
    /// logOf - the message log's lines of one message (account and UIDL), oldest first.
    std::vector<LogEntry> logOf(const std::string& account, const std::string& uidl);
    /// logAfter - log lines with an id above afterId matching query (limit: at most so
    /// many), oldest first: what `log --follow` prints next. Throws OperationError.
    std::vector<LogEntry> logAfter(const LogQuery& query, std::int64_t afterId);
    /// logMentions - true when some log line names the account (it may be gone now).
    bool logMentions(const std::string& account);

    /// log - append to the message log.
    void log(const LogEntry& entry);
    /// logMany - log() for many entries, in a few multi-row statements.
    void logMany(const std::vector<LogEntry>& entries);
    /// logEntries - newest last.
    std::vector<LogEntry> logEntries(const LogQuery& query);

    /// status / saveStatus - an account's poll status (zeros when never polled).
    AccountStatus status(std::int64_t accountId);
    void saveStatus(const AccountStatus& status);

private:
    Store& store_;
};

} // namespace popgate
