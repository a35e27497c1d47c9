// pausing_proxy.h - a TCP relay on 127.0.0.1 (port 0) in front of a test
// server that holds the server's bytes back once they contain a marker: it
// forwards up to the end of the marker, reports itself paused, and sends the
// rest only after release(). Lets a test stop a client in the middle of a
// message (a RETR half read) at an exact point, without hooks in the client.
// Pauses once; later sessions pass through. Must not depend on popgate's code.
#pragma once

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace popgate::test
{

class PausingProxy
{
public:
    PausingProxy(int upstreamPort, std::string marker)
        : server_(Poco::Net::SocketAddress("127.0.0.1", 0)), upstream_(upstreamPort),
          marker_(std::move(marker))
    {
        thread_ = std::thread([this] { run(); });
    }
    ~PausingProxy()
    {
        release();
        stop_ = true;
        if (thread_.joinable())
            thread_.join();
    }
    PausingProxy(const PausingProxy&) = delete;
    PausingProxy& operator=(const PausingProxy&) = delete;

    int port() const { return server_.address().port(); }
    /// awaitPaused - true once the marker went through and the rest is held.
    bool awaitPaused(std::chrono::milliseconds timeout)
    {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, timeout, [this] { return paused_; });
    }
    /// release - send what was held back, and everything after it.
    void release()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        released_ = true;
        changed_.notify_all();
    }

private:
    void run()
    {
        while (!stop_) {
            if (!server_.poll(Poco::Timespan(0, 100000), Poco::Net::Socket::SELECT_READ))
                continue;
            Poco::Net::StreamSocket client = server_.acceptConnection();
            try {
                Poco::Net::StreamSocket up(Poco::Net::SocketAddress("127.0.0.1", upstream_));
                relay(client, up);
            } catch (...) {
            }
        }
    }
    void relay(Poco::Net::StreamSocket& client, Poco::Net::StreamSocket& up)
    {
        char buffer[16384];
        const Poco::Timespan tick(0, 10000);
        while (!stop_) {
            if (client.poll(tick, Poco::Net::Socket::SELECT_READ)) {
                const int n = client.receiveBytes(buffer, sizeof buffer);
                if (n <= 0)
                    return;
                up.sendBytes(buffer, n);
            }
            if (up.poll(tick, Poco::Net::Socket::SELECT_READ)) {
                const int n = up.receiveBytes(buffer, sizeof buffer);
                if (n <= 0)
                    return;
                std::string bytes(buffer, static_cast<std::size_t>(n));
                if (!triggered_) {
                    seen_ += bytes;
                    const auto at = seen_.find(marker_);
                    if (at != std::string::npos) {
                        triggered_ = true;
                        const std::size_t cut =
                            bytes.size() - (seen_.size() - (at + marker_.size()));
                        sendAll(client, bytes.substr(0, cut));
                        std::unique_lock<std::mutex> lock(mutex_);
                        paused_ = true;
                        changed_.notify_all();
                        changed_.wait(lock, [this] { return released_; });
                        lock.unlock();
                        bytes = bytes.substr(cut);
                    } else if (seen_.size() > marker_.size()) {
                        seen_.erase(0, seen_.size() - marker_.size());
                    }
                }
                sendAll(client, bytes);
            }
        }
    }
    static void sendAll(Poco::Net::StreamSocket& s, const std::string& bytes)
    {
        std::size_t sent = 0;
        while (sent < bytes.size()) {
            const int n = s.sendBytes(bytes.data() + sent, static_cast<int>(bytes.size() - sent));
            if (n <= 0)
                return;
            sent += static_cast<std::size_t>(n);
        }
    }

    Poco::Net::ServerSocket server_;
    int upstream_;
    std::string marker_;
    std::string seen_;
    bool triggered_ = false;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool paused_ = false;
    bool released_ = false;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

} // namespace popgate::test
