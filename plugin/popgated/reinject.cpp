// reinject.cpp - SMTP to the local MTA (see reinject.h).
#include "plugin/popgated/reinject.h"

#include "core/text.h"

#include <Poco/Exception.h>
#include <Poco/Net/DialogSocket.h>
#include <Poco/Net/MailStream.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/SocketStream.h>
#include <Poco/NumberParser.h>
#include <Poco/StreamCopier.h>
#include <Poco/String.h>
#include <regex>
#include <sstream>

namespace popgate
{

namespace
{

using Kind = SmtpResult::Kind;

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

SmtpReinjector::SmtpReinjector(SmtpTarget target) : target_(std::move(target)) {}

SmtpReinjector::~SmtpReinjector()
{
    close();
}

std::string SmtpReinjector::relay() const
{
    return target_.host + "[" + std::to_string(target_.port) + "]";
}

SmtpResult SmtpReinjector::connect()
{
    sizeLimit_ = 0;
    pipelining_ = false;
    try {
        Poco::Net::StreamSocket socket;
        socket.connect(
            Poco::Net::SocketAddress(target_.host, static_cast<Poco::UInt16>(target_.port)),
            Poco::Timespan(
                std::chrono::duration_cast<std::chrono::microseconds>(target_.timeout).count()));
        socket.setNoDelay(true);
        session_ = std::make_unique<Session>(socket);
        session_->setTimeout(Poco::Timespan(
            std::chrono::duration_cast<std::chrono::microseconds>(target_.timeout).count()));
        std::string greeting;
        const int code = session_->socket().receiveStatusMessage(greeting);
        if (code / 100 != 2) {
            session_.reset();
            return result(code / 100 == 5 ? Kind::Unreachable : Kind::Unreachable, code, greeting,
                          "greeting");
        }
        std::string ehlo;
        const int ehloCode = session_->sendCommand("EHLO", target_.helo, ehlo);
        if (ehloCode / 100 != 2) {
            session_.reset();
            return result(Kind::Unreachable, ehloCode, ehlo, "EHLO " + target_.helo);
        }
        std::istringstream lines(ehlo);
        std::string line;
        while (std::getline(lines, line)) {
            const std::string upper =
                Poco::toUpper(line.size() > 4 ? line.substr(4) : std::string());
            if (upper.rfind("SIZE", 0) == 0 && upper.size() > 5) {
                Poco::Int64 n = 0;
                if (Poco::NumberParser::tryParse64(trim(upper.substr(5)), n))
                    sizeLimit_ = n;
            } else if (trim(upper) == "PIPELINING") {
                pipelining_ = true;
            }
        }
    } catch (const Poco::Exception& e) {
        session_.reset();
        return result(Kind::Unreachable, 0, e.displayText(), "connect");
    }
    SmtpResult ok;
    ok.kind = Kind::Accepted;
    return ok;
}

SmtpResult SmtpReinjector::command(const std::string& line, const std::string& what)
{
    try {
        std::string reply;
        const int code = session_->sendCommand(line, reply);
        return result(kindOf(code), code, reply, what);
    } catch (const Poco::Exception& e) {
        session_.reset();
        return result(Kind::Unreachable, 0, e.displayText(), what);
    }
}

void SmtpReinjector::reset()
{
    if (!session_)
        return;
    std::string reply;
    try {
        if (session_->sendCommand("RSET", reply) / 100 != 2)
            session_.reset();
    } catch (const Poco::Exception&) {
        session_.reset();
    }
}

SmtpResult SmtpReinjector::envelope(const std::string& sender,
                                    const std::vector<std::string>& recipients, std::int64_t size)
{
    if (!session_) {
        SmtpResult c = connect();
        if (c.kind != Kind::Accepted)
            return c;
    }
    std::string mail = "MAIL FROM:<" + sender + ">";
    if (sizeLimit_ > 0 && size > 0)
        mail += " SIZE=" + std::to_string(size);
    SmtpResult r = command(mail, "MAIL FROM:<" + sender + ">");
    if (r.kind != Kind::Accepted) {
        reset();
        return r;
    }
    for (const auto& rcpt : recipients) {
        r = command("RCPT TO:<" + rcpt + ">", "RCPT TO:<" + rcpt + ">");
        if (r.kind != Kind::Accepted) {
            reset();
            return r;
        }
    }
    return r;
}

SmtpResult SmtpReinjector::deliver(const std::string& sender,
                                   const std::vector<std::string>& recipients,
                                   std::istream& message, std::int64_t size)
{
    SmtpResult r = envelope(sender, recipients, size);
    if (r.kind != Kind::Accepted)
        return r;
    r = command("DATA", "DATA");
    if (r.code != 354) {
        if (r.kind == Kind::Accepted)
            r.kind = Kind::Unreachable; // a 2xx to DATA is a broken server
        reset();
        return r;
    }
    try {
        Poco::Net::SocketOutputStream socketOut(session_->socket());
        Poco::Net::MailOutputStream mailOut(socketOut);
        Poco::StreamCopier::copyStream(message, mailOut, 65536);
        if (message.bad())
            throw Poco::IOException("cannot read the spooled message");
        mailOut.close();
        socketOut.flush();
    } catch (const Poco::Exception& e) {
        session_.reset();
        // Without the final dot the MTA has nothing: safe to retry.
        return result(Kind::Unreachable, 0, e.displayText(), "DATA (message text)");
    }
    try {
        std::string reply;
        const int code = session_->socket().receiveStatusMessage(reply);
        SmtpResult fin = result(kindOf(code), code, reply, "end of DATA");
        if (code == 0)
            fin.kind = Kind::Uncertain;
        fin.queueId = parseQueueId(reply);
        // A refused message leaves Postfix's transaction open: without RSET
        // the next MAIL FROM would get "503 nested MAIL command".
        if (fin.kind != Kind::Accepted && fin.kind != Kind::Uncertain)
            reset();
        return fin;
    } catch (const Poco::Exception& e) {
        session_.reset();
        return result(Kind::Uncertain, 0, e.displayText(), "end of DATA");
    }
}

SmtpResult SmtpReinjector::probe(const std::string& sender,
                                 const std::vector<std::string>& recipients)
{
    SmtpResult r = envelope(sender, recipients, 0);
    if (r.kind == Kind::Accepted)
        reset();
    return r;
}

void SmtpReinjector::close()
{
    if (!session_)
        return;
    try {
        session_->close();
    } catch (...) {
    }
    session_.reset();
}

} // namespace popgate
