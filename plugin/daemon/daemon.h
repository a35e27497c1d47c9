// daemon.h - the start-up popgated and popgate-milter share: the options both
// take (--help, --config, --log), the log channel (syslog facility mail, or
// stderr lines with a time stamp), the exit codes (2 bad input, 1 failed
// work) and the signal masks. Knows neither the fetcher nor libmilter: each
// daemon's main.cpp keeps what is its own.
#pragma once

#include <Poco/Logger.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>
#include <functional>
#include <initializer_list>
#include <signal.h>
#include <string>
#include <vector>

namespace popgate
{

/// DaemonOptions - what --help, --config and --log set.
struct DaemonOptions {
    bool help = false;
    std::string configPath; ///< empty: Config::resolve's search
    std::string logTo = "syslog";

    /// define - adds --help (-h) and --config=FILE (-c), then own, then --log=WHERE, in the
    /// order --help lists them.
    static void define(Poco::Util::OptionSet& options, const std::vector<Poco::Util::Option>& own);
    /// take - records the value of one of these three options; false for any other option.
    bool take(const std::string& name, const std::string& value);
};

/// printHelp - the --help text on stdout: "usage: COMMAND USAGE", header, the options.
void printHelp(const Poco::Util::OptionSet& options, const std::string& command,
               const std::string& usage, const std::string& header);

/// checkLogTarget - throws InputError unless logTo is "syslog" or "stderr".
void checkLogTarget(const std::string& logTo);

/// setUpLogging - the logger named tag at level information, writing to stderr as
/// "YYYY-MM-DDTHH:MM:SS TAG[PID]: PRIORITY: TEXT" when logTo is "stderr", else to syslog
/// (facility mail, tag, pid). Throws nothing.
Poco::Logger& setUpLogging(const std::string& tag, const std::string& logTo);

/// exitCodeOf - runs body and returns its code; an InputError is printed to stderr as
/// "PROGRAM: MESSAGE" and gives 2, any other std::exception likewise and gives 1.
int exitCodeOf(const std::string& program, const std::function<int()>& body);

/// signalSet - a sigset_t holding exactly these signals.
sigset_t signalSet(std::initializer_list<int> signals);

/// blockSignals - blocks the signals in the calling thread and in every thread it starts
/// afterwards (call before any thread starts; a sigwait thread then takes them).
void blockSignals(const sigset_t& signals);

} // namespace popgate
