// oauth_grants.cpp - PKCE, state and the loopback redirect (see oauth_grants.h).
// SECURITY: the redirect listens on 127.0.0.1 only, takes one answer whose
// state matches, and never echoes what it was sent.
#include "popgatectl/oauth_grants.h"

#include "core/errors.h"
#include "core/text.h"
#include "plugin/net/oauth_client.h"

#include <Poco/Base64Encoder.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/RandomStream.h>
#include <Poco/SHA2Engine.h>
#include <Poco/URI.h>
#include <condition_variable>
#include <mutex>
#include <sstream>

namespace popgate
{

namespace
{

std::string base64Url(const std::string& bytes)
{
    std::ostringstream out;
    Poco::Base64Encoder enc(out, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
    enc.rdbuf()->setLineLength(0);
    enc << bytes;
    enc.close();
    return out.str();
}

std::string randomBytes(std::size_t n)
{
    std::string bytes(n, '\0');
    Poco::RandomInputStream().read(&bytes[0], static_cast<std::streamsize>(n));
    return bytes;
}

} // namespace

Pkce makePkce()
{
    Pkce p;
    p.verifier = base64Url(randomBytes(32));
    Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
    sha.update(p.verifier);
    const auto& digest = sha.digest();
    p.challenge = base64Url(std::string(digest.begin(), digest.end()));
    return p;
}

std::string randomState()
{
    return base64Url(randomBytes(16));
}

// --- loopback redirect ------------------------------------------------------

struct LoopbackRedirect::Impl {
    std::mutex mutex;
    std::condition_variable arrived;
    std::string expectedState;
    bool done = false;
    std::string code;
    std::string error;
    std::unique_ptr<Poco::Net::HTTPServer> server;
    int port = 0;
};

namespace
{

class RedirectHandler : public Poco::Net::HTTPRequestHandler
{
public:
    explicit RedirectHandler(LoopbackRedirect::Impl& impl) : impl_(impl) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override
    {
        std::string code, state, error, description;
        try {
            for (const auto& [name, value] : Poco::URI(request.getURI()).getQueryParameters()) {
                if (name == "code")
                    code = value;
                else if (name == "state")
                    state = value;
                else if (name == "error")
                    error = value;
                else if (name == "error_description")
                    description = value;
            }
        } catch (const Poco::Exception&) {
        }
        std::string page;
        {
            std::lock_guard<std::mutex> lock(impl_.mutex);
            if ((code.empty() && error.empty()) || impl_.done) {
                response.setStatus(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
                page = "popgate: nothing to do here.\n";
            } else if (state != impl_.expectedState) {
                response.setStatus(Poco::Net::HTTPResponse::HTTP_BAD_REQUEST);
                page =
                    "popgate: this answer does not belong to the authorization popgate started.\n";
            } else {
                impl_.done = true;
                impl_.code = code;
                if (!error.empty())
                    impl_.error =
                        flatten(error).substr(0, 80) +
                        (description.empty() ? ""
                                             : " (" + flatten(description).substr(0, 300) + ")");
                page = error.empty()
                           ? "popgate: authorization received; you can close this window.\n"
                           : "popgate: the authorization was refused; see popgatectl.\n";
                impl_.arrived.notify_all();
            }
        }
        response.setContentType("text/plain; charset=utf-8");
        response.sendBuffer(page.data(), page.size());
    }

private:
    LoopbackRedirect::Impl& impl_;
};

class RedirectFactory : public Poco::Net::HTTPRequestHandlerFactory
{
public:
    explicit RedirectFactory(LoopbackRedirect::Impl& impl) : impl_(impl) {}
    Poco::Net::HTTPRequestHandler*
    createRequestHandler(const Poco::Net::HTTPServerRequest&) override
    {
        return new RedirectHandler(impl_);
    }

private:
    LoopbackRedirect::Impl& impl_;
};

} // namespace

LoopbackRedirect::LoopbackRedirect() : impl_(std::make_unique<Impl>())
{
    try {
        Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
        impl_->port = socket.address().port();
        auto* params = new Poco::Net::HTTPServerParams;
        params->setMaxThreads(2);
        params->setKeepAlive(false);
        impl_->server =
            std::make_unique<Poco::Net::HTTPServer>(new RedirectFactory(*impl_), socket, params);
        impl_->server->start();
    } catch (const Poco::Exception& e) {
        throw OperationError("cannot listen for the OAuth redirect on 127.0.0.1: " +
                             flatten(e.displayText()));
    }
}

LoopbackRedirect::~LoopbackRedirect()
{
    try {
        impl_->server->stopAll(true);
    } catch (...) {
    }
}

std::string LoopbackRedirect::redirectUri() const
{
    return "http://127.0.0.1:" + std::to_string(impl_->port) + "/";
}

std::string LoopbackRedirect::awaitCode(const std::string& state, std::chrono::seconds timeout)
{
    std::unique_lock<std::mutex> lock(impl_->mutex);
    impl_->expectedState = state;
    if (!impl_->arrived.wait_for(lock, timeout, [&] { return impl_->done; }))
        throw OAuthError(OAuthErrorKind::Unavailable, "authorization",
                         "authorization failed: no answer reached " + redirectUri() + " within " +
                             std::to_string(timeout.count()) + " s");
    if (!impl_->error.empty())
        throw OAuthError(OAuthErrorKind::Refused, "authorization",
                         "authorization failed: " + impl_->error);
    return impl_->code;
}

} // namespace popgate
