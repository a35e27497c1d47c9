// conntest.h - "Test Connection": one read-only POP3 session that walks the
// stages resolve, connect, TLS, greeting, CAPA (STLS), AUTH, STAT, UIDL, QUIT,
// prints each as it passes (AUTH: one line per mechanism tried, refused ones
// with the server's words) and ends with one verdict line. Never sends DELE.
// With peekHeaders, it also reads the header sections of the first messages
// (TOP n 0, bounded) for the caller to show (a domain mailbox's recipients).
// Takes plain settings; popgatectl maps an Account (and its unsealed secret) in.
//
// Exit codes (ConnectionTestResult::exitCode):
//    0 ok                 10 resolve            11 connect
//   12 TLS handshake, certificate or pin        13 greeting, CAPA or STLS
//   14 authentication    15 STAT or UIDL       16 QUIT
//    2 bad settings (pin, mechanism, CA file)   1 anything else
#pragma once

#include "core/account.h"
#include "plugin/net/pop3_client.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

namespace popgate
{

struct ConnectionTestSettings {
    std::string host;
    int port = 0; ///< 0: 995 for ssl-tls, 110 otherwise
    Security security = Security::SslTls;
    AuthKind auth = AuthKind::Password;
    Pop3Mechanism mechanism = Pop3Mechanism::Auto;
    std::string user;
    std::string secret; ///< plaintext; never printed
    std::string caFile;
    std::string pinSha256;
    bool verifyTls = true;
    std::string minTlsVersion = "1.2";
    std::chrono::milliseconds connectTimeout{15000};
    std::chrono::milliseconds readTimeout{30000};
    bool allowPlaintextAuth = false;
    std::string tracePath; ///< debug protocol trace file; empty = none
    /// After UIDL: TOP n 0 for the first peekHeaders messages (0: none), each
    /// header section (its first kPeekOctets) handed to onHeader. A refused TOP
    /// ends the peeking with a line, not the test.
    int peekHeaders = 0;
    std::function<void(int number, const std::string& header)> onHeader;
};

/// At most this much of a peeked header section is kept.
constexpr std::size_t kPeekOctets = 256 * 1024;

enum ConnectionTestExit {
    kTestOk = 0,
    kTestInternal = 1,
    kTestBadSettings = 2,
    kTestResolve = 10,
    kTestConnect = 11,
    kTestTls = 12,
    kTestSession = 13,
    kTestAuth = 14,
    kTestMailbox = 15,
    kTestQuit = 16,
};

struct ConnectionTestResult {
    int exitCode = kTestInternal;
    std::string failedStage; ///< "AUTH"; empty on success
    std::string verdict;     ///< the last line printed, without newline
    std::int64_t messages = -1;
    std::int64_t octets = -1;
    bool uidl = false;
    TlsInfo tls;
};

/// runConnectionTest - runs the stages, printing one line per stage passed
/// and the verdict ("Connection successful: 12 messages, 3.4 MB" or
/// "Connection failed at AUTH: -ERR [AUTH] Authentication failed") to out.
/// Never throws; the outcome is in the result.
ConnectionTestResult runConnectionTest(const ConnectionTestSettings& settings, std::ostream& out);

/// exitCodeForStage - the exit code documented above for a failing stage.
int exitCodeForStage(Pop3Stage stage);

/// formatSize - "512 bytes", "12.3 kB", "3.4 MB", "1.2 GB" (powers of 1000).
std::string formatSize(std::int64_t octets);

} // namespace popgate
