// smtp_sink - a counting SMTP sink for the fetcher benchmarks (bench/run.sh):
// accepts every message at once (250 to everything), counts messages, octets
// and distinct Message-IDs, and stores nothing. Answers a whole pipelined batch
// in one write, so it is never the bottleneck of the client it measures.
// Not a mail server: no size limit, no authentication, loopback benchmarks only.
//   smtp_sink PORT        listen on 127.0.0.1:PORT (0 = any free port); prints
//                         "port N" on stdout, runs until SIGTERM/SIGINT
// Extra verbs for the harness: XSTAT ("250 messages=N octets=N distinct=N"),
// XRESET (zero the counters).
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/Net/TCPServerParams.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <mutex>
#include <signal.h>
#include <string>
#include <strings.h>
#include <unordered_set>

namespace
{

// Counters - what the sink received, shared by all sessions.
struct Counters {
    std::mutex mutex;
    long long messages = 0;
    long long octets = 0;
    long long serial = 0;
    std::unordered_set<std::string> ids;
};
Counters counters;

bool startsWithNoCase(const std::string& s, const char* prefix)
{
    return strncasecmp(s.c_str(), prefix, std::strlen(prefix)) == 0;
}

// SinkSession - one SMTP session; replies are collected while input is
// buffered and written when the buffer is drained (PIPELINING).
class SinkSession : public Poco::Net::TCPServerConnection
{
public:
    using TCPServerConnection::TCPServerConnection;

    void run() override
    {
        auto& sock = socket();
        sock.setNoDelay(true);
        out_ = "220 smtp-sink ESMTP popgate bench\r\n";
        flush(sock);
        char buf[256 * 1024];
        while (!quit_) {
            int n = 0;
            try {
                n = sock.receiveBytes(buf, sizeof buf);
            } catch (...) {
                return;
            }
            if (n <= 0)
                return;
            feed(buf, static_cast<std::size_t>(n));
            if (!out_.empty() && !flush(sock))
                return;
        }
    }

private:
    bool flush(Poco::Net::StreamSocket& sock)
    {
        try {
            std::size_t done = 0;
            while (done < out_.size())
                done += static_cast<std::size_t>(
                    sock.sendBytes(out_.data() + done, static_cast<int>(out_.size() - done)));
        } catch (...) {
            return false;
        }
        out_.clear();
        return true;
    }

    void feed(const char* p, std::size_t n)
    {
        const char* end = p + n;
        while (p < end) {
            const char* nl =
                static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
            if (!nl) {
                partial_.append(p, end);
                return;
            }
            if (!partial_.empty()) {
                partial_.append(p, nl + 1);
                line(partial_.data(), partial_.size());
                partial_.clear();
            } else {
                line(p, static_cast<std::size_t>(nl + 1 - p));
            }
            p = nl + 1;
        }
    }

    void line(const char* p, std::size_t n)
    {
        if (inData_) {
            if ((n == 3 && p[0] == '.' && p[1] == '\r') || (n == 2 && p[0] == '.')) {
                inData_ = false;
                long long id;
                {
                    std::lock_guard<std::mutex> lock(counters.mutex);
                    ++counters.messages;
                    counters.octets += msgOctets_;
                    id = ++counters.serial;
                    if (!messageId_.empty())
                        counters.ids.insert(messageId_);
                }
                out_ += "250 2.0.0 Ok: queued as S" + std::to_string(id) + "\r\n";
                return;
            }
            msgOctets_ += static_cast<long long>(n);
            if (inHeaders_) {
                if (n <= 2 && (p[0] == '\r' || p[0] == '\n'))
                    inHeaders_ = false;
                else if (n > 11 && strncasecmp(p, "Message-ID:", 11) == 0) {
                    std::string v(p + 11, n - 11);
                    const auto b = v.find_first_not_of(" \t");
                    const auto e = v.find_last_not_of(" \t\r\n");
                    messageId_ = b == std::string::npos ? "" : v.substr(b, e - b + 1);
                }
            }
            return;
        }
        std::string cmd(p, n);
        while (!cmd.empty() && (cmd.back() == '\n' || cmd.back() == '\r'))
            cmd.pop_back();
        if (startsWithNoCase(cmd, "EHLO"))
            out_ += "250-smtp-sink\r\n250-PIPELINING\r\n250-SIZE 0\r\n250-8BITMIME\r\n250 "
                    "ENHANCEDSTATUSCODES\r\n";
        else if (startsWithNoCase(cmd, "HELO"))
            out_ += "250 smtp-sink\r\n";
        else if (startsWithNoCase(cmd, "DATA")) {
            inData_ = true;
            inHeaders_ = true;
            msgOctets_ = 0;
            messageId_.clear();
            out_ += "354 End data with <CR><LF>.<CR><LF>\r\n";
        } else if (startsWithNoCase(cmd, "QUIT")) {
            out_ += "221 2.0.0 Bye\r\n";
            quit_ = true;
        } else if (startsWithNoCase(cmd, "XSTAT")) {
            std::lock_guard<std::mutex> lock(counters.mutex);
            out_ += "250 messages=" + std::to_string(counters.messages) +
                    " octets=" + std::to_string(counters.octets) +
                    " distinct=" + std::to_string(counters.ids.size()) + "\r\n";
        } else if (startsWithNoCase(cmd, "XRESET")) {
            std::lock_guard<std::mutex> lock(counters.mutex);
            counters.messages = counters.octets = 0;
            counters.ids.clear();
            out_ += "250 2.0.0 reset\r\n";
        } else
            out_ += "250 2.0.0 Ok\r\n"; // MAIL, RCPT, RSET, NOOP, anything
    }

    std::string out_;
    std::string partial_;
    std::string messageId_;
    long long msgOctets_ = 0;
    bool inData_ = false;
    bool inHeaders_ = false;
    bool quit_ = false;
};

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2) {
        std::cerr << "usage: smtp_sink PORT\n";
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr); // server threads inherit the mask
    signal(SIGPIPE, SIG_IGN);

    Poco::Net::ServerSocket listener(
        Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(std::atoi(argv[1]))), 64);
    auto* params = new Poco::Net::TCPServerParams;
    params->setMaxThreads(256);
    params->setMaxQueued(256);
    Poco::Net::TCPServer server(new Poco::Net::TCPServerConnectionFactoryImpl<SinkSession>(),
                                listener, params);
    server.start();
    std::cout << "port " << listener.address().port() << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    server.stop();
    return 0;
}
