// popgated - the fetcher daemon: pulls mail from every active POP3 account
// and reinjects it into the local MTA over SMTP.
//
// Runs as: the unprivileged popgate user (the systemd unit's User=; started
// as root it switches to it, or to --user, before it opens the database or a
// key, and exits 78 rather than keep root); it is the only popgate program
// that unseals account secrets. Files it creates are never world-readable
// (umask 027 plus explicit modes). Reads: popgate.conf,
// accounts.d, the secret and header key files, the database. Writes: the
// database (ledger, message log, status), spool_dir, debug_log_dir.
// Talks to: the POP3 servers (TLS verified by default) and the local MTA's
// reinjection listener; with metrics_listen it serves Prometheus metrics over
// HTTP (loopback unless written out, no authentication). Logs to syslog,
// facility mail, tag popgated.
// Signals: SIGHUP re-reads accounts and filters; SIGTERM/SIGINT finish the
// message in flight, then QUIT. --dry-run (dry_run.h) reads the same and
// writes nothing: no SMTP, no DELE, no database row, no spool file.
#include "core/config.h"
#include "core/dbdrivers.h"
#include "core/metrics.h"
#include "core/provisioning.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "plugin/daemon/daemon.h"
#include "plugin/daemon/metrics_http.h"
#include "plugin/popgated/dry_run.h"
#include "plugin/popgated/lease_keeper.h"
#include "plugin/popgated/scheduler.h"

#include <Poco/Logger.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>
#include <atomic>
#include <iostream>
#include <signal.h>
#include <sqlite3.h>
#include <thread>

using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace popgate
{

namespace
{

const char* const kDefaultUser = "popgate";

std::atomic<bool> stopping{false};
std::atomic<bool> reloading{false};

// handledSignals - what waitForSignals takes; blocked in every other thread.
sigset_t handledSignals()
{
    return signalSet({SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR2});
}

// sqlitePagesOnDemand - SQLite gives each connection's page cache a block of 20 pages
// (85 KiB) up front; the scheduler's and the lease keeper's connections read a few pages
// each. Pages one at a time as they are needed instead: 250 KiB less private memory in
// bench case 1 (bench/results/perf-memory.md); cache_size still bounds each cache. Only
// before SQLite's first open: afterwards SQLite refuses it (SQLITE_MISUSE), which changes
// nothing else.
void sqlitePagesOnDemand()
{
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, 0);
}

} // namespace

class Popgated : public Poco::Util::ServerApplication
{
protected:
    // defineOptions - popgated runs in the foreground (the unit's Type=simple): Poco's
    // --daemon, --pidfile and --umask are not offered (umask is 027 whatever is asked).
    void defineOptions(OptionSet& options) override
    {
        DaemonOptions::define(
            options,
            {Option("once", "", "one pass over the active accounts, then exit"),
             Option("account", "", "poll only this account").argument("NAME"),
             Option("dry-run", "",
                    "connect, list, retrieve and screen once; print what a poll would do with "
                    "each message, deliver, delete and record nothing"),
             Option("check-config", "",
                    "check what a start checks (configuration, accounts.d, keys, spool_dir, "
                    "database), then exit")},
            kDefaultUser);
    }

    void handleOption(const std::string& name, const std::string& value) override
    {
        ServerApplication::handleOption(name, value);
        if (daemon_.take(name, value))
            return;
        if (name == "once")
            options_.once = true;
        else if (name == "account")
            options_.onlyAccount = value;
        else if (name == "check-config")
            check_ = true;
        else if (name == "dry-run")
            dryRun_ = true;
    }

    int main(const std::vector<std::string>&) override
    {
        if (daemon_.help) {
            printHelp(options(), "popgated",
                      "[--config=FILE] [--once] [--dry-run] [--account=NAME] [--check-config] "
                      "[--user=NAME] [--log=stderr]",
                      "Fetch mail from POP3 accounts and reinject it into the local MTA.");
            return 0;
        }
        if (daemon_.version) {
            std::cout << "popgated " POPGATE_VERSION "\n";
            return 0;
        }
        return exitCodeOf("popgated", [this] { return serve(); });
    }

private:
    // serve - after the options: check what a start checks, then stop there (--check-config)
    // or poll until stopped. Both go through the same steps, so ExecStartPre fails exactly
    // when the start would.
    int serve()
    {
        checkLogTarget(daemon_.logTo);
        const Config config = Config::resolve(daemon_.configPath);
        const RunAs runAs = leaveRoot("popgated", daemon_.user, kDefaultUser);
        restrictUmask();
        sqlitePagesOnDemand();
        registerDatabaseDrivers();
        const std::size_t provisioned = preflight(config);
        if (check_) {
            std::cout << "popgated: configuration OK: " << config.origin() << ", " << provisioned
                      << " provisioned account(s), user " << runAs.user << "\n";
            return 0;
        }
        // A dry run is a command an operator reads: its few log lines go to stderr.
        Poco::Logger& log = setUpLogging("popgated", dryRun_ ? "stderr" : daemon_.logTo);
        // No interactive certificate handler: a failed verification throws.
        Poco::Net::initializeSSL();
        if (dryRun_)
            return runDryRun(config, options_.onlyAccount, std::cout, log);
        log.notice("popgated " POPGATE_VERSION " starting (" + config.origin() + ", user " +
                   runAs.user + ")");
        // metrics_listen: started as this user, never root; not for one --once pass.
        const auto render = [](std::ostream& out) { fetchMetrics().render(out); };
        const auto metrics =
            options_.once ? nullptr : startMetrics(config, "metrics_listen", render, log);
        int rc = 0;
        std::thread signals([] { waitForSignals(); });
        try {
            rc = runScheduler(config, options_, log, stopping, reloading);
        } catch (...) {
            stopping = true;
            ::kill(::getpid(), SIGUSR2); // wake the signal thread
            signals.join();
            throw;
        }
        stopping = true;
        ::kill(::getpid(), SIGUSR2);
        signals.join();
        log.notice("popgated stopped");
        return rc;
    }

    // preflight - what must hold before the first poll, checked by the start and by
    // --check-config with the same calls and the same messages: accounts.d parses, the
    // keys are readable by this user and by nobody else (the header key may be missing
    // where it can be created), spool_dir is writable, the database (and its PostgreSQL
    // module) opens at the current schema. Returns the number of provisioned accounts.
    static std::size_t preflight(const Config& config)
    {
        const auto declared = loadProvisioned(config);
        checkLeaseSettings(config);
        parseMetricsListen("metrics_listen", config.str("metrics_listen"));
        checkKeyFile(config.str("header_key_file"), KeyFile::Creatable);
        checkKeyFile(config.str("secret_key_file"), KeyFile::Optional);
        requireWritableDirectory("spool_dir", config.str("spool_dir"));
        requireDatabaseModule(config.str("database.driver"), pgsqlModulePath());
        Store store(config);
        store.requireCurrentSchema();
        return declared.size();
    }

    // waitForSignals - the one thread that takes SIGHUP, SIGTERM and SIGINT.
    static void waitForSignals()
    {
        const sigset_t set = handledSignals();
        while (!stopping.load()) {
            int sig = 0;
            if (sigwait(&set, &sig) != 0)
                continue;
            if (sig == SIGHUP)
                reloading = true;
            else if (sig != SIGUSR2)
                stopping = true;
        }
    }

    DaemonOptions daemon_;
    SchedulerOptions options_;
    bool check_ = false;
    bool dryRun_ = false;
};

} // namespace popgate

int main(int argc, char** argv)
{
    // Block the signals before any thread starts; waitForSignals takes them.
    popgate::blockSignals(popgate::handledSignals());
    popgate::Popgated app;
    // A bad option is bad usage: exit 2, as for every popgate program (Poco's own
    // run(argc, argv) would exit 78, EX_CONFIG).
    try {
        app.init(argc, argv);
    } catch (const Poco::Exception& e) {
        std::cerr << "popgated: " << e.displayText() << " (see --help)\n";
        return 2;
    }
    return static_cast<Poco::Util::Application&>(app).run();
}
