// fetch_crash_test - kill -9 popgated at random points while it moves mail
// from two Dovecot accounts into Postfix (5 new messages per account each
// round), round after round (fixed seed), then let one clean run finish: every
// message must be in Postfix's maildir (counted by Message-ID), none lost, the
// mailboxes empty and every ledger row injected and marked deleted.
// A kill between the MTA's 250 and the ledger write duplicates a message by
// design (popgate errs toward duplicates; the milter suppresses them, and it
// is not in this path). popgated commits each MTA outcome before it sends the
// next message's end of data, so a kill leaves at most ONE such message per
// SMTP session (the one in flight): the test waits for Postfix after every
// round, so that each delivered copy is known by the run that sent it, and
// charges every extra copy to the killed run that sent the copy before it.
#define BOOST_TEST_MODULE fetch_crash
#include "core/message.h"
#include "tests/popgated/fetch_support.h"

#include <algorithm>
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

/// Copy - one message Postfix delivered, and the run (round) that sent it.
struct Copy {
    std::string account; ///< whose address it was delivered to
    std::string messageId;
    std::string popgateId;
    int round = 0;
};

/// Run - one popgated run: a round of the loop, or the clean runs at the end.
struct Run {
    bool killed = false;                   ///< SIGKILL landed while it ran
    std::string phase;                     ///< where the kill landed
    std::map<std::string, int> duplicates; ///< account -> copies resent because of this kill
};

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
    // After a kill, Postfix may still be committing the message whose end of
    // data popgated sent last (a queue file is invisible to postqueue until
    // cleanup is done with it): give it this long before settle().
    const int kAfterKillMs = 50;

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

    // Every copy Postfix delivered, with the run that sent it: after each run
    // Postfix's queue is drained and the files not seen before are that run's.
    std::vector<Run> runs;
    std::vector<Copy> copies;
    std::set<std::string> seenFiles;
    auto collect = [&](int round) {
        settle();
        for (const auto& [account, address] : to)
            for (const auto& d : delivered(address))
                if (seenFiles.insert(d.file).second)
                    copies.push_back(
                        {account, d.first("Message-ID"), d.first("X-Popgate-Id"), round});
    };

    int rounds = 0;
    for (int round = 0; round < kMaxRounds && (round < kMinRounds || killedMidRun < kMinKills ||
                                               killedMidTransfer < kMinMidTransfer);
         ++round) {
        ++rounds;
        runs.emplace_back();
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
        Run& thisRun = runs.back();
        if (status != 128 + SIGKILL) {
            ++finishedBeforeKill;
        } else {
            ++killedMidRun;
            thisRun.killed = true;
            if (log.find("status=") == std::string::npos) {
                ++killedBeforeHandOver; // start-up, login, UIDL, the first RETR or SMTP
                thisRun.phase = "before the first message line";
            } else if (countOf(log, " poll: ") < static_cast<int>(maildirOf.size())) {
                ++killedMidTransfer; // between messages, or in the middle of one
                thisRun.phase = "while moving messages";
            } else {
                ++killedAfterTransfer; // both polls logged: DELE/QUIT or shutting down
                thisRun.phase = "after both polls";
            }
            thisRun.phase += isEarly  ? " (" + std::to_string(earlyMs) + " ms after exec)"
                             : isLate ? " (" + std::to_string(afterMs) + " ms after a poll summary)"
                                      : " (" + std::to_string(afterMs) + " ms after message line " +
                                            std::to_string(lineCount) + ")";
            std::this_thread::sleep_for(std::chrono::milliseconds(kAfterKillMs));
        }
        collect(round);
    }

    // One clean run moves what is left; a second finds nothing.
    runs.emplace_back();
    const RunResult last = gw.once();
    BOOST_TEST(last.status == 0, last.err);
    collect(rounds);
    runs.emplace_back();
    const RunResult idle = gw.once();
    BOOST_TEST(messageLines(idle.err).empty(), idle.err);
    collect(rounds + 1);

    // The ledger: one row per message, which names its UIDL.
    std::map<std::string, std::string> uidlOf; // Message-ID -> UIDL
    std::map<std::string, int> rowsOf;         // Message-ID -> ledger rows
    int notInjected = 0, notMarkedDeleted = 0;
    std::string odd;
    const std::vector<LedgerRow> ledger = gw.ledger();
    for (const auto& row : ledger) {
        uidlOf[row.messageId] = row.uidl;
        ++rowsOf[row.messageId];
        if (row.state != "injected")
            ++notInjected;
        else if (!row.deleted)
            ++notMarkedDeleted;
        else
            continue;
        odd += "\n  " + row.account + " " + row.uidl + " " + row.messageId + " " + row.state +
               (row.deleted ? " deleted" : " not deleted");
    }
    int rowsNotOne = 0;
    for (const auto& [id, account] : expected)
        if (rowsOf[id] != 1)
            ++rowsNotOne;

    // Every copy: a message of ours, in its account's mailbox, with the
    // X-Popgate-Id of that account and the UIDL its ledger row names (a
    // resend of the same message carries the same id; anything else would
    // be a second fetch under another UIDL, or a forged or broken id).
    const std::string key = gw.headerKey();
    std::map<std::string, std::vector<int>> roundsOf; // Message-ID -> the runs of its copies
    int strangers = 0, wrongMailbox = 0, badIds = 0;
    std::string badIdDetail;
    for (const Copy& c : copies) {
        if (!expected.count(c.messageId)) {
            ++strangers;
            continue;
        }
        roundsOf[c.messageId].push_back(c.round); // copies are in the order of the runs
        if (expected[c.messageId] != c.account)
            ++wrongMailbox;
        PopgateId named;
        if (!verifyPopgateId(key, c.popgateId, named) || named.account != expected[c.messageId] ||
            !uidlOf.count(c.messageId) || named.uidl != uidlOf[c.messageId]) {
            ++badIds;
            badIdDetail += "\n  " + c.messageId + " (uidl " + uidlOf[c.messageId] +
                           "): X-Popgate-Id '" + c.popgateId + "'";
        }
    }

    // Each extra copy is charged to the run that sent the copy before it: that
    // run delivered the message and did not record it, so it must have been
    // killed. (A copy Postfix committed only after settle() counts in the next
    // run: charged to the killed run before, when the next run was not killed.)
    int losses = 0, unexplained = 0, lateCopies = 0;
    std::string unexplainedDetail;
    for (const auto& [id, account] : expected) {
        const auto found = roundsOf.find(id);
        if (found == roundsOf.end()) {
            ++losses;
            continue;
        }
        const std::vector<int>& v = found->second;
        for (std::size_t j = 1; j < v.size(); ++j) {
            int cause = v[j - 1];
            if (!runs[cause].killed && cause > 0 && runs[cause - 1].killed) {
                --cause;
                ++lateCopies;
            }
            if (runs[cause].killed) {
                ++runs[cause].duplicates[account];
            } else {
                ++unexplained;
                unexplainedDetail += "\n  " + id + ": copies in runs";
                for (int r : v)
                    unexplainedDetail += " " + std::to_string(r);
            }
        }
    }

    int kills = 0, maxPerKill = 0, maxPerSession = 0, totalDuplicates = 0, killsWithDuplicates = 0;
    for (std::size_t r = 0; r < runs.size(); ++r) {
        if (!runs[r].killed)
            continue;
        ++kills;
        int n = 0;
        std::string each;
        for (const auto& [account, address] : to) {
            const int d = runs[r].duplicates[account];
            n += d;
            maxPerSession = std::max(maxPerSession, d);
            each += (each.empty() ? "" : ", ") + account + " " + std::to_string(d);
        }
        maxPerKill = std::max(maxPerKill, n);
        totalDuplicates += n;
        if (n > 0)
            ++killsWithDuplicates;
        BOOST_TEST_MESSAGE("kill " << kills << " (round " << r << ", " << runs[r].phase
                                   << "): duplicates " << n << " (" << each << ")");
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
           << countOf(all, "status=delivered") << " delivered log lines in all; " << copies.size()
           << " copies delivered, " << killsWithDuplicates << " kills caused duplicates ("
           << lateCopies << " copies committed by Postfix after "
           << "the next settle), " << unexplained << " duplicates no kill explains, " << badIds
           << " copies with a wrong X-Popgate-Id, unknown messages " << strangers
           << ", in the wrong mailbox " << wrongMailbox << ", spool files left in spool/tmp "
           << spoolLeft;
    BOOST_TEST_MESSAGE(report.str());
    BOOST_TEST_MESSAGE("kills mid-run: "
                       << kills << ", lost: " << losses << ", duplicates per kill: max "
                       << maxPerKill << ", total " << totalDuplicates
                       << " (per kill and SMTP session: max " << maxPerSession << ")");

    BOOST_TEST(killedMidRun >= kMinKills, "at least 30 kills landed while popgated ran");
    BOOST_TEST(killedMidTransfer >= kMinMidTransfer, "kills landed while messages moved");
    BOOST_TEST(losses == 0);
    // popgated commits each MTA outcome before the next message's end of data:
    // a kill leaves at most the one message in flight unrecorded, per SMTP
    // session. The two accounts are polled at the same time (workers = 8), so
    // one kill may catch both sessions with a message in flight: at most one
    // duplicate per account and kill, two per kill.
    BOOST_TEST(maxPerSession <= 1,
               "a kill resends at most the one message in flight of each SMTP session");
    BOOST_TEST(maxPerKill <= static_cast<int>(to.size()),
               "a kill resends at most one message per account being fetched");
    BOOST_TEST(unexplained == 0,
               "every duplicate follows a copy sent by a killed run:" << unexplainedDetail);
    BOOST_TEST(badIds == 0,
               "every copy carries the valid X-Popgate-Id of its account and UIDL:" << badIdDetail);
    BOOST_TEST(strangers == 0);
    BOOST_TEST(wrongMailbox == 0);
    BOOST_TEST(countMessages(s.maildir) == 0);
    BOOST_TEST(countMessages(s.maildir2) == 0);
    BOOST_TEST(rowsNotOne == 0, "one ledger row per message");
    BOOST_TEST(notInjected == 0, "every ledger row ends injected:" << odd);
    // A row whose DELE the server applied before the kill let popgated record
    // it is marked deleted by the next poll (the server no longer lists it);
    // the clean run deletes and marks the rest.
    BOOST_TEST(notMarkedDeleted == 0, "every ledger row ends marked deleted:" << odd);
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
