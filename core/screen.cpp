// screen.cpp - the network-free admission checks (see screen.h).
#include "core/screen.h"

#include "core/address.h"
#include "core/errors.h"
#include "core/text.h"

#include <Poco/String.h>
#include <cstdio>
#include <cstring>

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
    case ScreenReason::NoRecipient:
        return "no-recipient";
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

// iso2022Designation - the length of an ISO-2022-JP charset designation at
// text[i] (ESC ( B/J/I, ESC $ @/A/B, ESC $ ( C/D/O/Q; RFC 1468, RFC 2237,
// JIS X 0213), 0 when there is none. Old Japanese mailers still write display
// names in raw ISO-2022-JP: those escapes switch charsets and move no cursor.
std::size_t iso2022Designation(const std::string& text, std::size_t i)
{
    auto at = [&](std::size_t k) { return i + k < text.size() ? text[i + k] : '\0'; };
    if (at(0) != '\x1b')
        return 0;
    if (at(1) == '(' && std::strchr("BJI", at(2)) && at(2))
        return 3;
    if (at(1) == '$' && std::strchr("@AB", at(2)) && at(2))
        return 3;
    if (at(1) == '$' && at(2) == '(' && std::strchr("CDOQ", at(3)) && at(3))
        return 4;
    return 0;
}

// controlByte - the first control byte of text (below 0x20 except HTAB, or
// DEL) as "0x1b at octet 4", "" when none. The line breaks of folding (CR LF,
// LF) are white space and an ISO-2022-JP designation is text, not control;
// what is left would make a reader see another address than the one judged (a
// NUL ends the field for C programs and for the milter protocol, a lone CR or
// an escape sequence rewrites a terminal line).
std::string controlByte(const std::string& text)
{
    for (std::size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        const bool lineBreak =
            c == '\n' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n');
        if (const std::size_t n = iso2022Designation(text, i)) {
            i += n - 1;
            continue;
        }
        if (((c < 0x20 && c != '\t') || c == 0x7f) && !lineBreak) {
            char buf[40];
            std::snprintf(buf, sizeof buf, "byte 0x%02x at octet %zu", c, i + 1);
            return buf;
        }
    }
    return {};
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
    if (headers) {
        const std::vector<std::string> one{headers->from};
        const auto& froms = headers->froms.empty() ? one : headers->froms;
        for (std::size_t i = 0; i < froms.size(); ++i)
            if (const std::string at = controlByte(froms[i]); !at.empty())
                return unreadable(filter,
                                  "From field " + std::to_string(i + 1) + " holds control " + at,
                                  verdict);
    }
    if (const std::string at = controlByte(envelopeSender); !at.empty())
        return unreadable(filter, "envelope sender holds control " + at, verdict);
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
