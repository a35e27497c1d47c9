// reinject.cpp - SMTP to the local MTA (see reinject.h).
#include "plugin/net/reinject.h"

#include "core/text.h"

#include <Poco/Exception.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/NumberParser.h>
#include <Poco/String.h>
#include <cstring>
#include <regex>
#include <sstream>

namespace popgate
{

namespace
{

using Kind = SmtpResult::Kind;

constexpr std::size_t kWriteChunk = 64 * 1024;
constexpr std::size_t kMaxReplyLine = 64 * 1024; // RFC 5321 says 512; be lenient, not unbounded
constexpr std::size_t npos = static_cast<std::size_t>(-1);

SmtpResult result(Kind kind, int code, const std::string& reply, const std::string& command)
{
    SmtpResult r;
    r.kind = kind;
    r.code = code;
    r.reply = flatten(reply);
    r.command = command;
    return r;
}

Kind kindOf(int code)
{
    if (code >= 200 && code < 400)
        return Kind::Accepted;
    if (code >= 400 && code < 500)
        return Kind::Temporary;
    if (code >= 500 && code < 600)
        return Kind::Permanent;
    return Kind::Unreachable; // garbage: treat as no usable session
}

Poco::Timespan timespan(std::chrono::milliseconds ms)
{
    return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms.count()) * 1000);
}

// commandName - what a result names: the command without its parameters' noise.
std::string commandName(const std::string& line)
{
    const auto size = line.find(" SIZE=");
    return size == std::string::npos ? line : line.substr(0, size);
}

} // namespace

std::string SmtpResult::describe(const std::string& relay) const
{
    if (kind == Kind::Unreachable && code == 0)
        return relay + ": " + reply + " (" + command + ")";
    if (kind == Kind::Uncertain)
        return relay + ": " + reply + " (after end of DATA: outcome unknown)";
    return relay + " said: " + reply + " (in reply to " + command + ")";
}

std::string parseQueueId(const std::string& reply)
{
    static const std::regex queued(R"(queued as ([A-Za-z0-9]+))");
    std::smatch m;
    if (std::regex_search(reply, m, queued))
        return m[1];
    return {};
}

// --- DotStuffer --------------------------------------------------------------

void DotStuffer::feed(const char* data, std::size_t n, std::string& out)
{
    out.reserve(out.size() + n + n / 32 + 8);
    const char* p = data;
    const char* const end = data + n;
    while (p < end) {
        if (lineStart_ && *p == '.')
            out += '.';
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
        const char* stop = nl ? nl : end;
        if (stop > p) {
            out.append(p, stop);
            afterCr_ = stop[-1] == '\r';
            lineStart_ = false;
        }
        if (!nl)
            break;
        if (!afterCr_)
            out += '\r';
        out += '\n';
        lineStart_ = true;
        afterCr_ = false;
        p = nl + 1;
    }
}

void DotStuffer::finish(std::string& out)
{
    if (!lineStart_)
        out += afterCr_ ? "\n" : "\r\n";
    out += ".\r\n";
    lineStart_ = true;
    afterCr_ = false;
}

// --- the session -------------------------------------------------------------

SmtpReinjector::SmtpReinjector(SmtpTarget target) : target_(std::move(target)) {}

SmtpReinjector::~SmtpReinjector()
{
    close();
}

std::string SmtpReinjector::relay() const
{
    return target_.host + "[" + std::to_string(target_.port) + "]";
}

void SmtpReinjector::drop()
{
    if (socket_) {
        try {
            socket_->close();
        } catch (...) {
        }
    }
    socket_.reset();
    out_.clear();
    in_.clear();
    inPos_ = 0;
}

void SmtpReinjector::send(const char* data, std::size_t n)
{
    while (n > 0) {
        const int sent = socket_->sendBytes(data, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
        if (sent <= 0)
            throw Poco::IOException("connection closed by the MTA while sending");
        data += sent;
        n -= static_cast<std::size_t>(sent);
    }
}

void SmtpReinjector::flush()
{
    if (!out_.empty())
        send(out_.data(), out_.size());
    out_.clear();
}

bool SmtpReinjector::readLine(std::string& line)
{
    std::size_t searched = inPos_;
    for (;;) {
        const std::size_t nl = in_.find('\n', searched);
        if (nl != std::string::npos) {
            std::size_t end = nl;
            if (end > inPos_ && in_[end - 1] == '\r')
                --end;
            line.assign(in_, inPos_, end - inPos_);
            inPos_ = nl + 1;
            return true;
        }
        if (in_.size() - inPos_ > kMaxReplyLine)
            throw Poco::DataFormatException("the MTA sent a reply line longer than " +
                                            std::to_string(kMaxReplyLine) + " bytes");
        if (inPos_ > 0) {
            in_.erase(0, inPos_);
            inPos_ = 0;
        }
        searched = in_.size();
        char chunk[4096];
        const int n = socket_->receiveBytes(chunk, sizeof chunk);
        if (n <= 0)
            throw Poco::IOException("connection closed by the MTA");
        in_.append(chunk, static_cast<std::size_t>(n));
    }
}

SmtpReinjector::Reply SmtpReinjector::readReply()
{
    Reply reply;
    std::string line;
    for (;;) {
        readLine(line);
        const bool numeric = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                             std::isdigit(static_cast<unsigned char>(line[1])) &&
                             std::isdigit(static_cast<unsigned char>(line[2]));
        if (!numeric) {
            reply.code = 0; // garbage: the caller treats the session as broken
            reply.text = line;
            return reply;
        }
        if (!reply.text.empty())
            reply.text += '\n';
        reply.text += line;
        if (line.size() == 3 || line[3] != '-') {
            reply.code = std::stoi(line.substr(0, 3));
            return reply;
        }
    }
}

SmtpReinjector::Reply SmtpReinjector::command(const std::string& line)
{
    out_ += line;
    out_ += "\r\n";
    flush();
    return readReply();
}

SmtpResult SmtpReinjector::connect()
{
    SmtpResult ok;
    ok.kind = Kind::Accepted;
    if (socket_)
        return ok;
    sizeLimit_ = 0;
    pipelining_ = false;
    xclientOffered_ = false;
    sessionOrigin_.clear();
    try {
        socket_ = std::make_unique<Poco::Net::StreamSocket>();
        socket_->connect(
            Poco::Net::SocketAddress(target_.host, static_cast<Poco::UInt16>(target_.port)),
            timespan(target_.timeout));
        socket_->setNoDelay(true);
        socket_->setReceiveTimeout(timespan(target_.timeout));
        socket_->setSendTimeout(timespan(target_.timeout));
        const Reply greeting = readReply();
        if (greeting.code / 100 != 2) {
            drop();
            return result(Kind::Unreachable, greeting.code, greeting.text, "greeting");
        }
    } catch (const Poco::Exception& e) {
        drop();
        return result(Kind::Unreachable, 0, e.displayText(), "connect");
    }
    const SmtpResult e = ehlo();
    if (e.kind == Kind::Accepted)
        xclientOffered_ = xclientSeen_;
    return e;
}

SmtpResult SmtpReinjector::ehlo()
{
    SmtpResult ok;
    ok.kind = Kind::Accepted;
    sizeLimit_ = 0;
    pipelining_ = false;
    xclientSeen_ = false;
    try {
        const Reply ehlo = command("EHLO " + target_.helo);
        if (ehlo.code / 100 != 2) {
            drop();
            return result(Kind::Unreachable, ehlo.code, ehlo.text, "EHLO " + target_.helo);
        }
        std::istringstream lines(ehlo.text);
        std::string line;
        while (std::getline(lines, line)) {
            const std::string keyword =
                Poco::toUpper(trim(line.size() > 4 ? line.substr(4) : std::string()));
            if (keyword.rfind("SIZE ", 0) == 0) {
                Poco::Int64 n = 0;
                if (Poco::NumberParser::tryParse64(trim(keyword.substr(5)), n) && n > 0)
                    sizeLimit_ = n;
            } else if (keyword == "PIPELINING") {
                pipelining_ = true;
            } else if (keyword == "XCLIENT" || keyword.rfind("XCLIENT ", 0) == 0) {
                xclientSeen_ = true;
            }
        }
    } catch (const Poco::Exception& e) {
        drop();
        return result(Kind::Unreachable, 0, e.displayText(), "EHLO " + target_.helo);
    }
    return ok;
}

SmtpResult SmtpReinjector::setOrigin(const SmtpMessage& m)
{
    SmtpResult ok;
    ok.kind = Kind::Accepted;
    const std::string want = m.origin ? xclientCommand(*m.origin) : std::string();
    if (want == sessionOrigin_)
        return ok;
    if (!sessionOrigin_.empty()) {
        // XCLIENT cannot give the session its own client back, and Postfix
        // authorizes the next XCLIENT against the client the last one named
        // (smtpd_authorized_xclient_hosts): a new session for a new origin.
        close();
        const SmtpResult c = connect();
        if (c.kind != Kind::Accepted || want.empty() || !xclientOffered_)
            return c;
    }
    // XCLIENT resets the session: the MTA greets again and wants EHLO again.
    try {
        const Reply r = command(want);
        if (r.code != 220) {
            // Refused (Postfix: 501 for an IPv6 ADDR with inet_protocols=ipv4,
            // 550 without authorization): the session is as it was.
            const Kind k = kindOf(r.code);
            if ((k == Kind::Temporary || k == Kind::Permanent) && r.code != 421)
                return result(k, r.code, r.text, "XCLIENT");
            drop();
            return result(Kind::Unreachable, r.code, r.text, "XCLIENT");
        }
    } catch (const Poco::Exception& e) {
        drop();
        return result(Kind::Unreachable, 0, e.displayText(), "XCLIENT");
    }
    const SmtpResult e = ehlo();
    if (e.kind == Kind::Accepted)
        sessionOrigin_ = want;
    return e;
}

std::string xclientCommand(const ReceivedOrigin& origin)
{
    return "XCLIENT ADDR=" + xtext((origin.ipv6 ? "IPV6:" : "") + origin.address) +
           " NAME=" + xtext(origin.name.empty() ? "[UNAVAILABLE]" : origin.name);
}

std::string SmtpReinjector::mailCommand(const SmtpMessage& m) const
{
    std::string mail = "MAIL FROM:<" + m.sender + ">";
    if (sizeLimit_ > 0 && m.size > 0)
        mail += " SIZE=" + std::to_string(m.size);
    return mail;
}

void SmtpReinjector::writeBody(const SmtpMessage& m)
{
    DotStuffer stuffer;
    if (!chunk_)
        chunk_ = std::make_unique<char[]>(kWriteChunk); // once per reinjector, not per message
    for (;;) {
        const std::size_t n = m.body(chunk_.get(), kWriteChunk);
        if (n == 0)
            break;
        stuffer.feed(chunk_.get(), n, out_);
        if (out_.size() >= kWriteChunk)
            flush();
    }
    stuffer.finish(out_); // sent with the next envelope, or by the final flush
}

std::vector<SmtpResult>
SmtpReinjector::deliverMany(const std::vector<SmtpMessage>& messages,
                            const std::function<void(std::size_t, const SmtpResult&)>& onResult,
                            const std::function<bool()>& stopBefore)
{
    std::vector<SmtpResult> results;
    std::string xclientRefused; // for the next result: its message went without its origin
    auto push = [&](const SmtpResult& r) {
        results.push_back(r);
        results.back().xclientRefused.swap(xclientRefused);
        xclientRefused.clear();
        if (onResult) {
            try {
                onResult(results.size() - 1, r);
            } catch (...) {
                drop(); // whatever is in flight: the MTA drops an unfinished message
                throw;
            }
        }
    };
    std::size_t pending = npos; // a message whose final dot is written, its reply unread
    bool lastRefused = false;   // the last end of DATA was refused
    std::vector<SmtpResult::Recipient> pendingRcpts; // perRecipient: the pending one's RCPTs

    // endOfData - the reply to the pending message's dot.
    auto endOfData = [&]() {
        SmtpResult fin;
        try {
            const Reply r = readReply();
            fin = result(kindOf(r.code), r.code, r.text, "end of DATA");
            if (r.code == 0 || r.code == 354) {
                fin.kind = Kind::Uncertain;
                drop();
            }
            fin.queueId = parseQueueId(r.text);
            fin.recipients = std::move(pendingRcpts);
        } catch (const Poco::Exception& e) {
            drop();
            fin = result(Kind::Uncertain, 0, e.displayText(), "end of DATA");
        }
        lastRefused = fin.kind == Kind::Temporary || fin.kind == Kind::Permanent;
        push(fin);
        pending = npos;
    };

    for (std::size_t i = 0; i < messages.size(); ++i) {
        if (i > 0 && stopBefore && stopBefore())
            break; // the pending message, if any, is finished below
        const SmtpMessage& m = messages[i];
        if (!socket_) {
            const SmtpResult c = connect();
            if (c.kind != Kind::Accepted) {
                push(c);
                return results;
            }
        }
        // Session setup: this message's origin (XCLIENT). XCLIENT is allowed
        // only between transactions, so the message on its way is finished first.
        if (target_.xclient && xclientOffered_ &&
            (m.origin ? xclientCommand(*m.origin) : std::string()) != sessionOrigin_) {
            if (pending != npos) {
                try {
                    flush();
                } catch (const Poco::Exception& e) {
                    drop();
                    push(result(Kind::Uncertain, 0, e.displayText(), "end of DATA"));
                    return results;
                }
                endOfData();
                if (!socket_)
                    return results;
            }
            const SmtpResult o = setOrigin(m);
            if (o.kind == Kind::Temporary || o.kind == Kind::Permanent) {
                xclientRefused = o.describe(relay()); // this one goes from our own address
            } else if (o.kind != Kind::Accepted) {
                push(o);
                return results;
            }
        }
        std::vector<std::string> commands{mailCommand(m)};
        for (const auto& rcpt : m.recipients)
            commands.push_back("RCPT TO:<" + rcpt + ">");
        commands.emplace_back("DATA");

        std::vector<Reply> replies;
        try {
            // Sequentially: stop at the first refusal. Pipelined: the group goes
            // out with the previous message's end, then every reply is read.
            // perRecipient: a refused RCPT does not stop the envelope, and
            // without an accepted recipient DATA is not sent.
            auto sequential = [&] {
                replies.clear();
                bool anyRcpt = false;
                for (std::size_t k = 0; k < commands.size(); ++k) {
                    const bool isData = k + 1 == commands.size();
                    if (isData && m.perRecipient && !anyRcpt)
                        break;
                    replies.push_back(command(commands[k]));
                    const bool ok =
                        isData ? replies.back().code == 354 : replies.back().code / 100 == 2;
                    if (ok && k > 0 && !isData)
                        anyRcpt = true;
                    if (!ok && !(m.perRecipient && k > 0 && !isData))
                        break;
                }
            };
            if (pipelining_) {
                for (const auto& c : commands)
                    out_ += c + "\r\n";
                flush();
                if (pending != npos) {
                    endOfData();
                    if (!socket_)
                        return results; // the session broke: this one was not attempted
                }
                for (std::size_t k = 0; k < commands.size(); ++k)
                    replies.push_back(readReply());
                // An MTA that keeps a refused transaction open (Postfix after
                // smtpd_end_of_data_restrictions) answers the next MAIL with
                // 503 and may then take our RCPT and DATA for that old
                // transaction: with DATA open only hanging up is safe. Then
                // the envelope again, one command at a time.
                if (lastRefused && replies.front().code == 503) {
                    if (replies.back().code == 354) {
                        drop();
                        const SmtpResult c = connect();
                        if (c.kind != Kind::Accepted) {
                            push(c);
                            return results;
                        }
                    } else if (command("RSET").code / 100 != 2) {
                        throw Poco::ProtocolException("RSET refused");
                    }
                    sequential();
                }
            } else {
                if (pending != npos) {
                    flush();
                    endOfData();
                    if (!socket_)
                        return results;
                }
                sequential();
                if (lastRefused && replies.front().code == 503) {
                    if (command("RSET").code / 100 != 2)
                        throw Poco::ProtocolException("RSET refused");
                    sequential();
                }
            }
        } catch (const Poco::Exception& e) {
            if (pending != npos) { // the previous dot may or may not have arrived
                drop();
                push(result(Kind::Uncertain, 0, e.displayText(), "end of DATA"));
                return results;
            }
            drop();
            push(result(Kind::Unreachable, 0, e.displayText(), commandName(commands[0])));
            return results;
        }
        lastRefused = false;

        // The first refusal, if any, is this message's result. perRecipient: a
        // 4xx or 5xx to one RCPT refuses that recipient only, unless all are.
        std::vector<SmtpResult::Recipient> rcpts;
        if (m.perRecipient)
            for (std::size_t k = 1; k + 1 < commands.size() && k < replies.size(); ++k)
                rcpts.push_back({m.recipients[k - 1], kindOf(replies[k].code), replies[k].code,
                                 flatten(replies[k].text)});
        auto recipientOnly = [&](std::size_t k) {
            const int c = replies[k].code / 100;
            return m.perRecipient && k > 0 && k + 1 < commands.size() && (c == 4 || c == 5);
        };
        std::size_t acceptedRcpts = 0;
        bool refused = false;
        for (std::size_t k = 0; k < replies.size() && !refused; ++k) {
            const bool isData = k + 1 == commands.size();
            const int code = replies[k].code;
            if (isData ? code == 354 : code / 100 == 2) {
                acceptedRcpts += k > 0 && !isData ? 1 : 0;
                continue;
            }
            if (recipientOnly(k) || (m.perRecipient && isData && acceptedRcpts == 0))
                continue; // that recipient only; DATA without one is judged below
            refused = true;
            SmtpResult r = result(kindOf(code), code, replies[k].text, commandName(commands[k]));
            if (r.kind == Kind::Accepted)
                r.kind = Kind::Unreachable; // a 2xx to DATA, a 3xx elsewhere: a broken server
            r.recipients = rcpts;
            push(r);
        }
        if (!refused && m.perRecipient && acceptedRcpts == 0) {
            // Every recipient refused: the first refusal speaks for the message,
            // temporary when any of them was.
            for (std::size_t k = 1; k < replies.size() && !refused; ++k) {
                if (!recipientOnly(k))
                    continue;
                refused = true;
                SmtpResult r = result(kindOf(replies[k].code), replies[k].code, replies[k].text,
                                      commandName(commands[k]));
                for (const auto& x : rcpts)
                    if (x.kind == Kind::Temporary)
                        r.kind = Kind::Temporary;
                r.recipients = rcpts;
                push(r);
            }
            if (!refused) { // no recipient at all: nothing may be handed over
                refused = true;
                push(result(Kind::Permanent, 0, "no recipient to hand the message to", "RCPT TO"));
            }
        }
        if (refused) {
            const bool dataOpen = replies.size() == commands.size() && replies.back().code == 354;
            if (dataOpen || results.back().kind == Kind::Unreachable) {
                // A recipient refused but DATA open: hang up rather than hand
                // the MTA a partial delivery (it drops an unfinished message).
                drop();
            } else {
                try {
                    if (command("RSET").code / 100 != 2)
                        drop();
                } catch (const Poco::Exception&) {
                    drop();
                }
            }
            if (results.back().kind == Kind::Unreachable)
                return results;
            continue;
        }

        try {
            writeBody(m);
        } catch (const Poco::Exception& e) {
            // Without the final dot the MTA has nothing: safe to retry.
            drop();
            push(result(Kind::Unreachable, 0, e.displayText(), "DATA (message text)"));
            return results;
        } catch (const std::exception& e) {
            drop();
            push(result(Kind::Unreachable, 0,
                                     std::string("cannot read the spooled message: ") + e.what(),
                                     "DATA (message text)"));
            return results;
        }
        pending = i;
        pendingRcpts = std::move(rcpts);
    }
    if (pending != npos) {
        try {
            flush();
        } catch (const Poco::Exception& e) {
            drop();
            push(result(Kind::Uncertain, 0, e.displayText(), "end of DATA"));
            return results;
        }
        endOfData();
    }
    return results;
}

SmtpResult SmtpReinjector::deliver(const std::string& sender,
                                   const std::vector<std::string>& recipients,
                                   std::istream& message, std::int64_t size)
{
    SmtpMessage m;
    m.sender = sender;
    m.recipients = recipients;
    m.size = size;
    m.body = [&message](char* buffer, std::size_t capacity) -> std::size_t {
        message.read(buffer, static_cast<std::streamsize>(capacity));
        if (message.bad())
            throw Poco::IOException("cannot read the spooled message");
        return static_cast<std::size_t>(message.gcount());
    };
    auto results = deliverMany({m});
    return results.front();
}

SmtpResult SmtpReinjector::probe(const std::string& sender,
                                 const std::vector<std::string>& recipients)
{
    SmtpResult c = connect();
    if (c.kind != Kind::Accepted)
        return c;
    std::vector<std::string> commands{"MAIL FROM:<" + sender + ">"};
    for (const auto& rcpt : recipients)
        commands.push_back("RCPT TO:<" + rcpt + ">");
    SmtpResult r = c;
    try {
        for (const auto& line : commands) {
            const Reply reply = command(line);
            r = result(kindOf(reply.code), reply.code, reply.text, line);
            if (reply.code / 100 != 2)
                break;
        }
        if (command("RSET").code / 100 != 2)
            drop();
    } catch (const Poco::Exception& e) {
        drop();
        return result(Kind::Unreachable, 0, e.displayText(), commands.front());
    }
    return r;
}

void SmtpReinjector::close()
{
    if (!socket_)
        return;
    try {
        out_.clear();
        command("QUIT");
    } catch (...) {
    }
    drop();
}

} // namespace popgate
