// daemon.cpp - the shared start-up of the daemons (see daemon.h). The stderr
// log format and the exit codes are part of each daemon's interface: tests
// and operators read them.
#include "plugin/daemon/daemon.h"

#include "core/errors.h"
#include "core/text.h"

#include <Poco/AutoPtr.h>
#include <Poco/FormattingChannel.h>
#include <Poco/PatternFormatter.h>
#include <Poco/StreamChannel.h>
#include <Poco/SyslogChannel.h>
#include <Poco/Util/HelpFormatter.h>
#include <iostream>
#include <pthread.h>

using Poco::Util::Option;

namespace popgate
{

void DaemonOptions::define(Poco::Util::OptionSet& options, const std::vector<Option>& own)
{
    options.addOption(Option("help", "h", "show this help and exit"));
    options.addOption(Option("config", "c", "configuration file").argument("FILE"));
    for (const auto& option : own)
        options.addOption(option);
    options.addOption(
        Option("log", "", "where log lines go: syslog (default) or stderr").argument("WHERE"));
}

bool DaemonOptions::take(const std::string& name, const std::string& value)
{
    if (name == "help")
        help = true;
    else if (name == "config")
        configPath = value;
    else if (name == "log")
        logTo = value;
    else
        return false;
    return true;
}

void printHelp(const Poco::Util::OptionSet& options, const std::string& command,
               const std::string& usage, const std::string& header)
{
    Poco::Util::HelpFormatter help(options);
    help.setCommand(command);
    help.setUsage(usage);
    help.setHeader(header);
    help.format(std::cout);
}

void checkLogTarget(const std::string& logTo)
{
    if (logTo != "syslog" && logTo != "stderr")
        throw InputError("--log: expected syslog or stderr (got '" + flatten(logTo) + "')");
}

Poco::Logger& setUpLogging(const std::string& tag, const std::string& logTo)
{
    Poco::AutoPtr<Poco::Channel> channel;
    if (logTo == "stderr") {
        Poco::AutoPtr<Poco::PatternFormatter> f(
            new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S " + tag + "[%P]: %p: %t"));
        Poco::AutoPtr<Poco::Channel> out(new Poco::StreamChannel(std::cerr));
        channel = new Poco::FormattingChannel(f, out);
    } else {
        channel = new Poco::SyslogChannel(tag, Poco::SyslogChannel::SYSLOG_PID,
                                          Poco::SyslogChannel::SYSLOG_MAIL);
    }
    Poco::Logger& log = Poco::Logger::get(tag);
    log.setChannel(channel);
    log.setLevel(Poco::Message::PRIO_INFORMATION);
    return log;
}

int exitCodeOf(const std::string& program, const std::function<int()>& body)
{
    try {
        return body();
    } catch (const InputError& e) {
        std::cerr << program << ": " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cerr << program << ": " << e.what() << "\n";
        return 1;
    }
}

sigset_t signalSet(std::initializer_list<int> signals)
{
    sigset_t set;
    sigemptyset(&set);
    for (int s : signals)
        sigaddset(&set, s);
    return set;
}

void blockSignals(const sigset_t& signals)
{
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

} // namespace popgate
