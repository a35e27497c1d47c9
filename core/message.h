// message.h - what popgate does to a fetched message on its way to the MTA,
// as a streaming filter: the header section is parsed (unfolded) to learn the
// facts the fetcher needs (Message-ID, From, Return-Path, hop count, our own
// trace), X-Popgate-* headers that came from outside are dropped, popgate's
// Received: and X-Popgate-Id: are prepended, and the body passes byte for byte.
// Pure: works on an std::ostream sink; no sockets, no files of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <streambuf>
#include <string>
#include <vector>

namespace popgate
{

/// At most this many From fields are kept; a message with more is judged
/// unreadable (MessageFacts::tooManyFroms), never by its first fields only.
constexpr std::size_t kMaxFromFields = 16;
/// A From field body (unfolded, trimmed) longer than this many octets is not
/// kept; the message is judged unreadable (MessageFacts::fromTooLarge).
constexpr std::size_t kMaxFromField = 16 * 1024;

/// At most this many fields of an account's envelope header are kept, each of
/// at most kMaxEnvelopeField octets; beyond that EnvelopeFields says so and the
/// recipients are not read from it (core/recipients.h fails closed).
constexpr std::size_t kMaxEnvelopeFields = 64;
constexpr std::size_t kMaxEnvelopeField = 4096;

/// The fields of one envelope header (Delivered-To, X-Original-To, ...), in
/// order from the top of the header section; bodies unfolded and trimmed.
struct EnvelopeFields {
    std::vector<std::string> values;
    int seen = 0;          ///< fields with that name, kept or not
    bool tooMany = false;  ///< more than kMaxEnvelopeFields (the rest not kept)
    bool tooLarge = false; ///< one was over kMaxEnvelopeField octets (not kept)
};

/// What the header section said (values unfolded, trimmed; empty when absent).
/// For each of Message-ID, Return-Path and Subject the first occurrence wins;
/// every From field is kept (bounded: kMaxFromFields of kMaxFromField octets).
struct MessageFacts {
    std::string messageId;          ///< Message-ID, with its angle brackets
    std::string from;               ///< the first From field body, as written ("" if too large)
    std::vector<std::string> froms; ///< every From field body, in order, within the limits
    int fromFields = 0;             ///< From fields seen, kept or not
    bool fromTooLarge = false;      ///< a From field body over kMaxFromField octets (not kept)
    bool tooManyFroms = false;      ///< more than kMaxFromFields From fields (the rest not kept)
    std::string returnPath;         ///< Return-Path addr-spec without brackets; "" for <> too
    bool nullReturnPath = false;    ///< Return-Path: <>
    std::string subject;
    int popgateHops = 0; ///< Received: fields with "(popgate)" after " by " (receivedHeader's)
    bool hadPopgateHeaders = false; ///< X-Popgate-* arrived from outside (and was dropped)
    bool headerComplete = false;    ///< the blank line ending the header section was seen
    EnvelopeFields envelope; ///< the fields named by collectEnvelope(), if it was called
    std::int64_t inputOctets = 0;   ///< bytes that came in
    std::int64_t outputOctets = 0;  ///< bytes written to the sink (with our headers)
};

/// MessageRewriter - an std::streambuf: write the message (as RETR gives it,
/// after dot-unstuffing; CRLF or bare LF line ends, any chunk size) into it; it
/// writes `prepend` and then the message, minus X-Popgate-* header fields
/// (with their continuation lines), to sink. Call finish() at the end.
///
/// The header section ends at the first blank line, or at the first line that
/// is neither a header field ("name:", WSP allowed before the colon) nor a
/// continuation line: that line starts the body and headerComplete stays false
/// (so a message without a header section passes through unchanged). From the
/// end of the header section on, everything is copied byte for byte.
/// Memory: at most one header field is buffered (kMaxField, 64 KiB) besides
/// the kept From fields (kMaxFromFields x kMaxFromField); a larger field is
/// streamed unparsed (still dropped when its name is X-Popgate-*; a From field
/// sets fromTooLarge, so the message is never judged without it), and nothing
/// of the body is buffered. Unbuffered itself: facts are exact
/// after every write. A write fails (the stream sets badbit) once the sink has
/// failed or after finish().
class MessageRewriter : public std::streambuf
{
public:
    /// MessageRewriter - sink must outlive the rewriter; prepend is CRLF-terminated lines.
    MessageRewriter(std::ostream& sink, std::string prepend);
    /// ~MessageRewriter - does not finish(): an aborted transfer stays incomplete.
    ~MessageRewriter() override;

    /// collectEnvelope - before the first write: keep the bodies of every field
    /// called name (case-insensitive) in facts().envelope, and write each such
    /// field renamed, "X-Fetched-" + the field as it came (so that nothing
    /// downstream takes it for this delivery's envelope).
    void collectEnvelope(const std::string& name);
    /// finish - flush what is pending (a last line without line end, the
    /// open header field) and the sink; returns the facts. Idempotent.
    const MessageFacts& finish();
    /// facts - what is known so far.
    const MessageFacts& facts() const { return facts_; }

    static constexpr std::size_t kMaxField = 64 * 1024;

protected:
    int_type overflow(int_type ch) override;
    std::streamsize xsputn(const char* s, std::streamsize n) override;
    int sync() override;

private:
    enum class Passing { None, Pass, Drop }; ///< an oversized field being streamed

    void startOutput();
    void headerLine(std::string line);
    void oversized(char first);
    void streamField(const std::string& start);
    void startBody(const std::string& first);
    void endField();
    void emit(const char* data, std::size_t n);

    std::ostream& sink_;
    std::string prepend_;
    bool prepended_ = false;
    bool inBody_ = false;
    bool finished_ = false;
    std::string line_;  ///< the header line being assembled
    std::string field_; ///< the current (possibly folded) header field, raw
    Passing passing_ = Passing::None;
    bool lineStreaming_ = false; ///< copying (or dropping) up to the next LF unbuffered
    bool seenMessageId_ = false;
    bool seenReturnPath_ = false;
    bool seenSubject_ = false;
    std::string envelopeName_; ///< lower case; "" collects nothing
    MessageFacts facts_;
};

/// addFromField - records one From field body in facts under the limits above
/// (body unfolded; it is trimmed here): kept in froms (and in from if it is the
/// first), or only counted with fromTooLarge / tooManyFroms set. The rewriter and
/// the milter both record From fields through it.
void addFromField(MessageFacts& facts, std::string body);

/// popgateIdHeader - the value of X-Popgate-Id for (account, uidl), authenticated
/// with HMAC-SHA256(key, account '\0' uidl): "v1 a=ACCOUNT u=BASE64URL(UIDL) m=HEX32"
/// (unpadded RFC 4648 base64url; HEX32 = first 128 bits, lowercase). Throws
/// std::invalid_argument for an empty key.
std::string popgateIdHeader(const std::string& key, const std::string& account,
                            const std::string& uidl);

struct PopgateId {
    std::string account;
    std::string uidl;
};

/// verifyPopgateId - true and out set to the (account, uidl) the value names when
/// it is exactly what popgateIdHeader writes (surrounding blanks aside) for a valid
/// account name and its MAC is right under key (compared in constant time);
/// false, out untouched, for anything forged, altered, malformed, or an empty key.
bool verifyPopgateId(const std::string& key, const std::string& value, PopgateId& out);

/// receivedHeader - popgate's trace field, RFC 5322 valid, folded at 78 columns,
/// CRLF-terminated: "Received: from SERVER by HOST (popgate) with POP3 id HASH16
/// for <RCPT> (account NAME);\r\n\tDATE\r\n", HASH16 = first 16 hex digits of
/// SHA-256(uidl), DATE in UTC ("Sat, 28 Nov 2026 18:00:00 +0000"). Odd characters
/// in SERVER/HOST/NAME become '_'; a RCPT that is not a plain addr-spec is left out.
std::string receivedHeader(const std::string& server, const std::string& host,
                           const std::string& account, const std::string& uidl,
                           const std::string& recipient, std::int64_t unixTime);

} // namespace popgate
