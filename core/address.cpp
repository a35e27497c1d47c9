// address.cpp - addr-spec parsing, comparison form and IDN A-labels.
// Parsing is lenient where real mail is (display names, comments, source
// routes, dots in obsolete local parts) and strict where a comparison would
// be wrong (bad UTF-8, stray '@', bad domain labels). Must not depend on
// anything but the C++ library and Poco Foundation's Unicode tables.
#include "core/address.h"

#include "core/errors.h"

#include <Poco/UTF8Encoding.h>
#include <Poco/UTF8String.h>
#include <Poco/Unicode.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>

namespace popgate
{
namespace
{

// A fault in the text being parsed; the public entry points add the context.
struct Fault {
    std::string what;
};

[[noreturn]] void fail(std::string what)
{
    throw Fault{std::move(what)};
}

// showText - input quoted for an error message: controls escaped, length capped.
std::string showText(const std::string& text)
{
    std::string out = "\"";
    std::size_t shown = 0;
    for (unsigned char c : text) {
        if (++shown > 200) {
            out += "...";
            break;
        }
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

// showChar - one character for an error message.
std::string showChar(unsigned char c)
{
    if (c > 0x20 && c < 0x7f)
        return std::string("'") + static_cast<char>(c) + "'";
    if (c == ' ')
        return "space";
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
}

bool isWsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string trim(const std::string& s)
{
    std::size_t b = 0, e = s.size();
    while (b < e && isWsp(s[b]))
        ++b;
    while (e > b && isWsp(s[e - 1]))
        --e;
    return s.substr(b, e - b);
}

// atext of RFC 5322 plus UTF-8 (RFC 6532).
bool isAtext(unsigned char c)
{
    if (c >= 0x80)
        return true;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr;
}

bool isDotAtom(const std::string& s)
{
    if (s.empty() || s.front() == '.' || s.back() == '.')
        return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        unsigned char c = s[i];
        if (c == '.') {
            if (s[i - 1] == '.')
                return false;
        } else if (!isAtext(c)) {
            return false;
        }
    }
    return true;
}

// decodeUtf8 - code points of s; fails on illegal sequences (Poco's table).
std::u32string decodeUtf8(const std::string& s)
{
    std::u32string out;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t n = s.size(), i = 0;
    while (i < n) {
        unsigned char c = p[i];
        int len = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
        if (len == 0 || i + len > n || !Poco::UTF8Encoding::isLegal(p + i, len))
            fail("not valid UTF-8 at byte " + std::to_string(i));
        char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        for (int k = 1; k < len; ++k)
            cp = (cp << 6) | (p[i + k] & 0x3F);
        out += cp;
        i += len;
    }
    return out;
}

bool isAscii(const std::string& s)
{
    for (unsigned char c : s)
        if (c >= 0x80)
            return false;
    return true;
}

// --- RFC 3492 punycode ---------------------------------------------------
constexpr std::uint32_t kBase = 36, kTMin = 1, kTMax = 26, kSkew = 38, kDamp = 700;
constexpr std::uint32_t kInitialBias = 72, kInitialN = 128;
constexpr std::uint32_t kMaxInt = std::numeric_limits<std::uint32_t>::max();

std::uint32_t adapt(std::uint32_t delta, std::uint32_t numPoints, bool firstTime)
{
    delta = firstTime ? delta / kDamp : delta / 2;
    delta += delta / numPoints;
    std::uint32_t k = 0;
    while (delta > ((kBase - kTMin) * kTMax) / 2) {
        delta /= kBase - kTMin;
        k += kBase;
    }
    return k + (kBase - kTMin + 1) * delta / (delta + kSkew);
}

char encodeDigit(std::uint32_t d)
{
    return static_cast<char>(d < 26 ? 'a' + d : '0' + d - 26);
}

std::uint32_t decodeDigit(char c)
{
    if (c >= '0' && c <= '9')
        return static_cast<std::uint32_t>(c - '0' + 26);
    if (c >= 'a' && c <= 'z')
        return static_cast<std::uint32_t>(c - 'a');
    if (c >= 'A' && c <= 'Z')
        return static_cast<std::uint32_t>(c - 'A');
    return kBase;
}

std::uint32_t threshold(std::uint32_t k, std::uint32_t bias)
{
    return k <= bias ? kTMin : k >= bias + kTMax ? kTMax : k - bias;
}

std::string encodePunycode(const std::u32string& input)
{
    std::string out;
    for (char32_t c : input)
        if (c < 0x80)
            out += static_cast<char>(c);
    std::uint32_t n = kInitialN, delta = 0, bias = kInitialBias;
    std::uint32_t h = static_cast<std::uint32_t>(out.size()), b = h;
    if (b > 0)
        out += '-';
    while (h < input.size()) {
        std::uint32_t m = kMaxInt;
        for (char32_t c : input)
            if (c >= n && c < m)
                m = c;
        if (m - n > (kMaxInt - delta) / (h + 1))
            fail("punycode overflow");
        delta += (m - n) * (h + 1);
        n = m;
        for (char32_t c : input) {
            if (c < n && ++delta == 0)
                fail("punycode overflow");
            if (c == n) {
                std::uint32_t q = delta;
                for (std::uint32_t k = kBase;; k += kBase) {
                    std::uint32_t t = threshold(k, bias);
                    if (q < t)
                        break;
                    out += encodeDigit(t + (q - t) % (kBase - t));
                    q = (q - t) / (kBase - t);
                }
                out += encodeDigit(q);
                bias = adapt(delta, h + 1, h == b);
                delta = 0;
                ++h;
            }
        }
        ++delta;
        ++n;
    }
    return out;
}

std::u32string decodePunycode(const std::string& input)
{
    std::size_t b = input.rfind('-');
    if (b == std::string::npos)
        b = 0;
    std::u32string out;
    for (std::size_t j = 0; j < b; ++j) {
        if (static_cast<unsigned char>(input[j]) >= 0x80)
            fail("punycode: non-ASCII character before the delimiter");
        out += static_cast<char32_t>(input[j]);
    }
    std::uint32_t n = kInitialN, i = 0, bias = kInitialBias;
    for (std::size_t in = b > 0 ? b + 1 : 0; in < input.size();) {
        std::uint32_t oldi = i, w = 1;
        for (std::uint32_t k = kBase;; k += kBase) {
            if (in >= input.size())
                fail("punycode: truncated input");
            std::uint32_t digit = decodeDigit(input[in++]);
            if (digit >= kBase)
                fail("punycode: bad digit " + showChar(static_cast<unsigned char>(input[in - 1])));
            if (digit > (kMaxInt - i) / w)
                fail("punycode overflow");
            i += digit * w;
            std::uint32_t t = threshold(k, bias);
            if (digit < t)
                break;
            if (w > kMaxInt / (kBase - t))
                fail("punycode overflow");
            w *= kBase - t;
        }
        std::uint32_t len = static_cast<std::uint32_t>(out.size()) + 1;
        bias = adapt(i - oldi, len, oldi == 0);
        if (i / len > kMaxInt - n)
            fail("punycode overflow");
        n += i / len;
        i %= len;
        if (n > 0x10FFFF || (n >= 0xD800 && n <= 0xDFFF))
            fail("punycode: decodes to an invalid code point");
        out.insert(out.begin() + i, static_cast<char32_t>(n));
        ++i;
    }
    return out;
}

// --- domains ---------------------------------------------------------------

bool isIdnDot(char32_t c)
{
    return c == U'.' || c == 0x3002 || c == 0xFF0E || c == 0xFF61;
}

// asciiLabel - lowercase an ASCII label; letters, digits, '-', '_' (and '*').
std::string asciiLabel(const std::string& label, bool allowWildcard)
{
    std::string out = label;
    for (char& ch : out) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (c >= 'A' && c <= 'Z')
            ch = static_cast<char>(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                   (allowWildcard && c == '*')))
            fail("character " + showChar(c) + " not allowed in a domain");
    }
    return out;
}

// unicodeLabel - an ASCII label as asciiLabel; otherwise lowercase per code
// point, then "xn--" + punycode.
std::string unicodeLabel(const std::u32string& label, bool allowWildcard)
{
    std::string ascii;
    for (char32_t c : label) {
        if (c >= 0x80)
            break;
        ascii += static_cast<char>(c);
    }
    if (ascii.size() == label.size())
        return asciiLabel(ascii, allowWildcard);
    std::u32string lower;
    for (char32_t c : label) {
        if (c == U'*')
            fail("'*' cannot share a label with non-ASCII characters");
        if (c < 0x80) {
            lower +=
                static_cast<char32_t>(asciiLabel(std::string(1, static_cast<char>(c)), false)[0]);
            continue;
        }
        if (c < 0xA0 || Poco::Unicode::isSpace(static_cast<int>(c))) {
            char buf[16];
            std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(c));
            fail(std::string("character ") + buf + " not allowed in a domain");
        }
        lower += static_cast<char32_t>(Poco::Unicode::toLower(static_cast<int>(c)));
    }
    return "xn--" + encodePunycode(lower);
}

std::string domainKey(const std::string& domain, bool allowWildcard)
{
    if (domain.empty())
        fail("empty domain");
    if (domain.front() == '[') { // domain literal: [192.0.2.1], [IPv6:...]
        if (domain.size() < 3 || domain.back() != ']')
            fail("unterminated domain literal");
        std::string out = domain;
        for (std::size_t i = 1; i + 1 < out.size(); ++i) {
            unsigned char c = out[i];
            if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\')
                fail("character " + showChar(c) + " not allowed in a domain literal");
            if (c >= 'A' && c <= 'Z')
                out[i] = static_cast<char>(c - 'A' + 'a');
        }
        return out;
    }
    std::vector<std::string> labels;
    if (isAscii(domain)) {
        std::size_t start = 0;
        for (;;) {
            std::size_t dot = domain.find('.', start);
            labels.push_back(asciiLabel(domain.substr(start, dot - start), allowWildcard));
            if (dot == std::string::npos)
                break;
            start = dot + 1;
        }
    } else {
        std::u32string all = decodeUtf8(domain), label;
        for (std::size_t i = 0; i <= all.size(); ++i) {
            if (i == all.size() || isIdnDot(all[i])) {
                labels.push_back(unicodeLabel(label, allowWildcard));
                label.clear();
            } else {
                label += all[i];
            }
        }
    }
    std::string out;
    for (const std::string& l : labels) {
        if (l.empty())
            fail("empty label (leading, trailing or double dot)");
        if (l.size() > 63)
            fail("label longer than 63 octets");
        if (!out.empty())
            out += '.';
        out += l;
    }
    if (out.size() > 253)
        fail("domain longer than 253 octets");
    return out;
}

// --- addresses -------------------------------------------------------------

// stripComments - RFC 5322 comments outside quoted strings become one space.
std::string stripComments(const std::string& s)
{
    std::string out;
    int depth = 0;
    bool quoted = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\\' && (quoted || depth > 0)) {
            if (i + 1 >= s.size())
                fail("backslash at the end");
            if (depth == 0)
                out.append(s, i, 2);
            ++i;
        } else if (depth > 0) {
            if (c == '(')
                ++depth;
            else if (c == ')' && --depth == 0)
                out += ' ';
        } else if (quoted) {
            if (c == '"')
                quoted = false;
            out += c;
        } else if (c == '"') {
            quoted = true;
            out += c;
        } else if (c == '(') {
            depth = 1;
        } else if (c == ')') {
            fail("unbalanced ')'");
        } else {
            out += c;
        }
    }
    if (depth > 0)
        fail("unterminated comment");
    if (quoted)
        fail("unterminated quoted string");
    return out;
}

// findOutsideQuotes - first c at or after from that is not inside "...".
std::size_t findOutsideQuotes(const std::string& s, char c, std::size_t from = 0)
{
    bool quoted = false;
    for (std::size_t i = from; i < s.size(); ++i) {
        if (quoted && s[i] == '\\')
            ++i;
        else if (s[i] == '"')
            quoted = !quoted;
        else if (!quoted && s[i] == c)
            return i;
    }
    return std::string::npos;
}

MailAddress parseAddrSpec(const std::string& spec, bool pattern)
{
    MailAddress a;
    std::size_t at;
    if (!spec.empty() && spec[0] == '"') {
        std::size_t i = 1;
        for (;; ++i) {
            if (i >= spec.size())
                fail("unterminated quoted local part");
            unsigned char c = spec[i];
            if (c == '"')
                break;
            if (c == '\\') {
                if (++i >= spec.size())
                    fail("backslash at the end");
                c = spec[i];
            }
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                fail(showChar(c) + " not allowed in a quoted local part");
            a.localPart += static_cast<char>(c);
        }
        at = i + 1;
        if (at >= spec.size() || spec[at] != '@')
            fail("expected '@' after the quoted local part");
    } else {
        at = spec.find('@');
        if (at == std::string::npos)
            fail("no '@'");
        a.localPart = spec.substr(0, at);
        if (a.localPart.empty())
            fail("empty local part");
        for (unsigned char c : a.localPart)
            if (!isAtext(c) && c != '.')
                fail(showChar(c) + " not allowed in an unquoted local part");
    }
    // RFC 6532: 8-bit in the local part is UTF-8 or nothing; anything else
    // would be compared byte for byte against patterns written in UTF-8.
    try {
        decodeUtf8(a.localPart);
    } catch (const Fault& f) {
        fail("local part " + f.what);
    }
    a.domain = spec.substr(at + 1);
    if (a.domain.find('@') != std::string::npos)
        fail("more than one '@'");
    if (a.domain.empty())
        fail("empty domain");
    a.key = normalizeLocalPart(a.localPart) + '@' + domainKey(a.domain, pattern);
    return a;
}

// squeezeAddrSpec - the obsolete syntax's CFWS around '.' and '@' outside
// quotes removed ("john . doe @ example . com"); other blanks stay, so that
// "a b@c" still fails.
std::string squeezeAddrSpec(const std::string& s)
{
    std::string out;
    bool quoted = false;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (quoted) {
            out += c;
            if (c == '\\' && i + 1 < s.size())
                out += s[++i];
            else if (c == '"')
                quoted = false;
            continue;
        }
        if (isWsp(c)) {
            std::size_t j = i;
            while (j < s.size() && isWsp(s[j]))
                ++j;
            const bool afterSep = !out.empty() && (out.back() == '.' || out.back() == '@');
            const bool beforeSep = j < s.size() && (s[j] == '.' || s[j] == '@');
            if (!afterSep && !beforeSep)
                out.append(s, i, j - i);
            i = j - 1;
            continue;
        }
        if (c == '"')
            quoted = true;
        out += c;
    }
    return out;
}

// parseMailbox - display names, comments and quoted strings outside the
// addr-spec are display only: their bytes (Latin-1, broken UTF-8, RFC 2047
// encoded words) are never decoded or judged. Only the addr-spec must read.
MailAddress parseMailbox(const std::string& text, bool pattern)
{
    std::string s = trim(stripComments(text));
    if (s.empty())
        fail("empty address");
    std::size_t lt = findOutsideQuotes(s, '<');
    if (lt == std::string::npos) {
        if (findOutsideQuotes(s, '>') != std::string::npos)
            fail("'>' without '<'");
        return parseAddrSpec(squeezeAddrSpec(s), pattern);
    }
    std::size_t gt = findOutsideQuotes(s, '>', lt + 1);
    if (gt == std::string::npos)
        fail("'<' without '>'");
    if (findOutsideQuotes(s, '>') < lt)
        fail("'>' before '<'");
    if (!trim(s.substr(gt + 1)).empty())
        fail("text after '>'");
    std::string inner = squeezeAddrSpec(trim(s.substr(lt + 1, gt - lt - 1)));
    if (inner.empty()) {
        if (pattern)
            fail("a pattern cannot be the null address <>");
        return MailAddress{};
    }
    if (inner[0] == '@') { // obsolete source route <@relay:user@host>
        std::size_t colon = inner.find(':');
        if (colon == std::string::npos)
            fail("source route without ':'");
        inner = inner.substr(colon + 1);
    }
    return parseAddrSpec(inner, pattern);
}

} // namespace

std::string MailAddress::spec() const
{
    if (isNull())
        return "";
    if (isDotAtom(localPart))
        return localPart + '@' + domain;
    std::string out = "\"";
    for (char c : localPart) {
        if (c == '"' || c == '\\')
            out += '\\';
        out += c;
    }
    return out + "\"@" + domain;
}

MailAddress parseAddress(const std::string& text)
{
    try {
        return parseMailbox(text, false);
    } catch (const Fault& f) {
        throw InputError("malformed address " + showText(text) + ": " + f.what);
    }
}

MailAddress parseAddressPattern(const std::string& text)
{
    try {
        return parseMailbox(text, true);
    } catch (const Fault& f) {
        throw InputError("malformed address pattern " + showText(text) + ": " + f.what);
    }
}

namespace
{

// isPhrase - a group's display name: words (atext, 8-bit, '.'), quoted
// strings and comments; an address hidden there would never be judged.
bool isPhrase(const std::string& text)
{
    bool quoted = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (!isAtext(static_cast<unsigned char>(c)) && c != '.' && !isWsp(c)) {
            return false;
        }
    }
    return true;
}

// splitMailboxes - the mailbox texts of an address list (RFC 5322 3.4 with
// the obsolete empty elements): split at ',' and at a group's ':' and ';'
// outside quotes, comments, angle brackets and domain literals.
std::vector<std::string> splitMailboxes(const std::string& text, bool& sawGroup)
{
    std::vector<std::string> parts(1);
    int depth = 0;
    bool quoted = false, angle = false, literal = false, group = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\\' && (quoted || depth > 0)) {
            if (i + 1 >= text.size())
                fail("backslash at the end");
            parts.back().append(text, i, 2);
            ++i;
            continue;
        }
        if (depth > 0) {
            depth += c == '(' ? 1 : c == ')' ? -1 : 0;
        } else if (quoted) {
            quoted = c != '"';
        } else if (c == '"') {
            quoted = true;
        } else if (c == '(') {
            depth = 1;
        } else if (literal) {
            literal = c != ']';
        } else if (c == '[') {
            literal = true;
        } else if (c == '<') {
            if (angle)
                fail("'<' inside '<...>'");
            angle = true;
        } else if (c == '>') {
            angle = false;
        } else if (!angle && c == ',') {
            parts.emplace_back();
            continue;
        } else if (!angle && c == ':') {
            if (group)
                fail("a group inside a group");
            if (!isPhrase(stripComments(parts.back())))
                fail("group name " + showText(trim(parts.back())) + " is not a phrase");
            parts.back().clear(); // the group's name is display only
            group = sawGroup = true;
            continue;
        } else if (!angle && c == ';') {
            if (!group)
                fail("';' outside a group");
            group = false;
            parts.emplace_back();
            continue;
        }
        parts.back() += c;
    }
    if (depth > 0)
        fail("unterminated comment");
    if (quoted)
        fail("unterminated quoted string");
    if (angle || literal)
        fail(angle ? "'<' without '>'" : "unterminated domain literal");
    // A group left open ("Support: Team <a@b>") is read as one: its name
    // holds no address (isPhrase), and every mailbox after it is judged.
    return parts;
}

} // namespace

std::vector<MailAddress> parseAddressList(const std::string& text)
{
    std::vector<std::string> parts;
    bool sawGroup = false; // "undisclosed-recipients:;" names no mailbox, rightly
    try {
        parts = splitMailboxes(text, sawGroup);
    } catch (const Fault& f) {
        throw InputError("malformed address list " + showText(text) + ": " + f.what);
    }
    std::vector<MailAddress> out;
    for (const std::string& part : parts)
        if (!trim(part).empty())
            out.push_back(parseAddress(part));
    if (out.empty() && !trim(text).empty() && !sawGroup)
        throw InputError("malformed address list " + showText(text) + ": no address");
    return out;
}

std::string normalizeDomain(const std::string& domain, bool allowWildcard)
{
    try {
        return domainKey(domain, allowWildcard);
    } catch (const Fault& f) {
        throw InputError("malformed domain " + showText(domain) + ": " + f.what);
    }
}

std::string normalizeLocalPart(const std::string& localPart)
{
    if (!isAscii(localPart))
        return Poco::UTF8::toLower(localPart);
    std::string out = localPart;
    for (char& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string punycodeEncode(const std::u32string& input)
{
    try {
        return encodePunycode(input);
    } catch (const Fault& f) {
        throw InputError(f.what);
    }
}

std::u32string punycodeDecode(const std::string& input)
{
    try {
        return decodePunycode(input);
    } catch (const Fault& f) {
        throw InputError("cannot decode " + showText(input) + ": " + f.what);
    }
}

} // namespace popgate
