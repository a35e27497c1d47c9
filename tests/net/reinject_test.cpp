// reinject_test.cpp - the SMTP side of popgated without an MTA: DotStuffer
// (transparency over arbitrary chunk boundaries), Spool (memory, spill to a
// file, keep), and SmtpReinjector against a scripted server: the exact order
// of a pipelined exchange (RFC 2920: the envelope is sent as one group, the
// text only after 354, the next envelope with the previous final dot), the
// sequential dialogue without PIPELINING, the 503-after-refused-dot recovery,
// a recipient refused while DATA is open, and a session lost after the dot.
// The same code against the real Postfix: tests/popgated/fetch_mta_faults_test.
#define BOOST_TEST_MODULE reinject
#include "core/errors.h"
#include "plugin/net/reinject.h"
#include "plugin/popgated/spool.h"
#include "tests/support/fake_pop3_server.h"

#include <Poco/File.h>
#include <Poco/TemporaryFile.h>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>

using namespace popgate;
using namespace popgate::test;
using Kind = SmtpResult::Kind;

namespace
{

std::string stuff(const std::vector<std::string>& pieces)
{
    DotStuffer d;
    std::string out;
    for (const auto& p : pieces)
        d.feed(p.data(), p.size(), out);
    d.finish(out);
    return out;
}

SmtpTarget targetFor(int port)
{
    SmtpTarget t;
    t.port = port;
    t.helo = "gw.test";
    t.timeout = std::chrono::milliseconds(2000);
    return t;
}

SmtpMessage message(const std::string& from, const std::string& text)
{
    SmtpMessage m;
    m.sender = from;
    m.recipients = {"desk@example.com"};
    m.size = static_cast<std::int64_t>(text.size());
    auto data = std::make_shared<std::string>(text);
    auto pos = std::make_shared<std::size_t>(0);
    m.body = [data, pos](char* buffer, std::size_t capacity) {
        const std::size_t n = std::min(capacity, data->size() - *pos);
        std::copy(data->data() + *pos, data->data() + *pos + n, buffer);
        *pos += n;
        return n;
    };
    return m;
}

const std::string kGreeting = "220 mta.test ESMTP\r\n";
const std::string kEhloPipelining =
    "250-mta.test\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n";
const std::string kEhloPlain = "250-mta.test\r\n250 8BITMIME\r\n";

} // namespace

BOOST_AUTO_TEST_SUITE(dot_stuffer)

BOOST_AUTO_TEST_CASE(dots_at_line_start_are_doubled_across_chunks)
{
    BOOST_TEST(stuff({"a\r\n.b\r\n"}) == "a\r\n..b\r\n.\r\n");
    BOOST_TEST(stuff({".start\r\n"}) == "..start\r\n.\r\n");
    BOOST_TEST(stuff({"a\r\n", ".", "\r\n"}) == "a\r\n..\r\n.\r\n");
    BOOST_TEST(stuff({"a\r", "\n.", "x\r\n"}) == "a\r\n..x\r\n.\r\n");
    BOOST_TEST(stuff({"a.b\r\n"}) == "a.b\r\n.\r\n"); // not at a line start
}

BOOST_AUTO_TEST_CASE(bare_lf_becomes_crlf_and_the_end_is_terminated)
{
    BOOST_TEST(stuff({"a\nb\n"}) == "a\r\nb\r\n.\r\n");
    BOOST_TEST(stuff({"a\r", "\nb"}) == "a\r\nb\r\n.\r\n"); // CR and LF in two chunks
    BOOST_TEST(stuff({"no end"}) == "no end\r\n.\r\n");
    BOOST_TEST(stuff({"cr end\r"}) == "cr end\r\n.\r\n");
    BOOST_TEST(stuff({}) == ".\r\n");
    BOOST_TEST(stuff({"\n\n"}) == "\r\n\r\n.\r\n");
}

BOOST_AUTO_TEST_CASE(every_split_of_a_message_gives_the_same_bytes)
{
    const std::string text = ".a\r\n..b\nc\r\n.\r\n\r\n.\n";
    const std::string whole = stuff({text});
    BOOST_TEST(whole == "..a\r\n...b\r\nc\r\n..\r\n\r\n..\r\n.\r\n");
    for (std::size_t i = 0; i <= text.size(); ++i)
        for (std::size_t j = i; j <= text.size(); ++j)
            BOOST_TEST(stuff({text.substr(0, i), text.substr(i, j - i), text.substr(j)}) == whole,
                       "split at " << i << "," << j);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(spool)

std::string readAll(Spool& s)
{
    std::string out;
    char buffer[1000];
    while (std::size_t n = s.read(buffer, sizeof buffer))
        out.append(buffer, n);
    return out;
}

BOOST_AUTO_TEST_CASE(small_messages_stay_in_memory_large_ones_spill)
{
    Poco::TemporaryFile dir;
    dir.createDirectories();
    {
        Spool s(dir.path() + "/small", -1);
        std::ostream out(&s);
        out << "hello\r\n";
        s.finishWriting();
        BOOST_TEST(s.inMemory());
        BOOST_TEST(!Poco::File(dir.path() + "/small").exists());
        BOOST_TEST(readAll(s) == "hello\r\n");
        s.rewind();
        BOOST_TEST(readAll(s) == "hello\r\n", "rewind reads it again");
    }
    const std::string big(Spool::kMemoryLimit + 10, 'x');
    {
        Spool s(dir.path() + "/grown", 10); // announced small, grows past the limit
        std::ostream out(&s);
        out << big.substr(0, 100);
        out << big.substr(100);
        s.finishWriting();
        BOOST_TEST(!s.inMemory());
        BOOST_TEST(Poco::File(dir.path() + "/grown").exists());
        BOOST_TEST(s.size() == static_cast<std::int64_t>(big.size()));
        BOOST_TEST(readAll(s) == big);
    }
    BOOST_TEST(!Poco::File(dir.path() + "/grown").exists(), "the destructor removes the file");
    {
        Spool s(dir.path() + "/announced", Spool::kMemoryLimit); // LIST said large
        BOOST_TEST(!s.inMemory());
    }
}

BOOST_AUTO_TEST_CASE(keep_stores_the_message_for_good)
{
    Poco::TemporaryFile dir;
    dir.createDirectories();
    for (const std::size_t size : {std::size_t(20), Spool::kMemoryLimit + 1}) {
        const std::string text(size, 'q');
        const std::string kept = dir.path() + "/kept" + std::to_string(size) + ".eml";
        {
            Spool s(dir.path() + "/spool" + std::to_string(size), -1);
            std::ostream out(&s);
            out << text;
            s.finishWriting();
            s.keep(kept);
        }
        std::ifstream in(kept, std::ios::binary);
        std::stringstream got;
        got << in.rdbuf();
        BOOST_TEST(got.str() == text, "size " << size);
        BOOST_TEST(!Poco::File(dir.path() + "/spool" + std::to_string(size)).exists());
    }
}

BOOST_AUTO_TEST_CASE(a_spool_in_a_missing_directory_is_a_clear_error)
{
    Spool s("/nonexistent/popgate/spool", -1);
    std::ostream out(&s);
    out << std::string(Spool::kMemoryLimit + 1, 'x'); // must spill: cannot
    BOOST_CHECK_EXCEPTION(s.finishWriting(), OperationError, [](const OperationError& e) {
        return std::string(e.what()).find("/nonexistent/popgate/spool") != std::string::npos;
    });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(smtp)

BOOST_AUTO_TEST_CASE(pipelined_envelopes_travel_with_the_previous_dot)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloPipelining),
        // one group, no waiting between the commands
        expect("MAIL FROM:<a@x.test> SIZE=5"),
        expect("RCPT TO:<desk@example.com>"),
        expect("DATA"),
        nothingPending(), // no text before 354
        send("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
        expect("one"),
        expect("."),
        expect("MAIL FROM:<> SIZE=6"), // before the reply to the dot
        expect("RCPT TO:<desk@example.com>"),
        expect("DATA"),
        nothingPending(),
        send("250 2.0.0 Ok: queued as AAA1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n"),
        expect("..two"),
        expect("."),
        nothingPending(), // the last one waits for its reply
        send("250 2.0.0 Ok: queued as BBB2\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpReinjector r(targetFor(mta.port()));
    const auto results = r.deliverMany({message("a@x.test", "one\r\n"), message("", ".two\r\n")});
    r.close();
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 2u);
    BOOST_TEST((results[0].kind == Kind::Accepted));
    BOOST_TEST(results[0].queueId == "AAA1");
    BOOST_TEST((results[1].kind == Kind::Accepted));
    BOOST_TEST(results[1].queueId == "BBB2");
}

BOOST_AUTO_TEST_CASE(without_pipelining_every_command_waits_for_its_reply)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloPlain),
        expect("MAIL FROM:<a@x.test>"), // no SIZE offered: no SIZE=
        nothingPending(),
        send("250 Ok\r\n"),
        expect("RCPT TO:<desk@example.com>"),
        nothingPending(),
        send("250 Ok\r\n"),
        expect("DATA"),
        nothingPending(),
        send("354 go\r\n"),
        expect("one"),
        expect("."),
        nothingPending(),
        send("250 Ok: queued as C3\r\n"),
        expect("MAIL FROM:<a@x.test>"),
        send("250 Ok\r\n"),
        expect("RCPT TO:<desk@example.com>"),
        send("550 5.1.1 no such user\r\n"),
        expect("RSET"),
        send("250 Ok\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpReinjector r(targetFor(mta.port()));
    const auto results = r.deliverMany({message("a@x.test", "one"), message("a@x.test", "two")});
    r.close();
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 2u);
    BOOST_TEST((results[0].kind == Kind::Accepted));
    BOOST_TEST(results[0].queueId == "C3");
    BOOST_TEST((results[1].kind == Kind::Permanent));
    BOOST_TEST(results[1].command == "RCPT TO:<desk@example.com>");
    BOOST_TEST(results[1].code == 550);
}

BOOST_AUTO_TEST_CASE(a_refused_dot_then_503_resets_and_says_the_envelope_again)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloPipelining),
        expect("MAIL FROM:<a@x.test> SIZE=3"),
        expect("RCPT TO:<desk@example.com>"),
        expect("DATA"),
        send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
        expect("a"),
        expect("."),
        expect("MAIL FROM:<a@x.test> SIZE=3"),
        expect("RCPT TO:<desk@example.com>"),
        expect("DATA"),
        // the dot refused, and this MTA kept the transaction open
        send("554 5.7.1 rejected\r\n503 5.5.1 nested MAIL command\r\n503 5.5.1 need MAIL\r\n"
             "503 5.5.1 need RCPT\r\n"),
        expect("RSET"),
        send("250 Ok\r\n"),
        expect("MAIL FROM:<a@x.test> SIZE=3"),
        send("250 Ok\r\n"),
        expect("RCPT TO:<desk@example.com>"),
        send("250 Ok\r\n"),
        expect("DATA"),
        send("354 go\r\n"),
        expect("b"),
        expect("."),
        send("250 Ok: queued as D4\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpReinjector r(targetFor(mta.port()));
    const auto results = r.deliverMany({message("a@x.test", "a\r\n"), message("a@x.test", "b\r\n")});
    r.close();
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 2u);
    BOOST_TEST((results[0].kind == Kind::Permanent));
    BOOST_TEST(results[0].command == "end of DATA");
    BOOST_TEST((results[1].kind == Kind::Accepted));
    BOOST_TEST(results[1].queueId == "D4");
}

BOOST_AUTO_TEST_CASE(a_refused_dot_then_data_open_for_the_old_transaction_hangs_up)
{
    // Postfix after an end-of-data restriction: MAIL 503 (nested), but RCPT and
    // DATA accepted for the old transaction. Anything sent now would be text.
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloPipelining),
        expect("MAIL FROM:<a@x.test> SIZE=3"),
        expect("RCPT TO:<desk@example.com>"),
        expect("DATA"),
        send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
        expect("a"),
        expect("."),
        expect("MAIL FROM:<a@x.test> SIZE=3"),
        expect("RCPT TO:<desk@example.com>"),
        expect("DATA"),
        send("554 5.7.1 rejected\r\n503 5.5.1 nested MAIL command\r\n250 2.1.5 Ok\r\n"
             "354 go\r\n"),
        awaitClose(3000),
    });
    SmtpReinjector r(targetFor(mta.port()));
    const auto results = r.deliverMany({message("a@x.test", "a\r\n"), message("a@x.test", "b\r\n")});
    BOOST_TEST(mta.finish() == "");
    const auto lines = mta.received();
    BOOST_TEST(lines.back() == "DATA", "nothing after the DATA that opened the old transaction");
    BOOST_TEST_REQUIRE(results.size() == 2u);
    BOOST_TEST((results[0].kind == Kind::Permanent));
    // The second connection is never served by this one-shot server.
    BOOST_TEST((results[1].kind == Kind::Unreachable));
}

BOOST_AUTO_TEST_CASE(a_refused_recipient_with_data_open_hangs_up_without_text)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloPipelining),
        expect("MAIL FROM:<a@x.test> SIZE=3"),
        expect("RCPT TO:<desk@example.com>"),
        expect("RCPT TO:<other@example.com>"),
        expect("DATA"),
        send("250 Ok\r\n250 Ok\r\n450 4.2.0 try later\r\n354 go\r\n"),
        awaitClose(2000), // the client must not send the text (a partial delivery)
    });
    SmtpReinjector r(targetFor(mta.port()));
    SmtpMessage m = message("a@x.test", "a\r\n");
    m.recipients.push_back("other@example.com");
    const auto results = r.deliverMany({m});
    BOOST_TEST(mta.finish() == "");
    for (const auto& line : mta.received())
        BOOST_TEST(line != "a", "the text was sent");
    BOOST_TEST_REQUIRE(results.size() == 1u);
    BOOST_TEST((results[0].kind == Kind::Temporary));
    BOOST_TEST(results[0].command == "RCPT TO:<other@example.com>");
}

BOOST_AUTO_TEST_CASE(a_session_lost_after_the_dot_is_uncertain_and_ends_the_batch)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloPipelining),
        expect("MAIL FROM:<a@x.test> SIZE=3"),
        expect("RCPT TO:<desk@example.com>"),
        expect("DATA"),
        send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
        expect("a"),
        expect("."),
        expect("MAIL FROM:<a@x.test> SIZE=3"),
        // and the MTA goes away without a word
    });
    SmtpReinjector r(targetFor(mta.port()));
    const auto results = r.deliverMany(
        {message("a@x.test", "a\r\n"), message("a@x.test", "b\r\n"), message("a@x.test", "c\r\n")});
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 1u, "the messages after it were not attempted");
    BOOST_TEST((results[0].kind == Kind::Uncertain));
}

BOOST_AUTO_TEST_CASE(no_mta_is_unreachable_for_the_first_message_only)
{
    SmtpReinjector r(targetFor(1)); // nothing listens on port 1 of loopback
    const auto results = r.deliverMany({message("a@x.test", "a"), message("a@x.test", "b")});
    BOOST_TEST_REQUIRE(results.size() == 1u);
    BOOST_TEST((results[0].kind == Kind::Unreachable));
    BOOST_TEST(results[0].command == "connect");
}

BOOST_AUTO_TEST_SUITE_END()

// A domain mailbox's message (perRecipient): one transaction, one RCPT each; a
// refused RCPT refuses that recipient only and the text goes to the others.
BOOST_AUTO_TEST_CASE(per_recipient_refusals_deliver_to_the_accepted_ones)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloPipelining),
        expect("MAIL FROM:<a@x.test> SIZE=3"),
        expect("RCPT TO:<alice@example.com>"),
        expect("RCPT TO:<nobody@example.com>"),
        expect("RCPT TO:<bob@example.com>"),
        expect("DATA"),
        send("250 Ok\r\n250 Ok\r\n550 5.1.1 no such user\r\n451 4.3.0 later\r\n354 go\r\n"),
        expect("a"),
        expect("."),
        send("250 2.0.0 Ok: queued as Q1\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpReinjector r(targetFor(mta.port()));
    SmtpMessage m = message("a@x.test", "a\r\n");
    m.recipients = {"alice@example.com", "nobody@example.com", "bob@example.com"};
    m.perRecipient = true;
    const auto results = r.deliverMany({m});
    r.close();
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 1u);
    BOOST_TEST((results[0].kind == Kind::Accepted));
    BOOST_TEST(results[0].queueId == "Q1");
    BOOST_TEST_REQUIRE(results[0].recipients.size() == 3u);
    BOOST_TEST((results[0].recipients[0].kind == Kind::Accepted));
    BOOST_TEST((results[0].recipients[1].kind == Kind::Permanent));
    BOOST_TEST(results[0].recipients[1].code == 550);
    BOOST_TEST(results[0].recipients[1].address == "nobody@example.com");
    BOOST_TEST((results[0].recipients[2].kind == Kind::Temporary));
}

BOOST_AUTO_TEST_CASE(per_recipient_all_refused_sends_no_text_temporary_wins)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloPlain),
        expect("MAIL FROM:<a@x.test>"),
        send("250 Ok\r\n"),
        expect("RCPT TO:<alice@example.com>"),
        send("550 5.1.1 no such user\r\n"),
        expect("RCPT TO:<bob@example.com>"), // a refusal does not stop the envelope
        send("452 4.2.2 mailbox full\r\n"),
        expect("RSET"), // no DATA without a recipient
        send("250 Ok\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpReinjector r(targetFor(mta.port()));
    SmtpMessage m = message("a@x.test", "a\r\n");
    m.recipients = {"alice@example.com", "bob@example.com"};
    m.perRecipient = true;
    const auto results = r.deliverMany({m});
    r.close();
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 1u);
    BOOST_TEST((results[0].kind == Kind::Temporary));
    BOOST_TEST(results[0].command == "RCPT TO:<alice@example.com>");
    BOOST_TEST_REQUIRE(results[0].recipients.size() == 2u);
    BOOST_TEST((results[0].recipients[0].kind == Kind::Permanent));
    BOOST_TEST((results[0].recipients[1].kind == Kind::Temporary));
}

BOOST_AUTO_TEST_CASE(per_recipient_without_a_recipient_sends_no_text)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloPipelining),
        expect("MAIL FROM:<a@x.test> SIZE=3"),
        expect("DATA"),
        send("250 Ok\r\n554 5.5.1 Error: no valid recipients\r\n"),
        expect("RSET"),
        send("250 Ok\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpReinjector r(targetFor(mta.port()));
    SmtpMessage m = message("a@x.test", "a\r\n");
    m.recipients.clear();
    m.perRecipient = true;
    const auto results = r.deliverMany({m});
    r.close();
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 1u);
    BOOST_TEST((results[0].kind == Kind::Permanent));
}
