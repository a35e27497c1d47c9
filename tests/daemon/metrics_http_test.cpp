// metrics_http_test - plugin/daemon/metrics_http.cpp: what *metrics_listen
// accepts (one row per form, loopback unless an address is written out), and
// the endpoint on a free loopback port: /metrics answered with the registry's
// text, any other path 404, a body or a request over 4 KiB 413, other methods
// 405, an idle client dropped after the timeout while another scrape goes
// through, at most two handler threads, an address in use refused, and ten
// thousand accounts served whole.
#define BOOST_TEST_MODULE metrics_http
#include "core/errors.h"
#include "core/metrics.h"
#include "plugin/daemon/metrics_http.h"

#include <Poco/DirectoryIterator.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <sstream>
#include <thread>

using namespace popgate;
using Poco::Net::HTTPRequest;
using Poco::Net::HTTPResponse;

namespace
{

struct ListenRow {
    const char* label;
    const char* value;
    const char* address; ///< SocketAddress::toString(); "" off; nullptr refused
};

const ListenRow kListen[] = {
    {"empty: off", "", ""},
    {"blank: off", "  ", ""},
    {"port alone: loopback", "9154", "127.0.0.1:9154"},
    {":port: loopback, never every interface", ":9154", "127.0.0.1:9154"},
    {"localhost: 127.0.0.1 without DNS", "localhost:9154", "127.0.0.1:9154"},
    {"loopback written out", "127.0.0.1:9154", "127.0.0.1:9154"},
    {"IPv6 loopback", "[::1]:9154", "[::1]:9154"},
    {"port 0: a free port", "127.0.0.1:0", "127.0.0.1:0"},
    {"every interface only when written out", "0.0.0.0:9154", "0.0.0.0:9154"},
    {"host name refused (no DNS at start)", "metrics.example:9154", nullptr},
    {"IPv6 without brackets refused", "::1:9154", nullptr},
    {"IPv4 in brackets refused", "[127.0.0.1]:9154", nullptr},
    {"port over 65535", "127.0.0.1:70000", nullptr},
    {"port missing", "127.0.0.1:", nullptr},
    {"port not a number", "abc", nullptr},
    {"negative port", "-1", nullptr},
    {"brackets without port", "[::1]9154", nullptr},
};

/// Reply - status, Content-Type and body of one request.
struct Reply {
    int status = 0;
    std::string type;
    std::string body;
};

Reply request(const Poco::Net::SocketAddress& at, const std::string& method, const std::string& uri,
              const std::string& body = "",
              const std::vector<std::pair<std::string, std::string>>& fields = {})
{
    Poco::Net::HTTPClientSession session(at);
    session.setTimeout(Poco::Timespan(5, 0));
    HTTPRequest req(method, uri, HTTPRequest::HTTP_1_1);
    for (const auto& [name, value] : fields)
        req.set(name, value);
    if (!body.empty())
        req.setContentLength(static_cast<std::streamsize>(body.size()));
    session.sendRequest(req) << body;
    HTTPResponse resp;
    std::istream& in = session.receiveResponse(resp);
    Reply r;
    r.status = resp.getStatus();
    r.type = resp.getContentType();
    std::ostringstream text;
    Poco::StreamCopier::copyStream(in, text);
    r.body = text.str();
    return r;
}

int threads()
{
    int n = 0;
    for (Poco::DirectoryIterator it(std::string("/proc/self/task")), end; it != end; ++it)
        ++n;
    return n;
}

MetricsServer::Render kRender = [](std::ostream& out) {
    out << "# TYPE test_total counter\ntest_total 7\n";
};

const Poco::Net::SocketAddress kAnyLoopbackPort("127.0.0.1", 0);

} // namespace

BOOST_AUTO_TEST_CASE(listen_forms)
{
    for (const ListenRow& row : kListen)
        BOOST_TEST_CONTEXT(row.label << " (" << row.value << ")")
        {
            if (!row.address) {
                BOOST_CHECK_THROW(parseMetricsListen("metrics_listen", row.value), InputError);
                continue;
            }
            const auto a = parseMetricsListen("metrics_listen", row.value);
            BOOST_TEST(a.has_value() == (*row.address != '\0'));
            if (a)
                BOOST_TEST(a->toString() == row.address);
        }
    try {
        parseMetricsListen("milter.metrics_listen", "mx.example:1");
    } catch (const InputError& e) {
        BOOST_TEST(std::string(e.what()).rfind("milter.metrics_listen: ", 0) == 0, e.what());
    }
}

BOOST_AUTO_TEST_CASE(answers_metrics_only)
{
    MetricsServer server("metrics_listen", kAnyLoopbackPort, kRender);
    const auto at = server.address();
    BOOST_TEST_REQUIRE(at.port() != 0);

    Reply r = request(at, "GET", "/metrics");
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.type == "text/plain; version=0.0.4; charset=utf-8");
    BOOST_TEST(r.body == "# TYPE test_total counter\ntest_total 7\n");
    BOOST_TEST(request(at, "GET", "/metrics?name[]=x").status == 200, "a query is ignored");
    BOOST_TEST(request(at, "HEAD", "/metrics").body.empty());

    struct Bad {
        const char* label;
        std::string method, uri, body;
        std::vector<std::pair<std::string, std::string>> fields;
        int status;
    };
    const Bad bad[] = {
        {"root", "GET", "/", "", {}, 404},
        {"another path", "GET", "/metrics/x", "", {}, 404},
        {"prefix only", "GET", "/metricsx", "", {}, 404},
        {"path traversal", "GET", "/../metrics/../etc/passwd", "", {}, 404},
        {"a body", "POST", "/metrics", "x=1", {}, 413},
        {"a header field over 4 KiB",
         "GET",
         "/metrics",
         "",
         {{"X-Big", std::string(5000, 'a')}},
         413},
        {"many small fields over 4 KiB", "GET", "/metrics", "",
         [] {
             std::vector<std::pair<std::string, std::string>> f;
             for (int i = 0; i < 60; ++i)
                 f.emplace_back("X-F" + std::to_string(i), std::string(80, 'b'));
             return f;
         }(),
         413},
        {"a URI over 4 KiB", "GET", "/metrics?" + std::string(5000, 'q'), "", {}, 413},
        {"PUT without a body", "PUT", "/metrics", "", {}, 405},
    };
    for (const Bad& b : bad)
        BOOST_TEST_CONTEXT(b.label)
        {
            BOOST_TEST(request(at, b.method, b.uri, b.body, b.fields).status == b.status);
        }
}

BOOST_AUTO_TEST_CASE(idle_clients_bounded)
{
    const int before = threads();
    MetricsServer server("metrics_listen", kAnyLoopbackPort, kRender, std::chrono::seconds(1));
    // Five clients that connect and say nothing: two hold the handler threads,
    // the rest wait in the queue; none makes another thread.
    std::vector<Poco::Net::StreamSocket> idle;
    for (int i = 0; i < 5; ++i)
        idle.emplace_back(server.address());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    BOOST_TEST(threads() - before <= 3, "the dispatcher and two handlers at most");
    // Each idle client is dropped after the 1 s timeout; the scrape behind them is answered.
    const auto t0 = std::chrono::steady_clock::now();
    BOOST_TEST(request(server.address(), "GET", "/metrics").status == 200);
    BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)),
               "answered behind the idle clients");
    for (auto& s : idle) {
        s.setReceiveTimeout(Poco::Timespan(5, 0));
        char c;
        int n = -1;
        try {
            n = s.receiveBytes(&c, 1);
        } catch (const Poco::Exception&) {
            n = 0; // reset: dropped all the same
        }
        BOOST_TEST(n <= 0, "an idle client is dropped");
    }
}

BOOST_AUTO_TEST_CASE(address_in_use_refused)
{
    MetricsServer first("metrics_listen", kAnyLoopbackPort, kRender);
    try {
        MetricsServer second("milter.metrics_listen", first.address(), kRender);
        BOOST_FAIL("a second server on " << first.address().toString());
    } catch (const OperationError& e) {
        BOOST_TEST(std::string(e.what()).rfind("milter.metrics_listen 127.0.0.1:", 0) == 0,
                   e.what());
        BOOST_TEST(std::string(e.what()).find("cannot listen") != std::string::npos, e.what());
    }
}

// Ten thousand accounts over HTTP: the whole text arrives (chunked, written as it
// is rendered); the time is printed for the record, not judged.
BOOST_AUTO_TEST_CASE(ten_thousand_accounts_scraped)
{
    FetchMetrics registry;
    for (int i = 0; i < 10000; ++i)
        registry.account("account-" + std::to_string(i)).countMessages({i, 0, 0, 0, i});
    std::ostringstream expected;
    registry.render(expected);
    MetricsServer server("metrics_listen", kAnyLoopbackPort,
                         [&registry](std::ostream& out) { registry.render(out); });
    const auto t0 = std::chrono::steady_clock::now();
    const Reply r = request(server.address(), "GET", "/metrics");
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body.size() == expected.str().size());
    BOOST_TEST((r.body == expected.str()));
    BOOST_TEST_MESSAGE("10000 accounts scraped over HTTP: " << r.body.size() << " octets in " << ms
                                                            << " ms");
}
