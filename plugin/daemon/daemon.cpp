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
#include <Poco/Path.h>
#include <cerrno>
#include <cstring>
#include <grp.h>
#include <iostream>
#include <pthread.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

using Poco::Util::Option;

namespace popgate
{

void DaemonOptions::define(Poco::Util::OptionSet& options, const std::vector<Option>& own,
                           const std::string& defaultUser)
{
    options.addOption(Option("help", "h", "show this help and exit"));
    options.addOption(Option("version", "V", "show the version and exit"));
    options.addOption(Option("config", "c", "configuration file").argument("FILE"));
    for (const auto& option : own)
        options.addOption(option);
    options.addOption(Option("user", "u",
                             "started as root, run as this user instead of " + defaultUser +
                                 " (root is never kept)")
                          .argument("NAME"));
    options.addOption(
        Option("log", "", "where log lines go: syslog (default) or stderr").argument("WHERE"));
}

bool DaemonOptions::take(const std::string& name, const std::string& value)
{
    if (name == "help")
        help = true;
    else if (name == "version")
        version = true;
    else if (name == "config")
        configPath = value;
    else if (name == "user")
        user = value;
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

namespace
{

std::string why(int error)
{
    return std::strerror(error);
}

// userName - the name of uid, or "uid N" when the password database has none.
std::string userName(uid_t uid)
{
    const passwd* pw = ::getpwuid(uid);
    return pw ? std::string(pw->pw_name) : "uid " + std::to_string(uid);
}

// inodeOf - the inode of path, 0 when it does not exist.
ino_t inodeOf(const std::string& path)
{
    struct stat st {
    };
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

} // namespace

RunAs leaveRoot(const std::string& program, const std::string& explicitUser,
                const std::string& defaultUser)
{
    if (::geteuid() != 0 && ::getuid() != 0)
        return {userName(::getuid()), false};
    // Root is never kept: the user named by --user, else the program's own. No
    // option, environment variable or configuration key keeps root (as Postfix's
    // and Dovecot's daemons, which have none either).
    const bool given = !explicitUser.empty();
    const std::string wanted = given ? explicitUser : defaultUser;
    const std::string which =
        "user '" + flatten(wanted) + "' (" + (given ? "--user" : program + "'s default user") + ")";
    const std::string refusal = "; " + program + " does not run as root: ";
    errno = 0;
    const passwd* pw = ::getpwnam(wanted.c_str());
    if (!pw)
        throw UnusableUser(which + ": no such user" +
                           (errno != 0 ? " (" + why(errno) + ")" : std::string()) + refusal +
                           "create it (the Debian package does) or name another with --user");
    if (pw->pw_uid == 0)
        throw UnusableUser(which + ": has uid 0" + refusal + "name an unprivileged user");
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    const std::string name = pw->pw_name;
    // Groups first, then the group id, then the user id: after setuid no other step is allowed.
    if (::initgroups(name.c_str(), gid) != 0)
        throw OperationError("user '" + name + "': initgroups failed: " + why(errno));
    if (::setgid(gid) != 0)
        throw OperationError("user '" + name + "': setgid(" + std::to_string(gid) +
                             ") failed: " + why(errno));
    if (::setuid(uid) != 0)
        throw OperationError("user '" + name + "': setuid(" + std::to_string(uid) +
                             ") failed: " + why(errno));
    if (::getuid() == 0 || ::geteuid() == 0 || ::getgid() != gid || ::getegid() != gid ||
        ::setuid(0) == 0)
        throw OperationError("user '" + name + "': still privileged after switching to it");
    return {name, true};
}

void restrictUmask()
{
    ::umask(027);
}

void requireWritableDirectory(const std::string& key, const std::string& path)
{
    Poco::Path p(path);
    p.makeDirectory();
    std::string dir = p.toString();
    struct stat st {
    };
    // The nearest existing ancestor decides for a directory popgate creates on demand.
    while (::stat(dir.c_str(), &st) != 0 && errno == ENOENT && p.depth() > 0) {
        p.popDirectory();
        dir = p.toString();
    }
    const std::string who = "user " + userName(::geteuid());
    if (::stat(dir.c_str(), &st) != 0)
        throw OperationError(key + " " + path + ": " + why(errno));
    if (!S_ISDIR(st.st_mode))
        throw OperationError(key + " " + path + ": " + dir + " is not a directory");
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        const int error = errno;
        const bool itself = st.st_ino == inodeOf(path);
        throw OperationError(key + " " + path + ": not writable by " + who + ": " +
                             (itself ? "" : dir + ": ") + why(error));
    }
}

void requireDatabaseModule(const std::string& driver, const std::string& modulePath)
{
    if (driver != "postgresql")
        return;
    struct stat st {
    };
    if (::stat(modulePath.c_str(), &st) != 0)
        throw OperationError("database.driver = postgresql: the PostgreSQL module " + modulePath +
                             ": " + why(errno));
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
    } catch (const UnusableUser& e) {
        std::cerr << program << ": " << e.what() << "\n";
        return EX_CONFIG;
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
