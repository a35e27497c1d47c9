// daemon.h - the start-up popgated and popgate-milter share: the options both
// take (--help, --config, --user, --log), leaving root for the daemon's user,
// the umask, the checks a start and --check-config make alike, the log channel
// (syslog facility mail, or stderr lines with a time stamp), the exit codes
// (2 bad input, 1 failed work) and the signal masks. Knows neither the fetcher
// nor libmilter: each daemon's main.cpp keeps what is its own.
// SECURITY: the only code of popgate that changes its user; it runs before
// any database, key or spool file is opened.
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

/// DaemonOptions - what --help, --version, --config, --user and --log set.
struct DaemonOptions {
    bool help = false;
    bool version = false;   ///< --version: print "PROGRAM VERSION" and exit 0
    std::string configPath; ///< empty: Config::resolve's search
    std::string user;       ///< --user; empty: not given
    std::string logTo = "syslog";

    /// define - adds --help (-h), --version (-V) and --config=FILE (-c), then own, then --user=NAME
    /// (whose help names defaultUser) and --log=WHERE, in the order --help lists them.
    static void define(Poco::Util::OptionSet& options, const std::vector<Poco::Util::Option>& own,
                       const std::string& defaultUser);
    /// take - records the value of one of these five options; false for any other option.
    bool take(const std::string& name, const std::string& value);
};

/// RunAs - who the process became (leaveRoot's answer), for the start's log line.
struct RunAs {
    std::string user;    ///< the account's name ("uid N" when it has none)
    bool switched = false; ///< true: started as root and switched to user
};

/// leaveRoot - started as root: switches to the user named by --user (explicitUser) with
/// initgroups, setgid and setuid, in that order, and checks that root cannot be regained.
/// Throws InputError "user 'NAME' (--user): no such user; ..." for an unknown user (or one
/// whose uid is 0), OperationError when a step of the switch fails. Started as root without
/// --user: stays root and writes a warning naming defaultUser to stderr (the switch becomes
/// the default once every caller passes --user). Not root: nothing changes (the user it runs
/// as is the one it was started as). Call before opening any database, key or spool file.
RunAs leaveRoot(const std::string& program, const std::string& explicitUser,
                const std::string& defaultUser);

/// restrictUmask - umask 027 for the rest of the process: whatever the caller's umask, a
/// directory popgate creates without an explicit mode is 0750 and never world-readable.
void restrictUmask();

/// requireWritableDirectory - throws OperationError "KEY PATH: not writable by user U: WHY"
/// unless the directory exists and this process may create files in it, or is missing and
/// its nearest existing ancestor is (popgate creates it then). The same call at the start
/// and in --check-config.
void requireWritableDirectory(const std::string& key, const std::string& path);

/// requireDatabaseModule - with database.driver = postgresql, throws OperationError naming
/// the file unless the PostgreSQL module (pgsqlModulePath) exists.
void requireDatabaseModule(const std::string& driver, const std::string& modulePath);

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
