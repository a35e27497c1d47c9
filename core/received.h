// received.h - the real origin of a fetched message, for XCLIENT: the address
// and name of the host that handed the message to the mailbox provider, read
// from the provider's own Received: trace field (RFC 5321 4.4), and the xtext
// encoding (RFC 3461 4) XCLIENT's values travel in. Pure and bounded: works on
// strings only, never guesses (a field it cannot read yields nothing).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace popgate
{

/// A Received: field body (unfolded) longer than this is not parsed.
constexpr std::size_t kMaxReceivedField = 8 * 1024;

/// What a provider's Received: field says about the host it received from.
struct ReceivedOrigin {
    std::string address; ///< IPv4 dotted quad or IPv6, in canonical (inet_ntop) form
    bool ipv6 = false;
    std::string name; ///< the provider's name for that address; "" when it has none ("unknown")
};

/// parseReceived - the origin in "from HELO (NAME [IP] ...)" or "from HELO ([IP] ...)"
/// (Postfix, Sendmail, Gmail, Exim's "[IP] helo=" comment; "IPv6:" before an IPv6
/// address optional). NAME is the provider's look-up, not the client's HELO; a
/// trailing dot is dropped, "unknown" means none. nullopt for anything else: a
/// field over kMaxReceivedField, no "from" clause, an address that is not exactly
/// IPv4 or IPv6, a NAME that is not a plain host name (letters, digits, '-', '.').
std::optional<ReceivedOrigin> parseReceived(const std::string& value);

/// receivedField - the body of the n-th (1-based, from the top) Received: field
/// of a header section (CRLF or LF line ends; it may go on into the body, which
/// is not read), unfolded and trimmed; nullopt when there are fewer than n.
/// Reads only up to the first blank line.
std::optional<std::string> receivedField(const std::string& header, int n);

/// xtext - RFC 3461 xtext: '!'..'~' except '+' and '=' as they are, every other
/// octet as "+HH" (upper-case hex).
std::string xtext(const std::string& value);

} // namespace popgate
