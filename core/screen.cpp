// screen.cpp - the network-free admission checks (see screen.h).
#include "core/screen.h"

#include "core/address.h"
#include "core/errors.h"
#include "core/text.h"

#include <Poco/String.h>

namespace popgate
{

std::string screenReasonName(ScreenReason reason)
{
    switch (reason) {
    case ScreenReason::None:
        return "none";
    case ScreenReason::Loop:
        return "loop";
    case ScreenReason::OwnMailbox:
        return "own-mailbox";
    case ScreenReason::Duplicate:
        return "duplicate";
    case ScreenReason::Blocked:
        return "blocked";
    case ScreenReason::SenderUnreadable:
        return "sender-unreadable";
    }
    return "unknown";
}

std::string envelopeSender(const MessageFacts& facts)
{
    if (facts.nullReturnPath)
        return {};
    try {
        if (!facts.returnPath.empty())
            return parseAddress(facts.returnPath).spec();
    } catch (const InputError&) {
    }
    try {
        const auto from = parseAddressList(facts.from);
        if (!from.empty())
            return from.front().spec();
    } catch (const InputError&) {
    }
    return {};
}

namespace
{

/// unreadable - the verdict for a sender that cannot be judged.
ScreenVerdict unreadable(const CompiledFilter& filter, const std::string& why, Verdict* verdict)
{
    ScreenVerdict out{ScreenReason::SenderUnreadable,
                      "sender unreadable: " + why + " (system filter \"" + filter.name() + "\")"};
    if (verdict) {
        *verdict = Verdict();
        verdict->blocked = true;
        verdict->systemFilter = filter.name();
        verdict->reason = out.detail;
    }
    return out;
}

} // namespace

ScreenVerdict judgeSenders(const CompiledFilter& filter, const std::string& envelopeSender,
                           const MessageFacts* headers, Verdict* verdict)
{
    if (headers && headers->fromTooLarge)
        return unreadable(
            filter, "From field longer than " + std::to_string(kMaxFromField) + " octets", verdict);
    if (headers && headers->tooManyFroms)
        return unreadable(filter,
                          "more than " + std::to_string(kMaxFromFields) + " From fields (" +
                              std::to_string(headers->fromFields) + ")",
                          verdict);
    const std::string sender = envelopeSender.empty() ? "<>" : envelopeSender;
    ScreenVerdict out;
    try {
        Verdict v;
        if (!headers) {
            v = filter.checkAddress(sender, AddressField::EnvelopeSender);
        } else if (!headers->froms.empty() || headers->from.empty()) {
            v = filter.checkInbound(sender, headers->froms);
        } else { // facts filled by hand with the first From only
            v = filter.checkInbound(sender, std::vector<std::string>{headers->from});
        }
        if (v.blocked)
            out = {ScreenReason::Blocked, v.reason};
        if (verdict)
            *verdict = std::move(v);
    } catch (const InputError& e) {
        return unreadable(filter, e.what(), verdict);
    }
    return out;
}

ScreenVerdict screenFetched(const ScreenRules& rules, const MessageFacts& facts,
                            const std::string& envelopeFrom, const std::string& duplicateOf,
                            const CompiledFilter* filter)
{
    if (facts.popgateHops > rules.maxHops)
        return {ScreenReason::Loop, "mail loop: passed popgate " +
                                        std::to_string(facts.popgateHops) + " times (max_hops " +
                                        std::to_string(rules.maxHops) + ")"};
    if (facts.popgateHops > 0 && !rules.ownMailbox.empty() &&
        Poco::icompare(envelopeFrom, rules.ownMailbox) == 0)
        return {ScreenReason::OwnMailbox, "mail loop: sent by the account's own mailbox <" +
                                              rules.ownMailbox + "> and already through popgate"};
    if (!rules.allowDuplicates && !duplicateOf.empty())
        return {ScreenReason::Duplicate,
                "duplicate message-id (as uidl " + flatten(duplicateOf) + ")"};
    if (filter)
        return judgeSenders(*filter, envelopeFrom, &facts);
    return {};
}

} // namespace popgate
