// milter_protocol_test.cpp - what popgate-milter negotiates with the MTA, read off
// the wire: the real binary on a loopback port, one SMFIC_OPTNEG written by hand
// (the milter protocol, version 6), its answer decoded.
#define BOOST_TEST_MODULE milter_protocol
#include "tests/popgate-milter/milter_fixture.h"

#include <boost/test/unit_test.hpp>

#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

using namespace popgate;
using namespace popgate::test;

namespace
{

void put32(std::string& out, std::uint32_t v)
{
    const std::uint32_t n = htonl(v);
    out.append(reinterpret_cast<const char*>(&n), 4);
}

std::uint32_t get32(const std::string& in, std::size_t at)
{
    std::uint32_t n = 0;
    in.copy(reinterpret_cast<char*>(&n), 4, at);
    return ntohl(n);
}

bool readAll(int fd, char* p, std::size_t n)
{
    while (n > 0) {
        const ssize_t r = ::read(fd, p, n);
        if (r <= 0)
            return false;
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

/// negotiate - offer every action and protocol step, as Postfix does; the milter's
/// answer: {actions, protocol steps it asks the MTA to skip or not to wait for}.
std::pair<std::uint32_t, std::uint32_t> negotiate(int port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_TEST_REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    BOOST_TEST_REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    std::string body(1, SMFIC_OPTNEG);
    put32(body, 6);          // protocol version
    put32(body, 0x1ff);      // every action
    put32(body, 0x1fffff);   // every protocol step may be skipped
    std::string packet;
    put32(packet, static_cast<std::uint32_t>(body.size()));
    packet += body;
    BOOST_TEST_REQUIRE(::write(fd, packet.data(), packet.size()) ==
                       static_cast<ssize_t>(packet.size()));
    char head[5];
    BOOST_TEST_REQUIRE(readAll(fd, head, sizeof head));
    const std::uint32_t len = get32(std::string(head, 4), 0);
    BOOST_TEST_REQUIRE(head[4] == SMFIC_OPTNEG);
    BOOST_TEST_REQUIRE(len >= 13);
    std::string rest(len - 1, '\0');
    BOOST_TEST_REQUIRE(readAll(fd, rest.data(), rest.size()));
    ::close(fd);
    return {get32(rest, 4), get32(rest, 8)};
}

} // namespace

// Every MTA write before the headers must be one the milter answers. With
// SMFIP_NODATA the DATA macros are the MTA's last write and nothing answers them:
// on a TCP socket the first header then sits in the MTA's Nagle buffer until our
// delayed ACK (about 40 ms), and Postfix moved 21 messages/s through the milter
// instead of 360 (bench/README.md, "The milter on a TCP socket").
BOOST_AUTO_TEST_CASE(data_is_answered_so_the_headers_never_wait_for_a_delayed_ack)
{
    MilterWorld world;
    MilterProcess milter(world);
    const auto [actions, protocol] = negotiate(milter.port());
    BOOST_TEST((protocol & SMFIP_NODATA) == 0u, "protocol steps 0x" << std::hex << protocol);
    BOOST_TEST((protocol & SMFIP_NR_DATA) == 0u, "protocol steps 0x" << std::hex << protocol);
    // what the milter does at the end of the message: add/remove headers, quarantine
    BOOST_TEST((actions & SMFIF_ADDHDRS) != 0u);
    BOOST_TEST((actions & SMFIF_CHGHDRS) != 0u);
    BOOST_TEST((actions & SMFIF_QUARANTINE) != 0u);
    // the headers are judged, so the MTA must send them
    BOOST_TEST((protocol & SMFIP_NOHDRS) == 0u);
}
