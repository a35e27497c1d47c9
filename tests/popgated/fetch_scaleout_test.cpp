// fetch_scaleout_test - several popgated hosts on one PostgreSQL (issue 15,
// docs/scale-out.md): three real popgated daemons with distinct host ids and
// a short lease_period share 60 Dovecot accounts, delivering into the test
// Postfix. Every message is counted at Postfix by Message-ID, and Dovecot's
// own log shows whether two POP3 sessions of one user ever overlapped:
//   (a) steady state: every message once, no overlapping sessions;
//   (b) kill -9 of one host mid-transfer: its accounts are held by the others
//       within one lease_period, nothing lost;
//   (c) SIGSTOP of one host past its lease, then SIGCONT: its stale sessions
//       record and delete nothing more (at most the message in flight comes
//       twice, with the same X-Popgate-Id for the milter to drop);
//   (d) PostgreSQL stopped and started mid-run: nothing lost, the outage
//       logged once per host;
//   (e) the issue's reproduction: two `popgated --once` at the same moment.
// The suite runs its own PostgreSQL (scripts/servers/postgresql.sh), so that
// stopping it disturbs no other suite; the Dovecot users it needs are added
// to the test Dovecot's passwd-file (re-read by Dovecot when it changes).
#define BOOST_TEST_MODULE fetch_scaleout
#include "tests/popgated/fetch_support.h"

#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/String.h>
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <signal.h>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

constexpr int kLeaseSeconds = 3;
using Clock = std::chrono::steady_clock;

void sleepMs(int ms)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string pgBin(const std::string& program)
{
    const RunResult r =
        run("/bin/sh", {"-c", "ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1"});
    return Poco::trim(r.out) + "/" + program;
}

/// OwnPostgres - a PostgreSQL cluster of this suite's own, on a free port.
class OwnPostgres
{
public:
    OwnPostgres()
    {
        ::chmod(dir_.path().c_str(), 0755);
        const RunResult r = run(script(), {"start", state()});
        BOOST_REQUIRE_MESSAGE(r.status == 0, "postgresql.sh start: " + r.err + r.out);
        const std::string env = readFile(state() + "/env"); // POPGATE_TEST_PG_CONNECT='...'
        const auto q1 = env.find('\''), q2 = env.rfind('\'');
        BOOST_REQUIRE(q1 != std::string::npos && q2 > q1);
        connect_ = env.substr(q1 + 1, q2 - q1 - 1);
        const auto p = connect_.find("port=");
        port_ = connect_.substr(p + 5, connect_.find(' ', p) - p - 5);
    }
    ~OwnPostgres() { run(script(), {"stop", state()}); }

    const std::string& connect() const { return connect_; }
    /// createDatabase - a fresh database; returns its name.
    std::string createDatabase()
    {
        static int n = 0;
        const std::string name = "scaleout" + std::to_string(++n);
        psql("postgres", "CREATE DATABASE " + name);
        return name;
    }
    /// psql - one statement, unaligned tuples-only output.
    std::string psql(const std::string& db, const std::string& sql) const
    {
        const RunResult r = run("/usr/bin/psql", {connect_ + " dbname=" + db, "-At", "-c", sql});
        BOOST_REQUIRE_MESSAGE(r.status == 0, "psql " + sql + ": " + r.err);
        return r.out;
    }
    void stop() const
    {
        const RunResult r =
            run("/usr/sbin/runuser", {"-u", "postgres", "--", pgBin("pg_ctl"), "-D",
                                      state() + "/data", "-w", "-m", "fast", "stop"});
        BOOST_REQUIRE_MESSAGE(r.status == 0, "pg_ctl stop: " + r.err + r.out);
    }
    void start() const
    {
        const RunResult r =
            run("/usr/sbin/runuser",
                {"-u", "postgres", "--", pgBin("pg_ctl"), "-D", state() + "/data", "-w", "-l",
                 state() + "/server.log", "-o",
                 "-p " + port_ + " -k " + state() + " -c listen_addresses=127.0.0.1 -c fsync=off",
                 "start"});
        BOOST_REQUIRE_MESSAGE(r.status == 0, "pg_ctl start: " + r.err + r.out);
    }

private:
    static std::string script()
    {
        return std::string(POPGATE_SOURCE_DIR) + "/scripts/servers/postgresql.sh";
    }
    std::string state() const { return dir_.file("pg"); }
    TempDir dir_;
    std::string connect_, port_;
};

OwnPostgres& postgres()
{
    static OwnPostgres pg;
    return pg;
}

/// dovecotState - the test Dovecot's state directory (STATE/mail/USER is a maildir).
std::string dovecotState(const Servers& s)
{
    return Poco::Path(s.maildir).parent().parent().toString(); // .../mail/popgate -> ...
}

/// addDovecotUsers - n users of the test Dovecot's passwd-file, named PREFIX01...;
/// returns (user, maildir) pairs with empty maildirs.
std::vector<std::pair<std::string, std::string>> addDovecotUsers(const Servers& s,
                                                                 const std::string& prefix, int n)
{
    std::string state = dovecotState(s);
    while (!state.empty() && state.back() == '/')
        state.pop_back();
    std::vector<std::pair<std::string, std::string>> out;
    std::ofstream users(state + "/users", std::ios::app);
    for (int i = 1; i <= n; ++i) {
        char name[64];
        std::snprintf(name, sizeof name, "%s%02d", prefix.c_str(), i);
        users << name << ":{PLAIN}" << s.password << "::::\n";
        const std::string maildir = state + "/mail/" + name;
        for (const char* sub : {"/new", "/cur", "/tmp"})
            Poco::File(maildir + sub).createDirectories();
        Poco::File(state + "/home/" + name).createDirectories();
        run("/bin/chown", {"-R", "nobody:nogroup", maildir, state + "/home/" + name});
        out.emplace_back(name, maildir);
    }
    users.close();
    return out;
}

std::string messageId(const std::string& tag, const std::string& user, int i)
{
    return "<" + tag + "-" + user + "-" + std::to_string(i) + "." + std::to_string(::getpid()) +
           "@scaleout.test>";
}

/// dropMail - n messages into each maildir, Message-IDs recorded in expected;
/// bodyLines lines of text each (to make a transfer take a while).
void dropMail(const std::vector<std::pair<std::string, std::string>>& users, const std::string& tag,
              int from, int n, int bodyLines, std::set<std::string>& expected)
{
    for (int i = from; i < from + n; ++i)
        for (const auto& [user, maildir] : users) {
            const std::string id = messageId(tag, user, i);
            std::string body;
            for (int l = 0; l < bodyLines; ++l)
                body +=
                    "line " + std::to_string(l) + " of a message that takes a while to move\r\n";
            dropMessage(maildir,
                        message({"From: sender@example.com", "To: " + user + "@example.com",
                                 "Subject: scale-out " + std::to_string(i), "Message-ID: " + id},
                                body));
            expected.insert(id);
        }
}

/// Copies - what Postfix delivered to the address: Message-ID -> copies,
/// with the HELO (= the host id) each came with and its X-Popgate-Id.
struct Copy {
    std::string helo, popgateId, file;
};
std::map<std::string, std::vector<Copy>> copiesAt(const std::string& address)
{
    std::map<std::string, std::vector<Copy>> out;
    for (const auto& d : delivered(address)) {
        Copy c;
        c.file = d.file;
        c.popgateId = d.first("X-Popgate-Id");
        // Postfix's own Received line: "from HELO (localhost [127.0.0.1]) by ...".
        for (const auto& r : d.all("Received"))
            if (r.rfind("from ", 0) == 0 && r.find("[127.0.0.1]") != std::string::npos) {
                c.helo = r.substr(5, r.find(' ', 5) - 5);
                break;
            }
        out[d.first("Message-ID")].push_back(c);
    }
    return out;
}

/// Cluster - one PostgreSQL database and up to three popgated daemons on it,
/// each a Gateway of its own (spool, log, host_id hN, EHLO hN), sharing the
/// secret and header keys.
class Cluster
{
public:
    explicit Cluster(const Servers& s, int hosts) : servers_(s)
    {
        db_ = postgres().createDatabase();
        for (int i = 0; i < hosts; ++i) {
            auto gw = std::make_unique<Gateway>(s);
            gw->set("database.driver", "postgresql");
            gw->set("database.connect", postgres().connect() + " dbname=" + db_);
            gw->set("host_id", "h" + std::to_string(i + 1));
            gw->set("reinject.helo", "h" + std::to_string(i + 1));
            gw->set("lease_period", std::to_string(kLeaseSeconds) + "s");
            gw->set("workers", "4");
            if (i > 0) {
                gw->set("secret_key_file", gateways_[0]->file("secret.key"));
                gw->set("header_key_file", gateways_[0]->file("header.key"));
            }
            gateways_.push_back(std::move(gw));
        }
        gateways_[0]->ctl({"db", "migrate"});
        // The header key, created by one popgated before several start at once.
        const RunResult r = gateways_[0]->once();
        BOOST_REQUIRE_MESSAGE(r.status == 0, r.err);
        pids_.assign(gateways_.size(), -1);
    }
    ~Cluster()
    {
        for (std::size_t i = 0; i < pids_.size(); ++i)
            if (pids_[i] > 0) {
                ::kill(pids_[i], SIGCONT);
                ::kill(pids_[i], SIGKILL); // our own child
                waitExit(pids_[i]);
            }
    }
    Gateway& gw(std::size_t i) { return *gateways_[i]; }
    std::size_t size() const { return gateways_.size(); }
    const std::string& database() const { return db_; }
    std::string psql(const std::string& sql) const { return postgres().psql(db_, sql); }

    void addAccounts(const std::vector<std::pair<std::string, std::string>>& users,
                     const std::string& deliverTo)
    {
        for (const auto& [user, maildir] : users)
            gw(0).addDovecotAccount(user, user, deliverTo, {"--poll-interval=10"});
    }
    std::string logFile(std::size_t i) const { return gateways_[i]->file("popgated.log"); }
    /// start - host i as a daemon (popgated without --once), logging to logFile(i).
    void start(std::size_t i)
    {
        auto argv = gateways_[i]->onceArgv();
        argv.erase(std::remove(argv.begin(), argv.end(), "--once"), argv.end());
        pids_[i] = spawn(argv, logFile(i));
    }
    pid_t pid(std::size_t i) const { return pids_[i]; }
    /// stop - SIGTERM, and its exit status.
    int stop(std::size_t i)
    {
        ::kill(pids_[i], SIGTERM);
        const int rc = waitExit(pids_[i]);
        pids_[i] = -1;
        return rc;
    }
    /// kill9 - SIGKILL and reap.
    void kill9(std::size_t i)
    {
        ::kill(pids_[i], SIGKILL);
        waitExit(pids_[i]);
        pids_[i] = -1;
    }

private:
    const Servers& servers_;
    std::string db_;
    std::vector<std::unique_ptr<Gateway>> gateways_;
    std::vector<pid_t> pids_;
};

/// waitUntil - polls cond every 100 ms until it holds or seconds pass; returns it.
bool waitUntil(int seconds, const std::function<bool()>& cond)
{
    const auto deadline = Clock::now() + std::chrono::seconds(seconds);
    while (Clock::now() < deadline) {
        if (cond())
            return true;
        sleepMs(100);
    }
    return cond();
}

/// allDelivered - every expected Message-ID at Postfix (after its queue settles).
bool allDelivered(const std::string& address, const std::set<std::string>& expected)
{
    if (deliveredCount(address) < static_cast<int>(expected.size()))
        return false;
    settle();
    const auto copies = copiesAt(address);
    for (const auto& id : expected)
        if (!copies.count(id))
            return false;
    return true;
}

/// Tally - lost and duplicated messages at Postfix.
struct Tally {
    int lost = 0, duplicates = 0, foreign = 0;
    std::vector<std::string> lostIds;
    std::map<std::string, std::vector<Copy>> copies;
};
Tally tally(const std::string& address, const std::set<std::string>& expected)
{
    settle();
    Tally t;
    t.copies = copiesAt(address);
    for (const auto& id : expected) {
        const auto it = t.copies.find(id);
        if (it == t.copies.end()) {
            ++t.lost;
            t.lostIds.push_back(id);
        } else {
            t.duplicates += static_cast<int>(it->second.size()) - 1;
        }
    }
    for (const auto& [id, c] : t.copies)
        if (!expected.count(id))
            ++t.foreign;
    return t;
}

/// overlaps - POP3 sessions of one of these users that overlapped in the
/// test Dovecot's log (its login line before the previous session's
/// "Disconnected"), read from offset on; each as "user: session A, session B".
std::vector<std::string> overlaps(const Servers& s, std::size_t offset,
                                  const std::set<std::string>& users)
{
    const std::string log = readFile(dovecotState(s) + "/main/dovecot.log");
    std::istringstream in(log.substr(std::min(offset, log.size())));
    std::map<std::string, std::string> open;   // user -> session id
    std::map<std::string, std::string> userOf; // session -> user
    std::vector<std::string> out;
    std::string line;
    auto field = [](const std::string& l, const std::string& start, char end) {
        const auto a = l.find(start);
        if (a == std::string::npos)
            return std::string();
        const auto b = l.find(end, a + start.size());
        return l.substr(a + start.size(), b - a - start.size());
    };
    while (std::getline(in, line)) {
        if (line.find("pop3-login: Info: Login: ") != std::string::npos) {
            const std::string user = field(line, "user=<", '>');
            const std::string session = field(line, "session=<", '>');
            if (!users.count(user))
                continue;
            if (open.count(user))
                out.push_back(user + ": session " + open[user] + " still open at login of " +
                              session);
            open[user] = session;
            userOf[session] = user;
        } else if (line.find(": Disconnected") != std::string::npos &&
                   line.find("pop3(") != std::string::npos) {
            // pop3(USER)<PID><SESSION>: Info: Disconnected: ...
            const std::string user = field(line, "pop3(", ')');
            const auto lt = line.find('<', line.find('>') + 1);
            const std::string session =
                lt == std::string::npos ? "" : field(line.substr(lt), "<", '>');
            if (open.count(user) && open[user] == session)
                open.erase(user);
        }
    }
    return out;
}

std::size_t dovecotLogSize(const Servers& s)
{
    return readFile(dovecotState(s) + "/main/dovecot.log").size();
}

int countLines(const std::string& text, const std::string& what)
{
    int n = 0;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.find(what) != std::string::npos)
            ++n;
    return n;
}

/// leasesHeldBy - accounts whose unexpired lease this host holds (database clock).
int leasesHeldBy(const Cluster& c, const std::string& host)
{
    return std::stoi(c.psql("SELECT COUNT(*) FROM account_leases WHERE holder = '" + host +
                            "' AND expires_at > CAST(EXTRACT(EPOCH FROM clock_timestamp()) * "
                            "1000 AS BIGINT)"));
}

bool mailboxesEmpty(const std::vector<std::pair<std::string, std::string>>& users)
{
    for (const auto& [u, m] : users)
        if (countMessages(m) != 0)
            return false;
    return true;
}

std::set<std::string> names(const std::vector<std::pair<std::string, std::string>>& users)
{
    std::set<std::string> out;
    for (const auto& [u, m] : users)
        out.insert(u);
    return out;
}

} // namespace

// (a) Three hosts, 60 accounts, mail before and while they run: every
// message exactly once, and never two POP3 sessions of one account at once.
BOOST_AUTO_TEST_CASE(three_hosts_deliver_every_message_once)
{
    Servers s;
    const auto users = addDovecotUsers(s, "soa" + std::to_string(::getpid()) + "u", 60);
    std::vector<std::string> maildirs;
    for (const auto& [u, m] : users)
        maildirs.push_back(m);
    EmptyMailboxes mailboxes(maildirs);
    const std::string to = uniqueAddress("soa");
    Cluster c(s, 3);
    c.addAccounts(users, to);
    std::set<std::string> expected;
    dropMail(users, "a", 0, 3, 5, expected);
    const std::size_t dovecotFrom = dovecotLogSize(s);
    for (std::size_t i = 0; i < c.size(); ++i)
        c.start(i);
    // The fair share settles: about 20 accounts each.
    BOOST_TEST(waitUntil(6 * kLeaseSeconds,
                         [&] {
                             for (const char* h : {"h1", "h2", "h3"})
                                 if (leasesHeldBy(c, h) < 15)
                                     return false;
                             return true;
                         }),
               "each host holds about its share: "
                   << c.psql("SELECT holder, COUNT(*) FROM account_leases GROUP BY holder"));
    BOOST_TEST(waitUntil(60, [&] { return allDelivered(to, expected); }));
    dropMail(users, "a", 3, 2, 5, expected); // more while they run
    BOOST_TEST(waitUntil(60, [&] { return allDelivered(to, expected) && mailboxesEmpty(users); }));
    const std::string hosts = c.gw(0).ctl({"hosts"});
    BOOST_TEST_MESSAGE("popgatectl hosts:\n" << hosts);
    for (const char* h : {"h1", "h2", "h3"})
        BOOST_TEST(hosts.find(h) != std::string::npos, h);
    for (std::size_t i = 0; i < c.size(); ++i)
        BOOST_TEST(c.stop(i) == 0);
    const Tally t = tally(to, expected);
    BOOST_TEST(t.lost == 0);
    BOOST_TEST(t.duplicates == 0);
    const auto o = overlaps(s, dovecotFrom, names(users));
    BOOST_TEST(o.empty(), o.size() << " overlapping sessions, e.g. " << (o.empty() ? "" : o[0]));
    BOOST_TEST(c.psql("SELECT COUNT(*) FROM messages WHERE state <> 'injected' OR deleted = 0") ==
               "0\n");
    // Stopped cleanly: the leases were given back.
    BOOST_TEST(leasesHeldBy(c, "h1") + leasesHeldBy(c, "h2") + leasesHeldBy(c, "h3") == 0);
}

// (b) kill -9 of one host while it moves mail: the others hold its accounts
// within one lease_period and deliver the rest; nothing is lost, and the
// extra copies are at most the messages it had in flight (one per session).
BOOST_AUTO_TEST_CASE(a_killed_host_s_accounts_move_within_one_lease_period)
{
    Servers s;
    const auto users = addDovecotUsers(s, "sob" + std::to_string(::getpid()) + "u", 30);
    std::vector<std::string> maildirs;
    for (const auto& [u, m] : users)
        maildirs.push_back(m);
    EmptyMailboxes mailboxes(maildirs);
    const std::string to = uniqueAddress("sob");
    Cluster c(s, 3);
    c.addAccounts(users, to);
    std::set<std::string> expected;
    dropMail(users, "b", 0, 12, 400, expected); // ~20 KB each
    for (std::size_t i = 0; i < c.size(); ++i)
        c.start(i);
    // h1 mid-transfer: its first deliveries are in its log.
    BOOST_REQUIRE(
        waitUntil(30, [&] { return countLines(readFile(c.logFile(0)), "status=delivered") >= 3; }));
    const int held = leasesHeldBy(c, "h1");
    c.kill9(0);
    const auto killed = Clock::now();
    BOOST_TEST_MESSAGE("h1 killed holding " << held << " account(s)");
    BOOST_TEST(held > 0);
    // Within one lease period (plus one keeper tick of the taker): none is h1's.
    BOOST_TEST(waitUntil(kLeaseSeconds + 1, [&] { return leasesHeldBy(c, "h1") == 0; }));
    const double movedAfter = std::chrono::duration<double>(Clock::now() - killed).count();
    BOOST_TEST_MESSAGE("h1's accounts held by h2/h3 after " << movedAfter << " s");
    BOOST_TEST(waitUntil(kLeaseSeconds + 2, [&] {
        return leasesHeldBy(c, "h2") + leasesHeldBy(c, "h3") == static_cast<int>(users.size());
    }));
    BOOST_TEST(waitUntil(90, [&] { return allDelivered(to, expected) && mailboxesEmpty(users); }));
    BOOST_TEST(c.stop(1) == 0);
    BOOST_TEST(c.stop(2) == 0);
    const Tally t = tally(to, expected);
    BOOST_TEST(t.lost == 0);
    // At most one message in flight per session of h1 (workers = 4).
    BOOST_TEST(t.duplicates <= 4, t.duplicates << " extra copies");
    BOOST_TEST_MESSAGE("kill -9: " << t.duplicates << " extra copies, " << t.lost << " lost");
    for (const auto& [id, copies] : t.copies)
        for (const auto& copy : copies)
            BOOST_TEST(copy.popgateId == copies.front().popgateId, id);
}

// (c) SIGSTOP one host past its lease while it moves mail, SIGCONT it: the
// others hold its accounts meanwhile; its stale sessions are fenced (they
// record nothing and are dropped without QUIT, so no DELE applies); at most
// the message each had in flight arrives twice, with the same X-Popgate-Id.
BOOST_AUTO_TEST_CASE(a_paused_host_records_and_deletes_nothing_after_its_lease)
{
    Servers s;
    const auto users = addDovecotUsers(s, "soc" + std::to_string(::getpid()) + "u", 30);
    std::vector<std::string> maildirs;
    for (const auto& [u, m] : users)
        maildirs.push_back(m);
    EmptyMailboxes mailboxes(maildirs);
    const std::string to = uniqueAddress("soc");
    Cluster c(s, 3);
    c.addAccounts(users, to);
    std::set<std::string> expected;
    dropMail(users, "c", 0, 12, 400, expected);
    for (std::size_t i = 0; i < c.size(); ++i)
        c.start(i);
    BOOST_REQUIRE(
        waitUntil(30, [&] { return countLines(readFile(c.logFile(0)), "status=delivered") >= 3; }));
    ::kill(c.pid(0), SIGSTOP);
    const std::size_t pausedAt = readFile(c.logFile(0)).size();
    const std::size_t dovecotFrom = dovecotLogSize(s);
    // Past the lease: the others hold every account.
    BOOST_TEST(waitUntil(kLeaseSeconds + 2, [&] { return leasesHeldBy(c, "h1") == 0; }));
    sleepMs(1000);
    ::kill(c.pid(0), SIGCONT);
    BOOST_TEST(waitUntil(90, [&] { return allDelivered(to, expected) && mailboxesEmpty(users); }));
    for (std::size_t i = 0; i < c.size(); ++i)
        BOOST_TEST(c.stop(i) == 0);
    const std::string after = readFile(c.logFile(0)).substr(pausedAt);
    const int fenced = countLines(after, "lease lost");
    BOOST_TEST_MESSAGE("h1 after SIGCONT: " << fenced << " session(s) fenced:\n"
                                            << after.substr(0, 3000));
    const Tally t = tally(to, expected);
    BOOST_TEST(t.lost == 0);
    // Only the messages in flight at the pause may come twice: one per fenced session.
    BOOST_TEST(t.duplicates <= fenced, t.duplicates << " extra copies, " << fenced << " fenced");
    for (const auto& [id, copies] : t.copies)
        for (const auto& copy : copies)
            BOOST_TEST(copy.popgateId == copies.front().popgateId, id);
    // The stale sessions overlapped the new holders' in Dovecot (that is what
    // the fence is for); after them, none did.
    BOOST_TEST_MESSAGE(overlaps(s, dovecotFrom, names(users)).size()
                       << " overlapping session(s) while h1 was stale");
    BOOST_TEST(c.psql("SELECT COUNT(*) FROM messages WHERE state <> 'injected' OR deleted = 0") ==
               "0\n");
}

// (d) PostgreSQL stopped for longer than the lease and started again while
// three hosts move mail: nothing lost, each host logs the outage once.
BOOST_AUTO_TEST_CASE(a_database_outage_loses_nothing)
{
    Servers s;
    const auto users = addDovecotUsers(s, "sod" + std::to_string(::getpid()) + "u", 30);
    std::vector<std::string> maildirs;
    for (const auto& [u, m] : users)
        maildirs.push_back(m);
    EmptyMailboxes mailboxes(maildirs);
    const std::string to = uniqueAddress("sod");
    Cluster c(s, 3);
    c.addAccounts(users, to);
    std::set<std::string> expected;
    dropMail(users, "d", 0, 12, 400, expected);
    for (std::size_t i = 0; i < c.size(); ++i)
        c.start(i);
    // Mid-transfer: the first deliveries are in a host's log.
    BOOST_REQUIRE(waitUntil(30, [&] {
        for (std::size_t i = 0; i < c.size(); ++i)
            if (countLines(readFile(c.logFile(i)), "status=delivered") >= 2)
                return true;
        return false;
    }));
    postgres().stop();
    sleepMs((kLeaseSeconds + 1) * 1000);
    postgres().start();
    BOOST_TEST(waitUntil(90, [&] { return allDelivered(to, expected) && mailboxesEmpty(users); }));
    // (A daemon whose polls ever failed exits 1 at SIGTERM: not checked here.)
    for (std::size_t i = 0; i < c.size(); ++i)
        c.stop(i);
    const Tally t = tally(to, expected);
    BOOST_TEST(t.lost == 0);
    for (std::size_t i = 0; i < c.size(); ++i) {
        std::istringstream in(readFile(c.logFile(i)));
        std::string line, shown;
        while (std::getline(in, line))
            if (line.find("status=") == std::string::npos)
                shown += line + "\n";
        BOOST_TEST_MESSAGE("h" << i + 1 << " (without the per-message lines):\n" << shown);
    }
    BOOST_TEST_MESSAGE("database outage: " << t.duplicates << " extra copies, " << t.lost
                                           << " lost");
    for (std::size_t i = 0; i < c.size(); ++i) {
        const std::string log = readFile(c.logFile(i));
        BOOST_TEST(countLines(log, "cannot confirm the leases") <= 1, "host " << i);
        BOOST_TEST(countLines(log, "reachable again") <= 1, "host " << i);
    }
    // The extra copies are the messages in flight when the database went (one
    // per session) and carry the first copy's X-Popgate-Id.
    BOOST_TEST(t.duplicates <= 12, t.duplicates << " extra copies");
    for (const auto& [id, copies] : t.copies)
        for (const auto& copy : copies)
            BOOST_TEST(copy.popgateId == copies.front().popgateId, id);
    BOOST_TEST(c.psql("SELECT COUNT(*) FROM messages WHERE state <> 'injected' OR deleted = 0") ==
               "0\n");
}

// (e) The issue's reproduction, smaller: two `popgated --once` started at the
// same moment on the same 4 accounts: every message once, no "expunged".
BOOST_AUTO_TEST_CASE(two_once_runs_at_the_same_moment)
{
    Servers s;
    const auto users = addDovecotUsers(s, "soe" + std::to_string(::getpid()) + "u", 4);
    std::vector<std::string> maildirs;
    for (const auto& [u, m] : users)
        maildirs.push_back(m);
    EmptyMailboxes mailboxes(maildirs);
    const std::string to = uniqueAddress("soe");
    Cluster c(s, 2);
    c.addAccounts(users, to);
    std::set<std::string> expected;
    dropMail(users, "e", 0, 100, 2, expected);
    const pid_t a = spawn(c.gw(0).onceArgv(), c.logFile(0));
    const pid_t b = spawn(c.gw(1).onceArgv(), c.logFile(1));
    BOOST_TEST(waitExit(a) == 0);
    BOOST_TEST(waitExit(b) == 0);
    const Tally t = tally(to, expected);
    BOOST_TEST(t.lost == 0);
    BOOST_TEST(t.duplicates == 0);
    BOOST_TEST(mailboxesEmpty(users));
    for (std::size_t i = 0; i < 2; ++i)
        BOOST_TEST(readFile(c.logFile(i)).find("expunged") == std::string::npos);
}
