// fetch_bad_messages_test - odd and hostile messages through popgated from
// Dovecot (and, for bytes Dovecot would normalise, the scripted fake POP3
// server) into Postfix: NUL bytes, 10 000-character lines, no header section,
// 8-bit headers, bare LF and CR on the wire pass through unharmed (Postfix's
// maildir writes LF line ends, nothing else changes); a 50 MB message streams
// through in bounded memory (VmHWM polled while popgated runs); messages over
// the account's or the MTA's size limit get a clear error and stay on the server.
#define BOOST_TEST_MODULE fetch_bad_messages
#include "tests/popgated/fetch_support.h"
#include "tests/support/fake_pop3_server.h"

#include <Poco/DigestEngine.h>
#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <Poco/SHA2Engine.h>
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

std::string mid(const std::string& tag)
{
    return "<" + tag + "." + std::to_string(::getpid()) + "@bad.test>";
}

struct Odd {
    const char* label;
    std::string messageId; ///< "" when the message has none
    std::string bytes;
    std::string expectedBody; ///< as Postfix's maildir has it (LF line ends)
};

/// bin - a string literal with its NUL bytes.
template <std::size_t N> std::string bin(const char (&text)[N])
{
    return std::string(text, N - 1);
}

std::vector<Odd> oddMessages()
{
    std::vector<Odd> rows;
    auto add = [&](const char* label, const std::string& tag, std::vector<std::string> headers,
                   const std::string& body) {
        headers.push_back("Message-ID: " + mid(tag));
        rows.push_back({label, mid(tag), message(headers, body), toLf(body)});
    };
    add("NUL bytes in the body", "nul", {"From: a@example.com"},
        bin("before\0after\r\n\0\0\0\r\nend\r\n"));
    add("10 000-character lines", "long", {"From: a@example.com"},
        std::string(10000, 'a') + "\r\nshort\r\n" + std::string(9999, 'b') + "c\r\n");
    add("8-bit headers", "8bit",
        {"From: J\xC3\xBCrgen <juergen@example.com>",
         "Subject: caf\xC3\xA9 \xE9\xFF latin-1 and UTF-8"},
        "8-bit body \xE9\xFF\xFE\r\n");
    add("a 10 000-character header field", "longheader",
        {"From: a@example.com", "X-Long: " + std::string(10000, 'h')}, "short body\r\n");
    add("bare LF in the maildir", "lf", {"From: a@example.com"}, "unix\nline ends\nonly\n");
    add("header section without a body", "nobody", {"From: a@example.com"}, "");
    // No header section at all: the body starts at once. Postfix inserts the
    // blank line after popgate's own header fields.
    const std::string bare = "Just a line of text, no header section\r\nand a second line\r\n";
    rows.push_back({"no header section", "", bare, toLf(bare)});
    return rows;
}

std::string sha256(const std::string& bytes)
{
    Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
    sha.update(bytes);
    return Poco::DigestEngine::digestToHex(sha.digest());
}

/// Watched - popgated --once with its peak RSS (VmHWM polled every 50 ms).
struct Watched {
    int status = -1;
    long peakKb = 0;
    int samples = 0;
    std::string log;
};

Watched runWatched(const Gateway& gw, const std::string& logFile)
{
    Watched w;
    const pid_t pid = spawn(gw.onceArgv(), logFile);
    for (;;) {
        w.peakKb = std::max(w.peakKb, vmHwmKb(pid));
        ++w.samples;
        int status = 0;
        struct rusage usage {
        };
        // The kernel's own peak (ru_maxrss, kB) at exit: exact, where samples
        // every 50 ms can miss the peak of a run that ends between two of them.
        if (::wait4(pid, &status, WNOHANG, &usage) == pid) {
            w.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            w.peakKb = std::max(w.peakKb, static_cast<long>(usage.ru_maxrss));
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    w.log = readFile(logFile);
    return w;
}

} // namespace

BOOST_AUTO_TEST_CASE(odd_messages_pass_through_unharmed)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("odd");
    gw.addDovecotAccount("odd", s.user2, to);
    const auto rows = oddMessages();
    for (const auto& r : rows)
        dropMessage(s.maildir2, r.bytes);
    const RunResult r = gw.once();
    BOOST_TEST(r.status == 0, r.err);
    const auto lines = messageLines(r.err);
    BOOST_TEST(lines.size() == rows.size());
    for (const auto& l : lines)
        BOOST_TEST(l.get("status") == "delivered", l.text);
    settle();
    const auto copies = delivered(to);
    BOOST_TEST(copies.size() == rows.size());
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            int found = 0;
            for (const auto& c : copies) {
                if (c.first("Message-ID") != row.messageId)
                    continue;
                ++found;
                BOOST_TEST((c.body == row.expectedBody), "body differs ("
                                                             << c.body.size() << " bytes, expected "
                                                             << row.expectedBody.size() << ")");
                BOOST_TEST(c.all("X-Popgate-Id").size() == 1u);
            }
            BOOST_TEST(found == 1);
        }
    }
    for (const auto& c : copies) {
        if (c.first("Message-ID") == mid("8bit")) {
            BOOST_TEST(c.first("Subject") == "caf\xC3\xA9 \xE9\xFF latin-1 and UTF-8");
            BOOST_TEST(c.first("From") == "J\xC3\xBCrgen <juergen@example.com>");
        }
        if (c.first("Message-ID") == mid("longheader"))
            BOOST_TEST(c.first("X-Long") == std::string(10000, 'h'));
    }
    BOOST_TEST(countMessages(s.maildir2) == 0);
}

BOOST_AUTO_TEST_CASE(bare_lf_cr_and_nul_on_the_pop3_wire_pass_through)
{
    Servers s;
    Gateway gw(s);
    const std::string to = uniqueAddress("wire");
    const std::string body =
        bin("crlf line\r\nbare lf\nlone\rcr\r\nnul\0byte\r\n\xFF\x01 binary\r\n") +
        "no final line end";
    const std::string bytes = message({"From: a@example.com", "Message-ID: " + mid("wire")}, body);
    FakePop3Server server(
        {send("+OK fake\r\n"), expect("CAPA"), send("+OK\r\nUSER\r\nUIDL\r\n.\r\n"),
         expect("USER u"), send("+OK\r\n"), expect("PASS p"), send("+OK\r\n"), expect("UIDL"),
         send("+OK\r\n1 wire-1\r\n.\r\n"), expect("LIST"),
         send("+OK\r\n1 " + std::to_string(bytes.size() + 2) + "\r\n.\r\n"), expect("RETR 1"),
         // the last line gets its CRLF on the wire, as servers do; the bare LF
         // become CRLF, so the size differs from LIST and the client checks it
         // is still in step before it trusts the message
         send("+OK\r\n" + bytes + "\r\n.\r\n"), expect("UIDL 1"), send("+OK 1 wire-1\r\n"),
         expect("DELE 1"), send("+OK\r\n"), expect("QUIT"),
         send("+OK\r\n")});
    gw.addFakeAccount("wire", server.port(), to);
    const RunResult r = gw.once();
    BOOST_TEST(server.finish() == "");
    BOOST_TEST(r.status == 0, r.err);
    settle();
    const auto copies = delivered(to);
    BOOST_TEST_REQUIRE(copies.size() == 1u);
    // Postfix itself (checked with a plain SMTP client) writes a lone CR as a
    // space into the maildir; everything else is as sent, CRLF made LF.
    std::string expected = toLf(body + "\r\n");
    std::replace(expected.begin(), expected.end(), '\r', ' ');
    BOOST_TEST((copies[0].body == expected), "body differs: " << copies[0].body);
}

BOOST_AUTO_TEST_CASE(fifty_megabyte_message_streams_in_bounded_memory)
{
    const std::size_t kLines = 640000; // 78 bytes each: 49 920 000 bytes of body
    const long kLimitKb = 64 * 1024;
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("big");
    gw.addDovecotAccount("big", s.user2, to);

    // The baseline: the same run with one small message.
    dropMessage(s.maildir2,
                message({"From: small@example.com", "Message-ID: " + mid("small")}, "small\r\n"));
    const Watched baseline = runWatched(gw, gw.file("small.log"));
    BOOST_TEST_REQUIRE(baseline.status == 0, baseline.log);
    settle();
    BOOST_TEST_REQUIRE(deliveredCount(to) == 1);

    // The attachment: base64-looking lines from a fixed LCG, hashed as Postfix will write them.
    Poco::SHA2Engine expected(Poco::SHA2Engine::SHA_256);
    const std::string head = "--B\r\nContent-Type: application/octet-stream\r\n"
                             "Content-Transfer-Encoding: base64\r\n\r\n";
    const std::string tail = "--B--\r\n";
    dropGenerated(s.maildir2, [&](std::ostream& out) {
        out << message({"From: big@example.com", "Message-ID: " + mid("big"), "MIME-Version: 1.0",
                        "Content-Type: multipart/mixed; boundary=B"},
                       "");
        out << head;
        expected.update(toLf(head));
        static const char kAlphabet[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::uint32_t x = 12345;
        std::string line(78, ' ');
        for (std::size_t i = 0; i < kLines; ++i) {
            for (int c = 0; c < 76; ++c) {
                x = x * 1664525u + 1013904223u;
                line[c] = kAlphabet[(x >> 24) & 63];
            }
            line[76] = '\r';
            line[77] = '\n';
            out.write(line.data(), 78);
            expected.update(line.data(), 76);
            expected.update("\n", 1);
        }
        out << tail;
        expected.update(toLf(tail));
    });
    const std::string wanted = Poco::DigestEngine::digestToHex(expected.digest());

    const Watched w = runWatched(gw, gw.file("big.log"));
    BOOST_TEST(w.status == 0, w.log);
    BOOST_TEST_MESSAGE("50 MB message: popgated peak RSS (VmHWM) "
                       << w.peakKb << " kB over " << w.samples
                       << " samples; with one small message " << baseline.peakKb << " kB");
    BOOST_TEST(w.peakKb > 0);
    BOOST_TEST(w.peakKb < kLimitKb, "popgated's peak RSS " << w.peakKb << " kB");
    BOOST_TEST(w.peakKb - baseline.peakKb < 16 * 1024,
               "50 MB raise the peak RSS by " << w.peakKb - baseline.peakKb << " kB");
    const auto lines = messageLines(w.log);
    BOOST_TEST_REQUIRE(lines.size() == 1u, w.log);
    BOOST_TEST(lines[0].get("status") == "delivered", lines[0].text);

    settle();
    std::vector<Delivered> copies;
    for (auto& c : delivered(to))
        if (c.first("Message-ID") == mid("big"))
            copies.push_back(std::move(c));
    BOOST_TEST_REQUIRE(copies.size() == 1u);
    BOOST_TEST(copies[0].body.size() == head.size() - 4 + kLines * 77 + tail.size() - 1);
    BOOST_TEST(sha256(copies[0].body) == wanted, "the 50 MB body arrived byte for byte");
    BOOST_TEST(countMessages(s.maildir2) == 0);
    BOOST_TEST(countFiles(gw.spoolDir() + "/tmp") == 0, "the spool file is gone");
}

BOOST_AUTO_TEST_CASE(messages_over_a_size_limit_get_a_clear_error_and_stay)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    const std::string filler(100, 'x');
    auto sized = [&](const std::string& tag, std::size_t bytes) {
        return dropGenerated(s.maildir2, [&](std::ostream& out) {
            out << message({"From: a@example.com", "Message-ID: " + mid(tag)}, "");
            for (std::size_t n = 0; n < bytes; n += filler.size() + 2)
                out << filler << "\r\n";
        });
    };

    // The account's own limit: refused from LIST, never fetched.
    {
        Gateway gw(s);
        const std::string to = uniqueAddress("limit");
        gw.addDovecotAccount("limited", s.user2, to,
                             {"--max-message-size=100K", "--debug-logging=yes"});
        sized("small", 1000);
        sized("over-account-limit", 300 * 1000);
        const RunResult r = gw.once();
        BOOST_TEST(r.status == 0, r.err);
        std::string status;
        for (const auto& l : messageLines(r.err))
            if (l.text.find("message too large") != std::string::npos) {
                status = l.get("status");
                BOOST_TEST(l.text.find("octets, account limit 102400") != std::string::npos,
                           l.text);
                BOOST_TEST(l.text.find("kept on the server") != std::string::npos, l.text);
            }
        BOOST_TEST(status == "failed", r.err);
        BOOST_TEST(countMessages(s.maildir2) == 1, "the large one stays, the small one went");
        const std::string trace = readFile(gw.file("debug/limited.log"));
        BOOST_TEST(trace.find("C: RETR 1") != std::string::npos);
        BOOST_TEST(trace.find("C: RETR 2") == std::string::npos,
                   "a message over the limit is not fetched");
        settle();
        BOOST_TEST(deliveredCount(to) == 1);
        clearMaildir(s.maildir2);
    }

    // The MTA's limit (Postfix message_size_limit, 50 MiB, announced in EHLO SIZE).
    {
        Gateway gw(s);
        const std::string to = uniqueAddress("mtalimit");
        gw.addDovecotAccount("mtalimited", s.user2, to);
        sized("small2", 1000);
        sized("over-mta-limit", 53 * 1000 * 1000);
        const RunResult r = gw.once();
        BOOST_TEST(r.status == 0, r.err);
        // Known from EHLO SIZE once the session to the MTA is up (the small
        // message went first): refused before RETR. Were it the first message,
        // Postfix's 552 to MAIL FROM ... SIZE= would say the same.
        bool clear = false;
        for (const auto& l : messageLines(r.err))
            if (l.get("status") == "failed")
                clear = l.text.find("MTA SIZE 52428800") != std::string::npos ||
                        l.text.find(" 552 ") != std::string::npos;
        BOOST_TEST(clear, "a clear error: " << r.err);
        BOOST_TEST(countMessages(s.maildir2) == 1);
        settle();
        BOOST_TEST(deliveredCount(to) == 1);
    }
}

BOOST_AUTO_TEST_CASE(every_from_field_is_judged_however_the_mail_is_built)
{
    // Issue [H]: a From too large to parse, a blocked second From and a Latin-1
    // display name, fetched from Dovecot with a deny filter for bad.example.
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::string to = uniqueAddress("froms");
    gw.addDovecotAccount("froms", s.user2, to);
    gw.ctl({"filter", "add", "inbound", "--default=yes"});
    gw.ctl({"filter", "address", "add", "spam", "--type=deny", "--domains=bad.example"});
    gw.ctl({"filter", "attach", "inbound", "spam"});

    struct Row {
        const char* label;
        std::string messageId;
        std::string bytes;
        bool blocked;
        const char* reason; ///< part of the log line of a blocked message
    };
    const std::vector<Row> rows = {
        {"a 70 000-character From (no Return-Path) is ignored, never delivered", mid("hugefrom"),
         message({"From: \"" + std::string(70000, 'A') + "\" <x@bad.example>",
                  "Message-ID: " + mid("hugefrom")},
                 "huge\r\n"),
         true, "sender unreadable: From field longer than 16384 octets"},
        {"a second From field with a blocked address is ignored", mid("twofrom"),
         message({"From: a@good.example", "From: x@bad.example", "Message-ID: " + mid("twofrom")},
                 "two\r\n"),
         true, "From <x@bad.example> blocked"},
        {"a Latin-1 display name is delivered", mid("latin1"),
         message({"From: J\xfcrgen <juergen@good.example>", "Message-ID: " + mid("latin1")},
                 "gr\xfc\xdf"
                 "e\r\n"),
         false, ""},
    };
    for (const auto& row : rows)
        dropMessage(s.maildir2, row.bytes);

    const RunResult r = gw.once();
    BOOST_TEST(r.status == 0, r.err);
    settle();
    const auto copies = delivered(to);
    const auto ledger = gw.ledger("froms");
    const auto lines = messageLines(r.err);
    const std::string quarantine = gw.spoolDir() + "/quarantine/froms";
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            int inPostfix = 0;
            for (const auto& c : copies)
                inPostfix += c.first("Message-ID") == row.messageId;
            BOOST_TEST(inPostfix == (row.blocked ? 0 : 1));
            std::string state, status, text;
            for (const auto& l : ledger)
                if (l.messageId == row.messageId)
                    state = l.state;
            for (const auto& l : lines)
                if (l.get("message-id") == row.messageId) {
                    status = l.get("status");
                    text = l.text;
                }
            BOOST_TEST(state == (row.blocked ? "ignored" : "injected"));
            BOOST_TEST(status == (row.blocked ? "ignored" : "delivered"), text);
            BOOST_TEST(text.find(row.reason) != std::string::npos, text);
            bool quarantined = false;
            if (Poco::File(quarantine).exists())
                for (Poco::DirectoryIterator it(quarantine), end; it != end; ++it)
                    if (readFile(it->path()).find(row.messageId) != std::string::npos)
                        quarantined = true;
            BOOST_TEST(quarantined == row.blocked);
        }
    }
    BOOST_TEST(countMessages(s.maildir2) == 0);
}
