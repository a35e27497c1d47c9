// fake_mailbox_server.h - a stateful POP3 server on 127.0.0.1 (port 0) for
// driving the fetcher in-process: one mailbox, one connection at a time, many
// sessions in sequence. RFC 1939 and RFC 2449 (CAPA, RESP-CODES, PIPELINING):
// DELE only marks, QUIT applies the marks, a session that ends any other way
// applies none. Each message is given as the exact bytes sent after RETR's
// +OK line, so a test can serve broken messages; sizes can lie, RETR can fail.
// Records every command line. Must not depend on popgate's own code.
#pragma once

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
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

/// One message of the fake mailbox.
struct FakeMessage {
    std::string wire;           ///< sent as is after "+OK n octets\r\n" (see wireFor)
    std::string uidl;           ///< its UIDL (any length; the test's choice)
    std::int64_t listSize = -1; ///< what LIST says; -1: the real size (realSize)
    std::string retrError;      ///< non-empty: RETR is answered "-ERR " + this
};

/// wireFor - a message text (LF or CRLF line ends) as a correct server sends
/// it: CRLF line ends, a leading '.' doubled, ending "\r\n.\r\n".
std::string wireFor(const std::string& text);
/// realSize - the octets of a message's wire form without the terminating
/// "." line and without the stuffing dots: what an honest LIST says.
std::int64_t realSize(const std::string& wire);

struct MailboxOptions {
    std::string user = "desk";
    std::string password = "secret";
    bool pipelining = true;        ///< CAPA offers PIPELINING
    bool apopTimestamp = false;    ///< the greeting carries "<123.456@fake>"
    bool apopAccepted = true;      ///< false: APOP is answered "-ERR [AUTH] Bad login"
    std::size_t writeChunk = 1400; ///< replies go out in writes of at most this many bytes
};

/// One POP3 session as the server saw it.
struct MailboxSession {
    std::vector<std::string> commands;  ///< every line received, without CRLF, in order
    std::vector<std::string> retrieved; ///< UIDLs RETR asked for (answered +OK or -ERR)
    std::vector<std::string> marked;    ///< UIDLs DELE marked (RSET does not unlist them)
    bool quit = false;                  ///< QUIT received and answered (marks applied)
    std::vector<std::string> expunged;  ///< UIDLs removed by this session's QUIT
};

class FakeMailboxServer
{
public:
    /// FakeMailboxServer - listens at once; messages are numbered 1.. in order.
    explicit FakeMailboxServer(std::vector<FakeMessage> messages, MailboxOptions options = {});
    /// Stops the server (an open session is dropped, its marks not applied).
    ~FakeMailboxServer();
    FakeMailboxServer(const FakeMailboxServer&) = delete;
    FakeMailboxServer& operator=(const FakeMailboxServer&) = delete;

    int port() const;
    /// awaitIdle - wait until no session is open (the client hung up or
    /// quit); false after timeout. Call after the client is done so that every
    /// line it sent is recorded.
    bool awaitIdle(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
    /// sessions - every session so far, oldest first.
    std::vector<MailboxSession> sessions() const;
    /// commands - every line received, all sessions.
    std::vector<std::string> commands() const;
    /// held - the UIDLs still in the mailbox, in order.
    std::vector<std::string> held() const;
    /// holds - whether the mailbox still holds this UIDL.
    bool holds(const std::string& uidl) const;
    /// problems - what the client did wrong ("" when nothing): a pipelined
    /// command without PIPELINING offered, a line without CRLF.
    std::string problems() const;

private:
    class Session;

    void run();
    void problem(const std::string& text);

    MailboxOptions options_;
    Poco::Net::ServerSocket server_;
    mutable std::mutex mutex_;
    std::condition_variable idle_;
    bool inSession_ = false;
    std::vector<FakeMessage> mailbox_;
    std::vector<MailboxSession> sessions_;
    std::string problems_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

} // namespace popgate::test
