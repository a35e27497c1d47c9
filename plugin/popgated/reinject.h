// reinject.h - hands a fetched message to the local MTA over SMTP (Poco's
// SMTPClientSession for the dialogue, our own DATA writer so that the final
// reply, with its queue id, is kept). One session is reused for many
// messages (RSET between). TCP_NODELAY is on: no delayed-ACK stall per message.
// Classifies outcomes only; core/policy.h decides what they mean.
#pragma once

#include <Poco/Net/SMTPClientSession.h>
#include <chrono>
#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <vector>

namespace popgate
{

struct SmtpTarget {
    std::string host = "127.0.0.1";
    int port = 10026;
    std::string helo = "localhost";
    std::chrono::milliseconds timeout{120000};
};

struct SmtpResult {
    enum class Kind {
        Accepted,    ///< final 250: the MTA has it
        Temporary,   ///< 4xx to MAIL, RCPT, DATA or the final dot
        Permanent,   ///< 5xx
        Unreachable, ///< no session (connect, greeting, EHLO failed), or it broke before the dot
        Uncertain,   ///< it broke after the final dot was sent, before the reply
    };
    Kind kind = Kind::Unreachable;
    int code = 0;
    std::string reply;   ///< the MTA's words, flattened
    std::string command; ///< "RCPT TO:<x>", "end of DATA", "connect"
    std::string queueId; ///< from "queued as X"
    /// describe - "host said: 450 4.7.1 ... (in reply to RCPT TO:<x>)".
    std::string describe(const std::string& relay) const;
};

class SmtpReinjector
{
public:
    /// Session - Poco's SMTP session with its socket reachable, so that the
    /// final reply to DATA (with the queue id) can be read by us.
    class Session : public Poco::Net::SMTPClientSession
    {
    public:
        using Poco::Net::SMTPClientSession::SMTPClientSession;
        using Poco::Net::SMTPClientSession::socket;
    };

    explicit SmtpReinjector(SmtpTarget target);
    ~SmtpReinjector();

    /// relay - "127.0.0.1[10026]" for log lines.
    std::string relay() const;
    /// sizeLimit - the MTA's EHLO SIZE (0: none announced or not connected).
    std::int64_t sizeLimit() const { return sizeLimit_; }
    /// deliver - one transaction: MAIL FROM, RCPT TO each (all must be
    /// accepted, else RSET and the first refusal is the result), DATA, the
    /// message from `message` (dot-stuffed, LF made CRLF), the final reply.
    /// Connects first when needed. Never throws for SMTP or network trouble.
    SmtpResult deliver(const std::string& sender, const std::vector<std::string>& recipients,
                       std::istream& message, std::int64_t size);
    /// probe - EHLO, MAIL, RCPT, RSET without DATA (Test Connection --deep).
    SmtpResult probe(const std::string& sender, const std::vector<std::string>& recipients);
    /// close - QUIT (best effort) and drop the session.
    void close();

private:
    SmtpResult connect();
    SmtpResult envelope(const std::string& sender, const std::vector<std::string>& recipients,
                        std::int64_t size);
    SmtpResult command(const std::string& line, const std::string& what);
    void reset();

    SmtpTarget target_;
    std::unique_ptr<Session> session_;
    std::int64_t sizeLimit_ = 0;
    bool pipelining_ = false;
};

/// parseQueueId - "4ABC12" from "250 2.0.0 Ok: queued as 4ABC12"; "" if none.
std::string parseQueueId(const std::string& reply);

} // namespace popgate
