// pop3_client.h - popgate's own POP3 client (RFC 1939, 2449 CAPA and response
// codes, 2595 STLS, 5034 SASL, APOP), on Poco::Net sockets because Poco's
// POP3ClientSession has no CAPA/STLS/UIDL/APOP/SASL and hides its socket.
// SECURITY: starttls never falls back to plaintext; a password leaves in clear
// only with security none AND allowPlaintextAuth; the trace sees redacted lines.
// Limits: status and list lines 8 KiB, message data lines 1 MiB (kMax* below).
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

/// How to send the credentials; Auto picks the strongest the server offers.
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
    bool strictSizes = true;                      ///< RETR size differing from LIST is an error
    ProtocolTrace* trace = nullptr;               ///< not owned; must outlive the client
};

constexpr std::size_t kMaxStatusLine = 8 * 1024;  ///< status, CAPA, LIST, UIDL lines
constexpr std::size_t kMaxDataLine = 1024 * 1024; ///< RETR/TOP lines (RFC 5322 allows 998)

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
    std::int64_t octets = -1; ///< -1: unknown (no size check)
};

struct Pop3Uid {
    int number = 0;
    std::string uid;
};

/// One message's outcome in a batch: ok, or the server's -ERR / the size problem.
struct Pop3BatchReply {
    int number = 0;
    bool ok = false;
    std::string problem; ///< server words or "size mismatch: ..."; empty when ok
    std::int64_t octets = 0;
};

/// chooseMechanism - pure policy: Auto over TLS -> PLAIN, LOGIN, APOP, USER;
/// without TLS -> APOP, then (only if plaintextAllowed) PLAIN, LOGIN, USER.
/// Throws Pop3AuthError when nothing acceptable is offered or the wanted
/// mechanism would send the password in clear.
Pop3Mechanism chooseMechanism(Pop3Mechanism wanted, const Pop3Capabilities& caps, bool apopOffered,
                              bool tlsActive, bool plaintextAllowed);

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
    /// authenticate - log in with mechanism (Auto: see chooseMechanism);
    /// throws Pop3AuthError (refused), Pop3ServerError ([IN-USE], [SYS/TEMP]...).
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
    /// uidl - UIDL of all messages; throws Pop3ServerError on -ERR (UIDL unsupported).
    std::vector<Pop3Uid> uidl();
    /// uidl - UIDL n; throws Pop3ServerError on -ERR.
    Pop3Uid uidl(int number);
    /// retrieve - RETR n streamed, dot-unstuffed, to out; returns the octets
    /// written. expectedOctets >= 0 (from LIST) is checked: Pop3ProtocolError on
    /// a difference when strictSizes. Throws Pop3ServerError on -ERR.
    std::int64_t retrieve(int number, std::ostream& out, std::int64_t expectedOctets = -1);
    /// top - TOP n lines streamed to out; returns octets written.
    std::int64_t top(int number, int lines, std::ostream& out);
    /// dele / rset / noop - throw Pop3ServerError on -ERR.
    void dele(int number);
    void rset();
    void noop();
    /// quit - QUIT (the server applies DELEs now) and close; -ERR means they
    /// were not applied: throws Pop3ServerError.
    void quit();

    /// retrieveMany - RETR each message into sinkFor(number); commands are
    /// pipelined when the server offers PIPELINING, else sent one at a time.
    /// A -ERR or size mismatch is a reply with ok false; I/O failures throw.
    /// done, if given, is told each reply as soon as its message is complete.
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
    /// usedMechanism - what authenticate() chose; Auto before it ran.
    Pop3Mechanism usedMechanism() const { return used_; }
    bool pipelining() const { return caps_.has("PIPELINING"); }

private:
    struct Reply {
        bool ok = false;
        std::string line;
    };

    int port() const;
    void connectTcp(const StageObserver& onStage);
    void handshake(Pop3Stage stage, const StageObserver& onStage);
    void readCapabilities();
    void startTlsCommand(const StageObserver& onStage);
    bool plaintextAllowed() const;
    void requireUsable(Pop3Stage stage, const std::string& command);
    [[noreturn]] void fail(const Pop3Error& error);
    void fill(Pop3Stage stage, const std::string& command);
    std::size_t readLine(Pop3Stage stage, const std::string& command, std::size_t max,
                         std::string& line);
    void sendRaw(Pop3Stage stage, const std::string& command, const std::string& bytes);
    void sendLine(Pop3Stage stage, const std::string& line, bool saslContinuation = false);
    Reply readReply(Pop3Stage stage, const std::string& command, bool allowContinuation = false);
    std::string expectOk(Pop3Stage stage, const std::string& command);
    void readMultiLine(Pop3Stage stage, const std::string& command, std::size_t max,
                       const std::function<void(const std::string&, std::size_t)>& onLine);
    std::int64_t readMessage(Pop3Stage stage, const std::string& command, std::ostream& out);
    [[noreturn]] void authFailed(const std::string& command, const std::string& serverLine);

    Pop3Settings settings_;
    Poco::Net::StreamSocket socket_;
    bool connected_ = false;
    bool broken_ = false;
    std::string buffer_;
    std::size_t bufferPos_ = 0;
    std::string greeting_;
    std::string apopTimestamp_;
    Pop3Capabilities caps_;
    bool tlsActive_ = false;
    TlsInfo tlsInfo_;
    Pop3Mechanism used_ = Pop3Mechanism::Auto;
};

} // namespace popgate
