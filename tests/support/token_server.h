// token_server.h - a small OAuth 2.0 authorization server on 127.0.0.1 for the
// OAuth tests (Poco HTTPServer, port 0): POST /token (refresh_token,
// client_credentials, authorization_code with PKCE S256, device_code), POST
// /device (RFC 8628) and POST /introspect (RFC 7662, what Dovecot's oauth2
// passdb asks). Tokens are random; the test revokes, expires and counts them.
#pragma once

#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Object.h>
#include <Poco/Net/HTMLForm.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/RandomStream.h>
#include <Poco/SHA2Engine.h>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>

namespace popgate::test
{

class TokenServer
{
public:
    struct Access {
        std::string user;
        std::time_t expiresAt = 0;
    };

    std::string clientId = "popgate-test-client";
    std::string clientSecret = "cs-Zq8-unique-client-secret";
    std::string appUser;        ///< whom a client_credentials token is for
    long accessLifetime = 3600; ///< expires_in of new access tokens
    bool rotateRefreshTokens = false;

    TokenServer()
        : socket_(Poco::Net::SocketAddress("127.0.0.1", 0)),
          server_(new Factory(*this), socket_, makeParams())
    {
        server_.start();
    }
    ~TokenServer() { server_.stopAll(true); }

    int port() const { return socket_.address().port(); }
    std::string url(const std::string& path) const
    {
        return "http://127.0.0.1:" + std::to_string(port()) + path;
    }

    /// issueRefreshToken - a refresh token for user, as a past authorization left it.
    std::string issueRefreshToken(const std::string& user)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        std::string t = "rt-" + random();
        refresh_[t] = user;
        return t;
    }
    /// issueAccessToken - an access token for user valid for lifetime seconds (may be negative).
    std::string issueAccessToken(const std::string& user, long lifetime)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        std::string t = "at-" + random();
        access_[t] = {user, std::time(nullptr) + lifetime};
        return t;
    }
    void revokeRefreshToken(const std::string& token)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        refresh_.erase(token);
        revoked_.insert(token);
    }
    /// approveCode - the authorization server's side of a browser login: code
    /// is valid once, for user, with the PKCE challenge the client sent.
    void approveCode(const std::string& code, const std::string& user, const std::string& challenge)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        codes_[code] = {user, challenge};
    }
    /// deviceUser - who approves device codes; pendingPolls - answers of
    /// authorization_pending before the approval.
    std::string deviceUser;
    int pendingPolls = 1;

    int grants(const std::string& type)
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return grantCount_[type];
    }
    int introspections()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return introspections_;
    }
    /// lastAccessToken - the newest access token issued (to check what the client used).
    std::string lastAccessToken()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return lastAccess_;
    }

private:
    static Poco::Net::HTTPServerParams* makeParams()
    {
        auto* p = new Poco::Net::HTTPServerParams;
        p->setMaxThreads(4);
        p->setKeepAlive(false);
        return p;
    }

    static std::string base64Url(const std::string& bytes)
    {
        std::ostringstream out;
        Poco::Base64Encoder enc(out, Poco::BASE64_URL_ENCODING | Poco::BASE64_NO_PADDING);
        enc.rdbuf()->setLineLength(0);
        enc << bytes;
        enc.close();
        return out.str();
    }
    static std::string random()
    {
        std::string bytes(18, '\0');
        Poco::RandomInputStream().read(&bytes[0], 18);
        return base64Url(bytes);
    }

    // issue - an access (and refresh) token answer; caller holds the mutex.
    Poco::JSON::Object::Ptr issue(const std::string& user, bool withRefresh,
                                  const std::string& type)
    {
        ++grantCount_[type];
        Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
        lastAccess_ = "at-" + random();
        access_[lastAccess_] = {user, std::time(nullptr) + accessLifetime};
        o->set("access_token", lastAccess_);
        o->set("token_type", "Bearer");
        o->set("expires_in", accessLifetime);
        if (withRefresh) {
            std::string rt = "rt-" + random();
            refresh_[rt] = user;
            o->set("refresh_token", rt);
        }
        return o;
    }

    static Poco::JSON::Object::Ptr error(const std::string& code, const std::string& description)
    {
        Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
        o->set("error", code);
        if (!description.empty())
            o->set("error_description", description);
        return o;
    }

    // answer - status and JSON body for one request; caller holds the mutex.
    Poco::JSON::Object::Ptr handle(const std::string& path, const Poco::Net::HTMLForm& form,
                                   int& status)
    {
        status = 200;
        if (path == "/introspect") {
            ++introspections_;
            Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
            auto it = access_.find(form.get("token", ""));
            const bool active = it != access_.end() && it->second.expiresAt > std::time(nullptr);
            o->set("active", active ? "true" : "false");
            if (active)
                o->set("username", it->second.user);
            return o;
        }
        if (form.get("client_id", "") != clientId ||
            (!clientSecret.empty() && form.has("client_secret") &&
             form.get("client_secret") != clientSecret)) {
            status = 401;
            return error("invalid_client", "Unknown client or wrong secret");
        }
        if (path == "/device") {
            Poco::JSON::Object::Ptr o = new Poco::JSON::Object;
            const std::string code = "dc-" + random();
            devices_[code] = pendingPolls;
            o->set("device_code", code);
            o->set("user_code", "WDJB-MJHT");
            o->set("verification_uri", url("/activate"));
            o->set("expires_in", 60);
            o->set("interval", 1);
            return o;
        }
        if (path != "/token") {
            status = 404;
            return error("not_found", "");
        }
        const std::string grant = form.get("grant_type", "");
        if (grant == "refresh_token") {
            const std::string rt = form.get("refresh_token", "");
            if (revoked_.count(rt)) {
                status = 400;
                return error("invalid_grant", "Token has been revoked");
            }
            auto it = refresh_.find(rt);
            if (it == refresh_.end()) {
                status = 400;
                return error("invalid_grant", "Unknown refresh token");
            }
            const std::string user = it->second;
            if (rotateRefreshTokens)
                refresh_.erase(it);
            return issue(user, rotateRefreshTokens, grant);
        }
        if (grant == "client_credentials") {
            if (form.get("client_secret", "") != clientSecret) {
                status = 401;
                return error("invalid_client", "client_credentials needs the client secret");
            }
            return issue(appUser, false, grant);
        }
        if (grant == "authorization_code") {
            auto it = codes_.find(form.get("code", ""));
            if (it == codes_.end()) {
                status = 400;
                return error("invalid_grant", "Unknown or used code");
            }
            Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
            sha.update(form.get("code_verifier", ""));
            const auto& d = sha.digest();
            if (base64Url(std::string(d.begin(), d.end())) != it->second.second) {
                status = 400;
                return error("invalid_grant", "PKCE verification failed");
            }
            const std::string user = it->second.first;
            codes_.erase(it);
            return issue(user, true, grant);
        }
        if (grant == "urn:ietf:params:oauth:grant-type:device_code") {
            auto it = devices_.find(form.get("device_code", ""));
            if (it == devices_.end()) {
                status = 400;
                return error("expired_token", "");
            }
            if (it->second-- > 0) {
                status = 400;
                return error("authorization_pending", "");
            }
            devices_.erase(it);
            return issue(deviceUser, true, "device_code");
        }
        status = 400;
        return error("unsupported_grant_type", "");
    }

    class Handler : public Poco::Net::HTTPRequestHandler
    {
    public:
        explicit Handler(TokenServer& server) : server_(server) {}
        void handleRequest(Poco::Net::HTTPServerRequest& request,
                           Poco::Net::HTTPServerResponse& response) override
        {
            Poco::Net::HTMLForm form(request, request.stream());
            int status = 200;
            Poco::JSON::Object::Ptr body;
            {
                std::lock_guard<std::mutex> lock(server_.mutex_);
                body = server_.handle(request.getURI(), form, status);
            }
            std::ostringstream text;
            body->stringify(text);
            response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
            response.setContentType("application/json");
            const std::string s = text.str();
            response.sendBuffer(s.data(), s.size());
        }

    private:
        TokenServer& server_;
    };

    class Factory : public Poco::Net::HTTPRequestHandlerFactory
    {
    public:
        explicit Factory(TokenServer& server) : server_(server) {}
        Poco::Net::HTTPRequestHandler*
        createRequestHandler(const Poco::Net::HTTPServerRequest&) override
        {
            return new Handler(server_);
        }

    private:
        TokenServer& server_;
    };

    std::mutex mutex_;
    Poco::Net::ServerSocket socket_;
    Poco::Net::HTTPServer server_;
    std::map<std::string, Access> access_;
    std::map<std::string, std::string> refresh_;
    std::set<std::string> revoked_;
    std::map<std::string, std::pair<std::string, std::string>> codes_;
    std::map<std::string, int> devices_;
    std::map<std::string, int> grantCount_;
    int introspections_ = 0;
    std::string lastAccess_;
};

} // namespace popgate::test
