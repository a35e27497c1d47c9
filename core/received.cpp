// received.cpp - Received: parsing for XCLIENT (see received.h). A hand-written
// scanner over the field's first kMaxReceivedField octets: no regex (bounded
// time on hostile input), and inet_pton to decide what an address is.
#include "core/received.h"

#include <arpa/inet.h>
#include <cctype>
#include <netinet/in.h>

namespace popgate
{

namespace
{

bool isWsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool iequals(const std::string& a, const char* b)
{
    std::size_t i = 0;
    for (; i < a.size() && b[i] != '\0'; ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return i == a.size() && b[i] == '\0';
}

// hostName - letters, digits, '-', dot-separated labels of 1-63, at most 253,
// at least one letter (Postfix refuses a numeric NAME), no label starting or
// ending with '-'. What XCLIENT NAME= accepts, and nothing that needs quoting.
bool hostName(const std::string& s)
{
    if (s.empty() || s.size() > 253)
        return false;
    bool letter = false;
    std::size_t label = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (std::isalpha(c) && c < 0x80)
            letter = true;
        else if (!(std::isdigit(c) && c < 0x80) && c != '-')
            return false;
        if (c == '-' && label == 0)
            return false;
        if (++label > 63)
            return false;
    }
    return letter && label > 0 && s.back() != '-';
}

// address - the canonical form of an IPv4 or IPv6 literal, or nullopt.
std::optional<std::string> address(const std::string& text, bool& ipv6)
{
    std::string s = text;
    if (s.size() > 5 && iequals(s.substr(0, 5), "ipv6:")) {
        s = s.substr(5);
        ipv6 = true;
    } else {
        ipv6 = s.find(':') != std::string::npos;
    }
    if (s.empty() || s.size() > INET6_ADDRSTRLEN)
        return std::nullopt;
    for (const char c : s) // inet_pton would stop at a NUL and accept what is before it
        if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '.' && c != ':')
            return std::nullopt;
    char out[INET6_ADDRSTRLEN] = {};
    if (ipv6) {
        in6_addr a6{};
        if (inet_pton(AF_INET6, s.c_str(), &a6) != 1 ||
            inet_ntop(AF_INET6, &a6, out, sizeof out) == nullptr)
            return std::nullopt;
    } else {
        in_addr a4{};
        if (inet_pton(AF_INET, s.c_str(), &a4) != 1 ||
            inet_ntop(AF_INET, &a4, out, sizeof out) == nullptr)
            return std::nullopt;
    }
    return std::string(out);
}

} // namespace

std::optional<ReceivedOrigin> parseReceived(const std::string& value)
{
    if (value.size() > kMaxReceivedField)
        return std::nullopt;
    const std::string& v = value;
    std::size_t p = 0;
    auto skipWsp = [&] {
        while (p < v.size() && isWsp(v[p]))
            ++p;
    };
    // token - up to whitespace or one of stops; "" if none.
    auto token = [&](const char* stops) {
        const std::string stop(stops);
        const std::size_t start = p;
        while (p < v.size() && !isWsp(v[p]) && stop.find(v[p]) == std::string::npos)
            ++p;
        return v.substr(start, p - start);
    };

    skipWsp();
    if (!iequals(token("("), "from"))
        return std::nullopt;
    skipWsp();
    if (token("(").empty()) // the client's HELO: its claim, not used
        return std::nullopt;
    skipWsp();
    if (p >= v.size() || v[p] != '(')
        return std::nullopt;
    ++p;
    skipWsp();
    ReceivedOrigin origin;
    if (p < v.size() && v[p] != '[') {
        std::string name = token("[()");
        if (!name.empty() && name.back() == '.')
            name.pop_back();
        if (!iequals(name, "unknown")) {
            if (!hostName(name))
                return std::nullopt;
            origin.name = name;
        }
        skipWsp();
    }
    if (p >= v.size() || v[p] != '[')
        return std::nullopt;
    const std::size_t close = v.find(']', p + 1);
    if (close == std::string::npos || close - p - 1 > 5 + INET6_ADDRSTRLEN)
        return std::nullopt;
    const auto addr = address(v.substr(p + 1, close - p - 1), origin.ipv6);
    if (!addr)
        return std::nullopt;
    origin.address = *addr;
    p = close + 1;
    if (p >= v.size() || !(v[p] == ')' || isWsp(v[p])))
        return std::nullopt;
    return origin;
}

std::optional<std::string> receivedField(const std::string& header, int n)
{
    if (n < 1)
        return std::nullopt;
    int seen = 0;
    std::size_t p = 0;
    while (p < header.size()) {
        std::size_t eol = header.find('\n', p);
        if (eol == std::string::npos)
            eol = header.size();
        std::string line = header.substr(p, eol - p);
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.empty())
            return std::nullopt; // the end of the header section
        p = eol + 1;
        const std::size_t colon = line.find(':');
        if (line[0] == ' ' || line[0] == '\t' || colon == std::string::npos)
            continue; // a continuation of another field, or not a field
        std::size_t nameEnd = colon;
        while (nameEnd > 0 && (line[nameEnd - 1] == ' ' || line[nameEnd - 1] == '\t'))
            --nameEnd;
        if (!iequals(line.substr(0, nameEnd), "received") || ++seen < n)
            continue;
        std::string body = line.substr(colon + 1);
        // Its continuation lines, unfolded (RFC 5322 2.2.3: the CRLF goes).
        while (p < header.size() && (header[p] == ' ' || header[p] == '\t')) {
            std::size_t next = header.find('\n', p);
            if (next == std::string::npos)
                next = header.size();
            std::string more = header.substr(p, next - p);
            if (!more.empty() && more.back() == '\r')
                more.pop_back();
            body += more;
            p = next + 1;
        }
        std::size_t b = 0, e = body.size();
        while (b < e && isWsp(body[b]))
            ++b;
        while (e > b && isWsp(body[e - 1]))
            --e;
        return body.substr(b, e - b);
    }
    return std::nullopt;
}

std::string xtext(const std::string& value)
{
    static const char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const char ch : value) {
        const unsigned char c = static_cast<unsigned char>(ch);
        if (c >= '!' && c <= '~' && c != '+' && c != '=') {
            out += ch;
        } else {
            out += '+';
            out += hex[c >> 4];
            out += hex[c & 0x0F];
        }
    }
    return out;
}

} // namespace popgate
