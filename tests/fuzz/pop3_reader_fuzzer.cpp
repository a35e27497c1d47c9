// pop3_reader_fuzzer.cpp - Pop3Client (plugin/net/pop3_client.h) against a
// hostile server: the input's first bytes pick a session (commands and the
// login mechanism), the rest is everything the server says. The client runs
// over a socketpair (openOn), the server's bytes written before it starts and
// the server's side shut for writing, so every read ends. Invariants: only
// Pop3Error escapes (no std::out_of_range, no other exception); RETR/TOP
// output has CRLF line ends only and as many octets as reported; a batch
// answers every message or throws; UIDL keys are printable ASCII of at most
// kMaxPlainUid octets or a sha256: key; capability lines are single lines;
// and the trace never sees the password, in clear or in base64.
#include "plugin/net/pop3_client.h"
#include "tests/fuzz/fuzz_support.h"

#include <Poco/Base64Encoder.h>
#include <Poco/Net/StreamSocketImpl.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <sstream>

using namespace popgate;
using popgate::fuzz::shown;

namespace
{

const std::string kUser = "fuzzuser";
const std::string kPassword = "Pa55w0rd-fuzz";

std::string base64(const std::string& data)
{
    std::ostringstream out;
    Poco::Base64Encoder encoder(out);
    encoder.rdbuf()->setLineLength(0);
    encoder << data;
    encoder.close();
    return out.str();
}

// CheckingTrace - what a ProtocolTrace sink may see: one line at a time, no secret.
class CheckingTrace : public ProtocolTrace
{
public:
    void sent(const std::string& line) override
    {
        FUZZ_CHECK(line.find('\n') == std::string::npos, "sent " + shown(line));
        static const std::string kPlain = base64(std::string() + '\0' + kUser + '\0' + kPassword);
        static const std::string kLogin = base64(kPassword);
        FUZZ_CHECK(line.find(kPassword) == std::string::npos &&
                       line.find(kPlain) == std::string::npos &&
                       line.find(kLogin) == std::string::npos,
                   "the trace saw the password: " + shown(line));
    }
    void received(const std::string& line) override
    {
        FUZZ_CHECK(line.find('\n') == std::string::npos, "received " + shown(line));
    }
};

void checkMessage(const std::string& out, std::int64_t octets, const std::string& what)
{
    FUZZ_CHECK(static_cast<std::int64_t>(out.size()) == octets,
               what + ": " + std::to_string(octets) + " octets reported, " +
                   std::to_string(out.size()) + " written");
    for (std::size_t i = out.find('\n'); i != std::string::npos; i = out.find('\n', i + 1))
        FUZZ_CHECK(i > 0 && out[i - 1] == '\r', what + ": bare LF in " + shown(out));
    FUZZ_CHECK(out.empty() || (out.size() >= 2 && out.compare(out.size() - 2, 2, "\r\n") == 0),
               what + ": output does not end in CRLF: " + shown(out));
}

void checkUid(const Pop3Uid& uid)
{
    FUZZ_CHECK(uid.number > 0, "UIDL number " + std::to_string(uid.number));
    if (uid.uid.compare(0, 7, "sha256:") == 0 && uid.uid.size() == 71)
        return;
    FUZZ_CHECK(!uid.uid.empty() && uid.uid.size() <= kMaxPlainUid, "UIDL key " + shown(uid.uid));
    for (char c : uid.uid)
        FUZZ_CHECK(c > 0x20 && c < 0x7f, "UIDL key " + shown(uid.uid));
}

void session(Pop3Client& client, const std::string& ops)
{
    std::vector<Pop3Listing> listed;
    for (char op : ops) {
        const int number = 1 + ((static_cast<unsigned char>(op) >> 5) & 3);
        switch (op & 0x1f) {
        case 0:
            client.authenticate(kUser, kPassword, Pop3Mechanism::Auto);
            break;
        case 1:
            client.authenticate(kUser, kPassword, Pop3Mechanism::User);
            break;
        case 2:
            client.authenticate(kUser, kPassword, Pop3Mechanism::Apop);
            break;
        case 3:
            client.authenticate(kUser, kPassword, Pop3Mechanism::Plain);
            break;
        case 4:
            client.authenticate(kUser, kPassword, Pop3Mechanism::Login);
            break;
        case 5: {
            const Pop3Stat s = client.stat();
            FUZZ_CHECK(s.messages >= 0 && s.octets >= 0, "STAT");
            break;
        }
        case 6:
            listed = client.list();
            for (const Pop3Listing& l : listed)
                FUZZ_CHECK(l.number > 0 && l.octets >= 0, "LIST " + std::to_string(l.number));
            break;
        case 7: {
            const Pop3Listing l = client.list(number);
            FUZZ_CHECK(l.number == number && l.octets >= 0, "LIST n");
            break;
        }
        case 8:
            for (const Pop3Uid& u : client.uidl())
                checkUid(u);
            break;
        case 9: {
            const Pop3Uid u = client.uidl(number);
            FUZZ_CHECK(u.number == number, "UIDL n");
            checkUid(u);
            break;
        }
        case 10:
        case 11: {
            std::ostringstream out;
            const std::int64_t octets =
                client.retrieve(number, out, (op & 0x1f) == 10 ? -1 : 100);
            checkMessage(out.str(), octets, "RETR");
            break;
        }
        case 12: {
            std::ostringstream out;
            const std::int64_t octets = client.top(number, 0, out);
            checkMessage(out.str(), octets, "TOP");
            break;
        }
        case 13:
        case 14: {
            std::vector<Pop3Listing> messages = listed;
            if ((op & 0x1f) == 14 || messages.empty())
                for (int i = 1; i <= number; ++i)
                    messages.push_back({i, i * 10, std::string()});
            std::vector<std::ostringstream> sinks(messages.size());
            std::size_t doneCount = 0;
            // done() follows each message, so doneCount is the message being read.
            const auto replies = client.retrieveMany(
                messages,
                [&](int n) -> std::ostream& {
                    FUZZ_CHECK(doneCount < messages.size() && messages[doneCount].number == n,
                               "sink asked for message " + std::to_string(n) + " out of turn");
                    return sinks[doneCount];
                },
                [&](const Pop3BatchReply&) { ++doneCount; });
            FUZZ_CHECK(replies.size() == messages.size() && doneCount == replies.size(),
                       "batch of " + std::to_string(messages.size()) + " answered " +
                           std::to_string(replies.size()));
            for (std::size_t i = 0; i < replies.size(); ++i) {
                FUZZ_CHECK(replies[i].number == messages[i].number, "batch order");
                FUZZ_CHECK(!(replies[i].ok && replies[i].malformed), "ok and malformed");
                if (replies[i].ok)
                    checkMessage(sinks[i].str(), replies[i].octets, "batch RETR");
            }
            break;
        }
        case 15: {
            const auto replies = client.deleteMany({1, 2, number});
            FUZZ_CHECK(replies.size() == 3, "DELE batch");
            break;
        }
        case 16:
            client.dele(number);
            break;
        case 17:
            client.rset();
            break;
        case 18:
            client.noop();
            break;
        case 19:
            client.quit();
            break;
        case 20:
            client.authSasl("XOAUTH2", std::string("user=") + kUser + "\x01" + "auth=Bearer t",
                            [](const std::string&) { return std::string(); });
            break;
        default:
            break;
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1)
        return 0;
    const std::size_t opCount = std::min<std::size_t>(data[0] & 7, size - 1);
    const std::string ops(reinterpret_cast<const char*>(data) + 1, opCount);
    const std::string server(reinterpret_cast<const char*>(data) + 1 + opCount,
                             size - 1 - opCount);

    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        std::abort();
    // Everything the server says, then end of stream. What does not fit the
    // socket buffer is left out (max_len keeps inputs well below it).
    ::fcntl(fds[1], F_SETFL, O_NONBLOCK);
    std::size_t written = 0;
    while (written < server.size()) {
        const ssize_t n = ::write(fds[1], server.data() + written, server.size() - written);
        if (n <= 0)
            break;
        written += static_cast<std::size_t>(n);
    }
    ::shutdown(fds[1], SHUT_WR);

    CheckingTrace trace;
    Pop3Settings settings;
    settings.host = "127.0.0.1"; // a reconnect after a refused login finds nobody on port 1
    settings.port = 1;
    settings.security = Security::None;
    settings.allowPlaintextAuth = (data[0] & 8) != 0;
    settings.connectTimeout = std::chrono::milliseconds(200);
    settings.readTimeout = std::chrono::milliseconds(1000);
    settings.trace = &trace;
    {
        Pop3Client client(settings);
        Poco::Net::StreamSocket socket(new Poco::Net::StreamSocketImpl(fds[0]));
        socket.setReceiveTimeout(Poco::Timespan(1, 0));
        socket.setSendTimeout(Poco::Timespan(1, 0));
        try {
            client.openOn(socket);
            for (const std::string& line : client.capabilities().lines)
                FUZZ_CHECK(line.find('\n') == std::string::npos &&
                               line.size() <= kMaxStatusLine,
                           "CAPA line " + shown(line));
            FUZZ_CHECK(client.greeting().find('\n') == std::string::npos, "greeting");
            session(client, ops);
        } catch (const Pop3Error&) {
        }
    }
    ::close(fds[1]);
    return 0;
}
