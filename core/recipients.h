// recipients.h - who a fetched message is handed to. A fixed account delivers
// every message to its deliver-to (or mailbox); a domain ("multidrop") account
// reads the recipients from ONE envelope header its provider adds (Delivered-To,
// X-Original-To, Envelope-To or X-Envelope-To, counted from the top), keeps the
// addresses in its local domains (or its recipient map), sends the rest to its
// fallback recipient or refuses them, and never guesses from To or Cc.
// Pure and bounded: no I/O; hostile header text fails closed (quarantine).
#pragma once

#include "core/account.h"
#include "core/message.h"

#include <cstddef>
#include <string>
#include <vector>

namespace popgate
{

/// At most this many addresses are read from the counted envelope field; a
/// field that names more is unreadable (the message is quarantined).
constexpr std::size_t kMaxEnvelopeRecipients = 32;

/// recipientSourceName - "fixed" | "envelope".
std::string recipientSourceName(RecipientSource source);
/// parseRecipientSource - throws InputError naming the accepted values.
RecipientSource parseRecipientSource(const std::string& text);
/// canonicalEnvelopeHeader - "Delivered-To", "X-Original-To", "Envelope-To" or
/// "X-Envelope-To" for that name in any case ("" for ""); throws InputError otherwise.
std::string canonicalEnvelopeHeader(const std::string& text);

/// One rewrite of the recipient map: an envelope address to a local recipient.
struct RecipientMapEntry {
    std::string address;   ///< comparison form (MailAddress::key)
    std::string recipient; ///< what RCPT TO names instead
};
/// parseRecipientMap - "sales@company.example=sales-team, info@company.example=bob"
/// (comma-separated ADDRESS=RECIPIENT); throws InputError naming the bad entry.
std::vector<RecipientMapEntry> parseRecipientMap(const std::string& text);
/// parseLocalDomains - comma-separated domains, normalized (lowercase A-labels);
/// throws InputError naming the bad one.
std::vector<std::string> parseLocalDomains(const std::string& text);
/// isLocalRecipientName - a name or address RCPT TO may carry: 1-254 printable
/// characters without blanks, quotes, angle brackets, commas or '='.
bool isLocalRecipientName(const std::string& text);

/// What resolveRecipients found.
enum class RecipientVerdict {
    Deliver,          ///< recipients holds at least one recipient
    NoEnvelope,       ///< the counted envelope field is missing and there is no fallback
    Unreadable,       ///< the envelope header is malformed, too large or names too many
    NoLocalRecipient, ///< every address it names was refused (outside local-domains)
};

/// recipientVerdictName - "deliver", "no-envelope-recipient", "envelope-unreadable",
/// "no-local-recipient".
std::string recipientVerdictName(RecipientVerdict verdict);

/// An envelope address this account does not deliver for (outside local-domains,
/// not in the map, no fallback recipient): refused to that recipient, recorded.
struct RefusedRecipient {
    std::string address; ///< as read (comparison form)
    std::string reason;  ///< one line for people
};

struct RecipientResolution {
    RecipientVerdict verdict = RecipientVerdict::Deliver;
    std::vector<std::string> recipients; ///< RCPT TO, each once, in order
    std::vector<RefusedRecipient> refused;
    bool usedFallback = false; ///< the fallback recipient stands in for something
    std::string detail;        ///< one line for people: why not Deliver ("" when Deliver)
    bool deliverable() const { return verdict == RecipientVerdict::Deliver; }
};

/// resolveRecipients - the recipients of one message of account. Fixed accounts:
/// account.recipients(), whatever the headers say. Envelope accounts: the field
/// envelope.values[envelope-header-skip] (0: the topmost, the one the provider
/// added last), read as an address list; each address is rewritten by the map,
/// else kept when its domain is a local domain, else replaced by the fallback
/// recipient, else refused. A missing field goes to the fallback recipient, else
/// NoEnvelope ("no envelope recipient"). Unreadable (fails closed, never the
/// fallback): envelope.tooMany or tooLarge, an address that does not parse, more
/// than kMaxEnvelopeRecipients addresses, or none at all. Never throws.
RecipientResolution resolveRecipients(const Account& account, const EnvelopeFields& envelope);

/// recipientsForMessage - resolveRecipients for a message given as text (its
/// header section is enough; CRLF or LF): what `account test` and popgated's dry
/// run show. Reads at most the header section; never throws.
RecipientResolution recipientsForMessage(const Account& account, const std::string& message);

} // namespace popgate
