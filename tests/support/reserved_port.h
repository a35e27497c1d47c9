// reserved_port.h - a loopback TCP port that refuses connections and that no
// other process can take while the object lives: a socket bound to
// 127.0.0.1:0 that never listens. For "connection refused" cases without the
// bind-release-reuse race. Must not depend on popgate's own code.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace popgate::test
{

class ReservedPort
{
public:
    ReservedPort()
    {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            throw std::runtime_error("cannot reserve a loopback port");
        port_ = ntohs(a.sin_port);
    }
    ~ReservedPort()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    ReservedPort(const ReservedPort&) = delete;
    ReservedPort& operator=(const ReservedPort&) = delete;
    int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

} // namespace popgate::test
