// milter_seen.cpp - see milter_seen.h. The upsert uses INSERT ... ON CONFLICT,
// which SQLite (3.24+) and PostgreSQL (9.5+) spell the same way.
#include "core/milter_seen.h"

#include "core/errors.h"
#include "core/rows.h"
#include "core/text.h"

#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>

using namespace Poco::Data::Keywords;
using Poco::Data::Statement;

namespace popgate
{

using rows::dbError;

namespace
{

// The milter's statements for every reinjected message (prepared once where the driver can).
// The LEFT JOINs keep the account row when the ledger or milter_seen has none; the
// key columns (NOT NULL in their tables) tell a missing row from an empty value.
// $1 comes first in the text: SQLite numbers $-parameters in the order they appear.
const char* const kFactsSql =
    "SELECT a.id, m.account_id, m.state, s.account_id, s.queue_id "
    "FROM (SELECT id FROM accounts WHERE name = $1) a "
    "LEFT JOIN messages m ON m.account_id = a.id AND m.uidl = $2 "
    "LEFT JOIN milter_seen s ON s.account_id = a.id AND s.uidl = $2";
const char* const kRecordSql =
    "INSERT INTO milter_seen (account_id, uidl, queue_id, seen_at) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, uidl) DO UPDATE SET "
    "queue_id = excluded.queue_id, seen_at = excluded.seen_at";

} // namespace

ReinjectedAction judgeReinjected(const std::optional<MessageState>& ledger,
                                 const std::optional<std::string>& seenQueueId)
{
    // Injected: popgated recorded the MTA's 250, so this copy is the one too many.
    if (ledger == MessageState::Injected)
        return ReinjectedAction::DiscardInjected;
    // Injecting and a copy passed already: popgated lost the reply to that copy
    // (timeout, crash) and resent it. A refused copy is forgotten by popgated,
    // so what remains here was accepted by this milter.
    if (ledger == MessageState::Injecting && seenQueueId)
        return ReinjectedAction::DiscardInFlight;
    return ReinjectedAction::Accept;
}

void MilterSeen::record(std::int64_t accountId, const std::string& uidl, const std::string& queueId)
{
    // A commit of its own, synchronous as every commit of the Store (FULL on SQLite):
    // the row is on disk before the milter answers the end of the message, so a copy
    // the MTA queued is known after a power loss too (ARCHITECTURE.md, the uncertain window).
    if (PreparedCache* cache = store_.prepared()) {
        Prepared upsert(cache->get(kRecordSql));
        upsert->bind(1, accountId);
        upsert->bind(2, uidl);
        upsert->bind(3, queueId);
        upsert->bind(4, nowSeconds());
        upsert->step();
        return;
    }
    try {
        store_.session() << kRecordSql,
            bind(Poco::Int64(accountId)), bind(uidl), bind(queueId),
            bind(Poco::Int64(nowSeconds())), now;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot record milter_seen uidl=" + flatten(uidl), e);
    }
}

std::optional<std::string> MilterSeen::seenBefore(std::int64_t accountId, const std::string& uidl)
{
    try {
        std::vector<std::string> ids;
        store_.session() << "SELECT queue_id FROM milter_seen WHERE account_id = $1 AND uidl = $2",
            bind(Poco::Int64(accountId)), bind(uidl), into(ids), now;
        if (ids.empty())
            return std::nullopt;
        return ids.front();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read milter_seen uidl=" + flatten(uidl), e);
    }
}

void MilterSeen::forget(std::int64_t accountId, const std::string& uidl)
{
    try {
        store_.session() << "DELETE FROM milter_seen WHERE account_id = $1 AND uidl = $2",
            bind(Poco::Int64(accountId)), bind(uidl), now;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot forget milter_seen uidl=" + flatten(uidl), e);
    }
}

std::optional<std::int64_t> MilterSeen::accountId(const std::string& name)
{
    try {
        std::vector<Poco::Int64> ids;
        store_.session() << "SELECT id FROM accounts WHERE name = $1", bind(name), into(ids), now;
        if (ids.empty())
            return std::nullopt;
        return ids.front();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot look up account '" + flatten(name) + "'", e);
    }
}

std::optional<MessageState> MilterSeen::ledgerState(std::int64_t accountId, const std::string& uidl)
{
    try {
        std::vector<std::string> states;
        store_.session() << "SELECT state FROM messages WHERE account_id = $1 AND uidl = $2",
            bind(Poco::Int64(accountId)), bind(uidl), into(states), now;
        if (states.empty())
            return std::nullopt;
        return parseMessageState(states.front());
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the ledger row uidl=" + flatten(uidl), e);
    }
}

ReinjectedFacts MilterSeen::facts(const std::string& account, const std::string& uidl)
{
    ReinjectedFacts f;
    PreparedCache* cache = store_.prepared();
    if (!cache) {
        f.accountId = accountId(account);
        if (f.accountId) {
            f.ledger = ledgerState(*f.accountId, uidl);
            f.seenQueueId = seenBefore(*f.accountId, uidl);
        }
        return f;
    }
    Prepared select(cache->get(kFactsSql));
    select->bind(1, account);
    select->bind(2, uidl);
    if (!select->step())
        return f;
    f.accountId = select->number(0);
    if (select->number(1) != 0)
        f.ledger = parseMessageState(select->text(2));
    if (select->number(3) != 0)
        f.seenQueueId = select->text(4);
    return f;
}

} // namespace popgate
