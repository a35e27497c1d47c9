// popgated - the fetcher daemon: pulls mail from every active POP3 account
// and reinjects it into the local MTA over SMTP.
//
// Runs as: the unprivileged popgate user (the systemd unit's User=); it is the
// only popgate program that unseals account secrets. Reads: popgate.conf,
// accounts.d, the secret and header key files, the database. Writes: the
// database (ledger, message log, status), spool_dir, debug_log_dir.
// Talks to: the POP3 servers (TLS verified by default) and the local MTA's
// reinjection listener. Logs to syslog, facility mail, tag popgated.
// Signals: SIGHUP re-reads accounts and filters; SIGTERM/SIGINT finish the
// message in flight, then QUIT.
#include "core/config.h"
#include "core/dbdrivers.h"
#include "core/errors.h"
#include "core/provisioning.h"
#include "core/store.h"
#include "core/text.h"
#include "plugin/popgated/scheduler.h"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/PatternFormatter.h>
#include <Poco/StreamChannel.h>
#include <Poco/SyslogChannel.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>
#include <Poco/Util/ServerApplication.h>
#include <atomic>
#include <iostream>
#include <signal.h>
#include <thread>

using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace popgate
{

namespace
{

std::atomic<bool> stopping{false};
std::atomic<bool> reloading{false};

} // namespace

class Popgated : public Poco::Util::ServerApplication
{
protected:
    void defineOptions(OptionSet& options) override
    {
        ServerApplication::defineOptions(options);
        options.addOption(Option("help", "h", "show this help and exit"));
        options.addOption(Option("config", "c", "configuration file").argument("FILE"));
        options.addOption(Option("once", "", "one pass over the active accounts, then exit"));
        options.addOption(Option("account", "", "poll only this account").argument("NAME"));
        options.addOption(
            Option("check-config", "", "check the configuration and accounts.d, then exit"));
        options.addOption(
            Option("log", "", "where log lines go: syslog (default) or stderr").argument("WHERE"));
    }

    void handleOption(const std::string& name, const std::string& value) override
    {
        ServerApplication::handleOption(name, value);
        if (name == "help")
            help_ = true;
        else if (name == "config")
            configPath_ = value;
        else if (name == "once")
            options_.once = true;
        else if (name == "account")
            options_.onlyAccount = value;
        else if (name == "check-config")
            check_ = true;
        else if (name == "log")
            logTo_ = value;
    }

    int main(const std::vector<std::string>&) override
    {
        if (help_) {
            Poco::Util::HelpFormatter help(options());
            help.setCommand("popgated");
            help.setUsage(
                "[--config=FILE] [--once] [--account=NAME] [--check-config] [--log=stderr]");
            help.setHeader("Fetch mail from POP3 accounts and reinject it into the local MTA.");
            help.format(std::cout);
            return 0;
        }
        try {
            const Config config = Config::resolve(configPath_);
            if (check_) {
                const auto declared = loadProvisioned(config.str("accounts_dir"));
                std::cout << "popgated: configuration OK: " << config.origin() << ", "
                          << declared.size() << " provisioned account(s)\n";
                return 0;
            }
            Poco::Logger& log = setUpLogging();
            registerDatabaseDrivers();
            // No interactive certificate handler: a failed verification throws.
            Poco::Net::initializeSSL();
            log.notice("popgated " POPGATE_VERSION " starting (" + config.origin() + ")");
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
        } catch (const InputError& e) {
            std::cerr << "popgated: " << e.what() << "\n";
            return 2;
        } catch (const std::exception& e) {
            std::cerr << "popgated: " << e.what() << "\n";
            return 1;
        }
    }

private:
    Poco::Logger& setUpLogging()
    {
        Poco::AutoPtr<Poco::Channel> channel;
        if (logTo_ == "stderr") {
            Poco::AutoPtr<Poco::PatternFormatter> f(
                new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S popgated[%P]: %p: %t"));
            Poco::AutoPtr<Poco::Channel> out(new Poco::StreamChannel(std::cerr));
            channel = new Poco::FormattingChannel(f, out);
        } else {
            Poco::AutoPtr<Poco::SyslogChannel> syslog(new Poco::SyslogChannel(
                "popgated", Poco::SyslogChannel::SYSLOG_PID, Poco::SyslogChannel::SYSLOG_MAIL));
            channel = syslog;
        }
        Poco::Logger& log = Poco::Logger::get("popgated");
        log.setChannel(channel);
        log.setLevel(Poco::Message::PRIO_INFORMATION);
        return log;
    }

    // waitForSignals - the one thread that takes SIGHUP, SIGTERM and SIGINT.
    static void waitForSignals()
    {
        sigset_t set;
        sigemptyset(&set);
        for (int s : {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR2})
            sigaddset(&set, s);
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

    std::string configPath_;
    std::string logTo_ = "syslog";
    SchedulerOptions options_;
    bool help_ = false, check_ = false;
};

} // namespace popgate

int main(int argc, char** argv)
{
    // Block the signals before any thread starts; waitForSignals takes them.
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR2})
        sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    popgate::Popgated app;
    return app.run(argc, argv);
}
