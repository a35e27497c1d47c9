// xclient_test.cpp - reinject.xclient (SmtpTarget::xclient, SmtpMessage::origin):
// against a scripted server, the exact order (XCLIENT between transactions, the
// message on its way answered first, EHLO again after the 220, none again for
// the same origin, a new session for another, ADDR=IPV6: and
// NAME=[UNAVAILABLE]), nothing sent without
// the option or when the MTA does not offer XCLIENT, a refused XCLIENT. Then the
// real Postfix of scripts/servers/postfix.sh (POPGATE_TEST_POSTFIX_*: fails,
// never skips, without): its log names the original host as client=, a message
// without an origin after one with comes from 127.0.0.1 again, an IPv6 ADDR it
// refuses (inet_protocols = ipv4) leaves that message as without, and without the
// option every message comes from 127.0.0.1 though Postfix offers XCLIENT.
#define BOOST_TEST_MODULE xclient
#include "plugin/net/reinject.h"
#include "tests/support/fake_pop3_server.h"
#include "tests/support/testsupport.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <regex>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;
using Kind = SmtpResult::Kind;

namespace
{

SmtpTarget targetFor(int port, bool xclient)
{
    SmtpTarget t;
    t.port = port;
    t.helo = "gw.test";
    t.timeout = std::chrono::milliseconds(5000);
    t.xclient = xclient;
    return t;
}

SmtpMessage message(const std::string& rcpt, const std::string& text,
                    std::optional<ReceivedOrigin> origin)
{
    SmtpMessage m;
    m.sender = "a@x.test";
    m.recipients = {rcpt};
    m.origin = std::move(origin);
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

const ReceivedOrigin kOriginA{"192.0.2.10", false, "mail.example.org"};
const ReceivedOrigin kOriginB{"2001:db8::25", true, ""};

const std::string kGreeting = "220 mta.test ESMTP\r\n";
const std::string kEhloXclient =
    "250-mta.test\r\n250-PIPELINING\r\n250-XCLIENT NAME ADDR PROTO "
    "HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT\r\n250 8BITMIME\r\n";
const std::string kEhloPlain = "250-mta.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";

} // namespace

BOOST_AUTO_TEST_SUITE(scripted)

BOOST_AUTO_TEST_CASE(without_the_option_no_xclient_is_sent)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloXclient), // offered, and still not used
        expect("MAIL FROM:<a@x.test>"),
        expect("RCPT TO:<desk@example.com>"),
        expect("DATA"),
        send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
        expect("one"),
        expect("."),
        send("250 Ok: queued as A1\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpReinjector r(targetFor(mta.port(), false));
    const auto results = r.deliverMany({message("desk@example.com", "one\r\n", kOriginA)});
    r.close();
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 1u);
    BOOST_TEST((results[0].kind == Kind::Accepted));
    for (const auto& line : mta.received())
        BOOST_TEST(line.rfind("XCLIENT", 0) != 0, line);
}

BOOST_AUTO_TEST_CASE(xclient_between_transactions_then_ehlo_again_once_per_origin)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloXclient),
        expect("XCLIENT ADDR=192.0.2.10 NAME=mail.example.org"),
        nothingPending(), // a command that resets the session waits for its reply
        send("220 mta.test ESMTP\r\n"),
        expect("EHLO gw.test"),
        nothingPending(),
        send(kEhloXclient),
        expect("MAIL FROM:<a@x.test>"),
        expect("RCPT TO:<one@example.com>"),
        expect("DATA"),
        send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
        expect("one"),
        expect("."),
        // the same origin: no XCLIENT, the envelope travels with the dot
        expect("MAIL FROM:<a@x.test>"),
        expect("RCPT TO:<two@example.com>"),
        expect("DATA"),
        send("250 Ok: queued as A1\r\n250 Ok\r\n250 Ok\r\n354 go\r\n"),
        expect("two"),
        expect("."),
        // another origin: the dot is answered first, then a new session (Postfix
        // authorizes a second XCLIENT against the client the first one named)
        nothingPending(),
        send("250 Ok: queued as A2\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpTarget t = targetFor(mta.port(), true);
    t.timeout = std::chrono::milliseconds(1000); // the script takes no second session
    SmtpReinjector r(t);
    const auto results = r.deliverMany({message("one@example.com", "one\r\n", kOriginA),
                                        message("two@example.com", "two\r\n", kOriginA),
                                        message("three@example.com", "three\r\n", kOriginB)});
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 3u);
    for (std::size_t i = 0; i < 2; ++i) {
        BOOST_TEST((results[i].kind == Kind::Accepted), i);
        BOOST_TEST(results[i].queueId == "A" + std::to_string(i + 1));
    }
    BOOST_TEST((results[2].kind == Kind::Unreachable), "the new session: " << results[2].command);
}

BOOST_AUTO_TEST_CASE(ipv6_and_no_name)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloXclient),
        expect("XCLIENT ADDR=IPV6:2001:db8::25 NAME=[UNAVAILABLE]"),
        send("220 mta.test ESMTP\r\n"),
        expect("EHLO gw.test"),
        send(kEhloPlain),
        expect("MAIL FROM:<a@x.test>"),
        expect("RCPT TO:<three@example.com>"),
        expect("DATA"),
        send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
        expect("three"),
        expect("."),
        send("250 Ok: queued as A3\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpReinjector r(targetFor(mta.port(), true));
    const auto results = r.deliverMany({message("three@example.com", "three\r\n", kOriginB)});
    r.close();
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 1u);
    BOOST_TEST((results[0].kind == Kind::Accepted));
}

BOOST_AUTO_TEST_CASE(an_mta_that_does_not_offer_xclient_gets_none)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloPlain),
        expect("MAIL FROM:<a@x.test>"),
        expect("RCPT TO:<desk@example.com>"),
        expect("DATA"),
        send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
        expect("one"),
        expect("."),
        send("250 Ok: queued as A1\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpReinjector r(targetFor(mta.port(), true));
    const auto results = r.deliverMany({message("desk@example.com", "one\r\n", kOriginA)});
    BOOST_TEST(!r.xclientOffered());
    r.close();
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 1u);
    BOOST_TEST((results[0].kind == Kind::Accepted));
}

BOOST_AUTO_TEST_CASE(a_refused_xclient_leaves_the_message_as_without_it)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloXclient),
        expect("XCLIENT ADDR=192.0.2.10 NAME=mail.example.org"),
        send("550 5.7.0 Error: insufficient authorization\r\n"),
        expect("MAIL FROM:<a@x.test>"), // the session as it was: our own address
        expect("RCPT TO:<desk@example.com>"),
        expect("DATA"),
        send("250 Ok\r\n250 Ok\r\n354 go\r\n"),
        expect("one"),
        expect("."),
        send("250 Ok: queued as A1\r\n"),
        expect("QUIT"),
        send("221 bye\r\n"),
    });
    SmtpReinjector r(targetFor(mta.port(), true));
    const auto results = r.deliverMany({message("desk@example.com", "one\r\n", kOriginA)});
    r.close();
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 1u);
    BOOST_TEST((results[0].kind == Kind::Accepted));
    BOOST_TEST(results[0].xclientRefused.find("550 5.7.0") != std::string::npos,
               results[0].xclientRefused);
}

BOOST_AUTO_TEST_CASE(xclient_refused_with_421_is_no_session)
{
    FakePop3Server mta({
        send(kGreeting),
        expect("EHLO gw.test"),
        send(kEhloXclient),
        expect("XCLIENT ADDR=192.0.2.10 NAME=mail.example.org"),
        send("421 4.3.0 closing\r\n"),
        awaitClose(),
    });
    SmtpReinjector r(targetFor(mta.port(), true));
    const auto results = r.deliverMany({message("desk@example.com", "one\r\n", kOriginA),
                                        message("desk@example.com", "two\r\n", kOriginA)});
    BOOST_TEST(mta.finish() == "");
    BOOST_TEST_REQUIRE(results.size() == 1u, "the second was not attempted");
    BOOST_TEST((results[0].kind == Kind::Unreachable), "the session's trouble: not failed");
    BOOST_TEST(results[0].command == "XCLIENT");
    for (const auto& line : mta.received())
        BOOST_TEST(line.rfind("MAIL", 0) != 0, line);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(postfix)

namespace
{

struct PostfixEnv {
    std::string host = requireEnv("POPGATE_TEST_POSTFIX_HOST");
    int reinjectPort = std::stoi(requireEnv("POPGATE_TEST_POSTFIX_REINJECT_PORT"));
    std::string domain = requireEnv("POPGATE_TEST_POSTFIX_DOMAIN");
    std::string log = requireEnv("POPGATE_TEST_POSTFIX_LOG");
};

std::string localPart(const std::string& label)
{
    static int counter = 0;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    return "xclient-" + label + "-" + std::to_string(::getpid()) + "-" + std::to_string(ms) + "-" +
           std::to_string(++counter);
}

/// clientOf - what Postfix logged as "QUEUEID: client=..." ("" when nothing came within 8 s).
std::string clientOf(const PostfixEnv& env, const std::string& queueId)
{
    const std::regex pattern(" " + queueId + ": client=([^ ,]+)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    while (std::chrono::steady_clock::now() < deadline) {
        std::istringstream log(readFile(env.log));
        std::smatch m;
        for (std::string line; std::getline(log, line);)
            if (std::regex_search(line, m, pattern))
                return m[1];
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return {};
}

std::vector<SmtpResult> deliver(const PostfixEnv& env, bool xclient,
                                const std::vector<std::optional<ReceivedOrigin>>& origins)
{
    SmtpTarget t;
    t.host = env.host;
    t.port = env.reinjectPort;
    t.helo = "gw.test";
    t.timeout = std::chrono::milliseconds(15000);
    t.xclient = xclient;
    std::vector<SmtpMessage> messages;
    for (std::size_t i = 0; i < origins.size(); ++i) {
        const std::string rcpt = localPart(std::to_string(i)) + "@" + env.domain;
        messages.push_back(message(rcpt,
                                   "From: <a@x.test>\r\nTo: <" + rcpt +
                                       ">\r\nSubject: xclient\r\n\r\nbody " + std::to_string(i) +
                                       "\r\n",
                                   origins[i]));
    }
    SmtpReinjector r(t);
    auto results = r.deliverMany(messages);
    BOOST_TEST(r.xclientOffered(), "the test Postfix offers XCLIENT to 127.0.0.1");
    r.close();
    return results;
}

} // namespace

BOOST_AUTO_TEST_CASE(postfix_logs_the_original_host_as_the_client)
{
    const PostfixEnv env;
    const ReceivedOrigin originC{"198.51.100.7", false, ""};
    const auto results = deliver(env, true, {kOriginA, kOriginA, kOriginB, std::nullopt, originC});
    BOOST_TEST_REQUIRE(results.size() == 5u);
    // The test Postfix runs with inet_protocols = ipv4 and refuses an IPv6 ADDR
    // (501): that message goes from popgated's own address, and says why.
    const std::vector<std::string> expected = {"mail.example.org[192.0.2.10]",
                                               "mail.example.org[192.0.2.10]", "unknown[127.0.0.1]",
                                               "unknown[127.0.0.1]", "unknown[198.51.100.7]"};
    BOOST_TEST(results[2].xclientRefused.find("501") != std::string::npos,
               results[2].xclientRefused);
    for (std::size_t i = 0; i < results.size(); ++i) {
        BOOST_TEST_REQUIRE((results[i].kind == Kind::Accepted),
                           i << ": " << results[i].describe("postfix"));
        BOOST_TEST(clientOf(env, results[i].queueId) == expected[i],
                   i << ": queue id " << results[i].queueId << " in " << env.log);
    }
}

BOOST_AUTO_TEST_CASE(without_the_option_postfix_sees_popgated)
{
    const PostfixEnv env;
    const auto results = deliver(env, false, {kOriginA, kOriginB});
    BOOST_TEST_REQUIRE(results.size() == 2u);
    for (std::size_t i = 0; i < results.size(); ++i) {
        BOOST_TEST_REQUIRE((results[i].kind == Kind::Accepted),
                           i << ": " << results[i].describe("postfix"));
        BOOST_TEST(clientOf(env, results[i].queueId) == "unknown[127.0.0.1]",
                   i << ": queue id " << results[i].queueId << " in " << env.log);
    }
}

BOOST_AUTO_TEST_SUITE_END()
