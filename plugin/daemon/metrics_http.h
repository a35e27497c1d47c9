// metrics_http.h - the small HTTP endpoint both daemons serve their Prometheus
// metrics on (core/metrics.h renders them): GET /metrics and nothing else, on
// Poco::Net::HTTPServer with at most two threads, no keep-alive, a 5 s timeout
// for each read and write, and a request of more than 4 KiB refused.
// SECURITY: no authentication and no TLS: it listens on loopback unless the
// operator writes another address out in full. Start it after leaveRoot: it
// never runs as root, so a port below 1024 cannot be bound.
#pragma once

#include "core/config.h"

#include <Poco/Logger.h>
#include <Poco/Net/SocketAddress.h>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

namespace Poco::Net
{
class HTTPServer;
}
namespace Poco
{
class ThreadPool;
}

namespace popgate
{

/// kMaxMetricsRequest - the largest request (request line and header fields) answered;
/// a larger one gets 413, and so does one with a body.
constexpr std::size_t kMaxMetricsRequest = 4096;

/// parseMetricsListen - the value of a *metrics_listen key: "" is off (nullopt); "PORT"
/// or ":PORT" is 127.0.0.1:PORT; "ADDRESS:PORT" with an IPv4 address, "[IPv6]:PORT", or
/// "localhost:PORT" (127.0.0.1) is that address. PORT 0 takes a free port (named in the
/// log line). A host name other than localhost is refused (no DNS at start). Throws
/// InputError "KEY: ..." for anything else.
std::optional<Poco::Net::SocketAddress> parseMetricsListen(const std::string& key,
                                                           const std::string& value);

/// MetricsServer - serves render's output at /metrics until destroyed.
class MetricsServer
{
public:
    using Render = std::function<void(std::ostream&)>;
    /// MetricsServer - binds address (SO_REUSEADDR, never SO_REUSEPORT) and starts; timeout
    /// bounds each read and write of a connection. Throws OperationError "KEY ADDRESS:
    /// cannot listen: WHY" when the address cannot be bound.
    MetricsServer(const std::string& key, const Poco::Net::SocketAddress& address, Render render,
                  std::chrono::seconds timeout = std::chrono::seconds(5));
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    /// address - where it listens (port 0 resolved to the port taken).
    const Poco::Net::SocketAddress& address() const { return bound_; }

private:
    Poco::Net::SocketAddress bound_;
    std::unique_ptr<Poco::ThreadPool> threads_;
    std::unique_ptr<Poco::Net::HTTPServer> server_;
};

/// startMetrics - the endpoint key asks for (nullptr when the key is empty), with the log
/// line "metrics: listening on ADDRESS (http://ADDRESS/metrics, no authentication)",
/// a warning when the address is not loopback. Throws as parseMetricsListen and
/// MetricsServer do.
std::unique_ptr<MetricsServer> startMetrics(const Config& config, const std::string& key,
                                            MetricsServer::Render render, Poco::Logger& log);

} // namespace popgate
