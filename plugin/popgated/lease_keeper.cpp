// lease_keeper.cpp - see lease_keeper.h.
#include "plugin/popgated/lease_keeper.h"

#include "core/errors.h"
#include "core/settings.h"
#include "core/text.h"

#include <unistd.h>

namespace popgate
{

namespace
{

constexpr std::int64_t kMinPeriodMs = 2000;
/// A host keeps up to its fair share plus this many before it gives any back.
constexpr std::int64_t kShareSlack = 1;

} // namespace

void checkLeaseSettings(const Config& config)
{
    if (config.integer("lease_period") * 1000 < kMinPeriodMs)
        throw InputError(config.origin() + ": lease_period: must be at least 2s (got " +
                         config.str("lease_period") + ")");
}

LeaseKeeper::LeaseKeeper(const Config& config, Poco::Logger& log)
    : config_(config), log_(log), enabled_(config.str("database.driver") == "postgresql"),
      periodMs_(config.integer("lease_period") * 1000)
{
    checkLeaseSettings(config);
    me_.hostId = config.str("host_id").empty() ? defaultHostId() : config.str("host_id");
    me_.instance = newInstanceId();
    me_.hostname = defaultHostId();
    me_.pid = ::getpid();
    me_.version = POPGATE_VERSION;
}

void LeaseKeeper::start(bool once, std::int64_t onlyAccount)
{
    once_ = once;
    onlyAccount_ = onlyAccount;
    if (!enabled_) {
        // SQLite: only the heartbeat, for popgatectl status.
        store_ = std::make_unique<Store>(config_);
        SingleHostBeat(*store_, me_).start();
        return;
    }
    store_ = std::make_unique<Store>(config_);
    LeaseStore leases(*store_, me_, durationMs());
    const std::int64_t asked = steadyMillis();
    const auto inherited = leases.registerHost(periodMs_);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [id, h] : inherited)
            held_[id] = std::make_shared<LeaseToken>(id, h.epoch, asked + h.remainingMs);
        ++changes_;
    }
    log_.notice("host " + escapeText(me_.hostId, EscapeFor::LogField) + " (instance " +
                me_.instance + ") registered; lease_period " + std::to_string(periodMs_ / 1000) +
                "s" +
                (inherited.empty() ? std::string()
                                   : ", " + std::to_string(inherited.size()) +
                                         " lease(s) taken over from this host's crashed "
                                         "predecessor"));
    tick();
}

void LeaseKeeper::tick()
{
    if (!enabled_) {
        beatSingleHost();
        return;
    }
    const std::int64_t asked = steadyMillis();
    try {
        if (!store_)
            store_ = std::make_unique<Store>(config_);
        LeaseStore leases(*store_, me_, durationMs());
        leases.heartbeat();
        const auto renewed = leases.renew();
        std::map<std::int64_t, Held> taken;
        std::int64_t share = 0, accounts = 0, hosts = 1;
        if (!once_ || firstTick_) {
            leases.ensureRows();
            std::tie(accounts, hosts) = leases.shareCounts(periodMs_);
            share = (accounts + hosts - 1) / hosts;
            const std::int64_t want =
                once_ ? accounts : share - static_cast<std::int64_t>(renewed.size());
            taken = leases.acquire(want, onlyAccount_);
        }
        firstTick_ = false;

        std::vector<std::int64_t> giveBack;
        int lost = 0;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            const std::size_t before = held_.size();
            for (auto it = held_.begin(); it != held_.end();) {
                if (!renewed.count(it->first)) {
                    it->second->markLost(); // expired, or taken by another host
                    it = held_.erase(it);
                    ++lost;
                } else {
                    ++it;
                }
            }
            for (const auto& [id, h] : renewed) {
                auto& t = held_[id];
                if (!t || t->epoch() != h.epoch || t->lost())
                    t = std::make_shared<LeaseToken>(id, h.epoch, asked + h.remainingMs);
                else
                    t->extend(asked + h.remainingMs);
            }
            for (const auto& [id, h] : taken)
                held_[id] = std::make_shared<LeaseToken>(id, h.epoch, asked + h.remainingMs);
            // Above the fair share (a host joined): give back idle ones.
            if (!once_ && share > 0 &&
                static_cast<std::int64_t>(held_.size()) > share + kShareSlack) {
                std::int64_t surplus = static_cast<std::int64_t>(held_.size()) - share;
                for (auto it = held_.begin(); it != held_.end() && surplus > 0;) {
                    if (it->second->retire()) {
                        giveBack.push_back(it->first);
                        it = held_.erase(it);
                        --surplus;
                    } else {
                        ++it;
                    }
                }
            }
            if (lost || !taken.empty() || !giveBack.empty() || held_.size() != before)
                ++changes_;
        }
        if (!giveBack.empty())
            leases.release(giveBack);
        if (lost || !taken.empty() || !giveBack.empty())
            log_.notice("leases: " + std::to_string(taken.size()) + " taken, " +
                        std::to_string(lost) + " lost, " + std::to_string(giveBack.size()) +
                        " given back; " + std::to_string(held().size()) + " held (" +
                        std::to_string(accounts) + " active account(s), " + std::to_string(hosts) +
                        " live host(s))");
        std::lock_guard<std::mutex> lock(mutex_);
        if (down_) {
            log_.notice("database " + store_->describe() + " reachable again after " +
                        std::to_string((steadyMillis() - downSince_ + 500) / 1000) +
                        " s: fetching resumes");
            down_ = false;
        }
    } catch (const LeaseLost& e) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!identityLost_)
            log_.critical(escapeText(e.what(), EscapeFor::LogText) + ": this popgated stops");
        identityLost_ = true;
        for (auto& [id, t] : held_)
            t->markLost();
        held_.clear();
        ++changes_;
    } catch (const std::exception& e) {
        store_.reset(); // a new session next time (the server may have restarted)
        reportOutage(e.what());
    }
}

void LeaseKeeper::reportOutage(const std::string& what)
{
    if (!enabled_)
        return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (down_)
        return;
    // Once, not once per account per second: the polls that find their leases
    // unconfirmed wait without a word until it is back.
    log_.error(escapeText(what, EscapeFor::LogText) +
               ": cannot confirm the leases; fetching and deleting nothing until the database "
               "is back");
    down_ = true;
    downSince_ = steadyMillis();
    ++outages_;
}

std::uint64_t LeaseKeeper::outages() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return outages_;
}

void LeaseKeeper::beatSingleHost()
{
    try {
        if (!store_)
            store_ = std::make_unique<Store>(config_);
        SingleHostBeat(*store_, me_).beat();
        if (beatFailing_)
            log_.notice("heartbeat recorded again");
        beatFailing_ = false;
    } catch (const std::exception& e) {
        store_.reset();
        // Once per outage: popgatectl status says "not running" meanwhile.
        if (!beatFailing_)
            log_.warning(escapeText(e.what(), EscapeFor::LogText) +
                         " (popgatectl status cannot tell that popgated runs until it is back)");
        beatFailing_ = true;
    }
}

void LeaseKeeper::stop()
{
    if (!enabled_) {
        try {
            if (!store_)
                store_ = std::make_unique<Store>(config_);
            SingleHostBeat(*store_, me_).leave();
        } catch (const std::exception& e) {
            log_.warning(flatten(e.what()));
        }
        return;
    }
    std::vector<std::int64_t> ids;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& [id, t] : held_)
            t->markLost();
        held_.clear();
        ++changes_;
    }
    try {
        if (!store_)
            store_ = std::make_unique<Store>(config_);
        LeaseStore(*store_, me_, durationMs()).leaveHost();
    } catch (const std::exception& e) {
        log_.warning(flatten(e.what()) + " (the leases run out by themselves within " +
                     std::to_string(durationMs() / 1000) + " s)");
    }
}

std::shared_ptr<LeaseToken> LeaseKeeper::token(std::int64_t accountId) const
{
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = held_.find(accountId);
    return it == held_.end() ? nullptr : it->second;
}

std::set<std::int64_t> LeaseKeeper::held() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    std::set<std::int64_t> out;
    for (const auto& [id, t] : held_)
        out.insert(id);
    return out;
}

std::uint64_t LeaseKeeper::changes() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return changes_;
}

bool LeaseKeeper::databaseDown() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return down_;
}

bool LeaseKeeper::identityLost() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return identityLost_;
}

} // namespace popgate
