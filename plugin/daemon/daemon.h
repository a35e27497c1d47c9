// daemon.h - the start-up popgated and popgate-milter share: the options both
// take (--help, --config, --user, --log), leaving root for the daemon's user,
// the umask, the checks a start and --check-config make alike, the log channel
// (syslog facility mail, or stderr lines with a time stamp), the exit codes
// (78 no user to run as, 2 bad input, 1 failed work) and the signal masks.
// Knows neither the fetcher nor libmilter: each daemon's main.cpp keeps what
// is its own.
// SECURITY: the only code of popgate that changes its user; it runs before
// any database, key or spool file is opened, and a daemon never keeps root.
#pragma once

#include <Poco/Logger.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>
#include <functional>
#include <initializer_list>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <vector>

namespace popgate
{

/// DaemonOptions - what --help, --version, --config, --user and --log set.
struct DaemonOptions {
    bool help = false;
    bool version = false;   ///< --version: print "PROGRAM VERSION" and exit 0
    std::string configPath; ///< empty: Config::resolve's search
    std::string user;       ///< --user; empty: the daemon's default user
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

/// UnusableUser - the user a daemon started as root must switch to does not exist or has
/// uid 0: a configuration error (exitCodeOf gives 78, EX_CONFIG), never a reason to stay root.
class UnusableUser : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// leaveRoot - started as root: switches to explicitUser (--user) or, when none was given,
/// to defaultUser (the package's user for this daemon), with initgroups, setgid and setuid,
/// in that order, and checks that root cannot be regained. Root is never kept: there is no
/// option to keep it. Throws UnusableUser "user 'NAME' (--user | PROGRAM's default user):
/// no such user; PROGRAM does not run as root: ..." for an unknown user (or one whose uid
/// is 0), OperationError when a step of the switch fails. Not root: nothing changes (the
/// user it runs as is the one it was started as; --user is not looked at). Call before
/// opening any database, key or spool file.
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

/// exitCodeOf - runs body and returns its code; an error is printed to stderr as
/// "PROGRAM: MESSAGE": UnusableUser gives 78 (EX_CONFIG), InputError 2, any other
/// std::exception 1.
int exitCodeOf(const std::string& program, const std::function<int()>& body);

/// signalSet - a sigset_t holding exactly these signals.
sigset_t signalSet(std::initializer_list<int> signals);

/// blockSignals - blocks the signals in the calling thread and in every thread it starts
/// afterwards (call before any thread starts; a sigwait thread then takes them).
void blockSignals(const sigset_t& signals);

} // namespace popgate
