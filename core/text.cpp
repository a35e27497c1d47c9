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

} // namespace popgate
