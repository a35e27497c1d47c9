// filter.h - system address filters (issue [B]): the model, its validation,
// and the compiled form that decides whether an address or a message is
// blocked and says why. Pure: no I/O, no store, no logging; the daemon, the
// milter and `popgatectl filter test` all ask this one engine.
// The matching rules are written once, at the top of filter.cpp.
#pragma once

#include "core/address.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace popgate
{

enum class FilterType { Allow, Deny };
enum class Direction { Inbound, Outbound };

/// filterTypeName - "allow" | "deny".  directionName - "inbound" | "outbound".
std::string filterTypeName(FilterType type);
std::string directionName(Direction direction);
/// parseFilterType / parseDirection - throw InputError naming the accepted values.
FilterType parseFilterType(const std::string& text);
Direction parseDirection(const std::string& text);

/// One allow or deny list (SN "Email Address Filter").
struct EmailAddressFilter {
    std::int64_t id = 0;
    std::string name;
    FilterType type = FilterType::Deny;
    std::vector<std::string> domains;    ///< "example.com", "*.example.com", "*.com", "*"
    std::vector<std::string> exceptions; ///< address patterns, '*' allowed
    bool active = true;
};

/// A named bundle of address filters with a direction (SN "System Address Filter").
struct SystemAddressFilter {
    std::int64_t id = 0;
    std::string name;
    Direction direction = Direction::Inbound;
    bool active = true;
    bool isDefault = false;
    std::string description;
    std::vector<EmailAddressFilter> addressFilters; ///< resolved, in evaluation order
};

struct FilterLimits {
    std::size_t maxDomains = 100;        ///< per address filter
    std::size_t maxExceptions = 1000;    ///< per address filter
    std::size_t maxAddressFilters = 100; ///< per system filter
};

struct FilterOptions {
    bool allowNullSender = true; ///< the bounce policy: let "<>" through so DSNs arrive
};

/// validateAddressFilter - throws InputError `address filter "N": ...` for a bad
/// name, type-independent limits or a pattern that does not parse.
void validateAddressFilter(const EmailAddressFilter& filter, const FilterLimits& limits = {});
/// validateSystemFilter - throws InputError `system filter "N": ...` (the address
/// filter's own message is included) on the first fault found.
void validateSystemFilter(const SystemAddressFilter& filter, const FilterLimits& limits = {});

enum class Opinion { None, Allow, Deny };
enum class Rule {
    None,       ///< deny list that does not list the domain, or no filter decided
    Domain,     ///< a domain pattern matched
    Exception,  ///< an exception pattern matched and inverted the verdict
    Implicit,   ///< allow list that does not list the domain
    NullSender, ///< "<>" judged by the bounce policy
    Inactive,   ///< the system filter (or address filter, in a step) is inactive
};
enum class AddressField { EnvelopeSender, HeaderFrom, Recipient };

/// fieldName - "sender" | "From" | "recipient", as in verdict texts.
std::string fieldName(AddressField field);
/// ruleText - e.g. "deny, domain bad.com", "allow, domain not listed".
std::string ruleText(FilterType type, Rule rule, const std::string& pattern);

/// One address filter's look at one address (or one policy step).
struct FilterStep {
    AddressField field = AddressField::EnvelopeSender;
    std::string address;       ///< addr-spec as written; "" for <>
    std::string addressFilter; ///< empty for a step of the system filter itself
    FilterType type = FilterType::Deny;
    Opinion opinion = Opinion::None;
    Rule rule = Rule::None;
    std::string pattern;  ///< the domain or exception pattern that decided, as configured
    std::string listedBy; ///< the domain pattern that listed the domain; empty if none

    /// text - one line, e.g. `sender <x@bad.com>: address filter "spam" (deny): DENY (domain
    /// bad.com)`.
    std::string text() const;
};

/// The decision for one address. For a blocked address, addressFilter/rule
/// name the first filter that denied it; for an allowed one, the first that
/// allowed it (then overridden* name the deny it beat), or none at all.
struct AddressVerdict {
    AddressField field = AddressField::EnvelopeSender;
    std::string address; ///< addr-spec as written; "" for <>
    std::string key;     ///< the comparison form that was matched
    bool blocked = false;
    std::string addressFilter;
    FilterType type = FilterType::Deny;
    Rule rule = Rule::None;
    std::string pattern;
    std::string overriddenFilter; ///< a deny beaten by the allow above; empty if none
    Rule overriddenRule = Rule::None;
    std::string overriddenPattern;
    std::string reason; ///< one line, see Verdict::reason
};

struct Verdict {
    bool blocked = false;
    std::string systemFilter;
    std::vector<AddressVerdict> addresses; ///< in the order tested
    std::vector<FilterStep> steps;         ///< every step, for `filter test`
    /// One line for the log, the message log and the 550 reply, e.g.
    /// `sender <x@bad.com> blocked by system filter "inbound-default", address
    /// filter "spam-domains" (deny, domain bad.com)`. Allowed: every address, "; ".
    std::string reason;

    /// blocker - the first blocked address, or nullptr.
    const AddressVerdict* blocker() const;
};

/// A system filter with every pattern precompiled (lowercased, A-labels, hash
/// sets for exact domains, sub-domain suffixes and exact exceptions; a short
/// list for wildcards). Immutable after construction: share one instance per
/// configuration generation (e.g. shared_ptr<const CompiledFilter>) across threads.
class CompiledFilter
{
public:
    /// CompiledFilter - validates and compiles; throws InputError like validateSystemFilter.
    explicit CompiledFilter(const SystemAddressFilter& filter, const FilterOptions& options = {},
                            const FilterLimits& limits = {});
    ~CompiledFilter();
    CompiledFilter(CompiledFilter&&) noexcept;
    CompiledFilter& operator=(CompiledFilter&&) noexcept;

    const std::string& name() const;
    Direction direction() const;

    /// checkAddress - verdict for one address ("a@b", "Name <a@b>", "<>");
    /// throws InputError when the address is malformed.
    Verdict checkAddress(const std::string& address, AddressField field) const;
    /// checkAddress - the same for an address already parsed.
    Verdict checkAddress(const MailAddress& address, AddressField field) const;
    /// checkInbound - tests the envelope sender ("" or "<>" is the null sender)
    /// and every mailbox of the header From ("" = no From header); blocked if
    /// any is. Throws InputError when either does not parse.
    Verdict checkInbound(const std::string& envelopeSender, const std::string& headerFrom) const;
    /// checkInbound - the same for every From field of a message (none: no From
    /// header): every mailbox of each is tested. Throws InputError naming the
    /// field ("From field 2 of 3: ...") when one does not parse.
    Verdict checkInbound(const std::string& envelopeSender,
                         const std::vector<std::string>& headerFroms) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    AddressVerdict judge(const MailAddress& address, AddressField field,
                         std::vector<FilterStep>& steps) const;
};

} // namespace popgate
