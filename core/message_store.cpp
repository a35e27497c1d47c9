// message_store.cpp - see message_store.h. Upserts use INSERT ... ON CONFLICT,
// which SQLite (3.24+) and PostgreSQL (9.5+) spell the same way.
#include "core/message_store.h"

#include "core/errors.h"
#include "core/rows.h"
#include "core/text.h"

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <algorithm>
#include <set>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace popgate
{

using rows::dbError;
using rows::number;
using rows::text;

namespace
{

const char* const kMessageColumns =
    "id, account_id, uidl, state, deleted, message_id, envelope_from, header_from, size, queue_id, "
    "reason, attempts, retry_at, quarantine_path, created_at, updated_at";

MessageRecord readMessage(RecordSet& rs)
{
    MessageRecord m;
    m.id = number(rs, "id");
    m.accountId = number(rs, "account_id");
    m.uidl = text(rs, "uidl");
    m.state = parseMessageState(text(rs, "state"));
    m.deleted = number(rs, "deleted") != 0;
    m.messageId = text(rs, "message_id");
    m.envelopeFrom = text(rs, "envelope_from");
    m.headerFrom = text(rs, "header_from");
    m.size = number(rs, "size");
    m.queueId = text(rs, "queue_id");
    m.reason = text(rs, "reason");
    m.attempts = static_cast<int>(number(rs, "attempts"));
    m.retryAt = number(rs, "retry_at");
    m.quarantinePath = text(rs, "quarantine_path");
    m.createdAt = number(rs, "created_at");
    m.updatedAt = number(rs, "updated_at");
    return m;
}

// The same columns, in that order, from a prepared statement (core/prepared.h).
MessageRecord readMessage(PreparedStatement& row)
{
    MessageRecord m;
    m.id = row.number(0);
    m.accountId = row.number(1);
    m.uidl = row.text(2);
    m.state = parseMessageState(row.text(3));
    m.deleted = row.number(4) != 0;
    m.messageId = row.text(5);
    m.envelopeFrom = row.text(6);
    m.headerFrom = row.text(7);
    m.size = row.number(8);
    m.queueId = row.text(9);
    m.reason = row.text(10);
    m.attempts = static_cast<int>(row.number(11));
    m.retryAt = row.number(12);
    m.quarantinePath = row.text(13);
    m.createdAt = row.number(14);
    m.updatedAt = row.number(15);
    return m;
}

// The statements of every poll, idle or not (prepared once where the driver can).
const char* const kForAccountSql =
    "SELECT id, account_id, uidl, state, deleted, message_id, envelope_from, header_from, size, "
    "queue_id, reason, attempts, retry_at, quarantine_path, created_at, updated_at "
    "FROM messages WHERE account_id = $1";
const char* const kStatusSql =
    "SELECT last_poll_at, last_success_at, last_error, last_error_at, consecutive_failures, "
    "auth_failures, next_poll_at, debug_until FROM account_status WHERE account_id = $1";
const char* const kSaveStatusSql =
    "INSERT INTO account_status (account_id, last_poll_at, last_success_at, last_error, "
    "last_error_at, consecutive_failures, auth_failures, next_poll_at, debug_until) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (account_id) DO UPDATE SET "
    "last_poll_at = excluded.last_poll_at, last_success_at = excluded.last_success_at, "
    "last_error = excluded.last_error, last_error_at = excluded.last_error_at, "
    "consecutive_failures = excluded.consecutive_failures, "
    "auth_failures = excluded.auth_failures, next_poll_at = excluded.next_poll_at, "
    "debug_until = excluded.debug_until";

// The statements of every batch (issue Perf, goal 3): one row each, prepared once where
// the driver can and run once per row inside the caller's transaction. Poco parses a
// statement again on every execution; the multi-row forms below (kRowsPerStatement
// rows a statement) cost SQLite a parse of up to 240 parameters, whose name lookup
// grows with their number: a third of popgated's instructions per message.
const char* const kSaveMessageSql =
    "INSERT INTO messages (account_id, uidl, state, deleted, message_id, envelope_from, "
    "header_from, size, queue_id, reason, attempts, retry_at, quarantine_path, created_at, "
    "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
    "ON CONFLICT (account_id, uidl) DO UPDATE SET state = excluded.state, "
    "deleted = excluded.deleted, message_id = excluded.message_id, "
    "envelope_from = excluded.envelope_from, header_from = excluded.header_from, "
    "size = excluded.size, queue_id = excluded.queue_id, reason = excluded.reason, "
    "attempts = excluded.attempts, retry_at = excluded.retry_at, "
    "quarantine_path = excluded.quarantine_path, updated_at = excluded.updated_at";
const char* const kLogSql =
    "INSERT INTO message_log (at, account, uidl, message_id, sender, size, status, relay, "
    "queue_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const char* const kDuplicatesSql =
    "SELECT message_id, uidl FROM messages WHERE account_id = $1 AND created_at >= $2 AND "
    "state IN ('injecting', 'injected', 'ignored') AND message_id = $3";

const char* const kLogColumns =
    "id, at, account, uidl, message_id, sender, size, status, relay, queue_id, detail";

LogEntry readLogEntry(RecordSet& rs)
{
    LogEntry e;
    e.id = number(rs, "id");
    e.at = number(rs, "at");
    e.account = text(rs, "account");
    e.uidl = text(rs, "uidl");
    e.messageId = text(rs, "message_id");
    e.sender = text(rs, "sender");
    e.size = number(rs, "size");
    e.status = text(rs, "status");
    e.relay = text(rs, "relay");
    e.queueId = text(rs, "queue_id");
    e.detail = text(rs, "detail");
    return e;
}

// placeholders - "($k, $k+1, ...), (...)" for rows x columns, numbered from first.
std::string placeholders(std::size_t rows, std::size_t columns, std::size_t first = 1)
{
    std::string out;
    std::size_t n = first;
    for (std::size_t r = 0; r < rows; ++r) {
        out += r ? ", (" : "(";
        for (std::size_t c = 0; c < columns; ++c)
            out += (c ? ", $" : "$") + std::to_string(n++);
        out += ")";
    }
    return out;
}

// inList - "$first, $first+1, ..." for an IN (...) of n values.
std::string inList(std::size_t n, std::size_t first)
{
    const std::string row = placeholders(1, n, first); // "($first, ...)"
    return row.substr(1, row.size() - 2);
}

constexpr std::size_t kRowsPerStatement = 16;

// forgetRecipients - per-recipient rows whose message row is gone (0008).
void forgetRecipients(Poco::Data::Session& session)
{
    session << "DELETE FROM message_recipients WHERE NOT EXISTS (SELECT 1 FROM messages m "
               "WHERE m.account_id = message_recipients.account_id AND "
               "m.uidl = message_recipients.uidl)",
        now;
}

} // namespace

std::string messageStateName(MessageState state)
{
    switch (state) {
    case MessageState::Injecting:
        return "injecting";
    case MessageState::Injected:
        return "injected";
    case MessageState::Ignored:
        return "ignored";
    case MessageState::Failed:
        return "failed";
    case MessageState::Deferred:
        return "deferred";
    }
    return "?";
}

MessageState parseMessageState(const std::string& text)
{
    for (MessageState s : {MessageState::Injecting, MessageState::Injected, MessageState::Ignored,
                           MessageState::Failed, MessageState::Deferred})
        if (messageStateName(s) == text)
            return s;
    throw InputError("unknown message state '" + flatten(text) +
                     "' (expected injecting, injected, ignored, failed or deferred)");
}

std::map<std::string, MessageRecord> MessageStore::forAccount(std::int64_t accountId)
{
    std::map<std::string, MessageRecord> out;
    if (PreparedCache* cache = store_.prepared()) { // every poll: prepared once
        Prepared select(cache->get(kForAccountSql));
        select->bind(1, accountId);
        while (select->step()) {
            MessageRecord m = readMessage(*select);
            out.emplace(m.uidl, std::move(m));
        }
        return out;
    }
    try {
        Statement select(store_.session());
        select << kForAccountSql, bind(accountId);
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
            MessageRecord m = readMessage(rs);
            out.emplace(m.uidl, std::move(m));
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the message ledger", e);
    }
    return out;
}

std::optional<MessageRecord> MessageStore::find(std::int64_t id)
{
    try {
        Statement select(store_.session());
        select << "SELECT " << kMessageColumns << " FROM messages WHERE id = $1", bind(id);
        select.execute();
        RecordSet rs(select);
        if (!rs.moveFirst())
            return std::nullopt;
        return readMessage(rs);
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read message " + std::to_string(id), e);
    }
}

void MessageStore::save(MessageRecord& m)
{
    const std::int64_t time = nowSeconds(); // not "now": that is Poco's execute manipulator
    if (m.createdAt == 0)
        m.createdAt = time;
    m.updatedAt = time;
    try {
        store_.session()
            << "INSERT INTO messages (account_id, uidl, state, deleted, message_id, envelope_from, "
               "header_from, size, queue_id, reason, attempts, retry_at, quarantine_path, "
               "created_at, "
               "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
               "$15) "
               "ON CONFLICT (account_id, uidl) DO UPDATE SET state = excluded.state, "
               "deleted = excluded.deleted, message_id = excluded.message_id, "
               "envelope_from = excluded.envelope_from, header_from = excluded.header_from, "
               "size = excluded.size, queue_id = excluded.queue_id, reason = excluded.reason, "
               "attempts = excluded.attempts, retry_at = excluded.retry_at, "
               "quarantine_path = excluded.quarantine_path, updated_at = excluded.updated_at",
            bind(Poco::Int64(m.accountId)), bind(m.uidl), bind(messageStateName(m.state)),
            bind(int(m.deleted)), bind(m.messageId), bind(m.envelopeFrom), bind(m.headerFrom),
            bind(Poco::Int64(m.size)), bind(m.queueId), bind(m.reason), bind(m.attempts),
            bind(Poco::Int64(m.retryAt)), bind(m.quarantinePath), bind(Poco::Int64(m.createdAt)),
            bind(Poco::Int64(m.updatedAt)), now;
        if (m.id == 0) {
            Poco::Int64 id = 0;
            store_.session() << "SELECT id FROM messages WHERE account_id = $1 AND uidl = $2",
                bind(Poco::Int64(m.accountId)), bind(m.uidl), into(id), now;
            m.id = id;
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot record message uidl=" + flatten(m.uidl), e);
    }
}

bool MessageStore::claim(MessageRecord& m, MessageState expected, int seenAttempts)
{
    const std::int64_t time = nowSeconds();
    try {
        Statement update(store_.session());
        update << "UPDATE messages SET state = $1, reason = $2, attempts = $3, retry_at = $4, "
                  "updated_at = $5 WHERE id = $6 AND state = $7 AND attempts = $8",
            bind(messageStateName(m.state)), bind(m.reason), bind(m.attempts),
            bind(Poco::Int64(m.retryAt)), bind(Poco::Int64(time)), bind(Poco::Int64(m.id)),
            bind(messageStateName(expected)), bind(seenAttempts);
        if (update.execute() == 0)
            return false;
        m.updatedAt = time;
        return true;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot claim message " + std::to_string(m.id), e);
    }
}

void MessageStore::saveMany(const std::vector<MessageRecord*>& records)
{
    const std::int64_t time = nowSeconds();
    if (PreparedCache* cache = store_.prepared()) { // every batch: prepared once
        for (MessageRecord* r : records) {
            MessageRecord& m = *r;
            if (m.createdAt == 0)
                m.createdAt = time;
            m.updatedAt = time;
            Prepared upsert(cache->get(kSaveMessageSql));
            upsert->bind(1, m.accountId);
            upsert->bind(2, m.uidl);
            upsert->bind(3, messageStateName(m.state));
            upsert->bind(4, std::int64_t(m.deleted));
            upsert->bind(5, m.messageId);
            upsert->bind(6, m.envelopeFrom);
            upsert->bind(7, m.headerFrom);
            upsert->bind(8, m.size);
            upsert->bind(9, m.queueId);
            upsert->bind(10, m.reason);
            upsert->bind(11, std::int64_t(m.attempts));
            upsert->bind(12, m.retryAt);
            upsert->bind(13, m.quarantinePath);
            upsert->bind(14, m.createdAt);
            upsert->bind(15, m.updatedAt);
            upsert->step();
        }
        return;
    }
    try {
        for (std::size_t first = 0; first < records.size(); first += kRowsPerStatement) {
            const std::size_t rows = std::min(kRowsPerStatement, records.size() - first);
            Statement upsert(store_.session());
            upsert << "INSERT INTO messages (account_id, uidl, state, deleted, message_id, "
                      "envelope_from, header_from, size, queue_id, reason, attempts, retry_at, "
                      "quarantine_path, created_at, updated_at) VALUES "
                   << placeholders(rows, 15)
                   << " ON CONFLICT (account_id, uidl) DO UPDATE SET state = excluded.state, "
                      "deleted = excluded.deleted, message_id = excluded.message_id, "
                      "envelope_from = excluded.envelope_from, header_from = excluded.header_from, "
                      "size = excluded.size, queue_id = excluded.queue_id, reason = "
                      "excluded.reason, attempts = excluded.attempts, retry_at = excluded.retry_at, "
                      "quarantine_path = excluded.quarantine_path, updated_at = excluded.updated_at";
            for (std::size_t i = first; i < first + rows; ++i) {
                MessageRecord& m = *records[i];
                if (m.createdAt == 0)
                    m.createdAt = time;
                m.updatedAt = time;
                upsert, bind(Poco::Int64(m.accountId)), bind(m.uidl), bind(messageStateName(m.state)),
                    bind(int(m.deleted)), bind(m.messageId), bind(m.envelopeFrom),
                    bind(m.headerFrom), bind(Poco::Int64(m.size)), bind(m.queueId), bind(m.reason),
                    bind(m.attempts), bind(Poco::Int64(m.retryAt)), bind(m.quarantinePath),
                    bind(Poco::Int64(m.createdAt)), bind(Poco::Int64(m.updatedAt));
            }
            upsert.execute();
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot record " + std::to_string(records.size()) + " messages", e);
    }
}

void MessageStore::markDeleted(std::int64_t accountId, const std::vector<std::string>& uidls)
{
    if (uidls.empty())
        return;
    try {
        Transaction tx(store_.session());
        for (std::size_t first = 0; first < uidls.size(); first += kRowsPerStatement) {
            const std::size_t rows = std::min(kRowsPerStatement, uidls.size() - first);
            const std::string in = inList(rows, 3);
            Statement update(store_.session());
            update << "UPDATE messages SET deleted = 1, updated_at = $1 "
                      "WHERE account_id = $2 AND uidl IN ("
                   << in << ")",
                bind(Poco::Int64(nowSeconds())), bind(Poco::Int64(accountId));
            for (std::size_t i = first; i < first + rows; ++i)
                update, bind(uidls[i]);
            update.execute();
        }
        tx.commit();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot record deletions", e);
    }
}

std::optional<std::string> MessageStore::duplicateOf(std::int64_t accountId,
                                                     const std::string& messageId,
                                                     const std::string& uidl, std::int64_t since)
{
    if (messageId.empty())
        return std::nullopt;
    try {
        std::vector<std::string> found;
        store_.session() << "SELECT uidl FROM messages WHERE account_id = $1 AND message_id = $2 "
                            "AND uidl <> $3 AND created_at >= $4 AND state IN ('injecting', "
                            "'injected', 'ignored')",
            bind(Poco::Int64(accountId)), bind(messageId), bind(uidl), bind(Poco::Int64(since)),
            into(found), now;
        if (found.empty())
            return std::nullopt;
        return found.front();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot look up Message-ID " + flatten(messageId), e);
    }
}

std::map<std::string, std::vector<std::string>>
MessageStore::duplicatesOf(std::int64_t accountId, const std::vector<std::string>& messageIds,
                           std::int64_t since)
{
    std::map<std::string, std::vector<std::string>> out;
    if (PreparedCache* cache = store_.prepared()) { // every batch: prepared once
        std::set<std::string> asked; // as IN (...) does: a Message-ID listed twice answers once
        for (const std::string& messageId : messageIds) {
            if (!asked.insert(messageId).second)
                continue;
            Prepared select(cache->get(kDuplicatesSql));
            select->bind(1, accountId);
            select->bind(2, since);
            select->bind(3, messageId);
            while (select->step())
                out[select->text(0)].push_back(select->text(1));
        }
        return out;
    }
    try {
        for (std::size_t first = 0; first < messageIds.size(); first += kRowsPerStatement) {
            const std::size_t rows = std::min(kRowsPerStatement, messageIds.size() - first);
            const std::string in = inList(rows, 3);
            Statement select(store_.session());
            select << "SELECT message_id, uidl FROM messages WHERE account_id = $1 AND "
                      "created_at >= $2 AND state IN ('injecting', 'injected', 'ignored') AND "
                      "message_id IN ("
                   << in << ")",
                bind(Poco::Int64(accountId)), bind(Poco::Int64(since));
            for (std::size_t i = first; i < first + rows; ++i)
                select, bind(messageIds[i]);
            select.execute();
            RecordSet rs(select);
            for (bool more = rs.moveFirst(); more; more = rs.moveNext())
                out[text(rs, "message_id")].push_back(text(rs, "uidl"));
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot look up Message-IDs", e);
    }
    return out;
}

std::size_t MessageStore::forget(std::int64_t before)
{
    try {
        Statement del(store_.session());
        del << "DELETE FROM messages WHERE deleted = 1 AND updated_at < $1",
            bind(Poco::Int64(before));
        const std::size_t n = del.execute();
        forgetRecipients(store_.session());
        return n;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot prune the message ledger", e);
    }
}

std::vector<ListedMessage> MessageStore::list(const MessageQuery& q)
{
    std::vector<ListedMessage> out;
    // Newest first with the limit, then turned around: the last rows are the newest.
    const Poco::Int64 limit = q.limit > 0 ? q.limit : (Poco::Int64(1) << 62);
    try {
        Statement select(store_.session());
        select << "SELECT m.id AS id, m.account_id AS account_id, m.uidl AS uidl, m.state AS "
                  "state, m.deleted AS deleted, m.message_id AS message_id, m.envelope_from AS "
                  "envelope_from, m.header_from AS header_from, m.size AS size, m.queue_id AS "
                  "queue_id, m.reason AS reason, m.attempts AS attempts, m.retry_at AS retry_at, "
                  "m.quarantine_path AS quarantine_path, m.created_at AS created_at, "
                  "m.updated_at AS updated_at, a.name AS account "
                  "FROM messages m JOIN accounts a ON a.id = m.account_id "
                  "WHERE ($1 = 0 OR m.account_id = $2) AND ($3 = '' OR m.state = $4) AND "
                  "m.created_at >= $5 ORDER BY m.created_at DESC, m.id DESC LIMIT $6",
            bind(Poco::Int64(q.accountId)), bind(Poco::Int64(q.accountId)), bind(q.state),
            bind(q.state), bind(Poco::Int64(q.since)), bind(limit);
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out.push_back({readMessage(rs), text(rs, "account")});
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the message ledger", e);
    }
    return {out.rbegin(), out.rend()};
}

std::vector<MessageRecord> MessageStore::quarantined(std::int64_t accountId)
{
    std::vector<MessageRecord> out;
    try {
        Statement select(store_.session());
        select << "SELECT " << kMessageColumns
               << " FROM messages WHERE quarantine_path <> '' AND "
                  "($1 = 0 OR account_id = $2) ORDER BY created_at, id",
            bind(Poco::Int64(accountId)), bind(Poco::Int64(accountId));
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out.push_back(readMessage(rs));
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the quarantine", e);
    }
    return out;
}

bool MessageStore::dropQuarantinePath(std::int64_t id, const std::string& path,
                                      const std::string& reason)
{
    try {
        Statement update(store_.session());
        update << "UPDATE messages SET quarantine_path = '', reason = $1, updated_at = $2 "
                  "WHERE id = $3 AND state = 'ignored' AND quarantine_path = $4",
            bind(reason), bind(Poco::Int64(nowSeconds())), bind(Poco::Int64(id)), bind(path);
        return update.execute() == 1;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot update message " + std::to_string(id), e);
    }
}

std::vector<LogEntry> MessageStore::logOf(const std::string& account, const std::string& uidl)
{
    std::vector<LogEntry> out;
    try {
        Statement select(store_.session());
        select << "SELECT " << kLogColumns
               << " FROM message_log WHERE account = $1 AND uidl = $2 ORDER BY id",
            bind(account), bind(uidl);
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out.push_back(readLogEntry(rs));
    } catch (const Poco::Exception& ex) {
        throw dbError(store_, "cannot read the message log", ex);
    }
    return out;
}

std::vector<LogEntry> MessageStore::logAfter(const LogQuery& q, std::int64_t afterId)
{
    std::vector<LogEntry> out;
    try {
        Statement select(store_.session());
        select << "SELECT " << kLogColumns
               << " FROM message_log WHERE id > $1 AND ($2 = '' OR account = $3) AND at >= $4 "
                  "AND ($5 = '' OR status = $6) ORDER BY id LIMIT $7",
            bind(Poco::Int64(afterId)), bind(q.account), bind(q.account),
            bind(Poco::Int64(q.since)), bind(q.status), bind(q.status), bind(q.limit);
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out.push_back(readLogEntry(rs));
    } catch (const Poco::Exception& ex) {
        throw dbError(store_, "cannot read the message log", ex);
    }
    return out;
}

bool MessageStore::logMentions(const std::string& account)
{
    try {
        std::vector<Poco::Int64> found;
        store_.session() << "SELECT id FROM message_log WHERE account = $1 LIMIT 1",
            bind(account), into(found), now;
        return !found.empty();
    } catch (const Poco::Exception& ex) {
        throw dbError(store_, "cannot read the message log", ex);
    }
}

void MessageStore::log(const LogEntry& e)
{
    try {
        store_.session()
            << "INSERT INTO message_log (at, account, uidl, message_id, sender, size, status, "
               "relay, queue_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            bind(Poco::Int64(e.at ? e.at : nowSeconds())), bind(e.account), bind(e.uidl),
            bind(e.messageId), bind(e.sender), bind(Poco::Int64(e.size)), bind(e.status),
            bind(e.relay), bind(e.queueId), bind(e.detail), now;
    } catch (const Poco::Exception& ex) {
        throw dbError(store_, "cannot write the message log", ex);
    }
}

void MessageStore::logMany(const std::vector<LogEntry>& entries)
{
    const std::int64_t time = nowSeconds();
    if (PreparedCache* cache = store_.prepared()) { // every batch: prepared once
        for (const LogEntry& e : entries) {
            Prepared insert(cache->get(kLogSql));
            insert->bind(1, e.at ? e.at : time);
            insert->bind(2, e.account);
            insert->bind(3, e.uidl);
            insert->bind(4, e.messageId);
            insert->bind(5, e.sender);
            insert->bind(6, e.size);
            insert->bind(7, e.status);
            insert->bind(8, e.relay);
            insert->bind(9, e.queueId);
            insert->bind(10, e.detail);
            insert->step();
        }
        return;
    }
    try {
        for (std::size_t first = 0; first < entries.size(); first += kRowsPerStatement) {
            const std::size_t rows = std::min(kRowsPerStatement, entries.size() - first);
            Statement insert(store_.session());
            insert << "INSERT INTO message_log (at, account, uidl, message_id, sender, size, "
                      "status, relay, queue_id, detail) VALUES "
                   << placeholders(rows, 10);
            for (std::size_t i = first; i < first + rows; ++i) {
                const LogEntry& e = entries[i];
                insert, bind(Poco::Int64(e.at ? e.at : time)), bind(e.account), bind(e.uidl),
                    bind(e.messageId), bind(e.sender), bind(Poco::Int64(e.size)), bind(e.status),
                    bind(e.relay), bind(e.queueId), bind(e.detail);
            }
            insert.execute();
        }
    } catch (const Poco::Exception& ex) {
        throw dbError(store_, "cannot write the message log", ex);
    }
}

std::vector<LogEntry> MessageStore::logEntries(const LogQuery& q)
{
    std::vector<LogEntry> out;
    try {
        Statement select(store_.session());
        select << "SELECT id, at, account, uidl, message_id, sender, size, status, relay, "
                  "queue_id, detail "
                  "FROM message_log WHERE ($1 = '' OR account = $2) AND at >= $3 AND ($4 = '' OR "
                  "status = $5) "
                  "ORDER BY id DESC LIMIT $6",
            bind(q.account), bind(q.account), bind(Poco::Int64(q.since)), bind(q.status),
            bind(q.status), bind(q.limit);
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out.push_back(readLogEntry(rs));
    } catch (const Poco::Exception& ex) {
        throw dbError(store_, "cannot read the message log", ex);
    }
    return {out.rbegin(), out.rend()};
}

AccountStatus MessageStore::status(std::int64_t accountId)
{
    AccountStatus s;
    s.accountId = accountId;
    if (PreparedCache* cache = store_.prepared()) { // every poll: prepared once
        Prepared select(cache->get(kStatusSql));
        select->bind(1, accountId);
        if (select->step()) {
            s.lastPollAt = select->number(0);
            s.lastSuccessAt = select->number(1);
            s.lastError = select->text(2);
            s.lastErrorAt = select->number(3);
            s.consecutiveFailures = static_cast<int>(select->number(4));
            s.authFailures = static_cast<int>(select->number(5));
            s.nextPollAt = select->number(6);
            s.debugUntil = select->number(7);
        }
        return s;
    }
    try {
        Statement select(store_.session());
        select << kStatusSql, bind(Poco::Int64(accountId));
        select.execute();
        RecordSet rs(select);
        if (rs.moveFirst()) {
            s.lastPollAt = number(rs, "last_poll_at");
            s.lastSuccessAt = number(rs, "last_success_at");
            s.lastError = text(rs, "last_error");
            s.lastErrorAt = number(rs, "last_error_at");
            s.consecutiveFailures = static_cast<int>(number(rs, "consecutive_failures"));
            s.authFailures = static_cast<int>(number(rs, "auth_failures"));
            s.nextPollAt = number(rs, "next_poll_at");
            s.debugUntil = number(rs, "debug_until");
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read account status", e);
    }
    return s;
}

void MessageStore::saveStatus(const AccountStatus& s)
{
    if (PreparedCache* cache = store_.prepared()) { // every poll: prepared once
        Prepared upsert(cache->get(kSaveStatusSql));
        upsert->bind(1, s.accountId);
        upsert->bind(2, s.lastPollAt);
        upsert->bind(3, s.lastSuccessAt);
        upsert->bind(4, s.lastError);
        upsert->bind(5, s.lastErrorAt);
        upsert->bind(6, s.consecutiveFailures);
        upsert->bind(7, s.authFailures);
        upsert->bind(8, s.nextPollAt);
        upsert->bind(9, s.debugUntil);
        upsert->step();
        return;
    }
    try {
        store_.session() << kSaveStatusSql,
            bind(Poco::Int64(s.accountId)), bind(Poco::Int64(s.lastPollAt)),
            bind(Poco::Int64(s.lastSuccessAt)), bind(s.lastError), bind(Poco::Int64(s.lastErrorAt)),
            bind(s.consecutiveFailures), bind(s.authFailures), bind(Poco::Int64(s.nextPollAt)),
            bind(Poco::Int64(s.debugUntil)), now;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot save account status", e);
    }
}

// ---- per-recipient ledger (0008, domain mailboxes) --------------------------

std::string recipientStateName(RecipientState state)
{
    switch (state) {
    case RecipientState::Pending:
        return "pending";
    case RecipientState::Delivered:
        return "delivered";
    case RecipientState::Deferred:
        return "deferred";
    case RecipientState::Failed:
        return "failed";
    case RecipientState::Refused:
        return "refused";
    }
    return "?";
}

RecipientState parseRecipientState(const std::string& text)
{
    for (RecipientState s :
         {RecipientState::Pending, RecipientState::Delivered, RecipientState::Deferred,
          RecipientState::Failed, RecipientState::Refused})
        if (text == recipientStateName(s))
            return s;
    throw InputError("unknown recipient state '" + flatten(text).substr(0, 40) +
                     "' (expected pending, delivered, deferred, failed or refused)");
}

namespace
{

RecipientRecord readRecipient(RecordSet& rs)
{
    RecipientRecord r;
    r.accountId = number(rs, "account_id");
    r.uidl = text(rs, "uidl");
    r.recipient = text(rs, "recipient");
    r.state = parseRecipientState(text(rs, "state"));
    r.messageId = text(rs, "message_id");
    r.queueId = text(rs, "queue_id");
    r.reason = text(rs, "reason");
    r.updatedAt = number(rs, "updated_at");
    return r;
}

const char* const kRecipientColumns =
    "account_id, uidl, recipient, state, message_id, queue_id, reason, updated_at";

} // namespace

std::vector<RecipientRecord> MessageStore::recipientsOf(std::int64_t accountId,
                                                        const std::string& uidl)
{
    auto many = recipientsOfMany(accountId, {uidl});
    return many[uidl];
}

std::map<std::string, std::vector<RecipientRecord>>
MessageStore::recipientsOfMany(std::int64_t accountId, const std::vector<std::string>& uidls)
{
    std::map<std::string, std::vector<RecipientRecord>> out;
    try {
        for (std::size_t first = 0; first < uidls.size(); first += kRowsPerStatement) {
            const std::size_t rows = std::min(kRowsPerStatement, uidls.size() - first);
            Statement select(store_.session());
            select << "SELECT " << kRecipientColumns
                   << " FROM message_recipients WHERE account_id = $1 AND uidl IN ("
                   << inList(rows, 2) << ") ORDER BY uidl, recipient",
                bind(Poco::Int64(accountId));
            for (std::size_t i = first; i < first + rows; ++i)
                select, bind(uidls[i]);
            select.execute();
            RecordSet rs(select);
            for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
                RecipientRecord r = readRecipient(rs);
                out[r.uidl].push_back(std::move(r));
            }
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the recipients of messages", e);
    }
    return out;
}

void MessageStore::saveRecipients(std::vector<RecipientRecord>& rows)
{
    const std::int64_t at = nowSeconds();
    try {
        for (RecipientRecord& r : rows) {
            r.updatedAt = at;
            store_.session()
                << "INSERT INTO message_recipients (" << kRecipientColumns
                << ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (account_id, uidl, "
                   "recipient) DO UPDATE SET state = excluded.state, message_id = "
                   "excluded.message_id, queue_id = excluded.queue_id, reason = excluded.reason, "
                   "updated_at = excluded.updated_at",
                bind(Poco::Int64(r.accountId)), bind(r.uidl), bind(r.recipient),
                bind(recipientStateName(r.state)), bind(r.messageId), bind(r.queueId),
                bind(r.reason), bind(Poco::Int64(r.updatedAt)), now;
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot record the recipients of a message", e);
    }
}

std::map<std::string, std::vector<std::pair<std::string, std::string>>>
MessageStore::recipientsHaving(std::int64_t accountId, const std::vector<std::string>& messageIds,
                               std::int64_t since)
{
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> out;
    try {
        for (std::size_t first = 0; first < messageIds.size(); first += kRowsPerStatement) {
            const std::size_t rows = std::min(kRowsPerStatement, messageIds.size() - first);
            Statement select(store_.session());
            select << "SELECT message_id, uidl, recipient FROM message_recipients WHERE "
                      "account_id = $1 AND updated_at >= $2 AND state IN ('pending', "
                      "'delivered') AND message_id IN ("
                   << inList(rows, 3) << ")",
                bind(Poco::Int64(accountId)), bind(Poco::Int64(since));
            for (std::size_t i = first; i < first + rows; ++i)
                select, bind(messageIds[i]);
            select.execute();
            RecordSet rs(select);
            for (bool more = rs.moveFirst(); more; more = rs.moveNext())
                out[text(rs, "message_id")].emplace_back(text(rs, "uidl"), text(rs, "recipient"));
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot look up the recipients of Message-IDs", e);
    }
    return out;
}

} // namespace popgate
