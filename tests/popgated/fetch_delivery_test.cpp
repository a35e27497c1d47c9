// fetch_delivery_test - popgated end to end on the happy path: real Dovecot in,
// real Postfix out. Every message arrives once, its body byte for byte, with
// popgate's Received line and an X-Popgate-Id that verifies under the header
// key (a forged one from outside is gone); the POP3 mailbox ends empty, or is
// kept with keep-on-server and never delivered twice; several accounts in one
// run; ignored senders go to the quarantine. Log lines are checked against the
// ledger and Postfix's own log.
#define BOOST_TEST_MODULE fetch_delivery
#include "core/message.h"
#include "tests/popgated/fetch_support.h"

#include <Poco/DateTime.h>
#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeParser.h>
#include <Poco/DigestEngine.h>
#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <Poco/SHA2Engine.h>
#include <Poco/String.h>
#include <Poco/Timestamp.h>
#include <boost/test/unit_test.hpp>
#include <map>
#include <regex>
#include <set>
#include <tuple>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

struct Sample {
    const char* label;
    std::string bytes;
};

std::string mid(const std::string& tag)
{
    return "<" + tag + "." + std::to_string(::getpid()) + "@fetch.test>";
}

std::vector<Sample> samples()
{
    return {
        {"plain", message({"From: Alice <alice@example.com>", "To: desk@example.com",
                           "Subject: plain", "Message-ID: " + mid("plain")},
                          "Hello desk,\r\nthe printer is on fire.\r\n")},
        {"forged X-Popgate headers",
         message({"From: mallory@example.com", "Message-ID: " + mid("forged"),
                  "X-Popgate-Id: v1 a=desk u=AAAA m=00000000000000000000000000000000",
                  "X-Popgate-Trust: yes,", "\tfolded continuation", "Subject: forged"},
                 "trust me\r\n")},
        {"lines starting with dots",
         message({"From: bob@example.com", "Message-ID: " + mid("dots"), "Subject: dots"},
                 ".leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n")},
        {"folded headers, empty body",
         message({"From: carol@example.com", "Message-ID: " + mid("folded"),
                  "Subject: a subject that is folded", " onto a second line", "References: <a@x>",
                  "\t<b@x>"},
                 "")},
        {"Return-Path names the envelope sender",
         message({"Return-Path: <bounces@lists.example.org>", "From: list@example.org",
                  "Message-ID: " + mid("returnpath"), "Subject: list mail"},
                 "via a list\r\n")},
        {"MIME multipart",
         message({"From: dave@example.com", "Message-ID: " + mid("mime"), "MIME-Version: 1.0",
                  "Content-Type: multipart/mixed; boundary=\"XX\""},
                 "--XX\r\nContent-Type: text/plain\r\n\r\npart one\r\n--XX\r\n"
                 "Content-Type: application/octet-stream\r\n"
                 "Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgc=\r\n--XX--\r\n")},
    };
}

std::string sha16(const std::string& text)
{
    Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
    sha.update(text);
    return Poco::DigestEngine::digestToHex(sha.digest()).substr(0, 16);
}

std::string messageIdOf(const std::string& bytes)
{
    std::smatch m;
    static const std::regex re("Message-ID: (<[^>]+>)");
    return std::regex_search(bytes, m, re) ? m[1].str() : std::string();
}

/// checkPopgateHeaders - popgate's Received and X-Popgate-Id on a delivered copy.
void checkPopgateHeaders(const Delivered& d, const std::string& key, const std::string& account,
                         const std::string& uidl, const std::string& recipient)
{
    const auto ids = d.all("X-Popgate-Id");
    BOOST_TEST_REQUIRE(ids.size() == 1u, "exactly one X-Popgate-Id (the forged one removed)");
    BOOST_TEST(std::regex_match(ids[0],
                                std::regex("v1 a=[A-Za-z0-9._-]+ u=[A-Za-z0-9_-]+ m=[0-9a-f]{32}")),
               ids[0]);
    PopgateId id;
    BOOST_TEST(verifyPopgateId(key, ids[0], id),
               "X-Popgate-Id verifies under header_key_file: " << ids[0]);
    BOOST_TEST(id.account == account);
    BOOST_TEST(id.uidl == uidl);
    for (const auto& f : d.fields)
        if (Poco::icompare(f.first.substr(0, 10), "X-Popgate-") == 0)
            BOOST_TEST(Poco::icompare(f.first, "X-Popgate-Id") == 0,
                       "foreign header left: " << f.first);

    int ours = 0;
    for (const auto& r : d.all("Received")) {
        if (r.find("(popgate)") == std::string::npos)
            continue;
        ++ours;
        BOOST_TEST(r.find("from 127.0.0.1 by ") == 0u, r);
        BOOST_TEST(r.find("(popgate) with POP3 id " + sha16(uidl)) != std::string::npos, r);
        BOOST_TEST(r.find("for <" + recipient + ">") != std::string::npos, r);
        BOOST_TEST(r.find("(account " + account + ");") != std::string::npos, r);
        // RFC 5322 date-time: the day is 1*2DIGIT ("Thu, 3 Dec 2026"), the zone
        // UTC; the stamp must read back as a time within minutes of now.
        std::smatch when;
        BOOST_TEST_REQUIRE(std::regex_search(r, when,
                                             std::regex("; ((Mon|Tue|Wed|Thu|Fri|Sat|Sun), "
                                                        "[1-9][0-9]? (Jan|Feb|Mar|Apr|May|Jun|Jul|"
                                                        "Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
                                                        "[0-9]{2}:[0-9]{2}:[0-9]{2} \\+0000)$")),
                           r);
        int tzd = 0;
        const Poco::DateTime stamped =
            Poco::DateTimeParser::parse(Poco::DateTimeFormat::RFC1123_FORMAT, when[1].str(), tzd);
        BOOST_TEST(tzd == 0, r);
        const auto skew = (Poco::Timestamp() - stamped.timestamp()) / Poco::Timestamp::resolution();
        BOOST_TEST((skew > -60 && skew < 3600), r << " is " << skew << " s from now");
    }
    BOOST_TEST(ours == 1, "one Received line by popgate");
    // popgate's trace comes right below Postfix's own (the newest on top).
    const auto received = d.all("Received");
    BOOST_TEST_REQUIRE(received.size() >= 2u);
    BOOST_TEST(received[1].find("(popgate)") != std::string::npos);
}

} // namespace

BOOST_AUTO_TEST_CASE(every_message_arrives_once_byte_identical_with_popgate_headers)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("deliver");
    gw.addDovecotAccount("desk", s.user2, to);
    const auto rows = samples();
    for (const auto& r : rows)
        dropMessage(s.maildir2, r.bytes);

    const RunResult run1 = gw.once();
    BOOST_TEST_REQUIRE(run1.status == 0, run1.err);
    settle();

    // Ledger: every message injected, with a queue id, and deleted.
    std::map<std::string, LedgerRow> ledger;
    for (const auto& row : gw.ledger("desk"))
        ledger[row.messageId] = row;
    BOOST_TEST(ledger.size() == rows.size());
    for (const auto& [id, row] : ledger) {
        BOOST_TEST_CONTEXT(id)
        {
            BOOST_TEST(row.state == "injected");
            BOOST_TEST(row.deleted);
            BOOST_TEST(!row.queueId.empty());
        }
    }

    // Postfix: each exactly once, the body byte for byte.
    const auto copies = delivered(to);
    BOOST_TEST(copies.size() == rows.size());
    std::map<std::string, int> seen;
    const std::string key = gw.headerKey();
    BOOST_TEST_REQUIRE(key.size() == 32u);
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            const std::string id = messageIdOf(r.bytes);
            const Delivered* copy = nullptr;
            for (const auto& c : copies)
                if (c.first("Message-ID") == id) {
                    copy = &c;
                    ++seen[id];
                }
            BOOST_TEST_REQUIRE(copy != nullptr, "not delivered");
            BOOST_TEST(seen[id] == 1);
            BOOST_TEST(copy->body == toLf(bodyOf(r.bytes)), "body differs:\n" << copy->body);
            BOOST_TEST_REQUIRE(ledger.count(id) == 1u);
            checkPopgateHeaders(*copy, key, "desk", ledger[id].uidl, to);
            // Postfix's own Received names the queue id the ledger recorded.
            BOOST_TEST(copy->all("Received")[0].find("id " + ledger[id].queueId) !=
                       std::string::npos);
        }
    }
    for (const auto& c : copies)
        if (c.first("Message-ID") == mid("returnpath"))
            BOOST_TEST(c.first("Return-Path") == "<bounces@lists.example.org>");

    // The log: one line per message with the facts, the queue id in Postfix's log.
    const auto lines = messageLines(run1.err);
    BOOST_TEST(lines.size() == rows.size());
    for (const auto& l : lines) {
        BOOST_TEST_CONTEXT(l.text)
        {
            BOOST_TEST(l.get("account") == "desk");
            BOOST_TEST(l.get("status") == "delivered");
            BOOST_TEST(l.get("relay") == "127.0.0.1[" + std::to_string(s.reinjectPort) + "]");
            const auto it = ledger.find(l.get("message-id"));
            BOOST_TEST_REQUIRE((it != ledger.end()), "message-id= names a ledger row");
            BOOST_TEST(l.get("uidl") == it->second.uidl);
            BOOST_TEST(l.get("queue-id") == it->second.queueId);
            BOOST_TEST(l.text.find("(250 ") != std::string::npos, "the MTA's words are quoted");
            BOOST_TEST(maillogHas(l.get("queue-id")), "queue id in Postfix's maillog");
        }
    }
    BOOST_TEST(run1.err.find("from=<bounces@lists.example.org>") != std::string::npos);
    BOOST_TEST(
        run1.err.find("account=desk poll: 6 listed, 6 delivered, 0 ignored, 0 deferred, 0 failed, "
                      "6 deleted") != std::string::npos);

    // The POP3 mailbox is empty, and a second poll finds nothing to do.
    BOOST_TEST(countMessages(s.maildir2) == 0);
    const RunResult run2 = gw.once();
    BOOST_TEST(run2.status == 0);
    BOOST_TEST(messageLines(run2.err).empty());
    settle();
    BOOST_TEST(deliveredCount(to) == static_cast<int>(rows.size()));
}

BOOST_AUTO_TEST_CASE(keep_on_server_keeps_the_mailbox_and_never_delivers_twice)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("keep");
    gw.addDovecotAccount("kept", s.user2, to, {"--keep-on-server=yes"});
    for (int i = 0; i < 3; ++i)
        dropMessage(s.maildir2, message({"From: a@example.com",
                                         "Message-ID: " + mid("keep" + std::to_string(i))},
                                        "kept " + std::to_string(i) + "\r\n"));

    RunResult r = gw.once();
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(messageLines(r.err).size() == 3u);
    settle();
    BOOST_TEST(deliveredCount(to) == 3);
    BOOST_TEST(countMessages(s.maildir2) == 3, "keep-on-server: the mailbox keeps them");
    for (const auto& row : gw.ledger()) {
        BOOST_TEST(row.state == "injected");
        BOOST_TEST(!row.deleted);
    }

    // Second poll: UIDL state alone keeps them from being delivered again.
    r = gw.once();
    BOOST_TEST(r.status == 0);
    BOOST_TEST(messageLines(r.err).empty(), r.err);
    BOOST_TEST(r.err.find("poll: 3 listed, 0 delivered") != std::string::npos, r.err);

    // A new message: only that one goes.
    dropMessage(s.maildir2,
                message({"From: a@example.com", "Message-ID: " + mid("keep-new")}, "new\r\n"));
    r = gw.once();
    BOOST_TEST(r.status == 0);
    const auto lines = messageLines(r.err);
    BOOST_TEST_REQUIRE(lines.size() == 1u, r.err);
    BOOST_TEST(lines[0].get("message-id") == mid("keep-new"));
    settle();
    BOOST_TEST(deliveredCount(to) == 4);
    BOOST_TEST(countMessages(s.maildir2) == 4);
}

BOOST_AUTO_TEST_CASE(several_accounts_in_one_run)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir, s.maildir2});
    Gateway gw(s);
    const std::string toA = uniqueAddress("multia"), toB = uniqueAddress("multib");
    gw.addDovecotAccount("alpha", s.user, toA);
    gw.addDovecotAccount("beta", s.user2, toB);
    const int perAccount = 8;
    for (int i = 0; i < perAccount; ++i) {
        dropMessage(s.maildir,
                    message({"From: a@example.com", "Message-ID: " + mid("a" + std::to_string(i))},
                            "for alpha " + std::to_string(i) + "\r\n"));
        dropMessage(s.maildir2,
                    message({"From: b@example.com", "Message-ID: " + mid("b" + std::to_string(i))},
                            "for beta " + std::to_string(i) + "\r\n"));
    }
    const RunResult r = gw.once();
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    settle();

    const std::string key = gw.headerKey();
    for (const auto& [account, to, prefix] :
         {std::make_tuple("alpha", toA, "a"), std::make_tuple("beta", toB, "b")}) {
        BOOST_TEST_CONTEXT(account)
        {
            const auto copies = delivered(to);
            BOOST_TEST(copies.size() == static_cast<std::size_t>(perAccount));
            std::set<std::string> ids;
            for (const auto& c : copies) {
                ids.insert(c.first("Message-ID"));
                PopgateId id;
                BOOST_TEST(verifyPopgateId(key, c.first("X-Popgate-Id"), id));
                BOOST_TEST(id.account == account);
                BOOST_TEST(c.body.find(std::string("for ") + account) == 0u);
            }
            BOOST_TEST(ids.size() == static_cast<std::size_t>(perAccount), "no duplicates");
            for (int i = 0; i < perAccount; ++i)
                BOOST_TEST(ids.count(mid(prefix + std::to_string(i))) == 1u);
            int lines = 0;
            for (const auto& l : messageLines(r.err))
                if (l.get("account") == account && l.get("status") == "delivered")
                    ++lines;
            BOOST_TEST(lines == perAccount);
        }
    }
    BOOST_TEST(countMessages(s.maildir) == 0);
    BOOST_TEST(countMessages(s.maildir2) == 0);
}

BOOST_AUTO_TEST_CASE(ignored_senders_land_in_quarantine_not_in_postfix)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("filter");
    gw.addDovecotAccount("filtered", s.user2, to);
    gw.ctl({"filter", "add", "inbound", "--default=yes"});
    gw.ctl({"filter", "address", "add", "spam", "--type=deny", "--domains=bad.example"});
    gw.ctl({"filter", "attach", "inbound", "spam"});

    struct Row {
        const char* label;
        std::string messageId;
        std::string bytes;
        bool blocked;
    };
    const std::vector<Row> rows = {
        {"header From on the deny list", mid("spam-from"),
         message({"From: Spammer <offers@bad.example>", "Message-ID: " + mid("spam-from"),
                  "Subject: offer"},
                 "buy now\r\n"),
         true},
        {"envelope sender (Return-Path) on the deny list", mid("spam-envelope"),
         message({"Return-Path: <bulk@bad.example>", "From: friendly@good.example",
                  "Message-ID: " + mid("spam-envelope")},
                 "disguised\r\n"),
         true},
        {"good sender", mid("good"),
         message({"From: friend@good.example", "Message-ID: " + mid("good")}, "hi\r\n"), false},
    };
    for (const auto& row : rows)
        dropMessage(s.maildir2, row.bytes);

    const RunResult r = gw.once();
    BOOST_TEST(r.status == 0, r.err);
    settle();
    const auto copies = delivered(to);
    const auto ledger = gw.ledger("filtered");
    const auto lines = messageLines(r.err);
    const std::string quarantine = gw.spoolDir() + "/quarantine/filtered";
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            int inPostfix = 0;
            for (const auto& c : copies)
                inPostfix += c.first("Message-ID") == row.messageId;
            BOOST_TEST(inPostfix == (row.blocked ? 0 : 1));
            std::string state, status;
            for (const auto& l : ledger)
                if (l.messageId == row.messageId)
                    state = l.state;
            for (const auto& l : lines)
                if (l.get("message-id") == row.messageId)
                    status = l.get("status");
            BOOST_TEST(state == (row.blocked ? "ignored" : "injected"));
            BOOST_TEST(status == (row.blocked ? "ignored" : "delivered"));
            bool quarantined = false;
            if (Poco::File(quarantine).exists())
                for (Poco::DirectoryIterator it(quarantine), end; it != end; ++it)
                    if (readFile(it->path()).find(row.messageId) != std::string::npos)
                        quarantined = true;
            BOOST_TEST(quarantined == row.blocked);
        }
    }
    BOOST_TEST(countFiles(quarantine) == 2);
    BOOST_TEST(countMessages(s.maildir2) == 0,
               "ignored mail is deleted from the server once quarantined");
}
