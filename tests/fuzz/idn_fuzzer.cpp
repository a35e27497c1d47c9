// idn_fuzzer.cpp - normalizeDomain (core/address.h), the IDN code, on any
// bytes; the first byte says whether '*' labels are allowed. What it returns
// is ASCII, lowercase, without '*' unless allowed (or a domain literal), and a fixed point: the
// result normalizes to itself. An ASCII domain normalizes like its upper case.
#include "core/address.h"
#include "core/errors.h"
#include "tests/fuzz/fuzz_support.h"

#include <cstdint>

using namespace popgate;
using popgate::fuzz::shown;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    const bool wildcard = (data[0] & 1) != 0;
    const std::string domain(reinterpret_cast<const char*>(data) + 1, size - 1);
    std::string key;
    try {
        key = normalizeDomain(domain, wildcard);
    } catch (const InputError&) {
        return 0;
    }
    const std::string where = "domain " + shown(domain) + " -> " + shown(key);
    FUZZ_CHECK(!key.empty(), where);
    for (char c : key) {
        const auto u = static_cast<unsigned char>(c);
        FUZZ_CHECK(u > 0x20 && u < 0x7f && !(c >= 'A' && c <= 'Z'), where);
    }
    // A domain literal ("[192.0.2.1]") keeps its dtext, '*' included.
    if (!wildcard && key.front() != '[')
        FUZZ_CHECK(key.find('*') == std::string::npos, where);

    std::string again;
    try {
        again = normalizeDomain(key, wildcard);
    } catch (const InputError& e) {
        FUZZ_CHECK(false, where + " refused the second time: " + e.what());
    }
    FUZZ_CHECK(again == key, where + " -> " + shown(again));

    bool ascii = true;
    for (char c : domain)
        ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii) {
        std::string upper = domain;
        for (char& c : upper)
            if (c >= 'a' && c <= 'z')
                c = static_cast<char>(c - 'a' + 'A');
        std::string fromUpper;
        try {
            fromUpper = normalizeDomain(upper, wildcard);
        } catch (const InputError& e) {
            FUZZ_CHECK(false, where + " but its upper case is refused: " + e.what());
        }
        FUZZ_CHECK(fromUpper == key, where + " but upper case -> " + shown(fromUpper));
    }
    return 0;
}
