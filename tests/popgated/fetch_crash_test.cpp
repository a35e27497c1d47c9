// fetch_crash_test - kill -9 popgated in each named window of a poll while it
// moves mail from two Dovecot accounts into Postfix, round after round, then
// let one clean run finish, and count every message at the final mailbox.
// The kills are steered, not hoped for: popgated talks POP3 and SMTP through
// tests/support/steering_proxy.h, which sees every line and kills popgated at
// an exact point: (a) in the middle of a RETR body, (b1) when the MTA's 250 to
// the final dot arrives (held back: Postfix has the message, popgated never
// reads the reply), (b2) after popgated read that 250 and before its ledger
// write (the test holds SQLite's write lock, forwards the 250, waits until the
// delivery journal has it, checks the ledger row still says injecting, kills),
// (c) at the k-th DELE, at QUIT, and after the server's +OK to QUIT. Each
// window is hit in every run, and the test fails when one is not. Random kills
// follow. Two cases: with the real popgate-milter in Postfix's path (as
// conf/postfix/*.popgate configure it, over TCP): 0 lost, 0 duplicates;
// without it: 0 lost, and a message arrives twice only when it was the one in
// flight in its SMTP session at a kill (ARCHITECTURE.md, "Never lose, never
// duplicate": at most one per session and kill; a 250 popgated read is never
// sent again).
#define BOOST_TEST_MODULE fetch_crash
#include "core/message.h"
#include "tests/popgated/fetch_support.h"
#include "tests/support/steering_proxy.h"

#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/String.h>
#include <arpa/inet.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <random>
#include <set>
#include <signal.h>
#include <sqlite3.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;
using From = SteeringProxy::From;
using Step = SteeringProxy::Step;

namespace
{

void sleepMs(int ms)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string chomp(const std::string& line)
{
    std::string t = line;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r'))
        t.pop_back();
    return t;
}

bool startsWith(const std::string& s, const std::string& prefix)
{
    return s.size() >= prefix.size() && Poco::icompare(s.substr(0, prefix.size()), prefix) == 0;
}

/// Window - where a kill is steered.
enum class Window {
    RetrMidBody,  ///< (a) a RETR body half sent
    ReplyHeld,    ///< (b1) the MTA's 250 to the final dot never reaches popgated
    LedgerLocked, ///< (b2) popgated read the 250; the ledger write waits for our lock
    DeleSent,     ///< (c) the k-th DELE, before the server sees it
    QuitSent,     ///< (c) QUIT after the DELEs, before the server sees it
    QuitAnswered, ///< (c) the server applied the DELEs; its +OK never reaches popgated
    Random,       ///< a delay after exec or after a message line
};

const char* nameOf(Window w)
{
    switch (w) {
    case Window::RetrMidBody:
        return "(a) mid-RETR body";
    case Window::ReplyHeld:
        return "(b1) the MTA's 250 held back";
    case Window::LedgerLocked:
        return "(b2) 250 read, ledger write blocked";
    case Window::DeleSent:
        return "(c) at the k-th DELE";
    case Window::QuitSent:
        return "(c) at QUIT after DELE";
    case Window::QuitAnswered:
        return "(c) after the server's +OK to QUIT";
    case Window::Random:
        return "random";
    }
    return "?";
}

const std::vector<Window> kSteered = {Window::RetrMidBody, Window::ReplyHeld, Window::LedgerLocked,
                                      Window::DeleSent,    Window::QuitSent,  Window::QuitAnswered};

/// Hit - what the proxy saw when a steered window was reached, and what the
/// test found there.
struct Hit {
    bool fired = false;
    std::string user;         ///< POP3 windows: the Dovecot user of the session
    std::string messageId;    ///< (a), (b1), (b2): the message
    std::string queueId;      ///< (b1), (b2): Postfix's queue id from the 250
    bool journaled = false;   ///< (b2): the 250 was in the delivery journal at the kill
    std::string ledgerAtKill; ///< (b2): the ledger row's state at the kill
    bool dead = false;        ///< the process was gone before anything else passed
    bool settled = false;     ///< the proxy's action is over: the fields above are final
};

/// SmtpSession - one SMTP connection as the proxy follows it.
struct SmtpSession {
    std::deque<std::string> expected{"greeting"}; ///< what the next replies answer
    bool data = false, headers = false;
    std::string messageId; ///< of the DATA being sent
    std::string lastDot;   ///< Message-ID of the last final dot that went to Postfix
    int dots = 0, freshDots = 0;
    bool quit = false; ///< QUIT sent: popgated read every reply before it
};

/// PopSession - one POP3 connection as the proxy follows it.
struct PopSession {
    std::string user;
    int markers = 0, deles = 0;
    bool quit = false, quitAnswered = false;
};

/// Steering - the two proxies' hooks: follows the sessions, and kills popgated
/// in the armed window.
class Steering
{
public:
    Steering(std::string dbFile, std::string journalDir)
        : dbFile_(std::move(dbFile)), journalDir_(std::move(journalDir))
    {
    }

    /// arm - the next run's popgated and where to kill it (Random: nowhere).
    /// Ordinals count only this round's own messages (Message-IDs starting with tag):
    /// a copy resent for an earlier kill is not steered at.
    void arm(pid_t pid, Window w, int ordinal, int firstPop, int firstSmtp, std::string tag)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        tag_ = std::move(tag);
        pid_ = pid;
        window_ = w;
        ordinal_ = ordinal;
        firstPop_ = firstPop;
        firstSmtp_ = firstSmtp;
        hit_ = Hit();
    }
    /// hit - what the run's window saw, once the proxy's action is over.
    Hit hit()
    {
        for (int i = 0; i < 10000; ++i) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (!hit_.fired || hit_.settled)
                    return hit_;
            }
            sleepMs(1);
        }
        std::lock_guard<std::mutex> lock(mutex_);
        return hit_;
    }
    /// inFlight - per SMTP connection of the run, the message whose final dot
    /// went to Postfix last (the one a kill may leave unrecorded), except when
    /// popgated sent QUIT after it (it reads the last reply first) or the test
    /// saw popgated journal its 250 (b2).
    std::vector<std::string> inFlight()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        std::vector<std::string> out;
        for (const auto& [c, s] : smtp_)
            if (c >= firstSmtp_ && s.dots > 0 && !s.quit &&
                !(window_ == Window::LedgerLocked && hit_.journaled && s.lastDot == hit_.messageId))
                out.push_back(s.lastDot);
        return out;
    }

    Step onPop(int c, From from, const std::string& line)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (c < firstPop_)
            return {};
        PopSession& p = pop_[c];
        const std::string t = chomp(line);
        if (from == From::Client) {
            if (startsWith(t, "USER "))
                p.user = t.substr(5);
            if (startsWith(t, "DELE ") && ++p.deles == ordinal_ && armed(Window::DeleSent))
                return fire(p.user);
            if (Poco::icompare(t, "QUIT") == 0) {
                p.quit = true;
                if (p.deles > 0 && armed(Window::QuitSent))
                    return fire(p.user);
            }
            return {};
        }
        if (startsWith(t, "crash-marker ") && fresh(t.substr(13)) && ++p.markers == ordinal_ &&
            armed(Window::RetrMidBody)) {
            hit_.messageId = t.substr(13);
            return fire(p.user);
        }
        if (p.quit && !p.quitAnswered) {
            p.quitAnswered = true;
            if (p.deles > 0 && startsWith(t, "+OK") && armed(Window::QuitAnswered))
                return fire(p.user);
        }
        return {};
    }

    Step onSmtp(int c, From from, const std::string& line)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        SmtpSession& s = smtp_[c];
        const std::string t = chomp(line);
        if (from == From::Client) {
            if (s.data) {
                if (line == ".\r\n") {
                    s.data = false;
                    s.lastDot = s.messageId;
                    ++s.dots;
                    s.freshDots += fresh(s.lastDot);
                    s.expected.push_back(".");
                } else if (s.headers) {
                    if (t.empty())
                        s.headers = false;
                    else if (startsWith(t, "Message-ID:"))
                        s.messageId = Poco::trim(t.substr(11));
                }
            } else {
                s.expected.push_back(Poco::toUpper(t.substr(0, t.find(' '))));
                s.quit = s.quit || s.expected.back() == "QUIT";
            }
            return {};
        }
        if (t.size() >= 4 && t[3] == '-')
            return {}; // a multi-line reply goes on
        const std::string answers = s.expected.empty() ? "" : s.expected.front();
        if (!s.expected.empty())
            s.expected.pop_front();
        if (answers == "DATA" && startsWith(t, "354")) {
            s.data = s.headers = true; // before the client can see the 354
            s.messageId.clear();
        }
        if (answers != "." || !startsWith(t, "250") || c < firstSmtp_ || !fresh(s.lastDot) ||
            s.freshDots != ordinal_)
            return {};
        const auto at = t.find("queued as ");
        const std::string queueId = at == std::string::npos ? "" : chomp(t.substr(at + 10));
        if (armed(Window::ReplyHeld)) {
            hit_.messageId = s.lastDot;
            hit_.queueId = queueId;
            return fire("");
        }
        if (armed(Window::LedgerLocked)) {
            hit_.messageId = s.lastDot;
            hit_.queueId = queueId;
            // The write lock first (popgated is waiting for this reply, in no
            // transaction), then the 250 goes through; the rest in the action.
            sqlite3* db = nullptr;
            if (sqlite3_open_v2(dbFile_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) !=
                    SQLITE_OK ||
                sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
                sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
                BOOST_TEST_MESSAGE("cannot take the write lock: " << sqlite3_errmsg(db));
                sqlite3_close(db);
                return {};
            }
            hit_.fired = true;
            Step step;
            step.cut = true;
            step.action = [this, db, queueId, id = s.lastDot] {
                bool journaled = false;
                for (int i = 0; i < 5000 && !journaled && !queueId.empty(); ++i) {
                    journaled = journalHas(queueId);
                    if (!journaled)
                        sleepMs(1);
                }
                const std::string state = ledgerState(db, id);
                const bool dead = killNow();
                sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
                sqlite3_close(db);
                std::lock_guard<std::mutex> relock(mutex_);
                hit_.journaled = journaled;
                hit_.ledgerAtKill = state;
                hit_.dead = dead;
                hit_.settled = true;
            };
            return step;
        }
        return {};
    }

private:
    bool armed(Window w) const { return window_ == w && !hit_.fired && pid_ > 0; }
    bool fresh(const std::string& messageId) const { return messageId.rfind(tag_, 0) == 0; }

    /// fire - the line is held back for good, popgated killed, the connection cut.
    Step fire(const std::string& user)
    {
        hit_.fired = true;
        hit_.user = user;
        Step step;
        step.forward = false;
        step.cut = true;
        step.action = [this] {
            const bool dead = killNow();
            std::lock_guard<std::mutex> lock(mutex_);
            hit_.dead = dead;
            hit_.settled = true;
        };
        return step;
    }

    /// killNow - SIGKILL to the run's popgated (our child, not reaped while it
    /// runs); true once it is gone (within 5 s).
    bool killNow()
    {
        const pid_t pid = pid_;
        ::kill(pid, SIGKILL);
        for (int i = 0; i < 5000; ++i) {
            siginfo_t info{};
            if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0)
                return errno == ECHILD; // reaped by the test already
            if (info.si_pid == pid)
                return true;
            sleepMs(1);
        }
        return false;
    }

    bool journalHas(const std::string& queueId) const
    {
        if (!Poco::File(journalDir_).exists())
            return false;
        for (Poco::DirectoryIterator it(journalDir_), end; it != end; ++it)
            if (readFile(it->path()).find(queueId) != std::string::npos)
                return true;
        return false;
    }

    static std::string ledgerState(sqlite3* db, const std::string& messageId)
    {
        sqlite3_stmt* st = nullptr;
        std::string state = "(no row)";
        if (sqlite3_prepare_v2(db, "SELECT state FROM messages WHERE message_id = ?1", -1, &st,
                               nullptr) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, messageId.c_str(), -1, SQLITE_TRANSIENT);
            if (sqlite3_step(st) == SQLITE_ROW)
                state = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
        }
        sqlite3_finalize(st);
        return state;
    }

    std::string dbFile_, journalDir_;
    std::mutex mutex_;
    pid_t pid_ = -1;
    Window window_ = Window::Random;
    int ordinal_ = 0, firstPop_ = 1, firstSmtp_ = 1;
    std::string tag_ = "-";
    Hit hit_;
    std::map<int, SmtpSession> smtp_;
    std::map<int, PopSession> pop_;
};

/// accepts - true when something listens on 127.0.0.1:port.
bool accepts(int port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

/// unusedPort - a loopback port nobody listens on now (bound to 0 and closed:
/// the milter binds it itself, so it cannot be held; a lost race is retried).
int unusedPort()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

/// MilterInPath - the real popgate-milter on the gateway's popgate.conf (its
/// database and header key), and the test Postfix's smtpd_milters pointed at
/// it (scripts/servers/postfix.sh set-milter; main.cf keeps the package's
/// milter_default_action = tempfail and milter_protocol = 6, and the
/// reinjection listener keeps its milters, {daemon_name} POPGATE, as in
/// conf/postfix/master.cf.popgate). TCP, not the package's UNIX socket: the
/// socket is the popgate-milter group's, and the test's postfix user is not
/// in it. Undone when it goes.
class MilterInPath
{
public:
    explicit MilterInPath(const Gateway& gw) : log_(gw.file("milter.log"))
    {
        // libmilter binds the port itself: on a port taken meanwhile it exits
        // at start, and another port is tried.
        for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) {
            port_ = unusedPort();
            const pid_t pid = spawn({binary("plugin/popgate-milter/popgate-milter"),
                                     "--config=" + gw.configFile(),
                                     "--socket=inet:" + std::to_string(port_) + "@127.0.0.1",
                                     "--log=stderr", "--foreground"},
                                    log_);
            for (int i = 0; i < 500; ++i) {
                int status = 0;
                if (::waitpid(pid, &status, WNOHANG) == pid)
                    break; // exited at start
                if (accepts(port_)) {
                    pid_ = pid;
                    break;
                }
                if (i == 499) {
                    ::kill(pid, SIGKILL);
                    waitExit(pid);
                }
                sleepMs(20);
            }
        }
        BOOST_REQUIRE_MESSAGE(pid_ > 0, "popgate-milter does not listen: " << readFile(log_));
        setMilter("inet:127.0.0.1:" + std::to_string(port_));
    }
    ~MilterInPath()
    {
        try {
            setMilter("");
        } catch (...) {
        }
        ::kill(pid_, SIGKILL); // our own child
        waitExit(pid_);
    }
    MilterInPath(const MilterInPath&) = delete;
    MilterInPath& operator=(const MilterInPath&) = delete;

    std::string log() const { return readFile(log_); }

private:
    static void setMilter(const std::string& spec)
    {
        const std::string state =
            Poco::Path(requireEnv("POPGATE_TEST_POSTFIX_CONFIG_DIR")).parent().toString();
        std::vector<std::string> args = {"set-milter", state};
        if (!spec.empty())
            args.push_back(spec);
        const RunResult r = run(POPGATE_SOURCE_DIR "/scripts/servers/postfix.sh", args);
        BOOST_REQUIRE_MESSAGE(r.status == 0, "postfix.sh set-milter: " << r.out << r.err);
    }

    std::string log_;
    int port_ = 0;
    pid_t pid_ = -1;
};

int countOf(const std::string& text, const std::string& what)
{
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

/// tagOf - how the Message-IDs of round n begin.
std::string tagOf(int n)
{
    return "<crash-" + std::to_string(n) + "-";
}

/// Round - one popgated run and where it was killed.
struct Round {
    Window window = Window::Random;
    int ordinal = 0;
    bool killed = false;
    Hit hit;
    std::vector<std::string> inFlight; ///< messages a kill may leave unrecorded
};

/// crashRounds - the whole scenario, with or without the milter in Postfix's path.
void crashRounds(bool withMilter)
{
    const int kPerAccount = 4;    // new messages per account and round
    const int kRandomRounds = 20; // after the steered ones
    const int kOrdinals[] = {1, 3};

    Servers s;
    EmptyMailboxes mailboxes({s.maildir, s.maildir2});
    Gateway gw(s);
    Steering steering(gw.dbFile(), gw.spoolDir() + "/journal");
    const int pop3Port = std::stoi(requireEnv("POPGATE_TEST_DOVECOT_PORT"));
    SteeringProxy popProxy(
        pop3Port, [&](int c, From f, const std::string& l) { return steering.onPop(c, f, l); });
    SteeringProxy smtpProxy(s.reinjectPort, [&](int c, From f, const std::string& l) {
        return steering.onSmtp(c, f, l);
    });
    gw.set("reinject.port", std::to_string(smtpProxy.port()));
    std::unique_ptr<MilterInPath> milter;
    if (withMilter)
        milter = std::make_unique<MilterInPath>(gw);

    const std::map<std::string, std::string> to = {{"alpha", uniqueAddress("crasha")},
                                                   {"beta", uniqueAddress("crashb")}};
    const std::map<std::string, std::string> userOf = {{"alpha", s.user}, {"beta", s.user2}};
    const std::map<std::string, std::string> maildirOf = {{"alpha", s.maildir},
                                                          {"beta", s.maildir2}};
    std::map<std::string, std::string> accountOfUser;
    for (const auto& [account, user] : userOf) {
        accountOfUser[user] = account;
        // Plaintext through the proxy (Dovecot allows it on loopback), so that
        // the proxy reads the session.
        gw.ctl({"account", "add", account, "--server=127.0.0.1",
                "--port=" + std::to_string(popProxy.port()), "--security=none",
                "--plaintext-auth=yes", "--auth-mechanism=user", "--user=" + user,
                "--mailbox=" + account + "@example.com", "--deliver-to=" + to.at(account),
                "--password-stdin"},
               s.password + "\n");
    }

    std::map<std::string, std::string> expected;          // Message-ID -> account
    std::map<std::string, int> copies;                    // Message-ID -> copies delivered so far
    std::map<std::string, std::set<std::string>> uidlsOf; // Message-ID -> UIDLs its copies name
    std::set<std::string> seenFiles;
    int strangers = 0, wrongMailbox = 0, badIds = 0;
    std::string badIdDetail;
    const std::string key = gw.headerKey();
    auto collect = [&] {
        settle();
        for (const auto& [account, address] : to)
            for (const auto& d : delivered(address)) {
                if (!seenFiles.insert(d.file).second)
                    continue;
                const std::string id = d.first("Message-ID");
                if (!expected.count(id)) {
                    ++strangers;
                    continue;
                }
                ++copies[id];
                if (expected[id] != account)
                    ++wrongMailbox;
                PopgateId named;
                if (!verifyPopgateId(key, d.first("X-Popgate-Id"), named) ||
                    named.account != account) {
                    ++badIds;
                    badIdDetail += "\n  " + id + ": '" + d.first("X-Popgate-Id") + "'";
                } else {
                    uidlsOf[id].insert(named.uidl);
                }
            }
    };

    std::deque<std::pair<Window, int>> schedule;
    for (Window w : kSteered)
        for (int k : kOrdinals)
            schedule.emplace_back(w, k);
    for (int i = 0; i < kRandomRounds; ++i)
        schedule.emplace_back(Window::Random, 0);
    std::map<Window, int> tries, hits;
    std::mt19937 rng(20261203);
    std::uniform_int_distribution<int> coin(0, 1), early(0, 300), lines(1, 6), afterLine(0, 20);
    const std::string logFile = gw.file("popgated.log");
    std::vector<Round> rounds;

    for (int n = 0; !schedule.empty(); ++n) {
        const auto [window, ordinal] = schedule.front();
        schedule.pop_front();
        for (const auto& [account, maildir] : maildirOf)
            for (int i = 0; i < kPerAccount; ++i) {
                const std::string id = tagOf(n) + account + "-" + std::to_string(i) + "." +
                                       std::to_string(::getpid()) + "@crash.test>";
                expected[id] = account;
                dropMessage(maildir,
                            message({"From: crash@example.com", "Message-ID: " + id,
                                     "Subject: round " + std::to_string(n)},
                                    "first line\r\ncrash-marker " + id + "\r\nlast line\r\n"));
            }
        std::map<std::string, int> onServer, copiesBefore = copies;
        for (const auto& [account, maildir] : maildirOf)
            onServer[account] = countMessages(maildir);
        const std::size_t logBefore = readFile(logFile).size();

        Round r;
        r.window = window;
        r.ordinal = ordinal;
        const pid_t pid = spawn(gw.onceArgv(), logFile);
        steering.arm(pid, window, ordinal, popProxy.connections() + 1, smtpProxy.connections() + 1,
                     tagOf(n));
        if (window == Window::Random) {
            // A delay after exec, or after the k-th message line of the run.
            if (coin(rng) == 0) {
                sleepMs(early(rng));
            } else {
                const int k = lines(rng), after = afterLine(rng);
                for (int i = 0; i < 10000; ++i) {
                    siginfo_t info{};
                    if (countOf(readFile(logFile).substr(logBefore), " status=") >= k ||
                        (::waitid(P_PID, static_cast<id_t>(pid), &info,
                                  WEXITED | WNOHANG | WNOWAIT) == 0 &&
                         info.si_pid == pid))
                        break;
                    sleepMs(1);
                }
                sleepMs(after);
            }
            ::kill(pid, SIGKILL); // our own child, not reaped yet
        }
        int status = -1;
        for (const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);;) {
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                break;
            }
            if (std::chrono::steady_clock::now() > deadline) {
                ::kill(pid, SIGKILL);
                status = waitExit(pid);
                BOOST_ERROR("round " << n << ": popgated did not end within 60 s");
                break;
            }
            sleepMs(2);
        }
        // Every line popgated wrote before it went has been through the proxies
        // (a final dot still in a socket buffer reaches Postfix all the same).
        for (int i = 0; i < 5000 && (popProxy.open() > 0 || smtpProxy.open() > 0); ++i)
            sleepMs(1);
        BOOST_TEST(popProxy.open() + smtpProxy.open() == 0, "the proxies saw every line");
        r.hit = steering.hit();
        r.killed = status == 128 + SIGKILL;
        if (r.killed)
            r.inFlight = steering.inFlight();
        const std::string log = readFile(logFile).substr(logBefore);
        const std::vector<LedgerRow> rowsAtKill = gw.ledger();
        std::map<std::string, int> onServerAfter;
        for (const auto& [account, maildir] : maildirOf)
            onServerAfter[account] = countMessages(maildir);
        collect();

        if (window != Window::Random) {
            ++tries[window];
            const std::string where = std::string(nameOf(window)) + " #" + std::to_string(ordinal) +
                                      " (round " + std::to_string(n) + ")";
            if (!r.hit.fired) {
                // Not reached (popgated ended first): once more, a little later.
                BOOST_TEST_MESSAGE(where << ": not reached; popgated exited " << status);
                if (tries[window] < 6)
                    schedule.emplace_back(window, ordinal);
            } else {
                ++hits[window];
                BOOST_TEST_CONTEXT(where)
                {
                    BOOST_TEST(r.killed, "popgated was killed there (exit " << status << ")");
                    BOOST_TEST(r.hit.dead, "and was gone before anything more passed");
                    const std::string account =
                        r.hit.user.empty() ? expected[r.hit.messageId] : accountOfUser[r.hit.user];
                    auto rowOf = [&](const std::string& id) {
                        for (const auto& row : rowsAtKill)
                            if (row.messageId == id)
                                return row.state;
                        return std::string("(no row)");
                    };
                    int recordedNotDeleted = 0;
                    for (const auto& row : rowsAtKill)
                        recordedNotDeleted +=
                            row.account == account && row.state == "injected" && !row.deleted;
                    switch (window) {
                    case Window::RetrMidBody:
                        BOOST_TEST(copies[r.hit.messageId] == copiesBefore[r.hit.messageId],
                                   "nothing of " << r.hit.messageId << " reached the MTA");
                        break;
                    case Window::ReplyHeld:
                        BOOST_TEST(rowOf(r.hit.messageId) == "injecting",
                                   "the ledger does not know the 250");
                        BOOST_TEST(copies[r.hit.messageId] == copiesBefore[r.hit.messageId] + 1,
                                   "Postfix has " << r.hit.messageId << " (queue id "
                                                  << r.hit.queueId << ")");
                        break;
                    case Window::LedgerLocked:
                        BOOST_TEST(r.hit.journaled,
                                   "the delivery journal had " << r.hit.queueId << " at the kill");
                        BOOST_TEST(r.hit.ledgerAtKill == "injecting",
                                   "the ledger row said injecting at the kill");
                        BOOST_TEST(copies[r.hit.messageId] == copiesBefore[r.hit.messageId] + 1,
                                   "Postfix has " << r.hit.messageId);
                        break;
                    case Window::DeleSent:
                    case Window::QuitSent:
                        BOOST_TEST(onServerAfter[account] == onServer[account],
                                   "the server deleted nothing of " << account);
                        BOOST_TEST(recordedNotDeleted > 0, "rows injected, not yet deleted");
                        break;
                    case Window::QuitAnswered:
                        BOOST_TEST(onServerAfter[account] < onServer[account],
                                   "the server applied the DELEs of " << account);
                        BOOST_TEST(recordedNotDeleted > 0,
                                   "rows injected, not marked deleted (no +OK read)");
                        break;
                    case Window::Random:
                        break;
                    }
                }
            }
        }
        BOOST_TEST_MESSAGE("round "
                           << n << " " << nameOf(window)
                           << (window == Window::Random ? "" : " #" + std::to_string(ordinal))
                           << ": exit " << status << ", "
                           << (r.hit.fired ? "window hit" : "no steered kill") << ", "
                           << r.inFlight.size() << " in flight, "
                           << countOf(log, " status=delivered") << " delivered lines");
        rounds.push_back(std::move(r));
    }

    // One clean run moves what is left; a second finds nothing.
    steering.arm(-1, Window::Random, 0, popProxy.connections() + 1, smtpProxy.connections() + 1,
                 "-");
    const RunResult last = gw.once();
    BOOST_TEST(last.status == 0, last.err);
    collect();
    const RunResult idle = gw.once();
    BOOST_TEST(idle.status == 0, idle.err);
    BOOST_TEST(messageLines(idle.err).empty(), idle.err);
    collect();

    // Every copy against the kills that could explain it.
    std::map<std::string, int> allowed; // Message-ID -> kills that had it in flight
    int kills = 0, sessionsInFlight = 0;
    for (const Round& r : rounds) {
        kills += r.killed;
        sessionsInFlight += static_cast<int>(r.inFlight.size());
        for (const auto& id : r.inFlight)
            ++allowed[id];
    }
    int lost = 0, duplicates = 0, unexplained = 0, journaledResent = 0;
    std::string detail;
    for (const auto& [id, account] : expected) {
        const int n = copies[id];
        if (n == 0) {
            ++lost;
            detail += "\n  lost: " + id;
        }
        if (n > 1) {
            duplicates += n - 1;
            if (n - 1 > allowed[id]) {
                unexplained += n - 1 - allowed[id];
                detail += "\n  " + std::to_string(n) + " copies of " + id + ", in flight at " +
                          std::to_string(allowed[id]) + " kill(s)";
            }
        }
    }
    for (const Round& r : rounds)
        if (r.window == Window::LedgerLocked && r.hit.fired && copies[r.hit.messageId] != 1) {
            ++journaledResent;
            detail += "\n  (b2) " + r.hit.messageId + ": " +
                      std::to_string(copies[r.hit.messageId]) + " copies";
        }

    // The ledger: one row per message, injected and marked deleted; the mailboxes empty.
    std::map<std::string, int> rowsOf;
    int notInjected = 0, notMarkedDeleted = 0;
    std::string odd;
    for (const auto& row : gw.ledger()) {
        ++rowsOf[row.messageId];
        // Every copy, resent or not, names the UIDL of its message's row.
        const auto& uidls = uidlsOf[row.messageId];
        if (!uidls.empty() && (uidls.size() != 1 || *uidls.begin() != row.uidl)) {
            ++badIds;
            badIdDetail += "\n  " + row.messageId + " (uidl " + row.uidl + "): copies name " +
                           std::to_string(uidls.size()) + " UIDL(s)";
        }
        if (row.state == "injected" && row.deleted)
            continue;
        (row.state != "injected" ? notInjected : notMarkedDeleted) += 1;
        odd += "\n  " + row.account + " " + row.uidl + " " + row.messageId + " " + row.state +
               (row.deleted ? " deleted" : " not deleted");
    }
    int rowsNotOne = 0;
    for (const auto& [id, account] : expected)
        rowsNotOne += rowsOf[id] != 1;

    std::ostringstream report;
    report << (withMilter ? "with" : "without") << " the milter: " << expected.size()
           << " messages, " << rounds.size() << " rounds, " << kills << " kills (windows hit:";
    for (Window w : kSteered)
        report << " " << nameOf(w) << " " << hits[w] << "/" << tries[w];
    report << "), " << sessionsInFlight << " SMTP sessions with a message in flight at a kill; "
           << "lost " << lost << ", duplicates " << duplicates << " (unexplained " << unexplained
           << ", of a journaled 250 " << journaledResent << "), wrong X-Popgate-Id " << badIds
           << ", unknown " << strangers << ", wrong mailbox " << wrongMailbox;
    BOOST_TEST_MESSAGE(report.str());

    for (Window w : kSteered)
        BOOST_TEST(hits[w] >= 1, nameOf(w) << ": the window was hit (" << hits[w] << " of "
                                           << tries[w] << " tries)");
    BOOST_TEST(lost == 0, detail);
    if (withMilter) {
        BOOST_TEST(duplicates == 0, "the milter drops every resent copy:" << detail);
        const std::string mlog = milter->log();
        BOOST_TEST(countOf(mlog, "action=accept (reinjected by popgated") ==
                       static_cast<int>(expected.size()),
                   "every message passed the milter once");
        for (const Round& r : rounds)
            if (r.window == Window::ReplyHeld && r.hit.fired) {
                std::string uidl;
                for (const auto& row : gw.ledger())
                    if (row.messageId == r.hit.messageId)
                        uidl = row.uidl;
                BOOST_TEST(mlog.find(" uidl=" + uidl +
                                     " action=discard (duplicate: copy queue-id=" +
                                     r.hit.queueId) != std::string::npos,
                           "the milter discarded the resent " << r.hit.messageId);
            }
    } else {
        BOOST_TEST(unexplained == 0, "a message arrives twice only when it was the one in flight "
                                     "in its SMTP session at a kill:"
                                         << detail);
        BOOST_TEST(duplicates <= sessionsInFlight,
                   "at most one duplicate per SMTP session and kill");
        int heldTwice = 0, held = 0;
        std::string heldDetail;
        for (const Round& r : rounds)
            if (r.window == Window::ReplyHeld && r.hit.fired) {
                ++held;
                heldTwice += copies[r.hit.messageId] >= 2;
                heldDetail += "\n  " + r.hit.messageId + ": " +
                              std::to_string(copies[r.hit.messageId]) + " copies, in flight at " +
                              std::to_string(allowed[r.hit.messageId]) + " kill(s)";
            }
        BOOST_TEST(
            heldTwice == held,
            "without the milter a held 250 is resent (a duplicate, not a loss):" << heldDetail);
    }
    BOOST_TEST(journaledResent == 0, "a 250 popgated read is never sent again:" << detail);
    BOOST_TEST(badIds == 0, "every copy carries the valid X-Popgate-Id of its account and its "
                            "row's UIDL:"
                                << badIdDetail);
    BOOST_TEST(strangers == 0);
    BOOST_TEST(wrongMailbox == 0);
    BOOST_TEST(countMessages(s.maildir) == 0, "nothing left on the server");
    BOOST_TEST(countMessages(s.maildir2) == 0, "nothing left on the server");
    BOOST_TEST(rowsNotOne == 0, "one ledger row per message");
    BOOST_TEST(notInjected == 0, "every ledger row ends injected:" << odd);
    BOOST_TEST(notMarkedDeleted == 0, "every ledger row ends marked deleted:" << odd);
}

} // namespace

BOOST_AUTO_TEST_CASE(with_the_milter_every_message_arrives_exactly_once)
{
    crashRounds(true);
}

BOOST_AUTO_TEST_CASE(without_the_milter_only_a_message_in_flight_at_a_kill_arrives_twice)
{
    crashRounds(false);
}

// bigBody - 300 lines of 998 octets: larger than what popgated keeps in memory.
std::string bigBody()
{
    std::string body;
    for (int i = 0; i < 300; ++i)
        body += std::string(998, 'x') + "\r\n";
    return body;
}

// A run killed while a message is spooled leaves spool_dir/tmp/ACCOUNT.PID.N
// behind; the next popgated sweeps it at start (with 50 MB messages the disk
// would fill up otherwise).
BOOST_AUTO_TEST_CASE(spool_files_of_a_killed_run_are_cleaned_up)
{
    Servers s;
    EmptyMailboxes mailboxes({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("spoolleak");
    gw.addDovecotAccount("leak", s.user2, to);
    for (int i = 0; i < 40; ++i)
        dropMessage(s.maildir2, message({"From: leak@example.com",
                                         "Message-ID: <leak-" + std::to_string(i) + "." +
                                             std::to_string(::getpid()) + "@crash.test>"},
                                        bigBody())); // above Spool::kMemoryLimit: spooled to a file
    // Kill it as soon as a spool file shows up.
    const pid_t pid = spawn(gw.onceArgv(), gw.file("popgated.log"));
    for (int i = 0; i < 1000 && countFiles(gw.spoolDir() + "/tmp") == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ::kill(pid, SIGKILL);
    waitExit(pid);
    BOOST_TEST_REQUIRE(countFiles(gw.spoolDir() + "/tmp") > 0,
                       "the kill landed while a message was spooled");

    const RunResult r = gw.once();
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(countFiles(gw.spoolDir() + "/tmp") == 0,
               "the next run sweeps what a killed run left");
    settle();
}
