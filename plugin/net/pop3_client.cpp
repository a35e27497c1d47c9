// pop3_client.cpp - the POP3 session: line reading with caps and timeouts,
// replies, multi-line data with dot-unstuffing, STLS, authentication and the
// pipelined batches. Reads go through our own buffer (not DialogSocket) so the
// line caps, the timeouts and the STLS buffer discard are ours to decide.
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
#include <Poco/Timespan.h>
#include <algorithm>
#include <sstream>

namespace popgate
{

namespace
{

// sizeDiffers - RETR did not deliver what LIST announced. A server may add
// the CRLF a stored message lacks before the final dot (Dovecot counts it in
// RETR, not in LIST): two octets more is not a lie.
bool sizeDiffers(std::int64_t listed, std::int64_t delivered)
{
    return delivered != listed && delivered != listed + 2;
}

} // namespace

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

bool validUid(const std::string& uid)
{
    if (uid.empty() || uid.size() > 70)
        return false;
    for (unsigned char c : uid)
        if (c < 0x21 || c > 0x7e)
            return false;
    return true;
}

} // namespace

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

Pop3Mechanism chooseMechanism(Pop3Mechanism wanted, const Pop3Capabilities& caps, bool apopOffered,
                              bool tlsActive, bool plaintextAllowed)
{
    std::vector<std::string> sasl = caps.saslMechanisms();
    auto offers = [&](const char* m) {
        return std::find(sasl.begin(), sasl.end(), m) != sasl.end();
    };
    bool userOffered = !caps.known || caps.has("USER"); // RFC 1939 servers without CAPA do USER
    const char* const clear = "refusing to send the password in clear: the connection is not "
                              "encrypted (allowed only with security none and allowPlaintextAuth)";
    switch (wanted) {
    case Pop3Mechanism::Auto:
        if (!tlsActive && apopOffered)
            return Pop3Mechanism::Apop;
        if (tlsActive || plaintextAllowed) {
            if (offers("PLAIN"))
                return Pop3Mechanism::Plain;
            if (offers("LOGIN"))
                return Pop3Mechanism::Login;
            if (apopOffered)
                return Pop3Mechanism::Apop;
            if (userOffered)
                return Pop3Mechanism::User;
            throw Pop3AuthError(Pop3Stage::Auth, "AUTH",
                                "server offers none of SASL PLAIN, SASL LOGIN, APOP, USER");
        }
        throw Pop3AuthError(Pop3Stage::Auth, "AUTH", clear);
    case Pop3Mechanism::Apop:
        if (!apopOffered)
            throw Pop3AuthError(Pop3Stage::Auth, "APOP", "server greeting has no APOP timestamp");
        return wanted;
    case Pop3Mechanism::User:
    case Pop3Mechanism::Plain:
    case Pop3Mechanism::Login:
        if (!tlsActive && !plaintextAllowed)
            throw Pop3AuthError(Pop3Stage::Auth, "AUTH", clear);
        if (wanted == Pop3Mechanism::Plain && caps.known && !offers("PLAIN"))
            throw Pop3AuthError(Pop3Stage::Auth, "AUTH PLAIN", "server does not offer SASL PLAIN");
        if (wanted == Pop3Mechanism::Login && caps.known && !offers("LOGIN"))
            throw Pop3AuthError(Pop3Stage::Auth, "AUTH LOGIN", "server does not offer SASL LOGIN");
        return wanted;
    }
    return wanted;
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
}

std::size_t Pop3Client::readLine(Pop3Stage stage, const std::string& command, std::size_t max,
                                 std::string& line)
{
    std::size_t searched = bufferPos_;
    for (;;) {
        std::size_t nl = buffer_.find('\n', searched);
        if (nl != std::string::npos) {
            std::size_t raw = nl + 1 - bufferPos_;
            if (raw > max)
                break;
            std::size_t end = nl;
            if (end > bufferPos_ && buffer_[end - 1] == '\r')
                --end;
            line.assign(buffer_, bufferPos_, end - bufferPos_);
            bufferPos_ = nl + 1;
            return raw;
        }
        if (buffer_.size() - bufferPos_ > max)
            break;
        std::size_t scanned = buffer_.size() - bufferPos_; // fill() may move the buffer
        fill(stage, command);
        searched = bufferPos_ + scanned;
    }
    fail(Pop3ProtocolError(stage, command,
                           "server sent a line longer than " + std::to_string(max) + " bytes"));
}

void Pop3Client::sendRaw(Pop3Stage stage, const std::string& command, const std::string& bytes)
{
    requireUsable(stage, command);
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
                                        bool allowContinuation)
{
    requireUsable(stage, command);
    Reply reply;
    readLine(stage, command, kMaxStatusLine, reply.line);
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
                               const std::function<void(const std::string&, std::size_t)>& onLine)
{
    std::string line;
    for (;;) {
        std::size_t raw = readLine(stage, command, max, line);
        if (!line.empty() && line[0] == '.') {
            if (line.size() == 1)
                return;
            if (line[1] != '.')
                fail(Pop3ProtocolError(stage, command,
                                       "invalid multi-line reply: a line starts with '.' but is "
                                       "neither the end mark nor dot-stuffed",
                                       line));
            line.erase(0, 1);
            --raw;
        }
        onLine(line, raw);
    }
}

std::int64_t Pop3Client::readMessage(Pop3Stage stage, const std::string& command, std::ostream& out)
{
    std::int64_t octets = 0;
    TraceBodyCutter cutter;
    ProtocolTrace* trace = settings_.trace;
    readMultiLine(stage, command, kMaxDataLine, [&](const std::string& line, std::size_t raw) {
        out.write(line.data(), static_cast<std::streamsize>(line.size()));
        // keep the server's own line end (CRLF, or LF from a sloppy server)
        out.write(raw - line.size() == 2 ? "\r\n" : "\n",
                  static_cast<std::streamsize>(raw - line.size()));
        octets += static_cast<std::int64_t>(raw);
        if (cutter.line(line, raw) && trace)
            trace->received(line);
    });
    if (trace) {
        std::string summary = cutter.summary();
        if (!summary.empty())
            trace->received(summary);
        trace->received(".");
    }
    if (!out)
        throw OperationError(command + ": writing the message failed");
    return octets;
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
    used_ =
        chooseMechanism(mechanism, caps_, !apopTimestamp_.empty(), tlsActive_, plaintextAllowed());
    switch (used_) {
    case Pop3Mechanism::User: {
        sendLine(Pop3Stage::Auth, "USER " + user);
        Reply reply = readReply(Pop3Stage::Auth, "USER");
        if (!reply.ok)
            authFailed("USER", reply.line);
        sendLine(Pop3Stage::Auth, "PASS " + secret);
        reply = readReply(Pop3Stage::Auth, "PASS");
        if (!reply.ok)
            authFailed("PASS", reply.line);
        return;
    }
    case Pop3Mechanism::Apop: {
        Poco::MD5Engine md5;
        md5.update(apopTimestamp_ + secret);
        sendLine(Pop3Stage::Auth,
                 "APOP " + user + " " + Poco::DigestEngine::digestToHex(md5.digest()));
        Reply reply = readReply(Pop3Stage::Auth, "APOP");
        if (!reply.ok)
            authFailed("APOP", reply.line);
        return;
    }
    case Pop3Mechanism::Plain:
        authSasl("PLAIN", std::string() + '\0' + user + '\0' + secret);
        return;
    case Pop3Mechanism::Login: {
        int round = 0;
        authSasl("LOGIN", std::nullopt, [&](const std::string&) {
            return ++round == 1 ? user : secret; // "Username:" then "Password:"
        });
        return;
    }
    case Pop3Mechanism::Auto:
        break;
    }
}

void Pop3Client::authSasl(const std::string& mechanism,
                          const std::optional<std::string>& initialResponse, const SaslStep& step)
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
            return;
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

static bool parseUid(const std::string& text, Pop3Uid& uid)
{
    std::vector<std::string> w = words(text);
    if (w.size() != 2 || parseNumber(w[0]) <= 0 || parseNumber(w[0]) > 0x7fffffff ||
        !validUid(w[1]))
        return false;
    uid.number = static_cast<int>(parseNumber(w[0]));
    uid.uid = w[1];
    return true;
}

std::vector<Pop3Uid> Pop3Client::uidl()
{
    sendLine(Pop3Stage::Uidl, "UIDL");
    expectOk(Pop3Stage::Uidl, "UIDL");
    std::vector<Pop3Uid> out;
    readMultiLine(Pop3Stage::Uidl, "UIDL", kMaxStatusLine,
                  [&](const std::string& line, std::size_t) {
                      Pop3Uid uid;
                      if (!parseUid(line, uid))
                          fail(Pop3ProtocolError(Pop3Stage::Uidl, "UIDL",
                                                 "malformed UIDL line (RFC 1939: 1-70 "
                                                 "printable ASCII characters)",
                                                 line));
                      out.push_back(uid);
                  });
    return out;
}

Pop3Uid Pop3Client::uidl(int number)
{
    std::string command = "UIDL " + std::to_string(number);
    sendLine(Pop3Stage::Uidl, command);
    std::string line = expectOk(Pop3Stage::Uidl, command);
    Pop3Uid uid;
    if (!parseUid(line.size() > 4 ? line.substr(4) : std::string(), uid) || uid.number != number)
        fail(Pop3ProtocolError(Pop3Stage::Uidl, command, "malformed UIDL reply", line));
    return uid;
}

std::int64_t Pop3Client::retrieve(int number, std::ostream& out, std::int64_t expectedOctets)
{
    std::string command = "RETR " + std::to_string(number);
    sendLine(Pop3Stage::Retr, command);
    expectOk(Pop3Stage::Retr, command);
    std::int64_t octets = readMessage(Pop3Stage::Retr, command, out);
    if (settings_.strictSizes && expectedOctets >= 0 && sizeDiffers(expectedOctets, octets))
        throw Pop3ProtocolError(Pop3Stage::Retr, command,
                                "size mismatch: LIST said " + std::to_string(expectedOctets) +
                                    " octets, RETR delivered " + std::to_string(octets));
    return octets;
}

std::int64_t Pop3Client::top(int number, int lines, std::ostream& out)
{
    std::string command = "TOP " + std::to_string(number) + " " + std::to_string(lines);
    sendLine(Pop3Stage::Top, command);
    expectOk(Pop3Stage::Top, command);
    return readMessage(Pop3Stage::Top, command, out);
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
    std::size_t window = pipelining() ? kPipelineWindow : 1;
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
        for (std::size_t i = first; i < last; ++i) {
            const Pop3Listing& m = messages[i];
            std::string command = "RETR " + std::to_string(m.number);
            Pop3BatchReply r;
            r.number = m.number;
            Reply reply = readReply(Pop3Stage::Retr, command);
            if (!reply.ok) {
                r.problem = flattenServerText(reply.line);
            } else {
                r.octets = readMessage(Pop3Stage::Retr, command, sinkFor(m.number));
                r.ok = true;
                if (settings_.strictSizes && m.octets >= 0 && sizeDiffers(m.octets, r.octets)) {
                    r.ok = false;
                    r.problem = "size mismatch: LIST said " + std::to_string(m.octets) +
                                " octets, RETR delivered " + std::to_string(r.octets);
                }
            }
            if (done)
                done(r);
            replies.push_back(r);
        }
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
