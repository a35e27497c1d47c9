// tls_minimum_test - "TLS 1.2 minimum" (README tls-min-version, default 1.2):
// Pop3Client (plugin/net/pop3_client.cpp, pop3_tls.cpp) against an
// in-process TLS server that speaks at most TLS 1.1 (OpenSSL with security
// level 0, the only way Debian 12's OpenSSL 3.0 starts such a server). The
// client must refuse the version itself: the server sees a ClientHello that
// offers nothing below 1.2. Without popgate's minimum, OpenSSL's own
// security level would still stop the handshake, but later and for another
// reason (the legacy SHA-1 signature), so the server-side check tells the
// two apart. A row with a certificate of an unknown issuer checks that
// verification is on by default. A control row (the same server allowing TLS 1.2) shows the
// rig can do TLS at all. The key and the certificate are made here.
#define BOOST_TEST_MODULE tls_minimum
#include "plugin/net/pop3_client.h"
#include "tests/support/testsupport.h"

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <boost/test/unit_test.hpp>
#include <cstdio>
#include <future>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

using namespace popgate;

namespace
{

/// Identity - a fresh RSA key and a self-signed certificate for 127.0.0.1.
struct Identity {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    Identity()
    {
        key = EVP_RSA_gen(2048);
        cert = X509_new();
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
        X509_set_pubkey(cert, key);
        X509_NAME* name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                                   0);
        X509_set_issuer_name(cert, name);
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
        X509_EXTENSION* san =
            X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
        X509_add_ext(cert, san, -1);
        X509_EXTENSION_free(san);
        X509_sign(cert, key, EVP_sha256());
    }
    ~Identity()
    {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    void writeCertificate(const std::string& path) const
    {
        FILE* f = std::fopen(path.c_str(), "w");
        BOOST_TEST_REQUIRE(f != nullptr);
        PEM_write_X509(f, cert);
        std::fclose(f);
    }
};

/// ServerSide - what the TLS server saw of one connection.
struct ServerSide {
    bool handshake = false;
    std::string version; ///< negotiated, when the handshake succeeded
    std::string error;   ///< OpenSSL's reason, when it failed
};

/// serveOnce - accept one connection, TLS at most maxVersion at security
/// level 0, then "+OK", "-ERR" to every line, until the client hangs up.
ServerSide serveOnce(Poco::Net::ServerSocket& listener, const Identity& id, int maxVersion)
{
    ServerSide out;
    if (!listener.poll(Poco::Timespan(10, 0), Poco::Net::Socket::SELECT_READ)) {
        out.error = "no client";
        return out;
    }
    Poco::Net::StreamSocket s = listener.acceptConnection();
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx, maxVersion);
    SSL_CTX_use_certificate(ctx, id.cert);
    SSL_CTX_use_PrivateKey(ctx, id.key);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, s.impl()->sockfd());
    ERR_clear_error();
    if (SSL_accept(ssl) == 1) {
        out.handshake = true;
        out.version = SSL_get_version(ssl);
        const char greeting[] = "+OK ready\r\n";
        SSL_write(ssl, greeting, sizeof greeting - 1);
        char buffer[512];
        int n = 0;
        while ((n = SSL_read(ssl, buffer, sizeof buffer)) > 0)
            for (int i = 0; i < n; ++i)
                if (buffer[i] == '\n') { // CAPA and the rest: not offered
                    const char no[] = "-ERR not here\r\n";
                    SSL_write(ssl, no, sizeof no - 1);
                }
    } else {
        const unsigned long e = ERR_get_error();
        out.error = e ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "?" : "closed";
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return out;
}

struct Row {
    const char* label;
    int serverMax;           ///< the server's highest TLS version
    const char* clientMin;   ///< the account's tls-min-version ("" the default)
    bool connects;           ///< the client gets to the greeting
    const char* serverError; ///< part of the server's reason when it fails ("" any)
    bool stranger = false;   ///< the server shows a certificate the client does not trust
    const char* clientError = ""; ///< part of the client's error when it fails
};

} // namespace

BOOST_AUTO_TEST_CASE(tls_below_the_minimum_is_refused)
{
    const Identity id;
    test::TempDir dir;
    const std::string ca = dir.file("ca.pem");
    id.writeCertificate(ca);

    const Row rows[] = {
        {"server TLS 1.1 only, default minimum", TLS1_1_VERSION, "", false, "unsupported protocol"},
        {"server TLS 1.1 only, minimum 1.2", TLS1_1_VERSION, "1.2", false,
         "unsupported protocol"},
        {"server TLS 1.0 only, default minimum", TLS1_VERSION, "", false, "unsupported protocol"},
        {"control: server up to TLS 1.2", TLS1_2_VERSION, "", true, ""},
        {"server TLS 1.2, minimum 1.3", TLS1_2_VERSION, "1.3", false, "unsupported protocol"},
        // Never downgraded to an unverified peer either: TLS verified by default.
        {"certificate of an unknown issuer", TLS1_2_VERSION, "", false, "", true,
         "certificate verify failed"},
    };
    const Identity stranger;
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Poco::Net::ServerSocket listener(Poco::Net::SocketAddress("127.0.0.1", 0));
            auto server = std::async(std::launch::async,
                                     [&] {
                return serveOnce(listener, row.stranger ? stranger : id, row.serverMax);
            });
            Pop3Settings settings;
            settings.host = "127.0.0.1";
            settings.port = listener.address().port();
            settings.security = Security::SslTls;
            settings.tls.caFile = ca;
            if (*row.clientMin)
                settings.tls.minVersion = row.clientMin;
            settings.connectTimeout = std::chrono::milliseconds(5000);
            settings.readTimeout = std::chrono::milliseconds(5000);
            std::string clientError;
            bool opened = false;
            std::string protocol;
            {
                Pop3Client client(settings);
                try {
                    client.open();
                    opened = true;
                    protocol = client.tlsInfo().protocol;
                } catch (const Pop3Error& e) {
                    clientError = e.what();
                    BOOST_TEST((e.stage() == Pop3Stage::Tls), "fails at TLS: " << e.what());
                }
            } // the client hangs up
            const ServerSide seen = server.get();
            BOOST_TEST(opened == row.connects,
                       "client: " << (opened ? "connected " + protocol : clientError));
            if (row.connects) {
                BOOST_TEST(seen.handshake);
                BOOST_TEST(protocol == "TLSv1.2");
            } else {
                BOOST_TEST(!seen.handshake, "the server completed a " << seen.version
                                                                      << " handshake");
                BOOST_TEST(clientError.find(row.clientError) != std::string::npos,
                           "the client's error: " << clientError);
                BOOST_TEST(seen.error.find(row.serverError) != std::string::npos,
                           "the server's reason: '" << seen.error << "' (client: " << clientError
                                                    << ")");
            }
        }
    }
}
