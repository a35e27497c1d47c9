// pop3_errors.h - the typed failures of popgate's POP3 client.
// Every failure is a Pop3Error (an OperationError): it names the stage and the
// command ("RETR 7", never a password), says what went wrong and carries the
// server's words with newlines flattened plus the RFC 2449 response code.
// Whether a failure means "retry later" or "give up" is decided elsewhere.
#pragma once

#include "core/errors.h"

#include <ostream>
#include <string>
#include <utility>

namespace popgate
{

enum class Pop3ErrorKind { Network, Timeout, Protocol, Tls, Auth, ServerError };

/// The step of a session a failure happened in; the Test Connection exit
/// codes are per stage.
enum class Pop3Stage {
    Resolve,
    Connect,
    Tls,
    Greeting,
    Capa,
    StartTls,
    Auth,
    Stat,
    Uidl,
    List,
    Top,
    Retr,
    Dele,
    Rset,
    Noop,
    Quit
};

/// pop3ErrorKindName - "network" | "timeout" | "protocol" | "tls" | "auth" | "server".
std::string pop3ErrorKindName(Pop3ErrorKind kind);
/// pop3StageName - upper case: "RESOLVE", "CONNECT", "TLS", "GREETING", "CAPA", "STLS", "AUTH", ...
std::string pop3StageName(Pop3Stage stage);
/// operator<< - the names above, for logs and test output.
inline std::ostream& operator<<(std::ostream& out, Pop3ErrorKind kind)
{
    return out << pop3ErrorKindName(kind);
}
inline std::ostream& operator<<(std::ostream& out, Pop3Stage stage)
{
    return out << pop3StageName(stage);
}
/// flattenServerText - CR/LF and other control or 8-bit bytes shown as
/// "\xNN", cut to 512 bytes; safe to put in one log line.
std::string flattenServerText(const std::string& text);
/// parseResponseCode - "IN-USE" for "-ERR [IN-USE] locked", "SYS/TEMP", ...;
/// empty when the reply carries no RFC 2449 code.
std::string parseResponseCode(const std::string& reply);

class Pop3Error : public OperationError
{
public:
    /// what() is "COMMAND: detail" and, with server words, "COMMAND: detail: WORDS".
    Pop3Error(Pop3ErrorKind kind, Pop3Stage stage, std::string command, std::string detail,
              std::string serverText = std::string());

    Pop3ErrorKind kind() const { return kind_; }
    Pop3Stage stage() const { return stage_; }
    /// command - "RETR 7", "AUTH PLAIN", "PASS", "connect"; never a secret.
    const std::string& command() const { return command_; }
    const std::string& detail() const { return detail_; }
    /// serverText - the server's reply line, flattened; empty if none.
    const std::string& serverText() const { return serverText_; }
    /// responseCode - RFC 2449 code from serverText ("IN-USE"), or empty.
    const std::string& responseCode() const { return responseCode_; }

private:
    Pop3ErrorKind kind_;
    Pop3Stage stage_;
    std::string command_;
    std::string detail_;
    std::string serverText_;
    std::string responseCode_;
};

/// The connection broke: refused, reset, closed by the peer mid-reply.
class Pop3NetworkError : public Pop3Error
{
public:
    Pop3NetworkError(Pop3Stage stage, std::string command, std::string detail)
        : Pop3Error(Pop3ErrorKind::Network, stage, std::move(command), std::move(detail))
    {
    }
};

/// Connect or a read or write took longer than its timeout.
class Pop3TimeoutError : public Pop3Error
{
public:
    Pop3TimeoutError(Pop3Stage stage, std::string command, std::string detail)
        : Pop3Error(Pop3ErrorKind::Timeout, stage, std::move(command), std::move(detail))
    {
    }
};

/// The server broke the protocol: garbage, overlong line, bad multi-line
/// end, size that differs from LIST, missing STLS.
class Pop3ProtocolError : public Pop3Error
{
public:
    Pop3ProtocolError(Pop3Stage stage, std::string command, std::string detail,
                      std::string serverText = std::string())
        : Pop3Error(Pop3ErrorKind::Protocol, stage, std::move(command), std::move(detail),
                    std::move(serverText))
    {
    }
};

/// Handshake failed, certificate refused ("certificate verify failed: ..."),
/// pin mismatch.
class Pop3TlsError : public Pop3Error
{
public:
    Pop3TlsError(Pop3Stage stage, std::string command, std::string detail,
                 std::string serverText = std::string())
        : Pop3Error(Pop3ErrorKind::Tls, stage, std::move(command), std::move(detail),
                    std::move(serverText))
    {
    }
};

/// Credentials refused, or no acceptable way to send them (plaintext refused,
/// mechanism not offered).
class Pop3AuthError : public Pop3Error
{
public:
    Pop3AuthError(Pop3Stage stage, std::string command, std::string detail,
                  std::string serverText = std::string())
        : Pop3Error(Pop3ErrorKind::Auth, stage, std::move(command), std::move(detail),
                    std::move(serverText))
    {
    }
};

/// The server answered -ERR (other than to credentials): see responseCode().
class Pop3ServerError : public Pop3Error
{
public:
    Pop3ServerError(Pop3Stage stage, std::string command, std::string serverText)
        : Pop3Error(Pop3ErrorKind::ServerError, stage, std::move(command), "server said",
                    std::move(serverText))
    {
    }
};

} // namespace popgate
