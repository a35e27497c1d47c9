// conntest.cpp - Test Connection over Pop3Client: the stage walk, the lines
// it prints (one per authentication try) and the mapping from the failing
// stage to the exit code.
#include "plugin/net/conntest.h"

#include "core/errors.h"
#include "core/text.h"
#include "plugin/net/oauth_sasl.h"

#include <cstdio>
#include <memory>

namespace popgate
{

int exitCodeForStage(Pop3Stage stage)
{
    switch (stage) {
    case Pop3Stage::Resolve:
        return kTestResolve;
    case Pop3Stage::Connect:
        return kTestConnect;
    case Pop3Stage::Tls:
        return kTestTls;
    case Pop3Stage::Greeting:
    case Pop3Stage::Capa:
    case Pop3Stage::StartTls:
        return kTestSession;
    case Pop3Stage::Auth:
        return kTestAuth;
    case Pop3Stage::Quit:
        return kTestQuit;
    default:
        return kTestMailbox;
    }
}

namespace
{

// BoundedText - an std::streambuf that keeps the first `limit` octets written
// and counts the rest away (a peeked header section may be of any size).
class BoundedText : public std::streambuf
{
public:
    explicit BoundedText(std::size_t limit) : limit_(limit) {}
    const std::string& text() const { return text_; }

protected:
    int_type overflow(int_type ch) override
    {
        if (!traits_type::eq_int_type(ch, traits_type::eof()) && text_.size() < limit_)
            text_ += traits_type::to_char_type(ch);
        return traits_type::not_eof(ch);
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override
    {
        const std::size_t room = limit_ - std::min(limit_, text_.size());
        text_.append(s, std::min(room, static_cast<std::size_t>(n)));
        return n;
    }

private:
    std::size_t limit_;
    std::string text_;
};

/// mechanismLabel - how a try is shown: "APOP", "USER/PASS", "SASL PLAIN", "SASL LOGIN".
std::string mechanismLabel(Pop3Mechanism mechanism)
{
    switch (mechanism) {
    case Pop3Mechanism::User:
        return "USER/PASS";
    case Pop3Mechanism::Apop:
        return "APOP";
    case Pop3Mechanism::Plain:
        return "SASL PLAIN";
    case Pop3Mechanism::Login:
        return "SASL LOGIN";
    case Pop3Mechanism::Auto:
        break;
    }
    return "AUTH";
}

/// printAttempts - "AUTH: APOP: refused: -ERR [AUTH] ..." then "AUTH: USER/PASS: ok (as u)".
void printAttempts(const Pop3Client& client, const std::string& user, std::ostream& out)
{
    for (const Pop3AuthAttempt& a : client.authAttempts()) {
        out << "AUTH: " << mechanismLabel(a.mechanism) << ": ";
        if (a.ok)
            out << "ok (as " << user << ")";
        else
            out << "refused: "
                << (a.reply.empty() ? std::string("(no reply)")
                                    : escapeText(a.reply, EscapeFor::Terminal));
        out << std::endl;
    }
}

} // namespace

std::string formatSize(std::int64_t octets)
{
    if (octets < 1000)
        return std::to_string(octets) + " bytes";
    const char* units[] = {"kB", "MB", "GB", "TB"};
    double value = static_cast<double>(octets) / 1000.0;
    int unit = 0;
    while (value >= 1000.0 && unit < 3) {
        value /= 1000.0;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, "%.1f %s", value, units[unit]);
    return text;
}

ConnectionTestResult runConnectionTest(const ConnectionTestSettings& settings, std::ostream& out)
{
    ConnectionTestResult result;
    Pop3Stage stage = Pop3Stage::Resolve;
    auto finish = [&](int code, const std::string& stageName, const std::string& words) {
        result.exitCode = code;
        result.failedStage = stageName;
        result.verdict =
            "Connection failed at " + stageName + ": " + escapeText(words, EscapeFor::Terminal);
        out << result.verdict << std::endl;
        return result;
    };
    try {
        std::unique_ptr<FileProtocolTrace> trace;
        if (!settings.tracePath.empty())
            trace = std::make_unique<FileProtocolTrace>(settings.tracePath);

        Pop3Settings pop;
        pop.host = settings.host;
        pop.port = settings.port;
        pop.security = settings.security;
        pop.tls.verify = settings.verifyTls;
        pop.tls.caFile = settings.caFile;
        pop.tls.pinSha256 =
            settings.pinSha256.empty() ? std::string() : normalizePin(settings.pinSha256);
        pop.tls.minVersion = settings.minTlsVersion;
        pop.connectTimeout = settings.connectTimeout;
        pop.readTimeout = settings.readTimeout;
        pop.allowPlaintextAuth = settings.allowPlaintextAuth;
        pop.trace = trace.get();

        Pop3Client client(pop);
        client.open([&](Pop3Stage passed, const std::string& detail) {
            out << pop3StageName(passed) << ": " << escapeText(detail, EscapeFor::Terminal)
                << std::endl;
            stage = passed;
        });
        result.tls = client.tlsInfo();

        stage = Pop3Stage::Auth;
        if (settings.auth == AuthKind::Password) {
            try {
                client.authenticate(settings.user, settings.secret, settings.mechanism);
            } catch (const Pop3Error&) {
                printAttempts(client, settings.user, out);
                throw;
            }
            printAttempts(client, settings.user, out);
        } else if (settings.auth == AuthKind::None) {
            out << "AUTH: skipped (no authentication configured)" << std::endl;
            client.quit();
            result.exitCode = kTestOk;
            result.verdict = "Connection successful (not logged in)";
            out << result.verdict << std::endl;
            return result;
        } else {
            // OAuth: settings.secret holds the access token (popgatectl fetched it).
            Account a;
            a.auth = settings.auth;
            a.user = settings.user;
            a.server = settings.host;
            a.port = settings.port;
            a.security = settings.security;
            authenticateOAuth(client, a, settings.secret);
            out << "AUTH: ok (" << (settings.auth == AuthKind::OAuth2 ? "xoauth2" : "oauthbearer")
                << " as " << settings.user << ")" << std::endl;
        }

        stage = Pop3Stage::Stat;
        Pop3Stat s = client.stat();
        result.messages = s.messages;
        result.octets = s.octets;
        out << "STAT: " << s.messages << " messages, " << formatSize(s.octets) << std::endl;

        stage = Pop3Stage::Uidl;
        std::vector<Pop3Uid> uids = client.uidl();
        result.uidl = true;
        out << "UIDL: supported (" << uids.size() << " ids)" << std::endl;

        const std::int64_t peek = std::min<std::int64_t>(settings.peekHeaders, s.messages);
        for (int n = 1; n <= peek; ++n) {
            BoundedText header(kPeekOctets);
            std::ostream sink(&header);
            try {
                client.top(n, 0, sink);
            } catch (const Pop3Error& e) {
                if (e.kind() != Pop3ErrorKind::ServerError)
                    throw;
                out << "TOP: refused ("
                    << escapeText(e.serverText().empty() ? e.detail() : e.serverText(),
                                  EscapeFor::Terminal)
                    << "): no headers to show" << std::endl;
                break;
            }
            if (settings.onHeader)
                settings.onHeader(n, header.text());
        }

        stage = Pop3Stage::Quit;
        client.quit();
        out << "QUIT: ok" << std::endl;

        result.exitCode = kTestOk;
        result.verdict = "Connection successful: " + std::to_string(s.messages) + " messages, " +
                         formatSize(s.octets);
        out << result.verdict << std::endl;
        return result;
    } catch (const Pop3Error& e) {
        const std::string& words = e.serverText().empty() ? e.detail() : e.serverText();
        return finish(exitCodeForStage(e.stage()), pop3StageName(e.stage()), words);
    } catch (const InputError& e) {
        return finish(kTestBadSettings, "SETUP", e.what());
    } catch (const std::exception& e) {
        return finish(kTestInternal, pop3StageName(stage), e.what());
    }
}

} // namespace popgate
