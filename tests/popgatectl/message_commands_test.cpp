// message_commands_test - `popgatectl message release` through the real
// binaries: popgated (--once) quarantines mail from a denied sender out of the
// test Dovecot, popgatectl releases it into the test Postfix. The release keeps
// the ledger states popgated keeps: "injecting" before the MTA sees it,
// "injected" with the queue id after the 250, "ignored" again after a refusal,
// "injecting" left alone when no reply came; a second release refuses.
#define BOOST_TEST_MODULE message_commands
#include "tests/popgated/fetch_support.h"

#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/test/unit_test.hpp>
#include <sstream>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

std::string mid(const std::string& tag)
{
    return "<" + tag + "." + std::to_string(::getpid()) + "@release.test>";
}

/// Held - one message of a denied sender, quarantined by popgated.
struct Held {
    std::string id; ///< the ledger row's id, as `message release` takes it
    std::string messageId;
};

/// Row - what the ledger says of one message (read with sqlite3).
struct Row {
    std::string state, queueId, reason, quarantinePath;
    int attempts = 0;
};

Row row(Gateway& gw, const std::string& id)
{
    std::istringstream in(gw.sql("SELECT state || '|' || queue_id || '|' || attempts || '|' || "
                                 "quarantine_path || '|' || reason FROM messages WHERE id = " +
                                 id));
    Row r;
    std::string attempts;
    std::getline(in, r.state, '|');
    std::getline(in, r.queueId, '|');
    std::getline(in, attempts, '|');
    std::getline(in, r.quarantinePath, '|');
    std::getline(in, r.reason);
    r.attempts = attempts.empty() ? -1 : std::stoi(attempts);
    return r;
}

/// quarantine - an account "held" on Dovecot's user2 delivering to `to`, a
/// filter that denies bad.example, and one message per tag from there, fetched
/// and quarantined by one popgated --once.
std::vector<Held> quarantine(Gateway& gw, const Servers& s, const std::string& to,
                             const std::vector<std::string>& tags)
{
    gw.addDovecotAccount("held", s.user2, to);
    gw.ctl({"filter", "add", "inbound", "--default=yes"});
    gw.ctl({"filter", "address", "add", "spam", "--type=deny", "--domains=bad.example"});
    gw.ctl({"filter", "attach", "inbound", "spam"});
    for (const auto& tag : tags)
        dropMessage(s.maildir2, message({"From: Offers <offers@bad.example>",
                                         "Message-ID: " + mid(tag), "Subject: " + tag},
                                        "held back: " + tag + "\r\n"));
    const RunResult r = gw.once();
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    std::vector<Held> held;
    for (const auto& tag : tags) {
        const std::string id = gw.sql(
            "SELECT id FROM messages WHERE state = 'ignored' AND message_id = '" + mid(tag) + "'");
        BOOST_TEST_REQUIRE(!id.empty(), tag << " is quarantined: " << r.err);
        held.push_back({id.substr(0, id.find('\n')), mid(tag)});
    }
    BOOST_TEST(countMessages(s.maildir2) == 0, "quarantined mail leaves the server");
    return held;
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

/// logStatuses - the message log's rows for uidl-bearing entries of messageId: "status detail".
std::vector<std::pair<std::string, Poco::JSON::Object::Ptr>> logOf(Gateway& gw,
                                                                   const std::string& messageId)
{
    Poco::JSON::Parser parser;
    auto arr =
        parser.parse(gw.ctl({"log", "--account=held", "--json"})).extract<Poco::JSON::Array::Ptr>();
    std::vector<std::pair<std::string, Poco::JSON::Object::Ptr>> out;
    for (std::size_t i = 0; i < arr->size(); ++i) {
        auto o = arr->getObject(i);
        if (o->getValue<std::string>("message_id") == messageId)
            out.emplace_back(o->getValue<std::string>("status"), o);
    }
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(release_delivers_once_and_a_second_release_is_refused)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("release");
    const Held h = quarantine(gw, s, to, {"once"}).front();
    const std::string copy = row(gw, h.id).quarantinePath;
    BOOST_TEST_REQUIRE(Poco::File(copy).exists());
    const std::string popgateId = [&] {
        const std::string text = readFile(copy);
        const auto at = text.find("X-Popgate-Id: ");
        BOOST_TEST_REQUIRE(at != std::string::npos, "the quarantined copy carries its id");
        return text.substr(at + 14, text.find("\r\n", at) - at - 14);
    }();

    const std::string out = gw.ctl({"message", "release", h.id});
    const Row r = row(gw, h.id);
    BOOST_TEST(r.state == "injected");
    BOOST_TEST(!r.queueId.empty());
    BOOST_TEST(out.find("message " + h.id + " released: ") != std::string::npos, out);
    BOOST_TEST(out.find("queued it as " + r.queueId + "\n") != std::string::npos, out);
    BOOST_TEST(r.attempts == 1);
    BOOST_TEST(r.reason == "released from quarantine");
    BOOST_TEST(r.quarantinePath.empty());
    BOOST_TEST(!Poco::File(copy).exists(), "the MTA has it: the quarantined copy goes");
    BOOST_TEST(maillogHas(r.queueId), "the recorded queue id is Postfix's");
    BOOST_TEST(copies(to, h.messageId) == 1);
    for (const auto& d : delivered(to))
        if (d.first("Message-ID") == h.messageId)
            BOOST_TEST(d.first("X-Popgate-Id") == popgateId, "the id it was fetched with");
    bool logged = false;
    for (const auto& [status, o] : logOf(gw, h.messageId))
        if (status == "released")
            logged = o->getValue<std::string>("queue_id") == r.queueId;
    BOOST_TEST(logged, "the message log has the release with its queue id");

    const RunResult again = ctl(gw, {"message", "release", h.id});
    BOOST_TEST(again.status == 2);
    BOOST_TEST(again.err.find("already delivered (MTA queue id " + r.queueId + ")") !=
                   std::string::npos,
               again.err);
    BOOST_TEST(row(gw, h.id).state == "injected");
    BOOST_TEST(copies(to, h.messageId) == 1, "never a second copy");
}

BOOST_AUTO_TEST_CASE(an_earlier_release_of_unknown_outcome_needs_force)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("unknown");
    const Held h = quarantine(gw, s, to, {"unknown"}).front();
    // As a release that died between the MTA's 250 and its record leaves it.
    gw.sql("UPDATE messages SET state = 'injecting', attempts = 1 WHERE id = " + h.id);

    const RunResult refused = ctl(gw, {"message", "release", h.id});
    BOOST_TEST_MESSAGE("refused: " << refused.err);
    BOOST_TEST(refused.status == 2);
    for (const std::string& words : std::vector<std::string>{
             "an earlier release (", ") has an unknown outcome: the MTA may have it already",
             "message-id=" + h.messageId, "account=held uidl=", "X-Popgate-Id: ",
             "popgatectl message release " + h.id + " --force"})
        BOOST_TEST(refused.err.find(words) != std::string::npos, words << " in " << refused.err);
    BOOST_TEST(row(gw, h.id).state == "injecting");
    BOOST_TEST(copies(to, h.messageId) == 0);

    gw.ctl({"message", "release", h.id, "--force"});
    const Row r = row(gw, h.id);
    BOOST_TEST(r.state == "injected");
    BOOST_TEST(r.attempts == 2);
    BOOST_TEST(!r.queueId.empty());
    BOOST_TEST(copies(to, h.messageId) == 1);
}

struct Refusal {
    const char* label;
    std::string address;
    std::string words; ///< Postfix's reply, as the error and the log quote it
};

BOOST_AUTO_TEST_CASE(an_mta_refusal_puts_the_message_back_in_quarantine)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("refused");
    const std::vector<Refusal> rows = {
        {"4xx at RCPT", "fail4@popgate.test", "said: 450 4.7.1"},
        {"5xx at RCPT", "fail5@popgate.test", "said: 550 5.7.1"},
        {"5xx at the end of DATA", "faildata5@popgate.test", "said: 554 5.7.1"},
    };
    const auto held = quarantine(gw, s, to, {"refused0", "refused1", "refused2"});
    for (std::size_t i = 0; i < rows.size(); ++i) {
        BOOST_TEST_CONTEXT(rows[i].label)
        {
            const Held& h = held[i];
            const std::string copy = row(gw, h.id).quarantinePath;
            gw.ctl({"account", "set", "held", "--deliver-to=" + rows[i].address});
            const RunResult r = ctl(gw, {"message", "release", h.id});
            BOOST_TEST_MESSAGE(rows[i].label << ": " << r.err);
            BOOST_TEST(r.status == 1);
            BOOST_TEST(r.err.find("not released (still in quarantine): ") != std::string::npos,
                       r.err);
            BOOST_TEST(r.err.find(rows[i].words) != std::string::npos, r.err);
            const Row after = row(gw, h.id);
            BOOST_TEST(after.state == "ignored");
            BOOST_TEST(after.quarantinePath == copy);
            BOOST_TEST(after.reason.find("release refused: ") == 0u, after.reason);
            BOOST_TEST(after.reason.find(rows[i].words) != std::string::npos, after.reason);
            BOOST_TEST(Poco::File(copy).exists(), "the quarantined copy stays");
            bool logged = false;
            for (const auto& [status, o] : logOf(gw, h.messageId))
                logged = logged || (status == "ignored" && o->getValue<std::string>("detail").find(
                                                               rows[i].words) != std::string::npos);
            BOOST_TEST(logged, "the message log has the MTA's words");
        }
    }
    // A quarantined copy that is gone (quarantine_retention): the row is left as it was.
    {
        const Row before = row(gw, held[1].id);
        Poco::File(before.quarantinePath).remove();
        const RunResult r = ctl(gw, {"message", "release", held[1].id});
        BOOST_TEST(r.status == 1);
        BOOST_TEST(r.err.find("quarantined copy " + before.quarantinePath + " cannot be read") !=
                       std::string::npos,
                   r.err);
        const Row after = row(gw, held[1].id);
        BOOST_TEST(after.state == "ignored");
        BOOST_TEST(after.attempts == before.attempts);
    }
    // Refused is not stuck: with a recipient the MTA takes, it goes out once.
    gw.ctl({"account", "set", "held", "--deliver-to=" + to});
    gw.ctl({"message", "release", held[0].id});
    BOOST_TEST(row(gw, held[0].id).state == "injected");
    BOOST_TEST(row(gw, held[0].id).attempts == 2);
    BOOST_TEST(copies(to, held[0].messageId) == 1);
}

// No reply after the final dot (the test Postfix stalls slow@ for 5 s, the
// release waits 2 s): the row stays "injecting", the operator is told, and
// only --force sends it again. Without a milter Postfix may deliver both
// copies: a duplicate, never a loss.
BOOST_AUTO_TEST_CASE(no_reply_after_the_dot_leaves_it_injecting)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string slow = "slow@popgate.test";
    const Held h = quarantine(gw, s, slow, {"stalled"}).front();
    const std::string copy = row(gw, h.id).quarantinePath;
    gw.set("reinject.timeout", "2s");

    RunResult r = ctl(gw, {"message", "release", h.id});
    BOOST_TEST_MESSAGE("uncertain: " << r.err);
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find(": outcome unknown: ") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("the ledger says injecting") != std::string::npos, r.err);
    Row after = row(gw, h.id);
    BOOST_TEST(after.state == "injecting");
    BOOST_TEST(after.attempts == 1);
    BOOST_TEST(after.quarantinePath == copy);
    BOOST_TEST(Poco::File(copy).exists());
    bool logged = false;
    for (const auto& [status, o] : logOf(gw, h.messageId))
        logged = logged || status == "uncertain";
    BOOST_TEST(logged, "the message log says uncertain");

    r = ctl(gw, {"message", "release", h.id});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(r.err.find("has an unknown outcome") != std::string::npos, r.err);

    gw.set("reinject.timeout", "60s");
    gw.ctl({"message", "release", h.id, "--force"});
    after = row(gw, h.id);
    BOOST_TEST(after.state == "injected");
    BOOST_TEST(after.attempts == 2);
    const int n = copies(slow, h.messageId);
    BOOST_TEST(n >= 1, "never lost");
    BOOST_TEST(n <= 2, "at most the one duplicate a milter would drop");
}

// Issue [H] item 4: a Message-ID from the internet is data, never terminal
// escapes or log fields. popgated logs it escaped (no space, no control byte),
// so its line has one status= and one account= field; `popgatectl log` and
// `message list` show no ESC byte; `log --json` keeps the exact value.
BOOST_AUTO_TEST_CASE(hostile_message_ids_are_escaped_in_logs_and_on_the_terminal)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("escape");
    gw.addDovecotAccount("held", s.user2, to);
    const std::string pid = std::to_string(::getpid());
    const std::string colour = "<esc\x1b[31mRED\x1b[0m\x07." + pid + "@x>";
    const std::string forged = "<m." + pid + "@ok.example> status=delivered account=other";
    const std::string latin1 = "<caf\xe9." + pid + "@x>";
    for (const auto& id : {colour, forged, latin1})
        dropMessage(s.maildir2, message({"From: a@example.com", "Message-ID: " + id,
                                         "Subject: \x1b]0;owned\x07 hi"},
                                        "hi\r\n"));
    const RunResult r = gw.once();
    BOOST_TEST_REQUIRE(r.status == 0, r.err);

    // fields - how many words of line are key=... (a field, as a grepper splits it).
    const auto fields = [](const std::string& line, const std::string& key) {
        std::istringstream words(line);
        std::string word;
        int n = 0;
        while (words >> word)
            n += word.rfind(key + "=", 0) == 0;
        return n;
    };
    const auto noControl = [](const std::string& text) {
        return text.find('\x1b') == std::string::npos && text.find('\x07') == std::string::npos &&
               text.find('\xe9') == std::string::npos;
    };
    BOOST_TEST(noControl(r.err), "no ESC, BEL or invalid UTF-8 in popgated's log");
    const auto lines = messageLines(r.err);
    BOOST_TEST_REQUIRE(lines.size() == 3u, r.err);
    for (const auto& l : lines) {
        BOOST_TEST(fields(l.text, "status") == 1, l.text);
        BOOST_TEST(fields(l.text, "account") == 1, l.text);
        BOOST_TEST(l.get("account") == "held", l.text);
        BOOST_TEST(l.get("status") == "delivered", l.text);
    }
    BOOST_TEST(r.err.find(" message-id=<esc\\x1b[31mRED\\x1b[0m\\x07." + pid + "@x> ") !=
                   std::string::npos,
               r.err);
    BOOST_TEST(r.err.find(" message-id=<m." + pid +
                          "@ok.example>\\x20status=delivered\\x20account=other ") !=
                   std::string::npos,
               r.err);
    BOOST_TEST(r.err.find(" message-id=<caf\\xe9." + pid + "@x> ") != std::string::npos, r.err);

    const std::string log = gw.ctl({"log", "--account=held"});
    BOOST_TEST(noControl(log), log);
    int rows = 0;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
        if (line.find(" uidl=") == std::string::npos)
            continue;
        ++rows;
        BOOST_TEST(fields(line, "status") == 1, line);
        BOOST_TEST(fields(line, "account") == 1, line);
    }
    BOOST_TEST(rows == 3, log);
    const std::string list = gw.ctl({"message", "list", "--account=held"});
    BOOST_TEST(noControl(list), list);
    BOOST_TEST(list.find("<esc\\x1b[31mRED") != std::string::npos, list);

    // JSON: control characters as \u00XX and the exact value back after parsing;
    // a byte that is not UTF-8 has no JSON form and reads as U+FFFD.
    const std::string json = gw.ctl({"log", "--account=held", "--json"});
    BOOST_TEST(noControl(json), json);
    BOOST_TEST(logOf(gw, colour).size() == 1u, "--json keeps the exact Message-ID: " << json);
    BOOST_TEST(logOf(gw, forged).size() == 1u, json);
    BOOST_TEST(logOf(gw, "<caf\xef\xbf\xbd." + pid + "@x>").size() == 1u, json);
}
