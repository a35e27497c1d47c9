// fuzz_findings_test - every finding of the libFuzzer targets (tests/fuzz/) as
// a unit test in the normal suite, next to its input in
// tests/fuzz/corpus/<target>/finding-*. A row says what the fuzzer found and
// which rule it broke; the fix lives in the code the row tests.
#define BOOST_TEST_MODULE fuzz_findings
#include "core/address.h"
#include "core/errors.h"
#include "core/message.h"
#include "core/screen.h"

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>

using namespace popgate;

namespace
{

std::string corpusFile(const std::string& target, const std::string& name)
{
    std::ifstream in(std::string(POPGATE_SOURCE_DIR) + "/tests/fuzz/corpus/" + target + "/" + name,
                     std::ios::binary);
    BOOST_REQUIRE_MESSAGE(in, "missing corpus file " << target << "/" << name);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

MessageFacts factsOf(const std::string& message)
{
    std::ostringstream sink;
    MessageRewriter rewriter(sink, std::string());
    rewriter.sputn(message.data(), static_cast<std::streamsize>(message.size()));
    return rewriter.finish();
}

CompiledFilter onlyOkExample()
{
    EmailAddressFilter f;
    f.name = "only-ok";
    f.type = FilterType::Allow;
    f.domains = {"ok.example"};
    SystemAddressFilter s;
    s.name = "fuzz";
    s.addressFilters = {f};
    FilterOptions bouncesAllowed;
    bouncesAllowed.allowNullSender = true;
    return CompiledFilter(s, bouncesAllowed);
}

} // namespace

// F1 (fuzz_address, fuzz_screen): "<>" is no mailbox, yet parseAddressList read
// it as the null address, so "From: <>" got the bounce policy's verdict and a
// message with it passed an allow list ("only ok.example") when bounces are
// allowed. A From field that names no mailbox must fail closed (issue 21: no
// syntax skips the judgement). Fixed in core/address.cpp: parseAddressList
// refuses a "<>" element (and tests/fuzz/fuzz_support.h's kNullFromRefused makes
// the address and screen targets require it).
BOOST_AUTO_TEST_CASE(f1_a_null_mailbox_in_a_from_field_fails_closed)
{
    BOOST_CHECK_THROW(parseAddressList("<>"), InputError);
    BOOST_CHECK_THROW(parseAddressList("a@ok.example, <>"), InputError);

    const std::string input = corpusFile("screen", "finding-f1-from-null");
    const MessageFacts facts = factsOf(input.substr(1)); // byte 0: the target's flags
    const CompiledFilter filter = onlyOkExample();
    const ScreenVerdict verdict =
        screenFetched(ScreenRules(), facts, envelopeSender(facts), std::string(), &filter);
    BOOST_CHECK_MESSAGE(verdict.reason == ScreenReason::SenderUnreadable,
                        "From: <> gave " << screenReasonName(verdict.reason) << ": "
                                         << verdict.detail);
}

// F2 (address target, found by CI's 60 s run after libidn2 came in): a NUL inside a
// non-ASCII domain reached idn2_to_ascii_8z, which reads a C string, so the key was
// that of the domain cut at the NUL ("x@b\xc3\xbc\0...ampLe" keyed as x@xn--b-eha):
// "x@b\xc3\xbc\0.spam.example" would have been judged as another domain. Fixed in
// core/address.cpp idnaLabel: a control byte in a domain is refused.
BOOST_AUTO_TEST_CASE(f2_a_nul_in_an_idn_domain_is_refused_not_cut)
{
    const std::string input = corpusFile("address", "finding-f2-nul-in-idn-domain");
    BOOST_CHECK_THROW(parseAddress(input), InputError);
    BOOST_CHECK_THROW(parseAddress(std::string("x@b\xc3\xbc\0.spam.example", 20)), InputError);
    BOOST_CHECK_THROW(normalizeDomain(std::string("b\xc3\xbc\x01x", 5)), InputError);
    BOOST_TEST(normalizeDomain("b\xc3\xbc.example") == "xn--b-eha.example");
}
