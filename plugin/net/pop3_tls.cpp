// pop3_tls.cpp - per-connection TLS contexts and the handshake. Host names
// are checked by OpenSSL (X509_VERIFY_PARAM), not by Poco, whose RELAXED mode
// skips the check for loopback peers. The verify callback keeps OpenSSL's
// reason so the error says "certificate has expired", not just "failed".
#include "plugin/net/pop3_tls.h"

#include <Poco/DateTimeFormatter.h>
#include <Poco/Exception.h>
#include <Poco/File.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/Session.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace popgate
{

namespace
{

// The handshake runs in the caller's thread, so the reason of the first
// verify failure can be handed back through a thread-local.
thread_local std::string tVerifyError;

int verifyCallback(int ok, X509_STORE_CTX* store)
{
    if (!ok && tVerifyError.empty()) {
        int err = X509_STORE_CTX_get_error(store);
        tVerifyError = X509_verify_cert_error_string(err);
        X509* cert = X509_STORE_CTX_get_current_cert(store);
        if (cert) {
            char name[256];
            X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof name);
            tVerifyError += std::string(" (") + name + ")";
        }
    }
    return ok;
}

int protocolVersion(const std::string& text)
{
    if (text == "1.0")
        return TLS1_VERSION;
    if (text == "1.1")
        return TLS1_1_VERSION;
    if (text == "1.2" || text.empty())
        return TLS1_2_VERSION;
    if (text == "1.3")
        return TLS1_3_VERSION;
    throw Pop3TlsError(Pop3Stage::Tls, "TLS setup",
                       "unknown minimum TLS version '" + text + "' (1.0, 1.1, 1.2, 1.3)");
}

std::string protocolName(int version)
{
    switch (version) {
    case TLS1_VERSION:
        return "TLSv1";
    case TLS1_1_VERSION:
        return "TLSv1.1";
    case TLS1_2_VERSION:
        return "TLSv1.2";
    case TLS1_3_VERSION:
        return "TLSv1.3";
    default:
        return "unknown (" + std::to_string(version) + ")";
    }
}

} // namespace

std::string normalizePin(const std::string& pin)
{
    std::string out;
    for (char c : pin) {
        if (c == ':' || c == ' ')
            continue;
        if (c >= 'A' && c <= 'F')
            c = static_cast<char>(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            throw InputError("tls pin: not a hex SHA-256 digest");
        out += c;
    }
    if (out.size() != 64)
        throw InputError("tls pin: a SHA-256 digest has 64 hex digits, got " +
                         std::to_string(out.size()));
    return out;
}

Poco::Net::Context::Ptr makeClientContext(const TlsSettings& settings, const std::string& host)
{
    int minVersion = protocolVersion(settings.minVersion);
    if (!settings.caFile.empty() && !Poco::File(settings.caFile).exists())
        throw Pop3TlsError(Pop3Stage::Tls, "TLS setup",
                           "CA file " + settings.caFile + " not found");

    Poco::Net::Context::Params params;
    params.verificationMode =
        settings.verify ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE;
    params.loadDefaultCAs = settings.caFile.empty();
    params.caLocation = settings.caFile;
    params.cipherList = "DEFAULT";
    Poco::Net::Context::Ptr context;
    try {
        context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    } catch (const Poco::Exception& e) {
        throw Pop3TlsError(Pop3Stage::Tls, "TLS setup", e.displayText());
    }
    context->enableExtendedCertificateVerification(false); // OpenSSL checks the name below

    SSL_CTX* ctx = context->sslContext();
    SSL_CTX_set_min_proto_version(ctx, minVersion);
    if (settings.verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verifyCallback);
        X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
        Poco::Net::IPAddress ip;
        int rc = Poco::Net::IPAddress::tryParse(host, ip)
                     ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                     : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (rc != 1)
            throw Pop3TlsError(Pop3Stage::Tls, "TLS setup", "cannot check host name " + host);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    return context;
}

std::string certificateSha256(const Poco::Net::X509Certificate& certificate)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(certificate.certificate(), EVP_sha256(), md, &len) != 1)
        return std::string();
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out;
}

Poco::Net::SecureStreamSocket startTls(const Poco::Net::StreamSocket& plain,
                                       const TlsSettings& settings, const std::string& host,
                                       Pop3Stage stage, TlsInfo& info)
{
    const std::string command = "TLS handshake";
    std::string pin = settings.pinSha256.empty() ? std::string() : normalizePin(settings.pinSha256);
    Poco::Net::Context::Ptr context = makeClientContext(settings, host);
    Poco::Net::IPAddress ip;
    std::string sniName = Poco::Net::IPAddress::tryParse(host, ip) ? std::string() : host;

    Poco::Net::SecureStreamSocket secure;
    tVerifyError.clear();
    try {
        secure = Poco::Net::SecureStreamSocket::attach(plain, sniName, context);
    } catch (const Poco::TimeoutException&) {
        throw Pop3TimeoutError(stage, command, "timed out");
    } catch (const Poco::Net::SSLException& e) {
        if (!tVerifyError.empty())
            throw Pop3TlsError(stage, command, "certificate verify failed: " + tVerifyError);
        throw Pop3TlsError(stage, command, "handshake failed: " + e.displayText());
    } catch (const Poco::Exception& e) {
        if (!tVerifyError.empty())
            throw Pop3TlsError(stage, command, "certificate verify failed: " + tVerifyError);
        throw Pop3NetworkError(stage, command, e.displayText());
    }

    if (!secure.havePeerCertificate())
        throw Pop3TlsError(stage, command, "server presented no certificate");
    Poco::Net::X509Certificate cert = secure.peerCertificate();
    info.sha256 = certificateSha256(cert);
    info.subject = cert.subjectName();
    info.issuer = cert.issuerName();
    info.notAfter = Poco::DateTimeFormatter::format(cert.expiresOn(), "%Y-%m-%d %H:%M:%S UTC");
    if (Poco::Net::Session::Ptr session = secure.currentSession()) {
        SSL_SESSION* s = session->sslSession();
        info.protocol = protocolName(SSL_SESSION_get_protocol_version(s));
        if (const SSL_CIPHER* cipher = SSL_SESSION_get0_cipher(s))
            info.cipher = SSL_CIPHER_get_name(cipher);
    }
    if (!pin.empty() && pin != info.sha256)
        throw Pop3TlsError(stage, command,
                           "certificate pin mismatch: server certificate sha256 " + info.sha256 +
                               ", expected " + pin);
    return secure;
}

} // namespace popgate
