// status_commands.cpp - `popgatectl status [NAME] [--long] [--json]` (whether
// popgated runs, by its heartbeat; the receiving switch; one line per account,
// failing ones first, or each account's detail) and `popgatectl receiving
// [on|off]` (the gateway-wide switch every popgated host obeys). Reads the
// hosts, settings, account_status and message_log tables; writes only the
// receiving switch. Nothing here asks popgated itself: the database is the
// one place both read, so what status says holds for every gateway host.
#include "core/errors.h"
#include "core/message_store.h"
#include "core/provisioning.h"
#include "core/settings.h"
#include "core/text.h"
#include "popgatectl/cli.h"

#include <Poco/Environment.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>
#include <algorithm>
#include <iomanip>
#include <pwd.h>
#include <unistd.h>

using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace popgate::cli
{

namespace
{

// Daemon - what the heartbeats say: the live popgated processes, or the last seen.
struct Daemon {
    std::vector<HostView> live;
    std::optional<HostView> lastSeen; ///< the freshest stopped or silent one
    bool running() const { return !live.empty(); }
};

// lastAlive - when a host not running now was last known alive: its last
// heartbeat, or, after a clean stop (which clears it), its start.
std::int64_t lastAlive(const HostView& h)
{
    return h.heartbeatAt > 0 ? h.heartbeatAt : h.startedAt;
}

// readDaemon - a host is live while its heartbeat is younger than three beats
// (a beat is a sixth of lease_period; popgated beats with either database).
Daemon readDaemon(Context& ctx)
{
    const std::int64_t staleMs = ctx.config.integer("lease_period") * 1000 / 2;
    Daemon d;
    for (auto& h : hostBeats(ctx.store())) {
        if (h.heartbeatAt > 0 && h.heartbeatAgeMs < staleMs)
            d.live.push_back(h);
        else if (!d.lastSeen || lastAlive(h) > lastAlive(*d.lastSeen))
            d.lastSeen = h;
    }
    return d;
}

std::string isoMillis(std::int64_t ms)
{
    return ms > 0 ? isoTime(ms / 1000) : "-";
}

void printDaemon(std::ostream& out, const Daemon& d)
{
    for (const auto& h : d.live)
        out << "popgated: running on " << escapeText(h.hostname, EscapeFor::Terminal)
            << (h.hostId != h.hostname
                    ? " (host_id " + escapeText(h.hostId, EscapeFor::Terminal) + ")"
                    : std::string())
            << ", pid " << h.pid << ", version " << escapeText(h.version, EscapeFor::Terminal)
            << ", since " << isoMillis(h.startedAt) << " (heartbeat "
            << std::max<std::int64_t>(0, h.heartbeatAgeMs + 500) / 1000 << " s ago)\n";
    if (d.running())
        return;
    out << "popgated: not running";
    if (d.lastSeen && d.lastSeen->heartbeatAt > 0)
        out << " (last seen " << isoMillis(d.lastSeen->heartbeatAt) << " on "
            << escapeText(d.lastSeen->hostname, EscapeFor::Terminal) << ", pid " << d.lastSeen->pid
            << ")";
    else if (d.lastSeen) // a clean stop clears the heartbeat
        out << " (stopped; last started " << isoMillis(d.lastSeen->startedAt) << " on "
            << escapeText(d.lastSeen->hostname, EscapeFor::Terminal) << ", pid " << d.lastSeen->pid
            << ")";
    else
        out << " (never seen with this database)";
    out << "\n";
}

Poco::JSON::Object::Ptr daemonJson(const Daemon& d)
{
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("running", d.running());
    Poco::JSON::Array::Ptr hosts = new Poco::JSON::Array;
    for (const auto& h : d.live) {
        Poco::JSON::Object::Ptr x = new Poco::JSON::Object(true);
        x->set("host_id", h.hostId);
        x->set("hostname", h.hostname);
        x->set("pid", h.pid);
        x->set("version", h.version);
        x->set("since", isoMillis(h.startedAt));
        x->set("last_heartbeat", isoMillis(h.heartbeatAt));
        hosts->add(x);
    }
    o->set("hosts", hosts);
    o->set("last_seen", d.lastSeen ? isoMillis(d.lastSeen->heartbeatAt) : "-");
    o->set("last_started", d.lastSeen ? isoMillis(d.lastSeen->startedAt) : "-");
    return o;
}

std::string receivingLine(const ReceivingState& r)
{
    std::string line = std::string("receiving: ") + (r.on ? "on" : "off");
    if (r.changedAt > 0)
        line += std::string(" (switched ") + (r.on ? "on " : "off ") + isoTime(r.changedAt) +
                (r.changedBy.empty() ? "" : " by " + escapeText(r.changedBy, EscapeFor::Terminal)) +
                ")";
    if (!r.on)
        line += "; no account is polled (popgatectl receiving on to resume)";
    return line;
}

Poco::JSON::Object::Ptr receivingJson(const ReceivingState& r)
{
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("on", r.on);
    o->set("changed_at", isoTime(r.changedAt));
    o->set("changed_by", r.changedBy);
    return o;
}

// Row - one account as status shows it.
struct Row {
    Account account;
    AccountStatus status;
    std::map<std::string, int> counts; ///< last 24 h, by log status
    std::vector<std::string> problems;
    /// state - inactive, broken (a filter or profile gone), failing, ok, new.
    std::string state() const
    {
        if (!account.active)
            return "inactive";
        if (!problems.empty())
            return "broken";
        if (status.consecutiveFailures > 0)
            return "failing";
        return status.lastSuccessAt > 0 ? "ok" : "new";
    }
    bool failing() const
    {
        const std::string s = state();
        return s == "broken" || s == "failing";
    }
};

// nextPollText - "in 2m", "due", or "-" when nothing will poll the account
// (popgated not running, receiving off, the account inactive or broken).
std::string nextPollText(const Row& r, bool polling, std::int64_t now)
{
    if (!polling || !r.account.active || !r.problems.empty() || r.status.nextPollAt == 0)
        return "-";
    return r.status.nextPollAt <= now ? "due" : "in " + ageText(r.status.nextPollAt - now);
}

std::string lastSuccessText(const Row& r, std::int64_t now)
{
    return r.status.lastSuccessAt > 0 ? ageText(now - r.status.lastSuccessAt) + " ago" : "never";
}

void printTable(std::ostream& out, const std::vector<Row>& rows, bool polling, std::int64_t now)
{
    std::vector<std::vector<std::string>> cells;
    cells.push_back({"ACCOUNT", "STATE", "LAST SUCCESS", "NEXT", "DELIVERED", "IGNORED", "DEFERRED",
                     "FAILED (24 h)"});
    for (const auto& r : rows) {
        auto c = r.counts;
        cells.push_back({escapeText(r.account.name, EscapeFor::Terminal), r.state(),
                         lastSuccessText(r, now), nextPollText(r, polling, now),
                         std::to_string(c["delivered"]), std::to_string(c["ignored"]),
                         std::to_string(c["deferred"]), std::to_string(c["failed"])});
    }
    std::vector<std::size_t> width(cells.front().size(), 0);
    for (const auto& line : cells)
        for (std::size_t i = 0; i < line.size(); ++i)
            width[i] = std::max(width[i], line[i].size());
    for (const auto& line : cells) {
        std::string text;
        for (std::size_t i = 0; i < line.size(); ++i) {
            text += line[i];
            if (i + 1 < line.size())
                text += std::string(width[i] - line[i].size() + 2, ' ');
        }
        out << text << "\n";
    }
}

void printDetail(std::ostream& out, Row& r, bool polling, const std::string& lease)
{
    const AccountStatus& s = r.status;
    auto& c = r.counts;
    out << escapeText(r.account.name, EscapeFor::Terminal) << ": "
        << (r.account.active ? "active" : "inactive") << ", " << r.state() << "\n"
        << "  last poll:    " << isoTime(s.lastPollAt) << "\n"
        << "  last success: " << isoTime(s.lastSuccessAt) << "\n";
    if (polling)
        out << "  next poll:    " << isoTime(s.nextPollAt) << "\n";
    out << "  failures:     " << s.consecutiveFailures << " in a row\n";
    if (!lease.empty())
        out << "  held by:      " << lease << "\n";
    for (const auto& p : r.problems)
        out << "  problem:      " << p << "\n";
    if (!s.lastError.empty())
        out << "  last error:   " << isoTime(s.lastErrorAt) << " "
            << escapeText(s.lastError, EscapeFor::Terminal) << "\n";
    out << "  last 24 h:    " << c["delivered"] << " delivered, " << c["ignored"] << " ignored, "
        << c["deferred"] << " deferred, " << c["failed"] << " failed\n";
}

Poco::JSON::Object::Ptr rowJson(Row& r, bool polling, std::int64_t now, const std::string* lease)
{
    const AccountStatus& s = r.status;
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("account", r.account.name);
    o->set("active", r.account.active);
    o->set("state", r.state());
    o->set("last_poll", isoTime(s.lastPollAt));
    o->set("last_success", isoTime(s.lastSuccessAt));
    o->set("last_error", s.lastError);
    o->set("last_error_at", isoTime(s.lastErrorAt));
    o->set("consecutive_failures", s.consecutiveFailures);
    o->set("next_poll", nextPollText(r, polling, now) == "-" ? "-" : isoTime(s.nextPollAt));
    Poco::JSON::Object::Ptr day = new Poco::JSON::Object(true);
    for (const char* k : {"delivered", "ignored", "deferred", "failed", "uncertain", "released"})
        day->set(k, r.counts[k]);
    o->set("last_24h", day);
    Poco::JSON::Array::Ptr probs = new Poco::JSON::Array;
    for (const auto& p : r.problems)
        probs->add(p);
    o->set("problems", probs);
    if (lease)
        o->set("lease", *lease);
    return o;
}

// whoAmI - "USER@HOST" for the record of a switch.
std::string whoAmI()
{
    const passwd* pw = ::getpwuid(::geteuid());
    const std::string user = pw ? pw->pw_name : "uid" + std::to_string(::geteuid());
    return user + "@" + Poco::Environment::nodeName();
}

} // namespace

int statusCommand(Context& ctx, const std::vector<std::string>& args)
{
    OptionSet opts;
    opts.addOption(Option("json", "", "JSON output"));
    opts.addOption(Option("long", "", "each account's detail"));
    const ParsedArgs parsed = parseArgs(args, opts);
    if (parsed.positional.size() > 1)
        throw InputError("usage: popgatectl status [NAME] [--long] [--json]");
    const bool json = ctx.json || parsed.has("json");
    Store& store = ctx.store();
    std::vector<Account> accounts;
    if (parsed.positional.empty()) {
        accounts = store.accounts();
    } else {
        auto a = store.account(parsed.positional[0]);
        if (!a)
            throw InputError("no such account '" +
                             escapeText(parsed.positional[0], EscapeFor::Terminal) + "'");
        accounts.push_back(std::move(*a));
    }
    const bool detail = parsed.has("long") || !parsed.positional.empty();

    const Daemon daemon = readDaemon(ctx);
    const ReceivingState receiving = readReceiving(store);
    const bool polling = daemon.running() && receiving.on;
    const std::int64_t now = nowSeconds();

    MessageStore ms(store);
    LogQuery q;
    q.since = now - 86400;
    q.limit = 1000000;
    if (!parsed.positional.empty())
        q.account = accounts.front().name;
    std::map<std::string, std::map<std::string, int>> counts;
    for (const auto& e : ms.logEntries(q))
        if (!e.uidl.empty())
            ++counts[e.account][e.status];
    std::vector<Row> rows;
    rows.reserve(accounts.size());
    for (auto& a : accounts) {
        Row r;
        r.status = ms.status(a.id);
        r.counts = counts[a.name];
        // A filter or OAuth profile that has gone: the account is not fetched.
        for (const auto& p : referenceProblems(store, a))
            r.problems.push_back(p.field + ": " + p.message + " (not fetched until this is fixed)");
        r.account = std::move(a);
        rows.push_back(std::move(r));
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) {
        return x.failing() != y.failing() ? x.failing() : x.account.name < y.account.name;
    });
    const auto leases = leaseSummaries(ctx, json); // host_commands.cpp; empty with SQLite
    auto leaseOf = [&](const Row& r) -> const std::string* {
        const auto it = leases.find(r.account.id);
        return it == leases.end() ? nullptr : &it->second;
    };

    if (json) {
        Poco::JSON::Object o(true);
        o.set("popgated", daemonJson(daemon));
        o.set("receiving", receivingJson(receiving));
        Poco::JSON::Array::Ptr arr = new Poco::JSON::Array;
        for (auto& r : rows)
            arr->add(rowJson(r, polling, now, leaseOf(r)));
        o.set("accounts", arr);
        printJson(*ctx.out, o);
        *ctx.out << "\n";
        return 0;
    }
    auto& out = *ctx.out;
    printDaemon(out, daemon);
    out << receivingLine(receiving) << "\n";
    if (rows.empty()) {
        out << "no accounts (popgatectl account add NAME)\n";
        return 0;
    }
    if (!detail) {
        printTable(out, rows, polling, now);
        return 0;
    }
    for (auto& r : rows) {
        const std::string* lease = leaseOf(r);
        printDetail(out, r, polling, lease ? *lease : std::string());
    }
    return 0;
}

int receivingCommand(Context& ctx, const std::vector<std::string>& args)
{
    OptionSet opts;
    opts.addOption(Option("json", "", "JSON output"));
    const ParsedArgs parsed = parseArgs(args, opts);
    const bool json = ctx.json || parsed.has("json");
    const std::string usage = "usage: popgatectl receiving [on|off] [--json]";
    if (parsed.positional.size() > 1)
        throw InputError(usage);
    Store& store = ctx.store();
    std::optional<ReceivingState> before;
    if (!parsed.positional.empty()) {
        const std::string& word = parsed.positional[0];
        if (word != "on" && word != "off")
            throw InputError("receiving: '" + escapeText(word, EscapeFor::Terminal).substr(0, 40) +
                             "' is neither on nor off; " + usage);
        before = setReceiving(store, word == "on", whoAmI());
    }
    const ReceivingState now = readReceiving(store);
    if (json) {
        Poco::JSON::Object::Ptr o = receivingJson(now);
        if (before)
            o->set("was_on", before->on);
        printJson(*ctx.out, *o);
        *ctx.out << "\n";
        return 0;
    }
    *ctx.out << receivingLine(now) << "\n";
    if (before && before->on != now.on)
        *ctx.out << (now.on ? "every popgated resumes polling within a few seconds\n"
                            : "every popgated stops polling within a few seconds (polls in "
                              "flight finish); popgate-milter is not affected\n");
    else if (before)
        *ctx.out << "(it was " << (now.on ? "on" : "off") << " already)\n";
    return 0;
}

} // namespace popgate::cli
