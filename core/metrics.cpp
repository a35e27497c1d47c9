// metrics.cpp - see metrics.h. The output is written line by line to the
// caller's stream: with ten thousand accounts a scrape never builds its whole
// text in memory, and no lock is held while it is written.
#include "core/metrics.h"

#include "core/text.h"

#include <vector>

namespace popgate
{

const char* const kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

namespace
{

std::int64_t unixNow()
{
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// family - the # HELP and # TYPE lines of one metric.
void family(std::ostream& out, const char* name, const char* type, const char* help)
{
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

// sample - "NAME{LABELS} VALUE" (no braces when labels is empty).
template <typename T>
void sample(std::ostream& out, const char* name, const std::string& labels, T value)
{
    out << name;
    if (!labels.empty())
        out << '{' << labels << '}';
    out << ' ' << std::to_string(value) << '\n';
}

// seconds - microseconds as decimal seconds ("1.000250"), whatever the stream's locale.
std::string seconds(std::uint64_t micros)
{
    std::string fraction = std::to_string(micros % 1000000);
    return std::to_string(micros / 1000000) + "." + std::string(6 - fraction.size(), '0') +
           fraction;
}

std::uint64_t load(const std::atomic<std::uint64_t>& a)
{
    return a.load(std::memory_order_relaxed);
}

std::int64_t load(const std::atomic<std::int64_t>& a)
{
    return a.load(std::memory_order_relaxed);
}

std::uint64_t positive(std::int64_t n)
{
    return n > 0 ? static_cast<std::uint64_t>(n) : 0;
}

} // namespace

std::string prometheusLabelValue(const std::string& value)
{
    const std::string safe = escapeText(value, EscapeFor::Terminal);
    std::string out;
    out.reserve(safe.size());
    for (char c : safe) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n') // escapeText leaves none; the format's rule, kept on its own
            out += "\\n";
        else
            out += c;
    }
    return out;
}

void AccountMetrics::countMessages(const MessageCounts& c)
{
    delivered_.fetch_add(positive(c.delivered), std::memory_order_relaxed);
    ignored_.fetch_add(positive(c.ignored), std::memory_order_relaxed);
    deferred_.fetch_add(positive(c.deferred), std::memory_order_relaxed);
    failed_.fetch_add(positive(c.failed), std::memory_order_relaxed);
    deliveredBytes_.fetch_add(positive(c.deliveredBytes), std::memory_order_relaxed);
}

void AccountMetrics::pollEnded(std::chrono::steady_clock::duration duration,
                               std::int64_t lastSuccess, std::int64_t consecutiveFailures)
{
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(duration).count();
    pollMicros_.fetch_add(positive(micros), std::memory_order_relaxed);
    polls_.fetch_add(1, std::memory_order_relaxed);
    lastSuccess_.store(lastSuccess, std::memory_order_relaxed);
    consecutiveFailures_.store(consecutiveFailures, std::memory_order_relaxed);
}

FetchMetrics::FetchMetrics() : startTime_(unixNow()) {}

AccountMetrics& FetchMetrics::account(const std::string& name)
{
    std::lock_guard<std::mutex> lock(mutex_);
    auto [it, made] = byName_.try_emplace(name);
    if (made)
        it->second.label_ = "account=\"" + prometheusLabelValue(name) + "\"";
    return it->second;
}

void FetchMetrics::render(std::ostream& out) const
{
    std::vector<const AccountMetrics*> all;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        all.reserve(byName_.size());
        for (const auto& [name, m] : byName_)
            all.push_back(&m); // map nodes never move, and none is ever erased
    }
    family(out, "popgated_info", "gauge", "Always 1; the version of popgated.");
    sample(out, "popgated_info", "version=\"" + prometheusLabelValue(POPGATE_VERSION) + "\"", 1);
    family(out, "popgated_start_time_seconds", "gauge", "When popgated started, unix seconds.");
    sample(out, "popgated_start_time_seconds", "", startTime_);
    family(out, "popgated_accounts", "gauge",
           "Active accounts popgated polls, as it last read them from the database.");
    sample(out, "popgated_accounts", "", load(accounts_));
    if (const int receiving = receiving_.load(std::memory_order_relaxed); receiving >= 0) {
        family(out, "popgated_receiving", "gauge",
               "1 when the receiving switch is on, 0 when it is off (nothing is polled).");
        sample(out, "popgated_receiving", "", receiving);
    }

    family(out, "popgated_messages_total", "counter",
           "Messages by the state a poll left them in (delivered, ignored, deferred, failed).");
    static const char* const kOutcomes[] = {"delivered", "ignored", "deferred", "failed"};
    for (const AccountMetrics* m : all) {
        const std::atomic<std::uint64_t>* values[] = {&m->delivered_, &m->ignored_, &m->deferred_,
                                                      &m->failed_};
        for (std::size_t i = 0; i < 4; ++i)
            out << "popgated_messages_total{" << m->label_ << ",outcome=\"" << kOutcomes[i]
                << "\"} " << std::to_string(load(*values[i])) << '\n';
    }
    family(out, "popgated_delivered_bytes_total", "counter",
           "Octets of the messages delivered to the MTA (their sizes in the ledger).");
    for (const AccountMetrics* m : all)
        sample(out, "popgated_delivered_bytes_total", m->label_, load(m->deliveredBytes_));
    family(out, "popgated_poll_duration_seconds", "summary",
           "Time the polls of the account took (connect to QUIT), and how many ended.");
    for (const AccountMetrics* m : all) {
        out << "popgated_poll_duration_seconds_sum{" << m->label_ << "} "
            << seconds(load(m->pollMicros_)) << '\n';
        sample(out, "popgated_poll_duration_seconds_count", m->label_, load(m->polls_));
    }
    family(out, "popgated_last_success_timestamp_seconds", "gauge",
           "When a poll of the account last succeeded, unix seconds (0: never).");
    for (const AccountMetrics* m : all)
        sample(out, "popgated_last_success_timestamp_seconds", m->label_, load(m->lastSuccess_));
    family(out, "popgated_consecutive_failures", "gauge",
           "Polls of the account that failed in a row (0 after a success).");
    for (const AccountMetrics* m : all)
        sample(out, "popgated_consecutive_failures", m->label_, load(m->consecutiveFailures_));
}

// The registries are made before main, so that their start times are the process's
// (a function-local static would be made at the first poll or scrape).
namespace
{
FetchMetrics gFetchMetrics;
} // namespace

FetchMetrics& fetchMetrics()
{
    return gFetchMetrics;
}

const char* milterVerdictName(MilterVerdict verdict)
{
    switch (verdict) {
    case MilterVerdict::Accepted:
        return "accepted";
    case MilterVerdict::Rejected:
        return "rejected";
    case MilterVerdict::Discarded:
        return "discarded";
    case MilterVerdict::Quarantined:
        return "quarantined";
    case MilterVerdict::Tagged:
        return "tagged";
    case MilterVerdict::Reinjected:
        return "reinjected";
    case MilterVerdict::DuplicateDropped:
        return "duplicate_dropped";
    case MilterVerdict::AcceptedUnfiltered:
        return "accepted_unfiltered";
    case MilterVerdict::Tempfailed:
        return "tempfailed";
    }
    return "unknown";
}

MilterMetrics::MilterMetrics() : startTime_(unixNow()) {}

void MilterMetrics::render(std::ostream& out) const
{
    family(out, "popgate_milter_info", "gauge", "Always 1; the version of popgate-milter.");
    sample(out, "popgate_milter_info", "version=\"" + prometheusLabelValue(POPGATE_VERSION) + "\"",
           1);
    family(out, "popgate_milter_start_time_seconds", "gauge",
           "When popgate-milter started, unix seconds.");
    sample(out, "popgate_milter_start_time_seconds", "", startTime_);
    family(out, "popgate_milter_verdicts_total", "counter",
           "Messages by what popgate-milter answered the MTA.");
    for (std::size_t i = 0; i < kVerdicts; ++i)
        sample(out, "popgate_milter_verdicts_total",
               std::string("verdict=\"") + milterVerdictName(static_cast<MilterVerdict>(i)) + "\"",
               load(verdicts_[i]));
}

namespace
{
MilterMetrics gMilterMetrics;
} // namespace

MilterMetrics& milterMetrics()
{
    return gMilterMetrics;
}

} // namespace popgate
