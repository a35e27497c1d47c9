// screen.h - the checks that decide, without the network, whether a message
// may enter: the envelope sender it is judged by, a mail loop, a duplicate
// Message-ID, and the system address filter's verdict, where an address that
// cannot be read is blocked. popgated (fetched mail) and popgate-milter (mail
// the MTA receives) both ask these functions, so the rule is written once.
// Pure: no I/O; the caller looks up duplicates in its ledger.
#pragma once

#include "core/filter.h"
#include "core/message.h"

#include <string>

namespace popgate
{

/// Why a message is kept out (quarantined and recorded `ignored`).
enum class ScreenReason {
    None,             ///< it may enter
    Loop,             ///< it passed popgate more than max_hops times
    OwnMailbox,       ///< sent by the account's own mailbox and already through popgate
    Duplicate,        ///< its Message-ID was handed over or ignored before
    Blocked,          ///< the system address filter blocks a sender
    SenderUnreadable, ///< a sender address cannot be read: blocked, never let through unjudged
    NoRecipient,      ///< a domain mailbox's message with no recipient to hand it to
                      ///< (core/recipients.h: no or unreadable envelope header, no local one)
};

/// screenReasonName - "loop", "own-mailbox", "duplicate", "blocked", "sender-unreadable",
/// "no-recipient".
std::string screenReasonName(ScreenReason reason);

struct ScreenVerdict {
    ScreenReason reason = ScreenReason::None;
    std::string detail; ///< one line for people: the log, the ledger, a 550 reply
    bool admitted() const { return reason == ScreenReason::None; }
};

/// What the fetch path checks besides the filter.
struct ScreenRules {
    int maxHops = 3;
    std::string ownMailbox; ///< the account's mailbox; "" skips the own-mailbox rule
    bool allowDuplicates = false;
};

/// envelopeSender - the sender a fetched message is reinjected with and judged
/// by: its Return-Path, else the first From mailbox, else "" (the null sender).
std::string envelopeSender(const MessageFacts& facts);

/// judgeSenders - the filter's verdict for the envelope sender ("" is <>) and,
/// if headers is given, every mailbox of every From field in it (facts.froms;
/// facts.from when froms is empty). Fails closed: a sender that does not parse,
/// a From field over kMaxFromField octets, more than kMaxFromFields From fields,
/// or a control byte (NUL, lone CR, ESC, DEL...; HTAB is allowed) left in an
/// unfolded From field or in the envelope sender block the message (reason
/// SenderUnreadable), never let it through unjudged. A message whose From
/// fields name no mailbox ("x:;") is judged by its envelope sender alone: for
/// "" that is the null sender, which allow_null_sender decides.
/// verdict, if given, gets the filter's Verdict (for an unreadable sender: blocked,
/// with the same reason text).
ScreenVerdict judgeSenders(const CompiledFilter& filter, const std::string& envelopeSender,
                           const MessageFacts* headers, Verdict* verdict = nullptr);

/// screenFetched - loop, own mailbox, duplicate (duplicateOf: the UIDL of an
/// earlier message with the same Message-ID, "" if none), then the filter
/// (nullptr: none applies) on envelopeFrom and every From field of facts
/// (judgeSenders). The first rule that keeps the message out decides.
ScreenVerdict screenFetched(const ScreenRules& rules, const MessageFacts& facts,
                            const std::string& envelopeFrom, const std::string& duplicateOf,
                            const CompiledFilter* filter);

} // namespace popgate
