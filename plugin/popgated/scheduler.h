// scheduler.h - popgated's poll loop: every active account is polled at its
// own interval (with jitter) by a pool of workers, one session per account at
// a time; a failing account backs off (core/policy.h) without delaying others.
// Each worker owns its database session. Status and the per-poll log line are
// written here; the message work is the Fetcher's.
#pragma once

#include "core/config.h"

#include <Poco/Logger.h>
#include <atomic>
#include <string>

namespace popgate
{

struct SchedulerOptions {
    bool once = false;       ///< one pass over the active accounts, then return
    std::string onlyAccount; ///< poll just this account
};

/// runScheduler - poll until stopping is set (or, with once, after one pass);
/// reload asks for accounts and filters to be re-read. Returns 0 when every
/// poll of a --once pass succeeded, 1 otherwise. Throws OperationError for a
/// start-up failure (database, schema, key file).
int runScheduler(const Config& config, const SchedulerOptions& options, Poco::Logger& log,
                 std::atomic<bool>& stopping, std::atomic<bool>& reload);

} // namespace popgate
