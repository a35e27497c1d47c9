// pop3_client.h - popgate's own POP3 client (RFC 1939, 2449 CAPA and response
// codes, 2595 STLS, 5034 SASL, APOP), on Poco::Net sockets because Poco's
// POP3ClientSession has no CAPA/STLS/UIDL/APOP/SASL and hides its socket.
// SECURITY: starttls never falls back to plaintext; a password leaves in clear
// only with security none AND allowPlaintextAuth; the trace sees redacted lines.
// Limits: status and list lines 8 KiB, UIDL lines 64 KiB, message data lines
// 1 MiB (kMax* below). LIST sizes are advisory: a message whose size differs is
// delivered once the client has checked (UIDL n) that the stream is still in step.
// No single message can block a mailbox: a data line that starts with "." and is
// not the end mark loses that dot (RFC 1939's receiver rule, also for ".bad"),
// and in a batch a message with a line over kMaxDataLine is read to its end mark,
// the rest of it dropped, and reported malformed while the session goes on.
#pragma once

#include "core/account.h"
#include "plugin/net/pop3_errors.h"
#include "plugin/net/pop3_tls.h"
#include "plugin/net/pop3_trace.h"

#include <Poco/Net/StreamSocket.h>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace popgate
{

/// How to send the credentials; Auto tries what the server offers (chooseMechanisms).
enum class Pop3Mechanism { Auto, User, Apop, Plain, Login };

/// pop3MechanismName - "auto" | "user" | "apop" | "plain" | "login".
std::string pop3MechanismName(Pop3Mechanism mechanism);
inline std::ostream& operator<<(std::ostream& out, Pop3Mechanism mechanism)
{
    return out << pop3MechanismName(mechanism);
}
/// parsePop3Mechanism - throws InputError naming the accepted values.
Pop3Mechanism parsePop3Mechanism(const std::string& text);

struct Pop3Settings {
    std::string host;
    int port = 0; ///< 0: 995 for ssl-tls, 110 otherwise
    Security security = Security::SslTls;
    TlsSettings tls;
    std::chrono::milliseconds connectTimeout{30000};
    std::chrono::milliseconds readTimeout{60000}; ///< each read and write
    bool allowPlaintextAuth = false;              ///< honoured only with Security::None
    ProtocolTrace* trace = nullptr;               ///< not owned; must outlive the client
};

constexpr std::size_t kMaxStatusLine = 8 * 1024;  ///< status, CAPA, LIST lines (CRLF included)
constexpr std::size_t kMaxUidlLine = 64 * 1024;   ///< UIDL lines, "+OK n uid" too (CRLF included)
constexpr std::size_t kMaxDataLine = 1024 * 1024; ///< RETR/TOP lines (RFC 5322 allows 998)
/// A UIDL longer than this is kept as its SHA-256 key (see Pop3Uid). RFC 1939
/// says 70; servers send more.
constexpr std::size_t kMaxPlainUid = 200;

/// The server's CAPA reply (RFC 2449); known is false when CAPA was refused.
struct Pop3Capabilities {
    bool known = false;
    std::vector<std::string> lines;
    /// has - a line whose first word is tag, case-insensitive.
    bool has(const std::string& tag) const;
    /// saslMechanisms - the words after "SASL", upper case.
    std::vector<std::string> saslMechanisms() const;
};

struct Pop3Stat {
    std::int64_t messages = 0;
    std::int64_t octets = 0;
};

struct Pop3Listing {
    int number = 0;
    std::int64_t octets = -1; ///< what LIST announced; -1: unknown (no step check)
    std::string uid;          ///< its Pop3Uid::uid key, for the step check; may be empty
};

/// validPop3Uid - a UIDL as RFC 1939 allows it: 1 or more printable ASCII octets.
bool validPop3Uid(const std::string& uid);
/// pop3UidKey - the ledger's key for a UIDL (Pop3Uid::uid): the UIDL itself, or
/// "sha256:" + hex of it when longer than kMaxPlainUid. Never throws.
std::string pop3UidKey(const std::string& uidl);

struct Pop3Uid {
    int number = 0;
    /// The message's key: the UIDL itself when it has at most kMaxPlainUid
    /// octets, else "sha256:" + 64 lower-case hex of SHA-256(the whole UIDL), so
    /// memory stays bounded and two long UIDLs sharing a prefix never collide.
    std::string uid;
};

/// One message's outcome in a batch.
struct Pop3BatchReply {
    int number = 0;
    bool ok = false;        ///< +OK and the whole message read (RETR) / +OK (DELE)
    bool malformed = false; ///< ok false, in step: the message broke a limit (a line over
                            ///< kMaxDataLine); problem says which
    /// The server's -ERR words, flattened, or the limit broken; for people only.
    std::string problem;
    std::int64_t octets = 0;  ///< octets written to the sink
    std::int64_t listed = -1; ///< what LIST announced (-1 unknown)
    /// sizeDiffers - listed >= 0 and octets is neither listed nor listed + 2 (a
    /// server may add the CRLF a stored message lacks before the final dot).
    bool sizeDiffers() const;
};

/// The server's stream lost step during RETR (a message cut short at an unstuffed "."):
/// suspect() is the number of the first message that cannot be trusted; it and every
/// message after it in this call are not good; those before it are.
class Pop3OutOfStepError : public Pop3ProtocolError
{
public:
    Pop3OutOfStepError(int suspect, Pop3Stage stage, std::string command, std::string detail,
                       std::string serverText = std::string())
        : Pop3ProtocolError(stage, std::move(command), std::move(detail), std::move(serverText)),
          suspect_(suspect)
    {
    }
    int suspect() const { return suspect_; }

private:
    int suspect_;
};

/// One authentication try: the mechanism, whether the server accepted it and
/// its reply, flattened (never the password).
struct Pop3AuthAttempt {
    Pop3Mechanism mechanism = Pop3Mechanism::Auto;
    bool ok = false;
    std::string reply;
};

/// chooseMechanisms - pure policy, the ordered list authenticate() may try.
/// Auto over TLS or with plaintextAllowed: APOP (greeting timestamp), then ONE
/// SASL mechanism offered in CAPA (PLAIN, else LOGIN), then USER/PASS: at most
/// three tries. PLAIN and LOGIN carry the same user and password, so trying
/// both only adds a refusal when the password is wrong, and a wrong password
/// must not cost a lockout at providers that count failed logins. Auto
/// otherwise: APOP only (never a mechanism that sends the password in clear).
/// A specific wanted mechanism: a one-element list. Throws Pop3AuthError when
/// the list would be empty or the wanted mechanism is not offered or would
/// send the password in clear.
std::vector<Pop3Mechanism> chooseMechanisms(Pop3Mechanism wanted, const Pop3Capabilities& caps,
                                            bool apopOffered, bool tlsActive,
                                            bool plaintextAllowed);

/// SaslStep - given the decoded server challenge, returns the decoded response.
using SaslStep = std::function<std::string(const std::string& challenge)>;
/// StageObserver - told each stage of open() that passed, with a one-line detail.
using StageObserver = std::function<void(Pop3Stage stage, const std::string& detail)>;

class Pop3Client
{
public:
    explicit Pop3Client(Pop3Settings settings);
    /// Closes the socket without QUIT (so the server applies no DELE).
    ~Pop3Client();
    Pop3Client(const Pop3Client&) = delete;
    Pop3Client& operator=(const Pop3Client&) = delete;

    /// open - resolve, connect, TLS (ssl-tls), greeting, CAPA, and for starttls
    /// STLS + handshake + CAPA again. Throws Pop3Error; stage() says where.
    void open(const StageObserver& onStage = StageObserver());
    /// openOn - open() over a socket the caller has connected (a socketpair in
    /// tests and tests/fuzz): no resolve, no connect; then as open(). Throws Pop3Error.
    void openOn(const Poco::Net::StreamSocket& connected,
                const StageObserver& onStage = StageObserver());
    /// authenticate - log in, trying each of chooseMechanisms() in order: a
    /// refusal moves on to the next (after open() again if the server hung up);
    /// [IN-USE], [LOGIN-DELAY] and [SYS/TEMP] end it at once (Pop3ServerError).
    /// When all were refused, throws the last refusal: Pop3AuthError, or
    /// Pop3ServerError for [SYS/PERM]. Each try is in authAttempts().
    void authenticate(const std::string& user, const std::string& secret,
                      Pop3Mechanism mechanism = Pop3Mechanism::Auto);
    /// authSasl - any SASL mechanism (hook for XOAUTH2/OAUTHBEARER): sends the
    /// initial response with AUTH (RFC 5034) when given, answers challenges with
    /// step. Same throws as authenticate; refuses to run unencrypted unless allowed.
    void authSasl(const std::string& mechanism, const std::optional<std::string>& initialResponse,
                  const SaslStep& step = SaslStep());

    /// stat - STAT; throws Pop3ServerError on -ERR.
    Pop3Stat stat();
    /// list - LIST of all messages; throws Pop3ServerError on -ERR.
    std::vector<Pop3Listing> list();
    /// list - LIST n; throws Pop3ServerError on -ERR (no such message).
    Pop3Listing list(int number);
    /// uidl - UIDL of all messages (keys as in Pop3Uid); throws Pop3ServerError on
    /// -ERR (UIDL unsupported), Pop3ProtocolError on a line over kMaxUidlLine.
    std::vector<Pop3Uid> uidl();
    /// uidl - UIDL n; throws Pop3ServerError on -ERR.
    Pop3Uid uidl(int number);
    /// retrieve - RETR n streamed, dot-unstuffed, bare LF made CRLF, to out;
    /// returns the octets written. When expectedOctets >= 0 (from LIST) and the
    /// size differs, checks the stream with UIDL n first: Pop3OutOfStepError
    /// (suspect n) if it lost step. Throws Pop3ServerError on -ERR,
    /// Pop3ProtocolError (session ended) on a line over kMaxDataLine.
    std::int64_t retrieve(int number, std::ostream& out, std::int64_t expectedOctets = -1);
    /// top - TOP n lines streamed to out (bare LF made CRLF); returns octets written.
    std::int64_t top(int number, int lines, std::ostream& out);
    /// dele / rset / noop - throw Pop3ServerError on -ERR.
    void dele(int number);
    void rset();
    void noop();
    /// quit - QUIT (the server applies DELEs now) and close; -ERR means they
    /// were not applied: throws Pop3ServerError.
    void quit();

    /// retrieveMany - RETR each message into sinkFor(number); commands are
    /// pipelined when the server offers PIPELINING (128 at a time),
    /// else sent one at a time. A -ERR is a reply with ok false and the batch
    /// goes on. A message with a line over kMaxDataLine is read to its end mark
    /// (nothing more written to its sink after that line) and is a reply with ok
    /// false and malformed true; the batch goes on. A size that differs from
    /// LIST (a malformed message's dropped octets counted) is no failure, but
    /// before anything after it counts the stream is checked (UIDL n must
    /// answer "+OK n uid"): after the window for its first such message, or at
    /// once without pipelining. done, if given, is told each reply, in order, as soon as its
    /// message is complete. Throws Pop3OutOfStepError when the stream lost step
    /// (the check failed, a reply line was neither +OK nor -ERR, or a protocol
    /// error came while a message whose size differed was unchecked): every
    /// reply from suspect() on is not good, those before it are. Other failures
    /// (network, timeout, a protocol error with nothing unchecked) throw as
    /// they are: the replies passed to done are good, except from the first
    /// with sizeDiffers() or malformed in the window (128 commands) that
    /// failed, which was never checked. After any throw the client is unusable.
    std::vector<Pop3BatchReply>
    retrieveMany(const std::vector<Pop3Listing>& messages,
                 const std::function<std::ostream&(int)>& sinkFor,
                 const std::function<void(const Pop3BatchReply&)>& done = nullptr);
    /// deleteMany - DELE each; pipelined when offered. -ERR is a reply with ok false.
    std::vector<Pop3BatchReply> deleteMany(const std::vector<int>& numbers);

    const Pop3Capabilities& capabilities() const { return caps_; }
    const std::string& greeting() const { return greeting_; }
    bool tlsActive() const { return tlsActive_; }
    const TlsInfo& tlsInfo() const { return tlsInfo_; }
    /// usedMechanism - the mechanism authenticate() logged in with; Auto before.
    Pop3Mechanism usedMechanism() const { return used_; }
    /// authAttempts - every try of the last authenticate(), in order.
    const std::vector<Pop3AuthAttempt>& authAttempts() const { return attempts_; }
    bool pipelining() const { return caps_.has("PIPELINING"); }

private:
    struct Reply {
        bool ok = false;
        std::string line;
    };

    int port() const;
    void connectTcp(const StageObserver& onStage);
    void greet(const StageObserver& onStage);
    void handshake(Pop3Stage stage, const StageObserver& onStage);
    void readCapabilities();
    void startTlsCommand(const StageObserver& onStage);
    bool plaintextAllowed() const;
    void requireUsable(Pop3Stage stage, const std::string& command);
    [[noreturn]] void fail(const Pop3Error& error);
    void fill(Pop3Stage stage, const std::string& command);
    void ackAtOnce();
    std::size_t readLine(Pop3Stage stage, const std::string& command, std::size_t max,
                         std::string& line);
    void sendRaw(Pop3Stage stage, const std::string& command, const std::string& bytes);
    void sendLine(Pop3Stage stage, const std::string& line, bool saslContinuation = false);
    Reply readReply(Pop3Stage stage, const std::string& command, bool allowContinuation = false,
                    std::size_t max = kMaxStatusLine);
    std::string expectOk(Pop3Stage stage, const std::string& command);
    /// MessageRead - what readMessage saw of one message.
    struct MessageRead {
        std::int64_t written = 0;  ///< octets written to the sink
        std::int64_t received = 0; ///< its size as received, dropped lines included
        bool overlong = false;     ///< a line over kMaxDataLine: dropped, nothing written after
    };

    /// readMultiLine - each line up to the end mark, dot-unstuffed, to onLine. A
    /// line over max: when onDiscarded is set, it is dropped (told its octets)
    /// and reading goes on; else fail() with overlong() or a generic detail.
    void readMultiLine(Pop3Stage stage, const std::string& command, std::size_t max,
                       const std::function<void(const std::string&, std::size_t)>& onLine,
                       const std::function<std::string()>& overlong = nullptr,
                       const std::function<void(std::size_t)>& onDiscarded = nullptr);
    std::size_t discardLine(Pop3Stage stage, const std::string& command);
    /// readMessage - a RETR/TOP body to out; a line over kMaxDataLine fails the
    /// session unless discardOverlong (then MessageRead::overlong).
    MessageRead readMessage(Pop3Stage stage, const std::string& command, std::ostream& out,
                            bool discardOverlong = false);
    [[noreturn]] void authFailed(const std::string& command, const std::string& serverLine);
    void authenticateWith(Pop3Mechanism mechanism, const std::string& user,
                          const std::string& secret);
    std::string saslExchange(const std::string& mechanism,
                             const std::optional<std::string>& initialResponse,
                             const SaslStep& step);
    void reconnect();
    bool tryReadLine(Pop3Stage stage, const std::string& command, std::size_t max,
                     std::string& line, std::size_t& raw);
    std::string pendingLineStart() const;
    [[noreturn]] void outOfStep(int suspect, const std::string& command, const std::string& detail,
                                const std::string& serverLine);
    void checkStep(const Pop3Listing& message, std::int64_t delivered);

    Pop3Settings settings_;
    Poco::Net::StreamSocket socket_;
    bool connected_ = false;
    bool broken_ = false;
    std::string buffer_;
    std::size_t bufferPos_ = 0;
    bool readLast_ = false; ///< the last thing done on the socket was a read (ackAtOnce)
    std::string greeting_;
    std::string apopTimestamp_;
    Pop3Capabilities caps_;
    bool tlsActive_ = false;
    TlsInfo tlsInfo_;
    Pop3Mechanism used_ = Pop3Mechanism::Auto;
    std::vector<Pop3AuthAttempt> attempts_;
};

} // namespace popgate
