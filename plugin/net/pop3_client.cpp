// pop3_client.cpp - the POP3 session: line reading with caps and timeouts,
// replies, multi-line data with dot-unstuffing, STLS, authentication and the
// pipelined batches with their step check. Reads go through our own buffer (not
// DialogSocket) so the line caps, the timeouts and the STLS buffer discard are
// ours to decide.
#include "plugin/net/pop3_client.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/DigestEngine.h>
#include <Poco/Exception.h>
#include <Poco/MD5Engine.h>
#include <Poco/Net/DNS.h>
#include <Poco/Net/HostEntry.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/SHA2Engine.h>
#include <Poco/Timespan.h>
#include <algorithm>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sstream>

namespace popgate
{

// sizeDiffers - RETR did not deliver what LIST announced. A server may add
// the CRLF a stored message lacks before the final dot (Dovecot counts it in
// RETR, not in LIST): two octets more is not a lie.
bool Pop3BatchReply::sizeDiffers() const
{
    return listed >= 0 && octets != listed && octets != listed + 2;
}

namespace
{

std::string upper(std::string text)
{
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return text;
}

Poco::Timespan timespan(std::chrono::milliseconds ms)
{
    return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms.count()) * 1000);
}

std::string base64Encode(const std::string& data)
{
    std::ostringstream out;
    Poco::Base64Encoder encoder(out);
    encoder.rdbuf()->setLineLength(0);
    encoder << data;
    encoder.close();
    return out.str();
}

/// base64Decode - throws Poco::DataFormatException on bad input.
std::string base64Decode(const std::string& data)
{
    std::istringstream in(data);
    Poco::Base64Decoder decoder(in);
    std::string out;
    char c;
    while (decoder.get(c))
        out += c;
    if (decoder.bad())
        throw Poco::DataFormatException("bad base64");
    return out;
}

/// parseNumber - a non-negative decimal of at most 18 digits, or -1.
std::int64_t parseNumber(const std::string& text)
{
    if (text.empty() || text.size() > 18)
        return -1;
    std::int64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return -1;
        value = value * 10 + (c - '0');
    }
    return value;
}

/// words - split at single or repeated spaces.
std::vector<std::string> words(const std::string& line)
{
    std::vector<std::string> out;
    std::istringstream in(line);
    std::string word;
    while (in >> word)
        out.push_back(word);
    return out;
}

/// isServerCondition - RFC 2449/3206 codes about the server, not the credentials.
bool isServerCondition(const std::string& code)
{
    return code == "IN-USE" || code == "LOGIN-DELAY" || code == "SYS/TEMP" || code == "SYS/PERM";
}

/// endsAuthentication - a server condition no other mechanism can get past
/// (the mailbox is locked, logins must wait, the server is in trouble now).
/// [SYS/PERM] is not one: a server may say it of one mechanism only.
bool endsAuthentication(const std::string& code)
{
    return code == "IN-USE" || code == "LOGIN-DELAY" || code == "SYS/TEMP";
}


/// shortServerText - at most 80 bytes of a line that may be someone's message
/// body (a stream out of step): enough to tell what it was, not to read the mail.
std::string shortServerText(const std::string& line)
{
    return line.size() <= 80 ? line : line.substr(0, 80) + "...";
}

} // namespace

/// validPop3Uid - RFC 1939's printable ASCII; any length (the line cap bounds it).
bool validPop3Uid(const std::string& uid)
{
    if (uid.empty())
        return false;
    for (unsigned char c : uid)
        if (c < 0x21 || c > 0x7e)
            return false;
    return true;
}

std::string pop3UidKey(const std::string& uidl)
{
    if (uidl.size() <= kMaxPlainUid)
        return uidl;
    Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
    sha.update(uidl);
    return "sha256:" + Poco::DigestEngine::digestToHex(sha.digest());
}

// --- mechanisms ------------------------------------------------------------

std::string pop3MechanismName(Pop3Mechanism mechanism)
{
    switch (mechanism) {
    case Pop3Mechanism::Auto:
        return "auto";
    case Pop3Mechanism::User:
        return "user";
    case Pop3Mechanism::Apop:
        return "apop";
    case Pop3Mechanism::Plain:
        return "plain";
    case Pop3Mechanism::Login:
        return "login";
    }
    return "auto";
}

Pop3Mechanism parsePop3Mechanism(const std::string& text)
{
    for (auto m : {Pop3Mechanism::Auto, Pop3Mechanism::User, Pop3Mechanism::Apop,
                   Pop3Mechanism::Plain, Pop3Mechanism::Login})
        if (text == pop3MechanismName(m))
            return m;
    throw InputError("auth mechanism: '" + text + "' is not one of auto, user, apop, plain, login");
}

bool Pop3Capabilities::has(const std::string& tag) const
{
    std::string wanted = upper(tag);
    for (const std::string& line : lines) {
        std::vector<std::string> w = words(line);
        if (!w.empty() && upper(w[0]) == wanted)
            return true;
    }
    return false;
}

std::vector<std::string> Pop3Capabilities::saslMechanisms() const
{
    for (const std::string& line : lines) {
        std::vector<std::string> w = words(line);
        if (!w.empty() && upper(w[0]) == "SASL") {
            std::vector<std::string> out;
            for (std::size_t i = 1; i < w.size(); ++i)
                out.push_back(upper(w[i]));
            return out;
        }
    }
    return {};
}

std::vector<Pop3Mechanism> chooseMechanisms(Pop3Mechanism wanted, const Pop3Capabilities& caps,
                                            bool apopOffered, bool tlsActive, bool plaintextAllowed)
{
    std::vector<std::string> sasl = caps.saslMechanisms();
    auto offers = [&](const char* m) {
        return std::find(sasl.begin(), sasl.end(), m) != sasl.end();
    };
    bool userOffered = !caps.known || caps.has("USER"); // RFC 1939 servers without CAPA do USER
    const bool secure = tlsActive || plaintextAllowed;
    const char* const clear = "refusing to send the password in clear: the connection is not "
                              "encrypted (allowed only with security none and allowPlaintextAuth)";
    switch (wanted) {
    case Pop3Mechanism::Auto: {
        // APOP first: where it works, the password never leaves this host.
        // One SASL mechanism only: PLAIN and LOGIN send the same credentials,
        // so a second one adds nothing but a failed login that counts towards
        // a lockout where the provider counts them.
        std::vector<Pop3Mechanism> order;
        if (apopOffered)
            order.push_back(Pop3Mechanism::Apop);
        if (secure) {
            if (offers("PLAIN"))
                order.push_back(Pop3Mechanism::Plain);
            else if (offers("LOGIN"))
                order.push_back(Pop3Mechanism::Login);
            if (userOffered)
                order.push_back(Pop3Mechanism::User);
        }
        if (order.empty())
            throw Pop3AuthError(Pop3Stage::Auth, "AUTH",
                                secure ? "server offers none of APOP, SASL PLAIN, SASL LOGIN, USER"
                                       : clear);
        return order;
    }
    case Pop3Mechanism::Apop:
        if (!apopOffered)
            throw Pop3AuthError(Pop3Stage::Auth, "APOP", "server greeting has no APOP timestamp");
        return {wanted};
    case Pop3Mechanism::User:
    case Pop3Mechanism::Plain:
    case Pop3Mechanism::Login:
        if (!secure)
            throw Pop3AuthError(Pop3Stage::Auth, "AUTH", clear);
        if (wanted == Pop3Mechanism::Plain && caps.known && !offers("PLAIN"))
            throw Pop3AuthError(Pop3Stage::Auth, "AUTH PLAIN", "server does not offer SASL PLAIN");
        if (wanted == Pop3Mechanism::Login && caps.known && !offers("LOGIN"))
            throw Pop3AuthError(Pop3Stage::Auth, "AUTH LOGIN", "server does not offer SASL LOGIN");
        return {wanted};
    }
    return {wanted};
}

// --- connection ------------------------------------------------------------

Pop3Client::Pop3Client(Pop3Settings settings) : settings_(std::move(settings)) {}

Pop3Client::~Pop3Client()
{
    try {
        if (connected_)
            socket_.close();
    } catch (...) {
    }
}

int Pop3Client::port() const
{
    if (settings_.port > 0)
        return settings_.port;
    return settings_.security == Security::SslTls ? 995 : 110;
}

bool Pop3Client::plaintextAllowed() const
{
    return tlsActive_ || (settings_.security == Security::None && settings_.allowPlaintextAuth);
}

void Pop3Client::fail(const Pop3Error& error)
{
    // After an I/O or protocol failure the reply stream is out of step: no more commands.
    broken_ = true;
    try {
        if (connected_)
            socket_.close();
    } catch (...) {
    }
    connected_ = false;
    if (settings_.trace)
        settings_.trace->received("[session aborted: " + std::string(error.what()) + "]");
    if (const auto* lost = dynamic_cast<const Pop3OutOfStepError*>(&error))
        throw *lost;
    switch (error.kind()) {
    case Pop3ErrorKind::Timeout:
        throw Pop3TimeoutError(error.stage(), error.command(), error.detail());
    case Pop3ErrorKind::Network:
        throw Pop3NetworkError(error.stage(), error.command(), error.detail());
    case Pop3ErrorKind::Tls:
        throw Pop3TlsError(error.stage(), error.command(), error.detail(), error.serverText());
    default:
        throw Pop3ProtocolError(error.stage(), error.command(), error.detail(), error.serverText());
    }
}

void Pop3Client::requireUsable(Pop3Stage stage, const std::string& command)
{
    if (broken_)
        throw Pop3NetworkError(stage, command, "session unusable after an earlier failure");
    if (!connected_)
        throw Pop3NetworkError(stage, command, "not connected");
}

void Pop3Client::open(const StageObserver& onStage)
{
    if (connected_ || broken_)
        throw Pop3NetworkError(Pop3Stage::Connect, "connect", "open() called twice");
    connectTcp(onStage);
    greet(onStage);
}

void Pop3Client::openOn(const Poco::Net::StreamSocket& connected, const StageObserver& onStage)
{
    if (connected_ || broken_)
        throw Pop3NetworkError(Pop3Stage::Connect, "connect", "open() called twice");
    socket_ = connected;
    connected_ = true;
    greet(onStage);
}

void Pop3Client::greet(const StageObserver& onStage)
{
    if (settings_.security == Security::SslTls)
        handshake(Pop3Stage::Tls, onStage);

    Reply hello = readReply(Pop3Stage::Greeting, "greeting");
    greeting_ = hello.line;
    if (!hello.ok)
        throw Pop3ServerError(Pop3Stage::Greeting, "greeting", hello.line);
    // APOP timestamp: the msg-id "<...>" in the greeting (RFC 1939 section 7)
    std::size_t lt = greeting_.rfind('<');
    std::size_t gt = lt == std::string::npos ? lt : greeting_.find('>', lt);
    if (gt != std::string::npos && greeting_.find('@', lt) < gt)
        apopTimestamp_ = greeting_.substr(lt, gt - lt + 1);
    if (onStage)
        onStage(Pop3Stage::Greeting, flattenServerText(greeting_));

    readCapabilities();
    if (settings_.security == Security::StartTls) {
        startTlsCommand(onStage);
        readCapabilities(); // RFC 2595: forget what was said before TLS
    }
    if (onStage) {
        std::string summary;
        for (const std::string& line : caps_.lines)
            summary += (summary.empty() ? "" : ", ") + line;
        onStage(Pop3Stage::Capa, caps_.known ? summary : "CAPA not supported");
    }
}

void Pop3Client::connectTcp(const StageObserver& onStage)
{
    std::vector<Poco::Net::IPAddress> addresses;
    Poco::Net::IPAddress literal;
    if (Poco::Net::IPAddress::tryParse(settings_.host, literal)) {
        addresses.push_back(literal);
    } else {
        try {
            addresses = Poco::Net::DNS::hostByName(settings_.host).addresses();
        } catch (const Poco::Exception& e) {
            throw Pop3NetworkError(Pop3Stage::Resolve, "resolve " + settings_.host,
                                   "cannot resolve: " + e.displayText());
        }
        if (addresses.empty())
            throw Pop3NetworkError(Pop3Stage::Resolve, "resolve " + settings_.host,
                                   "no address found");
    }
    if (onStage) {
        std::string list;
        for (const auto& a : addresses)
            list += (list.empty() ? "" : ", ") + a.toString();
        onStage(Pop3Stage::Resolve, settings_.host + " -> " + list);
    }

    std::string problems;
    bool timedOut = false;
    for (const auto& address : addresses) {
        Poco::Net::SocketAddress peer(address, static_cast<Poco::UInt16>(port()));
        try {
            Poco::Net::StreamSocket socket;
            socket.connect(peer, timespan(settings_.connectTimeout));
            socket.setReceiveTimeout(timespan(settings_.readTimeout));
            socket.setSendTimeout(timespan(settings_.readTimeout));
            socket.setNoDelay(true);
            socket_ = socket;
            connected_ = true;
            if (onStage)
                onStage(Pop3Stage::Connect, peer.toString());
            return;
        } catch (const Poco::TimeoutException&) {
            timedOut = true;
            problems += (problems.empty() ? "" : "; ") + peer.toString() + ": timed out";
        } catch (const Poco::Exception& e) {
            problems += (problems.empty() ? "" : "; ") + peer.toString() + ": " + e.displayText();
        }
    }
    if (timedOut && addresses.size() == 1)
        throw Pop3TimeoutError(Pop3Stage::Connect, "connect", problems);
    throw Pop3NetworkError(Pop3Stage::Connect, "connect", problems);
}

void Pop3Client::handshake(Pop3Stage stage, const StageObserver& onStage)
{
    try {
        socket_ = startTls(socket_, settings_.tls, settings_.host, stage, tlsInfo_);
    } catch (const Pop3Error& e) {
        fail(e);
    }
    tlsActive_ = true;
    std::string detail = tlsInfo_.protocol + ", cipher " + tlsInfo_.cipher + ", certificate " +
                         tlsInfo_.subject + ", expires " + tlsInfo_.notAfter;
    if (settings_.trace)
        settings_.trace->received("[TLS established: " + detail + "]");
    if (onStage)
        onStage(Pop3Stage::Tls, detail);
}

void Pop3Client::readCapabilities()
{
    caps_ = Pop3Capabilities();
    sendLine(Pop3Stage::Capa, "CAPA");
    Reply reply = readReply(Pop3Stage::Capa, "CAPA");
    if (!reply.ok)
        return; // an RFC 1939 server: no capabilities known
    caps_.known = true;
    readMultiLine(Pop3Stage::Capa, "CAPA", kMaxStatusLine,
                  [this](const std::string& line, std::size_t) { caps_.lines.push_back(line); });
}

void Pop3Client::startTlsCommand(const StageObserver& onStage)
{
    if (!caps_.has("STLS"))
        fail(Pop3TlsError(Pop3Stage::StartTls, "STLS",
                          "server does not offer STLS; refusing to go on without TLS"));
    sendLine(Pop3Stage::StartTls, "STLS");
    Reply reply = readReply(Pop3Stage::StartTls, "STLS");
    if (!reply.ok) {
        broken_ = true;
        try {
            socket_.close();
        } catch (...) {
        }
        connected_ = false;
        throw Pop3TlsError(Pop3Stage::StartTls, "STLS",
                           "server refused STLS; refusing to go on without TLS", reply.line);
    }
    // Bytes that arrived with or after "+OK" but before the handshake were not
    // protected by TLS (an injection attempt or a broken server): drop them.
    if (bufferPos_ < buffer_.size() && settings_.trace)
        settings_.trace->received("[discarded " + std::to_string(buffer_.size() - bufferPos_) +
                                  " bytes received before the TLS handshake]");
    buffer_.clear();
    readLast_ = false;
    bufferPos_ = 0;
    handshake(Pop3Stage::Tls, onStage);
}

// --- lines -----------------------------------------------------------------

void Pop3Client::fill(Pop3Stage stage, const std::string& command)
{
    if (bufferPos_ > 0 && bufferPos_ >= buffer_.size() / 2) {
        buffer_.erase(0, bufferPos_);
        bufferPos_ = 0;
    }
    char chunk[16384];
    int n = 0;
    // A read right after a read: the server may be holding the rest back for our ACK.
    if (readLast_)
        ackAtOnce();
    try {
        n = socket_.receiveBytes(chunk, sizeof chunk);
    } catch (const Poco::TimeoutException&) {
        fail(Pop3TimeoutError(stage, command,
                              "no data from server within " +
                                  std::to_string(settings_.readTimeout.count()) + " ms"));
    } catch (const Poco::Exception& e) {
        fail(Pop3NetworkError(stage, command, e.displayText()));
    }
    if (n <= 0)
        fail(Pop3NetworkError(stage, command, "connection closed by server"));
    buffer_.append(chunk, static_cast<std::size_t>(n));
    readLast_ = true;
}

// ackAtOnce - ask the kernel to acknowledge what arrives next without its delayed-ACK
// wait. Servers that write a reply line by line with Nagle on (popa3d, solid-pop3d)
// hold each line after the first until we acknowledge it; while we wait for the rest
// of the reply we send nothing the ACK could ride on, so every reply would cost the
// delayed-ACK timer (about 40 ms on Linux). Linux forgets TCP_QUICKACK on its own,
// so it is set again before every read that follows a read with nothing sent in
// between (setting it sends the ACK still pending at once); after a command the
// ACK rides on it, and a reply that came whole needs no second read: an idle
// poll makes no such call. Best effort: a failure only costs speed.
void Pop3Client::ackAtOnce()
{
    const int one = 1;
    (void)::setsockopt(socket_.impl()->sockfd(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

bool Pop3Client::tryReadLine(Pop3Stage stage, const std::string& command, std::size_t max,
                             std::string& line, std::size_t& raw)
{
    std::size_t searched = bufferPos_;
    for (;;) {
        std::size_t nl = buffer_.find('\n', searched);
        if (nl != std::string::npos) {
            raw = nl + 1 - bufferPos_;
            if (raw > max)
                return false;
            std::size_t end = nl;
            if (end > bufferPos_ && buffer_[end - 1] == '\r')
                --end;
            line.assign(buffer_, bufferPos_, end - bufferPos_);
            bufferPos_ = nl + 1;
            return true;
        }
        if (buffer_.size() - bufferPos_ > max)
            return false;
        std::size_t scanned = buffer_.size() - bufferPos_; // fill() may move the buffer
        fill(stage, command);
        searched = bufferPos_ + scanned;
    }
}

std::size_t Pop3Client::readLine(Pop3Stage stage, const std::string& command, std::size_t max,
                                 std::string& line)
{
    std::size_t raw = 0;
    if (!tryReadLine(stage, command, max, line, raw))
        fail(Pop3ProtocolError(stage, command,
                               "server sent a line longer than " + std::to_string(max) + " bytes"));
    return raw;
}

std::string Pop3Client::pendingLineStart() const
{
    return buffer_.substr(bufferPos_, 32);
}

void Pop3Client::sendRaw(Pop3Stage stage, const std::string& command, const std::string& bytes)
{
    requireUsable(stage, command);
    readLast_ = false;
    const char* p = bytes.data();
    std::size_t left = bytes.size();
    try {
        while (left > 0) {
            int n = socket_.sendBytes(p, static_cast<int>(left));
            if (n <= 0)
                fail(Pop3NetworkError(stage, command, "connection closed while sending"));
            p += n;
            left -= static_cast<std::size_t>(n);
        }
    } catch (const Pop3Error&) {
        throw;
    } catch (const Poco::TimeoutException&) {
        fail(Pop3TimeoutError(stage, command, "timed out while sending"));
    } catch (const Poco::Exception& e) {
        fail(Pop3NetworkError(stage, command, e.displayText()));
    }
}

void Pop3Client::sendLine(Pop3Stage stage, const std::string& line, bool saslContinuation)
{
    std::string shown = redactClientLine(line, saslContinuation);
    if (settings_.trace)
        settings_.trace->sent(shown);
    sendRaw(stage, saslContinuation ? "AUTH" : shown, line + "\r\n");
}

Pop3Client::Reply Pop3Client::readReply(Pop3Stage stage, const std::string& command,
                                        bool allowContinuation, std::size_t max)
{
    requireUsable(stage, command);
    Reply reply;
    readLine(stage, command, max, reply.line);
    if (settings_.trace) {
        bool challenge = allowContinuation && !reply.line.empty() && reply.line[0] == '+' &&
                         reply.line.compare(0, 3, "+OK") != 0;
        settings_.trace->received(challenge ? "+ ********" : reply.line);
    }
    auto startsWith = [&](const char* status) {
        std::size_t n = std::char_traits<char>::length(status);
        return reply.line.compare(0, n, status) == 0 &&
               (reply.line.size() == n || reply.line[n] == ' ');
    };
    if (startsWith("+OK")) {
        reply.ok = true;
        return reply;
    }
    if (startsWith("-ERR"))
        return reply;
    if (allowContinuation && startsWith("+"))
        return reply;
    fail(Pop3ProtocolError(stage, command, "unexpected reply", reply.line));
}

std::string Pop3Client::expectOk(Pop3Stage stage, const std::string& command)
{
    Reply reply = readReply(stage, command);
    if (!reply.ok)
        throw Pop3ServerError(stage, command, reply.line);
    return reply.line;
}

void Pop3Client::readMultiLine(Pop3Stage stage, const std::string& command, std::size_t max,
                               const std::function<void(const std::string&, std::size_t)>& onLine,
                               const std::function<std::string()>& overlong,
                               const std::function<void(std::size_t)>& onDiscarded)
{
    std::string line;
    for (;;) {
        std::size_t raw = 0;
        if (!tryReadLine(stage, command, max, line, raw)) {
            if (!onDiscarded)
                fail(Pop3ProtocolError(stage, command,
                                       overlong ? overlong()
                                                : "server sent a line longer than " +
                                                      std::to_string(max) + " bytes"));
            onDiscarded(discardLine(stage, command)); // too long to be the end mark
            continue;
        }
        if (!line.empty() && line[0] == '.') {
            if (line.size() == 1)
                return;
            // RFC 1939 section 3: the receiver strips the first "." of any other
            // line. Leniently also when the next octet is not "." (".bad", ". "):
            // a server that forgot to stuff a line must not block the mailbox.
            line.erase(0, 1);
            --raw;
        }
        onLine(line, raw);
    }
}

std::size_t Pop3Client::discardLine(Pop3Stage stage, const std::string& command)
{
    // Drop what is buffered as it is scanned: memory stays at one read chunk
    // beyond the cap however long the line is.
    std::size_t dropped = 0;
    for (;;) {
        const std::size_t nl = buffer_.find('\n', bufferPos_);
        if (nl != std::string::npos) {
            dropped += nl + 1 - bufferPos_;
            bufferPos_ = nl + 1;
            return dropped;
        }
        dropped += buffer_.size() - bufferPos_;
        bufferPos_ = buffer_.size();
        fill(stage, command);
    }
}

Pop3Client::MessageRead Pop3Client::readMessage(Pop3Stage stage, const std::string& command,
                                                std::ostream& out, bool discardOverlong)
{
    MessageRead read;
    TraceBodyCutter cutter;
    ProtocolTrace* trace = settings_.trace;
    std::function<void(std::size_t)> onDiscarded;
    if (discardOverlong)
        onDiscarded = [&](std::size_t dropped) {
            // Nothing more reaches the sink: the message is malformed, and a
            // part of it must never look like the whole.
            read.overlong = true;
            read.received += static_cast<std::int64_t>(dropped);
            if (trace)
                trace->received("[line dropped: " + std::to_string(dropped) +
                                " octets, longer than " + std::to_string(kMaxDataLine) + "]");
        };
    readMultiLine(
        stage, command, kMaxDataLine,
        [&](const std::string& line, std::size_t) {
            // Every line ends in CRLF, also from a server that sends bare LF: the
            // MTA and the milter see RFC 5322 line ends only.
            const std::size_t written = line.size() + 2;
            read.received += static_cast<std::int64_t>(written);
            if (!read.overlong) {
                out.write(line.data(), static_cast<std::streamsize>(line.size()));
                out.write("\r\n", 2);
                read.written += static_cast<std::int64_t>(written);
            }
            if (cutter.line(line, written) && trace)
                trace->received(line);
        },
        nullptr, onDiscarded);
    if (trace) {
        std::string summary = cutter.summary();
        if (!summary.empty())
            trace->received(summary);
        trace->received(".");
    }
    if (!out)
        throw OperationError(command + ": writing the message failed");
    return read;
}

// --- authentication --------------------------------------------------------

void Pop3Client::authFailed(const std::string& command, const std::string& serverLine)
{
    if (isServerCondition(parseResponseCode(serverLine)))
        throw Pop3ServerError(Pop3Stage::Auth, command, serverLine);
    throw Pop3AuthError(Pop3Stage::Auth, command, "authentication failed", serverLine);
}

void Pop3Client::authenticate(const std::string& user, const std::string& secret,
                              Pop3Mechanism mechanism)
{
    requireUsable(Pop3Stage::Auth, "AUTH");
    attempts_.clear();
    used_ = Pop3Mechanism::Auto;
    const std::vector<Pop3Mechanism> order =
        chooseMechanisms(mechanism, caps_, !apopTimestamp_.empty(), tlsActive_, plaintextAllowed());
    std::exception_ptr refusal;
    for (std::size_t i = 0; i < order.size(); ++i) {
        const Pop3Mechanism m = order[i];
        // A server may hang up after a refusal: one new session per mechanism
        // left. The hang-up shows either now or as this try's first read.
        bool reconnected = false;
        if (i > 0 && !connected_) {
            reconnect();
            reconnected = true;
        }
        for (;;) {
            try {
                authenticateWith(m, user, secret);
                used_ = m;
                return;
            } catch (const Pop3NetworkError&) {
                if (i == 0 || reconnected)
                    throw;
                reconnect();
                reconnected = true;
            } catch (const Pop3AuthError& e) {
                attempts_.push_back({m, false, e.serverText()});
                refusal = std::current_exception();
                break;
            } catch (const Pop3ServerError& e) {
                attempts_.push_back({m, false, e.serverText()});
                if (e.stage() != Pop3Stage::Auth || endsAuthentication(e.responseCode()))
                    throw;
                refusal = std::current_exception(); // [SYS/PERM]: maybe this mechanism only
                break;
            }
        }
    }
    std::rethrow_exception(refusal);
}

void Pop3Client::reconnect()
{
    try {
        if (connected_)
            socket_.close();
    } catch (...) {
    }
    if (settings_.trace)
        settings_.trace->received("[reconnecting: the server closed the connection after a "
                                  "refused login]");
    socket_ = Poco::Net::StreamSocket();
    connected_ = false;
    broken_ = false;
    buffer_.clear();
    readLast_ = false;
    bufferPos_ = 0;
    greeting_.clear();
    apopTimestamp_.clear();
    caps_ = Pop3Capabilities();
    tlsActive_ = false;
    tlsInfo_ = TlsInfo();
    open();
}

void Pop3Client::authenticateWith(Pop3Mechanism mechanism, const std::string& user,
                                  const std::string& secret)
{
    switch (mechanism) {
    case Pop3Mechanism::User: {
        sendLine(Pop3Stage::Auth, "USER " + user);
        Reply reply = readReply(Pop3Stage::Auth, "USER");
        if (!reply.ok)
            authFailed("USER", reply.line);
        sendLine(Pop3Stage::Auth, "PASS " + secret);
        reply = readReply(Pop3Stage::Auth, "PASS");
        if (!reply.ok)
            authFailed("PASS", reply.line);
        attempts_.push_back({mechanism, true, flattenServerText(reply.line)});
        return;
    }
    case Pop3Mechanism::Apop: {
        if (apopTimestamp_.empty()) // a new session after a hang-up may not offer it
            throw Pop3AuthError(Pop3Stage::Auth, "APOP", "server greeting has no APOP timestamp");
        Poco::MD5Engine md5;
        md5.update(apopTimestamp_ + secret);
        sendLine(Pop3Stage::Auth,
                 "APOP " + user + " " + Poco::DigestEngine::digestToHex(md5.digest()));
        Reply reply = readReply(Pop3Stage::Auth, "APOP");
        if (!reply.ok)
            authFailed("APOP", reply.line);
        attempts_.push_back({mechanism, true, flattenServerText(reply.line)});
        return;
    }
    case Pop3Mechanism::Plain:
        attempts_.push_back(
            {mechanism, true,
             saslExchange("PLAIN", std::string() + '\0' + user + '\0' + secret, SaslStep())});
        return;
    case Pop3Mechanism::Login: {
        int round = 0;
        attempts_.push_back(
            {mechanism, true, saslExchange("LOGIN", std::nullopt, [&](const std::string&) {
                 return ++round == 1 ? user : secret; // "Username:" then "Password:"
             })});
        return;
    }
    case Pop3Mechanism::Auto:
        break;
    }
    throw Pop3AuthError(Pop3Stage::Auth, "AUTH", "no mechanism chosen");
}

void Pop3Client::authSasl(const std::string& mechanism,
                          const std::optional<std::string>& initialResponse, const SaslStep& step)
{
    saslExchange(mechanism, initialResponse, step);
}

std::string Pop3Client::saslExchange(const std::string& mechanism,
                                     const std::optional<std::string>& initialResponse,
                                     const SaslStep& step)
{
    const std::string command = "AUTH " + upper(mechanism);
    requireUsable(Pop3Stage::Auth, command);
    if (!plaintextAllowed())
        throw Pop3AuthError(
            Pop3Stage::Auth, command,
            "refusing to send credentials in clear: the connection is not encrypted");
    std::string line = command;
    std::optional<std::string> pending;
    if (initialResponse) {
        std::string encoded = initialResponse->empty() ? "=" : base64Encode(*initialResponse);
        if (line.size() + 1 + encoded.size() <= 253) // RFC 5034: the command fits 255 octets
            line += " " + encoded;
        else
            pending = encoded;
    }
    sendLine(Pop3Stage::Auth, line);
    for (int round = 0; round < 16; ++round) {
        Reply reply = readReply(Pop3Stage::Auth, command, true);
        if (reply.ok)
            return flattenServerText(reply.line);
        if (reply.line.compare(0, 4, "-ERR") == 0)
            authFailed(command, reply.line);
        // "+ challenge"
        if (pending) {
            sendLine(Pop3Stage::Auth, *pending, true);
            pending.reset();
            continue;
        }
        std::string challenge;
        try {
            challenge = base64Decode(reply.line.size() > 2 ? reply.line.substr(2) : std::string());
        } catch (const Poco::Exception&) {
            fail(Pop3ProtocolError(Pop3Stage::Auth, command, "SASL challenge is not base64"));
        }
        if (!step) {
            sendLine(Pop3Stage::Auth, "*", true); // cancel (RFC 5034 section 4)
            Reply end = readReply(Pop3Stage::Auth, command);
            throw Pop3AuthError(Pop3Stage::Auth, command,
                                "server sent a challenge this mechanism does not expect", end.line);
        }
        std::string response = step(challenge);
        sendLine(Pop3Stage::Auth, response.empty() ? std::string() : base64Encode(response), true);
    }
    fail(Pop3ProtocolError(Pop3Stage::Auth, command, "too many SASL rounds"));
}

// --- transaction commands --------------------------------------------------

Pop3Stat Pop3Client::stat()
{
    sendLine(Pop3Stage::Stat, "STAT");
    std::string line = expectOk(Pop3Stage::Stat, "STAT");
    std::vector<std::string> w = words(line);
    Pop3Stat s;
    s.messages = w.size() >= 3 ? parseNumber(w[1]) : -1;
    s.octets = w.size() >= 3 ? parseNumber(w[2]) : -1;
    if (s.messages < 0 || s.octets < 0)
        fail(Pop3ProtocolError(Pop3Stage::Stat, "STAT", "malformed STAT reply", line));
    return s;
}

static Pop3Listing parseListing(const std::string& text, bool& ok)
{
    std::vector<std::string> w = words(text);
    Pop3Listing l;
    ok = w.size() >= 2 && parseNumber(w[0]) > 0 && parseNumber(w[1]) >= 0 &&
         parseNumber(w[0]) <= 0x7fffffff;
    if (ok) {
        l.number = static_cast<int>(parseNumber(w[0]));
        l.octets = parseNumber(w[1]);
    }
    return l;
}

std::vector<Pop3Listing> Pop3Client::list()
{
    sendLine(Pop3Stage::List, "LIST");
    expectOk(Pop3Stage::List, "LIST");
    std::vector<Pop3Listing> out;
    readMultiLine(
        Pop3Stage::List, "LIST", kMaxStatusLine, [&](const std::string& line, std::size_t) {
            bool ok = false;
            Pop3Listing l = parseListing(line, ok);
            if (!ok)
                fail(Pop3ProtocolError(Pop3Stage::List, "LIST", "malformed LIST line", line));
            out.push_back(l);
        });
    return out;
}

Pop3Listing Pop3Client::list(int number)
{
    std::string command = "LIST " + std::to_string(number);
    sendLine(Pop3Stage::List, command);
    std::string line = expectOk(Pop3Stage::List, command);
    bool ok = false;
    Pop3Listing l = parseListing(line.size() > 4 ? line.substr(4) : std::string(), ok);
    if (!ok || l.number != number)
        fail(Pop3ProtocolError(Pop3Stage::List, command, "malformed LIST reply", line));
    return l;
}

/// parseUid - "n uidl" into a number and the uidl's key (pop3UidKey); false when malformed.
static bool parseUid(const std::string& text, Pop3Uid& uid)
{
    std::vector<std::string> w = words(text);
    if (w.size() != 2 || parseNumber(w[0]) <= 0 || parseNumber(w[0]) > 0x7fffffff ||
        !validPop3Uid(w[1]))
        return false;
    uid.number = static_cast<int>(parseNumber(w[0]));
    uid.uid = pop3UidKey(w[1]);
    return true;
}

std::vector<Pop3Uid> Pop3Client::uidl()
{
    sendLine(Pop3Stage::Uidl, "UIDL");
    expectOk(Pop3Stage::Uidl, "UIDL");
    std::vector<Pop3Uid> out;
    const std::string cap = "the " + std::to_string(kMaxUidlLine) + "-byte cap";
    readMultiLine(
        Pop3Stage::Uidl, "UIDL", kMaxUidlLine,
        [&](const std::string& line, std::size_t) {
            Pop3Uid uid;
            if (!parseUid(line, uid))
                fail(Pop3ProtocolError(Pop3Stage::Uidl, "UIDL",
                                       "malformed UIDL line (RFC 1939: a message number and "
                                       "printable ASCII characters)",
                                       shortServerText(line)));
            out.push_back(uid);
        },
        [&] {
            // Name the message: the number that opens the line, else the one before it.
            const std::string start = pendingLineStart();
            const std::string number = start.substr(0, start.find_first_not_of("0123456789"));
            if (!number.empty() && number.size() <= 10)
                return "the UIDL line of message " + number + " is longer than " + cap;
            return "a UIDL line " +
                   (out.empty() ? std::string("before any message")
                                : "after message " + std::to_string(out.back().number)) +
                   " is longer than " + cap;
        });
    return out;
}

Pop3Uid Pop3Client::uidl(int number)
{
    std::string command = "UIDL " + std::to_string(number);
    sendLine(Pop3Stage::Uidl, command);
    Reply reply = readReply(Pop3Stage::Uidl, command, false, kMaxUidlLine);
    if (!reply.ok)
        throw Pop3ServerError(Pop3Stage::Uidl, command, reply.line);
    Pop3Uid uid;
    if (!parseUid(reply.line.size() > 4 ? reply.line.substr(4) : std::string(), uid) ||
        uid.number != number)
        fail(Pop3ProtocolError(Pop3Stage::Uidl, command, "malformed UIDL reply",
                               shortServerText(reply.line)));
    return uid;
}

std::int64_t Pop3Client::retrieve(int number, std::ostream& out, std::int64_t expectedOctets)
{
    std::string command = "RETR " + std::to_string(number);
    sendLine(Pop3Stage::Retr, command);
    expectOk(Pop3Stage::Retr, command);
    std::int64_t octets = readMessage(Pop3Stage::Retr, command, out).written;
    Pop3BatchReply r;
    r.octets = octets;
    r.listed = expectedOctets;
    if (r.sizeDiffers())
        checkStep({number, expectedOctets, std::string()}, octets);
    return octets;
}

// --- the step check --------------------------------------------------------
//
// LIST sizes are advisory, so a message whose size differs may be whole or
// may have been cut short at an unstuffed "." line, its rest still in the
// stream. "UIDL n" tells the two apart: in step, the very next line is its
// answer; out of step, it is the rest of the message or a later reply.

void Pop3Client::outOfStep(int suspect, const std::string& command, const std::string& detail,
                           const std::string& serverLine)
{
    fail(
        Pop3OutOfStepError(suspect, Pop3Stage::Retr, command, detail, shortServerText(serverLine)));
}

void Pop3Client::checkStep(const Pop3Listing& message, std::int64_t delivered)
{
    const std::string n = std::to_string(message.number);
    const std::string command = "UIDL " + n;
    const std::string sizes = "RETR " + n + " delivered " + std::to_string(delivered) +
                              " octets, LIST said " + std::to_string(message.octets);
    sendLine(Pop3Stage::Retr, command);
    std::string line;
    std::size_t raw = 0;
    if (!tryReadLine(Pop3Stage::Retr, command, kMaxUidlLine, line, raw))
        outOfStep(message.number, command,
                  sizes + "; the stream lost step: the line after " + command + " is longer than " +
                      std::to_string(kMaxUidlLine) + " bytes",
                  std::string());
    if (settings_.trace)
        settings_.trace->received(shortServerText(line));
    Pop3Uid uid;
    const bool inStep = line.compare(0, 4, "+OK ") == 0 && parseUid(line.substr(4), uid) &&
                        uid.number == message.number &&
                        (message.uid.empty() || uid.uid == message.uid);
    if (!inStep)
        outOfStep(message.number, command,
                  sizes + "; the stream lost step: " + command + " was not answered with \"+OK " +
                      n + " " + (message.uid.empty() ? "<uid>" : message.uid) + "\"",
                  line);
}

std::int64_t Pop3Client::top(int number, int lines, std::ostream& out)
{
    std::string command = "TOP " + std::to_string(number) + " " + std::to_string(lines);
    sendLine(Pop3Stage::Top, command);
    expectOk(Pop3Stage::Top, command);
    return readMessage(Pop3Stage::Top, command, out).written;
}

void Pop3Client::dele(int number)
{
    std::string command = "DELE " + std::to_string(number);
    sendLine(Pop3Stage::Dele, command);
    expectOk(Pop3Stage::Dele, command);
}

void Pop3Client::rset()
{
    sendLine(Pop3Stage::Rset, "RSET");
    expectOk(Pop3Stage::Rset, "RSET");
}

void Pop3Client::noop()
{
    sendLine(Pop3Stage::Noop, "NOOP");
    expectOk(Pop3Stage::Noop, "NOOP");
}

void Pop3Client::quit()
{
    sendLine(Pop3Stage::Quit, "QUIT");
    Reply reply = readReply(Pop3Stage::Quit, "QUIT");
    try {
        socket_.close();
    } catch (...) {
    }
    connected_ = false;
    if (!reply.ok)
        throw Pop3ServerError(Pop3Stage::Quit, "QUIT", reply.line);
}

// --- batches ---------------------------------------------------------------

namespace
{
// RFC 2449 PIPELINING: the client may send many commands at once; a window
// keeps what we write small enough never to block on a full socket buffer.
const std::size_t kPipelineWindow = 128; // commands in flight: a batch (fetcher.cpp)
} // namespace

std::vector<Pop3BatchReply>
Pop3Client::retrieveMany(const std::vector<Pop3Listing>& messages,
                         const std::function<std::ostream&(int)>& sinkFor,
                         const std::function<void(const Pop3BatchReply&)>& done)
{
    std::vector<Pop3BatchReply> replies;
    const std::size_t window = pipelining() ? kPipelineWindow : 1;
    try {
        for (std::size_t first = 0; first < messages.size(); first += window) {
            std::size_t last = std::min(messages.size(), first + window);
            std::string batch;
            for (std::size_t i = first; i < last; ++i) {
                std::string command = "RETR " + std::to_string(messages[i].number);
                if (settings_.trace)
                    settings_.trace->sent(command);
                batch += command + "\r\n";
            }
            sendRaw(Pop3Stage::Retr, "RETR", batch);
            // The first message of this window whose size differed from LIST:
            // nothing after it is good before the step check has passed.
            const Pop3Listing* unchecked = nullptr;
            std::int64_t uncheckedOctets = 0; // its size as received
            for (std::size_t i = first; i < last; ++i) {
                const Pop3Listing& m = messages[i];
                const std::string command = "RETR " + std::to_string(m.number);
                Pop3BatchReply r;
                r.number = m.number;
                r.listed = m.octets;
                Pop3BatchReply asReceived; // sizeDiffers() of all it sent, dropped lines too
                asReceived.listed = m.octets;
                bool statusDue = true;
                try {
                    Reply reply = readReply(Pop3Stage::Retr, command);
                    statusDue = false;
                    if (!reply.ok) {
                        r.problem = flattenServerText(reply.line);
                    } else {
                        // A line over the cap is dropped and the message read
                        // to its end mark: that message fails, the batch goes on.
                        const MessageRead read =
                            readMessage(Pop3Stage::Retr, command, sinkFor(m.number), true);
                        r.octets = read.written;
                        asReceived.octets = read.received;
                        r.ok = !read.overlong;
                        r.malformed = read.overlong;
                        if (r.malformed)
                            r.problem = "a line of message " + std::to_string(m.number) +
                                        " is longer than " + std::to_string(kMaxDataLine) +
                                        " octets";
                    }
                } catch (const Pop3ProtocolError& e) {
                    // Garbage where a status line was due is the stream out of
                    // step; any framing error is, after an unchecked message.
                    if (!statusDue && !unchecked)
                        throw;
                    const int suspect = unchecked ? unchecked->number : m.number;
                    throw Pop3OutOfStepError(
                        suspect, Pop3Stage::Retr, e.command(),
                        std::string(unchecked ? "the stream lost step after RETR " +
                                                    std::to_string(suspect) +
                                                    " (its size differed from LIST): "
                                              : "the stream lost step: ") +
                            (statusDue ? "the reply is neither +OK nor -ERR" : e.detail()),
                        shortServerText(e.serverText()));
                }
                // A malformed message is framed like any other: when its size
                // differs, it may have been cut short too.
                if (!unchecked && (r.ok || r.malformed) && asReceived.sizeDiffers()) {
                    unchecked = &m;
                    uncheckedOctets = asReceived.octets;
                }
                if (done)
                    done(r);
                replies.push_back(r);
            }
            if (unchecked)
                checkStep(*unchecked, uncheckedOctets);
        }
    } catch (...) {
        // Replies may still be in flight: nothing more can be read in step.
        broken_ = true;
        try {
            if (connected_)
                socket_.close();
        } catch (...) {
        }
        connected_ = false;
        throw;
    }
    return replies;
}

std::vector<Pop3BatchReply> Pop3Client::deleteMany(const std::vector<int>& numbers)
{
    std::vector<Pop3BatchReply> replies;
    std::size_t window = pipelining() ? kPipelineWindow : 1;
    for (std::size_t first = 0; first < numbers.size(); first += window) {
        std::size_t last = std::min(numbers.size(), first + window);
        std::string batch;
        for (std::size_t i = first; i < last; ++i) {
            std::string command = "DELE " + std::to_string(numbers[i]);
            if (settings_.trace)
                settings_.trace->sent(command);
            batch += command + "\r\n";
        }
        sendRaw(Pop3Stage::Dele, "DELE", batch);
        for (std::size_t i = first; i < last; ++i) {
            Pop3BatchReply r;
            r.number = numbers[i];
            Reply reply = readReply(Pop3Stage::Dele, "DELE " + std::to_string(numbers[i]));
            r.ok = reply.ok;
            if (!reply.ok)
                r.problem = flattenServerText(reply.line);
            replies.push_back(r);
        }
    }
    return replies;
}

} // namespace popgate
