// snapshot.cpp - see snapshot.h. A failed generation check keeps the last good
// filter (mail is still judged as before); only when no filter was ever loaded,
// or the configured one is missing, does the snapshot carry an error.
#include "plugin/popgate-milter/snapshot.h"

#include "core/errors.h"
#include "core/filter_store.h"
#include "core/secretbox.h"
#include "core/text.h"

#include <chrono>

namespace popgate
{

namespace
{

constexpr std::size_t kMaxIdleStores = 8;
constexpr std::int64_t kCheckIntervalMs = 1000;

std::int64_t steadyMs()
{
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

BlockAction parseBlockAction(const std::string& text)
{
    for (BlockAction a :
         {BlockAction::Reject, BlockAction::Discard, BlockAction::Quarantine, BlockAction::Tag})
        if (blockActionName(a) == text)
            return a;
    // The key table's choice list rejects it first; this guards a table edit.
    throw InputError("milter.action: unknown action '" + flatten(text) +
                     "' (expected reject, discard, quarantine or tag)");
}

} // namespace

std::string blockActionName(BlockAction action)
{
    switch (action) {
    case BlockAction::Reject:
        return "reject";
    case BlockAction::Discard:
        return "discard";
    case BlockAction::Quarantine:
        return "quarantine";
    case BlockAction::Tag:
        return "tag";
    }
    return "?";
}

MilterSettings MilterSettings::fromConfig(const Config& config)
{
    MilterSettings s;
    s.socket = config.str("milter.socket");
    if (s.socket.empty())
        throw InputError(config.origin() + ": milter.socket: must not be empty");
    s.filter = trim(config.str("milter.filter"));
    s.action = parseBlockAction(config.str("milter.action"));
    s.tempfailOnDatabaseError = config.str("milter.on_database_error") != "accept";
    s.allowNullSender = config.flag("allow_null_sender");
    s.reinjectDaemonName = config.str("milter.reinject_daemon_name");
    // Never created here: the key is popgated's; a milter with another key would
    // take every fetched message for a forgery.
    const auto key = loadKeyFile(config.str("header_key_file"), false);
    s.headerKey.assign(key.begin(), key.end());
    return s;
}

StorePool::Lease::~Lease()
{
    if (broken_ || !store_)
        return;
    std::lock_guard<std::mutex> lock(pool_.mutex_);
    if (pool_.idle_.size() < kMaxIdleStores)
        pool_.idle_.push_back(std::move(store_));
}

std::unique_ptr<StorePool::Lease> StorePool::acquire()
{
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!idle_.empty()) {
            auto store = std::move(idle_.back());
            idle_.pop_back();
            return std::make_unique<Lease>(*this, std::move(store));
        }
    }
    auto store = std::make_unique<Store>(config_, Store::Open::Existing);
    store->requireCurrentSchema();
    return std::make_unique<Lease>(*this, std::move(store));
}

std::shared_ptr<const Snapshot> SnapshotSource::build(Store& store, const MilterSettings& settings,
                                                      std::int64_t generation)
{
    auto s = std::make_shared<Snapshot>();
    s->settings = settings;
    s->generation = generation;
    FilterStore filters(store);
    std::optional<SystemAddressFilter> filter;
    if (settings.filter == "none") {
        s->filterName = "none";
        return s;
    }
    if (settings.filter.empty()) {
        filter = filters.activeDefault(Direction::Inbound);
        if (!filter) {
            s->filterName = "none (no active inbound default)";
            return s;
        }
    } else {
        filter = filters.loadSystemFilter(settings.filter);
        if (!filter) {
            s->error =
                "milter.filter: system filter \"" + flatten(settings.filter) + "\" does not exist";
            return s;
        }
    }
    try {
        FilterOptions options;
        options.allowNullSender = settings.allowNullSender;
        s->filter = std::make_shared<const CompiledFilter>(*filter, options, filters.limits());
        s->filterName = filter->name;
    } catch (const InputError& e) {
        s->error = e.what();
    }
    return s;
}

std::shared_ptr<const Snapshot> SnapshotSource::current()
{
    std::shared_ptr<const Snapshot> snap;
    {
        std::lock_guard<std::mutex> lock(readMutex_);
        snap = snapshot_;
    }
    std::unique_lock<std::mutex> building(buildMutex_, std::defer_lock);
    if (snap) {
        if (!building.try_lock())
            return snap; // another connection is rebuilding: this one uses the last snapshot
    } else {
        building.lock();
    }
    {
        std::lock_guard<std::mutex> lock(readMutex_);
        snap = snapshot_;
    }
    const bool reload = reload_.exchange(false);
    const std::int64_t nowMs = steadyMs();
    if (snap && !reload && nowMs - lastCheck_ < kCheckIntervalMs)
        return snap;
    lastCheck_ = nowMs;

    if (reload) {
        try {
            MilterSettings fresh = MilterSettings::fromConfig(Config::resolve(configPath_));
            fresh.socket = settings_.socket; // the listening socket needs a restart
            settings_ = fresh;
            log_.notice(
                "reload: configuration re-read; filter=" +
                (settings_.filter.empty() ? std::string("(inbound default)") : settings_.filter) +
                " action=" + blockActionName(settings_.action));
        } catch (const std::exception& e) {
            log_.error(std::string("reload: ") + flatten(e.what()) +
                       "; keeping the previous settings");
        }
    }

    std::shared_ptr<const Snapshot> next;
    try {
        auto lease = pool_.acquire();
        try {
            const std::int64_t generation = FilterStore(**lease).generation();
            if (snap && !reload && snap->error.empty() && generation == snap->generation) {
                if (checkFailing_)
                    log_.notice("database reachable again; filter generation " +
                                std::to_string(generation));
                checkFailing_ = false;
                return snap;
            }
            next = build(**lease, settings_, generation);
        } catch (const OperationError&) {
            lease->broken();
            throw;
        }
        checkFailing_ = false;
    } catch (const std::exception& e) {
        if (snap && snap->error.empty()) {
            // Keep judging with the last good filter; say so once.
            if (!checkFailing_)
                log_.warning(std::string("cannot check the filter generation: ") +
                             flatten(e.what()) + "; keeping filter " + snap->filterName +
                             " generation " + std::to_string(snap->generation));
            checkFailing_ = true;
            if (!reload)
                return snap;
            auto kept = std::make_shared<Snapshot>(*snap);
            kept->settings = settings_;
            next = kept;
        } else {
            auto failed = std::make_shared<Snapshot>();
            failed->settings = settings_;
            failed->error = flatten(e.what());
            failed->databaseError = true;
            next = failed;
        }
    }
    if (!next->error.empty()) {
        if (!snap || snap->error != next->error)
            log_.error("no filter to judge with: " + next->error + " (" +
                       (next->databaseError && !next->settings.tempfailOnDatabaseError
                            ? "mail is accepted unfiltered: milter.on_database_error = accept"
                            : "mail is tempfailed") +
                       ")");
    } else {
        log_.information("filter " + next->filterName + " generation " +
                         std::to_string(next->generation) +
                         " in use; action=" + blockActionName(next->settings.action));
    }
    std::lock_guard<std::mutex> lock(readMutex_);
    snapshot_ = next;
    return next;
}

} // namespace popgate
