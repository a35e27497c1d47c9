// address.cpp - addr-spec parsing, comparison form and IDN A-labels.
// Parsing is lenient where real mail is (display names, comments, source
// routes, dots in obsolete local parts) and strict where a comparison would
// be wrong (bad UTF-8, stray '@', bad domain labels, a label libidn2
// refuses). Must not depend on anything but the C++ library, Poco
// Foundation's UTF-8 tables and libidn2 (IDNA2008 with UTS #46 mapping).
#include "core/address.h"

#include "core/errors.h"

#include <Poco/UTF8Encoding.h>
#include <Poco/UTF8String.h>
#include <cstdio>
#include <cstring>
#include <idn2.h>

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

// appendUtf8 - c (a code point decodeUtf8 returned) as UTF-8.
void appendUtf8(std::string& out, char32_t c)
{
    if (c < 0x80) {
        out += static_cast<char>(c);
        return;
    }
    char buf[4];
    int n = c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    for (int k = n - 1; k > 0; --k, c >>= 6)
        buf[k] = static_cast<char>(0x80 | (c & 0x3F));
    buf[0] = static_cast<char>((n == 2 ? 0xC0 : n == 3 ? 0xE0 : 0xF0) | c);
    out.append(buf, static_cast<std::size_t>(n));
}

bool isAscii(const std::string& s)
{
    for (unsigned char c : s)
        if (c >= 0x80)
            return false;
    return true;
}

// --- domains ---------------------------------------------------------------

// The label separators of IDNA (RFC 3490 3.1): full stop, ideographic full
// stop, fullwidth full stop, halfwidth ideographic full stop.
bool isIdnDot(char32_t c)
{
    return c == U'.' || c == U'\u3002' || c == U'\uff0e' || c == U'\uff61';
}

// isALabel - "xn--" in any case: an A-label that libidn2 must check.
bool isALabel(const std::string& label)
{
    return label.size() >= 4 && (label[0] | 0x20) == 'x' && (label[1] | 0x20) == 'n' &&
           label[2] == '-' && label[3] == '-';
}

// asciiLabel - an ASCII label lowercased; letters, digits, '-', '_' (and '*'
// in a pattern). Host names with "--" in positions 3-4 that are not A-labels
// ("ab--c") exist on the Internet and are kept, as before libidn2.
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

// idnaLabel - a U-label or A-label through libidn2: UTS #46 mapping
// (non-transitional: 'ß' stays), NFC, then the IDNA2008 rules (RFC 5891-5893:
// disallowed code points, CONTEXTJ/CONTEXTO, bidi, hyphens, A-label round
// trip). What libidn2 refuses is refused here: the caller fails closed.
std::string idnaLabel(const std::string& label)
{
    // libidn2 reads a C string: a NUL would cut the label short, and the key would
    // be of a shorter domain than the one written (fuzz finding F2). No control byte
    // belongs in a domain anyway.
    for (unsigned char c : label)
        if (c < 0x20 || c == 0x7f)
            fail("character " + showChar(c) + " not allowed in a domain");
    char* out = nullptr;
    const int rc = idn2_to_ascii_8z(label.c_str(), &out, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
    if (rc != IDN2_OK)
        fail("label " + showText(label) +
             " refused by IDNA2008/UTS #46 (libidn2: " + idn2_strerror(rc) + ")");
    std::string ascii = out;
    idn2_free(out);
    if (ascii.find('.') != std::string::npos)
        fail("label " + showText(label) + " maps to more than one label");
    return asciiLabel(ascii, false);
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
    // Split at the IDN dots first, so that a wildcard label ('*', ASCII only)
    // never reaches libidn2; every other label with 8-bit or an "xn--" does.
    std::vector<std::string> labels;
    if (isAscii(domain)) {
        std::size_t start = 0;
        for (;;) {
            const std::size_t dot = domain.find('.', start);
            const std::string label = domain.substr(start, dot - start);
            labels.push_back(isALabel(label) ? idnaLabel(label) : asciiLabel(label, allowWildcard));
            if (dot == std::string::npos)
                break;
            start = dot + 1;
        }
    } else {
        const std::u32string all = decodeUtf8(domain);
        std::string label;
        bool ascii = true;
        for (std::size_t i = 0; i <= all.size(); ++i) {
            if (i == all.size() || isIdnDot(all[i])) {
                if (ascii && !isALabel(label))
                    labels.push_back(asciiLabel(label, allowWildcard));
                else if (label.find('*') != std::string::npos)
                    fail("'*' cannot share a label with non-ASCII characters");
                else
                    labels.push_back(label.empty() ? label : idnaLabel(label));
                label.clear();
                ascii = true;
            } else {
                appendUtf8(label, all[i]);
                ascii = ascii && all[i] < 0x80;
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

// withoutIso2022 - raw ISO-2022-JP (RFC 1468; old Japanese mailers write
// display names so) made opaque: each designation (ESC ( B, ESC $ B, ...) and
// every byte of a double-byte run becomes 0x80, display-only 8-bit to the
// parser, so that JIS bytes such as '(' or '"' open no comment or quote. An
// address written in JIS becomes 8-bit and does not read, as it should not.
std::string withoutIso2022(const std::string& text)
{
    if (text.find('\x1b') == std::string::npos)
        return text;
    std::string out = text;
    bool doubleByte = false;
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto at = [&](std::size_t k) { return i + k < out.size() ? out[i + k] : '\0'; };
        std::size_t n = 0;
        if (at(0) == '\x1b' && at(1) == '(' && at(2) && std::strchr("BJI", at(2))) {
            n = 3;
            doubleByte = false;
        } else if (at(0) == '\x1b' && at(1) == '$' && at(2) && std::strchr("@AB", at(2))) {
            n = 3;
            doubleByte = true;
        } else if (at(0) == '\x1b' && at(1) == '$' && at(2) == '(' && at(3) &&
                   std::strchr("CDOQ", at(3))) {
            n = 4;
            doubleByte = true;
        }
        if (n) {
            out.replace(i, n, n, '\x80');
            i += n - 1;
        } else if (out[i] == '\r' || out[i] == '\n') {
            doubleByte = false; // a run never spans a line
        } else if (doubleByte && static_cast<unsigned char>(out[i]) >= 0x21 &&
                   static_cast<unsigned char>(out[i]) <= 0x7e) {
            out[i] = '\x80';
        }
    }
    return out;
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
        return parseMailbox(withoutIso2022(text), false);
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
        parts = splitMailboxes(withoutIso2022(text), sawGroup);
    } catch (const Fault& f) {
        throw InputError("malformed address list " + showText(text) + ": " + f.what);
    }
    std::vector<MailAddress> out;
    for (const std::string& part : parts) {
        bool blank = trim(part).empty();
        try { // a comment alone ("Team: (nobody);") is CFWS, not a mailbox
            blank = blank || trim(stripComments(part)).empty();
        } catch (const Fault&) { // parseAddress says what is wrong
        }
        if (blank)
            continue;
        MailAddress a = parseAddress(part);
        if (a.isNull()) // "<>" names no mailbox: a From of it is unreadable, not a bounce
            throw InputError("malformed address list " + showText(text) + ": <> is not a mailbox");
        out.push_back(std::move(a));
    }
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

std::string domainForDisplay(const std::string& domain)
{
    // From the comparison form, so that case and mapping are already settled;
    // a domain that does not normalize is shown as given.
    std::string key;
    try {
        key = domainKey(domain, false);
    } catch (const Fault&) {
        return domain;
    }
    char* out = nullptr;
    if (idn2_to_unicode_8z8z(key.c_str(), &out, 0) != IDN2_OK)
        return domain;
    std::string text = out;
    idn2_free(out);
    return text;
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

} // namespace popgate
