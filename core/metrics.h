// metrics.h - the counters popgated and popgate-milter expose to Prometheus,
// and their rendering in the text exposition format 0.0.4. Pure: no sockets
// (the HTTP endpoint is plugin/daemon/metrics_http.h). A hot path pays one
// relaxed atomic add; the only lock guards popgated's list of accounts (taken
// once per poll to find the account's entry, and briefly per scrape to copy
// the list; the lines themselves are written without it).
// SECURITY: account names come from the operator but are escaped as untrusted.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <ostream>
#include <string>

namespace popgate
{

/// kMetricsContentType - the Content-Type of a scrape (text exposition format 0.0.4).
extern const char* const kMetricsContentType;

/// prometheusLabelValue - value as the inside of a quoted label value: control
/// bytes, C1 controls and bytes that are not valid UTF-8 become the text \xHH
/// (escapeText, EscapeFor::Terminal), then backslash, double quote and line
/// feed are escaped as the format requires (\\, \", \n). Never throws.
std::string prometheusLabelValue(const std::string& value);

/// MessageCounts - what one poll did with its messages (popgated's PollReport).
struct MessageCounts {
    std::int64_t delivered = 0;
    std::int64_t ignored = 0;
    std::int64_t deferred = 0;
    std::int64_t failed = 0;
    std::int64_t deliveredBytes = 0; ///< octets of the delivered messages (their ledger sizes)
};

/// AccountMetrics - one account's series in popgated; lives as long as its registry.
class AccountMetrics
{
public:
    /// countMessages - adds a poll's message outcomes (relaxed atomic adds).
    void countMessages(const MessageCounts& counts);
    /// pollEnded - one more poll of duration; the account's last success (unix seconds,
    /// 0: never) and its failures in a row, as its status row says after this poll.
    void pollEnded(std::chrono::steady_clock::duration duration, std::int64_t lastSuccess,
                   std::int64_t consecutiveFailures);

private:
    friend class FetchMetrics;
    std::string label_; ///< account="ESCAPED"
    std::atomic<std::uint64_t> delivered_{0}, ignored_{0}, deferred_{0}, failed_{0};
    std::atomic<std::uint64_t> deliveredBytes_{0};
    std::atomic<std::uint64_t> polls_{0}, pollMicros_{0};
    std::atomic<std::int64_t> lastSuccess_{0}, consecutiveFailures_{0};
};

/// FetchMetrics - popgated's registry: process series and one AccountMetrics per
/// account polled since the start (an account appears after its first poll and
/// stays until popgated stops, as Prometheus expects of a counter).
class FetchMetrics
{
public:
    FetchMetrics();
    /// account - name's entry, made at first sight; the reference stays valid as long
    /// as the registry.
    AccountMetrics& account(const std::string& name);
    /// setAccounts - the number of active accounts popgated polls, as last read.
    void setAccounts(std::int64_t count) { accounts_.store(count, std::memory_order_relaxed); }
    /// setReceiving - the receiving switch as popgated last read it; popgated_receiving is
    /// rendered only once this was called.
    void setReceiving(bool on) { receiving_.store(on ? 1 : 0, std::memory_order_relaxed); }
    /// render - every series, streamed to out as it is written (accounts in name order).
    void render(std::ostream& out) const;

private:
    mutable std::mutex mutex_;
    std::map<std::string, AccountMetrics> byName_;
    std::atomic<std::int64_t> accounts_{0};
    std::atomic<int> receiving_{-1}; ///< -1: never set (not rendered)
    std::int64_t startTime_ = 0;
};

/// fetchMetrics - popgated's process-wide registry (made before main).
FetchMetrics& fetchMetrics();

/// MilterVerdict - what popgate-milter answered for one message (or transaction).
enum class MilterVerdict {
    Accepted,           ///< passed the system filter (or none applies)
    Rejected,           ///< blocked, milter.action = reject (550 5.7.1)
    Discarded,          ///< blocked, milter.action = discard
    Quarantined,        ///< blocked, milter.action = quarantine (the MTA's hold queue)
    Tagged,             ///< blocked, milter.action = tag (X-Popgate-Filter added, accepted)
    Reinjected,         ///< a copy popgated reinjected, accepted without filtering
    DuplicateDropped,   ///< a copy of fetched mail already delivered or in flight: discarded
    AcceptedUnfiltered, ///< the database failed and milter.on_database_error = accept
    Tempfailed,         ///< 451 4.3.0: database, configuration or internal error
};

/// milterVerdictName - the verdict's label value ("accepted", "duplicate_dropped", ...).
const char* milterVerdictName(MilterVerdict verdict);

/// MilterMetrics - popgate-milter's registry: one counter per verdict.
class MilterMetrics
{
public:
    MilterMetrics();
    /// count - one more message with this verdict (a relaxed atomic add).
    void count(MilterVerdict verdict)
    {
        verdicts_[static_cast<std::size_t>(verdict)].fetch_add(1, std::memory_order_relaxed);
    }
    /// render - every series (every verdict, 0 included), streamed to out.
    void render(std::ostream& out) const;

private:
    static constexpr std::size_t kVerdicts =
        static_cast<std::size_t>(MilterVerdict::Tempfailed) + 1;
    std::array<std::atomic<std::uint64_t>, kVerdicts> verdicts_{};
    std::int64_t startTime_ = 0;
};

/// milterMetrics - popgate-milter's process-wide registry (made before main).
MilterMetrics& milterMetrics();

} // namespace popgate
