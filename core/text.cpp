// text.cpp - string helpers (see text.h). Every parser here throws InputError
// with a message that says what was expected, so callers can prefix the field.
#include "core/text.h"

#include "core/errors.h"

#include <Poco/NumberParser.h>
#include <Poco/String.h>
#include <cctype>

namespace popgate
{

std::string trim(const std::string& text)
{
    const char* blanks = " \t\r\n";
    const auto first = text.find_first_not_of(blanks);
    if (first == std::string::npos)
        return {};
    const auto last = text.find_last_not_of(blanks);
    return text.substr(first, last - first + 1);
}

std::vector<std::string> splitList(const std::string& text, char sep)
{
    std::vector<std::string> out;
    std::string::size_type start = 0;
    while (start <= text.size()) {
        auto end = text.find(sep, start);
        if (end == std::string::npos)
            end = text.size();
        std::string piece = trim(text.substr(start, end - start));
        if (!piece.empty())
            out.push_back(piece);
        start = end + 1;
    }
    return out;
}

bool parseBool(const std::string& text)
{
    const std::string v = Poco::toLower(trim(text));
    if (v == "yes" || v == "true" || v == "on" || v == "1")
        return true;
    if (v == "no" || v == "false" || v == "off" || v == "0")
        return false;
    throw InputError("expected yes or no, got '" + flatten(text) + "'");
}

std::int64_t parseInteger(const std::string& text, std::int64_t min, std::int64_t max)
{
    Poco::Int64 value = 0;
    const std::string t = trim(text);
    if (t.empty() || !Poco::NumberParser::tryParse64(t, value))
        throw InputError("expected a whole number, got '" + flatten(text) + "'");
    if (value < min || value > max)
        throw InputError("must be " + std::to_string(min) + "-" + std::to_string(max) + " (got " +
                         t + ")");
    return value;
}

namespace
{

std::int64_t parseScaled(const std::string& text, const char* what, std::int64_t (*unit)(char))
{
    std::string t = trim(text);
    std::int64_t scale = 1;
    if (!t.empty() && std::isalpha(static_cast<unsigned char>(t.back()))) {
        scale = unit(static_cast<char>(std::tolower(static_cast<unsigned char>(t.back()))));
        if (scale == 0)
            throw InputError(std::string("expected ") + what + ", got '" + flatten(text) + "'");
        t.pop_back();
    }
    Poco::Int64 value = 0;
    if (t.empty() || !Poco::NumberParser::tryParse64(t, value) || value < 0)
        throw InputError(std::string("expected ") + what + ", got '" + flatten(text) + "'");
    if (value > INT64_MAX / scale)
        throw InputError(std::string("too large: '") + flatten(text) + "'");
    return value * scale;
}

} // namespace

std::int64_t parseDuration(const std::string& text)
{
    return parseScaled(text, "a duration such as 90s, 15m, 24h or 30d", [](char c) -> std::int64_t {
        switch (c) {
        case 's':
            return 1;
        case 'm':
            return 60;
        case 'h':
            return 3600;
        case 'd':
            return 86400;
        default:
            return 0;
        }
    });
}

std::int64_t parseSize(const std::string& text)
{
    return parseScaled(text, "a size such as 1048576, 512k, 10M or 1G", [](char c) -> std::int64_t {
        switch (c) {
        case 'k':
            return 1024;
        case 'm':
            return 1024 * 1024;
        case 'g':
            return 1024 * 1024 * 1024;
        default:
            return 0;
        }
    });
}

std::string flatten(const std::string& text)
{
    std::string out;
    out.reserve(text.size());
    for (unsigned char c : text) {
        if (c == '\r' || c == '\n') {
            if (!out.empty() && out.back() != ' ')
                out += ' ';
        } else if (c < 0x20 || c == 0x7f) {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return trim(out);
}

namespace
{

void hexByte(std::string& out, unsigned char c)
{
    static const char* hex = "0123456789abcdef";
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
}

// utf8Length - the length of the valid UTF-8 sequence at text[i] (2-4), or 0:
// overlong forms, surrogates and code points past U+10FFFF are not valid.
std::size_t utf8Length(const std::string& text, std::size_t i)
{
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
    const unsigned char c = b(0);
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (i + n > text.size())
        return 0;
    if (b(1) < lo || b(1) > hi)
        return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (b(k) < 0x80 || b(k) > 0xbf)
            return 0;
    return n;
}

} // namespace

std::string escapeText(const std::string& text, EscapeFor where)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (where == EscapeFor::Json) {
            const std::size_t n = c < 0x80 ? 1 : utf8Length(text, i);
            // TAB, LF and CR stay: JSON's own white space (Poco escapes them in strings).
            const bool space = c == '\t' || c == '\n' || c == '\r';
            if ((c < 0x20 && !space) || c == 0x7f ||
                (n == 2 && c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0)) {
                static const char* hex = "0123456789abcdef";
                const unsigned char u = n == 2 ? static_cast<unsigned char>(text[i + 1]) : c;
                out += "\\u00";
                out += hex[u >> 4];
                out += hex[u & 15];
            } else if (n == 0) {
                out += "\\ufffd";
            } else {
                out.append(text, i, n);
            }
            i += n == 0 ? 1 : n;
            continue;
        }
        if (c >= 0x80) {
            const std::size_t n = utf8Length(text, i);
            // C1 controls (U+0080-U+009F, 0xc2 0x80-0x9f): CSI and friends to
            // some terminals, so escaped like the C0 ones.
            if (n == 0 || (c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0)) {
                const std::size_t bad = n == 0 ? 1 : n;
                for (std::size_t k = 0; k < bad; ++k)
                    hexByte(out, static_cast<unsigned char>(text[i + k]));
                i += bad;
            } else {
                out.append(text, i, n);
                i += n;
            }
            continue;
        }
        ++i;
        if (where == EscapeFor::LogText && (c == '\r' || c == '\n')) {
            while (i < text.size() && (text[i] == '\r' || text[i] == '\n'))
                ++i;
            if (!out.empty() && i < text.size())
                out += ' ';
        } else if (c < 0x20 || c == 0x7f || (c == ' ' && where == EscapeFor::LogField) ||
                   (c == '=' && where == EscapeFor::LogText)) {
            hexByte(out, c);
        } else if (c == '\\' && where == EscapeFor::LogField) {
            out += "\\\\";
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

} // namespace popgate
