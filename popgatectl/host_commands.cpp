// host_commands.cpp - `popgatectl hosts` (the popgated processes sharing a
// PostgreSQL database: heartbeat, version, accounts held) and the lease line
// of `popgatectl status` (which host holds each account, until when). Reads
// the tables core/lease.h writes; never takes or changes a lease. With SQLite
// there is one popgated per database file and no host registry.
#include "core/lease.h"
#include "popgatectl/cli.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace popgate::cli
{

namespace
{

// isoMillis - a database-clock time in Unix ms as isoTime() shows seconds.
std::string isoMillis(std::int64_t ms)
{
    return ms > 0 ? isoTime(ms / 1000) : "-";
}

// liveFor - a host is live while its heartbeat is younger than the lease
// period it renews within (the configured one: the hosts should share it).
bool isLive(const HostView& h, std::int64_t periodMs)
{
    return h.heartbeatAt > 0 && h.heartbeatAgeMs < periodMs;
}

} // namespace

int hostsCommand(Context& ctx, const std::vector<std::string>& args)
{
    OptionSet opts;
    opts.addOption(Option("json", "", "JSON output"));
    const ParsedArgs parsed = parseArgs(args, opts);
    requirePositional(parsed, 0, "hosts [--json]");
    Store& store = ctx.store();
    const bool json = ctx.json || parsed.has("json");
    if (store.dialect() != "postgresql") {
        if (json)
            *ctx.out << "[]\n";
        else
            *ctx.out << "database " << store.describe()
                     << ": SQLite serves one popgated per database file; no host registry\n";
        return 0;
    }
    const std::int64_t periodMs = ctx.config.integer("lease_period") * 1000;
    LeaseStore leases(store, HostIdentity{}, 0);
    Poco::JSON::Array arr;
    for (const auto& h : leases.hosts()) {
        const bool live = isLive(h, periodMs);
        if (json) {
            Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
            o->set("host_id", h.hostId);
            o->set("hostname", h.hostname);
            o->set("pid", h.pid);
            o->set("version", h.version);
            o->set("started", isoMillis(h.startedAt));
            o->set("last_heartbeat", isoMillis(h.heartbeatAt));
            o->set("heartbeat_age_ms", h.heartbeatAt > 0 ? h.heartbeatAgeMs : -1);
            o->set("live", live);
            o->set("accounts_held", h.accountsHeld);
            arr.add(o);
            continue;
        }
        auto& out = *ctx.out;
        out << escapeText(h.hostId, EscapeFor::Terminal) << ": "
            << (live                 ? "live"
                : h.heartbeatAt == 0 ? "stopped"
                                     : "silent")
            << "\n"
            << "  host:           " << escapeText(h.hostname, EscapeFor::Terminal) << " pid "
            << h.pid << "\n"
            << "  version:        " << escapeText(h.version, EscapeFor::Terminal) << "\n"
            << "  started:        " << isoMillis(h.startedAt) << "\n"
            << "  last heartbeat: " << isoMillis(h.heartbeatAt);
        if (h.heartbeatAt > 0)
            out << " (" << (h.heartbeatAgeMs + 500) / 1000 << " s ago)";
        out << "\n"
            << "  accounts held:  " << h.accountsHeld << "\n";
    }
    if (json) {
        printJson(*ctx.out, arr);
        *ctx.out << "\n";
    }
    return 0;
}

std::map<std::int64_t, std::string> leaseSummaries(Context& ctx, bool json)
{
    std::map<std::int64_t, std::string> out;
    if (ctx.store().dialect() != "postgresql")
        return out;
    LeaseStore leases(ctx.store(), HostIdentity{}, 0);
    for (const auto& [id, l] : leases.leases()) {
        if (l.remainingMs <= 0 || l.holder.empty())
            out[id] = json ? "" : "none (free: the next host to look takes it)";
        else
            out[id] = json
                          ? l.holder + " " + isoMillis(l.expiresAt)
                          : escapeText(l.holder, EscapeFor::Terminal) + " until " +
                                isoMillis(l.expiresAt) + " (epoch " + std::to_string(l.epoch) + ")";
    }
    return out;
}

} // namespace popgate::cli
