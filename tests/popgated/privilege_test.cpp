// privilege_test - least privilege as an OS fact, tried with the real binaries:
// popgated and popgate-milter started as root never keep it: without --user
// they become their own users (popgate, popgate-milter: uid, gid and
// supplementary groups read from /proc), with --user the one given; a user
// that does not exist (given or their own) makes them exit 78 before they
// touch a file. --check-config refuses exactly what the start refuses, with the
// same message and exit status (one row per mistake: a key readable by others,
// a spool_dir the user cannot write, an old schema, a user that does not
// exist); the files popgated creates have their modes whatever the umask.
// Run as root (CI), it creates a system user of its own (removed at the end) and
// the package's users and groups when missing (scripts/users.sh, kept); run
// as anyone else, the rows that need root are left out (and say so).
#define BOOST_TEST_MODULE privilege
#include "core/config.h"
#include "core/dbdrivers.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "plugin/net/pop3_trace.h"
#include "plugin/popgated/spool.h"
#include "tests/support/testsupport.h"

#include <Poco/File.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <grp.h>
#include <iostream>
#include <ostream>
#include <pwd.h>
#include <set>
#include <signal.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

const char* const kTestUser = "popgate-ptest";
const char* const kMissingUser = "popgate-no-such-user";

bool isRoot()
{
    return ::geteuid() == 0;
}

// shell - a command line run outside any test case (a global fixture's, where the
// helpers' checks may not run); true when it exits 0.
bool shell(const std::string& command)
{
    return std::system(command.c_str()) == 0;
}

// TestUser - as root, a system user of this suite's own (removed at the end of
// the run), and the package's users and groups where missing, made by
// scripts/users.sh and kept as the package keeps them (another suite may use
// them meanwhile); nothing otherwise.
struct TestUser {
    TestUser()
    {
        if (!isRoot())
            return;
        if (!::getpwnam("popgate") || !::getpwnam("popgate-milter") ||
            !::getgrnam("popgate-db") || !::getgrnam("popgate-admin"))
            shell("/bin/bash " POPGATE_SOURCE_DIR "/scripts/users.sh");
        created = ::getpwnam(kTestUser) == nullptr &&
                  shell(std::string("/usr/sbin/useradd --system --no-create-home "
                                    "--home-dir /nonexistent --shell /usr/sbin/nologin ") +
                        kTestUser);
    }
    ~TestUser()
    {
        if (created && !shell(std::string("/usr/sbin/userdel ") + kTestUser))
            std::cerr << "privilege_test: could not remove the test user " << kTestUser << "\n";
    }
    bool created = false;
};

BOOST_GLOBAL_FIXTURE(TestUser);

std::string hexKey()
{
    return std::string(64, 'a') + "\n";
}

mode_t modeOf(const std::string& path)
{
    struct stat st {
    };
    BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0, path);
    return st.st_mode & 07777;
}

std::string octal(mode_t mode)
{
    std::ostringstream out;
    out << std::oct << mode;
    return out.str();
}

// World - a configuration, a migrated SQLite database and the keys in a
// temporary directory; as root, everything in it belongs to the test user, so
// that a daemon switched to that user can use it.
class World
{
public:
    World()
    {
        conf_ = dir_.write("popgate.conf", "database.path = " + dir_.file("db/popgate.db") +
                                               "\nsecret_key_file = " + dir_.file("secret.key") +
                                               "\nheader_key_file = " + dir_.file("header.key") +
                                               "\nspool_dir = " + dir_.file("spool") +
                                               "\naccounts_dir = " + dir_.file("accounts.d") +
                                               "\ndebug_log_dir = " + dir_.file("log") +
                                               "\nmilter.socket = unix:" + dir_.file("milter.sock") +
                                               "\n");
        const RunResult r = run(binary("popgatectl/popgatectl"), {"--config=" + conf_, "db", "migrate"});
        BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
        dir_.write("header.key", hexKey(), 0640);
        dir_.write("secret.key", hexKey(), 0640);
        Poco::File(dir_.file("accounts.d")).createDirectories();
        if (isRoot())
            BOOST_TEST_REQUIRE(run("/bin/chown", {"-R", std::string(kTestUser) + ":", dir_.path()})
                                   .status == 0);
    }
    const TempDir& dir() const { return dir_; }
    const std::string& conf() const { return conf_; }
    Config config() const { return Config::load(conf_); }

private:
    TempDir dir_;
    std::string conf_;
};

// runDaemon - the program with --config, --log=stderr, --user (as root) and more.
RunResult runDaemon(const std::string& program, const World& w, const std::string& user,
                    std::vector<std::string> more)
{
    std::vector<std::string> args{"--config=" + w.conf(), "--log=stderr"};
    if (!user.empty())
        args.push_back("--user=" + user);
    args.insert(args.end(), more.begin(), more.end());
    return run(binary(program), args);
}

// refusal - the line of stderr that says why (warnings left out).
std::string refusal(const std::string& err)
{
    std::istringstream in(err);
    std::string line, last;
    while (std::getline(in, line))
        if (line.find(": warning: ") == std::string::npos && !line.empty())
            last = line;
    return last;
}

struct MistakeRow {
    const char* label;
    bool needsRoot;
    std::function<void(World&)> make; ///< the mistake
    std::string user;                 ///< --user (as root); "" = the test user
    int status;
    std::function<std::string(const World&)> says;
    bool milterToo;
};

std::vector<MistakeRow> mistakes()
{
    return {
        {"header.key readable by others", false,
         [](World& w) { ::chmod(w.dir().file("header.key").c_str(), 0644); }, "", 1,
         [](const World& w) {
             return "key file " + w.dir().file("header.key") +
                    ": readable by others; chmod o-rwx it (mode 0600 or 0640)";
         },
         true},
        {"secret.key readable by others", false,
         [](World& w) { ::chmod(w.dir().file("secret.key").c_str(), 0604); }, "", 1,
         [](const World& w) {
             return "key file " + w.dir().file("secret.key") +
                    ": readable by others; chmod o-rwx it (mode 0600 or 0640)";
         },
         false},
        {"spool_dir not writable by the user", false,
         [](World& w) {
             Poco::File(w.dir().file("spool")).createDirectories();
             // Root-owned 0755 as root (the user cannot write it); 0555 otherwise.
             if (isRoot())
                 run("/bin/chown", {"root:root", w.dir().file("spool")});
             ::chmod(w.dir().file("spool").c_str(), isRoot() ? 0755 : 0555);
         },
         "", 1,
         [](const World& w) {
             const passwd* pw = ::getpwuid(::geteuid());
             const std::string who = isRoot() ? kTestUser : pw->pw_name;
             return "spool_dir " + w.dir().file("spool") + ": not writable by user " + who +
                    ": Permission denied";
         },
         false},
        {"schema older than the binary", false,
         [](World& w) {
             Store store(w.config());
             const int latest = store.latestVersion();
             store.session() << "DELETE FROM schema_version WHERE version = " +
                                    std::to_string(latest),
                 Poco::Data::Keywords::now;
         },
         "", 1,
         [](const World& w) {
             Store store(w.config());
             return "schema version " + std::to_string(store.latestVersion() - 1) +
                    ", this popgate needs " + std::to_string(store.latestVersion()) +
                    "; run `popgatectl db migrate`";
         },
         true},
        {"user to switch to does not exist", true, [](World&) {}, kMissingUser, 78,
         [](const World&) {
             return std::string("user '") + kMissingUser +
                    "' (--user): no such user; PROGRAM does not run as root: create it (the "
                    "Debian package does) or name another with --user";
         },
         true},
    };
}

} // namespace

BOOST_AUTO_TEST_CASE(check_config_refuses_what_the_start_refuses)
{
    registerDatabaseDrivers();
    for (const MistakeRow& row : mistakes()) {
        BOOST_TEST_CONTEXT(row.label)
        {
            if (row.needsRoot && !isRoot()) {
                BOOST_TEST_MESSAGE(row.label << ": left out (needs root)");
                continue;
            }
            World w;
            row.make(w);
            const std::string user = !isRoot() ? "" : row.user.empty() ? kTestUser : row.user;
            const std::string says = row.says(w);
            struct Program {
                const char* path;
                const char* name;
                std::vector<std::string> start; ///< options that make the start end
            };
            std::vector<Program> programs{{"plugin/popgated/popgated", "popgated", {"--once"}}};
            if (row.milterToo)
                programs.push_back({"plugin/popgate-milter/popgate-milter", "popgate-milter", {}});
            for (const Program& p : programs) {
                BOOST_TEST_CONTEXT(p.name)
                {
                    const RunResult check = runDaemon(p.path, w, user, {"--check-config"});
                    const RunResult start = runDaemon(p.path, w, user, p.start);
                    BOOST_TEST(check.status == row.status, check.out << check.err);
                    BOOST_TEST(start.status == row.status, start.out << start.err);
                    std::string expected = says;
                    if (expected.find("PROGRAM") != std::string::npos)
                        expected.replace(expected.find("PROGRAM"), 7, p.name);
                    BOOST_TEST(refusal(check.err).find(expected) != std::string::npos,
                               "check: " << check.err << "\nexpected: " << expected);
                    BOOST_TEST(refusal(check.err) == refusal(start.err),
                               "check: " << check.err << "\nstart: " << start.err);
                    BOOST_TEST(refusal(check.err).rfind(std::string(p.name) + ": ", 0) == 0u,
                               check.err);
                    BOOST_TEST(check.out.find("configuration OK") == std::string::npos);
                }
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(started_as_root_runs_as_its_user)
{
    if (!isRoot()) {
        BOOST_TEST_MESSAGE("left out: needs root");
        return;
    }
    registerDatabaseDrivers();
    World w;
    ::unlink(w.dir().file("header.key").c_str()); // popgated creates it, as its user
    const passwd* pw = ::getpwnam(kTestUser);
    BOOST_TEST_REQUIRE(pw != nullptr);

    const RunResult check = runDaemon("plugin/popgated/popgated", w, kTestUser, {"--check-config"});
    BOOST_TEST(check.status == 0, check.out << check.err);
    BOOST_TEST(check.out.find(std::string("configuration OK")) != std::string::npos, check.out);
    BOOST_TEST(check.out.find(std::string("user ") + kTestUser) != std::string::npos, check.out);
    BOOST_TEST(!Poco::File(w.dir().file("header.key")).exists(), "--check-config creates nothing");

    const RunResult once = runDaemon("plugin/popgated/popgated", w, kTestUser, {"--once"});
    BOOST_TEST(once.status == 0, once.out << once.err);
    BOOST_TEST(once.err.find(std::string("user ") + kTestUser + ")") != std::string::npos,
               once.err);
    for (const std::string& made : {w.dir().file("header.key"), w.dir().file("spool/tmp")}) {
        struct stat st {
        };
        BOOST_TEST_REQUIRE(::stat(made.c_str(), &st) == 0, made);
        BOOST_TEST(st.st_uid == pw->pw_uid, made << " owned by uid " << st.st_uid);
        BOOST_TEST((st.st_mode & S_IRWXO) == 0u, made << " mode " << octal(st.st_mode));
    }
    BOOST_TEST(modeOf(w.dir().file("header.key")) == 0600u);

    const RunResult milter =
        runDaemon("plugin/popgate-milter/popgate-milter", w, kTestUser, {"--check-config"});
    BOOST_TEST(milter.status == 0, milter.out << milter.err);
    BOOST_TEST(milter.out.find(std::string("; user ") + kTestUser) != std::string::npos,
               milter.out);
}

namespace
{

// own - path becomes user:group with mode, as debian/popgate.postinst makes it.
void own(const std::string& path, const char* user, const char* group, mode_t mode)
{
    const passwd* pw = ::getpwnam(user);
    const struct group* gr = ::getgrnam(group);
    BOOST_TEST_REQUIRE((pw && gr), user << ":" << group << " (scripts/users.sh creates them)");
    BOOST_TEST_REQUIRE(::chown(path.c_str(), pw->pw_uid, gr->gr_gid) == 0, path);
    BOOST_TEST_REQUIRE(::chmod(path.c_str(), mode) == 0, path);
}

// PackageWorld - as root, the package's layout (ARCHITECTURE.md, "Who can read
// what") in a temporary directory: etc/ (popgate.conf, the keys, accounts.d) and
// lib/ (the database) with the postinst's owners and modes, spool/ and log/ of
// user popgate, run/ (the milter's socket) of user popgate-milter. header.key is
// left out when headerKey is false (popgated creates it at its start).
class PackageWorld
{
public:
    explicit PackageWorld(bool headerKey = true)
    {
        ::chmod(dir_.path().c_str(), 0755);
        conf_ = dir_.write("etc/popgate.conf",
                           "database.path = " + dir_.file("lib/popgate.db") +
                               "\nsecret_key_file = " + dir_.file("etc/secret.key") +
                               "\nheader_key_file = " + dir_.file("etc/header.key") +
                               "\naccounts_dir = " + dir_.file("etc/accounts.d") +
                               "\nsecrets_dir = " + dir_.file("etc/secrets") +
                               "\nspool_dir = " + dir_.file("spool") +
                               "\ndebug_log_dir = " + dir_.file("log") +
                               "\nmilter.socket = unix:" + dir_.file("run/milter.sock") + "\n");
        for (const char* d : {"etc/accounts.d", "lib", "spool", "log", "run"})
            Poco::File(dir_.file(d)).createDirectories();
        own(dir_.file("lib"), "popgate", "popgate-db", 02770);
        own(dir_.file("spool"), "popgate", "popgate-admin", 02770);
        own(dir_.file("log"), "popgate", "popgate-admin", 02750);
        own(dir_.file("run"), "popgate-milter", "popgate-milter", 0750);
        loadKeyFile(dir_.file("etc/secret.key"), true);
        own(dir_.file("etc/secret.key"), "popgate", "popgate-admin", 0640);
        if (headerKey) {
            loadKeyFile(dir_.file("etc/header.key"), true);
            own(dir_.file("etc/header.key"), "popgate", "popgate-db", 0640);
        }
        const RunResult r =
            run(binary("popgatectl/popgatectl"), {"--config=" + conf_, "db", "migrate"});
        BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
        own(dir_.file("lib/popgate.db"), "popgate", "popgate-db", 0660);
    }
    const TempDir& dir() const { return dir_; }
    const std::string& conf() const { return conf_; }

private:
    TempDir dir_;
    std::string conf_;
};

// Started - a daemon started as root without --user, stderr and stdout into a
// file; SIGKILLed and reaped when it goes.
class Started
{
public:
    Started(const std::string& program, const std::vector<std::string>& args,
            const std::string& logFile)
        : log_(logFile)
    {
        std::vector<std::string> argv{binary(program)};
        argv.insert(argv.end(), args.begin(), args.end());
        std::vector<char*> raw;
        for (auto& a : argv)
            raw.push_back(a.data());
        raw.push_back(nullptr);
        const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        BOOST_TEST_REQUIRE(fd >= 0, log_);
        pid_ = ::fork();
        if (pid_ == 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::execv(raw[0], raw.data());
            ::_exit(127);
        }
        ::close(fd);
        BOOST_TEST_REQUIRE(pid_ > 0);
    }
    ~Started()
    {
        ::kill(pid_, SIGKILL); // our own child
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    pid_t pid() const { return pid_; }
    std::string log() const { return readFile(log_); }
    /// logs - whether text shows up in the log within 10 s (false at once when it exited).
    bool logs(const std::string& text) const
    {
        for (int i = 0; i < 200; ++i) {
            if (log().find(text) != std::string::npos)
                return true;
            siginfo_t info{};
            if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) ==
                    0 &&
                info.si_pid == pid_)
                return false;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    }

private:
    std::string log_;
    pid_t pid_ = -1;
};

// Ids - what the kernel says a process runs as (/proc/PID/status).
struct Ids {
    std::vector<long> uid, gid; ///< real, effective, saved, filesystem
    std::set<long> groups;      ///< supplementary
};

Ids idsOf(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    Ids ids;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string key;
        words >> key;
        long n = 0;
        if (key == "Uid:")
            while (words >> n)
                ids.uid.push_back(n);
        else if (key == "Gid:")
            while (words >> n)
                ids.gid.push_back(n);
        else if (key == "Groups:")
            while (words >> n)
                ids.groups.insert(n);
    }
    return ids;
}

// groupsOf - the groups initgroups gives user (its primary group and each it is a member of).
std::set<long> groupsOf(const char* user)
{
    const passwd* pw = ::getpwnam(user);
    BOOST_TEST_REQUIRE(pw != nullptr, user);
    std::vector<gid_t> list(64);
    int n = static_cast<int>(list.size());
    BOOST_TEST_REQUIRE(::getgrouplist(user, pw->pw_gid, list.data(), &n) >= 0);
    return std::set<long>(list.begin(), list.begin() + n);
}

long gidOf(const char* group)
{
    const struct group* gr = ::getgrnam(group);
    BOOST_TEST_REQUIRE(gr != nullptr, group);
    return gr->gr_gid;
}

// requireRunsAs - the process's real, effective, saved and filesystem uid and gid
// are user's and its supplementary groups are exactly user's groups: no trace of root.
void requireRunsAs(pid_t pid, const char* user)
{
    const passwd* pw = ::getpwnam(user);
    BOOST_TEST_REQUIRE(pw != nullptr, user);
    const Ids ids = idsOf(pid);
    const std::vector<long> uid(4, static_cast<long>(pw->pw_uid));
    const std::vector<long> gid(4, static_cast<long>(pw->pw_gid));
    BOOST_TEST(ids.uid == uid, boost::test_tools::per_element());
    BOOST_TEST(ids.gid == gid, boost::test_tools::per_element());
    const std::set<long> groups = groupsOf(user);
    BOOST_TEST(ids.groups == groups, boost::test_tools::per_element());
    BOOST_TEST(ids.groups.count(0) == 0u, "no supplementary group root");
}

} // namespace

BOOST_AUTO_TEST_CASE(started_as_root_without_user_each_becomes_its_own_user)
{
    if (!isRoot()) {
        BOOST_TEST_MESSAGE("left out: needs root");
        return;
    }
    PackageWorld w;
    {
        Started popgated("plugin/popgated/popgated", {"--config=" + w.conf(), "--log=stderr"},
                         w.dir().file("popgated.log"));
        BOOST_TEST_REQUIRE(popgated.logs("starting ("), popgated.log());
        BOOST_TEST(popgated.log().find(", user popgate)") != std::string::npos, popgated.log());
        requireRunsAs(popgated.pid(), "popgate");
        BOOST_TEST(groupsOf("popgate").count(gidOf("popgate-db")) == 1u,
                   "popgated reaches the database through group popgate-db");
    }
    {
        Started milter("plugin/popgate-milter/popgate-milter",
                       {"--config=" + w.conf(), "--log=stderr"}, w.dir().file("milter.log"));
        BOOST_TEST_REQUIRE(milter.logs("starting ("), milter.log());
        BOOST_TEST(milter.log().find(", user popgate-milter)") != std::string::npos, milter.log());
        requireRunsAs(milter.pid(), "popgate-milter");
        const std::set<long> groups = groupsOf("popgate-milter");
        BOOST_TEST(groups.count(gidOf("popgate-db")) == 1u);
        BOOST_TEST(groups.count(gidOf("popgate")) == 0u, "the milter is not in group popgate");
        BOOST_TEST(groups.count(gidOf("popgate-admin")) == 0u,
                   "the milter is not in group popgate-admin (secret.key's)");
        // The socket it made as that user (umask 007: the MTA's way in is the group).
        const std::string sock = w.dir().file("run/milter.sock");
        struct stat st {
        };
        for (int i = 0; i < 100 && ::stat(sock.c_str(), &st) != 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        BOOST_TEST_REQUIRE(::stat(sock.c_str(), &st) == 0, sock << ": " << milter.log());
        BOOST_TEST(st.st_uid == ::getpwnam("popgate-milter")->pw_uid);
        BOOST_TEST((st.st_mode & 0777) == 0770u, octal(st.st_mode));
    }
    // Their --check-config leaves root the same way.
    for (const auto& [program, user] :
         std::vector<std::pair<std::string, std::string>>{
             {"plugin/popgated/popgated", "popgate"},
             {"plugin/popgate-milter/popgate-milter", "popgate-milter"}}) {
        const RunResult r =
            run(binary(program), {"--config=" + w.conf(), "--log=stderr", "--check-config"});
        BOOST_TEST(r.status == 0, r.out << r.err);
        BOOST_TEST(r.out.find("user " + user) != std::string::npos, r.out);
    }
}

BOOST_AUTO_TEST_CASE(own_user_missing_refuses_with_78_before_touching_a_file)
{
    if (!isRoot()) {
        BOOST_TEST_MESSAGE("left out: needs root");
        return;
    }
    struct Row {
        const char* program;
        const char* name;
        const char* user;
        std::vector<std::string> start;
        std::string made; ///< a file the start would have made
    };
    PackageWorld w(false);
    const std::vector<Row> rows{
        {"plugin/popgated/popgated", "popgated", "popgate", {"--once"},
         w.dir().file("etc/header.key")},
        {"plugin/popgate-milter/popgate-milter", "popgate-milter", "popgate-milter", {},
         w.dir().file("run/milter.sock")},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.name)
        {
            // /etc/passwd without the user, in a mount namespace of this run alone.
            std::istringstream all(readFile("/etc/passwd"));
            std::string kept, line;
            while (std::getline(all, line))
                if (line.rfind(std::string(row.user) + ":", 0) != 0)
                    kept += line + "\n";
            const std::string passwd = w.dir().write(std::string("passwd-") + row.name, kept);
            const std::string says = std::string(row.name) + ": user '" + row.user + "' (" +
                                     row.name + "'s default user): no such user; " + row.name +
                                     " does not run as root: create it (the Debian package "
                                     "does) or name another with --user";
            for (const std::vector<std::string>& extra :
                 {std::vector<std::string>{"--check-config"}, row.start}) {
                const std::string how = extra.empty() ? "start" : extra.front();
                // timeout: a daemon that stayed root would run on (exit 124 then).
                std::vector<std::string> args{
                    "20", "/usr/bin/unshare", "--mount", "/bin/sh", "-c",
                    "mount --bind \"$0\" /etc/passwd || exit 90; "
                    "if getent passwd " + std::string(row.user) +
                        " >/dev/null; then echo 'premise: the user still resolves' >&2; exit 91; "
                        "fi; exec \"$@\"",
                    passwd, binary(row.program), "--config=" + w.conf(), "--log=stderr"};
                args.insert(args.end(), extra.begin(), extra.end());
                const RunResult r = run("/usr/bin/timeout", args);
                BOOST_TEST(r.status == 78, how << ": " << r.out << r.err);
                BOOST_TEST(refusal(r.err) == says, how << ": " << r.err);
                BOOST_TEST(r.out.empty(), r.out);
                BOOST_TEST(!Poco::File(row.made).exists(), row.made << " was made");
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(spool_quarantine_and_trace_modes_whatever_the_umask)
{
    for (mode_t mask : {mode_t(0), mode_t(022), mode_t(077)}) {
        BOOST_TEST_CONTEXT("umask " << octal(mask))
        {
            TempDir dir;
            const mode_t old = ::umask(mask);
            {
                Spool big(dir.file("big.spool"), 1 << 20); // on disk from the start
                std::ostream(&big) << "Subject: x\r\n\r\nbody\r\n";
                big.finishWriting();
                BOOST_TEST(modeOf(dir.file("big.spool")) == 0640u);
                big.keep(dir.file("big.eml"));
                Spool small(dir.file("small.spool"), 10); // in memory, written at keep
                std::ostream(&small) << "Subject: y\r\n\r\nbody\r\n";
                small.finishWriting();
                small.keep(dir.file("small.eml"));
                FileProtocolTrace trace(dir.file("trace.log"));
                trace.sent("USER x");
            }
            ::umask(old);
            BOOST_TEST(modeOf(dir.file("big.eml")) == 0640u);
            BOOST_TEST(modeOf(dir.file("small.eml")) == 0640u);
            BOOST_TEST(modeOf(dir.file("trace.log")) == 0600u);
        }
    }
    // A trace an earlier run left readable by others is closed when reopened.
    TempDir dir;
    const std::string loose = dir.write("loose.log", "", 0644);
    FileProtocolTrace trace(loose);
    BOOST_TEST(modeOf(loose) == 0600u);
}
