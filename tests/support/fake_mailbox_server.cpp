// fake_mailbox_server.cpp - see fake_mailbox_server.h. One thread accepts and
// serves one session at a time; commands are taken line by line from a
// buffer, so pipelined commands are answered in order like any others.
#include "tests/support/fake_mailbox_server.h"

#include <Poco/DigestEngine.h>
#include <Poco/MD5Engine.h>
#include <Poco/Timespan.h>
#include <algorithm>
#include <cctype>

namespace popgate::test
{

namespace
{

const char* const kApopTimestamp = "<123.456@fake>";
const Poco::Timespan kTick(0, 50 * 1000);  // how often a wait looks at stop_
const std::chrono::seconds kIdleLimit(60); // a silent client is dropped
const Poco::Timespan kSendTimeout(10, 0);  // a client that stops reading

std::string upper(std::string text)
{
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return text;
}

// words - the line split at single spaces (POP3 arguments never hold one).
std::vector<std::string> words(const std::string& line)
{
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= line.size()) {
        std::size_t space = line.find(' ', start);
        if (space == std::string::npos)
            space = line.size();
        if (space > start)
            out.push_back(line.substr(start, space - start));
        start = space + 1;
    }
    return out;
}

// contentOf - the wire form without its terminating "." line (if it has one).
std::string contentOf(const std::string& wire)
{
    if (wire == ".\r\n" || wire == ".\n")
        return "";
    for (const char* end : {"\n.\r\n", "\n.\n"}) {
        const std::string e(end);
        if (wire.size() >= e.size() && wire.compare(wire.size() - e.size(), e.size(), e) == 0)
            return wire.substr(0, wire.size() - e.size() + 1);
    }
    return wire;
}

} // namespace

std::string wireFor(const std::string& text)
{
    std::string out;
    out.reserve(text.size() + text.size() / 32 + 8);
    bool lineStart = true;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (lineStart && c == '.')
            out += '.';
        lineStart = false;
        if (c == '\n') {
            if (out.empty() || out.back() != '\r')
                out += '\r';
            lineStart = true;
        }
        out += c;
    }
    if (!out.empty() && !lineStart)
        out += "\r\n";
    return out + ".\r\n";
}

std::int64_t realSize(const std::string& wire)
{
    const std::string content = contentOf(wire);
    std::int64_t size = static_cast<std::int64_t>(content.size());
    for (std::size_t i = 0; i + 1 < content.size(); ++i)
        if ((i == 0 || content[i - 1] == '\n') && content[i] == '.' && content[i + 1] == '.')
            --size;
    return size;
}

// Session - one connection: the mailbox as it was when it started, the DELE
// marks, the state (authorization or transaction).
class FakeMailboxServer::Session
{
public:
    Session(FakeMailboxServer& owner, Poco::Net::StreamSocket socket)
        : owner_(owner), socket_(std::move(socket))
    {
        std::lock_guard<std::mutex> lock(owner_.mutex_);
        messages_ = owner_.mailbox_;
        marked_.assign(messages_.size(), false);
    }

    void run()
    {
        socket_.setSendTimeout(kSendTimeout);
        socket_.setNoDelay(true);
        std::string greeting = "+OK fake POP3 ready";
        if (owner_.options_.apopTimestamp)
            greeting += std::string(" ") + kApopTimestamp;
        send(greeting + "\r\n");
        std::string line;
        while (readLine(line)) {
            if (!command(line))
                return;
        }
    }

private:
    void send(const std::string& bytes)
    {
        const std::size_t chunk = std::max<std::size_t>(1, owner_.options_.writeChunk);
        std::size_t done = 0;
        while (done < bytes.size()) {
            const int n = socket_.sendBytes(bytes.data() + done,
                                            static_cast<int>(std::min(chunk, bytes.size() - done)));
            if (n <= 0)
                throw std::runtime_error("send failed");
            done += static_cast<std::size_t>(n);
        }
    }

    /// readLine - the next line from the buffer, reading more as needed; false
    /// on end of stream, a network error, a long silence or stop.
    bool readLine(std::string& line)
    {
        auto lastData = std::chrono::steady_clock::now();
        for (;;) {
            const std::size_t nl = buffer_.find('\n');
            if (nl != std::string::npos) {
                line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                if (!line.empty() && line.back() == '\r')
                    line.pop_back();
                else
                    owner_.problem("line without CRLF: '" + line + "'");
                if (!owner_.options_.pipelining && buffer_.find('\n') != std::string::npos)
                    owner_.problem("'" + buffer_.substr(0, buffer_.find('\n')) +
                                   "' sent before the reply to '" + line +
                                   "' without PIPELINING offered");
                std::lock_guard<std::mutex> lock(owner_.mutex_);
                owner_.sessions_.back().commands.push_back(line);
                return true;
            }
            if (owner_.stop_.load() || std::chrono::steady_clock::now() - lastData > kIdleLimit)
                return false;
            try {
                if (!socket_.poll(kTick, Poco::Net::Socket::SELECT_READ))
                    continue;
                char chunk[4096];
                const int n = socket_.receiveBytes(chunk, sizeof chunk);
                if (n <= 0)
                    return false;
                buffer_.append(chunk, static_cast<std::size_t>(n));
                lastData = std::chrono::steady_clock::now();
            } catch (...) {
                return false;
            }
        }
    }

    /// message - the message a number argument names, or nullptr (no such
    /// message, or marked deleted).
    const FakeMessage* message(const std::string& arg, std::size_t& index) const
    {
        if (arg.empty() || arg.size() > 9 ||
            !std::all_of(arg.begin(), arg.end(), [](unsigned char c) { return std::isdigit(c); }))
            return nullptr;
        const long n = std::stol(arg);
        if (n < 1 || static_cast<std::size_t>(n) > messages_.size() || marked_[n - 1])
            return nullptr;
        index = static_cast<std::size_t>(n - 1);
        return &messages_[index];
    }

    /// note - add a UIDL to one of this session's lists.
    void note(std::vector<std::string> MailboxSession::*list, const std::string& uidl)
    {
        std::lock_guard<std::mutex> lock(owner_.mutex_);
        (owner_.sessions_.back().*list).push_back(uidl);
    }

    std::int64_t listed(const FakeMessage& m) const
    {
        return m.listSize >= 0 ? m.listSize : realSize(m.wire);
    }

    /// command - answers one line; false when the session is over.
    bool command(const std::string& line)
    {
        const std::vector<std::string> w = words(line);
        const std::string verb = w.empty() ? "" : upper(w[0]);
        const std::string arg1 = w.size() > 1 ? w[1] : "";
        const std::string arg2 = w.size() > 2 ? w[2] : "";
        const MailboxOptions& o = owner_.options_;

        if (verb == "CAPA") {
            std::string capa = "+OK Capability list follows\r\nUSER\r\nUIDL\r\nTOP\r\n";
            if (o.pipelining)
                capa += "PIPELINING\r\n";
            send(capa + "RESP-CODES\r\n.\r\n");
        } else if (verb == "QUIT") {
            std::vector<std::string> expunged;
            {
                std::lock_guard<std::mutex> lock(owner_.mutex_);
                if (loggedIn_) {
                    // The update state: marks apply before the client hears +OK.
                    std::vector<FakeMessage> kept;
                    for (std::size_t i = 0; i < messages_.size(); ++i) {
                        if (marked_[i])
                            expunged.push_back(messages_[i].uidl);
                        else
                            kept.push_back(messages_[i]);
                    }
                    owner_.mailbox_ = std::move(kept);
                }
                owner_.sessions_.back().quit = true;
                owner_.sessions_.back().expunged = expunged;
            }
            send("+OK fake POP3 signing off (" + std::to_string(expunged.size()) +
                 " messages deleted)\r\n");
            return false;
        } else if (verb == "NOOP" && loggedIn_) {
            send("+OK\r\n");
        } else if (!loggedIn_) {
            authorization(verb, arg1, arg2);
        } else if (verb == "STAT") {
            std::int64_t count = 0, octets = 0;
            for (std::size_t i = 0; i < messages_.size(); ++i)
                if (!marked_[i]) {
                    ++count;
                    octets += listed(messages_[i]);
                }
            send("+OK " + std::to_string(count) + " " + std::to_string(octets) + "\r\n");
        } else if (verb == "LIST" || verb == "UIDL") {
            const bool list = verb == "LIST";
            auto entry = [&](std::size_t i) {
                return std::to_string(i + 1) + " " +
                       (list ? std::to_string(listed(messages_[i])) : messages_[i].uidl);
            };
            std::size_t index = 0;
            if (!arg1.empty()) {
                if (!message(arg1, index))
                    send("-ERR no such message\r\n");
                else
                    send("+OK " + entry(index) + "\r\n");
            } else {
                std::string reply =
                    list ? "+OK scan listing follows\r\n" : "+OK unique-id listing follows\r\n";
                for (std::size_t i = 0; i < messages_.size(); ++i)
                    if (!marked_[i])
                        reply += entry(i) + "\r\n";
                send(reply + ".\r\n");
            }
        } else if (verb == "RETR" || verb == "TOP") {
            std::size_t index = 0;
            const FakeMessage* m = message(arg1, index);
            if (m && verb == "RETR")
                note(&MailboxSession::retrieved, m->uidl);
            if (!m)
                send("-ERR no such message\r\n");
            else if (verb == "RETR" && !m->retrError.empty())
                send("-ERR " + m->retrError + "\r\n");
            else if (verb == "RETR")
                send("+OK " + std::to_string(listed(*m)) + " octets\r\n" + m->wire);
            else
                send("+OK top of message follows\r\n" + top(m->wire, arg2));
        } else if (verb == "DELE") {
            std::size_t index = 0;
            if (!message(arg1, index)) {
                send("-ERR no such message\r\n");
            } else {
                marked_[index] = true;
                note(&MailboxSession::marked, messages_[index].uidl);
                send("+OK message " + arg1 + " deleted\r\n");
            }
        } else if (verb == "RSET") {
            marked_.assign(messages_.size(), false);
            send("+OK\r\n");
        } else {
            send("-ERR unknown command\r\n");
        }
        return true;
    }

    void authorization(const std::string& verb, const std::string& arg1, const std::string& arg2)
    {
        const MailboxOptions& o = owner_.options_;
        if (verb == "USER") {
            user_ = arg1;
            send("+OK\r\n");
        } else if (verb == "PASS") {
            const bool ok = !user_.empty() && user_ == o.user && arg1 == o.password;
            user_.clear();
            loggedIn_ = ok;
            send(ok ? "+OK logged in\r\n" : "-ERR [AUTH] Bad login\r\n");
        } else if (verb == "APOP" && o.apopTimestamp) {
            Poco::MD5Engine md5;
            md5.update(std::string(kApopTimestamp) + o.password);
            const bool ok = o.apopAccepted && arg1 == o.user &&
                            arg2 == Poco::DigestEngine::digestToHex(md5.digest());
            loggedIn_ = ok;
            send(ok ? "+OK logged in\r\n" : "-ERR [AUTH] Bad login\r\n");
        } else {
            send("-ERR not valid before logging in\r\n");
        }
    }

    // top - the header and `lines` body lines of a wire form, terminated.
    static std::string top(const std::string& wire, const std::string& lines)
    {
        const std::string content = contentOf(wire);
        long wanted = 0;
        try {
            wanted = lines.empty() ? 0 : std::stol(lines);
        } catch (...) {
        }
        std::string out;
        bool body = false;
        std::size_t start = 0;
        while (start < content.size()) {
            std::size_t nl = content.find('\n', start);
            nl = nl == std::string::npos ? content.size() : nl + 1;
            const std::string l = content.substr(start, nl - start);
            if (body && wanted-- <= 0)
                break;
            out += l;
            if (!body && (l == "\r\n" || l == "\n"))
                body = true;
            start = nl;
        }
        return out + ".\r\n";
    }

    FakeMailboxServer& owner_;
    Poco::Net::StreamSocket socket_;
    std::string buffer_;
    std::vector<FakeMessage> messages_;
    std::vector<bool> marked_;
    std::string user_;
    bool loggedIn_ = false;
};

FakeMailboxServer::FakeMailboxServer(std::vector<FakeMessage> messages, MailboxOptions options)
    : options_(std::move(options)), server_(Poco::Net::SocketAddress("127.0.0.1", 0)),
      mailbox_(std::move(messages))
{
    thread_ = std::thread([this] { run(); });
}

FakeMailboxServer::~FakeMailboxServer()
{
    stop_ = true;
    if (thread_.joinable())
        thread_.join();
}

int FakeMailboxServer::port() const
{
    return server_.address().port();
}

bool FakeMailboxServer::awaitIdle(std::chrono::milliseconds timeout)
{
    std::unique_lock<std::mutex> lock(mutex_);
    return idle_.wait_for(lock, timeout, [this] { return !inSession_; });
}

std::vector<MailboxSession> FakeMailboxServer::sessions() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_;
}

std::vector<std::string> FakeMailboxServer::commands() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> all;
    for (const auto& s : sessions_)
        all.insert(all.end(), s.commands.begin(), s.commands.end());
    return all;
}

std::vector<std::string> FakeMailboxServer::held() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> uidls;
    for (const auto& m : mailbox_)
        uidls.push_back(m.uidl);
    return uidls;
}

bool FakeMailboxServer::holds(const std::string& uidl) const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return std::any_of(mailbox_.begin(), mailbox_.end(),
                       [&](const FakeMessage& m) { return m.uidl == uidl; });
}

std::string FakeMailboxServer::problems() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return problems_;
}

void FakeMailboxServer::problem(const std::string& text)
{
    std::lock_guard<std::mutex> lock(mutex_);
    problems_ += (problems_.empty() ? "" : "; ") + text;
}

void FakeMailboxServer::run()
{
    while (!stop_.load()) {
        try {
            if (!server_.poll(kTick, Poco::Net::Socket::SELECT_READ))
                continue;
            Poco::Net::StreamSocket socket = server_.acceptConnection();
            {
                std::lock_guard<std::mutex> lock(mutex_);
                inSession_ = true;
                sessions_.emplace_back();
            }
            try {
                Session session(*this, socket);
                session.run();
            } catch (...) {
                // the client hung up while we wrote: the session simply ends
            }
            try {
                socket.close();
            } catch (...) {
            }
        } catch (const std::exception& e) {
            problem(std::string("accept: ") + e.what());
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            inSession_ = false;
        }
        idle_.notify_all();
    }
}

} // namespace popgate::test
