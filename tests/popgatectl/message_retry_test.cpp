// message_retry_test - `popgatectl message retry` through the real binaries:
// popgated (--once) leaves a message failed (the test Postfix answers 554 at the
// end of DATA) or deferred (451) on the test Dovecot; further polls leave it
// there, undelivered (failed_retry_polls = 0; the deferral's retry time is a
// minute away); after `message retry` (by ID, or --account) the next poll
// delivers it exactly once and deletes it from the server. A message in another
// state is refused (exit 2), and `message release` refuses a failed one.
#define BOOST_TEST_MODULE message_retry
#include "tests/popgated/fetch_support.h"

#include <boost/test/unit_test.hpp>
#include <ctime>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

std::string mid(const std::string& tag)
{
    return "<" + tag + "." + std::to_string(::getpid()) + "@retry.test>";
}

/// ctl - popgatectl with the gateway's config, whatever it exits with.
RunResult ctl(const Gateway& gw, std::vector<std::string> args)
{
    args.insert(args.begin(), "--config=" + gw.configFile());
    return run(binary("popgatectl/popgatectl"), args);
}

/// copies - how many copies of messageId Postfix delivered to address.
int copies(const std::string& address, const std::string& messageId)
{
    settle();
    int n = 0;
    for (const auto& d : delivered(address))
        n += d.first("Message-ID") == messageId;
    return n;
}

/// rowOf - the ledger row of messageId (the test fails when there is none).
LedgerRow rowOf(Gateway& gw, const std::string& messageId)
{
    for (const auto& r : gw.ledger())
        if (r.messageId == messageId)
            return r;
    BOOST_FAIL("no ledger row for " << messageId);
    return {};
}

/// idOf - the row's id, as `message retry` takes it.
std::string idOf(Gateway& gw, const std::string& messageId)
{
    const std::string out =
        gw.sql("SELECT id FROM messages WHERE message_id = '" + messageId + "'");
    return out.substr(0, out.find('\n'));
}

/// held - one message on Dovecot's user2 for account "r", refused by Postfix
/// (deliver-to refusedBy) in one popgated run; returns its Message-ID.
std::string held(Gateway& gw, const Servers& s, const std::string& tag,
                 const std::string& refusedBy)
{
    gw.addDovecotAccount("r", s.user2, refusedBy);
    const std::string id = mid(tag);
    dropMessage(s.maildir2,
                message({"From: sender@example.com", "Message-ID: " + id, "Subject: " + tag},
                        "retry me: " + tag + "\r\n"));
    const RunResult r = gw.once();
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    return id;
}

} // namespace

BOOST_AUTO_TEST_CASE(retry_of_a_failed_message_delivers_it_once)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("retryfailed");
    const std::string id = held(gw, s, "failed", requireEnv("POPGATE_TEST_POSTFIX_FAIL_DATA_5XX"));
    LedgerRow r = rowOf(gw, id);
    BOOST_TEST_REQUIRE(r.state == "failed", r.reason);
    BOOST_TEST(r.reason.find("554") != std::string::npos, r.reason);
    BOOST_TEST(countMessages(s.maildir2) == 1, "a failed message stays on the server");

    // Not retried by itself (failed_retry_polls = 0), not even to a good address.
    gw.ctl({"account", "set", "r", "--deliver-to=" + to});
    RunResult again = gw.once();
    BOOST_TEST(again.status == 0, again.err);
    BOOST_TEST(messageLines(again.err).empty(), again.err);
    BOOST_TEST(rowOf(gw, id).state == "failed");
    BOOST_TEST(countMessages(s.maildir2) == 1);
    BOOST_TEST(copies(to, id) == 0);

    // `message release` is for the quarantine: refused, nothing changes.
    const std::string rowId = idOf(gw, id);
    const RunResult release = ctl(gw, {"message", "release", rowId});
    BOOST_TEST(release.status == 2, release.err);
    BOOST_TEST(
        release.err.find("not in quarantine (state failed; see `popgatectl message retry`)") !=
            std::string::npos,
        release.err);
    BOOST_TEST(rowOf(gw, id).state == "failed");

    const std::string out = gw.ctl({"message", "retry", rowId});
    BOOST_TEST(out == "message " + rowId + " will be fetched again at the next poll\n", out);
    r = rowOf(gw, id);
    BOOST_TEST(r.state == "deferred");
    BOOST_TEST(r.retryAt == 0);

    const RunResult fetched = gw.once();
    BOOST_TEST(fetched.status == 0, fetched.err);
    r = rowOf(gw, id);
    BOOST_TEST(r.state == "injected", fetched.err);
    BOOST_TEST(r.deleted, "deleted from the server after the 250");
    BOOST_TEST(!r.queueId.empty());
    BOOST_TEST(countMessages(s.maildir2) == 0);
    BOOST_TEST(copies(to, id) == 1, "delivered exactly once");
    BOOST_TEST(maillogHas(r.queueId), "the recorded queue id is Postfix's");

    // Nothing more: another poll delivers nothing, and a retry of a delivered
    // message is refused.
    const RunResult idle = gw.once();
    BOOST_TEST(messageLines(idle.err).empty(), idle.err);
    const RunResult refused = ctl(gw, {"message", "retry", rowId});
    BOOST_TEST(refused.status == 2, refused.err);
    BOOST_TEST(refused.err.find("state injected (only failed or deferred messages are retried)") !=
                   std::string::npos,
               refused.err);
    BOOST_TEST(copies(to, id) == 1, "never a second copy");
}

BOOST_AUTO_TEST_CASE(retry_of_a_deferred_message_fetches_it_before_its_retry_time)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("retrydeferred");
    const std::string id =
        held(gw, s, "deferred", requireEnv("POPGATE_TEST_POSTFIX_FAIL_DATA_4XX"));
    LedgerRow r = rowOf(gw, id);
    BOOST_TEST_REQUIRE(r.state == "deferred", r.reason);
    BOOST_TEST(r.reason.find("451") != std::string::npos, r.reason);
    BOOST_TEST(r.retryAt > static_cast<long long>(::time(nullptr)), "a retry time ahead");
    BOOST_TEST(countMessages(s.maildir2) == 1, "a deferred message stays on the server");
    const int attempts = r.attempts;

    // Before its retry time the next poll leaves it alone.
    gw.ctl({"account", "set", "r", "--deliver-to=" + to});
    const RunResult early = gw.once();
    BOOST_TEST(early.status == 0, early.err);
    BOOST_TEST(messageLines(early.err).empty(), early.err);
    r = rowOf(gw, id);
    BOOST_TEST(r.state == "deferred");
    BOOST_TEST(r.attempts == attempts, "not tried again before its time");
    BOOST_TEST(copies(to, id) == 0);

    // --account: every failed or deferred message of the account.
    const std::string out = gw.ctl({"message", "retry", "--account=r"});
    BOOST_TEST(out == "message " + idOf(gw, id) + " will be fetched again at the next poll\n", out);
    BOOST_TEST(rowOf(gw, id).retryAt == 0);

    const RunResult fetched = gw.once();
    BOOST_TEST(fetched.status == 0, fetched.err);
    r = rowOf(gw, id);
    BOOST_TEST(r.state == "injected", fetched.err);
    BOOST_TEST(r.deleted);
    BOOST_TEST(countMessages(s.maildir2) == 0);
    BOOST_TEST(copies(to, id) == 1, "delivered exactly once");
    const RunResult idle = gw.once();
    BOOST_TEST(messageLines(idle.err).empty(), idle.err);
    BOOST_TEST(copies(to, id) == 1, "never a second copy");
}
