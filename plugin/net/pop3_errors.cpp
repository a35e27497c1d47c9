// pop3_errors.cpp - names, flattening of server words and the RFC 2449
// response code parser for Pop3Error.
#include "plugin/net/pop3_errors.h"

#include <cstdio>

namespace popgate
{

std::string pop3ErrorKindName(Pop3ErrorKind kind)
{
    switch (kind) {
    case Pop3ErrorKind::Network:
        return "network";
    case Pop3ErrorKind::Timeout:
        return "timeout";
    case Pop3ErrorKind::Protocol:
        return "protocol";
    case Pop3ErrorKind::Tls:
        return "tls";
    case Pop3ErrorKind::Auth:
        return "auth";
    case Pop3ErrorKind::ServerError:
        return "server";
    }
    return "unknown";
}

std::string pop3StageName(Pop3Stage stage)
{
    switch (stage) {
    case Pop3Stage::Resolve:
        return "RESOLVE";
    case Pop3Stage::Connect:
        return "CONNECT";
    case Pop3Stage::Tls:
        return "TLS";
    case Pop3Stage::Greeting:
        return "GREETING";
    case Pop3Stage::Capa:
        return "CAPA";
    case Pop3Stage::StartTls:
        return "STLS";
    case Pop3Stage::Auth:
        return "AUTH";
    case Pop3Stage::Stat:
        return "STAT";
    case Pop3Stage::Uidl:
        return "UIDL";
    case Pop3Stage::List:
        return "LIST";
    case Pop3Stage::Top:
        return "TOP";
    case Pop3Stage::Retr:
        return "RETR";
    case Pop3Stage::Dele:
        return "DELE";
    case Pop3Stage::Rset:
        return "RSET";
    case Pop3Stage::Noop:
        return "NOOP";
    case Pop3Stage::Quit:
        return "QUIT";
    }
    return "UNKNOWN";
}

std::string flattenServerText(const std::string& text)
{
    const std::size_t limit = 512;
    std::string out;
    for (unsigned char c : text) {
        if (out.size() >= limit) {
            out += "...";
            break;
        }
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02X", c);
            out += hex;
        }
    }
    return out;
}

std::string parseResponseCode(const std::string& reply)
{
    // "-ERR [SYS/TEMP] text" or "+OK [code]": the code sits right after the status.
    std::size_t space = reply.find(' ');
    if (space == std::string::npos || space + 1 >= reply.size() || reply[space + 1] != '[')
        return std::string();
    std::size_t end = reply.find(']', space + 2);
    if (end == std::string::npos)
        return std::string();
    std::string code = reply.substr(space + 2, end - space - 2);
    for (char c : code) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '/';
        if (!ok)
            return std::string();
    }
    return code;
}

static std::string composeWhat(const std::string& command, const std::string& detail,
                               const std::string& serverText)
{
    std::string what = command + ": " + detail;
    if (!serverText.empty())
        what += ": " + serverText;
    return what;
}

Pop3Error::Pop3Error(Pop3ErrorKind kind, Pop3Stage stage, std::string command, std::string detail,
                     std::string serverText)
    : OperationError(composeWhat(command, detail, flattenServerText(serverText))), kind_(kind),
      stage_(stage), command_(std::move(command)), detail_(std::move(detail)),
      serverText_(flattenServerText(serverText)), responseCode_(parseResponseCode(serverText_))
{
}

} // namespace popgate
