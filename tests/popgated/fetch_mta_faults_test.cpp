// fetch_mta_faults_test - popgated against a misbehaving local MTA (the fault
// addresses of scripts/servers/postfix.sh): a 4xx at RCPT or at the end of DATA
// defers the message (kept on the server, retried later, then delivered once);
// a 5xx marks it failed (kept, never fetched again by later polls); an MTA that
// is down ends the poll with an error and deletes nothing; a slow MTA is waited
// for. What each outcome means comes from core/policy.cpp.
#define BOOST_TEST_MODULE fetch_mta_faults
#include "tests/popgated/fetch_support.h"

#include <Poco/File.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <set>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

std::string mid(const std::string& tag)
{
    return "<" + tag + "." + std::to_string(::getpid()) + "@faults.test>";
}

std::string sample(const std::string& tag)
{
    return message({"From: sender@example.com", "Message-ID: " + mid(tag), "Subject: " + tag},
                   "body of " + tag + "\r\n");
}

/// closedPort - a loopback port nobody listens on (bound, then released).
int closedPort()
{
    Poco::Net::ServerSocket s(Poco::Net::SocketAddress("127.0.0.1", 0));
    const int port = s.address().port();
    s.close();
    return port;
}

/// traceSince - the debug trace of an account from offset on.
std::string traceSince(const Gateway& gw, const std::string& account, std::size_t offset)
{
    const std::string all = readFile(gw.file("debug/" + account + ".log"));
    return offset < all.size() ? all.substr(offset) : std::string();
}

struct FaultRow {
    const char* label;
    std::string address;
    std::string command; ///< as the log quotes it: "in reply to ..."
    std::string words;   ///< the start of Postfix's reply
};

const FaultRow kRcpt4 = {"4xx at RCPT", "fail4@popgate.test", "RCPT TO:<fail4@popgate.test>",
                         "450 4.7.1"};
const FaultRow kData4 = {"4xx at the end of DATA", "faildata4@popgate.test", "end of DATA",
                         "451 4.3.0"};
const FaultRow kRcpt5 = {"5xx at RCPT", "fail5@popgate.test", "RCPT TO:<fail5@popgate.test>",
                         "550 5.7.1"};
const FaultRow kData5 = {"5xx at the end of DATA", "faildata5@popgate.test", "end of DATA",
                         "554 5.7.1"};

/// deferredThenDelivered - `count` messages meet a temporary refusal: each is
/// deferred with the MTA's words and kept; a poll before the retry time leaves
/// them alone; with a good recipient and the retry due each is delivered once.
void deferredThenDelivered(const FaultRow& row, int count)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    gw.addDovecotAccount("soft", s.user2, row.address);
    for (int i = 0; i < count; ++i)
        dropMessage(s.maildir2, sample("soft" + std::to_string(i)));
    const std::time_t before = std::time(nullptr);

    RunResult r = gw.once();
    BOOST_TEST(r.status == 0, "a refused message is not a failed poll: " << r.err);
    auto lines = messageLines(r.err);
    BOOST_TEST_REQUIRE(lines.size() == static_cast<std::size_t>(count), r.err);
    for (const auto& l : lines) {
        BOOST_TEST(l.get("status") == "deferred", l.text);
        BOOST_TEST(l.text.find("said: " + row.words) != std::string::npos, l.text);
        BOOST_TEST(l.text.find("(in reply to " + row.command + ")") != std::string::npos, l.text);
    }
    for (const auto& m : gw.ledger()) {
        BOOST_TEST(m.state == "deferred");
        BOOST_TEST(!m.deleted);
        BOOST_TEST(m.attempts == 1);
        BOOST_TEST(m.retryAt >= before + 60, "retried after a delay");
        BOOST_TEST(m.reason.find(row.words) != std::string::npos, m.reason);
    }
    BOOST_TEST(countMessages(s.maildir2) == count, "kept on the server");

    // Not due yet: the next poll leaves them alone.
    r = gw.once();
    BOOST_TEST(r.status == 0);
    BOOST_TEST(messageLines(r.err).empty(), r.err);
    BOOST_TEST(countMessages(s.maildir2) == count);

    // The MTA takes mail again (a good recipient) and the retry is due.
    const std::string to = uniqueAddress("recovered");
    gw.ctl({"account", "set", "soft", "--deliver-to=" + to});
    gw.sql("UPDATE messages SET retry_at = 0");
    r = gw.once();
    BOOST_TEST(r.status == 0, r.err);
    lines = messageLines(r.err);
    BOOST_TEST(lines.size() == static_cast<std::size_t>(count), r.err);
    for (const auto& l : lines)
        BOOST_TEST(l.get("status") == "delivered", l.text);
    settle();
    std::set<std::string> ids;
    for (const auto& c : delivered(to))
        ids.insert(c.first("Message-ID"));
    BOOST_TEST(deliveredCount(to) == count);
    BOOST_TEST(ids.size() == static_cast<std::size_t>(count), "each once");
    for (const auto& m : gw.ledger()) {
        BOOST_TEST(m.state == "injected");
        BOOST_TEST(m.deleted);
        BOOST_TEST(m.attempts == 2);
    }
    BOOST_TEST(countMessages(s.maildir2) == 0);

    // And never again.
    r = gw.once();
    BOOST_TEST(messageLines(r.err).empty(), r.err);
    settle();
    BOOST_TEST(deliveredCount(to) == count);
}

/// failedNotRefetched - `count` messages meet a permanent refusal: each is
/// marked failed with the MTA's words and kept; later polls (even with a good
/// recipient) neither RETR nor log them (the protocol trace shows the session).
void failedNotRefetched(const FaultRow& row, int count)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    gw.addDovecotAccount("hard", s.user2, row.address, {"--debug-logging=yes"});
    for (int i = 0; i < count; ++i)
        dropMessage(s.maildir2, sample("hard" + std::to_string(i)));

    RunResult r = gw.once();
    BOOST_TEST(r.status == 0, r.err);
    auto lines = messageLines(r.err);
    BOOST_TEST_REQUIRE(lines.size() == static_cast<std::size_t>(count), r.err);
    for (const auto& l : lines) {
        BOOST_TEST(l.get("status") == "failed", l.text);
        BOOST_TEST(l.text.find("said: " + row.words) != std::string::npos, l.text);
        BOOST_TEST(l.text.find("(in reply to " + row.command + ")") != std::string::npos, l.text);
    }
    const auto ledger = gw.ledger();
    BOOST_TEST_REQUIRE(ledger.size() == static_cast<std::size_t>(count));
    for (const auto& m : ledger) {
        BOOST_TEST(m.state == "failed");
        BOOST_TEST(!m.deleted);
        BOOST_TEST(m.reason.find(row.words) != std::string::npos,
                   "the MTA's words are kept: " << m.reason);
    }
    BOOST_TEST(countMessages(s.maildir2) == count, "kept on the server");

    // Later polls neither fetch them nor log them, even with the MTA happy again.
    gw.ctl({"account", "set", "hard", "--deliver-to=" + uniqueAddress("afterfail")});
    for (int poll = 0; poll < 2; ++poll) {
        const std::size_t offset = readFile(gw.file("debug/hard.log")).size();
        r = gw.once();
        BOOST_TEST(r.status == 0);
        BOOST_TEST(messageLines(r.err).empty(), r.err);
        const std::string trace = traceSince(gw, "hard", offset);
        BOOST_TEST(trace.find("C: UIDL") != std::string::npos, "the poll ran: " << trace);
        BOOST_TEST(trace.find("C: RETR") == std::string::npos, "fetched again: " << trace);
        BOOST_TEST(trace.find("C: DELE") == std::string::npos, trace);
    }
    for (const auto& m : gw.ledger())
        BOOST_TEST(m.state == "failed");
    BOOST_TEST(countMessages(s.maildir2) == count);
}

} // namespace

BOOST_AUTO_TEST_CASE(rcpt_4xx_defers_then_delivers_once)
{
    deferredThenDelivered(kRcpt4, 2);
}

BOOST_AUTO_TEST_CASE(end_of_data_4xx_defers_then_delivers_once)
{
    deferredThenDelivered(kData4, 1);
}

BOOST_AUTO_TEST_CASE(rcpt_5xx_fails_and_is_not_fetched_again)
{
    failedNotRefetched(kRcpt5, 2);
}

BOOST_AUTO_TEST_CASE(end_of_data_5xx_fails_and_is_not_fetched_again)
{
    failedNotRefetched(kData5, 1);
}

// Postfix 3.7 keeps the transaction open after an end-of-data restriction (or
// milter) refusal: without the RSET SmtpReinjector::deliver sends then, the
// next message's MAIL FROM would get "503 5.5.1 nested MAIL command" and be
// marked failed for good.
BOOST_AUTO_TEST_CASE(end_of_data_4xx_does_not_spoil_the_next_message_in_the_session)
{
    deferredThenDelivered(kData4, 3);
}

BOOST_AUTO_TEST_CASE(end_of_data_5xx_does_not_spoil_the_next_message_in_the_session)
{
    failedNotRefetched(kData5, 3);
}

BOOST_AUTO_TEST_CASE(mta_down_deletes_nothing_and_logs_the_poll_error)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const int down = closedPort();
    gw.set("reinject.port", std::to_string(down));
    const std::string to = uniqueAddress("mtadown");
    gw.addDovecotAccount("down", s.user2, to);
    dropMessage(s.maildir2, sample("down1"));
    dropMessage(s.maildir2, sample("down2"));

    RunResult r = gw.once();
    BOOST_TEST(r.status == 1, "a poll that could not hand over is a failed poll: " << r.err);
    BOOST_TEST(r.err.find("account=down server=127.0.0.1 poll failed (mta-unreachable") !=
                   std::string::npos,
               r.err);
    BOOST_TEST(r.err.find("127.0.0.1[" + std::to_string(down) + "]") != std::string::npos,
               "names the relay");
    for (const auto& l : messageLines(r.err))
        BOOST_TEST(l.get("status") != "delivered", l.text);
    for (const auto& m : gw.ledger()) {
        BOOST_TEST(m.state != "injected");
        BOOST_TEST(!m.deleted);
    }
    BOOST_TEST(countMessages(s.maildir2) == 2, "nothing deleted");

    // The MTA is back: both go, once.
    gw.set("reinject.port", std::to_string(s.reinjectPort));
    gw.sql("UPDATE messages SET retry_at = 0");
    r = gw.once();
    BOOST_TEST(r.status == 0, r.err);
    settle();
    const auto copies = delivered(to);
    BOOST_TEST(copies.size() == 2u);
    BOOST_TEST(countMessages(s.maildir2) == 0);
    r = gw.once();
    BOOST_TEST(messageLines(r.err).empty());
    settle();
    BOOST_TEST(deliveredCount(to) == 2);
}

// A slow MTA (the test Postfix stalls POPGATE_TEST_POSTFIX_SLOW_SECONDS, 5 s,
// before its reply to the end of DATA) is waited for within reinject.timeout.
BOOST_AUTO_TEST_CASE(slow_mta_is_waited_for_and_delivers_once)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string slow = "slow@popgate.test";
    gw.addDovecotAccount("slowpoke", s.user2, slow);
    dropMessage(s.maildir2, sample("slow1"));
    const auto start = std::chrono::steady_clock::now();
    const RunResult r = gw.once();
    const auto took = std::chrono::steady_clock::now() - start;
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(took).count() >= 4,
               "Postfix stalled");
    const auto lines = messageLines(r.err);
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0].get("status") == "delivered");
    settle();
    int copies = 0;
    for (const auto& d : delivered(slow))
        copies += d.first("Message-ID") == mid("slow1");
    BOOST_TEST(copies == 1);
    BOOST_TEST(countMessages(s.maildir2) == 0);
}

// An MTA that does not answer the end of DATA within reinject.timeout leaves
// the outcome uncertain: the ledger row stays "injecting", nothing is deleted,
// and the next poll sends the message again (with the same X-Popgate-Id, so a
// milter can drop the second copy; without one, Postfix delivers both: popgate
// errs toward a duplicate, never a loss).
BOOST_AUTO_TEST_CASE(mta_timeout_after_the_dot_is_uncertain_and_resent)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    gw.set("reinject.timeout", "2s");
    const std::string slow = "slow@popgate.test";
    gw.addDovecotAccount("timeout", s.user2, slow);
    dropMessage(s.maildir2, sample("timeout1"));
    RunResult r = gw.once();
    BOOST_TEST(r.status == 1, "the poll ends with an error: " << r.err);
    auto lines = messageLines(r.err);
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0].get("status") == "uncertain");
    auto rows = gw.ledger("timeout");
    BOOST_TEST_REQUIRE(rows.size() == 1u);
    BOOST_TEST(rows[0].state == "injecting");
    BOOST_TEST(!rows[0].deleted);
    BOOST_TEST(countMessages(s.maildir2) == 1, "nothing deleted while the outcome is unknown");

    gw.set("reinject.timeout", "60s");
    r = gw.once();
    BOOST_TEST(r.status == 0, r.err);
    lines = messageLines(r.err);
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0].get("status") == "delivered");
    BOOST_TEST(countMessages(s.maildir2) == 0);
    settle();
    int copies = 0;
    for (const auto& d : delivered(slow))
        copies += d.first("Message-ID") == mid("timeout1");
    BOOST_TEST(copies >= 1, "never lost");
    BOOST_TEST(copies <= 2, "at most the one duplicate the milter would drop");
}
