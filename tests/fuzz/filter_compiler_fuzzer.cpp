// filter_compiler_fuzzer.cpp - the filter compiler (core/filter.h): a system
// filter built from the input (names, types, domain and exception patterns,
// active flags), compiled, then asked about addresses from the input.
// Invariants: validateSystemFilter refuses exactly what CompiledFilter
// refuses, both with InputError; and every verdict equals a naive reading of
// the rules at the top of filter.cpp (each pattern tried one by one with a
// plain glob matcher, no hash sets, no suffix maps): blocked iff some active
// filter denies and none allows, an exception inverting its filter.
#include "core/address.h"
#include "core/errors.h"
#include "core/filter.h"
#include "tests/fuzz/fuzz_support.h"

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <memory>

using namespace popgate;
using popgate::fuzz::shown;

namespace
{

// globMatch - '*' stands for one or more characters; a run of '*' is one.
// Dynamic programming over (pattern, text) positions: no backtracking blow-up.
bool globMatch(const std::string& pattern, const std::string& s)
{
    std::string p;
    for (char c : pattern)
        if (c != '*' || p.empty() || p.back() != '*')
            p += c;
    // at[j]: p[0..i) matches s[0..j)
    std::vector<char> at(s.size() + 1, 0), next(s.size() + 1, 0);
    at[0] = 1;
    for (char c : p) {
        std::fill(next.begin(), next.end(), 0);
        if (c == '*') {
            bool reach = false; // some k < j with at[k]
            for (std::size_t j = 0; j <= s.size(); ++j) {
                next[j] = reach;
                reach = reach || at[j];
            }
        } else {
            for (std::size_t j = 1; j <= s.size(); ++j)
                next[j] = at[j - 1] && s[j - 1] == c;
        }
        at.swap(next);
    }
    return at[s.size()] != 0;
}

bool patternMatch(const std::string& pattern, const std::string& text)
{
    if (pattern.find('*') == std::string::npos)
        return pattern == text;
    return globMatch(pattern, text);
}

struct NaiveFilter {
    FilterType type;
    bool active;
    std::vector<std::string> domains;    // normalized
    std::vector<std::string> exceptions; // comparison keys
};

// naiveBlocked - the rules of filter.cpp, read literally.
bool naiveBlocked(const std::vector<NaiveFilter>& filters, bool systemActive,
                  bool allowNullSender, const MailAddress& address)
{
    if (!systemActive)
        return false;
    if (address.isNull())
        return !allowNullSender;
    const std::string domain = address.key.substr(address.key.rfind('@') + 1);
    bool allowed = false, denied = false;
    for (const NaiveFilter& f : filters) {
        if (!f.active)
            continue;
        bool listed = false;
        for (const std::string& d : f.domains)
            listed = listed || patternMatch(d, domain);
        const bool allowType = f.type == FilterType::Allow;
        if (!listed && !allowType)
            continue;
        bool says = listed && allowType;
        bool excepted = false;
        for (const std::string& e : f.exceptions)
            excepted = excepted || patternMatch(e, address.key);
        if (excepted)
            says = !says;
        allowed = allowed || says;
        denied = denied || !says;
    }
    return denied && !allowed;
}

const char* const kDomains[] = {"spam.example", "*.spam.example", "*", "*.example", "a*b.example",
                                "*spam*",       "b\303\274cher.example", "EXAMPLE.com"};
const char* const kAddresses[] = {"x@spam.example",      "X@Sub.Spam.Example", "<>",
                                  "ok@ok.example",       "a@axb.example",      "a@ab.example",
                                  "\"q u\"@spam.example", "x@b\303\274cher.example",
                                  "x@xn--bcher-kva.example"};

std::string pick(FuzzedDataProvider& in, const char* const* table, std::size_t n)
{
    if (in.ConsumeBool())
        return table[in.ConsumeIntegralInRange<std::size_t>(0, n - 1)];
    return in.ConsumeRandomLengthString(64);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider in(data, size);
    SystemAddressFilter system;
    system.name = in.ConsumeBool() ? "inbound" : in.ConsumeRandomLengthString(16);
    system.active = in.ConsumeIntegralInRange<int>(0, 7) != 0;
    FilterOptions options;
    options.allowNullSender = in.ConsumeBool();
    FilterLimits limits;
    limits.maxDomains = 6;
    limits.maxExceptions = 4;
    limits.maxAddressFilters = 4;
    const int filterCount = in.ConsumeIntegralInRange<int>(0, 5);
    for (int i = 0; i < filterCount; ++i) {
        EmailAddressFilter f;
        f.name = in.ConsumeIntegralInRange<int>(0, 7) != 0 ? "f" + std::to_string(i)
                                                          : in.ConsumeRandomLengthString(16);
        f.type = in.ConsumeBool() ? FilterType::Allow : FilterType::Deny;
        f.active = in.ConsumeIntegralInRange<int>(0, 7) != 0;
        const int domains = in.ConsumeIntegralInRange<int>(0, 7);
        for (int d = 0; d < domains; ++d)
            f.domains.push_back(pick(in, kDomains, std::size(kDomains)));
        const int exceptions = in.ConsumeIntegralInRange<int>(0, 5);
        for (int e = 0; e < exceptions; ++e)
            f.exceptions.push_back(pick(in, kAddresses, std::size(kAddresses)));
        system.addressFilters.push_back(f);
    }

    bool valid = true;
    try {
        validateSystemFilter(system, limits);
    } catch (const InputError&) {
        valid = false;
    }
    std::unique_ptr<CompiledFilter> compiled;
    try {
        compiled = std::make_unique<CompiledFilter>(system, options, limits);
    } catch (const InputError& e) {
        FUZZ_CHECK(!valid, std::string("validated, but compiling refuses: ") + e.what());
        return 0;
    }
    FUZZ_CHECK(valid, "validation refuses what compiles");

    // The naive form, from the public normalizers.
    std::vector<NaiveFilter> naive;
    for (const EmailAddressFilter& f : system.addressFilters) {
        NaiveFilter n{f.type, f.active, {}, {}};
        for (const std::string& d : f.domains)
            n.domains.push_back(normalizeDomain(d, true));
        for (const std::string& e : f.exceptions)
            n.exceptions.push_back(parseAddressPattern(e).key);
        naive.push_back(n);
    }

    std::vector<std::string> froms;
    const int addresses = in.ConsumeIntegralInRange<int>(1, 4);
    for (int i = 0; i < addresses; ++i) {
        const std::string text = pick(in, kAddresses, std::size(kAddresses));
        MailAddress address;
        try {
            address = parseAddress(text);
        } catch (const InputError&) {
            bool refused = false;
            try {
                compiled->checkAddress(text, AddressField::EnvelopeSender);
            } catch (const InputError&) {
                refused = true;
            }
            FUZZ_CHECK(refused, "checkAddress judged the unparsable " + shown(text));
            continue;
        }
        const Verdict v = compiled->checkAddress(address, AddressField::HeaderFrom);
        const bool expected = naiveBlocked(naive, system.active, options.allowNullSender, address);
        FUZZ_CHECK(v.blocked == expected, "address " + shown(text) + " key " + shown(address.key) +
                                              (v.blocked ? " blocked" : " allowed") +
                                              " against the naive reading: " + shown(v.reason));
        FUZZ_CHECK(v.blocked == (v.blocker() != nullptr), shown(v.reason));
        FUZZ_CHECK(!v.reason.empty(), "no reason for " + shown(text));
        if (!address.isNull())
            froms.push_back(text);
    }

    // checkInbound: blocked iff the sender or any From mailbox is.
    Verdict all;
    try {
        all = compiled->checkInbound("<>", froms);
    } catch (const InputError& e) {
        FUZZ_CHECK(false, std::string("checkInbound refuses what parseAddress read: ") + e.what());
    }
    bool any = naiveBlocked(naive, system.active, options.allowNullSender, MailAddress());
    for (const std::string& from : froms)
        any = any ||
              naiveBlocked(naive, system.active, options.allowNullSender, parseAddress(from));
    FUZZ_CHECK(all.blocked == any, "checkInbound " + shown(all.reason));
    return 0;
}
