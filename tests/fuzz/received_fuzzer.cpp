// received_fuzzer.cpp - the Received: parsing for XCLIENT (core/received.h):
// receivedField over any header bytes (1 byte picks the field number), then
// parseReceived on what it found and on the whole input, and xtext.
// Invariants: a field has no LF; an origin's address is IPv4 or IPv6 in
// canonical form (inet_pton/inet_ntop give it back unchanged), its name is a
// plain host name; the origin survives a round trip through the canonical
// "from x (NAME [ADDR])" field; xtext writes only '!'..'~' and decodes back.
#include "core/received.h"
#include "tests/fuzz/fuzz_support.h"

#include <arpa/inet.h>
#include <cstdint>
#include <fuzzer/FuzzedDataProvider.h>

using namespace popgate;
using popgate::fuzz::shown;

namespace
{

void checkOrigin(const std::string& value)
{
    const auto o = parseReceived(value);
    if (!o)
        return;
    const std::string where =
        "field " + shown(value) + " address " + shown(o->address) + " name " + shown(o->name);
    FUZZ_CHECK(value.size() <= kMaxReceivedField, where);
    unsigned char raw[16];
    char back[64];
    const int family = o->ipv6 ? AF_INET6 : AF_INET;
    FUZZ_CHECK(inet_pton(family, o->address.c_str(), raw) == 1, where);
    FUZZ_CHECK(inet_ntop(family, raw, back, sizeof back) != nullptr && o->address == back,
               where + " not canonical");
    for (const char c : o->name)
        FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '.',
                   where);
    const std::string canonical = "from x (" + (o->name.empty() ? "unknown" : o->name) + " [" +
                                  (o->ipv6 ? "IPv6:" : "") + o->address + "])";
    const auto again = parseReceived(canonical);
    FUZZ_CHECK(again && again->address == o->address && again->name == o->name &&
                   again->ipv6 == o->ipv6,
               where + " does not survive " + shown(canonical));
}

std::string unXtext(const std::string& s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+' && i + 2 < s.size()) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider in(data, size);
    const int n = in.ConsumeIntegralInRange<int>(0, 8);
    const std::string header = in.ConsumeRemainingBytesAsString();

    const auto field = receivedField(header, n);
    if (field) {
        FUZZ_CHECK(n >= 1, "field number " + std::to_string(n));
        FUZZ_CHECK(field->find('\n') == std::string::npos, "field " + shown(*field));
        checkOrigin(*field);
    }
    checkOrigin(header);

    const std::string x = xtext(header.substr(0, 512));
    for (const char c : x)
        FUZZ_CHECK(c >= '!' && c <= '~' && c != '=', "xtext " + shown(x));
    FUZZ_CHECK(unXtext(x) == header.substr(0, 512),
               "xtext of " + shown(header) + " is " + shown(x));
    return 0;
}
