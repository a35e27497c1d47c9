// settings.cpp - see settings.h. SQLite's clock is the host's (the file is
// local); PostgreSQL's heartbeat and its ages are core/lease.cpp's.
#include "core/settings.h"

#include "core/prepared.h"
#include "core/rows.h"

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>

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

// SQLite's clock in Unix milliseconds (julianday: sub-second).
const std::string kSqliteNow = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

} // namespace

ReceivingState readReceiving(Store& store)
{
    static const char* const sql =
        "SELECT value, changed_at, changed_by FROM settings WHERE name = 'receiving'";
    ReceivingState s;
    if (PreparedCache* cache = store.prepared()) { // popgated reads it every second
        Prepared select(cache->get(sql));
        if (select->step()) {
            s.on = select->text(0) != "off";
            s.changedAt = select->number(1);
            s.changedBy = select->text(2);
        }
        return s;
    }
    try {
        Statement select(store.session());
        select << sql;
        select.execute();
        RecordSet rs(select);
        if (rs.moveFirst()) {
            s.on = text(rs, "value") != "off";
            s.changedAt = number(rs, "changed_at");
            s.changedBy = text(rs, "changed_by");
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store, "cannot read the receiving switch", e);
    }
    return s;
}

ReceivingState setReceiving(Store& store, bool on, const std::string& by)
{
    try {
        Transaction tx(store.session());
        const ReceivingState before = readReceiving(store);
        const std::string value = on ? "on" : "off";
        const std::int64_t at = nowSeconds();
        std::string who = by;
        Statement update(store.session());
        update << "UPDATE settings SET value = $1, changed_at = $2, changed_by = $3 WHERE name = "
                  "'receiving'",
            bind(value), bind(at), bind(who);
        if (update.execute() == 0) {
            Statement insert(store.session());
            insert << "INSERT INTO settings (name, value, changed_at, changed_by) VALUES "
                      "('receiving', $1, $2, $3)",
                bind(value), bind(at), bind(who);
            insert.execute();
        }
        tx.commit();
        return before;
    } catch (const Poco::Exception& e) {
        throw dbError(store, "cannot switch receiving", e);
    }
}

void SingleHostBeat::start()
{
    try {
        Transaction tx(store_.session());
        // One popgated per SQLite file: a row of another host id (the
        // machine renamed, host_id changed) is history, not a live process.
        store_.session() << "DELETE FROM hosts", now;
        Statement insert(store_.session());
        insert << "INSERT INTO hosts (host_id, instance, hostname, pid, version, started_at, "
                  "heartbeat_at) VALUES ($1, $2, $3, $4, $5, " +
                      kSqliteNow + ", " + kSqliteNow + ")",
            bind(me_.hostId), bind(me_.instance), bind(me_.hostname), bind(me_.pid),
            bind(me_.version);
        insert.execute();
        tx.commit();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot record the heartbeat", e);
    }
}

void SingleHostBeat::beat()
{
    try {
        Statement update(store_.session());
        update << "UPDATE hosts SET heartbeat_at = " + kSqliteNow + " WHERE instance = $1",
            bind(me_.instance);
        update.execute();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot record the heartbeat", e);
    }
}

void SingleHostBeat::leave()
{
    try {
        Statement update(store_.session());
        update << "UPDATE hosts SET heartbeat_at = 0 WHERE instance = $1", bind(me_.instance);
        update.execute();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot clear the heartbeat", e);
    }
}

std::vector<HostView> hostBeats(Store& store)
{
    if (store.dialect() == "postgresql")
        return LeaseStore(store, HostIdentity{}, 0).hosts();
    std::vector<HostView> out;
    try {
        Statement select(store.session());
        select << "SELECT host_id, hostname, pid, version, started_at, heartbeat_at, " +
                      kSqliteNow + " - heartbeat_at AS age FROM hosts ORDER BY host_id";
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
            HostView h;
            h.hostId = text(rs, "host_id");
            h.hostname = text(rs, "hostname");
            h.version = text(rs, "version");
            h.pid = number(rs, "pid");
            h.startedAt = number(rs, "started_at");
            h.heartbeatAt = number(rs, "heartbeat_at");
            h.heartbeatAgeMs = number(rs, "age");
            out.push_back(std::move(h));
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store, "cannot read the hosts", e);
    }
    return out;
}

} // namespace popgate
