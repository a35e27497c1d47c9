// lease.h - several gateway hosts on one PostgreSQL database: the host
// registry (one live process per host id, a heartbeat), per-account leases
// (holder, epoch, expiry on the database's clock) and the fencing check every
// ledger write and every DELE makes in its own transaction. With SQLite there
// are no leases: one popgated per database file, kept by SingleHostLock.
// Design and guarantees: docs/scale-out.md. Core only: Poco::Data, no driver.
#pragma once

#include "core/errors.h"
#include "core/store.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace popgate
{

/// LeaseLost - this host no longer holds the account (expired, taken over by
/// another host, or the database cannot say): nothing may be recorded or
/// deleted under it. core/policy.h: Failure::LeaseLost.
class LeaseLost : public OperationError
{
public:
    using OperationError::OperationError;
};

/// steadyMillis - CLOCK_MONOTONIC in milliseconds (advances while the process is stopped).
std::int64_t steadyMillis();

/// LeaseToken - one account this process holds: the epoch it was given, and
/// until when (steady clock) the lease is known to be valid. Shared between
/// the keeper, which renews it, and the worker that polls the account.
class LeaseToken
{
public:
    LeaseToken(std::int64_t accountId, std::int64_t epoch, std::int64_t validUntil)
        : accountId_(accountId), epoch_(epoch), validUntil_(validUntil)
    {
    }
    std::int64_t accountId() const { return accountId_; }
    std::int64_t epoch() const { return epoch_; }
    /// validFor - true while the lease is known valid for at least margin ms more.
    bool validFor(std::int64_t marginMs) const
    {
        return !lost_.load() && steadyMillis() + marginMs < validUntil_.load();
    }
    /// extend - the database confirmed the lease until `until` (steady ms).
    void extend(std::int64_t until)
    {
        std::int64_t cur = validUntil_.load();
        while (until > cur && !validUntil_.compare_exchange_weak(cur, until)) {
        }
    }
    void markLost() { lost_.store(true); }
    bool lost() const { return lost_.load(); }
    /// begin - claim the lease for one poll: false when it is lost, already
    /// in use, or not known good for marginMs more. end() gives it back.
    bool begin(std::int64_t marginMs)
    {
        std::lock_guard<std::mutex> lock(use_);
        if (inUse_ || !validFor(marginMs))
            return false;
        inUse_ = true;
        return true;
    }
    void end()
    {
        std::lock_guard<std::mutex> lock(use_);
        inUse_ = false;
    }
    /// retire - mark it lost unless a poll is using it (then false): a lease
    /// given back is never in use.
    bool retire()
    {
        std::lock_guard<std::mutex> lock(use_);
        if (inUse_)
            return false;
        lost_.store(true);
        return true;
    }

private:
    const std::int64_t accountId_;
    const std::int64_t epoch_;
    std::atomic<std::int64_t> validUntil_;
    std::atomic<bool> lost_{false};
    std::mutex use_;
    bool inUse_ = false;
};

struct HostIdentity {
    std::string hostId;   ///< host_id (default: the host name)
    std::string instance; ///< random per process start
    std::string hostname; ///< the machine's name
    std::int64_t pid = 0;
    std::string version;
};

/// HostView / LeaseView - what popgatectl shows.
struct HostView {
    std::string hostId, hostname, version;
    std::int64_t pid = 0, startedAt = 0, heartbeatAt = 0; ///< Unix ms, database clock
    std::int64_t heartbeatAgeMs = 0;
    std::int64_t accountsHeld = 0;
};
struct LeaseView {
    std::string holder;
    std::int64_t epoch = 0;
    std::int64_t expiresAt = 0;   ///< Unix ms, database clock
    std::int64_t remainingMs = 0; ///< <= 0: expired (free to take)
};

/// Held - an account taken or renewed: its epoch and the ms left on the database's clock.
struct Held {
    std::int64_t epoch = 0;
    std::int64_t remainingMs = 0;
};

/// LeaseStore - the lease and host tables over one Store (its session). Every
/// statement is short; none waits on another host's rows (SKIP LOCKED).
class LeaseStore
{
public:
    /// LeaseStore - durationMs: how long a taken or renewed lease lasts.
    LeaseStore(Store& store, HostIdentity me, std::int64_t durationMs);

    /// enabled - leases apply (PostgreSQL); with SQLite every call below is a no-op.
    bool enabled() const { return enabled_; }

    /// registerHost - claim the host id for this process. A row whose heartbeat
    /// is older than staleMs, or left by a dead process of this machine, is taken
    /// over (with that process's leases, under new epochs: returned). Throws
    /// InputError naming the live process when another one has this id.
    std::map<std::int64_t, Held> registerHost(std::int64_t staleMs);
    /// heartbeat - the host's row is fresh; throws LeaseLost when another
    /// process has taken this host id since.
    void heartbeat();
    /// leaveHost - a clean stop: every lease given back, the heartbeat cleared.
    void leaveHost();

    /// ensureRows - a lease row for every account (new accounts).
    void ensureRows();
    /// renew - extend every lease this process still holds; returns them.
    std::map<std::int64_t, Held> renew();
    /// acquire - take up to limit free or expired leases of active accounts
    /// (onlyAccount > 0: just that one), never waiting on rows others lock.
    std::map<std::int64_t, Held> acquire(std::int64_t limit, std::int64_t onlyAccount = 0);
    /// release - give these leases back (a clean stop, or above the fair share).
    void release(const std::vector<std::int64_t>& accountIds);
    /// shareCounts - (active accounts, live hosts: heartbeat within staleMs).
    std::pair<std::int64_t, std::int64_t> shareCounts(std::int64_t staleMs);

    /// nextPolls - each account's next poll as its last holder recorded it
    /// (account_status.next_poll_at, Unix seconds): a host taking an account
    /// over keeps its cadence.
    std::map<std::int64_t, std::int64_t> nextPolls();
    /// hosts / leases - for popgatectl (any dialect; empty with SQLite).
    std::vector<HostView> hosts();
    std::map<std::int64_t, LeaseView> leases();

private:
    Store& store_;
    HostIdentity me_;
    std::int64_t durationMs_;
    bool enabled_;
};

/// fence - inside the caller's open transaction on store: throws LeaseLost
/// unless token's lease is still this process's (same epoch) and unexpired on
/// the database's clock; locks the lease row (FOR KEY SHARE) until the
/// transaction ends, so no other host can take it before this write commits.
/// Extends the token's known validity. OperationError for the database.
void fence(Store& store, const std::string& instance, LeaseToken& token);

/// defaultHostId - the host name (host_id empty in popgate.conf).
std::string defaultHostId();
/// newInstanceId - 16 random hex digits.
std::string newInstanceId();

/// SingleHostLock - SQLite: an exclusive flock on DBFILE.lock beside the
/// database for the life of the object; throws OperationError naming the
/// holder's pid when another popgated has it.
class SingleHostLock
{
public:
    explicit SingleHostLock(const std::string& databasePath);
    ~SingleHostLock();
    SingleHostLock(const SingleHostLock&) = delete;
    SingleHostLock& operator=(const SingleHostLock&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
};

} // namespace popgate
