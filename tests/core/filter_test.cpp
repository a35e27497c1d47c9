#define BOOST_TEST_MODULE filter_test
#include <boost/test/unit_test.hpp>

// filter_test - core/filter.cpp: the B.3 test vectors, pattern semantics,
// verdict texts and steps, inbound sender/From, limits, and properties over
// random filters (fixed seed). Table-driven; one label per row.
#include "core/errors.h"
#include "core/filter.h"

#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace popgate;

namespace popgate
{ // how Boost.Test prints the enums in failure messages
std::ostream& boost_test_print_type(std::ostream& os, AddressField f)
{
    return os << fieldName(f);
}
std::ostream& boost_test_print_type(std::ostream& os, FilterType t)
{
    return os << filterTypeName(t);
}
std::ostream& boost_test_print_type(std::ostream& os, Rule r)
{
    return os << "Rule(" << static_cast<int>(r) << ")";
}
} // namespace popgate

namespace
{

using Strings = std::vector<std::string>;

EmailAddressFilter deny(const std::string& name, Strings domains, Strings exceptions = {})
{
    EmailAddressFilter f;
    f.name = name;
    f.type = FilterType::Deny;
    f.domains = std::move(domains);
    f.exceptions = std::move(exceptions);
    return f;
}

EmailAddressFilter allow(const std::string& name, Strings domains, Strings exceptions = {})
{
    EmailAddressFilter f = deny(name, std::move(domains), std::move(exceptions));
    f.type = FilterType::Allow;
    return f;
}

EmailAddressFilter inactive(EmailAddressFilter f)
{
    f.active = false;
    return f;
}

SystemAddressFilter system(std::vector<EmailAddressFilter> filters,
                           const std::string& name = "inbound-default")
{
    SystemAddressFilter s;
    s.name = name;
    s.addressFilters = std::move(filters);
    return s;
}

void checkInputError(const std::function<void()>& f, const std::string& part)
{
    try {
        f();
        BOOST_ERROR("no InputError; expected one containing: " << part);
    } catch (const InputError& e) {
        BOOST_TEST(std::string(e.what()).find(part) != std::string::npos,
                   "message \"" << e.what() << "\" lacks \"" << part << "\"");
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(decides_as_specified)
{
    struct Row {
        const char* label;
        std::vector<EmailAddressFilter> filters;
        std::string address;
        bool blocked;
    };
    const std::vector<Row> rows = {
        // B.3 FLT-8 vectors
        {"deny{bad.com}: bad blocked", {deny("d", {"bad.com"})}, "x@bad.com", true},
        {"deny{bad.com}: ok allowed", {deny("d", {"bad.com"})}, "x@ok.com", false},
        {"allow{corp.com}: corp allowed", {allow("a", {"corp.com"})}, "x@corp.com", false},
        {"allow{corp.com}: other blocked (implicit)",
         {allow("a", {"corp.com"})},
         "x@other.com",
         true},
        {"deny{bad.com}+allow{bad.com}: allow beats deny",
         {deny("d", {"bad.com"}), allow("a", {"bad.com"})},
         "x@bad.com",
         false},
        {"allow before deny: order does not matter",
         {allow("a", {"bad.com"}), deny("d", {"bad.com"})},
         "x@bad.com",
         false},
        {"deny{bad.com, boss}: boss allowed",
         {deny("d", {"bad.com"}, {"boss@bad.com"})},
         "boss@bad.com",
         false},
        {"deny{bad.com, boss}: others still blocked",
         {deny("d", {"bad.com"}, {"boss@bad.com"})},
         "x@bad.com",
         true},
        {"allow{corp.com, leaver}: leaver blocked",
         {allow("a", {"corp.com"}, {"leaver@corp.com"})},
         "leaver@corp.com",
         true},
        {"allow{corp.com, leaver}: staff allowed",
         {allow("a", {"corp.com"}, {"leaver@corp.com"})},
         "staff@corp.com",
         false},
        {"deny{a.com}+deny{b.com}: a blocked",
         {deny("d1", {"a.com"}), deny("d2", {"b.com"})},
         "x@a.com",
         true},
        {"deny{a.com}+deny{b.com}: b blocked",
         {deny("d1", {"a.com"}), deny("d2", {"b.com"})},
         "x@b.com",
         true},
        {"deny{a.com}+deny{b.com}: c allowed",
         {deny("d1", {"a.com"}), deny("d2", {"b.com"})},
         "x@c.com",
         false},
        {"deny{*.com}+allow{corp.com}: corp allowed",
         {deny("d", {"*.com"}), allow("a", {"corp.com"})},
         "x@corp.com",
         false},
        {"deny{*.com}+allow{corp.com}: other blocked",
         {deny("d", {"*.com"}), allow("a", {"corp.com"})},
         "x@other.com",
         true},
        {"case: X@BAD.COM as x@bad.com", {deny("d", {"bad.com"})}, "X@BAD.COM", true},
        {"case: pattern BAD.Com", {deny("d", {"BAD.Com"})}, "x@bad.com", true},
        {"display-name form", {deny("d", {"bad.com"})}, "Spammer <X@Bad.Com>", true},
        // exact domain vs sub-domains
        {"exact does not cover sub-domain",
         {deny("d", {"example.com"})},
         "x@mail.example.com",
         false},
        {"*.example.com: sub-domain", {deny("d", {"*.example.com"})}, "x@mail.example.com", true},
        {"*.example.com: deep sub-domain",
         {deny("d", {"*.example.com"})},
         "x@a.b.example.com",
         true},
        {"*.example.com: not the domain itself",
         {deny("d", {"*.example.com"})},
         "x@example.com",
         false},
        {"*.example.com: not a look-alike suffix",
         {deny("d", {"*.example.com"})},
         "x@badexample.com",
         false},
        {"*.com: any .com", {deny("d", {"*.com"})}, "x@a.b.com", true},
        {"*.com: not .org", {deny("d", {"*.com"})}, "x@a.org", false},
        {"* alone: everything", {deny("d", {"*"})}, "x@anything.example", true},
        {"* alone on an allow list: everything allowed", {allow("a", {"*"})}, "x@a.example", false},
        // '*' inside a pattern: one or more characters, dots included
        {"mail*.example.com: mail1",
         {deny("d", {"mail*.example.com"})},
         "x@mail1.example.com",
         true},
        {"mail*.example.com: dots included",
         {deny("d", {"mail*.example.com"})},
         "x@mail.eu.example.com",
         true},
        {"mail*.example.com: star needs a character",
         {deny("d", {"mail*.example.com"})},
         "x@mail.example.com",
         false},
        {"*bad*: inside", {deny("d", {"*bad*"})}, "x@verybadhost.com", true},
        {"*bad*: not at the start", {deny("d", {"*bad*"})}, "x@bad.com", false},
        {"a*b*c: several stars", {deny("d", {"a*b*c"})}, "x@a.xbx.c", true},
        {"a*b*c: overlap refused", {deny("d", {"a*b*c"})}, "x@abc", false},
        {"**: same as one star", {deny("d", {"x**.com"})}, "x@xy.com", true},
        // exceptions
        {"exception is case-insensitive",
         {deny("d", {"bad.com"}, {"Boss@Bad.com"})},
         "BOSS@bad.COM",
         false},
        {"wildcard exception",
         {deny("d", {"example.com"}, {"*-noreply@example.com"})},
         "shop-noreply@example.com",
         false},
        {"wildcard exception needs a character",
         {deny("d", {"example.com"}, {"*-noreply@example.com"})},
         "-noreply@example.com",
         true},
        {"exception with wildcard domain", {deny("d", {"*.com"}, {"boss@*"})}, "boss@x.com", false},
        {"deny-list exception for an unlisted domain: no opinion",
         {deny("d", {"bad.com"}, {"x@other.com"}), deny("e", {"other.com"})},
         "x@other.com",
         true},
        {"allow-list exception for an unlisted domain: allowed",
         {allow("a", {"corp.com"}, {"partner@vendor.com"})},
         "partner@vendor.com",
         false},
        {"allow-list, unlisted domain, no exception",
         {allow("a", {"corp.com"}, {"partner@vendor.com"})},
         "other@vendor.com",
         true},
        {"quoted local part exception",
         {deny("d", {"example.com"}, {"\"john doe\"@example.com"})},
         "\"John Doe\"@example.com",
         false},
        {"quoted local part, other person",
         {deny("d", {"example.com"}, {"\"john doe\"@example.com"})},
         "john@example.com",
         true},
        // IDN
        {"U-label pattern, A-label address",
         {deny("d", {"bücher.example"})},
         "x@xn--bcher-kva.example",
         true},
        {"A-label pattern, U-label address",
         {deny("d", {"xn--bcher-kva.example"})},
         "x@BÜCHER.example",
         true},
        {"U-label sub-domain pattern",
         {deny("d", {"*.bücher.example"})},
         "x@shop.bücher.example",
         true},
        {"IDN exception",
         {deny("d", {"bücher.example"}, {"chef@BÜCHER.example"})},
         "chef@xn--bcher-kva.example",
         false},
        {"different IDN not matched", {deny("d", {"bücher.example"})}, "x@bucher.example", false},
        // domain literal
        {"domain literal", {deny("d", {"[192.0.2.1]"})}, "x@[192.0.2.1]", true},
        // inactive address filters are skipped
        {"inactive deny skipped", {inactive(deny("d", {"bad.com"}))}, "x@bad.com", false},
        {"inactive allow does not restrict",
         {inactive(allow("a", {"corp.com"}))},
         "x@other.com",
         false},
        {"inactive allow does not rescue",
         {deny("d", {"bad.com"}), inactive(allow("a", {"bad.com"}))},
         "x@bad.com",
         true},
        {"no address filters", {}, "x@bad.com", false},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            CompiledFilter f(system(r.filters));
            Verdict v = f.checkAddress(r.address, AddressField::EnvelopeSender);
            BOOST_TEST(v.blocked == r.blocked, v.reason);
            BOOST_TEST(v.steps.size() == r.filters.size());
        }
    }
}

BOOST_AUTO_TEST_CASE(verdict_reasons)
{
    struct Row {
        const char* label;
        std::vector<EmailAddressFilter> filters;
        std::string address;
        std::string reason;
    };
    const std::vector<Row> rows = {
        {"deny by domain",
         {deny("spam-domains", {"bad.com"})},
         "x@bad.com",
         "sender <x@bad.com> blocked by system filter \"inbound-default\", address filter "
         "\"spam-domains\" (deny, domain bad.com)"},
        {"address shown as written, pattern as configured",
         {deny("spam-domains", {"*.Bad.com"})},
         "Spammer <X@Mail.BAD.com>",
         "sender <X@Mail.BAD.com> blocked by system filter \"inbound-default\", address filter "
         "\"spam-domains\" (deny, domain *.Bad.com)"},
        {"implicit deny of an allow list",
         {allow("staff", {"corp.com"})},
         "x@other.com",
         "sender <x@other.com> blocked by system filter \"inbound-default\", address filter "
         "\"staff\" (allow, domain not listed)"},
        {"exception on an allow list",
         {allow("staff", {"corp.com"}, {"leaver@corp.com"})},
         "leaver@corp.com",
         "sender <leaver@corp.com> blocked by system filter \"inbound-default\", address filter "
         "\"staff\" (allow, exception leaver@corp.com)"},
        {"exception on a deny list",
         {deny("spam", {"bad.com"}, {"boss@bad.com"})},
         "boss@bad.com",
         "sender <boss@bad.com> allowed by system filter \"inbound-default\", address filter "
         "\"spam\" (deny, exception boss@bad.com)"},
        {"allow beats deny",
         {deny("tlds", {"*.com"}), allow("partners", {"corp.com"})},
         "x@corp.com",
         "sender <x@corp.com> allowed by system filter \"inbound-default\", address filter "
         "\"partners\" (allow, domain corp.com), which beats address filter \"tlds\" (deny, "
         "domain *.com)"},
        {"no deny at all",
         {deny("spam", {"bad.com"})},
         "x@ok.com",
         "sender <x@ok.com> allowed by system filter \"inbound-default\" (no address filter "
         "denies it)"},
        {"quoted local part shown quoted",
         {deny("spam", {"bad.com"})},
         "\"john doe\"@bad.com",
         "sender <\"john doe\"@bad.com> blocked by system filter \"inbound-default\", address "
         "filter \"spam\" (deny, domain bad.com)"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            Verdict v = CompiledFilter(system(r.filters))
                            .checkAddress(r.address, AddressField::EnvelopeSender);
            BOOST_TEST(v.reason == r.reason);
            BOOST_TEST(v.addresses.size() == 1u);
            BOOST_TEST(v.addresses[0].reason == r.reason);
        }
    }
}

BOOST_AUTO_TEST_CASE(verdict_struct_names_address_filter_and_rule)
{
    CompiledFilter f(system({deny("tlds", {"*.com"}), allow("partners", {"corp.com"}),
                             allow("staff", {"corp.com"}, {"leaver@corp.com"})}));
    Verdict v = f.checkAddress("leaver@corp.com", AddressField::HeaderFrom);
    BOOST_TEST(!v.blocked); // partners allows it
    const AddressVerdict& a = v.addresses.at(0);
    BOOST_TEST(a.field == AddressField::HeaderFrom);
    BOOST_TEST(a.address == "leaver@corp.com");
    BOOST_TEST(a.addressFilter == "partners");
    BOOST_TEST(a.rule == Rule::Domain);
    BOOST_TEST(a.pattern == "corp.com");
    BOOST_TEST(a.overriddenFilter == "tlds");
    BOOST_TEST(a.overriddenPattern == "*.com");
    BOOST_TEST(v.blocker() == nullptr);

    Verdict b = f.checkAddress("x@other.com", AddressField::Recipient);
    BOOST_TEST(b.blocked);
    BOOST_REQUIRE(b.blocker() != nullptr);
    BOOST_TEST(b.blocker()->addressFilter == "tlds");
    BOOST_TEST(b.blocker()->type == FilterType::Deny);
    BOOST_TEST(b.blocker()->rule == Rule::Domain);
    BOOST_TEST(b.systemFilter == "inbound-default");
    BOOST_TEST(b.reason.rfind("recipient <x@other.com> blocked", 0) == 0);
}

BOOST_AUTO_TEST_CASE(every_step_is_recorded)
{
    CompiledFilter f(system({deny("tlds", {"*.com"}), inactive(deny("old", {"bad.com"})),
                             allow("staff", {"corp.com"}, {"leaver@corp.com"}),
                             deny("spam", {"bad.com"}, {"boss@bad.com"}),
                             allow("vendors", {"vendor.example"}, {"x@corp.com"})}));
    Verdict v = f.checkAddress("x@corp.com", AddressField::EnvelopeSender);
    const Strings expected = {
        "sender <x@corp.com>: address filter \"tlds\" (deny): DENY (domain *.com)",
        "sender <x@corp.com>: address filter \"old\" (deny): skipped (inactive)",
        "sender <x@corp.com>: address filter \"staff\" (allow): ALLOW (domain corp.com)",
        "sender <x@corp.com>: address filter \"spam\" (deny): no opinion (domain not listed)",
        "sender <x@corp.com>: address filter \"vendors\" (allow): ALLOW (domain not listed, "
        "exception x@corp.com)",
    };
    Strings texts;
    for (const FilterStep& s : v.steps)
        texts.push_back(s.text());
    BOOST_TEST(texts == expected, boost::test_tools::per_element());

    Verdict w = f.checkAddress("boss@bad.com", AddressField::EnvelopeSender);
    BOOST_TEST(w.steps.at(3).text() == "sender <boss@bad.com>: address filter \"spam\" (deny): "
                                       "ALLOW (domain bad.com listed, exception boss@bad.com)");
    BOOST_TEST(w.steps.at(2).text() == "sender <boss@bad.com>: address filter \"staff\" (allow): "
                                       "DENY (domain not listed)");
}

BOOST_AUTO_TEST_CASE(inbound_tests_sender_and_from)
{
    struct Row {
        const char* label;
        bool allowNullSender;
        std::string sender;
        std::string from;
        bool blocked;
        std::string reason; // prefix
    };
    const std::vector<Row> rows = {
        {"both fine", true, "a@ok.com", "b@ok.com", false, "sender <a@ok.com> allowed"},
        {"bad From", true, "a@ok.com", "Bad Guy <x@bad.com>", true,
         "From <x@bad.com> blocked by system filter \"inbound-default\", address filter "
         "\"spam\" (deny, domain bad.com)"},
        {"bad sender", true, "<x@bad.com>", "b@ok.com", true, "sender <x@bad.com> blocked"},
        {"second mailbox of From", true, "a@ok.com", "b@ok.com, c@bad.com", true,
         "From <c@bad.com> blocked"},
        {"null sender <> allowed by default", true, "<>", "b@ok.com", false,
         "sender <> allowed by system filter \"inbound-default\" (null sender, bounces allowed)"},
        {"empty sender is the null sender", true, "", "b@ok.com", false, "sender <> allowed"},
        {"null sender refused when configured", false, "<>", "b@ok.com", true,
         "sender <> blocked by system filter \"inbound-default\" (null sender, bounces not "
         "allowed)"},
        {"null sender allowed, From still tested", true, "<>", "x@bad.com", true,
         "From <x@bad.com> blocked"},
        {"no From header", true, "a@ok.com", "", false, "sender <a@ok.com> allowed"},
    };
    EmailAddressFilter spam = deny("spam", {"bad.com"});
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            FilterOptions options;
            options.allowNullSender = r.allowNullSender;
            CompiledFilter f(system({spam}), options);
            Verdict v = f.checkInbound(r.sender, r.from);
            BOOST_TEST(v.blocked == r.blocked);
            BOOST_TEST(v.reason.rfind(r.reason, 0) == 0, v.reason);
        }
    }
    CompiledFilter f(system({spam}));
    Verdict both = f.checkInbound("a@ok.com", "b@ok.com");
    BOOST_TEST(both.addresses.size() == 2u);
    BOOST_TEST(both.reason == "sender <a@ok.com> allowed by system filter \"inbound-default\" (no "
                              "address filter denies it); From <b@ok.com> allowed by system "
                              "filter \"inbound-default\" (no address filter denies it)");
    checkInputError([&] { f.checkInbound("a@ok.com", "not an address"); },
                    "malformed address \"not an address\": no '@'");
    checkInputError([&] { f.checkInbound("x y@ok.com", "b@ok.com"); }, "malformed address");
}

BOOST_AUTO_TEST_CASE(inactive_system_filter_allows)
{
    SystemAddressFilter s = system({deny("spam", {"*"})});
    s.active = false;
    FilterOptions options;
    options.allowNullSender = false;
    CompiledFilter f(s, options);
    Verdict v = f.checkInbound("<>", "x@bad.com");
    BOOST_TEST(!v.blocked);
    BOOST_TEST(v.addresses.at(1).reason ==
               "From <x@bad.com> allowed: system filter \"inbound-default\" is inactive");
}

BOOST_AUTO_TEST_CASE(validation_and_limits)
{
    struct Row {
        const char* label;
        SystemAddressFilter filter;
        FilterLimits limits;
        std::string message; // empty: valid
    };
    auto many = [](std::size_t n, const std::string& suffix) {
        Strings out;
        for (std::size_t i = 0; i < n; ++i)
            out.push_back("d" + std::to_string(i) + suffix);
        return out;
    };
    auto manyFilters = [&](std::size_t n) {
        std::vector<EmailAddressFilter> out;
        for (std::size_t i = 0; i < n; ++i)
            out.push_back(deny("f" + std::to_string(i), {"x.com"}));
        return out;
    };
    FilterLimits small;
    small.maxDomains = 2;
    small.maxExceptions = 1;
    small.maxAddressFilters = 1;
    const std::vector<Row> rows = {
        {"100 domains, 1000 exceptions, 100 filters",
         system([&] {
             auto fs = manyFilters(99);
             fs.push_back(deny("big", many(100, ".com"), many(1000, "@x.com")));
             return fs;
         }()),
         {},
         ""},
        {"101 domains",
         system({deny("big", many(101, ".com"))}),
         {},
         "system filter \"inbound-default\": address filter \"big\": 101 domains; the limit is "
         "100"},
        {"1001 exceptions",
         system({deny("big", {"x.com"}, many(1001, "@x.com"))}),
         {},
         "system filter \"inbound-default\": address filter \"big\": 1001 exceptions; the limit "
         "is 1000"},
        {"101 address filters",
         system(manyFilters(101)),
         {},
         "system filter \"inbound-default\": 101 address filters; the limit is 100"},
        {"configured domain limit", system({deny("d", many(3, ".com"))}), small,
         "address filter \"d\": 3 domains; the limit is 2"},
        {"configured exception limit", system({deny("d", {"x.com"}, many(2, "@x.com"))}), small,
         "address filter \"d\": 2 exceptions; the limit is 1"},
        {"configured filter limit", system(manyFilters(2)), small,
         "system filter \"inbound-default\": 2 address filters; the limit is 1"},
        {"double dot",
         system({deny("spam", {"bad..com"})}),
         {},
         "system filter \"inbound-default\": address filter \"spam\": domain pattern: malformed "
         "domain \"bad..com\": empty label"},
        {"address as domain",
         system({deny("spam", {"boss@bad.com"})}),
         {},
         "domain pattern \"boss@bad.com\" contains '@'; put addresses in the exceptions"},
        {"leading dot",
         system({deny("spam", {".bad.com"})}),
         {},
         "domain pattern \".bad.com\" starts with '.'; write \"*.bad.com\" for its sub-domains"},
        {"empty domain pattern", system({deny("spam", {""})}), {}, "empty domain"},
        {"exception without @",
         system({deny("spam", {"bad.com"}, {"boss"})}),
         {},
         "address filter \"spam\": exception: malformed address pattern \"boss\": no '@'"},
        {"bad system filter name",
         system({}, "in bound"),
         {},
         "system filter \"in bound\": a name is 1-64 characters"},
        {"empty address filter name",
         system({deny("", {"bad.com"})}),
         {},
         "address filter \"\": a name is 1-64 characters"},
    };
    for (const Row& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            if (r.message.empty()) {
                BOOST_CHECK_NO_THROW(validateSystemFilter(r.filter, r.limits));
                BOOST_CHECK_NO_THROW(CompiledFilter(r.filter, {}, r.limits));
            } else {
                checkInputError([&] { validateSystemFilter(r.filter, r.limits); }, r.message);
                checkInputError([&] { CompiledFilter(r.filter, {}, r.limits); }, r.message);
            }
        }
    }
    checkInputError([] { validateAddressFilter(deny("spam", {"*.bü*cher.example"})); },
                    "address filter \"spam\": domain pattern");
}

BOOST_AUTO_TEST_CASE(names_parse_and_print)
{
    BOOST_TEST(filterTypeName(parseFilterType("allow")) == "allow");
    BOOST_TEST(filterTypeName(parseFilterType("deny")) == "deny");
    BOOST_TEST(directionName(parseDirection("inbound")) == "inbound");
    BOOST_TEST(directionName(parseDirection("outbound")) == "outbound");
    checkInputError([] { parseFilterType("block"); }, "expected allow or deny");
    checkInputError([] { parseDirection("in"); }, "expected inbound or outbound");
}

// --- properties over random filters (fixed seed) -----------------------------

namespace
{

const Strings kDomains = {"a.com",      "b.com",     "corp.com",       "x.corp.com",
                          "mail.b.com", "other.org", "bücher.example", "xn--mnchen-3ya.example"};
const Strings kDomainPatterns = {
    "a.com", "b.com", "corp.com",  "other.org", "*.com",          "*.corp.com",
    "*",     "*.org", "mail*.com", "*b*",       "bücher.example", "münchen.example"};
const Strings kLocals = {"x", "boss", "Leaver", "john.doe", "\"john doe\"", "shop-noreply"};
const Strings kExceptionPatterns = {"boss@a.com",      "leaver@corp.com", "*@corp.com",
                                    "boss@*",          "*-noreply@b.com", "\"John Doe\"@other.org",
                                    "x@BÜCHER.example"};

template <class T> const T& pickFrom(std::mt19937& rng, const std::vector<T>& v)
{
    return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)];
}

EmailAddressFilter randomFilter(std::mt19937& rng, const std::string& name, bool forceAllow)
{
    std::uniform_int_distribution<int> count(0, 3), coin(0, 1), rare(0, 5);
    EmailAddressFilter f = deny(name, {});
    f.type = forceAllow || coin(rng) ? FilterType::Allow : FilterType::Deny;
    for (int n = count(rng) + (forceAllow ? 0 : 1); n > 0; --n)
        f.domains.push_back(pickFrom(rng, kDomainPatterns));
    for (int n = count(rng) - 1; n > 0; --n)
        f.exceptions.push_back(pickFrom(rng, kExceptionPatterns));
    f.active = forceAllow || rare(rng) != 0;
    return f;
}

SystemAddressFilter randomSystem(std::mt19937& rng)
{
    std::vector<EmailAddressFilter> fs;
    for (int n = std::uniform_int_distribution<int>(0, 4)(rng); n > 0; --n)
        fs.push_back(randomFilter(rng, "f" + std::to_string(fs.size()), false));
    return system(fs);
}

bool anyAllow(const Verdict& v)
{
    for (const FilterStep& s : v.steps)
        if (s.opinion == Opinion::Allow)
            return true;
    return false;
}

bool hasActiveAllowList(const SystemAddressFilter& s)
{
    for (const EmailAddressFilter& f : s.addressFilters)
        if (f.active && f.type == FilterType::Allow)
            return true;
    return false;
}

} // namespace

// Adding an allow list L can block an allowed address only through L's own
// implicit deny ("all other domains are disallowed", SN item 66); it never
// blocks an address it allows, nor one that another filter allows, and never
// when the system filter already held an active allow list.
BOOST_AUTO_TEST_CASE(adding_an_allow_list_never_blocks_an_allowed_address)
{
    std::mt19937 rng(20240501);
    int checked = 0, soloDenials = 0;
    for (int round = 0; round < 3000; ++round) {
        SystemAddressFilter before = randomSystem(rng);
        EmailAddressFilter extra = randomFilter(rng, "added", true);
        SystemAddressFilter after = before;
        std::size_t at =
            std::uniform_int_distribution<std::size_t>(0, after.addressFilters.size())(rng);
        after.addressFilters.insert(after.addressFilters.begin() + static_cast<long>(at), extra);
        std::string address = pickFrom(rng, kLocals) + "@" + pickFrom(rng, kDomains);
        if (std::uniform_int_distribution<int>(0, 3)(rng) == 0)
            address = "Some One <" + address + ">";

        Verdict b = CompiledFilter(before).checkAddress(address, AddressField::HeaderFrom);
        Verdict a = CompiledFilter(after).checkAddress(address, AddressField::HeaderFrom);
        Verdict solo =
            CompiledFilter(system({extra})).checkAddress(address, AddressField::HeaderFrom);
        if (b.blocked)
            continue;
        ++checked;
        BOOST_TEST_CONTEXT("round " << round << ": " << address << "; before: " << b.reason
                                    << "; after: " << a.reason)
        {
            if (!solo.blocked || anyAllow(b) || hasActiveAllowList(before))
                BOOST_TEST(!a.blocked);
            else
                ++soloDenials; // only L's own implicit/exception deny can block
            if (a.blocked)
                BOOST_TEST(a.blocker()->addressFilter == "added");
        }
    }
    BOOST_TEST(checked > 1000);
    BOOST_TEST(soloDenials > 0); // the implicit deny of a lone allow list is exercised
}

// An allow list that lists the domain (no exception) always lets the address in.
BOOST_AUTO_TEST_CASE(listing_a_domain_on_an_allow_list_always_allows_it)
{
    std::mt19937 rng(7);
    for (int round = 0; round < 2000; ++round) {
        SystemAddressFilter s = randomSystem(rng);
        std::string domain = pickFrom(rng, kDomains);
        std::string address = pickFrom(rng, kLocals) + "@" + domain;
        s.addressFilters.push_back(allow("rescue", {domain}));
        BOOST_TEST_CONTEXT("round " << round << ": " << address)
        {
            BOOST_TEST(
                !CompiledFilter(s).checkAddress(address, AddressField::EnvelopeSender).blocked);
        }
    }
}

// Adding a deny list without exceptions never lets a blocked address through.
BOOST_AUTO_TEST_CASE(adding_a_deny_list_never_allows_a_blocked_address)
{
    std::mt19937 rng(11);
    for (int round = 0; round < 2000; ++round) {
        SystemAddressFilter s = randomSystem(rng);
        std::string address = pickFrom(rng, kLocals) + "@" + pickFrom(rng, kDomains);
        bool before = CompiledFilter(s).checkAddress(address, AddressField::EnvelopeSender).blocked;
        EmailAddressFilter d = randomFilter(rng, "more", false);
        d.type = FilterType::Deny;
        d.exceptions.clear();
        s.addressFilters.push_back(d);
        bool after = CompiledFilter(s).checkAddress(address, AddressField::EnvelopeSender).blocked;
        BOOST_TEST_CONTEXT("round " << round << ": " << address)
        {
            BOOST_TEST((!before || after));
        }
    }
}
