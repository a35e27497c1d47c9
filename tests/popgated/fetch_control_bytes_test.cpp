// fetch_control_bytes_test - issue [H] item 5 on popgated's path with the real
// binaries, Dovecot and Postfix: control bytes in a From field make the sender
// unreadable (quarantined, `ignored`), the same bytes in the body reach the
// maildir; and with Postfix's message_reject_characters = \0 a message with a
// NUL gets the MTA's 5xx, becomes a per-message failure and stays on the
// server while the other messages of the poll are delivered.
#define BOOST_TEST_MODULE fetch_control_bytes
#include "tests/popgated/fetch_support.h"

#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <boost/test/unit_test.hpp>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

std::string mid(const std::string& tag)
{
    return "<" + tag + "." + std::to_string(::getpid()) + "@ctl.test>";
}

const std::string kNul(1, '\0');

/// postconf - one main.cf parameter of the test Postfix, then a reload.
void postconf(const Servers& s, const std::string& setting)
{
    RunResult r = run("/usr/sbin/postconf", {"-c", s.postfixConfigDir, "-e", setting});
    BOOST_TEST_REQUIRE(r.status == 0, "postconf: " << r.err);
    r = run("/usr/sbin/postfix", {"-c", s.postfixConfigDir, "reload"});
    BOOST_TEST_REQUIRE(r.status == 0, "postfix reload: " << r.err);
}

struct Row {
    const char* label;
    std::string tag;
    std::vector<std::string> header;
    std::string body;
    const char* state;  ///< the ledger state it must end in
    const char* reason; ///< part of the log line ("" for none)
};

/// fetchAll - drops the rows into Dovecot, runs popgated once; checks every
/// row's ledger state and log line; returns Postfix's copies.
std::vector<Delivered> fetchAll(const Servers& s, Gateway& gw, const std::string& account,
                                const std::string& to, const std::vector<Row>& rows)
{
    for (const Row& row : rows) {
        std::vector<std::string> header = row.header;
        header.push_back("Message-ID: " + mid(row.tag));
        dropMessage(s.maildir2, message(header, row.body));
    }
    const RunResult r = gw.once();
    BOOST_TEST(r.status == 0, r.err);
    settle();
    const auto ledger = gw.ledger(account);
    const auto lines = messageLines(r.err);
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            std::string state, text;
            for (const auto& l : ledger)
                if (l.messageId == mid(row.tag))
                    state = l.state;
            for (const auto& l : lines)
                if (l.get("message-id") == mid(row.tag))
                    text = l.text;
            BOOST_TEST(state == row.state, text);
            BOOST_TEST(text.find(row.reason) != std::string::npos, text);
            // a log line never carries the raw bytes
            for (unsigned char c : text)
                BOOST_TEST((c >= 0x20 && c != 0x7f), "raw control byte in: " << text);
        }
    }
    return delivered(to);
}

} // namespace

BOOST_AUTO_TEST_CASE(control_bytes_in_from_are_unreadable_elsewhere_they_pass)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("ctl");
    gw.addDovecotAccount("ctl", s.user2, to);
    gw.ctl({"filter", "add", "inbound", "--default=yes"});
    gw.ctl({"filter", "address", "add", "spam", "--type=deny", "--domains=bad.example"});
    gw.ctl({"filter", "attach", "inbound", "spam"});
    const std::vector<Row> rows = {
        {"NUL hiding a blocked address",
         "nulfrom",
         {"From: <a@good.example>" + kNul + "<x@bad.example>"},
         "x\r\n",
         "ignored",
         "sender unreadable: From field 1 holds control byte 0x00 at octet 17"},
        {"terminal escape in an allowed From",
         "escfrom",
         {"From: \x1b[2K\rBoss <a@good.example>"},
         "x\r\n",
         "ignored",
         "holds control byte 0x1b"},
        {"NUL, ESC and DEL in the body pass",
         "nulbody",
         {"From: a@good.example"},
         "nul " + kNul + " esc \x1b[31m del \x7f end\r\n",
         "injected",
         "status=delivered"},
        {"a plain message",
         "plain",
         {"From: a@good.example"},
         "plain\r\n",
         "injected",
         "status=delivered"},
    };
    const auto copies = fetchAll(s, gw, "ctl", to, rows);
    BOOST_TEST(copies.size() == 2u);
    for (const auto& c : copies)
        if (c.first("Message-ID") == mid("nulbody"))
            BOOST_TEST((c.body == "nul " + kNul + " esc \x1b[31m del \x7f end\n"));
    BOOST_TEST(countMessages(s.maildir2) == 0, "ignored messages leave the server too");
    int quarantined = 0;
    const std::string q = gw.spoolDir() + "/quarantine/ctl";
    if (Poco::File(q).exists())
        for (Poco::DirectoryIterator it(q), end; it != end; ++it)
            ++quarantined;
    BOOST_TEST(quarantined == 2);
}

BOOST_AUTO_TEST_CASE(mta_refusing_nul_is_a_per_message_failure)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    postconf(s, "message_reject_characters = \\0");
    struct Restore {
        const Servers& s;
        ~Restore()
        {
            try {
                postconf(s, "message_reject_characters =");
            } catch (...) {
            }
        }
    } restore{s};
    Gateway gw(s);
    const std::string to = uniqueAddress("rejnul");
    gw.addDovecotAccount("rejnul", s.user2, to);
    const std::vector<Row> rows = {
        {"before",
         "before",
         {"From: a@good.example"},
         "before\r\n",
         "injected",
         "status=delivered"},
        {"NUL in the body: the MTA's 5xx",
         "nul",
         {"From: a@good.example"},
         "nul " + kNul + " byte\r\n",
         "failed",
         "status=failed"},
        {"after", "after", {"From: a@good.example"}, "after\r\n", "injected", "status=delivered"},
    };
    const auto copies = fetchAll(s, gw, "rejnul", to, rows);
    BOOST_TEST(copies.size() == 2u);
    BOOST_TEST(countMessages(s.maildir2) == 1, "the refused message stays on the server");
}
