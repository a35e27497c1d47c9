// recipients.cpp - recipient resolution for fixed and domain accounts (see
// recipients.h). The envelope header is read through core/address.h and every
// limit is checked before anything is kept; an unreadable header never falls
// through to the fallback recipient or to any header other than the one named.
#include "core/recipients.h"

#include "core/address.h"
#include "core/errors.h"
#include "core/text.h"

#include <Poco/String.h>
#include <algorithm>
#include <sstream>

namespace popgate
{

namespace
{

const char* const kEnvelopeHeaders[] = {"Delivered-To", "X-Original-To", "Envelope-To",
                                        "X-Envelope-To"};

// recipientKey - the comparison form of an address, or throws InputError.
std::string recipientKey(const std::string& text)
{
    const MailAddress a = parseAddress(text);
    if (a.isNull() || a.domain.empty())
        throw InputError("'" + flatten(text).substr(0, 80) + "' is not a mail address");
    return a.key;
}

std::string domainOf(const std::string& key)
{
    const auto at = key.rfind('@');
    return at == std::string::npos ? std::string() : key.substr(at + 1);
}

void addOnce(std::vector<std::string>& list, const std::string& r)
{
    if (std::find(list.begin(), list.end(), r) == list.end())
        list.push_back(r);
}

} // namespace

std::string recipientSourceName(RecipientSource source)
{
    return source == RecipientSource::Envelope ? "envelope" : "fixed";
}

RecipientSource parseRecipientSource(const std::string& text)
{
    const std::string v = Poco::toLower(trim(text));
    if (v == "fixed")
        return RecipientSource::Fixed;
    if (v == "envelope")
        return RecipientSource::Envelope;
    throw InputError("unknown recipient source '" + flatten(text).substr(0, 80) +
                     "' (expected fixed or envelope)");
}

std::string canonicalEnvelopeHeader(const std::string& text)
{
    const std::string v = Poco::toLower(trim(text));
    if (v.empty())
        return {};
    for (const char* name : kEnvelopeHeaders)
        if (v == Poco::toLower(std::string(name)))
            return name;
    throw InputError("unknown envelope header '" + flatten(text).substr(0, 80) +
                     "' (expected Delivered-To, X-Original-To, Envelope-To or X-Envelope-To)");
}

bool isLocalRecipientName(const std::string& text)
{
    if (text.empty() || text.size() > 254)
        return false;
    for (unsigned char c : text)
        if (c <= 0x20 || c == 0x7f || c == '"' || c == '<' || c == '>' || c == ',' || c == '=' ||
            c == '\\' || c == '(' || c == ')' || c == ';' || c == ':' || c == '[' || c == ']')
            return false;
    return text.front() != '@' && text.back() != '@';
}

std::vector<RecipientMapEntry> parseRecipientMap(const std::string& text)
{
    std::vector<RecipientMapEntry> map;
    for (const std::string& entry : splitList(text)) {
        const auto eq = entry.find('=');
        if (eq == std::string::npos)
            throw InputError("'" + flatten(entry).substr(0, 80) + "' is not ADDRESS=RECIPIENT");
        const std::string address = trim(entry.substr(0, eq));
        const std::string recipient = trim(entry.substr(eq + 1));
        RecipientMapEntry e;
        try {
            e.address = recipientKey(address);
        } catch (const InputError& x) {
            throw InputError("'" + flatten(entry).substr(0, 80) + "': " + x.what());
        }
        if (!isLocalRecipientName(recipient))
            throw InputError("'" + flatten(entry).substr(0, 80) +
                             "': the recipient is not a mail address or local name");
        for (const auto& other : map)
            if (other.address == e.address)
                throw InputError("'" + flatten(address).substr(0, 80) + "' is mapped twice");
        e.recipient = recipient;
        map.push_back(std::move(e));
    }
    return map;
}

std::vector<std::string> parseLocalDomains(const std::string& text)
{
    std::vector<std::string> domains;
    for (const std::string& d : splitList(text)) {
        const std::string n = normalizeDomain(d);
        if (n.empty() || n.front() == '[')
            throw InputError("'" + flatten(d).substr(0, 80) + "' is not a domain name");
        addOnce(domains, n);
    }
    return domains;
}

std::string recipientVerdictName(RecipientVerdict verdict)
{
    switch (verdict) {
    case RecipientVerdict::Deliver:
        return "deliver";
    case RecipientVerdict::NoEnvelope:
        return "no-envelope-recipient";
    case RecipientVerdict::Unreadable:
        return "envelope-unreadable";
    case RecipientVerdict::NoLocalRecipient:
        return "no-local-recipient";
    }
    return "?";
}

RecipientResolution resolveRecipients(const Account& account, const EnvelopeFields& envelope)
{
    RecipientResolution out;
    if (account.recipientSource == RecipientSource::Fixed) {
        out.recipients = account.recipients();
        return out;
    }
    const std::string header = account.envelopeHeader;
    auto unreadable = [&](const std::string& why) {
        out.verdict = RecipientVerdict::Unreadable;
        out.recipients.clear();
        out.refused.clear();
        out.usedFallback = false;
        out.detail = "envelope header " + header + " unreadable: " + why;
        return out;
    };
    // The operator's settings were validated when stored; should they not
    // parse now, nothing is delivered on their strength.
    std::vector<RecipientMapEntry> map;
    std::vector<std::string> domains;
    try {
        map = parseRecipientMap(account.recipientMap);
        domains = parseLocalDomains(account.localDomains);
    } catch (const InputError& e) {
        return unreadable(std::string("the account's settings: ") + e.what());
    }
    const std::string fallback = trim(account.fallbackRecipient);
    if (envelope.tooMany)
        return unreadable("more than " + std::to_string(kMaxEnvelopeFields) + " fields");
    if (envelope.tooLarge)
        return unreadable("a field over " + std::to_string(kMaxEnvelopeField) + " octets");

    const auto skip = static_cast<std::size_t>(std::max(0, account.envelopeHeaderSkip));
    if (envelope.values.size() <= skip) {
        const std::string why = "no envelope recipient (no " + header +
                                (skip ? " field after the " + std::to_string(skip) + " skipped"
                                      : std::string(" field")) +
                                ")";
        if (!fallback.empty()) {
            out.recipients.push_back(fallback);
            out.usedFallback = true;
            return out;
        }
        out.verdict = RecipientVerdict::NoEnvelope;
        out.detail = why;
        return out;
    }
    const std::string& field = envelope.values[skip];
    std::vector<MailAddress> addresses;
    try {
        addresses = parseAddressList(field);
    } catch (const InputError& e) {
        return unreadable(e.what());
    }
    if (addresses.empty())
        return unreadable("it names no address");
    if (addresses.size() > kMaxEnvelopeRecipients)
        return unreadable("more than " + std::to_string(kMaxEnvelopeRecipients) + " addresses");
    for (const MailAddress& a : addresses) {
        if (a.isNull() || a.domain.empty() || !isLocalRecipientName(a.key))
            return unreadable("'" + flatten(a.spec()).substr(0, 80) +
                              "' is not a deliverable address");
        const auto mapped = std::find_if(
            map.begin(), map.end(), [&](const RecipientMapEntry& e) { return e.address == a.key; });
        if (mapped != map.end()) {
            addOnce(out.recipients, mapped->recipient);
        } else if (std::find(domains.begin(), domains.end(), domainOf(a.key)) != domains.end()) {
            addOnce(out.recipients, a.key);
        } else if (!fallback.empty()) {
            addOnce(out.recipients, fallback);
            out.usedFallback = true;
        } else {
            out.refused.push_back({a.key, "not a local domain of the account (local-domains)"});
        }
    }
    if (out.recipients.empty()) {
        out.verdict = RecipientVerdict::NoLocalRecipient;
        out.detail = "no local recipient: " + header + " names only addresses outside " +
                     "local-domains (" + flatten(out.refused.front().address).substr(0, 80) +
                     (out.refused.size() > 1 ? ", ..." : "") + ")";
    }
    return out;
}

RecipientResolution recipientsForMessage(const Account& account, const std::string& message)
{
    std::ostringstream sink;
    MessageRewriter rewriter(sink, std::string());
    if (account.recipientSource == RecipientSource::Envelope)
        rewriter.collectEnvelope(account.envelopeHeader);
    // The header section only: the body is not looked at.
    std::string::size_type end = message.find("\n\r\n");
    const std::string::size_type lf = message.find("\n\n");
    if (lf != std::string::npos && (end == std::string::npos || lf < end))
        end = lf;
    const std::size_t n = end == std::string::npos ? message.size() : end + 1;
    rewriter.sputn(message.data(), static_cast<std::streamsize>(n));
    return resolveRecipients(account, rewriter.finish().envelope);
}

} // namespace popgate
