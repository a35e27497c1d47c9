// recipients_fuzzer.cpp - a domain mailbox's recipient resolution
// (core/recipients.h) over raw message bytes, as popgated does it:
// MessageRewriter collects the envelope header and renames it, then
// resolveRecipients decides. The first byte picks the header (2 bits), the
// number of fields to skip (2 bits) and whether a fallback recipient is set;
// the rest is the message. What must hold: it never throws; Deliver exactly
// when there are recipients, each once, each a fallback, a map value or an
// address in a local domain, none with a byte SMTP cannot carry; an unreadable
// header never reaches the fallback; and no field of that name is left in the
// rewritten header section (it went out as X-Fetched-...).
#include "core/errors.h"
#include "core/message.h"
#include "core/recipients.h"
#include "tests/fuzz/fuzz_support.h"

#include <Poco/String.h>
#include <algorithm>
#include <cstdint>
#include <set>
#include <sstream>

using namespace popgate;
using popgate::fuzz::shown;

namespace
{

bool isWsp(char c)
{
    return c == ' ' || c == '\t';
}

// fieldNames - the names of the header fields of text, by the rewriter's rule:
// the section ends at a blank line or at a line that is neither a field nor a
// continuation line.
std::vector<std::string> fieldNames(const std::string& text)
{
    std::vector<std::string> names;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t lf = text.find('\n', pos);
        const std::string line = text.substr(pos, lf == std::string::npos ? lf : lf - pos + 1);
        pos = lf == std::string::npos ? text.size() : lf + 1;
        if (line == "\n" || line == "\r\n")
            break;
        if (isWsp(line[0])) {
            if (names.empty())
                break; // a continuation of nothing: the rewriter's body starts here
            continue;
        }
        std::size_t n = 0;
        while (n < line.size() && line[n] > 32 && line[n] < 127 && line[n] != ':')
            ++n;
        std::size_t colon = n;
        while (colon < line.size() && isWsp(line[colon]))
            ++colon;
        if (n == 0 || colon >= line.size() || line[colon] != ':')
            break;
        names.push_back(Poco::toLower(line.substr(0, n)));
    }
    return names;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1)
        return 0;
    static const char* const headers[] = {"Delivered-To", "X-Original-To", "Envelope-To",
                                          "X-Envelope-To"};
    const std::uint8_t flags = data[0];
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);

    Account a;
    a.name = "fuzz";
    a.recipientSource = RecipientSource::Envelope;
    a.envelopeHeader = headers[flags & 3];
    a.envelopeHeaderSkip = (flags >> 2) & 3;
    a.localDomains = "company.example, xn--bcher-kva.example";
    a.recipientMap = "sales@company.example=sales-team, boss@old.example=alice";
    a.fallbackRecipient = (flags & 16) ? "postmaster" : "";

    std::ostringstream out;
    MessageRewriter rewriter(out, "");
    rewriter.collectEnvelope(a.envelopeHeader);
    rewriter.sputn(text.data(), static_cast<std::streamsize>(text.size()));
    const MessageFacts& facts = rewriter.finish();

    RecipientResolution res;
    try {
        res = resolveRecipients(a, facts.envelope);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, std::string("resolveRecipients threw: ") + e.what());
    }
    FUZZ_CHECK(res.deliverable() == !res.recipients.empty(),
               recipientVerdictName(res.verdict) + " for " + shown(text));
    std::set<std::string> seen;
    for (const std::string& r : res.recipients) {
        FUZZ_CHECK(seen.insert(r).second, "recipient twice: " + shown(r));
        FUZZ_CHECK(isLocalRecipientName(r), "recipient SMTP cannot carry: " + shown(r));
        const std::string domain = r.substr(r.rfind('@') + 1);
        FUZZ_CHECK(r == "postmaster" || r == "sales-team" || r == "alice" ||
                       domain == "company.example" || domain == "xn--bcher-kva.example",
                   "recipient nobody configured: " + shown(r));
        FUZZ_CHECK(r != "postmaster" || (flags & 16), "fallback without a fallback");
    }
    if (res.verdict == RecipientVerdict::Unreadable)
        FUZZ_CHECK(!res.usedFallback && res.recipients.empty(), "unreadable reached a recipient");
    if (facts.envelope.tooLarge || facts.envelope.tooMany)
        FUZZ_CHECK(res.verdict == RecipientVerdict::Unreadable, "oversized header was read");
    const std::string name = Poco::toLower(std::string(a.envelopeHeader));
    for (const std::string& n : fieldNames(out.str()))
        FUZZ_CHECK(n != name, "the envelope header left unrenamed in " + shown(out.str()));
    return 0;
}
