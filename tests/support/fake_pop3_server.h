// fake_pop3_server.h - a scripted POP3 peer on 127.0.0.1 for the client tests:
// a thread with a Poco ServerSocket on port 0 that plays a byte-exact script
// (send, expect a line, check nothing else is pending, wait for the client to
// hang up) and records every line the client sent, also after the script
// ended (it then half-closes and reads until the client hangs up). Only for what Dovecot
// will not do: stalls, lies, garbage, missing STLS, pipelining checks.
#pragma once

#include <Poco/Net/Context.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <vector>

namespace popgate::test
{

struct Step {
    enum Kind { Send, Expect, NothingPending, AwaitClose, StartTls } kind;
    std::string text; ///< Send: raw bytes; Expect: the line without CRLF; StartTls: PEM cert
    std::string key;  ///< StartTls: PEM key
    int millis = 0;   ///< NothingPending / AwaitClose: how long to watch
};

inline Step send(std::string bytes)
{
    return {Step::Send, std::move(bytes), "", 0};
}
inline Step expect(std::string line)
{
    return {Step::Expect, std::move(line), "", 0};
}
/// startTls - the server side of a TLS handshake on the same socket (after STLS).
inline Step startTls(std::string certFile, std::string keyFile)
{
    return {Step::StartTls, std::move(certFile), std::move(keyFile), 0};
}
/// nothingPending - fail if the client sends anything within millis (it must wait for a reply).
inline Step nothingPending(int millis = 150)
{
    return {Step::NothingPending, "", "", millis};
}
/// awaitClose - read (and record) until the client hangs up, at most millis.
inline Step awaitClose(int millis = 5000)
{
    return {Step::AwaitClose, "", "", millis};
}

class FakePop3Server
{
public:
    explicit FakePop3Server(std::vector<Step> script)
        : server_(Poco::Net::SocketAddress("127.0.0.1", 0)), script_(std::move(script))
    {
        thread_ = std::thread([this] { run(); });
    }
    ~FakePop3Server()
    {
        if (thread_.joinable())
            thread_.join();
    }
    int port() const { return server_.address().port(); }
    /// finish - wait for the script to end; returns the mismatches ("" when it ran as written).
    std::string finish()
    {
        if (thread_.joinable())
            thread_.join();
        std::lock_guard<std::mutex> lock(mutex_);
        return problems_;
    }
    /// received - every line the client sent, in order.
    std::vector<std::string> received()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return received_;
    }

private:
    void problem(const std::string& text)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        problems_ += (problems_.empty() ? "" : "; ") + text;
    }
    void record(const std::string& line)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        received_.push_back(line);
    }
    /// readLine - false on EOF or when nothing arrives within millis.
    bool readLine(Poco::Net::StreamSocket& s, std::string& line, int millis)
    {
        for (;;) {
            std::size_t nl = buffer_.find('\n');
            if (nl != std::string::npos) {
                line = buffer_.substr(0, nl);
                if (!line.empty() && line.back() == '\r')
                    line.pop_back();
                buffer_.erase(0, nl + 1);
                record(line);
                return true;
            }
            if (!s.poll(Poco::Timespan(millis * 1000), Poco::Net::Socket::SELECT_READ))
                return false;
            char chunk[4096];
            int n = 0;
            try {
                n = s.receiveBytes(chunk, sizeof chunk);
            } catch (...) {
                eof_ = true;
                return false;
            }
            if (n <= 0) {
                eof_ = true;
                return false;
            }
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    void run()
    {
        if (!server_.poll(Poco::Timespan(10, 0), Poco::Net::Socket::SELECT_READ)) {
            problem("client never connected");
            return;
        }
        Poco::Net::StreamSocket s = server_.acceptConnection();
        try {
            for (const Step& step : script_) {
                std::string line;
                if (step.kind == Step::StartTls) {
                    Poco::Net::Context::Ptr context =
                        new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, step.key,
                                               step.text, "", Poco::Net::Context::VERIFY_NONE);
                    buffer_.clear();
                    s = Poco::Net::SecureStreamSocket::attach(s, context);
                } else if (step.kind == Step::Send) {
                    s.sendBytes(step.text.data(), static_cast<int>(step.text.size()));
                } else if (step.kind == Step::Expect) {
                    if (!readLine(s, line, 5000)) {
                        problem("expected '" + step.text + "', client sent nothing more");
                        return;
                    }
                    if (line != step.text) {
                        problem("expected '" + step.text + "', got '" + line + "'");
                        return;
                    }
                } else if (step.kind == Step::NothingPending) {
                    if (buffer_.find('\n') != std::string::npos ||
                        s.poll(Poco::Timespan(step.millis * 1000),
                               Poco::Net::Socket::SELECT_READ)) {
                        readLine(s, line, 100);
                        problem("client sent '" + line + "' before the reply");
                        return;
                    }
                } else {
                    while (readLine(s, line, step.millis)) {
                    }
                }
            }
        } catch (const std::exception& e) {
            problem(std::string("fake server: ") + e.what());
        }
        drain(s);
    }
    /// drain - after the script (or a mismatch): hang up the sending side and
    /// record every line the client still sends until it hangs up (at most 5 s),
    /// so that "the client never sent X" can fail for lines sent after the script.
    void drain(Poco::Net::StreamSocket& s)
    {
        try {
            ::shutdown(s.impl()->sockfd(), SHUT_WR); // raw fd: TLS has no half close
        } catch (...) {
        }
        std::string line;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!eof_ && std::chrono::steady_clock::now() < deadline)
            readLine(s, line, 200);
        if (!buffer_.empty())
            record(buffer_); // a last line without CRLF
        buffer_.clear();
    }

    Poco::Net::ServerSocket server_;
    std::vector<Step> script_;
    std::thread thread_;
    std::mutex mutex_;
    std::string buffer_;
    bool eof_ = false; ///< the client hung up (or the socket failed)
    std::string problems_;
    std::vector<std::string> received_;
};

} // namespace popgate::test
