// reinject.h - hands fetched messages to the local MTA over SMTP. Our own
// client on a Poco StreamSocket (Poco's SMTPClientSession neither pipelines
// nor keeps the final reply with its queue id): RFC 2920 PIPELINING when the
// MTA offers it (the envelope of the next message travels with the end of the
// previous one, so a message costs one round trip), RFC 5321 otherwise.
// Dot-stuffing and bare-LF repair are done on whole buffers; writes are 64 KiB.
// One session is reused for many messages. TCP_NODELAY is on.
// With SmtpTarget::xclient and an MTA that offers it, each message's origin is
// given with XCLIENT (Postfix XCLIENT_README) before its envelope.
// Classifies outcomes only; core/policy.h decides what they mean.
#pragma once

#include "core/received.h"

#include <Poco/Net/StreamSocket.h>
#include <chrono>
#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace popgate
{

struct SmtpTarget {
    std::string host = "127.0.0.1";
    int port = 10026;
    std::string helo = "localhost";
    std::chrono::milliseconds timeout{120000};
    /// reinject.xclient: tell the MTA each message's origin (SmtpMessage::origin)
    /// with XCLIENT ADDR= NAME=, where it offers XCLIENT to us.
    bool xclient = false;
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
    /// With SmtpMessage::perRecipient: what each RCPT TO got, in order (kind
    /// Accepted, Temporary or Permanent). An Accepted result delivered the message
    /// to exactly the Accepted ones; any other result to none of them.
    struct Recipient {
        std::string address;
        Kind kind = Kind::Accepted;
        int code = 0;
        std::string reply; ///< the MTA's words, flattened
    };
    std::vector<Recipient> recipients;
    /// The MTA refused this message's XCLIENT (described): it went without its origin.
    std::string xclientRefused;
    /// describe - "host said: 450 4.7.1 ... (in reply to RCPT TO:<x>)".
    std::string describe(const std::string& relay) const;
};

/// BodyReader - fills buffer with the next part of a message; 0 at its end.
/// May throw (the message cannot be read back): the session is then dropped
/// before the final dot, so the MTA keeps nothing.
using BodyReader = std::function<std::size_t(char* buffer, std::size_t capacity)>;

/// One message for deliverMany.
struct SmtpMessage {
    std::string sender;                  ///< envelope sender, "" for <>
    std::vector<std::string> recipients; ///< all must be accepted (but see perRecipient)
    /// perRecipient: a refused RCPT refuses that recipient only; the message goes
    /// to the accepted ones in the same transaction (SmtpResult::recipients).
    bool perRecipient = false;
    BodyReader body;                     ///< the message; LF or CRLF line ends
    std::int64_t size = 0;               ///< for SIZE=, 0 when unknown
    /// With SmtpTarget::xclient: the host that handed the message to the
    /// mailbox provider; nullopt: the MTA sees our own connection, as without.
    std::optional<ReceivedOrigin> origin;
};

class SmtpReinjector
{
public:
    explicit SmtpReinjector(SmtpTarget target);
    ~SmtpReinjector();
    SmtpReinjector(const SmtpReinjector&) = delete;
    SmtpReinjector& operator=(const SmtpReinjector&) = delete;

    /// relay - "127.0.0.1[10026]" for log lines.
    std::string relay() const;
    /// sizeLimit - the MTA's EHLO SIZE (0: none announced or not connected).
    std::int64_t sizeLimit() const { return sizeLimit_; }
    /// xclientOffered - the MTA's EHLO listed XCLIENT (false: not connected).
    bool xclientOffered() const { return xclientOffered_; }
    /// connect - open the session now if there is none (deliverMany does it
    /// too); returns Accepted or why not.
    SmtpResult connect();
    /// deliverMany - the messages in order, one transaction each: MAIL FROM,
    /// RCPT TO each (all must be accepted, else the first refusal is the
    /// result; with perRecipient at least one, and the result says which),
    /// DATA, the text, the final reply. Returns one result per message
    /// handed to the MTA, in order; after an Unreachable or Uncertain result the
    /// session is gone and the remaining messages were not attempted (fewer
    /// results than messages). Never throws for SMTP or network trouble.
    /// onResult, if given, is told each result as soon as it is known (index
    /// into messages), while later messages may still be on their way; what
    /// it throws ends the session and propagates. stopBefore, if given, is asked
    /// before each message after the first: true leaves that one and the rest
    /// unattempted (the one already on its way is finished), and the session open.
    std::vector<SmtpResult>
    deliverMany(const std::vector<SmtpMessage>& messages,
                const std::function<void(std::size_t, const SmtpResult&)>& onResult = nullptr,
                const std::function<bool()>& stopBefore = nullptr);
    /// deliver - one message from a stream (popgatectl message release).
    SmtpResult deliver(const std::string& sender, const std::vector<std::string>& recipients,
                       std::istream& message, std::int64_t size);
    /// probe - EHLO, MAIL, RCPT, RSET without DATA (Test Connection --deep).
    SmtpResult probe(const std::string& sender, const std::vector<std::string>& recipients);
    /// close - QUIT (best effort) and drop the session.
    void close();

private:
    struct Reply {
        int code = 0;
        std::string text; ///< all lines, joined by "\n"
    };
    struct Envelope; ///< the replies of one MAIL/RCPT/DATA group

    void drop();
    void send(const char* data, std::size_t n);
    void flush();
    Reply readReply();
    bool readLine(std::string& line);
    Reply command(const std::string& line);
    std::string mailCommand(const SmtpMessage& m) const;
    /// ehlo - EHLO and its keywords (SIZE, PIPELINING, XCLIENT); Accepted or why not.
    SmtpResult ehlo();
    /// setOrigin - the session's client as m's origin: XCLIENT and EHLO again
    /// (in a new session when one was given already: one XCLIENT per session);
    /// nothing when the session already has it. Accepted; Temporary or
    /// Permanent when XCLIENT was refused (the session as before); else why not (dropped).
    SmtpResult setOrigin(const SmtpMessage& m);
    void writeBody(const SmtpMessage& m);

    SmtpTarget target_;
    std::unique_ptr<Poco::Net::StreamSocket> socket_;
    std::string out_;
    /// writeBody's read buffer: allocated once, never zeroed (it was 64 KiB allocated and
    /// zeroed per message: a fifth of popgated's instructions per 4 KB message).
    std::unique_ptr<char[]> chunk_;
    std::string in_;
    std::size_t inPos_ = 0;
    std::int64_t sizeLimit_ = 0;
    bool pipelining_ = false;
    bool xclientOffered_ = false; ///< the session's first EHLO listed XCLIENT
    bool xclientSeen_ = false;    ///< the last EHLO did
    std::string sessionOrigin_;   ///< the XCLIENT line in force; "": our own connection
};

/// xclientCommand - "XCLIENT ADDR=IP NAME=HOST" for origin (ADDR=IPV6:..., and
/// NAME=[UNAVAILABLE] when the provider had no name), values in xtext.
std::string xclientCommand(const ReceivedOrigin& origin);

/// parseQueueId - "4ABC12" from "250 2.0.0 Ok: queued as 4ABC12"; "" if none.
std::string parseQueueId(const std::string& reply);

/// DotStuffer - RFC 5321 4.5.2 transparency for a message given in pieces:
/// a '.' starting a line is doubled and a bare LF becomes CRLF. finish()
/// ends the text with CRLF (if it does not already) and the ".\r\n" mark.
class DotStuffer
{
public:
    void feed(const char* data, std::size_t n, std::string& out);
    void finish(std::string& out);

private:
    bool lineStart_ = true;
    bool afterCr_ = false;
};

} // namespace popgate
