// lease_keeper.h - popgated's side of the leases (core/lease.h): registers
// this process under its host id, then, every sixth of lease_period, records
// the heartbeat, renews the leases it holds, takes free ones up to its fair
// share and gives back what is above it. With SQLite it holds no leases (one
// popgated per database file, SingleHostLock; every account is its own) and
// only beats: the hosts row that popgatectl status reads (core/settings.h).
// A database it cannot reach is logged once, and again once when it is back.
#pragma once

#include "core/config.h"
#include "core/lease.h"
#include "core/store.h"

#include <Poco/Logger.h>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace popgate
{

/// checkLeaseSettings - throws InputError for a lease_period under 2 s (the
/// start and --check-config refuse it alike).
void checkLeaseSettings(const Config& config);

class LeaseKeeper
{
public:
    /// LeaseKeeper - reads host_id and lease_period; throws InputError for a
    /// lease_period under 2 s.
    LeaseKeeper(const Config& config, Poco::Logger& log);

    bool enabled() const { return enabled_; }
    const std::string& hostId() const { return me_.hostId; }
    const std::string& instance() const { return me_.instance; }
    /// tickMs - how often tick() should run; durationMs - a lease's length.
    std::int64_t tickMs() const { return periodMs_ / 6; }
    std::int64_t durationMs() const { return periodMs_ * 5 / 6; }

    /// start - register the host id (InputError: a live process has it;
    /// OperationError: the database), then the first tick. once: take every
    /// free account (no fair share), and take nothing after this first tick.
    void start(bool once, std::int64_t onlyAccount);
    /// tick - heartbeat, renew, take, give back (SQLite: the heartbeat only).
    /// Never throws; the database's absence is logged once.
    void tick();
    /// stop - give every lease back and clear the heartbeat (a clean stop).
    void stop();

    /// token - this process's lease on the account, or nullptr.
    std::shared_ptr<LeaseToken> token(std::int64_t accountId) const;
    /// held - the accounts this process holds now.
    std::set<std::int64_t> held() const;
    /// changes - grows whenever held() changed.
    std::uint64_t changes() const;
    /// databaseDown - the last tick could not reach the database.
    bool databaseDown() const;
    /// identityLost - another process took this host id: stop.
    bool identityLost() const;
    /// reportOutage - a worker lost its database connection: logged here once
    /// per outage (with PostgreSQL), until a tick reaches the database again.
    void reportOutage(const std::string& what);
    /// outages - grows with every outage: a session older than one is reopened.
    std::uint64_t outages() const;

private:
    /// beatSingleHost - SQLite's tick: the heartbeat; a failure logged once.
    void beatSingleHost();

    const Config& config_;
    Poco::Logger& log_;
    bool enabled_;
    HostIdentity me_;
    std::int64_t periodMs_;
    bool once_ = false;
    bool firstTick_ = true;
    std::int64_t onlyAccount_ = 0;
    std::unique_ptr<Store> store_; ///< the keeper's own session, reopened after a failure

    mutable std::mutex mutex_;
    std::map<std::int64_t, std::shared_ptr<LeaseToken>> held_;
    std::uint64_t changes_ = 0;
    bool down_ = false;
    std::uint64_t outages_ = 0;
    std::int64_t downSince_ = 0;
    bool identityLost_ = false;
    bool beatFailing_ = false; ///< SQLite: the last heartbeat failed
};

} // namespace popgate
