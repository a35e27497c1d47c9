// fetch_pop3_faults_test - popgated against POP3 servers that misbehave in ways
// Dovecot will not (the scripted fake of tests/support/fake_pop3_server.h, one
// connection per poll), reinjecting into the real test Postfix: a connection
// dropped in the middle of RETR, -ERR to DELE, -ERR to QUIT, and a server that
// lists again a message it was told to delete. Nothing may be delivered twice
// and nothing deleted that was not handed over. Each script is byte-exact, so
// a RETR of a message already handed over fails the script.
#define BOOST_TEST_MODULE fetch_pop3_faults
#include "tests/popgated/fetch_support.h"
#include "tests/support/fake_pop3_server.h"

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;
using Steps = std::vector<Step>;

namespace
{

Steps operator+(Steps a, const Steps& b)
{
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

std::string mid(const std::string& tag)
{
    return "<" + tag + "." + std::to_string(::getpid()) + "@pop3faults.test>";
}

std::string sample(const std::string& tag)
{
    return message({"From: sender@example.com", "Message-ID: " + mid(tag), "Subject: " + tag},
                   "body of " + tag + "\r\nsecond line\r\n");
}

struct Listed {
    std::string uid;
    std::string bytes;
};

/// session - greeting, CAPA, USER/PASS, then UIDL and LIST of these messages
/// (no LIST when there are none: an empty mailbox's poll skips it).
Steps session(const std::vector<Listed>& messages)
{
    std::string uidl = "+OK\r\n", list = "+OK\r\n";
    for (std::size_t i = 0; i < messages.size(); ++i) {
        uidl += std::to_string(i + 1) + " " + messages[i].uid + "\r\n";
        list += std::to_string(i + 1) + " " + std::to_string(messages[i].bytes.size()) + "\r\n";
    }
    const Steps login{send("+OK fake POP3 ready\r\n"),
                      expect("CAPA"),
                      send("+OK\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n"),
                      expect("USER u"),
                      send("+OK\r\n"),
                      expect("PASS p"),
                      send("+OK logged in\r\n"),
                      expect("UIDL"),
                      send(uidl + ".\r\n")};
    return messages.empty() ? login : login + Steps{expect("LIST"), send(list + ".\r\n")};
}

Steps retr(int number, const std::string& bytes)
{
    return {expect("RETR " + std::to_string(number)), send("+OK\r\n" + bytes + ".\r\n")};
}

Steps ok(const std::string& command)
{
    return {expect(command), send("+OK\r\n")};
}

/// Poll - one popgated run against a fresh fake server playing script.
struct Poll {
    RunResult result;
    std::string problems;
    std::vector<std::string> received;
};

Poll poll(Gateway& gw, const std::string& account, const Steps& script)
{
    FakePop3Server server(script);
    gw.ctl({"account", "set", account, "--port=" + std::to_string(server.port())});
    Poll p;
    p.result = gw.once();
    p.problems = server.finish();
    p.received = server.received();
    return p;
}

bool sent(const Poll& p, const std::string& prefix)
{
    return std::any_of(p.received.begin(), p.received.end(),
                       [&](const std::string& l) { return l.rfind(prefix, 0) == 0; });
}

int copiesOf(const std::string& to, const std::string& messageId)
{
    int n = 0;
    for (const auto& d : delivered(to))
        n += d.first("Message-ID") == messageId;
    return n;
}

struct Fixture {
    Servers servers;
    Gateway gw{servers};
    std::string to = uniqueAddress("pop3fault");
    Fixture() { gw.addFakeAccount("fake", 1, to); }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(drop_mid_retr_delivers_nothing_twice_and_deletes_nothing, Fixture)
{
    const Listed a{"uid-a", sample("drop-a")}, b{"uid-b", sample("drop-b")};
    // The connection breaks after half of message 2.
    Poll p =
        poll(gw, "fake",
             session({a, b}) + retr(1, a.bytes) +
                 Steps{expect("RETR 2"), send("+OK\r\n" + b.bytes.substr(0, b.bytes.size() / 2))});
    BOOST_TEST(p.problems == "");
    BOOST_TEST(p.result.status == 1, "a broken session is a failed poll: " << p.result.err);
    BOOST_TEST(p.result.err.find("account=fake server=127.0.0.1 poll failed (pop3-") !=
                   std::string::npos,
               p.result.err);
    BOOST_TEST(p.result.err.find("RETR 2") != std::string::npos, "names the command");
    BOOST_TEST(!sent(p, "DELE"), "no DELE in a broken session");
    BOOST_TEST(!sent(p, "QUIT"), "no QUIT: the server must apply no DELE");
    for (const auto& row : gw.ledger()) {
        BOOST_TEST(!row.deleted);
        if (row.uidl == "uid-b")
            BOOST_TEST(row.state != "injected", "half a message was handed over");
    }

    // Next poll: message 1 is not fetched again but deleted; message 2 goes now.
    p = poll(gw, "fake",
             session({a, b}) + retr(2, b.bytes) + ok("DELE 1") + ok("DELE 2") + ok("QUIT"));
    BOOST_TEST(p.problems == "", "the second poll ran as scripted (no second RETR 1)");
    BOOST_TEST(p.result.status == 0, p.result.err);
    settle();
    BOOST_TEST(copiesOf(to, mid("drop-a")) == 1);
    BOOST_TEST(copiesOf(to, mid("drop-b")) == 1);
    BOOST_TEST(deliveredCount(to) == 2);
    for (const auto& row : gw.ledger()) {
        BOOST_TEST(row.state == "injected");
        BOOST_TEST(row.deleted);
    }
}

BOOST_FIXTURE_TEST_CASE(err_on_dele_delivers_once_keeps_and_does_not_redeliver, Fixture)
{
    const Listed c{"uid-c", sample("dele-c")};
    Poll p = poll(gw, "fake",
                  session({c}) + retr(1, c.bytes) +
                      Steps{expect("DELE 1"), send("-ERR [SYS/TEMP] cannot delete now\r\n")} +
                      ok("QUIT"));
    BOOST_TEST(p.problems == "");
    BOOST_TEST(p.result.status == 0, p.result.err);
    const auto lines = messageLines(p.result.err);
    BOOST_TEST_REQUIRE(lines.size() == 1u);
    BOOST_TEST(lines[0].get("status") == "delivered");
    BOOST_TEST(p.result.err.find("uidl=uid-c DELE 1 refused: -ERR [SYS/TEMP] cannot delete now") !=
                   std::string::npos,
               p.result.err);
    auto ledger = gw.ledger();
    BOOST_TEST_REQUIRE(ledger.size() == 1u);
    BOOST_TEST(ledger[0].state == "injected");
    BOOST_TEST(!ledger[0].deleted, "the server kept it");

    // Still listed: deleted now, not delivered again.
    p = poll(gw, "fake", session({c}) + ok("DELE 1") + ok("QUIT"));
    BOOST_TEST(p.problems == "", "no RETR of a message handed over");
    BOOST_TEST(p.result.status == 0, p.result.err);
    BOOST_TEST(messageLines(p.result.err).empty());
    BOOST_TEST(gw.ledger()[0].deleted);
    settle();
    BOOST_TEST(copiesOf(to, mid("dele-c")) == 1);
}

BOOST_FIXTURE_TEST_CASE(server_relisting_a_deleted_message_does_not_get_it_again, Fixture)
{
    const Listed d{"uid-d", sample("relist-d")}, e{"uid-e", sample("relist-e")};
    Poll p = poll(gw, "fake", session({d}) + retr(1, d.bytes) + ok("DELE 1") + ok("QUIT"));
    BOOST_TEST(p.problems == "");
    BOOST_TEST(p.result.status == 0, p.result.err);
    BOOST_TEST_REQUIRE(gw.ledger().size() == 1u);
    BOOST_TEST(gw.ledger()[0].deleted);

    // The server "forgot" the DELE and lists it again, now as message 2.
    p = poll(gw, "fake",
             session({e, d}) + retr(1, e.bytes) + ok("DELE 1") + ok("DELE 2") + ok("QUIT"));
    BOOST_TEST(p.problems == "", "no RETR 2");
    BOOST_TEST(p.result.status == 0, p.result.err);
    BOOST_TEST(p.result.err.find("uidl=uid-d server lists a message that was deleted already") !=
                   std::string::npos,
               p.result.err);
    const auto lines = messageLines(p.result.err);
    BOOST_TEST_REQUIRE(lines.size() == 1u, p.result.err);
    BOOST_TEST(lines[0].get("uidl") == "uid-e");
    settle();
    BOOST_TEST(copiesOf(to, mid("relist-d")) == 1);
    BOOST_TEST(copiesOf(to, mid("relist-e")) == 1);
}

BOOST_FIXTURE_TEST_CASE(err_on_quit_marks_nothing_deleted_and_nothing_is_redelivered, Fixture)
{
    const Listed f{"uid-f", sample("quit-f")};
    Poll p = poll(gw, "fake",
                  session({f}) + retr(1, f.bytes) + ok("DELE 1") +
                      Steps{expect("QUIT"), send("-ERR [SYS/TEMP] could not expunge\r\n")});
    BOOST_TEST(p.problems == "");
    const auto ledger = gw.ledger();
    BOOST_TEST_REQUIRE(ledger.size() == 1u);
    BOOST_TEST(ledger[0].state == "injected");
    BOOST_TEST(!ledger[0].deleted, "QUIT refused: the DELE did not take effect");
    BOOST_TEST(p.result.err.find("could not expunge") != std::string::npos,
               "the server's words are logged");

    p = poll(gw, "fake", session({f}) + ok("DELE 1") + ok("QUIT"));
    BOOST_TEST(p.problems == "");
    BOOST_TEST(p.result.status == 0, p.result.err);
    BOOST_TEST(gw.ledger()[0].deleted);
    settle();
    BOOST_TEST(copiesOf(to, mid("quit-f")) == 1);
}

// The ledger hears of a deletion only when the run that sent QUIT lives to
// record it; after a crash between the server's +OK to QUIT and markDeleted,
// the next listing (which no longer has the message) corrects the row, so that
// MessageStore::forget can prune it. Simulated here by clearing the flag.
BOOST_FIXTURE_TEST_CASE(a_deletion_the_ledger_missed_is_learned_from_the_next_listing, Fixture)
{
    const Listed g{"uid-g", sample("missed-g")};
    Poll p = poll(gw, "fake", session({g}) + retr(1, g.bytes) + ok("DELE 1") + ok("QUIT"));
    BOOST_TEST(p.problems == "");
    gw.sql("UPDATE messages SET deleted = 0");

    p = poll(gw, "fake", session({}) + ok("QUIT"));
    BOOST_TEST(p.problems == "");
    BOOST_TEST(p.result.status == 0, p.result.err);
    const auto ledger = gw.ledger();
    BOOST_TEST_REQUIRE(ledger.size() == 1u);
    BOOST_TEST(ledger[0].deleted, "the server no longer lists it: it is gone");
}
