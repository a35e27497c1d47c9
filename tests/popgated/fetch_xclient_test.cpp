// fetch_xclient_test - reinject.xclient end to end: popgated fetches from the
// real Dovecot and hands each message to the real Postfix with XCLIENT, the
// origin taken from the provider's Received: field reinject.xclient_hop down;
// Postfix logs client= that host. A message whose field is unreadable or
// missing goes from 127.0.0.1, with a log line that shows the field escaped;
// without the option every message goes from 127.0.0.1.
#define BOOST_TEST_MODULE fetch_xclient
#include "tests/popgated/fetch_support.h"

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

using namespace popgate;
using namespace popgate::test;

namespace
{

/// clientOf - what Postfix logged as "QUEUEID: client=..." ("" after 8 s without).
std::string clientOf(const Servers& s, const std::string& queueId)
{
    const std::regex pattern(" " + queueId + ": client=([^ ,]+)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    while (std::chrono::steady_clock::now() < deadline) {
        std::istringstream log(readFile(s.postfixLog));
        std::smatch m;
        for (std::string line; std::getline(log, line);)
            if (std::regex_search(line, m, pattern))
                return m[1];
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return {};
}

const std::string kProviderHop =
    "Received: from mx-in.provider.test (mx-in.provider.test [192.0.2.200])\r\n"
    "\tby store.provider.test with LMTP id 1; Thu, 3 Dec 2026 10:00:01 +0000";

struct Case {
    const char* tag;
    std::string secondReceived; ///< "" for none
    std::string client;         ///< what Postfix must log
};

/// fetchAll - drops one message per case, runs popgated once with the given
/// settings, and returns the ledger's queue id per tag (the Message-ID).
std::map<std::string, std::string> fetchAll(const Servers& s, Gateway& gw,
                                            const std::vector<Case>& cases, RunResult& run)
{
    const std::string to = uniqueAddress("xclient");
    gw.addDovecotAccount("xc", s.user2, to);
    for (const auto& c : cases) {
        std::vector<std::string> head{kProviderHop};
        if (!c.secondReceived.empty())
            head.push_back(c.secondReceived);
        head.push_back("From: a@example.com");
        head.push_back(std::string("Message-ID: <") + c.tag + "@xclient.test>");
        dropMessage(s.maildir2, message(head, std::string("body ") + c.tag + "\r\n"));
    }
    run = gw.once();
    settle();
    std::map<std::string, std::string> queueIds;
    for (const auto& row : gw.ledger("xc"))
        queueIds[row.messageId] = row.state == "injected" ? row.queueId : "";
    return queueIds;
}

} // namespace

BOOST_AUTO_TEST_CASE(postfix_logs_the_host_the_provider_received_from)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    gw.set("reinject.xclient", "yes");
    gw.set("reinject.xclient_hop", "2");
    const std::vector<Case> cases = {
        {"postfix-form",
         "Received: from helo.example.org (mail.example.org [192.0.2.10])\r\n"
         "\tby mx-in.provider.test (Postfix) with ESMTPS id 4ABC; Thu, 3 Dec 2026 10:00:00 +0000",
         "mail.example.org[192.0.2.10]"},
        {"no-reverse-name", "Received: from helo.example.net ([198.51.100.7]) by mx-in",
         "unknown[198.51.100.7]"},
        {"unreadable", "Received: from unknown (HELO evil\x1b[31m) (203.0.113.9) by mx-in",
         "unknown[127.0.0.1]"},
        {"missing", "", "unknown[127.0.0.1]"},
    };
    RunResult run;
    const auto queueIds = fetchAll(s, gw, cases, run);
    BOOST_TEST_REQUIRE(run.status == 0, run.err);
    for (const auto& c : cases) {
        const std::string id = std::string("<") + c.tag + "@xclient.test>";
        BOOST_TEST_CONTEXT(c.tag)
        {
            BOOST_TEST_REQUIRE(queueIds.count(id) == 1u);
            BOOST_TEST_REQUIRE(!queueIds.at(id).empty(), "injected");
            BOOST_TEST(clientOf(s, queueIds.at(id)) == c.client);
        }
    }
    // Why a message went without its origin, the field shown escaped.
    BOOST_TEST(
        run.err.find("xclient=none (Received: field 2 unreadable: from unknown (HELO evil") !=
            std::string::npos,
        run.err);
    BOOST_TEST(run.err.find("xclient=none (Received: field 2 missing)") != std::string::npos,
               run.err);
    BOOST_TEST(run.err.find('\x1b') == std::string::npos, "no raw escape byte in the log");
}

BOOST_AUTO_TEST_CASE(without_the_option_every_message_comes_from_popgated)
{
    Servers s;
    EmptyMailboxes mailbox({s.maildir2});
    Gateway gw(s);
    const std::vector<Case> cases = {
        {"off-postfix-form",
         "Received: from helo.example.org (mail.example.org [192.0.2.10]) by mx-in",
         "unknown[127.0.0.1]"},
    };
    RunResult run;
    const auto queueIds = fetchAll(s, gw, cases, run);
    BOOST_TEST_REQUIRE(run.status == 0, run.err);
    const std::string id = "<off-postfix-form@xclient.test>";
    BOOST_TEST_REQUIRE(queueIds.count(id) == 1u);
    BOOST_TEST(clientOf(s, queueIds.at(id)) == "unknown[127.0.0.1]");
    BOOST_TEST(run.err.find("xclient=") == std::string::npos, run.err);
}
