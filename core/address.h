// address.h - RFC 5322 addr-spec parsing and the comparison form used by the
// address filters: local part lowercased, domain in lowercase A-labels by
// libidn2 (UTS #46 mapping, NFC, IDNA2008 rules; a label it refuses makes the
// address malformed). Pure code: no I/O, no Poco::Net. Malformed input throws
// InputError with a message that quotes the input; it never crashes.
#pragma once

#include <string>
#include <vector>

namespace popgate
{

/// One mailbox address. The null sender "<>" has empty parts and key.
struct MailAddress {
    std::string localPart; ///< unquoted, escapes resolved, case as written
    std::string domain;    ///< as written (U-labels, A-labels or [literal])
    std::string key;       ///< comparison form "local@domain", lowercased, A-labels

    bool isNull() const { return key.empty(); }
    /// spec - the addr-spec as written, quoting the local part when needed; "" for <>.
    std::string spec() const;
};

/// parseAddress - the addr-spec of "a@b", "<a@b>", "Name <a@b>", "a@b (c)",
/// obsolete "<@route:a@b>" and "a . b @ c"; "<>" gives the null address. Only
/// the addr-spec must read: display names, comments and quoted strings may hold
/// any bytes (Latin-1, CP1252, broken UTF-8; RFC 2047 words are not decoded).
/// 8-bit in the local part must be UTF-8 (RFC 6532), in the domain UTF-8 that
/// makes an IDN. Raw ISO-2022-JP runs (ESC $ B ... ESC ( B) are display text
/// like 8-bit bytes. Throws InputError for anything else.
MailAddress parseAddress(const std::string& text);

/// parseAddressList - every mailbox of a header such as From ("a@b, Name <c@d>"),
/// groups included ("Team: a@b, c@d;"; the group name must be a phrase, an
/// empty group gives no mailbox); empty text gives an empty list. Throws
/// InputError naming the bad element.
std::vector<MailAddress> parseAddressList(const std::string& text);

/// parseAddressPattern - like parseAddress for an addr-spec, but '*' may also
/// stand in the domain; key is the pattern's comparison form. Throws InputError.
MailAddress parseAddressPattern(const std::string& text);

/// normalizeDomain - lowercased A-label form of a domain ("Bücher.Example" ->
/// "xn--bcher-kva.example"): ASCII labels are checked and lowercased here,
/// labels with 8-bit or "xn--" go through libidn2 (IDNA2008, UTS #46
/// non-transitional). With allowWildcard, labels holding '*' are kept (ASCII
/// only). Throws InputError naming the domain and the fault (also for every
/// label libidn2 refuses, such as a bad A-label or a disallowed code point).
std::string normalizeDomain(const std::string& domain, bool allowWildcard = false);

/// domainForDisplay - the domain's comparison form with its A-labels as
/// U-labels (libidn2's idn2_to_unicode_8z8z), for people to read; the input
/// unchanged if it does not normalize. Never used for comparison.
std::string domainForDisplay(const std::string& domain);

/// normalizeLocalPart - the local part lowercased (UTF-8 aware).
std::string normalizeLocalPart(const std::string& localPart);

} // namespace popgate
