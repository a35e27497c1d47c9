// filter_bench - decisions per second of a compiled system address filter
// with 100 domains and 1000 exceptions (exact and wildcard), over a mix of
// addresses that hit domains, hit exceptions and miss. Not a unit test: run
// it by hand on a quiet machine (`build/bench/filter_bench [iterations]`).
#include "core/filter.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace popgate;

int main(int argc, char** argv)
{
    long iterations = argc > 1 ? std::atol(argv[1]) : 2000000;

    // A deny list of 90 exact domains, 5 sub-domain patterns, 4 wildcards and one
    // IDN, with 950 exact and 50 wildcard exceptions; plus a small second deny list.
    EmailAddressFilter spam;
    spam.name = "spam-domains";
    spam.type = FilterType::Deny;
    for (int i = 0; i < 90; ++i)
        spam.domains.push_back("spam" + std::to_string(i) + ".example");
    for (int i = 0; i < 5; ++i)
        spam.domains.push_back("*.junk" + std::to_string(i) + ".example");
    for (int i = 0; i < 4; ++i)
        spam.domains.push_back("promo" + std::to_string(i) + "*.example");
    spam.domains.push_back("bücher.example");
    for (int i = 0; i < 950; ++i)
        spam.exceptions.push_back("user" + std::to_string(i) + "@spam" + std::to_string(i % 90) +
                                  ".example");
    for (int i = 0; i < 50; ++i)
        spam.exceptions.push_back("*-team" + std::to_string(i) + "@*.example");

    EmailAddressFilter tlds;
    tlds.name = "bad-tlds";
    tlds.type = FilterType::Deny;
    tlds.domains = {"*.zip", "*.mov", "*.test"};

    SystemAddressFilter system;
    system.name = "inbound-default";
    system.addressFilters = {spam, tlds};

    auto t0 = std::chrono::steady_clock::now();
    CompiledFilter filter(system);
    auto t1 = std::chrono::steady_clock::now();

    // Addresses parsed once, as the daemon does per message; the benchmark is
    // the decision. A second figure includes parsing the string.
    const std::vector<std::string> texts = {
        "x@spam42.example",              // exact domain hit -> blocked
        "User17@SPAM17.example",         // exact exception -> allowed
        "ops-team33@spam5.example",      // wildcard exception -> allowed
        "x@mail.junk3.example",          // sub-domain hit -> blocked
        "x@promo2mail.example",          // wildcard domain hit -> blocked
        "x@ok.org",                      // miss -> allowed
        "x@a.b.c.d.corp.example",        // miss, deep domain -> allowed
        "Some One <x@bücher.example>",   // IDN hit -> blocked
        "someone@nowhere.test",          // second list's sub-domain hit -> blocked
        "user999@spam9.example",         // near-miss exception -> blocked
    };
    std::vector<MailAddress> parsed;
    for (const std::string& t : texts)
        parsed.push_back(parseAddress(t));

    long blocked = 0;
    auto t2 = std::chrono::steady_clock::now();
    for (long i = 0; i < iterations; ++i)
        blocked += filter.checkAddress(parsed[static_cast<std::size_t>(i) % parsed.size()],
                                       AddressField::EnvelopeSender)
                       .blocked;
    auto t3 = std::chrono::steady_clock::now();
    long withParse = iterations / 4;
    for (long i = 0; i < withParse; ++i)
        blocked += filter.checkAddress(texts[static_cast<std::size_t>(i) % texts.size()],
                                       AddressField::EnvelopeSender)
                       .blocked;
    auto t4 = std::chrono::steady_clock::now();

    using Seconds = std::chrono::duration<double>;
    double compile = Seconds(t1 - t0).count(), decide = Seconds(t3 - t2).count(),
           parse = Seconds(t4 - t3).count();
    std::printf("filter_bench: 1 system filter, 2 address filters, %zu domains, %zu exceptions\n",
                spam.domains.size() + tlds.domains.size(), spam.exceptions.size());
    std::printf("compile:              %.3f ms\n", compile * 1e3);
    std::printf("decide (parsed):      %.0f decisions/s (%.3f us each, %ld iterations)\n",
                iterations / decide, decide * 1e6 / iterations, iterations);
    std::printf("parse + decide:       %.0f decisions/s (%.3f us each, %ld iterations)\n",
                withParse / parse, parse * 1e6 / withParse, withParse);
    std::printf("(blocked %ld)\n", blocked);
    return 0;
}
