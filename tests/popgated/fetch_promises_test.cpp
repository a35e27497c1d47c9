// fetch_promises_test - the fetch path's written promises (ARCHITECTURE.md
// "Never lose, never duplicate", the screen stage, conf/popgate.conf's
// max_hops and duplicate_window), each as a case that fails when the code
// breaks it: Fetcher::poll (plugin/popgated/fetcher.cpp) in-process against
// the stateful fake POP3 server and the SMTP sink of tests/support/, on a
// throwaway SQLite ledger. No root, no servers, no fixed ports, no sleeps:
// faults that must land at a named point are steered by the fetcher's own
// log line (a Poco channel that runs in the poll's thread).
#define BOOST_TEST_MODULE fetch_promises
#include "core/message_store.h"
#include "core/store.h"
#include "plugin/popgated/fetcher.h"
#include "tests/support/fake_mailbox_server.h"
#include "tests/support/smtp_sink.h"
#include "tests/support/testdb.h"
#include "tests/support/testsupport.h"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Data/Session.h>
#include <Poco/File.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/Timestamp.h>
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>

using namespace popgate;
using namespace popgate::test;
using namespace Poco::Data::Keywords;

namespace
{

const char* const kMailbox = "desk@example.com";

/// popgateReceived - a Received: field as popgate writes it (core/message.cpp
/// receivedHeader): "by HOST (popgate)" is what counts as one pass.
std::string popgateReceived(int n)
{
    return "Received: from pop" + std::to_string(n) + ".example.net by gw" + std::to_string(n) +
           ".example.com (popgate) with POP3 id 0123abcd" + std::to_string(n) +
           " (account desk);\r\n\tTue, 02 Dec 2025 10:00:00 +0000\r\n";
}

/// text - message k: its own Subject and Message-ID (or messageId), From
/// `from`, after `extraHeader` (whole lines).
std::string text(int k, const std::string& extraHeader = "",
                 const std::string& from = "", const std::string& messageId = "")
{
    const std::string n = std::to_string(k);
    return extraHeader + "From: " + (from.empty() ? "sender" + n + "@example.org" : from) +
           "\r\nTo: " + kMailbox + "\r\nSubject: promise " + n + "\r\nMessage-ID: " +
           (messageId.empty() ? "<p" + n + ".promises@example.org>" : messageId) +
           "\r\nDate: Tue, 02 Dec 2025 10:00:00 +0000\r\n\r\nBody of message " + n + ".\r\n";
}

/// numberOf - k of "Subject: promise k" in a message, else 0.
int numberOf(const std::string& message)
{
    const auto at = message.find("Subject: promise ");
    return at == std::string::npos ? 0 : std::atoi(message.c_str() + at + 17);
}

/// Hook - the fetcher's log: kept, and each line offered to `onLine` in the
/// poll's own thread (where a test can inject a fault at an exact point).
class Hook : public Poco::Channel
{
public:
    std::function<void(const std::string&)> onLine;
    void log(const Poco::Message& message) override
    {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            text_ += "  " + message.getText() + "\n";
        }
        if (onLine)
            onLine(message.getText());
    }
    std::string text()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return text_;
    }

private:
    std::mutex mutex_;
    std::string text_;
};

/// Rig - one account on the fake server, the sink as its MTA, a SQLite ledger.
struct Rig {
    TempDir dir;
    TestDatabase database{"sqlite"};
    Store store{database.config(), Store::Open::CreateFile};
    MessageStore ledger{store};
    std::vector<FakeMessage> messages;
    std::unique_ptr<FakeMailboxServer> server;
    SmtpSink sink;
    Account account;
    FetchSettings settings;
    Poco::AutoPtr<Hook> hook{new Hook};
    Poco::Logger* log = nullptr;
    std::atomic<bool> stopping{false};
    std::shared_ptr<const CompiledFilter> filter; ///< the account's system filter; none: allow all

    explicit Rig(const std::vector<std::string>& texts, std::int64_t listSize = -1)
    {
        store.migrate();
        for (std::size_t i = 0; i < texts.size(); ++i)
            messages.push_back({wireFor(texts[i]), "uid-" + std::to_string(i + 1), listSize, ""});
        server = std::make_unique<FakeMailboxServer>(messages);

        account.name = "desk";
        account.server = "127.0.0.1";
        account.port = server->port();
        account.security = Security::None;
        account.plaintextAuth = true;
        account.auth = AuthKind::Password;
        account.user = "desk";
        account.sealedSecret = "gcm1:unused-the-test-passes-the-password";
        account.mailbox = kMailbox;
        account.keepOnServer = false;
        store.addAccount(account);

        settings.mta.host = "127.0.0.1";
        settings.mta.port = sink.port();
        settings.mta.helo = "gw.test";
        settings.mta.timeout = std::chrono::milliseconds(5000);
        settings.spoolDir = dir.file("spool");
        Poco::File(settings.spoolDir + "/tmp").createDirectories();
        settings.hostname = "gw.test";
        settings.headerKey = "0123456789abcdef0123456789abcdef";
        settings.connectTimeout = std::chrono::milliseconds(5000);
        settings.readTimeout = std::chrono::milliseconds(5000);

        static std::atomic<int> counter{0};
        log = &Poco::Logger::get("fetch_promises." + std::to_string(++counter));
        log->setChannel(hook);
        log->setLevel(Poco::Message::PRIO_DEBUG);
    }

    PollReport poll()
    {
        Fetcher fetcher(
            store, settings, [this](const Account&) { return filter; }, *log);
        const PollReport r = fetcher.poll(account, "secret", nullptr, stopping);
        BOOST_TEST_REQUIRE(server->awaitIdle(), "the POP3 session is over");
        BOOST_TEST_REQUIRE(sink.awaitIdle(), "the SMTP session is over");
        return r;
    }

    /// accepted - how many times message k was answered 250, all polls.
    int accepted(int k) const
    {
        int n = 0;
        for (const auto& m : sink.accepted())
            n += numberOf(m.text) == k;
        return n;
    }
    /// held - the numbers of the messages the server still holds, "1 3".
    std::string held() const
    {
        std::string out;
        for (const auto& uidl : server->held())
            out += (out.empty() ? "" : " ") + uidl.substr(4);
        return out;
    }
    /// marked - the numbers session s sent DELE for, in order.
    std::string marked(std::size_t s) const
    {
        const auto sessions = server->sessions();
        std::string out;
        if (s < sessions.size())
            for (const auto& uidl : sessions[s].marked)
                out += (out.empty() ? "" : " ") + uidl.substr(4);
        return out;
    }
    std::optional<MessageRecord> row(int k)
    {
        const auto rows = ledger.forAccount(account.id);
        auto it = rows.find("uid-" + std::to_string(k));
        if (it == rows.end())
            return std::nullopt;
        return it->second;
    }
    std::string state(int k)
    {
        const auto r = row(k);
        return r ? messageStateName(r->state) : "(no row)";
    }
    std::string dump()
    {
        std::string pop3;
        for (const auto& s : server->sessions()) {
            pop3 += "  -- session" + std::string(s.quit ? " (QUIT)" : " (dropped)") + "\n";
            for (const auto& c : s.commands)
                pop3 += "  " + c.substr(0, 80) + "\n";
        }
        return "fetcher log:\n" + hook->text() + "POP3:\n" + pop3;
    }
};

std::string fileText(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// ---- loop prevention --------------------------------------------------------------

BOOST_AUTO_TEST_CASE(loop_over_max_hops_is_quarantined_not_delivered)
{
    // max_hops 3: "passed popgate more than this many times is ignored".
    std::string three, four;
    for (int i = 1; i <= 3; ++i)
        three += popgateReceived(i);
    four = three + popgateReceived(4);
    Rig rig({text(1), text(2, four), text(3, three)});
    rig.settings.maxHops = 3;
    const PollReport r = rig.poll();
    BOOST_TEST_INFO(rig.dump());
    BOOST_TEST(r.ok);
    BOOST_TEST(rig.accepted(1) == 1);
    BOOST_TEST(rig.accepted(2) == 0, "a message that passed popgate 4 times is not delivered");
    BOOST_TEST(rig.accepted(3) == 1, "3 passes is within max_hops 3: delivered");
    BOOST_TEST(rig.state(2) == "ignored");
    const auto row = rig.row(2);
    BOOST_TEST_REQUIRE(row.has_value());
    BOOST_TEST(row->reason.find("loop") != std::string::npos, "reason: " << row->reason);
    BOOST_TEST(fileText(row->quarantinePath).find("Subject: promise 2") != std::string::npos,
               "the loop is kept in the quarantine: " << row->quarantinePath);
    BOOST_TEST(rig.held() == "", "ignored and delivered messages are deleted from the server");
    BOOST_TEST(r.ignored == 1);
}

BOOST_AUTO_TEST_CASE(max_hops_is_the_configured_number)
{
    // The same message passes with max_hops 4 and is stopped with max_hops 2.
    std::string three;
    for (int i = 1; i <= 3; ++i)
        three += popgateReceived(i);
    for (int maxHops : {2, 4}) {
        BOOST_TEST_CONTEXT("max_hops " << maxHops)
        {
            Rig rig({text(1, three)});
            rig.settings.maxHops = maxHops;
            rig.poll();
            BOOST_TEST(rig.accepted(1) == (maxHops >= 3 ? 1 : 0), rig.dump());
            BOOST_TEST(rig.state(1) == (maxHops >= 3 ? "injected" : "ignored"));
        }
    }
}

BOOST_AUTO_TEST_CASE(own_mailbox_through_popgate_is_a_loop)
{
    // From the account's own mailbox and already through popgate once: a loop
    // (an auto-reply to itself). The same sender without a popgate pass (the
    // owner writing to themselves) is delivered.
    Rig rig({text(1, popgateReceived(1), kMailbox), text(2, "", kMailbox)});
    const PollReport r = rig.poll();
    BOOST_TEST_INFO(rig.dump());
    BOOST_TEST(r.ok);
    BOOST_TEST(rig.accepted(1) == 0, "own mailbox + a popgate pass: not delivered");
    BOOST_TEST(rig.state(1) == "ignored");
    const auto row = rig.row(1);
    BOOST_TEST((row && row->reason.find("own mailbox") != std::string::npos),
               "reason: " << (row ? row->reason : ""));
    BOOST_TEST(rig.accepted(2) == 1, "own mailbox without a popgate pass: delivered");
    BOOST_TEST(rig.held() == "");
}

// ---- duplicate Message-ID window ------------------------------------------------

BOOST_AUTO_TEST_CASE(duplicate_message_id_in_one_batch)
{
    Rig rig({text(1, "", "", "<same@example.org>"), text(2, "", "", "<same@example.org>"),
             text(3)});
    const PollReport r = rig.poll();
    BOOST_TEST_INFO(rig.dump());
    BOOST_TEST(rig.accepted(1) + rig.accepted(2) == 1, "one copy of <same@example.org>");
    BOOST_TEST(rig.accepted(3) == 1);
    const auto second = rig.row(2);
    BOOST_TEST((second && second->state == MessageState::Ignored &&
                second->reason.find("duplicate") != std::string::npos),
               "the second is ignored as a duplicate: " << rig.state(2));
    BOOST_TEST(rig.held() == "");
    BOOST_TEST(r.ignored == 1);
}

/// seenBefore - a ledger row of another UIDL with `messageId`, created `age` seconds ago.
void seenBefore(Rig& rig, const std::string& messageId, std::int64_t age, MessageState state)
{
    MessageRecord old;
    old.accountId = rig.account.id;
    old.uidl = "earlier-uid";
    old.state = state;
    old.deleted = true;
    old.messageId = messageId;
    old.createdAt = Poco::Timestamp().epochTime() - age;
    rig.ledger.save(old);
}

BOOST_AUTO_TEST_CASE(duplicate_message_id_within_the_window_across_polls)
{
    const std::int64_t day = 86400;
    struct Row {
        const char* label;
        std::int64_t age;
        MessageState state;
        bool allow;
        bool delivered;
    };
    const Row rows[] = {
        {"injected a day ago, window 30d", day, MessageState::Injected, false, false},
        {"ignored a day ago, window 30d", day, MessageState::Ignored, false, false},
        {"injected 31 days ago, window 30d", 31 * day, MessageState::Injected, false, true},
        {"failed a day ago (never delivered)", day, MessageState::Failed, false, true},
        {"injected a day ago, allow_duplicate_message_ids", day, MessageState::Injected, true,
         true},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Rig rig({text(1, "", "", "<seen@example.org>"), text(2)});
            rig.settings.duplicateWindow = 30 * day;
            rig.settings.allowDuplicates = row.allow;
            seenBefore(rig, "<seen@example.org>", row.age, row.state);
            rig.poll();
            BOOST_TEST(rig.accepted(1) == (row.delivered ? 1 : 0), rig.dump());
            BOOST_TEST(rig.state(1) == (row.delivered ? "injected" : "ignored"));
            BOOST_TEST(rig.accepted(2) == 1);
            BOOST_TEST(rig.held() == "", "delivered or ignored: deleted either way");
        }
    }
}

// ---- the MTA dies in the middle of a batch ----------------------------------------

BOOST_AUTO_TEST_CASE(mta_dies_after_some_250s)
{
    // Six messages in one pipelined batch; the MTA hangs up at the 4th end of
    // data. Exactly the three it answered 250 are deleted; the rest stay, and
    // the next poll delivers them; no message is accepted twice.
    std::vector<std::string> texts;
    for (int k = 1; k <= 6; ++k)
        texts.push_back(text(k));
    Rig rig(texts);
    rig.sink.addRule({"", 4, SinkReply::HangUp, 1});

    const PollReport first = rig.poll();
    BOOST_TEST_INFO(rig.dump());
    BOOST_TEST(!first.ok, "the MTA's hang-up is the poll's failure");
    BOOST_TEST(rig.held() == "4 5 6", "exactly the messages answered 250 are gone");
    BOOST_TEST(rig.marked(0) == "1 2 3", "DELE for exactly 1 2 3");
    for (int k = 1; k <= 3; ++k)
        BOOST_TEST(rig.state(k) == "injected", "message " << k);
    BOOST_TEST(rig.state(4) == "injecting", "the uncertain one is still injecting");

    const PollReport second = rig.poll();
    BOOST_TEST(second.ok);
    BOOST_TEST(rig.held() == "");
    BOOST_TEST(rig.marked(1) == "4 5 6");
    for (int k = 1; k <= 6; ++k)
        BOOST_TEST(rig.accepted(k) == 1, "message " << k << " accepted exactly once");
    BOOST_TEST(rig.server->problems() == "");
    BOOST_TEST(rig.sink.problems() == "");
}

// ---- the database goes away during a fetch --------------------------------------

BOOST_AUTO_TEST_CASE(database_unavailable_mid_poll_deletes_nothing)
{
    // LIST announces 700 KiB each: one message per batch. Once message 1 is
    // delivered and recorded, another connection takes the database's write
    // lock (BEGIN EXCLUSIVE): batch 2's record commit fails (busy_timeout).
    // "Database down: the poll stops and deletes nothing."
    Rig rig({text(1), text(2), text(3)}, 700 * 1024);
    std::unique_ptr<Poco::Data::Session> locker;
    rig.hook->onLine = [&](const std::string& line) {
        if (!locker && line.find("status=delivered") != std::string::npos) {
            locker = std::make_unique<Poco::Data::Session>(
                "SQLite", rig.database.config().str("database.path"));
            *locker << "BEGIN EXCLUSIVE", now;
        }
    };
    const PollReport first = rig.poll();
    BOOST_TEST_INFO(rig.dump());
    BOOST_TEST_REQUIRE(bool(locker), "message 1 was delivered before the lock");
    BOOST_TEST(!first.ok);
    BOOST_TEST((first.failure == Failure::Database), "a database failure: " << first.error);
    BOOST_TEST(rig.held() == "1 2 3", "nothing deleted");
    const auto sessions = rig.server->sessions();
    BOOST_TEST_REQUIRE(sessions.size() == 1u);
    BOOST_TEST(!sessions[0].quit, "no QUIT: the server applies no DELE");
    BOOST_TEST(rig.accepted(2) == 0, "message 2 never reached the MTA unrecorded");
    BOOST_TEST(rig.accepted(3) == 0);
    *locker << "ROLLBACK", now;
    locker.reset();
    rig.hook->onLine = nullptr;

    const PollReport second = rig.poll();
    BOOST_TEST(second.ok, second.error);
    BOOST_TEST(rig.held() == "");
    for (int k = 1; k <= 3; ++k)
        BOOST_TEST(rig.accepted(k) == 1, "message " << k << " accepted exactly once");
}

BOOST_AUTO_TEST_CASE(database_fails_between_the_250s_and_their_commit)
{
    // The uncertain window: twenty messages in one pipelined batch; the
    // outcomes are committed in groups of 16. Once the first group is
    // committed (its "delivered" lines), the database is locked: the 250s
    // still to come are only in the delivery journal when the last commit
    // fails. The next poll folds the journal into the ledger: those
    // messages are deleted, never handed to the MTA a second time.
    std::vector<std::string> texts;
    for (int k = 1; k <= 20; ++k)
        texts.push_back(text(k));
    Rig rig(texts);
    std::unique_ptr<Poco::Data::Session> locker;
    rig.hook->onLine = [&](const std::string& line) {
        if (!locker && line.find("status=delivered") != std::string::npos) {
            locker = std::make_unique<Poco::Data::Session>(
                "SQLite", rig.database.config().str("database.path"));
            *locker << "BEGIN EXCLUSIVE", now;
        }
    };
    const PollReport first = rig.poll();
    BOOST_TEST_INFO(rig.dump());
    BOOST_TEST_REQUIRE(bool(locker));
    BOOST_TEST(!first.ok);
    BOOST_TEST((first.failure == Failure::Database), first.error);
    BOOST_TEST(rig.sink.accepted().size() == 20u, "the MTA took all twenty");
    int unrecorded = 0;
    for (int k = 1; k <= 20; ++k)
        unrecorded += rig.state(k) == "injecting";
    BOOST_TEST(unrecorded > 0, "some 250s never reached the ledger (the window was hit)");
    BOOST_TEST(!rig.server->sessions().back().quit, "no QUIT after the database failed");
    *locker << "ROLLBACK", now;
    locker.reset();
    rig.hook->onLine = nullptr;

    const PollReport second = rig.poll();
    BOOST_TEST(second.ok, second.error);
    BOOST_TEST(rig.held() == "");
    BOOST_TEST(second.delivered == 0, "nothing handed over again");
    for (int k = 1; k <= 20; ++k)
        BOOST_TEST(rig.accepted(k) == 1, "message " << k << " accepted exactly once");
    BOOST_TEST(rig.hook->text().find("recorded from the journal") != std::string::npos);
}

// ---- the system address filter on the fetch path ----------------------------------

BOOST_AUTO_TEST_CASE(system_filter_blocks_on_the_fetch_path)
{
    // A deny list for bad.example with one exception. The envelope sender
    // (Return-Path, else From) and every From mailbox are judged.
    Rig rig({text(1, "", "someone@bad.example"), text(2, "", "friend@bad.example"),
             text(3, "Return-Path: <ok@good.example>\r\n", "spoof@bad.example"), text(4)});
    SystemAddressFilter system;
    system.name = "inbound";
    EmailAddressFilter deny;
    deny.name = "bad";
    deny.type = FilterType::Deny;
    deny.domains = {"bad.example"};
    deny.exceptions = {"friend@bad.example"};
    system.addressFilters.push_back(deny);
    rig.filter = std::make_shared<const CompiledFilter>(system);

    const PollReport r = rig.poll();
    BOOST_TEST_INFO(rig.dump());
    BOOST_TEST(r.ok);
    BOOST_TEST(rig.accepted(1) == 0, "a denied sender is not delivered");
    BOOST_TEST(rig.accepted(2) == 1, "the exception is delivered");
    BOOST_TEST(rig.accepted(3) == 0, "a denied From behind an allowed Return-Path");
    BOOST_TEST(rig.accepted(4) == 1);
    for (int k : {1, 3}) {
        const auto row = rig.row(k);
        BOOST_TEST((row && row->state == MessageState::Ignored &&
                    row->reason.find("bad.example") != std::string::npos &&
                    !row->quarantinePath.empty()),
                   "message " << k << " ignored and quarantined: " << rig.state(k) << " "
                              << (row ? row->reason : ""));
    }
    BOOST_TEST(r.ignored == 2);
    BOOST_TEST(rig.held() == "");
}

// ---- the spool cannot be written --------------------------------------------------

BOOST_AUTO_TEST_CASE(spool_failure_stops_the_poll_and_deletes_nothing)
{
    // ARCHITECTURE.md: "Full disk: the spool write fails, the poll stops
    // without QUIT, nothing is deleted." Message 2 is over the 256 KiB a
    // spool keeps in memory, so it needs a file in spool_dir/tmp; tmp is made
    // a regular file, and creating the spool file fails (ENOTDIR), as a full
    // disk would fail the write.
    std::string big;
    for (int i = 0; big.size() < 300 * 1024; ++i)
        big += "filler line " + std::to_string(i) + " of a message over the in-memory spool\r\n";
    Rig rig({text(1), text(2, "", "", "") + big, text(3)});
    const std::string tmp = rig.settings.spoolDir + "/tmp";
    Poco::File(tmp).remove(true);
    std::ofstream(tmp) << "not a directory\n";

    const PollReport first = rig.poll();
    BOOST_TEST_INFO(rig.dump());
    BOOST_TEST(!first.ok);
    BOOST_TEST((first.failure == Failure::Spool), "a spool failure: " << first.error);
    BOOST_TEST(rig.held() == "1 2 3", "nothing deleted");
    BOOST_TEST(!rig.server->sessions().back().quit, "no QUIT");
    BOOST_TEST(rig.sink.received().empty(), "nothing handed to the MTA from a broken batch");

    Poco::File(tmp).remove();
    Poco::File(tmp).createDirectories();
    const PollReport second = rig.poll();
    BOOST_TEST(second.ok, second.error);
    BOOST_TEST(rig.held() == "");
    for (int k = 1; k <= 3; ++k)
        BOOST_TEST(rig.accepted(k) == 1, "message " << k << " accepted exactly once");
}

// ---- a stop request in the middle of a poll -----------------------------------------

BOOST_AUTO_TEST_CASE(stop_mid_poll_loses_nothing_and_sends_nothing_twice)
{
    // SIGTERM sets `stopping` (plugin/popgated/main.cpp); here it is set the
    // moment message 1's delivery is logged, with message 1's batch in
    // flight. The message in flight is finished and deleted, the rest waits
    // for the next poll.
    Rig rig({text(1), text(2), text(3), text(4)}, 700 * 1024);
    rig.hook->onLine = [&](const std::string& line) {
        if (line.find("status=delivered") != std::string::npos)
            rig.stopping = true;
    };
    const PollReport first = rig.poll();
    BOOST_TEST_INFO(rig.dump());
    BOOST_TEST(first.ok, first.error);
    BOOST_TEST(rig.accepted(1) == 1);
    BOOST_TEST(rig.sink.received().size() == 1u, "nothing after the stop reached the MTA");
    BOOST_TEST(rig.held() == "2 3 4", "the delivered message is deleted, the rest kept");
    BOOST_TEST(rig.server->sessions().back().quit, "a clean QUIT");
    BOOST_TEST(rig.hook->text().find("stopping") != std::string::npos);

    rig.hook->onLine = nullptr;
    rig.stopping = false;
    const PollReport second = rig.poll();
    BOOST_TEST(second.ok, second.error);
    BOOST_TEST(rig.held() == "");
    for (int k = 1; k <= 4; ++k)
        BOOST_TEST(rig.accepted(k) == 1, "message " << k << " accepted exactly once");
}

// popgated(8) and plugin/popgated/main.cpp promise for SIGTERM: "Finish the
// message in flight, send QUIT, exit." Twenty small messages make one batch
// whose outcomes are committed in groups of 16; the stop comes with the
// first group's "delivered" lines, when message 17's end of data has not
// been sent (ARCHITECTURE.md: each 250 is read before the next message's
// end of data). The deliver stage asks the stop before each message's
// envelope (SmtpReinjector::deliverMany's stopBefore); the batch used to be
// delivered whole, up to 128 messages or 1 MiB after the signal.
BOOST_AUTO_TEST_CASE(stop_finishes_only_the_message_in_flight)
{
    std::vector<std::string> texts;
    for (int k = 1; k <= 20; ++k)
        texts.push_back(text(k));
    Rig rig(texts);
    std::size_t atStop = 0;
    rig.hook->onLine = [&](const std::string& line) {
        if (!rig.stopping && line.find("status=delivered") != std::string::npos) {
            rig.stopping = true;
            atStop = rig.sink.received().size();
        }
    };
    const PollReport first = rig.poll();
    BOOST_TEST_INFO(rig.dump());
    BOOST_TEST(first.ok, first.error);
    BOOST_TEST(rig.server->sessions().back().quit, "a clean QUIT");
    BOOST_TEST_REQUIRE(atStop > 0u);
    BOOST_TEST(rig.sink.received().size() <= atStop + 1,
               "after the stop, at most the message in flight: " << atStop
                                                                 << " handed over at the stop, "
                                                                 << rig.sink.received().size()
                                                                 << " at the end");
    rig.hook->onLine = nullptr;
    rig.stopping = false;
    const PollReport second = rig.poll();
    BOOST_TEST(second.ok, second.error);
    BOOST_TEST(rig.held() == "");
    for (int k = 1; k <= 20; ++k)
        BOOST_TEST(rig.accepted(k) == 1, "message " << k << " accepted exactly once");
}

} // namespace
