// snapshot.h - what popgate-milter decides with: its settings from popgate.conf,
// the compiled inbound filter of one configuration generation, and a small pool
// of database connections shared by the libmilter threads. No libmilter here:
// callbacks.cpp asks for the current snapshot at connect and keeps it.
#pragma once

#include "core/config.h"
#include "core/filter.h"
#include "core/store.h"

#include <Poco/Logger.h>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace popgate
{

enum class BlockAction { Reject, Discard, Quarantine, Tag };

/// blockActionName - "reject", "discard", "quarantine", "tag".
std::string blockActionName(BlockAction action);

struct MilterSettings {
    std::string socket; ///< libmilter spec: unix:/path, inet:PORT@HOST
    std::string filter; ///< "" = active inbound default, "none" = allow all, else a name
    BlockAction action = BlockAction::Reject;
    bool tempfailOnDatabaseError = true;
    bool allowNullSender = true;
    std::string reinjectDaemonName; ///< {daemon_name} of popgated's reinjection listener
    std::string headerKey;          ///< raw X-Popgate-Id key bytes (never the secret key)

    /// fromConfig - the milter.* keys and the header key; throws InputError for a bad
    /// value, OperationError when the header key file cannot be read.
    static MilterSettings fromConfig(const Config& config);
};

/// One configuration generation as a connection sees it from connect to close.
struct Snapshot {
    MilterSettings settings;
    std::shared_ptr<const CompiledFilter> filter; ///< nullptr: allow all (or error set)
    std::string filterName;                       ///< for log lines
    std::int64_t generation = -1;
    std::string error;          ///< non-empty: the filter is unknown; nothing may be judged
    bool databaseError = false; ///< error came from the database (milter.on_database_error applies)
};

/// StorePool - Store connections for the milter threads; a connection that failed
/// once is dropped, not reused.
class StorePool
{
public:
    explicit StorePool(Config config) : config_(std::move(config)) {}

    class Lease
    {
    public:
        Lease(StorePool& pool, std::unique_ptr<Store> store) : pool_(pool), store_(std::move(store))
        {
        }
        ~Lease();
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        Store& operator*() { return *store_; }
        /// broken - the connection failed: do not give it back.
        void broken() { broken_ = true; }

    private:
        StorePool& pool_;
        std::unique_ptr<Store> store_;
        bool broken_ = false;
    };

    /// acquire - an idle connection or a new one at the current schema; throws
    /// OperationError naming the database.
    std::unique_ptr<Lease> acquire();

private:
    Config config_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<Store>> idle_;
};

/// SnapshotSource - the current snapshot, rebuilt when the filter generation in the
/// database changes (looked at, at most once a second) or after requestReload().
class SnapshotSource
{
public:
    SnapshotSource(std::string configPath, MilterSettings settings, StorePool& pool,
                   Poco::Logger& log)
        : configPath_(std::move(configPath)), settings_(std::move(settings)), pool_(pool), log_(log)
    {
    }

    /// current - never throws; a failure is recorded in the snapshot's error (and
    /// a good snapshot is kept while only the generation check fails).
    std::shared_ptr<const Snapshot> current();
    /// requestReload - async-signal context not required: called from the signal thread.
    void requestReload() { reload_ = true; }

private:
    std::shared_ptr<const Snapshot> build(Store& store, const MilterSettings& settings,
                                          std::int64_t generation);

    std::string configPath_;
    MilterSettings settings_;
    StorePool& pool_;
    Poco::Logger& log_;
    std::atomic<bool> reload_{false};
    std::mutex buildMutex_;
    std::mutex readMutex_;
    std::shared_ptr<const Snapshot> snapshot_;
    std::int64_t lastCheck_ = 0; ///< steady milliseconds
    bool checkFailing_ = false;  ///< the last generation check failed (logged once)
};

} // namespace popgate
