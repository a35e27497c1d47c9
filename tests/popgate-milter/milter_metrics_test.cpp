// milter_metrics_test - popgate-milter's metrics endpoint
// (milter.metrics_listen, issue [O] item 9): the real milter driven by
// miltertest through one transaction per verdict, then scraped over HTTP; each
// verdict counter must have moved by exactly its transactions, the others not
// at all. The port is the kernel's (127.0.0.1:0), read from the milter's log.
// SQLite in a temp dir; no servers.
#define BOOST_TEST_MODULE milter_metrics
#include "tests/popgate-milter/milter_fixture.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <boost/test/unit_test.hpp>
#include <sstream>

using namespace popgate;
using namespace popgate::test;

namespace
{

// scrape - GET /metrics: the status and the body.
std::pair<int, std::string> scrape(int port, const std::string& path = "/metrics")
{
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(5, 0));
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_GET, path,
                               Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(req);
    Poco::Net::HTTPResponse resp;
    std::istream& in = session.receiveResponse(resp);
    std::ostringstream body;
    Poco::StreamCopier::copyStream(in, body);
    return {resp.getStatus(), body.str()};
}

// sample - the value of "SERIES VALUE" in text, or -1.
long sample(const std::string& text, const std::string& series)
{
    const std::string key = "\n" + series + " ";
    const auto at = ("\n" + text).find(key);
    return at == std::string::npos ? -1 : std::stol(text.substr(at + key.size() - 1));
}

} // namespace

BOOST_AUTO_TEST_CASE(verdict_counters_move)
{
    MilterWorld world("milter.metrics_listen = 127.0.0.1:0\n");
    MilterProcess milter(world);
    const std::regex listening(R"(metrics: listening on 127\.0\.0\.1:(\d+) \(http://)");
    BOOST_TEST_REQUIRE(milter.waitForLog(listening), milter.log());
    std::smatch m;
    const std::string log = milter.log();
    std::regex_search(log, m, listening);
    const int port = std::stoi(m[1]);

    const auto before = scrape(port);
    BOOST_TEST_REQUIRE(before.first == 200);
    BOOST_TEST(sample(before.second, "popgate_milter_verdicts_total{verdict=\"rejected\"}") == 0);

    using Globals = std::map<std::string, std::string>;
    const auto copy = [&](const char* queueId, const char* atEom) {
        return Globals{{"queueid", queueId},
                       {"daemon", "POPGATE"},
                       {"sender", "<x@bad.com>"},
                       {"from", "<x@bad.com>"},
                       {"hdr1", "X-Popgate-Id: " + world.popgateId("helpdesk", "u1")},
                       {"at_eom", atEom}};
    };
    world.setLedger("u1", MessageState::Injecting);
    const std::vector<std::pair<const char*, Globals>> rows = {
        {"blocked sender: rejected at MAIL FROM",
         {{"queueid", "M1"}, {"sender", "<x@bad.com>"}, {"at_mail", "replycode"}}},
        {"second blocked sender",
         {{"queueid", "M2"}, {"sender", "<y@bad.com>"}, {"at_mail", "replycode"}}},
        {"allowed sender: accepted",
         {{"queueid", "M3"},
          {"sender", "<a@good.org>"},
          {"from", "<a@good.org>"},
          {"at_eom", "accept"}}},
        {"popgated's copy: reinjected", copy("M4", "accept")},
        {"the same copy again: duplicate dropped", copy("M5", "discard")},
    };
    for (const auto& [label, globals] : rows)
        BOOST_TEST_CONTEXT(label)
        {
            const RunResult r = miltertest(milter.port(), globals);
            BOOST_TEST(r.status == 0, r.out << r.err << "\nmilter log:\n" << milter.log());
        }

    const auto after = scrape(port);
    BOOST_TEST_REQUIRE(after.first == 200);
    const std::map<std::string, long> want = {
        {"accepted", 1},   {"rejected", 2},   {"discarded", 0},         {"quarantined", 0},
        {"tagged", 0},     {"reinjected", 1}, {"duplicate_dropped", 1}, {"accepted_unfiltered", 0},
        {"tempfailed", 0},
    };
    for (const auto& [verdict, n] : want)
        BOOST_TEST_CONTEXT(verdict)
        {
            BOOST_TEST(sample(after.second,
                              "popgate_milter_verdicts_total{verdict=\"" + verdict + "\"}") == n,
                       after.second);
        }
    BOOST_TEST(sample(after.second, "popgate_milter_info{version=\"" POPGATE_VERSION "\"}") == 1);
    BOOST_TEST(scrape(port, "/").first == 404);
}
