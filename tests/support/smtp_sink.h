// smtp_sink.h - an in-process SMTP server on 127.0.0.1 (port 0) standing in for
// the MTA's reinjection listener: EHLO with PIPELINING, SIZE, 8BITMIME; MAIL,
// RCPT, DATA, RSET, NOOP, QUIT, pipelined commands answered in order. Keeps
// every message text exactly as it came over the wire (still dot-stuffed, so
// a test can see a bare LF) and un-stuffed, with its envelope; rules decide
// the reply to the final dot: 250 with a queue id, 451, 554, or hanging up.
// One connection at a time. Must not depend on popgate's own code.
#pragma once

#include <Poco/Net/ServerSocket.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace popgate::test
{

/// How the sink answers a message's final dot.
enum class SinkReply {
    Accept,    ///< "250 2.0.0 Ok: queued as ABC123" (a new id each time)
    Temporary, ///< "451 4.3.0 ..."
    Permanent, ///< "554 5.7.1 ..."
    HangUp,    ///< close the connection without a reply
};

/// SinkRule - the first rule that matches a message decides its reply;
/// no rule: Accept.
struct SinkRule {
    std::string match; ///< text the message's header section must hold ("Subject: two"); "" any
    int nth = 0;       ///< > 0: only the nth message text the sink receives (1-based, all sessions)
    SinkReply reply = SinkReply::Accept;
    int times = -1; ///< how many messages it answers before it lapses; -1: no limit
};

/// One message text the sink received (answered as `reply`).
struct SinkMessage {
    int session = 0;             ///< 0-based index of its SMTP session
    std::string from;            ///< MAIL FROM address, without the brackets
    std::string mailParameters;  ///< what followed the address ("SIZE=123 BODY=8BITMIME")
    std::vector<std::string> to; ///< RCPT TO addresses, without the brackets
    std::string wire;            ///< the DATA bytes as received, including the final ".\r\n"
    std::string text;            ///< the message: without the final dot line, un-stuffed
    SinkReply reply = SinkReply::Accept;
    std::string queueId; ///< when accepted
};

struct SinkOptions {
    bool pipelining = true;              ///< EHLO offers PIPELINING
    std::int64_t sizeLimit = 10'240'000; ///< EHLO SIZE; 0: none announced
    std::size_t writeChunk = 1400;       ///< replies go out in writes of at most this many bytes
};

class SmtpSink
{
public:
    explicit SmtpSink(SinkOptions options = {});
    /// Stops the sink (an open session is dropped).
    ~SmtpSink();
    SmtpSink(const SmtpSink&) = delete;
    SmtpSink& operator=(const SmtpSink&) = delete;

    int port() const;
    /// addRule / clearRules - how later final dots are answered.
    void addRule(SinkRule rule);
    void clearRules();
    /// awaitIdle - wait until no session is open; false after timeout.
    bool awaitIdle(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
    /// received - every message text, in order, however it was answered.
    std::vector<SinkMessage> received() const;
    /// accepted - the messages answered 250.
    std::vector<SinkMessage> accepted() const;
    /// commands - the command lines of each session (not the message texts).
    std::vector<std::vector<std::string>> sessions() const;
    /// problems - what the client did wrong ("" when nothing): a bare LF, text
    /// sent before 354, a pipelined command without PIPELINING offered.
    std::string problems() const;

private:
    class Session;

    void run();
    void problem(const std::string& text);

    SinkOptions options_;
    Poco::Net::ServerSocket server_;
    mutable std::mutex mutex_;
    std::condition_variable idle_;
    bool inSession_ = false;
    std::vector<SinkRule> rules_;
    std::vector<SinkMessage> received_;
    std::vector<std::vector<std::string>> sessions_;
    int queued_ = 0;
    std::string problems_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

} // namespace popgate::test
