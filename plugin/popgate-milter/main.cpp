// popgate-milter - the libmilter filter Postfix and Sendmail call for every
// message that arrives by SMTP: system address filters for mail from outside,
// the duplicate backstop and forged-header removal for mail popgated reinjects.
//
// Runs as: the unprivileged popgate-milter user, in the foreground (systemd's
// User=; started as root it switches to it, or to --user, before it opens the
// database or the key, and exits 78 rather than keep root). Reads:
// popgate.conf, the header key file (never the secret key, never an account
// secret), the database (filters, accounts by name, the ledger). Writes: the
// database table milter_seen; the socket (umask 007). Talks to: the MTA over
// the milter protocol; with milter.metrics_listen it serves Prometheus metrics
// over HTTP. Logs to syslog, facility mail, tag popgate-milter.
// Signals: SIGUSR1 re-reads the configuration and filters (libmilter takes
// SIGHUP, SIGTERM and SIGINT to stop); filter edits are picked up without it.
#include "core/config.h"
#include "core/dbdrivers.h"
#include "core/errors.h"
#include "core/metrics.h"
#include "core/store.h"
#include "core/text.h"
#include "plugin/daemon/daemon.h"
#include "plugin/daemon/metrics_http.h"
#include "plugin/popgate-milter/callbacks.h"
#include "plugin/popgate-milter/snapshot.h"

#include <Poco/Logger.h>
#include <Poco/Util/Application.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>
#include <iostream>
#include <memory>
#include <libmilter/mfapi.h>
#include <signal.h>
#include <sys/stat.h>
#include <thread>

using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace popgate
{

namespace
{

const char* const kDefaultUser = "popgate-milter";

} // namespace

class PopgateMilter : public Poco::Util::Application
{
protected:
    void defineOptions(OptionSet& options) override
    {
        Application::defineOptions(options);
        DaemonOptions::define(
            options,
            {Option("socket", "p",
                    "listen here (overrides milter.socket): unix:/path or inet:PORT@HOST")
                 .argument("SPEC"),
             Option("check-config", "n",
                    "check the configuration, the header key and the filter, then exit"),
             Option("foreground", "f", "stay in the foreground (always; for systemd units)")},
            kDefaultUser);
    }

    void handleOption(const std::string& name, const std::string& value) override
    {
        Application::handleOption(name, value);
        if (daemon_.take(name, value))
            return;
        if (name == "socket")
            socket_ = value;
        else if (name == "check-config")
            check_ = true;
    }

    int main(const std::vector<std::string>&) override
    {
        if (daemon_.help) {
            printHelp(options(), "popgate-milter",
                      "[--config=FILE] [--socket=SPEC] [--check-config] [--user=NAME] [--log=stderr]",
                      "Apply popgate's system address filters inside the MTA and drop duplicates "
                      "of fetched mail.");
            return 0;
        }
        if (daemon_.version) {
            std::cout << "popgate-milter " POPGATE_VERSION "\n";
            return 0;
        }
        return exitCodeOf("popgate-milter", [this] { return serve(); });
    }

private:
    // serve - after the options: check what a start checks and stop there
    // (--check-config), or filter until libmilter stops. Both take the same steps, so
    // ExecStartPre fails when the start would; --check-config alone also fails on a
    // database it cannot reach, where the start goes on and tempfails mail.
    int serve()
    {
        checkLogTarget(daemon_.logTo);
        const Config config = Config::resolve(daemon_.configPath);
        const RunAs runAs = leaveRoot("popgate-milter", daemon_.user, kDefaultUser);
        restrictUmask();
        MilterSettings settings = MilterSettings::fromConfig(config); // reads the header key
        if (!socket_.empty())
            settings.socket = socket_;
        registerDatabaseDrivers();
        requireDatabaseModule(config.str("database.driver"), pgsqlModulePath());
        Poco::Logger& log = setUpLogging("popgate-milter", daemon_.logTo);
        StorePool pool(config);
        requireCurrentSchemaIfReachable(config);
        SnapshotSource source(daemon_.configPath, settings, pool, log);
        const auto snap = source.current();
        parseMetricsListen("milter.metrics_listen", config.str("milter.metrics_listen"));

        if (check_) {
            if (!snap->error.empty())
                throw OperationError(snap->error);
            std::cout << "popgate-milter: configuration OK: " << config.origin() << "; socket "
                      << settings.socket << "; filter " << snap->filterName << " (generation "
                      << snap->generation << "); action " << blockActionName(settings.action)
                      << "; user " << runAs.user << "\n";
            if (!isUnixSocket(settings.socket))
                std::cout << "popgate-milter: note: " << tcpSocketNote() << "\n";
            return 0;
        }

        log.notice("popgate-milter " POPGATE_VERSION " starting (" + config.origin() + ", socket " +
                   settings.socket + ", user " + runAs.user + ")");
        if (!isUnixSocket(settings.socket))
            log.notice(std::string("note: ") + tcpSocketNote());
        registerMilter(source, pool, log, settings.socket);
        if (smfi_setconn(const_cast<char*>(settings.socket.c_str())) != MI_SUCCESS)
            throw InputError("milter.socket: libmilter refuses '" + flatten(settings.socket) + "'");
        ::umask(007); // socket 0770: the MTA reaches it through the popgate-milter group
        if (smfi_opensocket(true) != MI_SUCCESS)
            throw OperationError("cannot listen on " + settings.socket +
                                 " (in use, or the directory is missing or not writable)");
        // milter.metrics_listen: started as this user, never root.
        const auto render = [](std::ostream& out) { milterMetrics().render(out); };
        const auto metrics = startMetrics(config, "milter.metrics_listen", render, log);
        std::thread signals([&source] { waitForReload(source); });
        signals.detach();
        const int rc = smfi_main();
        log.notice(std::string("popgate-milter stopped") +
                   (rc == MI_SUCCESS ? "" : " after an error"));
        return rc == MI_SUCCESS ? 0 : 1;
    }

    // requireCurrentSchemaIfReachable - a database at another schema version than this
    // milter's refuses the start (and --check-config) with the store's message; one that
    // cannot be reached does not (the MTA gets tempfails until it can, or accepts with
    // milter.on_database_error = accept; --check-config fails on it through the snapshot).
    static void requireCurrentSchemaIfReachable(const Config& config)
    {
        std::unique_ptr<Store> store;
        try {
            store = std::make_unique<Store>(config, Store::Open::Existing);
        } catch (const OperationError&) {
            return;
        }
        store->requireCurrentSchema();
    }

    // waitForReload - takes SIGUSR1 (blocked in every other thread) for the process lifetime.
    static void waitForReload(SnapshotSource& source)
    {
        const sigset_t set = signalSet({SIGUSR1});
        for (;;) {
            int sig = 0;
            if (sigwait(&set, &sig) == 0 && sig == SIGUSR1)
                source.requestReload();
        }
    }

    DaemonOptions daemon_;
    std::string socket_;
    bool check_ = false;
};

} // namespace popgate

int main(int argc, char** argv)
{
    // Block the signals before any thread starts: libmilter's signal thread takes
    // SIGHUP/SIGTERM/SIGINT, waitForReload takes SIGUSR1; no other thread may die of them.
    popgate::blockSignals(popgate::signalSet({SIGUSR1, SIGHUP, SIGTERM, SIGINT}));
    popgate::PopgateMilter app;
    try {
        app.init(argc, argv);
    } catch (const Poco::Exception& e) {
        std::cerr << "popgate-milter: " << e.displayText() << " (see --help)\n";
        return 2;
    }
    return app.run();
}
