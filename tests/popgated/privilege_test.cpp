// privilege_test - least privilege as an OS fact, tried with the real binaries:
// popgated and popgate-milter started as root leave root for the --user they
// are given; --check-config refuses exactly what the start refuses, with the
// same message and exit status (one row per mistake: a key readable by others,
// a spool_dir the user cannot write, an old schema, a user that does not
// exist); the files popgated creates have their modes whatever the umask.
// Run as root (CI), it creates a system user of its own and removes it at the
// end; run as anyone else, the rows that need root are left out (and say so).
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
#include <cstdlib>
#include <functional>
#include <iostream>
#include <ostream>
#include <pwd.h>
#include <sstream>
#include <sys/stat.h>
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

// TestUser - as root, a system user of this suite's own (created when missing,
// removed at the end of the run); nothing otherwise.
struct TestUser {
    TestUser()
    {
        if (!isRoot() || ::getpwnam(kTestUser) != nullptr)
            return;
        // std::system: a global fixture runs outside any test case, where the
        // helpers' checks may not run.
        created = std::system((std::string("/usr/sbin/useradd --system --no-create-home "
                                           "--home-dir /nonexistent --shell /usr/sbin/nologin ") +
                               kTestUser)
                                  .c_str()) == 0;
    }
    ~TestUser()
    {
        if (created && std::system((std::string("/usr/sbin/userdel ") + kTestUser).c_str()) != 0)
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
        {"user to switch to does not exist", true, [](World&) {}, kMissingUser, 2,
         [](const World&) {
             return std::string("user '") + kMissingUser +
                    "' (--user): no such user; create it (the Debian package does) or name "
                    "another with --user";
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
                    BOOST_TEST(refusal(check.err).find(says) != std::string::npos,
                               "check: " << check.err << "\nexpected: " << says);
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

    // Without --user, root is kept for now, but never silently.
    const RunResult root = runDaemon("plugin/popgated/popgated", w, "", {"--check-config"});
    BOOST_TEST(root.err.find("popgated: warning: running as root; start it as user popgate") !=
                   std::string::npos,
               root.err);
    const RunResult milter =
        runDaemon("plugin/popgate-milter/popgate-milter", w, kTestUser, {"--check-config"});
    BOOST_TEST(milter.status == 0, milter.out << milter.err);
    BOOST_TEST(milter.out.find(std::string("; user ") + kTestUser) != std::string::npos,
               milter.out);
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
