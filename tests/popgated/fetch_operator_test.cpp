// fetch_operator_test - what an operator reaches for (issue [O]), against the
// real Dovecot and Postfix: the receiving switch (off: popgated makes no POP3
// login at all, the mail stays, the log says so once; on again: the mail is
// fetched without a restart), `popgatectl status` with popgated running and
// stopped (from its heartbeat, with SQLite), and `popgated --dry-run` (the
// mailbox untouched, nothing recorded, each message's fate printed, and the
// fates are what a real poll then does).
#define BOOST_TEST_MODULE fetch_operator
#include "tests/popgated/fetch_support.h"

#include <Poco/File.h>
#include <Poco/Path.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <functional>
#include <signal.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

using Clock = std::chrono::steady_clock;

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

bool has(const std::string& text, const std::string& what)
{
    return text.find(what) != std::string::npos;
}

int count(const std::string& text, const std::string& what)
{
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

// dovecotLog - the test Dovecot's log (STATE/main/dovecot.log; the maildir is STATE/mail/USER).
std::string dovecotLog(const Servers& s)
{
    return readFile(Poco::Path(s.maildir).parent().parent().toString() + "/main/dovecot.log");
}

// loginsSince - Dovecot's "Login: user=<USER>" lines after offset.
int loginsSince(const Servers& s, std::size_t offset, const std::string& user)
{
    const std::string log = dovecotLog(s);
    return count(log.substr(std::min(offset, log.size())), "Login: user=<" + user + ">");
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
    bool logs(const std::string& text, std::chrono::seconds limit) const
    {
        return within(limit, [&] { return has(log(), text); });
    }
    int stop()
    {
        ::kill(pid_, SIGTERM);
        const int status = waitExit(pid_);
        pid_ = -1;
        return status;
    }

private:
    std::string log_;
    pid_t pid_ = -1;
};

// accountLine - the line of status's table for name ("" when none).
std::string accountLine(const std::string& status, const std::string& name)
{
    std::istringstream lines(status);
    std::string line;
    while (std::getline(lines, line))
        if (line.rfind(name + " ", 0) == 0)
            return line;
    return "";
}

std::string mid(const std::string& tag)
{
    return "<operator-" + tag + "." + std::to_string(::getpid()) + "@fetch.test>";
}

} // namespace

BOOST_AUTO_TEST_CASE(receiving_off_polls_nothing_and_status_tells_the_truth)
{
    Servers s;
    EmptyMailboxes mailboxes({s.maildir});
    Gateway gw(s);
    const std::string to = uniqueAddress("receiving");
    gw.addDovecotAccount("shop", s.user, to, {"--poll-interval=10s"});
    dropMessage(s.maildir, message({"From: a@example.com", "Message-ID: " + mid("r1")}, "one\r\n"));

    // Never started: not running, and no next poll is promised.
    std::string st = gw.ctl({"status"});
    BOOST_TEST(has(st, "popgated: not running (never seen"), st);
    BOOST_TEST(has(st, "receiving: on\n"), st);
    BOOST_TEST(!has(gw.ctl({"status", "--long"}), "next poll"));

    BOOST_TEST(has(gw.ctl({"receiving", "off"}), "receiving: off"));
    // --once obeys it too: nothing polled, no login.
    std::size_t offset = dovecotLog(s).size();
    const RunResult once = gw.once();
    BOOST_TEST(once.status == 0, once.err);
    BOOST_TEST(has(once.err, "receiving is off"), once.err);
    BOOST_TEST(loginsSince(s, offset, s.user) == 0, dovecotLog(s).substr(offset));

    offset = dovecotLog(s).size();
    Daemon d(gw);
    BOOST_TEST_REQUIRE(d.logs("receiving is off", std::chrono::seconds(10)), d.log());
    // A first poll would come within 10 s (the interval's spread): wait past it.
    BOOST_TEST_REQUIRE(within(std::chrono::seconds(10),
                              [&] { return has(gw.ctl({"status"}), "popgated: running on"); }));
    std::this_thread::sleep_for(std::chrono::seconds(12));
    BOOST_TEST(loginsSince(s, offset, s.user) == 0, "receiving off: no POP3 login at all\n"
                                                        << dovecotLog(s).substr(offset));
    BOOST_TEST(countMessages(s.maildir) == 1);
    BOOST_TEST(deliveredCount(to) == 0);
    st = gw.ctl({"status"});
    BOOST_TEST(has(st, "receiving: off (switched off "), st);
    BOOST_TEST(has(st, "pid " + std::to_string(d.pid()) + ", version "), st);
    const std::string json = gw.ctl({"status", "--json"});
    BOOST_TEST(has(json, "\"running\": true"), json);
    BOOST_TEST(has(json, "\"pid\": " + std::to_string(d.pid())), json);
    BOOST_TEST(has(json, "\"on\": false"), json);
    std::string line = accountLine(st, "shop");
    BOOST_TEST(has(line, " new "), st);
    BOOST_TEST(has(line, " never "), st);
    BOOST_TEST(has(line, " - "), "no next poll while receiving is off: " << st);

    // On again, without a restart: fetched.
    gw.ctl({"receiving", "on"});
    BOOST_TEST(within(std::chrono::seconds(30), [&] { return deliveredCount(to) == 1; }), d.log());
    BOOST_TEST(d.logs("receiving is on again", std::chrono::seconds(1)), d.log());
    BOOST_TEST(within(std::chrono::seconds(10), [&] {
        return has(gw.ctl({"status", "shop"}), "  next poll:    ");
    }));
    st = gw.ctl({"status"});
    line = accountLine(st, "shop");
    BOOST_TEST(has(line, " ok "), st);
    BOOST_TEST((has(line, " in ") || has(line, " due ")), "a next poll while it runs: " << st);

    BOOST_TEST(d.stop() == 0, d.log());
    const std::string log = d.log();
    BOOST_TEST(count(log, "receiving is off") == 1, "said once:\n" << log);
    BOOST_TEST(count(log, "receiving is on again") == 1, log);

    // Stopped: said so, and no next poll is printed.
    st = gw.ctl({"status", "--long"});
    BOOST_TEST(has(st, "popgated: not running (stopped; last started "), st);
    BOOST_TEST(!has(st, "next poll"), st);
    BOOST_TEST(has(st, "  last 24 h:    1 delivered"), st);
    settle();
}

BOOST_AUTO_TEST_CASE(dry_run_changes_nothing_and_names_each_fate)
{
    Servers s;
    EmptyMailboxes mailboxes({s.maildir});
    Gateway gw(s);
    const std::string to = uniqueAddress("dryrun");
    gw.addDovecotAccount("desk", s.user, to);
    gw.addDovecotAccount("wrongpw", s.user, to, {"--active=no"});
    gw.ctl({"account", "set", "wrongpw", "--password-stdin"}, "not-the-password\n");
    dropMessage(s.maildir, message({"From: a@example.com", "Message-ID: " + mid("d1")}, "one\r\n"));
    dropMessage(s.maildir, message({"From: b@example.com", "Message-ID: " + mid("d1")}, "dup\r\n"));

    const std::string popgated = binary("plugin/popgated/popgated");
    const std::string conf = "--config=" + gw.configFile();
    RunResult r = run(popgated, {conf, "--dry-run", "--log=stderr"});
    BOOST_TEST_MESSAGE(r.out);
    BOOST_TEST(r.status == 0, r.out << r.err);
    BOOST_TEST(has(r.out, "account desk ("), r.out);
    BOOST_TEST(has(r.out, "2 message(s) listed"), r.out);
    BOOST_TEST(has(r.out, "from=<a@example.com>"), r.out);
    BOOST_TEST(has(r.out, ": deliver to " + to + ", then DELE\n"), r.out);
    BOOST_TEST(has(r.out, ": ignore (duplicate: "), r.out);
    BOOST_TEST(!has(r.out, "wrongpw"), "inactive accounts only by name:\n" << r.out);

    // Nothing changed: the mailbox, the ledger, the log, the status, the spool.
    BOOST_TEST(countMessages(s.maildir) == 2);
    BOOST_TEST(gw.ledger().empty());
    BOOST_TEST(gw.sql("SELECT COUNT(*) FROM message_log") == "0\n");
    BOOST_TEST(gw.sql("SELECT COUNT(*) FROM account_status") == "0\n");
    BOOST_TEST(countFiles(gw.spoolDir() + "/tmp") == 0);
    BOOST_TEST(!Poco::File(gw.spoolDir() + "/quarantine").exists());
    BOOST_TEST(!Poco::File(gw.spoolDir() + "/journal/desk").exists());
    settle();
    BOOST_TEST(deliveredCount(to) == 0);

    // An account that cannot log in: its failure printed, exit 1.
    r = run(popgated, {conf, "--dry-run", "--account=wrongpw", "--log=stderr"});
    BOOST_TEST(r.status == 1, r.out << r.err);
    BOOST_TEST(has(r.out, "inactive: popgated does not poll it"), r.out);
    BOOST_TEST(has(r.out, "poll would fail (pop3-auth)"), r.out);
    // No such account: usage, exit 2.
    r = run(popgated, {conf, "--dry-run", "--account=nosuch", "--log=stderr"});
    BOOST_TEST(r.status == 2, r.out << r.err);
    BOOST_TEST(has(r.err, "nosuch"), r.err);

    // The real poll does what the dry run said.
    const RunResult once = gw.once();
    BOOST_TEST(once.status == 0, once.err);
    settle();
    BOOST_TEST(deliveredCount(to) == 1);
    const auto rows = gw.ledger("desk");
    BOOST_TEST_REQUIRE(rows.size() == 2u);
    BOOST_TEST(rows[0].state == "injected");
    BOOST_TEST(rows[1].state == "ignored");
    BOOST_TEST(countMessages(s.maildir) == 0);

    // Afterwards the dry run sees them done: nothing left to fetch.
    dropMessage(s.maildir, message({"From: c@example.com", "Message-ID: " + mid("d3")}, "3\r\n"));
    r = run(popgated, {conf, "--dry-run", "--account=desk", "--log=stderr"});
    BOOST_TEST(r.status == 0, r.out << r.err);
    BOOST_TEST(has(r.out, "1 message(s) listed"), r.out);
    BOOST_TEST(has(r.out, "from=<c@example.com>"), r.out);
    BOOST_TEST(countMessages(s.maildir) == 1);
}

BOOST_AUTO_TEST_CASE(status_after_a_crash_says_not_running)
{
    Servers s;
    Gateway gw(s);
    gw.set("lease_period", "6s"); // a beat a second: silent for 3 s is not running
    gw.addDovecotAccount("idle", s.user2, uniqueAddress("crash"), {"--active=no"});
    Daemon d(gw);
    BOOST_TEST_REQUIRE(within(std::chrono::seconds(10),
                              [&] { return has(gw.ctl({"status"}), "popgated: running on"); }));
    ::kill(d.pid(), SIGKILL); // no clean stop: the heartbeat just ages
    BOOST_TEST(within(std::chrono::seconds(8),
                      [&] { return has(gw.ctl({"status"}), "popgated: not running (last seen "); }),
               gw.ctl({"status"}));
    BOOST_TEST(!has(gw.ctl({"status", "--long"}), "next poll"));
}
