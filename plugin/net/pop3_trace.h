// pop3_trace.h - the debug trace of a POP3 session: a sink that sees every
// line in both directions, already redacted by the client (PASS, AUTH
// payloads and continuations, APOP digests), with message bodies cut after
// the headers. FileProtocolTrace appends timestamped "C: "/"S: " lines.
// SECURITY: the redaction is done before a sink sees a line, so no sink can leak.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace popgate
{

class ProtocolTrace
{
public:
    virtual ~ProtocolTrace() = default;
    /// sent - one line the client wrote, without CRLF, redacted.
    virtual void sent(const std::string& line) = 0;
    /// received - one line the server wrote, without CRLF (or a note in brackets).
    virtual void received(const std::string& line) = 0;
};

/// redactClientLine - the loggable form of a client line: "PASS ********",
/// "APOP user ********", "AUTH PLAIN ********"; a SASL continuation (any line
/// sent while saslContinuation) becomes "********". Other lines unchanged.
std::string redactClientLine(const std::string& line, bool saslContinuation);

/// Which lines of a RETR/TOP reply may be logged: the header lines up to and
/// including the empty line; after it only a byte count.
class TraceBodyCutter
{
public:
    /// line - one data line as received (unstuffed, without CRLF); returns true
    /// when it may be logged. lineBytes counts its terminator too.
    bool line(const std::string& line, std::size_t lineBytes);
    /// summary - "[body not logged: N bytes]", or empty if no body was seen.
    std::string summary() const;

private:
    bool inBody_ = false;
    std::int64_t bodyBytes_ = 0;
};

/// Appends "2026-11-28T18:30:00.123Z C: USER alice" lines to a file created
/// with mode 0600. Control bytes are shown as \xNN so a line stays a line.
class FileProtocolTrace : public ProtocolTrace
{
public:
    /// throws OperationError when the file cannot be opened for appending.
    explicit FileProtocolTrace(const std::string& path);
    ~FileProtocolTrace() override;
    FileProtocolTrace(const FileProtocolTrace&) = delete;
    FileProtocolTrace& operator=(const FileProtocolTrace&) = delete;

    void sent(const std::string& line) override;
    void received(const std::string& line) override;

private:
    void write(const char* prefix, const std::string& line);
    int fd_ = -1;
    std::mutex mutex_;
};

} // namespace popgate
