// milter_sendmail_test.cpp - popgate-milter behind a real Sendmail (Debian's
// 8.17, extracted into a scratch root by scripts/servers/sendmail.sh, which the
// suite starts and stops itself) configured with conf/sendmail/popgate-milter.m4
// as shipped, only its socket pointed at the test milter: what the Postfix suite
// checks. A blocked envelope sender gets the 5xx with the reason at MAIL FROM, a
// blocked header From at the end of DATA, allowed mail is delivered without
// forged X-Popgate-* headers, milter.action = tag adds X-Popgate-Filter to
// blocked mail and lets it through, and on the POPGATE listener (the snippet's
// DAEMON_OPTIONS, {daemon_name}=POPGATE) a reinjected copy is recorded and one
// whose ledger row says injected is discarded. Fails, never skips, when the
// Sendmail .debs are missing (scripts/install-deps.sh fetches them).
#define BOOST_TEST_MODULE milter_sendmail
#include "tests/popgate-milter/milter_fixture.h"

#include <Poco/Net/NetException.h>
#include <Poco/Net/SMTPClientSession.h>
#include <Poco/Timespan.h>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;
using Poco::Net::SMTPClientSession;

namespace
{

const auto kWait = std::chrono::seconds(8);

std::string script()
{
    return std::string(POPGATE_SOURCE_DIR) + "/scripts/servers/sendmail.sh";
}

/// envValue - NAME's value in a sendmail.sh env file ("export NAME=value" lines).
std::string envValue(const std::string& env, const std::string& name)
{
    std::istringstream in(env);
    const std::string prefix = "export " + name + "=";
    for (std::string line; std::getline(in, line);)
        if (line.rfind(prefix, 0) == 0)
            return line.substr(prefix.size());
    BOOST_FAIL("sendmail.sh wrote no " << name);
    return {};
}

/// SendmailWithMilter - popgate-milter, and a Sendmail started for it (stopped at the end).
struct SendmailWithMilter {
    MilterWorld world;
    MilterProcess milter{world};
    explicit SendmailWithMilter(const std::string& extraConfig = "") : world(extraConfig)
    {
        start();
    }
    TempDir state;
    std::string host;
    int smtpPort = 0;
    int reinjectPort = 0;
    std::string domain;
    std::string maildir;

    void start()
    {
        const RunResult r = run(script(), {"start", state.path() + "/sendmail"}, "",
                                {{"POPGATE_TEST_SENDMAIL_MILTER",
                                  "inet:" + std::to_string(milter.port()) + "@127.0.0.1"}});
        BOOST_TEST_REQUIRE(r.status == 0, "sendmail.sh start: " << r.out << r.err);
        const std::string env = readFile(state.path() + "/sendmail/env");
        host = envValue(env, "POPGATE_TEST_SENDMAIL_HOST");
        smtpPort = std::stoi(envValue(env, "POPGATE_TEST_SENDMAIL_SMTP_PORT"));
        reinjectPort = std::stoi(envValue(env, "POPGATE_TEST_SENDMAIL_REINJECT_PORT"));
        domain = envValue(env, "POPGATE_TEST_SENDMAIL_DOMAIN");
        maildir = envValue(env, "POPGATE_TEST_SENDMAIL_MAILDIR");
    }
    ~SendmailWithMilter() { run(script(), {"stop", state.path() + "/sendmail"}); }
};

std::string uniqueLocal(const std::string& label)
{
    static int counter = 0;
    return "milter-" + label + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

std::string message(const std::string& from, const std::string& to, const std::string& extra)
{
    return "From: " + from + "\r\nTo: <" + to +
           ">\r\nSubject: popgate-milter through Sendmail\r\n" +
           "Date: Mon, 2 Jan 2023 10:00:00 +0000\r\nMessage-ID: <" + std::to_string(::getpid()) +
           "." + to + ">\r\n" + extra + "\r\nbody line\r\n";
}

/// send - one transaction; throws Poco::Net::SMTPException carrying Sendmail's reply.
void send(const SendmailWithMilter& s, int port, const std::string& sender, const std::string& rcpt,
          const std::string& data)
{
    SMTPClientSession session(s.host, static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(30, 0));
    session.login("client.example.net");
    session.sendAddresses(sender, {rcpt});
    session.sendData();
    std::istringstream in(data);
    session.sendMessage(in);
    session.close();
}

/// delivered - the files in MAILDIR/local/new after waiting up to `wait` for one.
std::vector<std::string> delivered(const SendmailWithMilter& s, const std::string& local,
                                   std::chrono::seconds wait = kWait)
{
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(s.maildir) / local / "new";
    const auto deadline = std::chrono::steady_clock::now() + wait;
    std::vector<std::string> out;
    do {
        std::error_code ec;
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
            out.push_back(readFile(it->path().string()));
        if (!out.empty())
            return out;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return out;
}

/// queueIdOf - Sendmail's queue id from its Received: field ("with ESMTP id X").
std::string queueIdOf(const std::string& mail)
{
    std::smatch m;
    return std::regex_search(mail, m, std::regex("with E?SMTPS?A? id ([0-9A-Za-z]+)")) ? m[1].str()
                                                                                       : "";
}

} // namespace

BOOST_AUTO_TEST_CASE(mail_from_outside_through_sendmail)
{
    SendmailWithMilter s;

    BOOST_TEST_CONTEXT("blocked envelope sender: 550 with the reason at MAIL FROM")
    {
        const std::string rcpt = uniqueLocal("blocked") + "@" + s.domain;
        try {
            send(s, s.smtpPort, "x@bad.com", rcpt, message("<x@bad.com>", rcpt, ""));
            BOOST_FAIL("Sendmail accepted mail from a blocked sender");
        } catch (const Poco::Net::SMTPException& e) {
            const std::string reply = e.displayText();
            BOOST_TEST(reply.find("550 5.7.1") != std::string::npos, reply);
            BOOST_TEST(
                reply.find(
                    R"(sender <x@bad.com> blocked by system filter "inbound", address filter "spam" (deny, domain bad.com))") !=
                    std::string::npos,
                reply);
        }
        BOOST_TEST(
            s.milter.waitForLog(std::regex(
                R"(from=<x@bad\.com> action=reject \(sender <x@bad\.com> blocked by system filter "inbound")")),
            s.milter.log());
    }

    BOOST_TEST_CONTEXT("blocked header From: 550 at the end of DATA")
    {
        const std::string local = uniqueLocal("badfrom");
        const std::string rcpt = local + "@" + s.domain;
        try {
            send(s, s.smtpPort, "a@good.org", rcpt, message("Bad <b@bad.com>", rcpt, ""));
            BOOST_FAIL("Sendmail accepted mail with a blocked From");
        } catch (const Poco::Net::SMTPException& e) {
            BOOST_TEST(e.displayText().find("550") != std::string::npos, e.displayText());
            BOOST_TEST(
                e.displayText().find("From <b@bad.com> blocked by system filter \"inbound\"") !=
                    std::string::npos,
                e.displayText());
        }
        BOOST_TEST(delivered(s, local, std::chrono::seconds(1)).empty());
    }

    BOOST_TEST_CONTEXT("allowed sender with a forged X-Popgate-Id: delivered without it")
    {
        const std::string local = uniqueLocal("allowed");
        const std::string rcpt = local + "@" + s.domain;
        send(s, s.smtpPort, "a@good.org", rcpt,
             message("<a@good.org>", rcpt,
                     "X-Popgate-Id: v1 a=helpdesk u=dTE m=0123\r\nX-Popgate-Note: hi\r\n"));
        const auto mails = delivered(s, local);
        BOOST_TEST_REQUIRE(mails.size() == 1u, "nothing delivered to " << s.maildir);
        BOOST_TEST(mails[0].find("X-Popgate-") == std::string::npos, mails[0]);
        BOOST_TEST(mails[0].find("body line") != std::string::npos);
        const std::string queueId = queueIdOf(mails[0]);
        BOOST_TEST_REQUIRE(!queueId.empty(), mails[0]);
        BOOST_TEST(s.milter.waitForLog(
                       std::regex("queue-id=" + queueId +
                                  " from=<a@good\\.org> removed header X-Popgate-Id \\(invalid")),
                   s.milter.log());
        BOOST_TEST(s.milter.waitForLog(
                       std::regex("queue-id=" + queueId + " from=<a@good\\.org> action=accept")),
                   s.milter.log());
    }
}

BOOST_AUTO_TEST_CASE(reinjected_copies_through_sendmail)
{
    SendmailWithMilter s;

    BOOST_TEST_CONTEXT(
        "first copy while the ledger says injecting: delivered with its id, queue id recorded")
    {
        s.world.setLedger("sm-u1", MessageState::Injecting);
        const std::string local = uniqueLocal("copy");
        const std::string rcpt = local + "@" + s.domain;
        // A sender the inbound filter blocks: fetched mail is not filtered twice.
        send(s, s.reinjectPort, "x@bad.com", rcpt,
             message("<x@bad.com>", rcpt,
                     "X-Popgate-Id: " + s.world.popgateId("helpdesk", "sm-u1") + "\r\n"));
        const auto mails = delivered(s, local);
        BOOST_TEST_REQUIRE(mails.size() == 1u, "nothing delivered; milter log: " << s.milter.log());
        BOOST_TEST(mails[0].find("X-Popgate-Id: " + s.world.popgateId("helpdesk", "sm-u1")) !=
                   std::string::npos);
        const std::string queueId = queueIdOf(mails[0]);
        BOOST_TEST(!queueId.empty());
        BOOST_TEST(s.world.seenQueueId("sm-u1") == queueId);
    }

    BOOST_TEST_CONTEXT("a copy whose ledger row says injected: discarded, never in the maildir")
    {
        s.world.setLedger("sm-u2", MessageState::Injected);
        const std::string local = uniqueLocal("dup");
        const std::string rcpt = local + "@" + s.domain;
        send(s, s.reinjectPort, "a@good.org", rcpt,
             message("<a@good.org>", rcpt,
                     "X-Popgate-Id: " + s.world.popgateId("helpdesk", "sm-u2") + "\r\n"));
        BOOST_TEST(
            s.milter.waitForLog(std::regex(
                R"(from=<a@good\.org> account=helpdesk uidl=sm-u2 action=discard \(duplicate: the ledger says injected\))")),
            s.milter.log());
        BOOST_TEST(delivered(s, local, std::chrono::seconds(2)).empty());
    }
}

BOOST_AUTO_TEST_CASE(tagged_through_sendmail)
{
    SendmailWithMilter s("milter.action = tag\n");
    const std::string local = uniqueLocal("tagged");
    const std::string rcpt = local + "@" + s.domain;
    send(s, s.smtpPort, "x@bad.com", rcpt, message("<x@bad.com>", rcpt, ""));
    const auto mails = delivered(s, local);
    BOOST_TEST_REQUIRE(mails.size() == 1u, "nothing delivered; milter log: " << s.milter.log());
    BOOST_TEST(mails[0].find("X-Popgate-Filter: ") != std::string::npos, mails[0]);
    BOOST_TEST(mails[0].find("blocked by system filter") != std::string::npos, mails[0]);
    const std::string queueId = queueIdOf(mails[0]);
    BOOST_TEST(
        s.milter.waitForLog(std::regex("queue-id=" + queueId + " from=<x@bad\\.com> action=tag")),
        s.milter.log());
}
