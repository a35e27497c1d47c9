// pop3_tls.h - TLS for the POP3 client: one Poco::Net::Context per connection
// (never Poco's global SSLManager handlers), chain and host name checked by
// OpenSSL against the system CAs or a CA file, TLS 1.2 minimum, optional
// SHA-256 pin of the server certificate, and the facts of the handshake.
// SECURITY: a failed check throws; nothing here falls back to plaintext.
#pragma once

#include "plugin/net/pop3_errors.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/X509Certificate.h>
#include <string>

namespace popgate
{

struct TlsSettings {
    bool verify = true;             ///< chain and host name; turn off only together with a pin
    std::string caFile;             ///< PEM file of trusted CAs; empty = the system CAs
    std::string pinSha256;          ///< lowercase hex SHA-256 of the DER certificate; empty = none
    std::string minVersion = "1.2"; ///< "1.0" | "1.1" | "1.2" | "1.3"
};

/// What the handshake settled, for Test Connection and the debug log.
struct TlsInfo {
    std::string protocol; ///< "TLSv1.3"
    std::string cipher;   ///< "TLS_AES_256_GCM_SHA384"
    std::string subject;  ///< "CN=localhost"
    std::string issuer;
    std::string notAfter; ///< "2027-11-28 18:00:00 UTC"
    std::string sha256;   ///< pin form of the certificate
};

/// makeClientContext - a new client Context for one connection to host;
/// throws Pop3TlsError (stage Tls) for an unknown minVersion or unreadable CA file.
Poco::Net::Context::Ptr makeClientContext(const TlsSettings& settings, const std::string& host);

/// startTls - TLS handshake on a connected socket (implicit TLS or after STLS),
/// then the pin check; fills info. The plain socket must not be used afterwards.
/// Throws Pop3TlsError ("certificate verify failed: ...", "certificate pin
/// mismatch ..."), Pop3TimeoutError or Pop3NetworkError.
Poco::Net::SecureStreamSocket startTls(const Poco::Net::StreamSocket& plain,
                                       const TlsSettings& settings, const std::string& host,
                                       Pop3Stage stage, TlsInfo& info);

/// certificateSha256 - lowercase hex SHA-256 of the certificate's DER encoding.
std::string certificateSha256(const Poco::Net::X509Certificate& certificate);

/// normalizePin - lower case, colons and spaces removed; throws InputError
/// unless 64 hex digits remain.
std::string normalizePin(const std::string& pin);

} // namespace popgate
