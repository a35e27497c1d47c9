// steering_proxy.h - a TCP relay on 127.0.0.1 (port 0) in front of a plaintext
// line protocol server (POP3, SMTP) that shows every line, in each direction,
// to the test before it passes: the test may let it through, hold it back
// for good and close the connection, and run an action at that exact point
// (kill -9 the client, take a database lock). Steers a fault into a named
// window of a client's session without a hook in the client. Lines end at LF;
// a partial line waits for its end. Must not depend on popgate's code.
#pragma once

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <atomic>
#include <functional>
#include <mutex>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <vector>

namespace popgate::test
{

class SteeringProxy
{
public:
    enum class From { Client, Server };
    /// Step - what to do with one line: pass it (forward) or not, then run
    /// action (after what passed was sent), then close both ends (cut).
    struct Step {
        bool forward = true;
        bool cut = false;
        std::function<void()> action;
    };
    /// Hook - called for every complete line (with its CRLF), from the
    /// connection's own thread; connection counts from 1 in accept order.
    using Hook = std::function<Step(int connection, From from, const std::string& line)>;

    SteeringProxy(int upstreamPort, Hook hook)
        : server_(Poco::Net::SocketAddress("127.0.0.1", 0)), upstream_(upstreamPort),
          hook_(std::move(hook))
    {
        acceptor_ = std::thread([this] { acceptLoop(); });
    }
    ~SteeringProxy()
    {
        stop_ = true;
        if (acceptor_.joinable())
            acceptor_.join();
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& t : relays_)
            if (t.joinable())
                t.join();
    }
    SteeringProxy(const SteeringProxy&) = delete;
    SteeringProxy& operator=(const SteeringProxy&) = delete;

    int port() const { return server_.address().port(); }
    /// connections - how many clients it accepted so far.
    int connections() const { return accepted_; }
    /// open - connections still relayed: 0 once every line a client sent
    /// before it went was seen (and passed or not).
    int open() const { return open_; }

private:
    void acceptLoop()
    {
        while (!stop_) {
            if (!server_.poll(Poco::Timespan(0, 20000), Poco::Net::Socket::SELECT_READ))
                continue;
            Poco::Net::StreamSocket client;
            try {
                client = server_.acceptConnection();
            } catch (...) {
                continue;
            }
            const int id = ++accepted_;
            ++open_;
            std::lock_guard<std::mutex> lock(mutex_);
            relays_.emplace_back([this, client, id]() mutable {
                try {
                    Poco::Net::StreamSocket up(Poco::Net::SocketAddress("127.0.0.1", upstream_));
                    relay(id, client, up);
                    up.close();
                } catch (...) {
                }
                try {
                    client.close();
                } catch (...) {
                }
                --open_;
            });
        }
    }

    /// Side - one direction: bytes read, not yet a whole line.
    struct Side {
        Poco::Net::StreamSocket* in;
        Poco::Net::StreamSocket* out;
        From from;
        std::string partial;
    };

    void relay(int id, Poco::Net::StreamSocket& client, Poco::Net::StreamSocket& up)
    {
        Side sides[2] = {{&client, &up, From::Client, {}}, {&up, &client, From::Server, {}}};
        char buffer[16384];
        while (!stop_) {
            pollfd fds[2] = {{client.impl()->sockfd(), POLLIN, 0},
                             {up.impl()->sockfd(), POLLIN, 0}};
            if (::poll(fds, 2, 20) <= 0)
                continue;
            for (int s = 0; s < 2; ++s) {
                if (!(fds[s].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                Side& side = sides[s];
                const int n = side.in->receiveBytes(buffer, sizeof buffer);
                if (n <= 0)
                    return;
                side.partial.append(buffer, static_cast<std::size_t>(n));
                std::string pass;
                std::size_t start = 0;
                for (std::size_t nl; (nl = side.partial.find('\n', start)) != std::string::npos;
                     start = nl + 1) {
                    const std::string line = side.partial.substr(start, nl + 1 - start);
                    Step step = hook_(id, side.from, line);
                    if (step.forward)
                        pass += line;
                    if (step.action || step.cut) {
                        sendAll(*side.out, pass);
                        pass.clear();
                        if (step.action)
                            step.action();
                        if (step.cut)
                            return;
                    }
                }
                side.partial.erase(0, start);
                sendAll(*side.out, pass);
            }
        }
    }

    static void sendAll(Poco::Net::StreamSocket& s, const std::string& bytes)
    {
        std::size_t sent = 0;
        while (sent < bytes.size()) {
            const int n = s.sendBytes(bytes.data() + sent, static_cast<int>(bytes.size() - sent),
                                      MSG_NOSIGNAL); // a killed client: no SIGPIPE
            if (n <= 0)
                return;
            sent += static_cast<std::size_t>(n);
        }
    }

    Poco::Net::ServerSocket server_;
    int upstream_;
    Hook hook_;
    std::atomic<int> accepted_{0};
    std::atomic<int> open_{0};
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<std::thread> relays_;
    std::thread acceptor_;
};

} // namespace popgate::test
