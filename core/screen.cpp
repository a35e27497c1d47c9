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

ScreenVerdict judgeSenders(const CompiledFilter& filter, const std::string& envelopeSender,
                           const std::string* headerFrom, Verdict* verdict)
{
    const std::string sender = envelopeSender.empty() ? "<>" : envelopeSender;
    ScreenVerdict out;
    try {
        Verdict v = headerFrom ? filter.checkInbound(sender, *headerFrom)
                               : filter.checkAddress(sender, AddressField::EnvelopeSender);
        if (v.blocked)
            out = {ScreenReason::Blocked, v.reason};
        if (verdict)
            *verdict = std::move(v);
    } catch (const InputError& e) {
        out = {ScreenReason::SenderUnreadable, std::string("unreadable sender address: ") +
                                                   e.what() + " (system filter \"" +
                                                   filter.name() + "\")"};
        if (verdict) {
            *verdict = Verdict();
            verdict->blocked = true;
            verdict->systemFilter = filter.name();
            verdict->reason = out.detail;
        }
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
        return {ScreenReason::Duplicate, "duplicate message-id (as uidl " + flatten(duplicateOf) + ")"};
    if (filter)
        return judgeSenders(*filter, envelopeFrom, &facts.from);
    return {};
}

} // namespace popgate
