// milter_postfix_test.cpp - popgate-milter behind the private Postfix of
// scripts/servers/postfix.sh (set-milter points both listeners at it, and the
// suite resets that at the end): a blocked sender gets the 5xx with the reason,
// allowed mail reaches the maildir without forged X-Popgate-* headers, and a
// reinjected copy whose ledger row says injected is discarded. Also the duplicate
// backstop on PostgreSQL. Needs POPGATE_TEST_POSTFIX_* and POPGATE_TEST_PG_CONNECT.
#define BOOST_TEST_MODULE milter_postfix
#include "tests/popgate-milter/milter_fixture.h"

#include <Poco/Net/NetException.h>
#include <Poco/Net/SMTPClientSession.h>
#include <Poco/Path.h>
#include <Poco/Timespan.h>
#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <sstream>
#include <thread>
#include <sys/stat.h>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;
using Poco::Net::SMTPClientSession;

namespace
{

struct PostfixEnv {
    std::string host = requireEnv("POPGATE_TEST_POSTFIX_HOST");
    int smtpPort = std::stoi(requireEnv("POPGATE_TEST_POSTFIX_SMTP_PORT"));
    int reinjectPort = std::stoi(requireEnv("POPGATE_TEST_POSTFIX_REINJECT_PORT"));
    std::string domain = requireEnv("POPGATE_TEST_POSTFIX_DOMAIN");
    std::string maildir = requireEnv("POPGATE_TEST_POSTFIX_MAILDIR");
    std::string log = requireEnv("POPGATE_TEST_POSTFIX_LOG");
    std::string stateDir =
        Poco::Path(requireEnv("POPGATE_TEST_POSTFIX_CONFIG_DIR")).parent().toString();
};

const auto kWait = std::chrono::seconds(8);

/// setMilter - postfix.sh set-milter STATEDIR [SPEC]; fails the test when it fails.
void setMilter(const PostfixEnv& env, const std::string& spec)
{
    std::vector<std::string> args = {"set-milter", env.stateDir};
    if (!spec.empty())
        args.push_back(spec);
    const RunResult r = run(std::string(POPGATE_SOURCE_DIR) + "/scripts/servers/postfix.sh", args);
    BOOST_TEST_REQUIRE(r.status == 0, "postfix.sh set-milter: " << r.out << r.err);
}

/// PostfixWithMilter - popgate-milter started, Postfix pointed at it; undone at the end
/// so that other suites see Postfix without a milter.
/// unixSocketIn - a directory popgate-milter (its user, as root) makes its socket in and
/// Postfix's smtpd reaches (0755; the socket is opened to all below: Postfix's user is
/// not in group popgate-milter here); the --socket argument for it.
std::vector<std::string> unixSocketIn(const TempDir& dir)
{
    if (::geteuid() == 0) {
        const RunResult r = run("/bin/chown", {"popgate-milter:", dir.path()});
        BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    }
    BOOST_TEST_REQUIRE(::chmod(dir.path().c_str(), 0755) == 0);
    return {"--socket=unix:" + dir.file("milter.sock")};
}

struct PostfixWithMilter {
    PostfixEnv env;
    MilterWorld world;
    TempDir socketDir;
    MilterProcess milter;
    /// unixSocket: popgate-milter on a unix socket (SMFIP_NR_HDR, SMFIP_NODATA), else TCP.
    explicit PostfixWithMilter(bool unixSocket = false)
        : milter(world, unixSocket ? unixSocketIn(socketDir) : std::vector<std::string>{})
    {
        if (unixSocket) {
            BOOST_TEST_REQUIRE(::chmod(socketDir.file("milter.sock").c_str(), 0777) == 0);
            setMilter(env, "unix:" + socketDir.file("milter.sock"));
        } else {
            setMilter(env, "inet:127.0.0.1:" + std::to_string(milter.port()));
        }
    }
    ~PostfixWithMilter()
    {
        try {
            setMilter(env, "");
        } catch (...) {
        }
    }
};

std::string uniqueLocal(const std::string& label)
{
    static int counter = 0;
    return "milter-" + label + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

std::string message(const std::string& from, const std::string& to, const std::string& extra)
{
    return "From: " + from + "\r\nTo: <" + to + ">\r\nSubject: popgate-milter through Postfix\r\n" +
           "Date: Mon, 2 Jan 2023 10:00:00 +0000\r\nMessage-ID: <" + std::to_string(::getpid()) +
           "." + to + ">\r\n" + extra + "\r\nbody line\r\n";
}

/// send - one transaction; throws Poco::Net::SMTPException carrying Postfix's reply.
void send(const PostfixEnv& env, int port, const std::string& sender, const std::string& rcpt,
          const std::string& data)
{
    SMTPClientSession session(env.host, static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(30, 0));
    session.login("client.example.net");
    session.sendAddresses(sender, {rcpt});
    session.sendData();
    std::istringstream in(data);
    session.sendMessage(in);
    session.close();
}

/// delivered - the files in MAILDIR/local/new after waiting up to `wait` for one.
std::vector<std::string> delivered(const PostfixEnv& env, const std::string& local,
                                   std::chrono::seconds wait = kWait)
{
    namespace fs = std::filesystem;
    const fs::path dir = fs::path(env.maildir) / local / "new";
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

bool postfixLogged(const PostfixEnv& env, const std::regex& pattern)
{
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    do {
        if (std::regex_search(readFile(env.log), pattern))
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

std::string sentQueueIdOf(const std::string& mail)
{
    std::smatch m;
    return std::regex_search(mail, m, std::regex("with E?SMTP id ([0-9A-F]+)")) ? m[1].str() : "";
}

} // namespace

static void mailFromOutside(PostfixWithMilter& p)
{
    const PostfixEnv& env = p.env;

    BOOST_TEST_CONTEXT("blocked envelope sender: 550 with the reason at MAIL FROM")
    {
        const std::string rcpt = uniqueLocal("blocked") + "@" + env.domain;
        try {
            send(env, env.smtpPort, "x@bad.com", rcpt, message("<x@bad.com>", rcpt, ""));
            BOOST_FAIL("Postfix accepted mail from a blocked sender");
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
            p.milter.waitForLog(std::regex(
                R"(queue-id=NOQUEUE from=<x@bad\.com> action=reject \(sender <x@bad\.com> blocked by system filter "inbound")")),
            p.milter.log());
        BOOST_TEST(postfixLogged(
            env,
            std::regex(R"(milter-reject: MAIL from .*550 5\.7\.1 sender <x@bad\.com> blocked)")));
    }

    BOOST_TEST_CONTEXT("blocked header From: 550 at the end of DATA")
    {
        const std::string rcpt = uniqueLocal("badfrom") + "@" + env.domain;
        try {
            send(env, env.smtpPort, "a@good.org", rcpt, message("Bad <b@bad.com>", rcpt, ""));
            BOOST_FAIL("Postfix accepted mail with a blocked From");
        } catch (const Poco::Net::SMTPException& e) {
            BOOST_TEST(
                e.displayText().find("From <b@bad.com> blocked by system filter \"inbound\"") !=
                    std::string::npos,
                e.displayText());
        }
    }

    BOOST_TEST_CONTEXT("allowed sender with a forged X-Popgate-Id: delivered without it")
    {
        const std::string local = uniqueLocal("allowed");
        const std::string rcpt = local + "@" + env.domain;
        send(env, env.smtpPort, "a@good.org", rcpt,
             message("<a@good.org>", rcpt,
                     "X-Popgate-Id: v1 a=helpdesk u=dTE m=0123\r\nX-Popgate-Note: hi\r\n"));
        const auto mails = delivered(env, local);
        BOOST_TEST_REQUIRE(mails.size() == 1u, "nothing delivered; see " << env.log);
        BOOST_TEST(mails[0].find("X-Popgate-") == std::string::npos, mails[0]);
        BOOST_TEST(mails[0].find("body line") != std::string::npos);
        const std::string queueId = sentQueueIdOf(mails[0]);
        BOOST_TEST(p.milter.waitForLog(
                       std::regex("queue-id=" + queueId +
                                  " from=<a@good\\.org> removed header X-Popgate-Id \\(invalid")),
                   p.milter.log());
        BOOST_TEST(p.milter.waitForLog(
            std::regex("queue-id=" + queueId + " from=<a@good\\.org> action=accept")));
    }
}

BOOST_AUTO_TEST_CASE(mail_from_outside_through_postfix)
{
    PostfixWithMilter p;
    mailFromOutside(p);
}

// On a unix socket the milter asks Postfix not to wait for an answer to each header
// (issue Perf): the header From still blocks at the end, forged fields still go.
BOOST_AUTO_TEST_CASE(mail_from_outside_through_postfix_on_a_unix_socket)
{
    PostfixWithMilter p(true);
    mailFromOutside(p);
}

static void reinjectedCopies(PostfixWithMilter& p)
{
    const PostfixEnv& env = p.env;

    BOOST_TEST_CONTEXT(
        "first copy while the ledger says injecting: delivered with its id, queue id recorded")
    {
        p.world.setLedger("pf-u1", MessageState::Injecting);
        const std::string local = uniqueLocal("copy");
        const std::string rcpt = local + "@" + env.domain;
        // A sender the inbound filter blocks: fetched mail is not filtered twice.
        send(env, env.reinjectPort, "x@bad.com", rcpt,
             message("<x@bad.com>", rcpt,
                     "X-Popgate-Id: " + p.world.popgateId("helpdesk", "pf-u1") + "\r\n"));
        const auto mails = delivered(env, local);
        BOOST_TEST_REQUIRE(mails.size() == 1u, "nothing delivered; see " << env.log);
        BOOST_TEST(mails[0].find("X-Popgate-Id: " + p.world.popgateId("helpdesk", "pf-u1")) !=
                   std::string::npos);
        const std::string queueId = sentQueueIdOf(mails[0]);
        BOOST_TEST(!queueId.empty());
        BOOST_TEST(p.world.seenQueueId("pf-u1") == queueId);
    }

    BOOST_TEST_CONTEXT("a copy whose ledger row says injected: discarded, never in the maildir")
    {
        p.world.setLedger("pf-u2", MessageState::Injected);
        const std::string local = uniqueLocal("dup");
        const std::string rcpt = local + "@" + env.domain;
        send(env, env.reinjectPort, "a@good.org", rcpt,
             message("<a@good.org>", rcpt,
                     "X-Popgate-Id: " + p.world.popgateId("helpdesk", "pf-u2") + "\r\n"));
        std::smatch m;
        BOOST_TEST_REQUIRE(
            p.milter.waitForLog(std::regex(
                R"(queue-id=[0-9A-F]+ from=<a@good\.org> account=helpdesk uidl=pf-u2 action=discard \(duplicate: the ledger says injected\))")),
            p.milter.log());
        const std::string log = p.milter.log();
        BOOST_TEST_REQUIRE(std::regex_search(
            log, m, std::regex("queue-id=([0-9A-F]+) [^\n]*uidl=pf-u2 action=discard")));
        BOOST_TEST(postfixLogged(env, std::regex(m[1].str() + ": milter-discard: END-OF-MESSAGE")));
        BOOST_TEST(delivered(env, local, std::chrono::seconds(2)).empty());
    }
}

BOOST_AUTO_TEST_CASE(reinjected_copies_through_postfix)
{
    PostfixWithMilter p;
    reinjectedCopies(p);
}

// The duplicate backstop with the headers unanswered (unix socket): the X-Popgate-Id
// collected without replies still decides at the end.
BOOST_AUTO_TEST_CASE(reinjected_copies_through_postfix_on_a_unix_socket)
{
    PostfixWithMilter p(true);
    reinjectedCopies(p);
}

BOOST_AUTO_TEST_CASE(duplicate_backstop_on_postgresql)
{
    const std::string connect = requireEnv("POPGATE_TEST_PG_CONNECT");
    const std::string db = "popgate_milter_" + std::to_string(::getpid());
    BOOST_TEST_REQUIRE(run("/usr/bin/env", {"psql", "-q", connect + " dbname=postgres", "-c",
                                            "CREATE DATABASE " + db})
                           .status == 0);
    {
        MilterWorld world("database.driver = postgresql\ndatabase.connect = " + connect +
                          " dbname=" + db + "\n");
        MilterProcess milter(world);
        world.setLedger("pg-u1", MessageState::Injecting);
        auto copy = [&](const char* queueId, const char* atEom) {
            return std::map<std::string, std::string>{
                {"queueid", queueId},
                {"daemon", "POPGATE"},
                {"sender", "<x@bad.com>"},
                {"hdr1", "X-Popgate-Id: " + world.popgateId("helpdesk", "pg-u1")},
                {"at_eom", atEom}};
        };
        RunResult r = miltertest(milter.port(), copy("PG1", "accept"));
        BOOST_TEST(r.status == 0, r.out << r.err << milter.log());
        BOOST_TEST(world.seenQueueId("pg-u1") == "PG1");
        r = miltertest(milter.port(), copy("PG2", "discard"));
        BOOST_TEST(r.status == 0, r.out << r.err << milter.log());
        world.setLedger("pg-u1", MessageState::Injected);
        r = miltertest(milter.port(), copy("PG3", "discard"));
        BOOST_TEST(r.status == 0, r.out << r.err << milter.log());
        r = miltertest(milter.port(),
                       {{"queueid", "PG4"}, {"sender", "<x@bad.com>"}, {"at_mail", "replycode"}});
        BOOST_TEST(r.status == 0, r.out << r.err << milter.log());
        BOOST_TEST(milter.waitForLog(std::regex("queue-id=PG4 from=<x@bad\\.com> action=reject")));
    }
    run("/usr/bin/env", {"psql", "-q", connect + " dbname=postgres", "-c", "DROP DATABASE " + db});
}

BOOST_AUTO_TEST_CASE(every_from_field_through_postfix)
{
    // Issue [H]: the From-based attacks through real Postfix and the milter.
    PostfixWithMilter p;
    const PostfixEnv& env = p.env;
    struct Row {
        const char* label;
        std::string from;  ///< the first From field's body
        std::string extra; ///< more header fields, CRLF-terminated
        const char* reply; ///< part of the 550 reply; "" when it must be delivered
    };
    const std::vector<Row> rows = {
        {"70 000-character From: 550 5.7.1 sender unreadable",
         "\"" + std::string(70000, 'A') + "\" <x@bad.com>", "", "sender unreadable: From field"},
        {"70 000-character From with an allowed address: 550 too",
         "\"" + std::string(70000, 'A') + "\" <a@good.org>", "", "sender unreadable: From field"},
        {"a second From with a blocked address: 550", "<a@good.org>", "From: Bad <b@bad.com>\r\n",
         "From <b@bad.com> blocked by system filter \"inbound\""},
        {"17 From fields: 550", "<a@good.org>",
         [] {
             std::string h;
             for (int i = 0; i < 16; ++i)
                 h += "From: <a@good.org>\r\n";
             return h;
         }(),
         "sender unreadable: more than 16 From fields"},
        {"a Latin-1 display name is delivered", "J\xfcrgen <juergen@good.org>", "", ""},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const std::string local = uniqueLocal("froms");
            const std::string rcpt = local + "@" + env.domain;
            try {
                send(env, env.smtpPort, "a@good.org", rcpt, message(row.from, rcpt, row.extra));
                BOOST_TEST(!*row.reply, "Postfix accepted it");
            } catch (const Poco::Net::SMTPException& e) {
                const std::string reply = e.displayText();
                BOOST_TEST(*row.reply, "refused: " << reply);
                BOOST_TEST(reply.find("550 5.7.1") != std::string::npos, reply);
                BOOST_TEST(reply.find(row.reply) != std::string::npos, reply);
            }
            if (!*row.reply) {
                const auto mails = delivered(env, local);
                BOOST_TEST_REQUIRE(mails.size() == 1u, "nothing delivered; see " << env.log);
                BOOST_TEST(mails[0].find("From: J\xfcrgen <juergen@good.org>") !=
                           std::string::npos);
            }
        }
    }
}
