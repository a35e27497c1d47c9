// fetch_daemon_test - popgated as the daemon an operator runs (no --once),
// against the real Dovecot and Postfix: an account added while it runs is
// polled without a restart; one disabled while it runs is left alone; enabled
// again it is polled again; SIGTERM stops it promptly with its scheduler line.
// SIGHUP applies accounts.d (a bad file is refused, the daemon goes on).
// The daemon re-reads its accounts when the configuration generation moves
// (checked every 5 s), so each step waits at most 5 s plus one poll interval.
#define BOOST_TEST_MODULE fetch_daemon
#include "tests/popgated/fetch_support.h"

#include <Poco/File.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

using Clock = std::chrono::steady_clock;

// within - polls done() every 100 ms for up to limit; true once it holds.
bool within(std::chrono::seconds limit, const std::function<bool()>& done)
{
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        if (done())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return done();
}

// Daemon - popgated in the foreground, its log in a file; killed if the test
// ends without stopping it.
class Daemon
{
public:
    explicit Daemon(Gateway& gw) : log_(gw.file("daemon.log"))
    {
        pid_ = spawn(
            {binary("plugin/popgated/popgated"), "--config=" + gw.configFile(), "--log=stderr"},
            log_);
    }
    ~Daemon()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL); // our own child
            waitExit(pid_);
        }
    }
    pid_t pid() const { return pid_; }
    std::string log() const { return readFile(log_); }
    /// logs - whether text shows up in its log within limit.
    bool logs(const std::string& text, std::chrono::seconds limit) const
    {
        return within(limit, [&] { return log().find(text) != std::string::npos; });
    }
    bool running() const
    {
        siginfo_t info{};
        return ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
               info.si_pid == 0;
    }
    /// stop - SIGTERM; the exit status, or -1 when it is still running after limit.
    int stop(std::chrono::seconds limit)
    {
        ::kill(pid_, SIGTERM);
        const auto deadline = Clock::now() + limit;
        while (Clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
    }

private:
    std::string log_;
    pid_t pid_ = -1;
};

// writeFile - text into path, mode 0644: an accounts.d file holds no secret, and
// popgated reads it as user popgate (the package's /etc/popgate/accounts.d).
void writeFile(const std::string& path, const std::string& text)
{
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    ::chmod(path.c_str(), 0644);
}

std::string mid(const std::string& tag)
{
    return "<daemon-" + tag + "." + std::to_string(::getpid()) + "@fetch.test>";
}

} // namespace

BOOST_AUTO_TEST_CASE(accounts_added_disabled_and_enabled_while_it_runs)
{
    // Generation check every 5 s, then the first poll within the interval
    // (10 s, the shortest popgate takes, +-10 %): 16 s, and slack for a slow machine.
    const auto kPickUp = std::chrono::seconds(30);
    Servers s;
    EmptyMailboxes mailboxes({s.maildir});
    Gateway gw(s);
    const std::string to = uniqueAddress("daemon");
    Daemon d(gw);
    BOOST_TEST_REQUIRE(d.logs("0 active account(s)", std::chrono::seconds(10)),
                       "the daemon started with no accounts:\n"
                           << d.log());

    // Added while it runs: polled, no restart, no SIGHUP.
    dropMessage(s.maildir,
                message({"From: a@example.com", "Message-ID: " + mid("first")}, "one\r\n"));
    gw.addDovecotAccount("live", s.user, to, {"--poll-interval=10s"});
    BOOST_TEST(within(kPickUp, [&] { return deliveredCount(to) == 1; }),
               "the account added while popgated ran was polled:\n"
                   << d.log());
    BOOST_TEST(countMessages(s.maildir) == 0);

    // Disabled while it runs: once the daemon has read that, no more polls.
    gw.ctl({"account", "disable", "live"});
    BOOST_TEST_REQUIRE(within(std::chrono::seconds(10),
                              [&] {
                                  return d.log().find("0 active account(s)",
                                                      d.log().find("1 active account(s)")) !=
                                         std::string::npos;
                              }),
                       "the daemon noticed the account was disabled:\n"
                           << d.log());
    // A poll dispatched just before that may still run: let it end first.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    dropMessage(s.maildir,
                message({"From: a@example.com", "Message-ID: " + mid("second")}, "two\r\n"));
    std::this_thread::sleep_for(std::chrono::seconds(13)); // more than one interval
    BOOST_TEST(countMessages(s.maildir) == 1, "a disabled account is not polled");
    BOOST_TEST(deliveredCount(to) == 1);

    // Enabled again: polled again.
    gw.ctl({"account", "enable", "live"});
    BOOST_TEST(within(kPickUp, [&] { return deliveredCount(to) == 2; }),
               "the account enabled again was polled:\n"
                   << d.log());
    BOOST_TEST(countMessages(s.maildir) == 0);
    BOOST_TEST(d.running());

    const int status = d.stop(std::chrono::seconds(10));
    BOOST_TEST(status == 0, "popgated ends with 0 within 10 s of SIGTERM:\n" << d.log());
    const std::string log = d.log();
    BOOST_TEST(log.find("scheduler: polls=") != std::string::npos, log);
    BOOST_TEST(log.find("late_over_2s=0") != std::string::npos, log);
    BOOST_TEST(log.find("popgated stopped") != std::string::npos, log);
    settle();
}

BOOST_AUTO_TEST_CASE(sighup_applies_accounts_d)
{
    Servers s;
    EmptyMailboxes mailboxes({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("hup");
    Daemon d(gw);
    BOOST_TEST_REQUIRE(d.logs("0 active account(s)", std::chrono::seconds(10)), d.log());
    dropMessage(s.maildir2,
                message({"From: a@example.com", "Message-ID: " + mid("hup")}, "hup\r\n"));
    const std::string dir = gw.file("accounts.d");
    Poco::File(dir).createDirectories();
    // The secret in secrets_dir, owned by root, not readable by others: what
    // popgated (as config check) requires before it reads a secret_file. As root,
    // group popgate and mode 0640: popgated reads it as user popgate.
    Poco::File(gw.file("secrets")).createDirectories();
    const std::string secret = gw.file("secrets/hup.secret");
    writeFile(secret, s.password + "\n");
    ::chmod(secret.c_str(), 0600);
    if (::geteuid() == 0) {
        const group* popgate = ::getgrnam("popgate");
        BOOST_TEST_REQUIRE(popgate != nullptr, "group popgate (scripts/users.sh creates it)");
        BOOST_TEST_REQUIRE(::chown(secret.c_str(), 0, popgate->gr_gid) == 0);
        ::chmod(secret.c_str(), 0640);
    }
    writeFile(dir + "/hup.conf",
              "server = " + s.dovecotHost + "\nport = " + std::to_string(s.pop3sPort) +
                  "\nsecurity = ssl-tls\nuser = " + s.user2 + "\ntls-ca-file = " + s.ca +
                  "\nmailbox = hup@example.com\ndeliver-to = " + to +
                  "\npoll-interval = 10s\nsecret_file = " + gw.file("secrets/hup.secret") + "\n");
    ::kill(d.pid(), SIGHUP);
    BOOST_TEST(d.logs("account=hup provisioned from", std::chrono::seconds(10)), d.log());
    BOOST_TEST(within(std::chrono::seconds(25), [&] { return deliveredCount(to) == 1; }),
               "the account from accounts.d was polled:\n"
                   << d.log());

    // A bad file: refused with its name, the daemon goes on.
    writeFile(dir + "/bad.conf", "server = \nport = seventy\n");
    ::kill(d.pid(), SIGHUP);
    BOOST_TEST(d.logs(": not applied: ", std::chrono::seconds(10)), d.log());
    BOOST_TEST(d.log().find("bad.conf") != std::string::npos, d.log());
    BOOST_TEST(d.running());
    BOOST_TEST(d.stop(std::chrono::seconds(10)) == 0, d.log());
    settle();
}
