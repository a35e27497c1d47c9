// message.cpp - the streaming message rewriter, popgate's X-Popgate-Id MAC and
// its Received: trace field (see message.h). Memory stays bounded: at most one
// header field (kMaxField) is buffered and nothing of the body. Pure: Poco
// Foundation only (digests, dates), no sockets, no files, no logging.
#include "core/message.h"

#include "core/account.h"
#include "core/text.h"

#include <Poco/Base64Encoder.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/DigestEngine.h>
#include <Poco/HMACEngine.h>
#include <Poco/SHA2Engine.h>
#include <Poco/Timestamp.h>
#include <cstring>
#include <ctime>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace popgate
{

namespace
{

// Poco 1.11's SHA2Engine lacks the BLOCK_SIZE/DIGEST_SIZE that HMACEngine
// needs (later Poco adds them); SHA2Engine's default algorithm is SHA-256.
class Sha256Engine : public Poco::SHA2Engine
{
public:
    enum { BLOCK_SIZE = 64, DIGEST_SIZE = 32 };
    Sha256Engine() : Poco::SHA2Engine(Poco::SHA2Engine::SHA_256) {}
};

// RFC 5322 asks for lines of at most 78 characters (without the CRLF).
constexpr std::size_t kFoldColumn = 78;

bool isWsp(char c)
{
    return c == ' ' || c == '\t';
}

bool isAsciiAlnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowered(std::string text)
{
    for (char& c : text)
        c = lower(c);
    return text;
}

/// fieldNameLength - length of the field name when line starts a header
/// field (1+ printable ASCII but ':' then optional WSP, then ':'), else 0.
std::size_t fieldNameLength(const std::string& line)
{
    std::size_t i = 0;
    while (i < line.size()) {
        const auto c = static_cast<unsigned char>(line[i]);
        if (c <= 32 || c >= 127 || c == ':')
            break;
        ++i;
    }
    if (i == 0)
        return 0;
    std::size_t j = i;
    while (j < line.size() && isWsp(line[j])) // obs-optional: "Subject : x"
        ++j;
    return (j < line.size() && line[j] == ':') ? i : 0;
}

bool isPopgateName(const std::string& name)
{
    static const std::string kPrefix = "x-popgate-";
    return name.size() >= kPrefix.size() && lowered(name.substr(0, kPrefix.size())) == kPrefix;
}

/// unfold - the field body after the colon with its line breaks (CR LF, LF)
/// removed, trimmed. A lone CR stays: the screen refuses it in a From field.
std::string unfold(const std::string& field)
{
    std::string out;
    const std::size_t colon = field.find(':');
    out.reserve(field.size());
    for (std::size_t i = colon + 1; i < field.size(); ++i)
        if (field[i] != '\n' && !(field[i] == '\r' && i + 1 < field.size() && field[i + 1] == '\n'))
            out += field[i];
    return trim(out);
}

/// squeezed - lowercased, each run of SP/HT as one space, padded with spaces
/// so that " by " also matches at the start.
std::string squeezed(const std::string& text)
{
    std::string out = " ";
    for (char c : text) {
        if (isWsp(c)) {
            if (out.back() != ' ')
                out += ' ';
        } else {
            out += lower(c);
        }
    }
    if (out.back() != ' ')
        out += ' ';
    return out;
}

std::string hex(const Poco::DigestEngine::Digest& digest, std::size_t bytes)
{
    static const char kDigits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes && i < digest.size(); ++i) {
        out += kDigits[digest[i] >> 4];
        out += kDigits[digest[i] & 0x0f];
    }
    return out;
}

const char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64Url - RFC 4648 section 5 alphabet, no padding, one line (Poco's encoder).
std::string base64Url(const std::string& data)
{
    std::ostringstream out;
    Poco::Base64Encoder enc(out, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
    enc.rdbuf()->setLineLength(0);
    enc << data;
    enc.close();
    return out.str();
}

/// fromBase64Url - false for a character outside the alphabet or an
/// impossible length; non-canonical tails are caught by re-encoding later.
/// Kept strict by hand: Poco 1.11's decoder skips blanks and reads a
/// truncated group as nothing instead of failing.
bool fromBase64Url(const std::string& text, std::string& out)
{
    if (text.size() % 4 == 1)
        return false;
    out.clear();
    unsigned acc = 0;
    int bits = 0;
    for (char c : text) {
        const char* p = std::strchr(kBase64Url, c);
        if (c == '\0' || p == nullptr)
            return false;
        acc = (acc << 6) | static_cast<unsigned>(p - kBase64Url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return true;
}

/// equalConstantTime - equal strings, in time that depends on the length only.
bool equalConstantTime(const std::string& a, const std::string& b)
{
    if (a.size() != b.size())
        return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

/// domainToken - text reduced to a dot-atom (atext labels joined by dots) so
/// that a strange configured name cannot break the Received field.
std::string domainToken(const std::string& text)
{
    static const std::string kAtextSpecials = "!#$%&'*+-/=?^_`{|}~";
    std::string out;
    std::string label;
    auto endLabel = [&] {
        if (!label.empty())
            out += (out.empty() ? "" : ".") + label;
        label.clear();
    };
    for (char c : text.substr(0, 255)) {
        if (c == '.')
            endLabel();
        else if (isAsciiAlnum(c) || kAtextSpecials.find(c) != std::string::npos)
            label += c;
        else
            label += '_';
    }
    endLabel();
    return out.empty() ? "unknown" : out;
}

/// isSimpleAddrSpec - dot-atom@dot-atom, the only recipient form we put in
/// a "for" clause (local recipients never need quoting).
bool isSimpleAddrSpec(const std::string& text)
{
    const std::size_t at = text.rfind('@');
    if (at == std::string::npos || at == 0 || at + 1 == text.size() || text.size() > 254)
        return false;
    const std::string local = text.substr(0, at);
    const std::string domain = text.substr(at + 1);
    return domainToken(local) == local && domainToken(domain) == domain;
}

/// What an envelope header field is renamed to: this prefix + the field as it came.
const std::string kEnvelopeRename = "X-Fetched-";

} // namespace

// ---- MessageRewriter --------------------------------------------------------

MessageRewriter::MessageRewriter(std::ostream& sink, std::string prepend)
    : sink_(sink), prepend_(std::move(prepend))
{
}

// The destructor does not finish(): an aborted transfer must not have its
// pending partial line written as if the message had ended.
MessageRewriter::~MessageRewriter() = default;

void MessageRewriter::collectEnvelope(const std::string& name)
{
    envelopeName_ = lowered(name);
}

// addEnvelopeField - record one field of the envelope header in facts (bounded).
static void addEnvelopeField(EnvelopeFields& fields, std::string body, bool tooLarge)
{
    ++fields.seen;
    if (tooLarge || body.size() > kMaxEnvelopeField) {
        fields.tooLarge = true;
        return;
    }
    if (fields.values.size() >= kMaxEnvelopeFields) {
        fields.tooMany = true;
        return;
    }
    fields.values.push_back(std::move(body));
}

const MessageFacts& MessageRewriter::finish()
{
    if (finished_)
        return facts_;
    startOutput();
    if (!inBody_) {
        if (!line_.empty()) { // a last header line without line end
            std::string line;
            line.swap(line_);
            headerLine(std::move(line));
        }
        endField();
    }
    sink_.flush();
    finished_ = true;
    return facts_;
}

MessageRewriter::int_type MessageRewriter::overflow(int_type ch)
{
    if (traits_type::eq_int_type(ch, traits_type::eof()))
        return traits_type::not_eof(ch);
    const char c = traits_type::to_char_type(ch);
    return xsputn(&c, 1) == 1 ? ch : traits_type::eof();
}

int MessageRewriter::sync()
{
    sink_.flush();
    return sink_ ? 0 : -1;
}

std::streamsize MessageRewriter::xsputn(const char* s, std::streamsize count)
{
    if (finished_ || count < 0 || !sink_)
        return 0;
    facts_.inputOctets += count;
    startOutput();
    auto n = static_cast<std::size_t>(count);
    while (n > 0 && !inBody_) {
        if (lineStreaming_) { // the rest of a line of an oversized field
            const char* lf = static_cast<const char*>(std::memchr(s, '\n', n));
            const std::size_t k = lf ? static_cast<std::size_t>(lf - s) + 1 : n;
            if (passing_ == Passing::Pass)
                emit(s, k);
            s += k;
            n -= k;
            if (lf)
                lineStreaming_ = false;
            continue;
        }
        if (line_.empty() && passing_ != Passing::None) {
            if (isWsp(*s)) { // another continuation line of the oversized field
                lineStreaming_ = true;
                continue;
            }
            passing_ = Passing::None;
        }
        const char* lf = static_cast<const char*>(std::memchr(s, '\n', n));
        const std::size_t k = lf ? static_cast<std::size_t>(lf - s) + 1 : n;
        const std::size_t room = kMaxField - field_.size() - line_.size();
        if (k > room) {
            line_.append(s, room);
            s += room;
            n -= room;
            oversized(line_.empty() ? *s : line_[0]);
            continue;
        }
        line_.append(s, k);
        s += k;
        n -= k;
        if (lf) {
            std::string line;
            line.swap(line_);
            headerLine(std::move(line));
        }
    }
    if (n > 0)
        emit(s, n);
    return sink_ ? count : 0;
}

void MessageRewriter::startOutput()
{
    if (prepended_)
        return;
    prepended_ = true;
    emit(prepend_.data(), prepend_.size());
}

void MessageRewriter::headerLine(std::string line)
{
    if (line == "\r\n" || line == "\n") {
        endField();
        facts_.headerComplete = true;
        startBody(line);
    } else if (isWsp(line[0]) && !field_.empty()) {
        field_ += line;
    } else {
        endField();
        if (fieldNameLength(line) > 0)
            field_ = std::move(line);
        else
            startBody(line); // not a field: the header section is over (or absent)
    }
}

void MessageRewriter::oversized(char first)
{
    if (isWsp(first) && !field_.empty()) {
        streamField(field_ + line_);
        return;
    }
    endField();
    if (line_.size() < kMaxField)
        return; // the buffered field was what filled the room; retry the line
    if (fieldNameLength(line_) > 0)
        streamField(line_);
    else
        startBody(line_);
}

void MessageRewriter::streamField(const std::string& start)
{
    const std::string name = start.substr(0, fieldNameLength(start));
    if (lowered(name) == "from") { // too large to judge: the message fails closed
        ++facts_.fromFields;
        facts_.fromTooLarge = true;
        facts_.tooManyFroms =
            facts_.tooManyFroms || facts_.fromFields > static_cast<int>(kMaxFromFields);
    }
    passing_ = isPopgateName(name) ? Passing::Drop : Passing::Pass;
    const bool envelope = !envelopeName_.empty() && lowered(name) == envelopeName_;
    if (envelope) // too large to read a recipient from: the message fails closed
        addEnvelopeField(facts_.envelope, std::string(), true);
    if (passing_ == Passing::Drop)
        facts_.hadPopgateHeaders = true;
    else
        emit((envelope ? kEnvelopeRename + start : start).data(),
             start.size() + (envelope ? kEnvelopeRename.size() : 0));
    field_.clear();
    line_.clear();
    lineStreaming_ = true;
}

void MessageRewriter::startBody(const std::string& first)
{
    inBody_ = true;
    emit(first.data(), first.size());
    line_.clear();
}

void MessageRewriter::endField()
{
    if (field_.empty())
        return;
    std::string field;
    field.swap(field_);
    const std::string name = lowered(field.substr(0, fieldNameLength(field)));
    if (isPopgateName(name)) {
        facts_.hadPopgateHeaders = true;
        return;
    }
    if (!envelopeName_.empty() && name == envelopeName_) {
        field.insert(0, kEnvelopeRename);
        emit(field.data(), field.size());
        addEnvelopeField(facts_.envelope, unfold(field), false);
        return;
    }
    emit(field.data(), field.size());

    if (name == "message-id" && !seenMessageId_) {
        seenMessageId_ = true;
        facts_.messageId = unfold(field);
    } else if (name == "from") {
        addFromField(facts_, unfold(field));
    } else if (name == "subject" && !seenSubject_) {
        seenSubject_ = true;
        facts_.subject = unfold(field);
    } else if (name == "return-path" && !seenReturnPath_) {
        seenReturnPath_ = true;
        std::string path = unfold(field);
        if (path.size() >= 2 && path.front() == '<' && path.back() == '>')
            path = trim(path.substr(1, path.size() - 2));
        facts_.returnPath = path;
        facts_.nullReturnPath = path.empty();
    } else if (name == "received") {
        const std::string text = squeezed(unfold(field));
        const std::size_t by = text.find(" by ");
        if (by != std::string::npos && text.find(" (popgate) ", by) != std::string::npos)
            ++facts_.popgateHops;
    }
}

void MessageRewriter::emit(const char* data, std::size_t n)
{
    if (n == 0)
        return;
    sink_.write(data, static_cast<std::streamsize>(n));
    facts_.outputOctets += static_cast<std::int64_t>(n);
}

// ---- From fields -------------------------------------------------------------

void addFromField(MessageFacts& facts, std::string body)
{
    ++facts.fromFields;
    body = trim(body);
    if (facts.fromFields > static_cast<int>(kMaxFromFields)) {
        facts.tooManyFroms = true;
        return;
    }
    if (body.size() > kMaxFromField) {
        facts.fromTooLarge = true;
        return;
    }
    if (facts.fromFields == 1)
        facts.from = body;
    facts.froms.push_back(std::move(body));
}

// ---- X-Popgate-Id -----------------------------------------------------------

std::string popgateIdHeader(const std::string& key, const std::string& account,
                            const std::string& uidl)
{
    if (key.empty())
        throw std::invalid_argument("popgateIdHeader: empty key");
    Poco::HMACEngine<Sha256Engine> hmac(key);
    hmac.update(account);
    hmac.update('\0');
    hmac.update(uidl);
    return "v1 a=" + account + " u=" + base64Url(uidl) + " m=" + hex(hmac.digest(), 16);
}

bool verifyPopgateId(const std::string& key, const std::string& value, PopgateId& out)
{
    if (key.empty())
        return false;
    const std::string text = trim(value);
    // Parse just enough to learn (account, uidl); the canonical value rebuilt
    // from them must then equal the input, which makes the parse strict.
    static const std::string kA = "v1 a=";
    if (text.compare(0, kA.size(), kA) != 0)
        return false;
    const std::size_t u = text.find(" u=", kA.size());
    if (u == std::string::npos)
        return false;
    const std::size_t m = text.find(" m=", u + 3);
    if (m == std::string::npos)
        return false;
    const std::string account = text.substr(kA.size(), u - kA.size());
    std::string uidl;
    if (!isValidName(account) || !fromBase64Url(text.substr(u + 3, m - u - 3), uidl))
        return false;
    if (!equalConstantTime(popgateIdHeader(key, account, uidl), text))
        return false;
    out.account = account;
    out.uidl = uidl;
    return true;
}

// ---- Received ---------------------------------------------------------------

std::string receivedHeader(const std::string& server, const std::string& host,
                           const std::string& account, const std::string& uidl,
                           const std::string& recipient, std::int64_t unixTime)
{
    Sha256Engine sha;
    sha.update(uidl);
    const std::string id = hex(sha.digest(), 8);

    std::string name;
    for (char c : account.substr(0, 64))
        name += (isAsciiAlnum(c) || c == '.' || c == '_' || c == '-') ? c : '_';

    // Folding units: a fold may go between units, never inside one.
    std::vector<std::string> units = {"from " + domainToken(server), "by " + domainToken(host),
                                      "(popgate)", "with POP3", "id " + id};
    if (isSimpleAddrSpec(recipient))
        units.push_back("for <" + recipient + ">");
    units.push_back("(account " + (name.empty() ? std::string("unknown") : name) + ");");

    std::string out = "Received:";
    std::size_t column = out.size();
    for (std::size_t i = 0; i < units.size(); ++i) {
        if (i > 0 && column + 1 + units[i].size() > kFoldColumn) {
            out += "\r\n\t";
            column = 1;
        } else {
            out += ' ';
            ++column;
        }
        out += units[i];
        column += units[i].size();
    }
    const auto when = Poco::Timestamp::fromEpochTime(static_cast<std::time_t>(unixTime));
    out += "\r\n\t" + Poco::DateTimeFormatter::format(when, "%w, %e %b %Y %H:%M:%S") + " +0000\r\n";
    return out;
}

} // namespace popgate
