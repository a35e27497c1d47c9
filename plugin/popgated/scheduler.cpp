// scheduler.cpp - see scheduler.h.
#include "plugin/popgated/scheduler.h"

#include "core/errors.h"
#include "core/filter_store.h"
#include "core/message_store.h"
#include "core/metrics.h"
#include "core/policy.h"
#include "core/provisioning.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "core/text.h"
#include "plugin/net/oauth_client.h"
#include "plugin/net/pop3_trace.h"
#include "plugin/popgated/fetcher.h"
#include "plugin/popgated/lease_keeper.h"
#include "plugin/popgated/receiving_watch.h"

#include <Poco/DirectoryIterator.h>
#include <Poco/Environment.h>
#include <Poco/File.h>
#include <Poco/NumberParser.h>
#include <Poco/Process.h>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <signal.h>
#include <sys/stat.h>
#include <thread>

namespace popgate
{

namespace
{

using Clock = std::chrono::system_clock;
using Millis = std::chrono::milliseconds;

std::int64_t nowMillis()
{
    return std::chrono::duration_cast<Millis>(Clock::now().time_since_epoch()).count();
}

// Lateness - how long after its due time each scheduled poll started: the
// measure of whether the workers keep up. 10 ms buckets up to 60 s.
class Lateness
{
public:
    void add(std::int64_t ms)
    {
        ms = std::max<std::int64_t>(0, ms);
        ++polls_;
        max_ = std::max(max_, ms);
        if (ms > 2000)
            ++over2s_;
        ++buckets_[static_cast<std::size_t>(std::min<std::int64_t>(ms / 10, kBuckets - 1))];
    }
    /// summary - "polls=N late_max_ms=M late_p99_ms=P late_over_2s=K".
    std::string summary() const
    {
        std::int64_t p99 = 0, seen = 0;
        for (std::size_t i = 0; i < kBuckets; ++i) {
            seen += buckets_[i];
            if (polls_ > 0 && seen * 100 >= polls_ * 99) {
                p99 = static_cast<std::int64_t>(i + 1) * 10;
                break;
            }
        }
        return "polls=" + std::to_string(polls_) + " late_max_ms=" + std::to_string(max_) +
               " late_p99_ms=" + std::to_string(std::min(p99, max_)) +
               " late_over_2s=" + std::to_string(over2s_);
    }
    std::int64_t polls() const { return polls_; }

private:
    static constexpr std::size_t kBuckets = 6000;
    std::vector<std::int64_t> buckets_ = std::vector<std::int64_t>(kBuckets, 0);
    std::int64_t polls_ = 0, max_ = 0, over2s_ = 0;
};

using Due = std::pair<std::int64_t, std::string>; ///< (unix milliseconds, account)

/// kBatchMs - polls are scheduled on whole multiples of this (Shared::schedule).
constexpr std::int64_t kBatchMs = 1000;
/// kPollsPerWorker - the scheduler wakes a worker per this many queued polls.
constexpr std::size_t kPollsPerWorker = 8;

struct Shared {
    std::mutex mutex;
    std::condition_variable work; ///< workers: an account is queued, or done
    std::condition_variable tick; ///< the scheduler, with --once: a poll ended
    std::deque<std::pair<Account, std::int64_t>> queue; ///< with its due time (ms, 0: unscheduled)
    std::set<std::string> running;
    /// Each scheduled account's next poll (unix ms); due holds the same in
    /// time order, plus entries superseded since, which popping skips.
    std::map<std::string, std::int64_t> nextPoll;
    std::priority_queue<Due, std::vector<Due>, std::greater<Due>> due;
    bool once = false;
    int failedPolls = 0;
    int finishedPolls = 0;
    Lateness lateness;

    /// schedule - the account's next poll at ms, put off to the next whole
    /// second (kBatchMs): the polls due in a second go out together, at the
    /// scheduler's once-a-second wake-up, instead of one wake-up of the
    /// scheduler and of a worker per poll (issue Perf: on an idle host the
    /// wake-ups cost more CPU than the polls). Under the mutex.
    void schedule(const std::string& name, std::int64_t ms)
    {
        ms = (ms + kBatchMs - 1) / kBatchMs * kBatchMs;
        nextPoll[name] = ms;
        due.emplace(ms, name);
    }
};

FetchSettings fetchSettings(const Config& c)
{
    FetchSettings s;
    s.mta.host = c.str("reinject.host");
    s.mta.port = static_cast<int>(c.integer("reinject.port"));
    s.mta.helo = c.str("reinject.helo");
    s.mta.timeout = std::chrono::seconds(c.integer("reinject.timeout"));
    s.mta.xclient = c.flag("reinject.xclient");
    s.xclientHop = static_cast<int>(std::max<std::int64_t>(1, c.integer("reinject.xclient_hop")));
    s.spoolDir = c.str("spool_dir");
    s.hostname = Poco::Environment::nodeName();
    const auto key = loadKeyFile(c.str("header_key_file"), true);
    s.headerKey.assign(key.begin(), key.end());
    s.maxHops = static_cast<int>(c.integer("max_hops"));
    s.duplicateWindow = c.integer("duplicate_window");
    s.allowDuplicates = c.flag("allow_duplicate_message_ids");
    s.connectTimeout = std::chrono::seconds(c.integer("pop3.connect_timeout"));
    s.readTimeout = std::chrono::seconds(c.integer("pop3.read_timeout"));
    s.timeBudget = std::chrono::seconds(c.integer("session_time_budget"));
    s.maxAttempts = static_cast<int>(c.integer("message_max_attempts"));
    s.failedRetryPolls = static_cast<int>(c.integer("failed_retry_polls"));
    return s;
}

// jittered - seconds +-10 %, in milliseconds: polls of many accounts spread out.
std::int64_t jittered(std::int64_t seconds)
{
    static thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_real_distribution<double> d(0.9, 1.1);
    return std::max<std::int64_t>(1000, static_cast<std::int64_t>(seconds * 1000 * d(rng)));
}

// firstPollIn - a newly seen account's first poll, in milliseconds: spread
// over up to 30 s so that a thousand accounts do not all connect at once.
std::int64_t firstPollIn(std::int64_t interval)
{
    static thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<std::int64_t> d(0, std::min<std::int64_t>(interval, 30) * 1000);
    return d(rng);
}

// FilterCache - each worker's compiled filters, by the account's filter
// field ("": the inbound default), rebuilt when the configuration generation
// changes: a filter edit reaches the next poll, and a thousand accounts on
// one filter compile it once per worker, not once each.
class FilterCache
{
public:
    FilterCache(Store& store, const Config& config, Poco::Logger& log) : filters_(store), log_(log)
    {
        options_.allowNullSender = config.flag("allow_null_sender");
    }

    /// get - the account's compiled filter (nullptr: allow all); throws
    /// OperationError when the account names a filter that does not exist.
    std::shared_ptr<const CompiledFilter> get(const Account& account)
    {
        const std::int64_t generation = filters_.generation();
        if (generation != generation_) {
            cache_.clear();
            warned_.clear();
            generation_ = generation;
        }
        auto it = cache_.find(account.filter);
        if (it == cache_.end()) {
            FilterResolution r;
            try {
                r = filters_.resolve(account.filter);
            } catch (const OperationError& e) {
                throw OperationError("account '" + account.name + "': " + e.what());
            }
            Entry e;
            e.warning = r.warning;
            if (r.filter)
                e.filter = std::make_shared<const CompiledFilter>(*r.filter, options_);
            it = cache_.emplace(account.filter, std::move(e)).first;
        }
        // A warning once per account and generation, as an operator reads it.
        if (!it->second.warning.empty() && warned_.insert(account.name).second)
            log_.warning("account=" + account.name + " " + it->second.warning);
        return it->second.filter;
    }

private:
    struct Entry {
        std::shared_ptr<const CompiledFilter> filter;
        std::string warning;
    };
    FilterStore filters_;
    Poco::Logger& log_;
    FilterOptions options_;
    std::int64_t generation_ = -1;
    std::map<std::string, Entry> cache_; ///< by filter field
    std::set<std::string> warned_;       ///< accounts warned about in this generation
};

// secretCache - the process's key file and the secrets opened under it, by the
// key file's path (tests run several configurations in one process): read again
// only when the file changed (SecretCache stats it at every use).
SecretCache& secretCache(const Config& config)
{
    static std::mutex mutex;
    static std::map<std::string, std::unique_ptr<SecretCache>> caches;
    const std::string path = config.str("secret_key_file");
    std::lock_guard<std::mutex> lock(mutex);
    auto& cache = caches[path];
    if (!cache)
        cache = std::make_unique<SecretCache>(path);
    return *cache;
}

// loadSecrets - the key file, its failure typed (SecretBox throws plain
// OperationError, which would otherwise read as a database failure).
std::shared_ptr<const SecretBox> loadSecrets(const Config& config)
{
    try {
        return secretCache(config).box();
    } catch (const OperationError& e) {
        throw SecretError(e.what());
    }
}

// accountSecret - what the account logs in with: its unsealed password, or an
// access token for oauth/oauth2 (refreshed after a refused login, since the
// cached token is then not to be trusted); "" for none. Throws SecretError,
// OAuthError, OperationError (database).
std::string accountSecret(const Config& config, Store& store, const Account& account,
                          const AccountStatus& st, Poco::Logger& log)
{
    if (account.auth == AuthKind::OAuth || account.auth == AuthKind::OAuth2)
        return accessTokenFor(store, *loadSecrets(config), account, log, st.authFailures > 0);
    if (!account.hasSecret())
        return {};
    try {
        return secretCache(config).open(account.sealedSecret, "password");
    } catch (const OperationError& e) {
        throw SecretError(e.what());
    }
}

// skipPoll - the account is not polled now (its lease is not this host's, or
// not confirmed: the keeper logs a database outage once); looked at again in
// retryMs, without a log line or a status row.
void skipPoll(const Account& account, Shared& shared, std::int64_t retryMs)
{
    std::lock_guard<std::mutex> lock(shared.mutex);
    shared.running.erase(account.name);
    if (shared.once)
        shared.tick.notify_one();
    else
        shared.schedule(account.name, nowMillis() + retryMs);
}

// pollOne - one account, from the worker's own store; updates its status.
// With leases (PostgreSQL) only under this host's lease, claimed for the poll.
// Returns the report (the worker reopens its database session after a failure).
PollReport pollOne(const Config& config, Store& store, Fetcher& fetcher, const Account& account,
                   Poco::Logger& log, std::atomic<bool>& stopping, Shared& shared,
                   LeaseKeeper& keeper)
{
    std::shared_ptr<LeaseToken> lease;
    if (keeper.enabled()) {
        lease = keeper.token(account.id);
        if (!lease || !lease->begin(keeper.tickMs())) {
            const std::int64_t retry = std::max<std::int64_t>(1000, keeper.tickMs());
            skipPoll(account, shared, std::min<std::int64_t>(account.pollInterval * 1000, retry));
            return {};
        }
    }
    struct EndUse {
        LeaseToken* t;
        ~EndUse()
        {
            if (t)
                t->end();
        }
    } endUse{lease.get()};
    const auto started = std::chrono::steady_clock::now(); // for popgated_poll_duration_seconds
    MessageStore ms(store);
    const std::int64_t now = nowSeconds();
    AccountStatus st;
    PollReport report;
    try {
        st = ms.status(account.id);
        const std::string secret = accountSecret(config, store, account, st, log);
        std::unique_ptr<FileProtocolTrace> trace;
        if (account.debugLogging) {
            if (st.debugUntil == 0)
                st.debugUntil = now + config.integer("debug_logging_expiry");
            if (now >= st.debugUntil) {
                Account off = account;
                off.debugLogging = false;
                store.updateAccount(off);
                st.debugUntil = 0;
                log.notice("account=" + account.name + " debug logging switched itself off after " +
                           config.str("debug_logging_expiry"));
            } else {
                // 0750 when popgated creates it (group as the package's 2750); the
                // traces in it are 0600 (FileProtocolTrace).
                Poco::File logDir(config.str("debug_log_dir"));
                if (!logDir.exists()) {
                    logDir.createDirectories();
                    ::chmod(logDir.path().c_str(), 0750);
                }
                trace = std::make_unique<FileProtocolTrace>(config.str("debug_log_dir") + "/" +
                                                            account.name + ".log");
            }
        } else {
            st.debugUntil = 0;
        }
        report = fetcher.poll(account, secret, trace.get(), stopping, lease);
    } catch (const OAuthError& e) { // the token endpoint refused the grant or was unreachable
        report.ok = false;
        report.failure =
            e.kind() == OAuthErrorKind::Refused ? Failure::OAuthRefused : Failure::OAuthUnavailable;
        report.error = e.what();
    } catch (const SecretError& e) {
        report.ok = false;
        report.failure = Failure::Secret;
        report.error = e.what();
    } catch (const std::exception& e) { // the status, the account update, the trace file
        report.ok = false;
        report.failure = Failure::Database;
        report.error = e.what();
    }

    AccountMetrics& metrics = fetchMetrics().account(account.name);
    metrics.countMessages(
        {report.delivered, report.ignored, report.deferred, report.failed, report.deliveredBytes});
    if (report.leaseLost) {
        // Another host holds the account now: its status is that host's to
        // write; this one forgets the account (the keeper drops the lease).
        if (lease)
            lease->markLost();
        skipPoll(account, shared, account.pollInterval * 1000);
        return report;
    }
    st.accountId = account.id;
    st.lastPollAt = now;
    std::int64_t next = 0; // unix milliseconds
    // An empty mailbox is not news: its poll line is debug level, and it
    // leaves no message-log row (a thousand idle accounts would flood both).
    const bool idle = report.ok && report.listed == 0;
    if (report.ok) {
        st.lastSuccessAt = nowSeconds();
        st.consecutiveFailures = 0;
        st.authFailures = 0;
        next = nowMillis() + jittered(account.pollInterval);
        // An idle poll's line is debug level: not even built unless it is logged.
        if (!idle || log.debug()) {
            const std::string line =
                "account=" + account.name + " poll: " + std::to_string(report.listed) +
                " listed, " + std::to_string(report.delivered) + " delivered, " +
                std::to_string(report.ignored) + " ignored, " + std::to_string(report.deferred) +
                " deferred, " + std::to_string(report.failed) + " failed, " +
                std::to_string(report.deleted) + " deleted";
            if (idle)
                log.debug(line);
            else
                log.information(line);
        }
    } else {
        const Decision d = decide(report.failure);
        ++st.consecutiveFailures;
        // A database outage is logged once by the lease keeper; the polls in
        // flight when it began say so at debug level only.
        if (report.failure == Failure::Database && !store.session().isConnected())
            keeper.reportOutage(report.error);
        const bool quiet = report.failure == Failure::Database && keeper.databaseDown();
        if (d.authFailure)
            ++st.authFailures;
        st.lastError = report.error;
        st.lastErrorAt = nowSeconds();
        const std::int64_t wait = accountBackoff(st.consecutiveFailures, account.pollInterval,
                                                 config.integer("backoff_cap"));
        // The database's outage is not the account's: it is polled again as
        // soon as the keeper confirms its lease again (skipped until then).
        next =
            nowMillis() + (quiet ? std::max<std::int64_t>(1000, keeper.tickMs()) : jittered(wait));
        const std::string line = "account=" + account.name + " server=" + account.server +
                                 " poll failed (" + failureName(report.failure) + ", " + d.meaning +
                                 "): " + escapeText(report.error, EscapeFor::LogText) + "; " +
                                 std::to_string(report.delivered) +
                                 " delivered before; next poll in " +
                                 std::to_string((next - nowMillis() + 500) / 1000) + "s";
        if (quiet)
            log.debug(line);
        else
            log.error(line);
        const std::int64_t limit = config.integer("auto_deactivate_after");
        if (d.authFailure && limit > 0 && st.authFailures >= limit) {
            try {
                Account off = account;
                off.active = false;
                store.updateAccount(off);
                log.error("account=" + account.name + " deactivated after " +
                          std::to_string(st.authFailures) + " authentication failures in a row");
            } catch (const std::exception& e) {
                log.error("account=" + account.name +
                          " cannot deactivate: " + std::string(e.what()));
            }
        }
    }
    metrics.pollEnded(std::chrono::steady_clock::now() - started, st.lastSuccessAt,
                      st.consecutiveFailures);
    st.nextPollAt = next / 1000;
    try {
        // The status is not worth an fsync per poll (a thousand idle accounts
        // would make that most of the work): the next synced commit, or the
        // next poll, takes care of it.
        store.setCommitSync(false);
        Transaction tx(store.session());
        ms.saveStatus(st);
        if (!idle) {
            LogEntry e;
            e.account = account.name;
            e.status = report.ok ? "poll" : "error";
            e.detail =
                report.ok ? std::to_string(report.delivered) + " delivered" : flatten(report.error);
            ms.log(e);
        }
        tx.commit();
        store.setCommitSync(true);
    } catch (const std::exception& e) {
        if (!keeper.databaseDown())
            log.error("account=" + account.name +
                      " cannot record its status: " + std::string(e.what()));
        try {
            store.setCommitSync(true);
        } catch (...) {
        }
    }
    std::lock_guard<std::mutex> lock(shared.mutex);
    shared.running.erase(account.name);
    ++shared.finishedPolls;
    if (!report.ok)
        ++shared.failedPolls;
    // The next poll is at least a second away (jittered()), and the
    // scheduler looks at the heap at least once a second: no need to wake it.
    if (shared.once)
        shared.tick.notify_one();
    else
        shared.schedule(account.name, next);
    return report;
}

// sweepSpool - remove spool files a killed popgated left behind: their
// messages are still on the server (or recorded), the copies are worthless.
// Files of a popgated that still runs (its PID in the name) are left alone.
void sweepSpool(const std::string& dir, Poco::Logger& log)
{
    int removed = 0;
    for (Poco::DirectoryIterator f(dir), end; f != end; ++f) {
        // NAME.PID.N
        const std::string name = f.name();
        const auto last = name.rfind('.');
        const auto pidAt =
            last == std::string::npos ? std::string::npos : name.rfind('.', last - 1);
        int pid = 0;
        if (pidAt != std::string::npos &&
            Poco::NumberParser::tryParse(name.substr(pidAt + 1, last - pidAt - 1), pid) &&
            pid > 0 && pid != static_cast<int>(Poco::Process::id()) && ::kill(pid, 0) == 0)
            continue;
        try {
            f->remove();
            ++removed;
        } catch (const std::exception& e) {
            log.warning("spool " + f->path() + ": cannot remove it: " + e.what());
        }
    }
    if (removed)
        log.notice("removed " + std::to_string(removed) + " spool file(s) left by an earlier run");
}

// housekeeping - forget old ledger rows, drop old quarantined messages.
void housekeeping(const Config& config, Store& store, Poco::Logger& log)
{
    try {
        MessageStore(store).forget(nowSeconds() - config.integer("duplicate_window"));
        const std::string dir = config.str("spool_dir") + "/quarantine";
        if (!Poco::File(dir).exists())
            return;
        const Poco::Timestamp cutoff =
            Poco::Timestamp() - Poco::Timespan(config.integer("quarantine_retention"), 0);
        for (Poco::DirectoryIterator acc(dir), end; acc != end; ++acc) {
            if (!acc->isDirectory())
                continue;
            for (Poco::DirectoryIterator f(acc->path()); f != end; ++f)
                if (f->isFile() && f->getLastModified() < cutoff)
                    f->remove();
        }
    } catch (const std::exception& e) {
        log.warning(std::string("housekeeping: ") + e.what());
    }
}

// provision - make the store match accounts_dir (at start and on SIGHUP).
// Throws InputError for a bad file, OperationError for the database.
void provision(const Config& config, Store& main, Poco::Logger& log)
{
    const auto declared = loadProvisioned(config);
    if (declared.empty())
        return;
    const auto r =
        applyProvisioned(main, SecretBox::loadOrCreate(config.str("secret_key_file")), declared);
    for (const auto& n : r.added)
        log.notice("account=" + n + " provisioned from " + config.str("accounts_dir"));
    for (const auto& n : r.updated)
        log.notice("account=" + n + " updated from " + config.str("accounts_dir"));
    for (const auto& n : r.deactivated)
        log.warning("account=" + n + " deactivated: its file in " + config.str("accounts_dir") +
                    " is gone");
}

} // namespace

int runScheduler(const Config& config, const SchedulerOptions& options, Poco::Logger& log,
                 std::atomic<bool>& stopping, std::atomic<bool>& reload)
{
    // Leases with PostgreSQL (several hosts); with SQLite one popgated per
    // database file, kept by a lock file beside it.
    LeaseKeeper keeper(config, log);
    std::optional<SingleHostLock> singleHost;
    if (!keeper.enabled())
        singleHost.emplace(config.str("database.path"));
    auto main = std::make_unique<Store>(config);
    main->requireCurrentSchema();
    provision(config, *main, log);
    FetchSettings settings = fetchSettings(config);
    settings.instance = keeper.instance();
    settings.leaseMarginMs = keeper.tickMs();
    Poco::File(settings.spoolDir + "/tmp").createDirectories();
    sweepSpool(settings.spoolDir + "/tmp", log);
    std::int64_t onlyId = 0;
    if (!options.onlyAccount.empty()) {
        const auto a = main->account(options.onlyAccount);
        if (!a || !a->active)
            throw InputError("account '" + options.onlyAccount + "': no such active account");
        onlyId = a->id;
    }
    keeper.start(options.once, onlyId);

    // The keeper's own thread: heartbeat and renewals every sixth of lease_period
    // (SQLite: the heartbeat only).
    std::mutex keeperMutex;
    std::condition_variable keeperWake;
    bool keeperDone = false;
    std::thread keeperThread;
    keeperThread = std::thread([&] {
        std::unique_lock<std::mutex> lock(keeperMutex);
        while (!keeperDone) {
            keeperWake.wait_for(lock, Millis(keeper.tickMs()), [&] { return keeperDone; });
            if (keeperDone)
                break;
            lock.unlock();
            keeper.tick();
            if (keeper.identityLost())
                stopping = true;
            lock.lock();
        }
    });
    auto stopKeeper = [&] {
        if (!keeperThread.joinable())
            return;
        {
            std::lock_guard<std::mutex> lock(keeperMutex);
            keeperDone = true;
        }
        keeperWake.notify_all();
        keeperThread.join();
        keeper.stop();
    };

    Shared shared;
    const int workers = static_cast<int>(std::max<std::int64_t>(1, config.integer("workers")));
    std::atomic<bool> done{false};
    std::vector<std::thread> pool;
    for (int i = 0; i < workers; ++i) {
        pool.emplace_back([&] {
            // The worker's own database session, reopened after a database
            // failure (a restarted PostgreSQL leaves the old session dead).
            struct Kit {
                Kit(const Config& c, const FetchSettings& s, Poco::Logger& l)
                    : store(c), filters(store, c, l),
                      fetcher(
                          store, s, [this](const Account& a) { return filters.get(a); }, l)
                {
                }
                Store store;
                FilterCache filters;
                Fetcher fetcher;
                std::uint64_t outages = 0; ///< keeper.outages() when it was opened
            };
            std::unique_ptr<Kit> kit;
            while (true) {
                Account account;
                {
                    std::unique_lock<std::mutex> lock(shared.mutex);
                    shared.work.wait(lock, [&] { return done.load() || !shared.queue.empty(); });
                    if (shared.queue.empty())
                        return;
                    account = shared.queue.front().first;
                    if (shared.queue.front().second > 0)
                        shared.lateness.add(nowMillis() - shared.queue.front().second);
                    shared.queue.pop_front();
                }
                // A session opened before an outage is dead: a new one.
                if (kit && kit->outages != keeper.outages())
                    kit.reset();
                if (!kit) {
                    try {
                        const std::uint64_t outages = keeper.outages();
                        kit = std::make_unique<Kit>(config, settings, log);
                        kit->outages = outages;
                    } catch (const std::exception& e) {
                        keeper.reportOutage(e.what());
                        if (!keeper.databaseDown())
                            log.error("account=" + account.name +
                                      " not polled: " + flatten(e.what()));
                        skipPoll(account, shared, 5000);
                        if (shared.once) {
                            std::lock_guard<std::mutex> lock(shared.mutex);
                            ++shared.failedPolls;
                        }
                        continue;
                    }
                }
                const PollReport r = pollOne(config, kit->store, kit->fetcher, account, log,
                                             stopping, shared, keeper);
                if (!r.ok && r.failure == Failure::Database)
                    kit.reset();
            }
        });
    }

    auto wanted = [&](const Account& a) {
        return a.active && (options.onlyAccount.empty() || a.name == options.onlyAccount);
    };
    // mine - with leases, only the accounts this host holds are polled here.
    auto mine = [&](const Account& a, const std::set<std::int64_t>& held) {
        return !keeper.enabled() || held.count(a.id) != 0;
    };
    // The receiving switch (popgatectl receiving): off, nothing is polled.
    ReceivingWatch receiving(log);
    if (options.once && !receiving.update(*main))
        log.notice("--once: nothing polled");
    else if (options.once) {
        // Every active account once (with leases: every one this host could
        // take), all at the same time (workers permitting).
        std::vector<Account> accounts;
        try {
            accounts = main->accounts();
        } catch (const std::exception& e) {
            log.error(std::string("cannot read the accounts: ") + e.what());
            ++shared.failedPolls;
        }
        const std::set<std::int64_t> held = keeper.held();
        int elsewhere = 0;
        std::unique_lock<std::mutex> lock(shared.mutex);
        shared.once = true;
        for (const auto& a : accounts)
            if (wanted(a)) {
                if (!mine(a, held)) {
                    ++elsewhere;
                    continue;
                }
                shared.running.insert(a.name);
                shared.queue.emplace_back(a, 0);
            }
        if (elsewhere)
            log.notice(std::to_string(elsewhere) +
                       " active account(s) held by other hosts: left to them");
        shared.work.notify_all();
        shared.tick.wait(lock, [&] { return shared.running.empty() || stopping.load(); });
    }

    // The daemon. Accounts are re-read when the configuration generation
    // moved (checked every 5 s) or on SIGHUP; due polls come off a heap, so
    // neither a wake-up nor a finished poll costs a pass over every account.
    // With leases, the accounts polled here follow what the keeper holds.
    std::map<std::string, Account> all;    ///< wanted accounts by name, as last read
    std::map<std::string, Account> active; ///< those this host polls
    std::int64_t loadedGeneration = -1, lastCheck = 0, lastHousekeeping = 0,
                 lastStats = nowSeconds();
    std::uint64_t seenLeases = 0, mainOutages = keeper.outages();
    bool firstLoad = true;
    std::int64_t lastReceivingCheck = 0;
    while (!options.once && !stopping.load()) {
        const std::int64_t now = nowSeconds();
        if (now - lastStats >= 3600) {
            std::lock_guard<std::mutex> lock(shared.mutex);
            log.notice("scheduler: " + shared.lateness.summary() + " (the last " +
                       std::to_string(now - lastStats) + " s)");
            shared.lateness = Lateness();
            lastStats = now;
        }
        const bool forced = reload.exchange(false);
        try {
            if (mainOutages != keeper.outages())
                main.reset(); // opened before an outage: dead
            if (!main) {
                mainOutages = keeper.outages();
                main = std::make_unique<Store>(config);
            }
            if (forced) {
                log.notice("SIGHUP: re-reading " + config.str("accounts_dir") +
                           ", the accounts and the filters");
                try {
                    provision(config, *main, log);
                } catch (const InputError& e) {
                    // The accounts as they were keep being polled.
                    log.error(config.str("accounts_dir") + ": not applied: " + flatten(e.what()));
                }
            }
            if (forced || now - lastCheck >= 5) {
                lastCheck = now;
                const std::int64_t generation = main->generation();
                if (forced || generation != loadedGeneration) {
                    std::map<std::string, Account> fresh;
                    for (auto& a : main->accounts())
                        if (wanted(a))
                            fresh.emplace(a.name, std::move(a));
                    all.swap(fresh);
                    fetchMetrics().setAccounts(static_cast<std::int64_t>(all.size()));
                    seenLeases = ~keeper.changes(); // recompute below
                    log.information("scheduler: configuration generation " +
                                    std::to_string(generation) + ", " + std::to_string(all.size()) +
                                    " active account(s)");
                    loadedGeneration = generation;
                }
            }
        } catch (const std::exception& e) {
            if (main && !main->session().isConnected())
                keeper.reportOutage(e.what());
            main.reset(); // a new session next time
            if (!keeper.databaseDown())
                log.error(std::string("cannot read the accounts: ") + flatten(e.what()));
        }
        // Receiving: one primary-key read a second. Back on, every account is
        // scheduled afresh, spread as at a start (not all overdue at once).
        if (main && now != lastReceivingCheck) {
            lastReceivingCheck = now;
            const bool was = receiving.on();
            const bool on = receiving.update(*main);
            fetchMetrics().setReceiving(on);
            if (on && !was) {
                std::lock_guard<std::mutex> lock(shared.mutex);
                shared.nextPoll.clear();
                shared.due = decltype(shared.due)();
                firstLoad = true;
                seenLeases = ~keeper.changes();
            }
        }
        if (keeper.changes() != seenLeases) {
            seenLeases = keeper.changes();
            const std::set<std::int64_t> held = keeper.held();
            std::map<std::string, Account> fresh;
            for (const auto& [name, a] : all)
                if (mine(a, held))
                    fresh.emplace(name, a);
            std::lock_guard<std::mutex> lock(shared.mutex);
            // Gone, inactive or no longer held: forgotten (their heap entries go stale).
            for (auto it = shared.nextPoll.begin(); it != shared.nextPoll.end();)
                it = fresh.count(it->first) ? std::next(it) : shared.nextPoll.erase(it);
            // First sight. An account taken over from another host keeps the
            // poll time that host recorded (a thousand accounts moving at once
            // do not all come due at once); one overdue or never polled is
            // polled within 5 s; one never polled (or any, at this host's
            // start) spread over up to 30 s.
            std::map<std::int64_t, std::int64_t> recorded; // account id -> next poll (s)
            if (keeper.enabled() && main) {
                try {
                    recorded = LeaseStore(*main, HostIdentity{}, 0).nextPolls();
                } catch (const std::exception&) {
                    // without them, the spread below
                }
            }
            const std::int64_t nowMs = nowMillis();
            for (const auto& [name, a] : fresh) {
                if (shared.nextPoll.count(name) || shared.running.count(name))
                    continue;
                const auto r = recorded.find(a.id);
                const std::int64_t at = r == recorded.end() ? 0 : r->second * 1000;
                const bool spread = firstLoad || at == 0;
                shared.schedule(name,
                                at > nowMs ? at : nowMs + firstPollIn(spread ? a.pollInterval : 5));
            }
            active.swap(fresh);
            if (!all.empty())
                firstLoad = false;
        }
        if (now - lastHousekeeping >= 3600 && main) {
            housekeeping(config, *main, log);
            lastHousekeeping = now;
        }
        std::unique_lock<std::mutex> lock(shared.mutex);
        const std::int64_t nowMs = nowMillis();
        while (receiving.on() && !shared.due.empty() && shared.due.top().first <= nowMs) {
            const Due d = shared.due.top();
            shared.due.pop();
            auto next = shared.nextPoll.find(d.second);
            if (next == shared.nextPoll.end() || next->second != d.first)
                continue; // superseded
            shared.nextPoll.erase(next);
            auto a = active.find(d.second);
            if (a == active.end())
                continue; // deactivated, removed or no longer held while it ran
            shared.running.insert(d.second);
            shared.queue.emplace_back(a->second, d.first);
        }
        if (!shared.queue.empty()) {
            // A worker per kPollsPerWorker queued polls, not one per poll: an idle
            // poll takes a few ms, and workers woken together contend for the
            // database (SQLite's write lock) and the mutexes. Polls still queued
            // a second later (a worker held up by a slow server) wake more then.
            // Woken once the mutex is free: woken under it, each would only wait
            // for it again.
            const int wake = std::min<int>(
                workers,
                static_cast<int>((shared.queue.size() + kPollsPerWorker - 1) / kPollsPerWorker));
            lock.unlock();
            for (int i = 0; i < wake; ++i)
                shared.work.notify_one();
            lock.lock();
        }
        // Until the next poll is due, and at least once a second (SIGTERM,
        // SIGHUP and the 5 s generation check are noticed here).
        const std::int64_t wakeAt =
            shared.due.empty() ? nowMs + 1000 : std::min(nowMs + 1000, shared.due.top().first);
        shared.tick.wait_until(lock, Clock::time_point(Millis(wakeAt)), [&] {
            return stopping.load() || reload.load() || nowMillis() >= wakeAt;
        });
    }
    {
        // Under the mutex: a worker between its predicate check and its wait
        // would otherwise miss this wake-up and never return.
        std::lock_guard<std::mutex> lock(shared.mutex);
        done = true;
    }
    shared.work.notify_all();
    for (auto& t : pool)
        t.join();
    stopKeeper(); // the leases given back only once no poll runs under them
    if (!options.once)
        log.notice("scheduler: " + shared.lateness.summary() + " (the last " +
                   std::to_string(nowSeconds() - lastStats) + " s)");
    if (keeper.identityLost())
        return 1;
    return shared.failedPolls == 0 ? 0 : 1;
}

} // namespace popgate
