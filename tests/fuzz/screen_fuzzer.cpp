// screen_fuzzer.cpp - the sender screening (core/screen.h) over raw message
// bytes, as popgated does it: MessageRewriter learns the facts, envelopeSender
// picks the sender, screenFetched judges with a deny filter for spam.example
// (its sub-domains and the IDN bücher.example) or an allow filter for
// ok.example only. The first byte picks the filter and the bounce policy; the
// rest is the message. The verdict is checked against an independent reading:
// a message is never admitted when a From field or the sender does not parse,
// a From field was not kept, or any mailbox is one the filter blocks; and it
// is admitted when all of them read and none is blocked.
#include "core/address.h"
#include "core/errors.h"
#include "core/message.h"
#include "core/screen.h"
#include "tests/fuzz/fuzz_support.h"

#include <cstdint>
#include <sstream>

using namespace popgate;
using popgate::fuzz::shown;

namespace
{

CompiledFilter makeFilter(bool allowList, bool allowNullSender)
{
    SystemAddressFilter system;
    system.name = "fuzz";
    EmailAddressFilter f;
    f.name = allowList ? "only-ok" : "spam";
    f.type = allowList ? FilterType::Allow : FilterType::Deny;
    if (allowList)
        f.domains = {"ok.example"};
    else
        f.domains = {"spam.example", "*.spam.example", "b\303\274cher.example"};
    system.addressFilters.push_back(f);
    FilterOptions options;
    options.allowNullSender = allowNullSender;
    return CompiledFilter(system, options);
}

bool endsWith(const std::string& s, const std::string& tail)
{
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// blockedKey - the oracle's reading of the filters above.
bool blockedKey(const std::string& key, bool allowList)
{
    const std::string domain = key.substr(key.rfind('@') + 1);
    if (allowList)
        return domain != "ok.example";
    return domain == "spam.example" || endsWith(domain, ".spam.example") ||
           domain == "xn--bcher-kva.example";
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1)
        return 0;
    const bool allowList = (data[0] & 1) != 0;
    const bool allowNull = (data[0] & 2) != 0;
    const std::string message(reinterpret_cast<const char*>(data) + 1, size - 1);
    static const CompiledFilter filters[2][2] = {
        {makeFilter(false, false), makeFilter(false, true)},
        {makeFilter(true, false), makeFilter(true, true)}};
    const CompiledFilter& filter = filters[allowList][allowNull];

    std::ostringstream sink;
    MessageRewriter rewriter(sink, std::string());
    rewriter.sputn(message.data(), static_cast<std::streamsize>(message.size()));
    const MessageFacts& facts = rewriter.finish();

    const std::string sender = envelopeSender(facts);
    const std::string where = "message " + shown(message) + " sender " + shown(sender) +
                              (allowList ? " allow-list" : " deny-list") +
                              (allowNull ? " bounces allowed" : " bounces refused");
    FUZZ_CHECK(sender.find_first_of(std::string("\r\n\0", 3)) == std::string::npos, where);

    // The oracle.
    bool unreadable = facts.fromTooLarge || facts.tooManyFroms;
    bool blocked = false;
    if (sender.empty()) {
        blocked = !allowNull;
    } else {
        try {
            blocked = blockedKey(parseAddress(sender).key, allowList);
        } catch (const InputError&) {
            unreadable = true;
        }
    }
    for (const std::string& from : facts.froms) {
        try {
            for (const MailAddress& a : parseAddressList(from)) {
                FUZZ_CHECK(!a.isNull() || !popgate::fuzz::kNullFromRefused,
                           where + ": From " + shown(from) + " reads as <> (finding F1)");
                // Until F1 is fixed a "<>" mailbox gets the bounce policy's verdict.
                blocked = blocked || (a.isNull() ? !allowNull : blockedKey(a.key, allowList));
            }
        } catch (const InputError&) {
            unreadable = true;
        }
    }

    ScreenRules rules;
    const ScreenVerdict verdict = screenFetched(rules, facts, sender, std::string(), &filter);
    const std::string said = where + ": verdict " + screenReasonName(verdict.reason) + " " +
                             shown(verdict.detail);
    if (facts.popgateHops > rules.maxHops) {
        FUZZ_CHECK(verdict.reason == ScreenReason::Loop, said);
        return 0;
    }
    // A control byte left in a From field or the sender (core/screen.h) makes the
    // sender unreadable before any address is judged; ISO-2022-JP's escapes are
    // display text, so the oracle only allows that reason, never requires it.
    auto controls = [](const std::string& s) {
        for (unsigned char ch : s)
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return true;
        return false;
    };
    bool control = controls(sender) || controls(facts.from);
    for (const std::string& from : facts.froms)
        control = control || controls(from);
    if (unreadable)
        FUZZ_CHECK(verdict.reason == ScreenReason::SenderUnreadable, said);
    else if (blocked) // kept out: blocked, or unreadable for a control byte
        FUZZ_CHECK(verdict.reason == ScreenReason::Blocked ||
                       (control && verdict.reason == ScreenReason::SenderUnreadable),
                   said);
    else
        FUZZ_CHECK(verdict.admitted() ||
                       (control && verdict.reason == ScreenReason::SenderUnreadable),
                   said);

    // judgeSenders tells the same through its Verdict.
    Verdict v;
    const ScreenVerdict judged = judgeSenders(filter, sender, &facts, &v);
    FUZZ_CHECK(judged.reason == verdict.reason, said);
    FUZZ_CHECK(v.blocked == !judged.admitted(), said);
    FUZZ_CHECK(!v.blocked || !v.reason.empty(), said);
    return 0;
}
