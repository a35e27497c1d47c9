// sender_property_test - issue [H] item 7 in-process over the core screening:
// generated From sections (tests/core/sender_forms.h) that carry a blocked
// sender in any legal or obsolete form are never admitted, the same forms
// with an allowed sender always are (except a field over the 16 KiB limit,
// which fails closed). Both readings: popgated's (MessageRewriter, then
// screenFetched) and the milter's (one addFromField per header callback, then
// judgeSenders). Deterministic: the seed is printed, and POPGATE_PROPERTY_SEED
// replays a failure.
#define BOOST_TEST_MODULE sender_property
#include "core/screen.h"
#include "tests/core/sender_forms.h"

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <sstream>

using namespace popgate;
using namespace popgate::test;

namespace
{

std::uint32_t seed()
{
    const char* env = std::getenv("POPGATE_PROPERTY_SEED");
    return env && *env ? static_cast<std::uint32_t>(std::stoul(env)) : 20261203u;
}

CompiledFilter filter()
{
    EmailAddressFilter f;
    f.name = "spam";
    f.type = FilterType::Deny;
    f.domains = {"spam.example", "bücher.example"};
    SystemAddressFilter s;
    s.name = "inbound-default";
    s.addressFilters = {f};
    return CompiledFilter(s);
}

MessageFacts fetched(const std::string& header)
{
    std::ostringstream sink;
    MessageRewriter rewriter(sink, "");
    std::ostream out(&rewriter);
    out << header << "Subject: s\r\n\r\nbody\r\n";
    out.flush();
    return rewriter.finish();
}

/// milterValue - a From body as the MTA hands it to the milter: folding as LF.
std::string milterValue(const std::string& body)
{
    std::string out;
    for (std::size_t i = 0; i < body.size(); ++i)
        if (!(body[i] == '\r' && i + 1 < body.size() && body[i + 1] == '\n'))
            out += body[i];
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(blocked_never_admitted_allowed_always)
{
    const std::uint32_t s = seed();
    BOOST_TEST_MESSAGE("sender_property seed " << s << " (POPGATE_PROPERTY_SEED replays it)");
    const CompiledFilter f = filter();
    const std::vector<SenderTarget> blocked = {
        {"x", "spam.example", ""},
        {"boss.man", "xn--bcher-kva.example", "bücher.example"},
    };
    const std::vector<SenderTarget> allowed = {
        {"a.b", "ok.example", ""},
        {"y", "xn--mnchen-3ya.example", "münchen.example"},
    };
    SenderForms forms(s, "a@ok.example");
    int cases = 0, overLimit = 0, failed = 0;
    for (int i = 0; i < 4000 && failed < 20; ++i) { // 20 failures say enough
        const bool isBlocked = i % 2 == 0;
        const SenderTarget& target = (isBlocked ? blocked : allowed)[forms.pick(2)];
        const SenderCase c = forms.next(target, i % 97 < 2);
        // The Return-Path, when there is one, is allowed: the From decides.
        const std::string returnPath = forms.pick(2) ? "Return-Path: <rp@ok.example>\r\n" : "";
        const bool admit = !isBlocked && !c.overLimit;
        ++cases;
        overLimit += c.overLimit;
        BOOST_TEST_CONTEXT("seed " << s << " case " << i << " (" << c.form << ") "
                                   << (isBlocked ? "blocked " : "allowed ") << target.local << "@"
                                   << target.domain
                                   << "; From fields: " << c.header().substr(0, 300))
        {
            const MessageFacts facts = fetched(returnPath + c.header());
            const ScreenVerdict fetch =
                screenFetched(ScreenRules(), facts, envelopeSender(facts), "", &f);
            failed += fetch.admitted() != admit;
            BOOST_TEST(fetch.admitted() == admit, "popgated: " << fetch.detail);

            MessageFacts milter;
            for (const std::string& from : c.froms)
                addFromField(milter, milterValue(from));
            const ScreenVerdict m = judgeSenders(f, "rp@ok.example", &milter);
            failed += m.admitted() != admit;
            BOOST_TEST(m.admitted() == admit, "milter: " << m.detail);
            if (c.overLimit)
                BOOST_TEST(screenReasonName(m.reason) == "sender-unreadable");
        }
    }
    BOOST_TEST(cases == 4000);
    BOOST_TEST(overLimit > 0, "the generator reached the 1 MB form");
}
