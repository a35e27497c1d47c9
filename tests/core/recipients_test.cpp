// recipients_test - who a fetched message goes to (core/recipients.cpp): a
// fixed account's deliver-to, a domain mailbox's envelope header counted from
// the top, local domains, the map, the fallback, and every way the header can
// be missing, forged or hostile (fails closed: quarantine, never To/Cc).
#define BOOST_TEST_MODULE recipients
#include "core/errors.h"
#include "core/recipients.h"

#include <boost/test/unit_test.hpp>
#include <sstream>
#include <string>
#include <vector>

using namespace popgate;

namespace popgate
{
std::ostream& boost_test_print_type(std::ostream& os, RecipientVerdict v)
{
    return os << recipientVerdictName(v);
}
} // namespace popgate

namespace
{

Account domainAccount()
{
    Account a;
    a.name = "company";
    a.server = "pop.provider.example";
    a.user = "catchall";
    a.mailbox = "catchall@provider.example";
    a.recipientSource = RecipientSource::Envelope;
    a.envelopeHeader = "Delivered-To";
    a.localDomains = "company.example, sub.company.example";
    a.recipientMap = "sales@company.example=sales-team, boss@old.example=alice";
    return a;
}

std::string join(const std::vector<std::string>& v)
{
    std::string out;
    for (const auto& s : v)
        out += (out.empty() ? "" : " ") + s;
    return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(table_of_envelope_headers)
{
    struct Row {
        const char* label;
        std::string message;
        int skip;
        std::string fallback;
        RecipientVerdict verdict;
        std::string recipients; // space-separated
        std::string refused;    // space-separated
    };
    const std::string body = "\r\nhello\r\n";
    const std::vector<Row> rows = {
        {"one local recipient", "Delivered-To: bob@company.example\r\nTo: x@y.example\r\n" + body,
         0, "", RecipientVerdict::Deliver, "bob@company.example", ""},
        {"case of header name and domain", "DELIVERED-TO: Bob@Company.EXAMPLE\r\n" + body, 0, "",
         RecipientVerdict::Deliver, "bob@company.example", ""},
        {"the topmost field counts",
         "Delivered-To: a@company.example\r\nDelivered-To: b@company.example\r\n" + body, 0, "",
         RecipientVerdict::Deliver, "a@company.example", ""},
        {"skip 1: the second from the top",
         "Delivered-To: a@company.example\r\nDelivered-To: b@company.example\r\n" + body, 1, "",
         RecipientVerdict::Deliver, "b@company.example", ""},
        {"skip beyond the fields: no recipient", "Delivered-To: a@company.example\r\n" + body, 1,
         "", RecipientVerdict::NoEnvelope, "", ""},
        {"sub-domain listed", "Delivered-To: c@sub.company.example\r\n" + body, 0, "",
         RecipientVerdict::Deliver, "c@sub.company.example", ""},
        {"map rewrites", "Delivered-To: sales@company.example\r\n" + body, 0, "",
         RecipientVerdict::Deliver, "sales-team", ""},
        {"map rewrites a foreign address", "Delivered-To: boss@old.example\r\n" + body, 0, "",
         RecipientVerdict::Deliver, "alice", ""},
        {"folded field", "Delivered-To:\r\n bob@company.example\r\n" + body, 0, "",
         RecipientVerdict::Deliver, "bob@company.example", ""},
        {"angle brackets", "Delivered-To: <bob@company.example>\r\n" + body, 0, "",
         RecipientVerdict::Deliver, "bob@company.example", ""},
        {"a list, each once",
         "Delivered-To: a@company.example, b@company.example, A@company.example\r\n" + body, 0, "",
         RecipientVerdict::Deliver, "a@company.example b@company.example", ""},
        {"foreign domain refused", "Delivered-To: x@other.example\r\n" + body, 0, "",
         RecipientVerdict::NoLocalRecipient, "", "x@other.example"},
        {"foreign domain to the fallback", "Delivered-To: x@other.example\r\n" + body, 0,
         "postmaster", RecipientVerdict::Deliver, "postmaster", ""},
        {"look-alike domain is foreign", "Delivered-To: x@evilcompany.example\r\n" + body, 0, "",
         RecipientVerdict::NoLocalRecipient, "", "x@evilcompany.example"},
        {"parent of a local domain is foreign", "Delivered-To: x@example\r\n" + body, 0, "",
         RecipientVerdict::NoLocalRecipient, "", "x@example"},
        {"one local, one foreign", "Delivered-To: a@company.example, x@other.example\r\n" + body, 0,
         "", RecipientVerdict::Deliver, "a@company.example", "x@other.example"},
        {"no header: quarantine", "To: bob@company.example\r\nCc: eve@company.example\r\n" + body,
         0, "", RecipientVerdict::NoEnvelope, "", ""},
        {"no header: fallback", "To: bob@company.example\r\n" + body, 0, "postmaster",
         RecipientVerdict::Deliver, "postmaster", ""},
        {"other envelope header is not read", "X-Original-To: bob@company.example\r\n" + body, 0,
         "", RecipientVerdict::NoEnvelope, "", ""},
        {"header in the body is not read",
         "Subject: x\r\n\r\nDelivered-To: bob@company.example\r\n", 0, "",
         RecipientVerdict::NoEnvelope, "", ""},
        {"garbage fails closed, even with a fallback", "Delivered-To: <<bob@@company\r\n" + body, 0,
         "postmaster", RecipientVerdict::Unreadable, "", ""},
        {"empty field fails closed", "Delivered-To: \r\n" + body, 0, "postmaster",
         RecipientVerdict::Unreadable, "", ""},
        {"null address fails closed", "Delivered-To: <>\r\n" + body, 0, "",
         RecipientVerdict::Unreadable, "", ""},
        {"address without domain fails closed", "Delivered-To: bob\r\n" + body, 0, "",
         RecipientVerdict::Unreadable, "", ""},
        {"control byte fails closed",
         std::string("Delivered-To: bob\x01@company.example\r\n") + body, 0, "",
         RecipientVerdict::Unreadable, "", ""},
        {"quoted local part with a blank fails closed",
         "Delivered-To: \"b ob\"@company.example\r\n" + body, 0, "", RecipientVerdict::Unreadable,
         "", ""},
        {"oversized field fails closed",
         "Delivered-To: " + std::string(5000, 'a') + "@company.example\r\n" + body, 0, "postmaster",
         RecipientVerdict::Unreadable, "", ""},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            Account a = domainAccount();
            a.envelopeHeaderSkip = r.skip;
            a.fallbackRecipient = r.fallback;
            const RecipientResolution res = recipientsForMessage(a, r.message);
            BOOST_TEST(res.verdict == r.verdict);
            BOOST_TEST(join(res.recipients) == r.recipients);
            std::vector<std::string> refused;
            for (const auto& x : res.refused)
                refused.push_back(x.address);
            BOOST_TEST(join(refused) == r.refused);
            BOOST_TEST(res.deliverable() == !res.recipients.empty());
            BOOST_TEST(res.deliverable() == res.detail.empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(no_envelope_recipient_is_the_reason)
{
    const auto res = recipientsForMessage(domainAccount(), "Subject: x\r\n\r\n");
    BOOST_TEST(res.detail.find("no envelope recipient") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(too_many_fields_or_addresses_fail_closed)
{
    Account a = domainAccount();
    a.fallbackRecipient = "postmaster";
    std::string many;
    for (std::size_t i = 0; i <= kMaxEnvelopeFields; ++i)
        many += "Delivered-To: u" + std::to_string(i) + "@company.example\r\n";
    BOOST_TEST(recipientsForMessage(a, many + "\r\n").verdict == RecipientVerdict::Unreadable);
    std::string list = "Delivered-To: ";
    for (std::size_t i = 0; i <= kMaxEnvelopeRecipients; ++i)
        list += (i ? ", u" : "u") + std::to_string(i) + "@company.example";
    BOOST_TEST(recipientsForMessage(a, list + "\r\n\r\n").verdict == RecipientVerdict::Unreadable);
}

BOOST_AUTO_TEST_CASE(each_envelope_header_name)
{
    for (const char* name : {"Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To"}) {
        BOOST_TEST_CONTEXT(name)
        {
            Account a = domainAccount();
            a.envelopeHeader = canonicalEnvelopeHeader(name);
            const auto res =
                recipientsForMessage(a, std::string("Delivered-To: wrong@company.example\r\n") +
                                            name + ": right@company.example\r\n\r\n");
            if (std::string(name) == "Delivered-To")
                BOOST_TEST(join(res.recipients) == "wrong@company.example");
            else
                BOOST_TEST(join(res.recipients) == "right@company.example");
        }
    }
    BOOST_CHECK_THROW(canonicalEnvelopeHeader("To"), InputError);
    BOOST_CHECK_THROW(canonicalEnvelopeHeader("Received"), InputError);
    BOOST_TEST(canonicalEnvelopeHeader("x-original-to") == "X-Original-To");
}

BOOST_AUTO_TEST_CASE(fixed_account_ignores_the_headers)
{
    Account a = domainAccount();
    a.recipientSource = RecipientSource::Fixed;
    a.deliverTo = "helpdesk, ops@company.example";
    const auto res = recipientsForMessage(a, "Delivered-To: bob@company.example\r\n\r\n");
    BOOST_TEST(res.deliverable());
    BOOST_TEST(join(res.recipients) == "helpdesk ops@company.example");
}

BOOST_AUTO_TEST_CASE(envelope_header_is_renamed_on_the_way)
{
    std::ostringstream out;
    MessageRewriter rw(out, "");
    rw.collectEnvelope("Delivered-To");
    const std::string in = "Delivered-To: bob@company.example\r\nSubject: s\r\ndelivered-to: "
                           "x@y.example\r\n\r\nDelivered-To: body@company.example\r\n";
    rw.sputn(in.data(), static_cast<std::streamsize>(in.size()));
    const MessageFacts& f = rw.finish();
    BOOST_TEST(out.str() == "X-Fetched-Delivered-To: bob@company.example\r\nSubject: s\r\n"
                            "X-Fetched-delivered-to: x@y.example\r\n\r\n"
                            "Delivered-To: body@company.example\r\n");
    BOOST_TEST(f.envelope.values.size() == 2u);
    BOOST_TEST(f.envelope.values[0] == "bob@company.example");
}

BOOST_AUTO_TEST_CASE(map_and_domains_parse_or_refuse)
{
    struct Row {
        const char* label;
        const char* map;
        bool ok;
    };
    const std::vector<Row> rows = {
        {"empty", "", true},
        {"two entries", "a@x.example=alice, b@x.example=bob@y.example", true},
        {"no equals sign", "a@x.example", false},
        {"no domain in the key", "a=alice", false},
        {"blank in the recipient", "a@x.example=al ice", false},
        {"angle bracket in the recipient", "a@x.example=<alice>", false},
        {"mapped twice", "a@x.example=alice, A@X.example=bob", false},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            Account a;
            if (r.ok)
                BOOST_CHECK_NO_THROW(setAccountField(a, "recipient-map", r.map));
            else
                BOOST_CHECK_THROW(setAccountField(a, "recipient-map", r.map), InputError);
        }
    }
    Account a;
    setAccountField(a, "local-domains", "Company.Example, bücher.example");
    BOOST_TEST(a.localDomains == "company.example, xn--bcher-kva.example");
    BOOST_CHECK_THROW(setAccountField(a, "local-domains", "a b"), InputError);
    BOOST_CHECK_THROW(setAccountField(a, "recipients", "to-cc"), InputError);
    BOOST_CHECK_THROW(setAccountField(a, "envelope-header-skip", "17"), InputError);
    BOOST_CHECK_THROW(setAccountField(a, "fallback-recipient", "a b"), InputError);
}

BOOST_AUTO_TEST_CASE(validation_requires_an_explicit_envelope)
{
    Account a = domainAccount();
    a.sealedSecret = "gcm1:x";
    BOOST_TEST(validateAccount(a).ok());
    a.envelopeHeader.clear();
    BOOST_TEST(!validateAccount(a).ok());
    a = domainAccount();
    a.sealedSecret = "gcm1:x";
    a.localDomains.clear();
    a.recipientMap.clear();
    BOOST_TEST(!validateAccount(a).ok());
    a = domainAccount();
    a.sealedSecret = "gcm1:x";
    a.recipientSource = RecipientSource::Fixed;
    const auto check = validateAccount(a);
    BOOST_TEST(check.ok());
    BOOST_TEST(!check.warnings.empty()); // envelope fields on a fixed account
}
