// smtp_sink.cpp - see smtp_sink.h. One thread accepts and serves one session
// at a time; commands and message texts are taken from one buffer, so a
// pipelined group (RFC 2920) is answered reply by reply, in order.
#include "tests/support/smtp_sink.h"

#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <algorithm>
#include <cctype>

namespace popgate::test
{

namespace
{

const Poco::Timespan kTick(0, 50 * 1000);  // how often a wait looks at stop_
const std::chrono::seconds kIdleLimit(60); // a silent client is dropped
const Poco::Timespan kSendTimeout(10, 0);  // a client that stops reading

std::string upper(std::string text)
{
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return text;
}

bool startsWith(const std::string& text, const std::string& prefix)
{
    return upper(text.substr(0, prefix.size())) == prefix;
}

// path - the address between < and > after "MAIL FROM:" / "RCPT TO:", and
// what follows it.
bool path(const std::string& line, std::size_t from, std::string& address, std::string& rest)
{
    const std::size_t lt = line.find('<', from);
    const std::size_t gt = lt == std::string::npos ? lt : line.find('>', lt);
    if (gt == std::string::npos)
        return false;
    address = line.substr(lt + 1, gt - lt - 1);
    rest = line.substr(gt + 1);
    rest.erase(0, rest.find_first_not_of(' '));
    return true;
}

// unstuff - the message text of a DATA wire form (RFC 5321 4.5.2).
std::string unstuff(const std::string& wire)
{
    std::string body = wire.substr(0, wire.size() - 3); // the final ".\r\n"
    std::string out;
    out.reserve(body.size());
    for (std::size_t i = 0; i < body.size(); ++i) {
        if (body[i] == '.' && (i == 0 || body[i - 1] == '\n'))
            continue;
        out += body[i];
    }
    return out;
}

// headerSection - the text up to its first empty line.
std::string headerSection(const std::string& text)
{
    std::size_t end = text.find("\r\n\r\n");
    if (end == std::string::npos)
        end = text.find("\n\n");
    return end == std::string::npos ? text : text.substr(0, end + 2);
}

} // namespace

class SmtpSink::Session
{
public:
    Session(SmtpSink& owner, Poco::Net::StreamSocket socket, int index)
        : owner_(owner), socket_(std::move(socket)), index_(index)
    {
    }

    void run()
    {
        socket_.setSendTimeout(kSendTimeout);
        socket_.setNoDelay(true);
        send("220 fake.sink ESMTP popgate test sink\r\n");
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

    /// more - read what the client sent next; false on end of stream, a
    /// network error, a long silence or stop.
    bool more()
    {
        const auto start = std::chrono::steady_clock::now();
        for (;;) {
            if (owner_.stop_.load() || std::chrono::steady_clock::now() - start > kIdleLimit)
                return false;
            try {
                if (!socket_.poll(kTick, Poco::Net::Socket::SELECT_READ))
                    continue;
                char chunk[8192];
                const int n = socket_.receiveBytes(chunk, sizeof chunk);
                if (n <= 0)
                    return false;
                buffer_.append(chunk, static_cast<std::size_t>(n));
                return true;
            } catch (...) {
                return false;
            }
        }
    }

    bool readLine(std::string& line)
    {
        std::size_t nl;
        while ((nl = buffer_.find('\n')) == std::string::npos)
            if (!more())
                return false;
        line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        else
            owner_.problem("command line without CRLF: '" + line + "'");
        if (!owner_.options_.pipelining && buffer_.find('\n') != std::string::npos)
            owner_.problem("'" + buffer_.substr(0, buffer_.find('\n')) +
                           "' sent before the reply to '" + line + "' without PIPELINING offered");
        std::lock_guard<std::mutex> lock(owner_.mutex_);
        owner_.sessions_[static_cast<std::size_t>(index_)].push_back(line);
        return true;
    }

    /// readText - the DATA bytes up to and including the final ".\r\n".
    bool readText(std::string& wire)
    {
        std::size_t scanned = 0;
        for (;;) {
            if (buffer_.compare(0, 3, ".\r\n") == 0) {
                wire = buffer_.substr(0, 3);
                buffer_.erase(0, 3);
                return true;
            }
            const std::size_t end = buffer_.find("\r\n.\r\n", scanned);
            if (end != std::string::npos) {
                wire = buffer_.substr(0, end + 5);
                buffer_.erase(0, end + 5);
                return true;
            }
            scanned = buffer_.size() < 4 ? 0 : buffer_.size() - 4;
            if (!more())
                return false;
        }
    }

    void reset()
    {
        inMail_ = false;
        current_ = SinkMessage();
    }

    /// command - answers one line; false when the session is over.
    bool command(const std::string& line)
    {
        const std::string verb = upper(line.substr(0, line.find(' ')));
        const SinkOptions& o = owner_.options_;
        if (verb == "EHLO") {
            helo_ = true;
            std::string reply = "250-fake.sink\r\n";
            if (o.pipelining)
                reply += "250-PIPELINING\r\n";
            if (o.sizeLimit > 0)
                reply += "250-SIZE " + std::to_string(o.sizeLimit) + "\r\n";
            send(reply + "250 8BITMIME\r\n");
        } else if (verb == "HELO") {
            helo_ = true;
            send("250 fake.sink\r\n");
        } else if (startsWith(line, "MAIL FROM:")) {
            std::string address, rest;
            if (!helo_) {
                send("503 5.5.1 Error: send HELO/EHLO first\r\n");
            } else if (inMail_) {
                send("503 5.5.1 Error: nested MAIL command\r\n");
            } else if (!path(line, 10, address, rest)) {
                send("501 5.1.7 Bad sender address syntax\r\n");
            } else {
                const std::size_t size = upper(rest).find("SIZE=");
                if (size != std::string::npos && o.sizeLimit > 0 &&
                    std::stoll(rest.substr(size + 5)) > o.sizeLimit) {
                    send("552 5.3.4 Message size exceeds fixed limit\r\n");
                } else {
                    reset();
                    inMail_ = true;
                    current_.session = index_;
                    current_.from = address;
                    current_.mailParameters = rest;
                    send("250 2.1.0 Ok\r\n");
                }
            }
        } else if (startsWith(line, "RCPT TO:")) {
            std::string address, rest;
            if (!inMail_) {
                send("503 5.5.1 Error: need MAIL command\r\n");
            } else if (!path(line, 8, address, rest)) {
                send("501 5.1.3 Bad recipient address syntax\r\n");
            } else {
                current_.to.push_back(address);
                send("250 2.1.5 Ok\r\n");
            }
        } else if (verb == "DATA") {
            if (!inMail_) {
                send("503 5.5.1 Error: need RCPT command\r\n");
            } else if (current_.to.empty()) {
                send("554 5.5.1 Error: no valid recipients\r\n");
            } else {
                if (!buffer_.empty())
                    owner_.problem("message text sent before the 354 to DATA");
                send("354 End data with <CR><LF>.<CR><LF>\r\n");
                return text();
            }
        } else if (verb == "RSET") {
            reset();
            send("250 2.0.0 Ok\r\n");
        } else if (verb == "NOOP") {
            send("250 2.0.0 Ok\r\n");
        } else if (verb == "QUIT") {
            send("221 2.0.0 Bye\r\n");
            return false;
        } else {
            send("502 5.5.2 Error: command not recognized\r\n");
        }
        return true;
    }

    /// text - reads one message text and answers its final dot.
    bool text()
    {
        SinkMessage m = current_;
        reset();
        if (!readText(m.wire))
            return false;
        m.text = unstuff(m.wire);
        for (std::size_t i = 0; i < m.wire.size(); ++i)
            if (m.wire[i] == '\n' && (i == 0 || m.wire[i - 1] != '\r')) {
                owner_.problem("bare LF in the text of the message from <" + m.from + ">");
                break;
            }
        if (!owner_.options_.pipelining && !buffer_.empty())
            owner_.problem("a command sent before the reply to the final dot without PIPELINING");
        {
            std::lock_guard<std::mutex> lock(owner_.mutex_);
            const int nth = static_cast<int>(owner_.received_.size()) + 1;
            const std::string header = headerSection(m.text);
            m.reply = SinkReply::Accept;
            for (SinkRule& rule : owner_.rules_) {
                if (rule.times == 0 || (rule.nth > 0 && rule.nth != nth) ||
                    (!rule.match.empty() && header.find(rule.match) == std::string::npos))
                    continue;
                m.reply = rule.reply;
                if (rule.times > 0)
                    --rule.times;
                break;
            }
            if (m.reply == SinkReply::Accept)
                m.queueId = "ABC" + std::to_string(123 + owner_.queued_++);
            owner_.received_.push_back(m);
        }
        switch (m.reply) {
        case SinkReply::Accept:
            send("250 2.0.0 Ok: queued as " + m.queueId + "\r\n");
            return true;
        case SinkReply::Temporary:
            send("451 4.3.0 Error: queue file write error\r\n");
            return true;
        case SinkReply::Permanent:
            send("554 5.7.1 Error: message refused by the test sink\r\n");
            return true;
        case SinkReply::HangUp:
            return false;
        }
        return false;
    }

    SmtpSink& owner_;
    Poco::Net::StreamSocket socket_;
    const int index_;
    std::string buffer_;
    bool helo_ = false;
    bool inMail_ = false;
    SinkMessage current_;
};

SmtpSink::SmtpSink(SinkOptions options)
    : options_(options), server_(Poco::Net::SocketAddress("127.0.0.1", 0))
{
    thread_ = std::thread([this] { run(); });
}

SmtpSink::~SmtpSink()
{
    stop_ = true;
    if (thread_.joinable())
        thread_.join();
}

int SmtpSink::port() const
{
    return server_.address().port();
}

void SmtpSink::addRule(SinkRule rule)
{
    std::lock_guard<std::mutex> lock(mutex_);
    rules_.push_back(std::move(rule));
}

void SmtpSink::clearRules()
{
    std::lock_guard<std::mutex> lock(mutex_);
    rules_.clear();
}

bool SmtpSink::awaitIdle(std::chrono::milliseconds timeout)
{
    std::unique_lock<std::mutex> lock(mutex_);
    return idle_.wait_for(lock, timeout, [this] { return !inSession_; });
}

std::vector<SinkMessage> SmtpSink::received() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
}

std::vector<SinkMessage> SmtpSink::accepted() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<SinkMessage> out;
    for (const auto& m : received_)
        if (m.reply == SinkReply::Accept)
            out.push_back(m);
    return out;
}

std::vector<std::vector<std::string>> SmtpSink::sessions() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return sessions_;
}

std::string SmtpSink::problems() const
{
    std::lock_guard<std::mutex> lock(mutex_);
    return problems_;
}

void SmtpSink::problem(const std::string& text)
{
    std::lock_guard<std::mutex> lock(mutex_);
    problems_ += (problems_.empty() ? "" : "; ") + text;
}

void SmtpSink::run()
{
    while (!stop_.load()) {
        try {
            if (!server_.poll(kTick, Poco::Net::Socket::SELECT_READ))
                continue;
            Poco::Net::StreamSocket socket = server_.acceptConnection();
            int index = 0;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                inSession_ = true;
                index = static_cast<int>(sessions_.size());
                sessions_.emplace_back();
            }
            try {
                Session session(*this, socket, index);
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
