// fetch_crash_test - kill -9 popgated at random points while it moves mail
// from two Dovecot accounts into Postfix (5 new messages per account each
// round), round after round (fixed seed), then let one clean run finish: every message must be in Postfix's
// maildir (counted by Message-ID), none lost, and the mailboxes empty.
// A kill between the MTA's 250 and the ledger write may duplicate a message
// by design (popgate errs toward duplicates; the milter suppresses them, and
// it is not in this path): duplicates are counted and bounded by the kills.
#define BOOST_TEST_MODULE fetch_crash
#include "tests/popgated/fetch_support.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <signal.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

std::string mid(int round, const std::string& account, int i)
{
    return "<crash-" + std::to_string(round) + "-" + account + "-" + std::to_string(i) + "." +
           std::to_string(::getpid()) + "@crash.test>";
}

int countOf(const std::string& text, const std::string& what)
{
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

} // namespace

BOOST_AUTO_TEST_CASE(kill_9_at_random_points_loses_nothing)
{
    // Rounds with a kill: at least 40, and on until enough kills landed
    // mid-run. How many runs finish before their kill depends on the machine
    // (a batch of 10 messages may be through in 20 ms), so the count of rounds
    // is the variable, not the count of kills; every round brings new mail.
    const int kMinRounds = 40, kMaxRounds = 250;
    const int kMinKills = 30, kMinMidTransfer = 10;
    const int kPerAccountPerRound = 5;
    // Where a kill lands. Plain delays after exec (0-300 ms) depend on the
    // machine: popgated needs 150-400 ms to its first hand-over (TLS login to
    // Dovecot, a fresh Postfix smtpd), so on a slow day every kill hits the
    // start-up and on a fast one every run is over first. So 20% of the kills
    // come 0-300 ms after exec, 15% 0-30 ms after the first account's poll
    // summary (the other account in DELE/QUIT, or the daemon ending), the
    // others 0-30 ms after the k-th per-message log line of the round (k = 1..8):
    // start-up, RETR, SMTP, the window between the MTA's 250 and the ledger,
    // DELE and QUIT all get hit.
    const int kEarlyPercent = 20, kLatePercent = 15, kEarlyMaxMs = 300, kMaxLines = 8,
              kAfterLineMaxMs = 30;

    Servers s;
    EmptyMailboxes mailboxes({s.maildir, s.maildir2});
    Gateway gw(s);
    const std::map<std::string, std::string> to = {{"alpha", uniqueAddress("crasha")},
                                                   {"beta", uniqueAddress("crashb")}};
    gw.addDovecotAccount("alpha", s.user, to.at("alpha"));
    gw.addDovecotAccount("beta", s.user2, to.at("beta"));
    const std::map<std::string, std::string> maildirOf = {{"alpha", s.maildir},
                                                          {"beta", s.maildir2}};

    std::mt19937 rng(20261128);
    std::uniform_int_distribution<int> percent(0, 99), early(0, kEarlyMaxMs), lines(1, kMaxLines),
        afterLine(0, kAfterLineMaxMs);
    std::map<std::string, std::string> expected; // Message-ID -> account
    const std::string logFile = gw.file("popgated.log");
    int killedMidRun = 0, finishedBeforeKill = 0, killedBeforeHandOver = 0, killedMidTransfer = 0,
        killedAfterTransfer = 0;

    int rounds = 0;
    for (int round = 0; round < kMaxRounds && (round < kMinRounds || killedMidRun < kMinKills ||
                                               killedMidTransfer < kMinMidTransfer);
         ++round) {
        ++rounds;
        for (const auto& [account, maildir] : maildirOf)
            for (int i = 0; i < kPerAccountPerRound; ++i) {
                const std::string id = mid(round, account, i);
                expected[id] = account;
                dropMessage(maildir, message({"From: crash@example.com", "Message-ID: " + id,
                                              "Subject: round " + std::to_string(round)},
                                             "message " + id + "\r\n"));
            }
        const std::size_t logBefore = readFile(logFile).size();
        const int mode = percent(rng);
        const bool isEarly = mode < kEarlyPercent,
                   isLate = !isEarly && mode < kEarlyPercent + kLatePercent;
        const int earlyMs = early(rng), lineCount = lines(rng), afterMs = afterLine(rng);
        const pid_t pid = spawn(gw.onceArgv(), logFile);
        if (isEarly) {
            std::this_thread::sleep_for(std::chrono::milliseconds(earlyMs));
        } else {
            // Until the round logged lineCount messages (or popgated is done, or 10 s).
            for (int i = 0; i < 10000; ++i) {
                siginfo_t info{};
                const std::string sofar = readFile(logFile).substr(logBefore);
                if ((isLate ? countOf(sofar, " poll: ") >= 1
                            : countOf(sofar, " status=") >= lineCount) ||
                    (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) ==
                         0 &&
                     info.si_pid == pid))
                    break;
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(afterMs));
        }
        ::kill(pid, SIGKILL); // our own child: a zombie at worst, never someone else
        const int status = waitExit(pid);
        const std::string log = readFile(logFile).substr(logBefore);
        if (status != 128 + SIGKILL) {
            ++finishedBeforeKill;
            continue;
        }
        ++killedMidRun;
        if (log.find("status=") == std::string::npos)
            ++killedBeforeHandOver; // start-up, login, UIDL, the first RETR or SMTP
        else if (countOf(log, " poll: ") < static_cast<int>(maildirOf.size()))
            ++killedMidTransfer; // between messages, or in the middle of one
        else
            ++killedAfterTransfer; // both polls logged: DELE/QUIT or shutting down
    }

    // One clean run moves what is left; a second finds nothing.
    const RunResult last = gw.once();
    BOOST_TEST(last.status == 0, last.err);
    const RunResult idle = gw.once();
    BOOST_TEST(messageLines(idle.err).empty(), idle.err);
    settle();

    std::map<std::string, int> copies;
    std::map<std::string, std::set<std::string>> popgateIds; // Message-ID -> X-Popgate-Id values
    int wrongMailbox = 0;
    for (const auto& [account, address] : to)
        for (const auto& d : delivered(address)) {
            const std::string id = d.first("Message-ID");
            ++copies[id];
            popgateIds[id].insert(d.first("X-Popgate-Id"));
            if (expected.count(id) && expected[id] != account)
                ++wrongMailbox;
        }
    int losses = 0, duplicates = 0, strangers = 0, duplicatesWithOtherIds = 0;
    for (const auto& [id, account] : expected)
        if (copies[id] == 0)
            ++losses;
    for (const auto& [id, n] : copies) {
        if (!expected.count(id))
            ++strangers;
        else if (n > 1) {
            duplicates += n - 1;
            // A resend of the same (account, UIDL) carries the same X-Popgate-Id:
            // the milter can suppress it. Another id would be a second fetch.
            if (popgateIds[id].size() != 1)
                ++duplicatesWithOtherIds;
        }
    }
    const std::string all = readFile(logFile) + last.err;
    const int spoolLeft =
        countFiles(gw.spoolDir() + "/tmp"); // see spool_files_of_a_killed_run_are_cleaned_up

    std::ostringstream report;
    report << "crash test: " << expected.size() << " messages, " << rounds
           << " rounds (seed 20261128; " << kEarlyPercent << "% of the kills 0-" << kEarlyMaxMs
           << " ms after exec, " << kLatePercent << "% 0-" << kAfterLineMaxMs
           << " ms after the first poll summary, the others 0-" << kAfterLineMaxMs
           << " ms after the 1st-" << kMaxLines << "th message of the round): " << killedMidRun
           << " kills landed mid-run (" << killedBeforeHandOver << " before the first hand-over, "
           << killedMidTransfer << " while moving messages, " << killedAfterTransfer
           << " after both polls), " << finishedBeforeKill << " runs finished before the kill; "
           << countOf(all, "status=delivered") << " delivered log lines in all; duplicates "
           << duplicates << " (" << duplicatesWithOtherIds
           << " of them with differing X-Popgate-Ids)"
           << ", losses " << losses << ", unknown messages " << strangers
           << ", in the wrong mailbox " << wrongMailbox << ", spool files left in spool/tmp "
           << spoolLeft;
    BOOST_TEST_MESSAGE(report.str());

    BOOST_TEST(killedMidRun >= kMinKills, "at least 30 kills landed while popgated ran");
    BOOST_TEST(killedMidTransfer >= kMinMidTransfer, "kills landed while messages moved");
    BOOST_TEST(losses == 0);
    // Each SMTP session has at most 16 messages (fetcher.cpp kOutcomeGroup)
    // the MTA accepted and popgated has not recorded yet, and only those of
    // the last 10 ms: a kill resends no more than that per account being
    // fetched at that moment, every one with its first copy's X-Popgate-Id.
    BOOST_TEST(duplicates <= killedMidRun * static_cast<int>(maildirOf.size()) * 16,
               "a duplicate needs a kill, and one kill resends at most 16 messages per session");
    BOOST_TEST(duplicatesWithOtherIds == 0, "every duplicate is a resend the milter can recognise");
    BOOST_TEST(strangers == 0);
    BOOST_TEST(wrongMailbox == 0);
    BOOST_TEST(countMessages(s.maildir) == 0);
    BOOST_TEST(countMessages(s.maildir2) == 0);
    int notInjected = 0, notMarkedDeleted = 0;
    std::string odd;
    for (const auto& row : gw.ledger()) {
        if (row.state != "injected")
            ++notInjected;
        else if (!row.deleted)
            ++notMarkedDeleted;
        else
            continue;
        odd += "\n  " + row.account + " " + row.uidl + " " + row.messageId + " " + row.state +
               (row.deleted ? " deleted" : " not deleted");
    }
    BOOST_TEST(notInjected == 0, "every ledger row ends injected:" << odd);
    BOOST_TEST_WARN(notMarkedDeleted == 0,
                    "ledger rows injected but never marked deleted (the server "
                    "applied the DELE, the kill came before the ledger said so):"
                        << odd);
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
        dropMessage(s.maildir2,
                    message({"From: leak@example.com", "Message-ID: " + mid(999, "leak", i)},
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
