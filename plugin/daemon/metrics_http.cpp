// metrics_http.cpp - see metrics_http.h. Poco's HTTPServer does the protocol;
// this file bounds it (threads, queue, timeouts, request size) and answers
// /metrics only. The rendering is the registry's (core/metrics.cpp), written
// straight into the chunked response as it is produced.
#include "plugin/daemon/metrics_http.h"

#include "core/errors.h"
#include "core/metrics.h"
#include "core/text.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>
#include <Poco/URI.h>

namespace popgate
{

namespace
{

using Poco::Net::HTTPResponse;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

// requestSize - the octets of the request line and header fields, as received
// (give or take the separators).
std::size_t requestSize(const HTTPServerRequest& request)
{
    std::size_t n =
        request.getMethod().size() + request.getURI().size() + request.getVersion().size() + 4;
    for (const auto& field : request)
        n += field.first.size() + field.second.size() + 4;
    return n;
}

// answer - a short plain-text status reply.
void answer(HTTPServerResponse& response, HTTPResponse::HTTPStatus status, const std::string& text)
{
    response.setStatusAndReason(status);
    response.setContentType("text/plain; charset=utf-8");
    response.setContentLength(static_cast<std::streamsize>(text.size() + 1));
    response.send() << text << '\n';
}

class Handler : public Poco::Net::HTTPRequestHandler
{
public:
    explicit Handler(const MetricsServer::Render& render) : render_(render) {}

    void handleRequest(HTTPServerRequest& request, HTTPServerResponse& response) override
    {
        response.setKeepAlive(false);
        try {
            const bool body = request.getChunkedTransferEncoding() ||
                              (request.hasContentLength() && request.getContentLength64() != 0);
            if (body || requestSize(request) > kMaxMetricsRequest)
                return answer(response, HTTPResponse::HTTP_REQUEST_ENTITY_TOO_LARGE,
                              "request too large");
            if (Poco::URI(request.getURI()).getPath() != "/metrics")
                return answer(response, HTTPResponse::HTTP_NOT_FOUND, "not found; try /metrics");
            if (request.getMethod() != Poco::Net::HTTPRequest::HTTP_GET &&
                request.getMethod() != Poco::Net::HTTPRequest::HTTP_HEAD) {
                response.set("Allow", "GET, HEAD");
                return answer(response, HTTPResponse::HTTP_METHOD_NOT_ALLOWED,
                              "method not allowed");
            }
            response.setStatusAndReason(HTTPResponse::HTTP_OK);
            response.setContentType(kMetricsContentType);
            response.setChunkedTransferEncoding(true);
            std::ostream& out = response.send();
            if (request.getMethod() == Poco::Net::HTTPRequest::HTTP_GET)
                render_(out);
        } catch (const Poco::SyntaxException&) { // a URI Poco cannot read
            if (!response.sent())
                answer(response, HTTPResponse::HTTP_NOT_FOUND, "not found; try /metrics");
        } catch (const std::exception&) {
            // The client went away or timed out mid-answer: nothing to tell it.
        }
    }

private:
    const MetricsServer::Render& render_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory
{
public:
    explicit Factory(MetricsServer::Render render) : render_(std::move(render)) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override
    {
        return new Handler(render_);
    }

private:
    MetricsServer::Render render_;
};

std::uint16_t portOf(const std::string& key, const std::string& value, const std::string& text)
{
    try {
        return static_cast<std::uint16_t>(parseInteger(text, 0, 65535));
    } catch (const InputError&) {
        throw InputError(key + ": port must be 0-65535 (got '" + flatten(value) + "')");
    }
}

} // namespace

std::optional<Poco::Net::SocketAddress> parseMetricsListen(const std::string& key,
                                                           const std::string& value)
{
    const std::string v = trim(value);
    if (v.empty())
        return std::nullopt;
    const Poco::Net::IPAddress loopback("127.0.0.1");
    if (v.find(':') == std::string::npos)
        return Poco::Net::SocketAddress(loopback, portOf(key, value, v));
    if (v.front() == ':')
        return Poco::Net::SocketAddress(loopback, portOf(key, value, v.substr(1)));
    std::string host, port;
    if (v.front() == '[') {
        const auto close = v.find("]:");
        if (close == std::string::npos)
            throw InputError(key + ": expected [IPv6]:PORT (got '" + flatten(value) + "')");
        host = v.substr(1, close - 1);
        port = v.substr(close + 2);
    } else {
        const auto colon = v.rfind(':');
        host = v.substr(0, colon);
        port = v.substr(colon + 1);
        if (host.find(':') != std::string::npos)
            throw InputError(key + ": an IPv6 address goes in brackets, [ADDRESS]:PORT (got '" +
                             flatten(value) + "')");
    }
    if (host == "localhost")
        return Poco::Net::SocketAddress(loopback, portOf(key, value, port));
    Poco::Net::IPAddress address;
    if (!Poco::Net::IPAddress::tryParse(host, address) ||
        (v.front() == '[') != (address.family() == Poco::Net::IPAddress::IPv6))
        throw InputError(key + ": '" + flatten(host) +
                         "' is not an IP address (write ADDRESS:PORT with a literal address, "
                         "or PORT alone for 127.0.0.1)");
    return Poco::Net::SocketAddress(address, portOf(key, value, port));
}

MetricsServer::MetricsServer(const std::string& key, const Poco::Net::SocketAddress& address,
                             Render render, std::chrono::seconds timeout)
{
    Poco::Net::ServerSocket socket;
    try {
        // SO_REUSEADDR for a quick restart; never SO_REUSEPORT (Poco's default), which
        // would let another process of this user listen on the same port.
        socket.bind(address, true, false);
        socket.listen(16);
    } catch (const Poco::Exception& e) {
        throw OperationError(key + " " + address.toString() +
                             ": cannot listen: " + flatten(e.displayText()));
    }
    bound_ = socket.address();
    auto params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(2);
    params->setMaxQueued(8);
    params->setThreadIdleTime(Poco::Timespan(60, 0));
    params->setTimeout(Poco::Timespan(static_cast<long>(timeout.count()), 0)); // each read, write
    params->setKeepAlive(false);
    params->setServerName("popgate");
    params->setSoftwareVersion("popgate");
    threads_ = std::make_unique<Poco::ThreadPool>(1, 2, 60);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(std::move(render)), *threads_,
                                                      socket, params);
    server_->start();
}

MetricsServer::~MetricsServer()
{
    server_->stopAll(true);
    threads_->joinAll();
}

std::unique_ptr<MetricsServer> startMetrics(const Config& config, const std::string& key,
                                            MetricsServer::Render render, Poco::Logger& log)
{
    const auto address = parseMetricsListen(key, config.str(key));
    if (!address)
        return nullptr;
    auto server = std::make_unique<MetricsServer>(key, *address, std::move(render));
    const std::string where = server->address().toString();
    log.notice("metrics: listening on " + where + " (http://" + where +
               "/metrics, no authentication)");
    if (!server->address().host().isLoopback())
        log.warning("metrics: " + key + " = " + config.str(key) +
                    " is not a loopback address: anyone who can reach it reads the metrics "
                    "(account names included)");
    return server;
}

} // namespace popgate
