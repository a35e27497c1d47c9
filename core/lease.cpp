// lease.cpp - see lease.h. Every time is the database's clock in Unix
// milliseconds (kNow); a host's own clock is used only to know how long a lease
// the database confirmed is still good (the steady clock, counted from before
// the statement that confirmed it, so it never overestimates).
#include "core/lease.h"

#include "core/rows.h"
#include "core/text.h"

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>
#include <Poco/Environment.h>
#include <Poco/Exception.h>
#include <Poco/Random.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

// The database's clock, in Unix milliseconds (clock_timestamp(): the moment of
// the statement, not of the transaction's start).
const std::string kNow = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

std::map<std::int64_t, Held> readHeld(RecordSet& rs)
{
    std::map<std::int64_t, Held> out;
    for (bool more = rs.moveFirst(); more; more = rs.moveNext())
        out[number(rs, "account_id")] = {number(rs, "epoch"), number(rs, "remaining")};
    return out;
}

} // namespace

std::int64_t steadyMillis()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::string defaultHostId()
{
    return Poco::Environment::nodeName();
}

std::string newInstanceId()
{
    Poco::Random r;
    r.seed();
    char buf[17];
    std::snprintf(buf, sizeof buf, "%08x%08x", r.next(), r.next());
    return buf;
}

LeaseStore::LeaseStore(Store& store, HostIdentity me, std::int64_t durationMs)
    : store_(store), me_(std::move(me)), durationMs_(durationMs),
      enabled_(store.dialect() == "postgresql")
{
}

std::map<std::int64_t, Held> LeaseStore::registerHost(std::int64_t staleMs)
{
    if (!enabled_)
        return {};
    try {
        Transaction tx(store_.session());
        Statement select(store_.session());
        select << "SELECT instance, hostname, pid, " + kNow +
                      " - heartbeat_at AS age FROM hosts WHERE host_id = $1 FOR UPDATE",
            bind(me_.hostId);
        select.execute();
        RecordSet rs(select);
        std::string predecessor;
        if (rs.moveFirst()) {
            const std::string hostname = text(rs, "hostname");
            const std::int64_t pid = number(rs, "pid");
            const std::int64_t age = number(rs, "age");
            // A fresh heartbeat belongs to a live process unless it is a process
            // of this machine that no longer exists (a crash, then a restart).
            const bool deadHere = hostname == me_.hostname && pid > 0 &&
                                  ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
            if (age < staleMs && !deadHere)
                throw InputError(
                    "host_id '" + me_.hostId + "' is in use by a live popgated (pid " +
                    std::to_string(pid) + " on " + flatten(hostname) + ", heartbeat " +
                    std::to_string(std::max<std::int64_t>(age, 0) / 1000) +
                    " s ago); give each gateway host its own host_id in popgate.conf, or stop "
                    "the other one (a crashed one is forgotten " +
                    std::to_string(staleMs / 1000) + " s after its last heartbeat)");
            predecessor = text(rs, "instance");
        }
        Statement upsert(store_.session());
        upsert << "INSERT INTO hosts (host_id, instance, hostname, pid, version, started_at, "
                  "heartbeat_at) VALUES ($1, $2, $3, $4, $5, " +
                      kNow + ", " + kNow +
                      ") ON CONFLICT (host_id) DO UPDATE SET instance = EXCLUDED.instance, "
                      "hostname = EXCLUDED.hostname, pid = EXCLUDED.pid, version = "
                      "EXCLUDED.version, started_at = EXCLUDED.started_at, heartbeat_at = "
                      "EXCLUDED.heartbeat_at",
            bind(me_.hostId), bind(me_.instance), bind(me_.hostname), bind(me_.pid),
            bind(me_.version);
        upsert.execute();
        std::map<std::int64_t, Held> inherited;
        if (!predecessor.empty()) {
            // The dead predecessor's unexpired leases: ours now, under new epochs.
            Statement take(store_.session());
            take << "UPDATE account_leases SET instance = $1, epoch = epoch + 1, acquired_at = " +
                        kNow + ", expires_at = " + kNow +
                        " + CAST($2 AS BIGINT) WHERE holder = $3 AND instance = $4 AND expires_at "
                        "> " +
                        kNow + " RETURNING account_id, epoch, CAST($2 AS BIGINT) AS remaining",
                bind(me_.instance), bind(durationMs_), bind(me_.hostId), bind(predecessor);
            take.execute();
            RecordSet held(take);
            inherited = readHeld(held);
        }
        tx.commit();
        return inherited;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot register host '" + me_.hostId + "'", e);
    }
}

void LeaseStore::heartbeat()
{
    if (!enabled_)
        return;
    std::size_t n = 0;
    try {
        Statement update(store_.session());
        update << "UPDATE hosts SET heartbeat_at = " + kNow +
                      " WHERE host_id = $1 AND instance = $2",
            bind(me_.hostId), bind(me_.instance);
        n = update.execute();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot record the heartbeat", e);
    }
    if (n == 0)
        throw LeaseLost("host_id '" + me_.hostId +
                        "' was taken over by another popgated process while this one was "
                        "silent (paused, or cut off from the database)");
}

void LeaseStore::leaveHost()
{
    if (!enabled_)
        return;
    try {
        Transaction tx(store_.session());
        Statement give(store_.session());
        give << "UPDATE account_leases SET expires_at = 0 WHERE holder = $1 AND instance = $2",
            bind(me_.hostId), bind(me_.instance);
        give.execute();
        Statement leave(store_.session());
        leave << "UPDATE hosts SET heartbeat_at = 0 WHERE host_id = $1 AND instance = $2",
            bind(me_.hostId), bind(me_.instance);
        leave.execute();
        tx.commit();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot give the leases back", e);
    }
}

void LeaseStore::ensureRows()
{
    if (!enabled_)
        return;
    try {
        store_.session() << "INSERT INTO account_leases (account_id) SELECT a.id FROM accounts a "
                            "WHERE NOT EXISTS (SELECT 1 FROM account_leases l WHERE l.account_id "
                            "= a.id) ON CONFLICT (account_id) DO NOTHING",
            now;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot create the lease rows", e);
    }
}

std::map<std::int64_t, Held> LeaseStore::renew()
{
    if (!enabled_)
        return {};
    try {
        Statement update(store_.session());
        update
            << "UPDATE account_leases SET expires_at = " + kNow +
                   " + CAST($1 AS BIGINT) WHERE holder = $2 AND instance = $3 AND expires_at > " +
                   kNow + " RETURNING account_id, epoch, CAST($1 AS BIGINT) AS remaining",
            bind(durationMs_), bind(me_.hostId), bind(me_.instance);
        update.execute();
        RecordSet rs(update);
        return readHeld(rs);
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot renew the leases", e);
    }
}

std::map<std::int64_t, Held> LeaseStore::acquire(std::int64_t limit, std::int64_t onlyAccount)
{
    if (!enabled_ || limit <= 0)
        return {};
    try {
        // The subquery locks the rows it picks and skips any another host has
        // locked (taking it, or fencing a write under it): no host waits on another.
        Statement update(store_.session());
        update << "UPDATE account_leases SET holder = $1, instance = $2, epoch = epoch + 1, "
                  "acquired_at = " +
                      kNow + ", expires_at = " + kNow +
                      " + CAST($3 AS BIGINT) WHERE account_id IN (SELECT l.account_id FROM "
                      "account_leases l "
                      "JOIN accounts a ON a.id = l.account_id WHERE a.active = 1 AND "
                      "l.expires_at <= " +
                      kNow +
                      " AND (CAST($4 AS BIGINT) = 0 OR l.account_id = CAST($4 AS BIGINT)) "
                      "ORDER BY random() LIMIT CAST($5 AS BIGINT) FOR UPDATE OF l SKIP LOCKED) "
                      "RETURNING account_id, epoch, CAST($3 AS BIGINT) AS remaining",
            bind(me_.hostId), bind(me_.instance), bind(durationMs_), bind(onlyAccount), bind(limit);
        update.execute();
        RecordSet rs(update);
        return readHeld(rs);
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot take leases", e);
    }
}

void LeaseStore::release(const std::vector<std::int64_t>& accountIds)
{
    if (!enabled_)
        return;
    try {
        Transaction tx(store_.session());
        for (std::int64_t id : accountIds) {
            Statement update(store_.session());
            update << "UPDATE account_leases SET expires_at = 0 WHERE account_id = $1 AND "
                      "holder = $2 AND instance = $3",
                bind(id), bind(me_.hostId), bind(me_.instance);
            update.execute();
        }
        tx.commit();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot give leases back", e);
    }
}

std::pair<std::int64_t, std::int64_t> LeaseStore::shareCounts(std::int64_t staleMs)
{
    if (!enabled_)
        return {0, 1};
    try {
        Statement select(store_.session());
        select << "SELECT (SELECT COUNT(*) FROM accounts WHERE active = 1) AS accounts, "
                  "(SELECT COUNT(*) FROM hosts WHERE heartbeat_at > " +
                      kNow + " - CAST($1 AS BIGINT)) AS hosts",
            bind(staleMs);
        select.execute();
        RecordSet rs(select);
        rs.moveFirst();
        return {number(rs, "accounts"), std::max<std::int64_t>(1, number(rs, "hosts"))};
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot count the live hosts", e);
    }
}

std::map<std::int64_t, std::int64_t> LeaseStore::nextPolls()
{
    std::map<std::int64_t, std::int64_t> out;
    try {
        Statement select(store_.session());
        select << "SELECT account_id, next_poll_at FROM account_status";
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out[number(rs, "account_id")] = number(rs, "next_poll_at");
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the accounts' next polls", e);
    }
    return out;
}

std::vector<HostView> LeaseStore::hosts()
{
    std::vector<HostView> out;
    if (!enabled_)
        return out;
    try {
        Statement select(store_.session());
        select << "SELECT h.host_id, h.hostname, h.pid, h.version, h.started_at, h.heartbeat_at, " +
                      kNow +
                      " - h.heartbeat_at AS age, (SELECT COUNT(*) FROM account_leases l WHERE "
                      "l.holder = h.host_id AND l.instance = h.instance AND l.expires_at > " +
                      kNow + ") AS held FROM hosts h ORDER BY h.host_id";
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
            h.accountsHeld = number(rs, "held");
            out.push_back(std::move(h));
        }
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the hosts", e);
    }
    return out;
}

std::map<std::int64_t, LeaseView> LeaseStore::leases()
{
    std::map<std::int64_t, LeaseView> out;
    if (!enabled_)
        return out;
    try {
        Statement select(store_.session());
        select << "SELECT account_id, holder, epoch, expires_at, expires_at - " + kNow +
                      " AS remaining FROM account_leases";
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out[number(rs, "account_id")] = {text(rs, "holder"), number(rs, "epoch"),
                                             number(rs, "expires_at"), number(rs, "remaining")};
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the leases", e);
    }
    return out;
}

void fence(Store& store, const std::string& instance, LeaseToken& token)
{
    const std::int64_t asked = steadyMillis();
    std::int64_t remaining = -1;
    try {
        Statement select(store.session());
        select << "SELECT expires_at - " + kNow +
                      " AS remaining FROM account_leases WHERE account_id = $1 AND instance = $2 "
                      "AND epoch = $3 AND expires_at > " +
                      kNow + " FOR KEY SHARE",
            bind(token.accountId()), bind(instance), bind(token.epoch());
        select.execute();
        RecordSet rs(select);
        if (rs.moveFirst())
            remaining = number(rs, "remaining");
    } catch (const Poco::Exception& e) {
        throw dbError(store, "cannot check the lease", e);
    }
    if (remaining <= 0) {
        token.markLost();
        throw LeaseLost("the lease (epoch " + std::to_string(token.epoch()) +
                        ") has expired or another host holds the account now");
    }
    token.extend(asked + remaining);
}

SingleHostLock::SingleHostLock(const std::string& databasePath) : path_(databasePath + ".lock")
{
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0660);
    if (fd_ < 0)
        throw OperationError("database sqlite " + databasePath + ": cannot open the lock file " +
                             path_ + ": " + std::strerror(errno));
    // The database's own mode (0660 in the setgid popgate-db directory), whatever the
    // umask: like SQLite's side files. Only its owner can change it; others leave it.
    struct stat st {
    };
    if (::fstat(fd_, &st) == 0 && st.st_uid == ::geteuid() && (st.st_mode & 07777) != 0660 &&
        ::fchmod(fd_, 0660) != 0) {
        // not fatal: the lock works whatever its mode
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        char buf[32] = {0};
        const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
        const std::string pid = n > 0 ? trim(std::string(buf, static_cast<std::size_t>(n))) : "";
        ::close(fd_);
        fd_ = -1;
        if (error == EWOULDBLOCK)
            throw OperationError("database sqlite " + databasePath +
                                 " is in use by another popgated" +
                                 (pid.empty() ? std::string() : " (pid " + flatten(pid) + ")") +
                                 ": SQLite serves one popgated per database file (lock " + path_ +
                                 "); for several gateway hosts use PostgreSQL (docs/scale-out.md)");
        throw OperationError("database sqlite " + databasePath + ": cannot lock " + path_ + ": " +
                             std::strerror(error));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
        // The lock holds without the pid; the pid is only for the message above.
    }
}

SingleHostLock::~SingleHostLock()
{
    if (fd_ >= 0)
        ::close(fd_);
}

} // namespace popgate
