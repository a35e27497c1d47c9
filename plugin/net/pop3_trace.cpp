// pop3_trace.cpp - redaction of client lines, the header/body cut for
// message replies and the file-backed trace sink.
#include "plugin/net/pop3_trace.h"

#include "core/errors.h"

#include <Poco/DateTimeFormatter.h>
#include <Poco/Timestamp.h>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace popgate
{

namespace
{

const char* const kHidden = "********";

std::string upper(std::string text)
{
    for (char& c : text)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    return text;
}

} // namespace

std::string redactClientLine(const std::string& line, bool saslContinuation)
{
    if (saslContinuation)
        return line == "*" ? line : kHidden; // "*" is the client's cancel, no secret
    std::size_t space = line.find(' ');
    std::string verb = upper(line.substr(0, space));
    if (space == std::string::npos)
        return line;
    if (verb == "PASS")
        return "PASS " + std::string(kHidden);
    if (verb == "APOP" || verb == "AUTH") {
        // keep the first argument (user or mechanism), hide the rest
        std::size_t second = line.find(' ', space + 1);
        if (second == std::string::npos)
            return line;
        return line.substr(0, second) + " " + kHidden;
    }
    return line;
}

bool TraceBodyCutter::line(const std::string& text, std::size_t lineBytes)
{
    if (inBody_) {
        bodyBytes_ += static_cast<std::int64_t>(lineBytes);
        return false;
    }
    if (text.empty())
        inBody_ = true;
    return true;
}

std::string TraceBodyCutter::summary() const
{
    if (!inBody_)
        return std::string();
    return "[body not logged: " + std::to_string(bodyBytes_) + " bytes]";
}

FileProtocolTrace::FileProtocolTrace(const std::string& path)
{
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd_ < 0)
        throw OperationError("protocol trace " + path + ": " + std::strerror(errno));
    // 0600 whatever the umask, and for a file an earlier run left more open too:
    // a trace shows servers, user names and message headers.
    if (::fchmod(fd_, 0600) != 0) {
        const std::string e = std::strerror(errno);
        ::close(fd_);
        fd_ = -1;
        throw OperationError("protocol trace " + path + ": cannot make it mode 0600: " + e);
    }
}

FileProtocolTrace::~FileProtocolTrace()
{
    if (fd_ >= 0)
        ::close(fd_);
}

void FileProtocolTrace::sent(const std::string& line)
{
    write("C: ", line);
}

void FileProtocolTrace::received(const std::string& line)
{
    write("S: ", line);
}

void FileProtocolTrace::write(const char* prefix, const std::string& line)
{
    std::string out = Poco::DateTimeFormatter::format(Poco::Timestamp(), "%Y-%m-%dT%H:%M:%S.%iZ");
    out += ' ';
    out += prefix;
    for (unsigned char c : line) {
        if (c < 0x20 || c == 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02X", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '\n';
    std::lock_guard<std::mutex> lock(mutex_);
    const char* p = out.data();
    std::size_t left = out.size();
    while (left > 0) {
        ssize_t n = ::write(fd_, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; // a debug trace never breaks the session
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

} // namespace popgate
