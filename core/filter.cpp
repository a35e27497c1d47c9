// filter.cpp - system address filter validation, compilation and verdicts.
// Rules (B.3 FLT-4..8): addresses compare as lowercased local part and A-label
// domain; "example.com" is that domain only, "*.example.com" its sub-domains
// only, '*' is one or more characters (dots included), "*" alone is every
// domain; an exception inverts its filter's opinion; blocked iff some filter
// denies and none allows. Pure: no I/O, no regex, no store.
#include "core/filter.h"

#include "core/account.h"
#include "core/errors.h"

#include <deque>
#include <string_view>
#include <unordered_map>

namespace popgate
{
namespace
{

using PatternMap = std::unordered_map<std::string_view, const std::string*>;

// Glob - a pattern with at least one '*'; each '*' stands for 1+ characters.
struct Glob {
    const std::string* pattern = nullptr; ///< as configured, for verdicts
    std::string head, tail;
    std::vector<std::string> middle;
    std::size_t minLength = 0;

    bool matches(std::string_view s) const
    {
        if (s.size() < minLength || s.compare(0, head.size(), head) != 0 ||
            s.compare(s.size() - tail.size(), tail.size(), tail) != 0)
            return false;
        std::size_t pos = head.size(), end = s.size() - tail.size();
        for (const std::string& m : middle) {
            std::size_t found = s.find(m, pos + 1);
            if (found == std::string_view::npos || found + m.size() + 1 > end)
                return false;
            pos = found + m.size();
        }
        return pos + 1 <= end;
    }
};

Glob makeGlob(const std::string& normalized, const std::string* pattern)
{
    std::vector<std::string> parts(1);
    for (char c : normalized) {
        if (c == '*')
            parts.emplace_back();
        else
            parts.back() += c;
    }
    Glob g;
    g.pattern = pattern;
    g.head = parts.front();
    g.tail = parts.back();
    for (std::size_t i = 1; i + 1 < parts.size(); ++i)
        if (!parts[i].empty()) // "**" counts as one '*'
            g.middle.push_back(parts[i]);
    g.minLength = g.head.size() + g.tail.size() + g.middle.size() + 1;
    for (const std::string& m : g.middle)
        g.minLength += m.size();
    return g;
}

struct CompiledAddressFilter {
    std::string name;
    FilterType type = FilterType::Deny;
    bool active = true;
    const std::string* anyDomain = nullptr; ///< the pattern "*", if listed
    PatternMap exactDomains;                ///< "example.com"
    PatternMap subDomainsOf;                ///< "example.com" for "*.example.com"
    std::vector<Glob> domainGlobs;
    PatternMap exactExceptions; ///< comparison keys
    std::vector<Glob> exceptionGlobs;

    const std::string* matchDomain(std::string_view domain) const
    {
        if (anyDomain)
            return anyDomain;
        if (auto it = exactDomains.find(domain); it != exactDomains.end())
            return it->second;
        if (!subDomainsOf.empty())
            for (std::size_t dot = domain.find('.'); dot != std::string_view::npos;
                 dot = domain.find('.', dot + 1))
                if (auto it = subDomainsOf.find(domain.substr(dot + 1)); it != subDomainsOf.end())
                    return it->second;
        for (const Glob& g : domainGlobs)
            if (g.matches(domain))
                return g.pattern;
        return nullptr;
    }

    const std::string* matchException(std::string_view key) const
    {
        if (auto it = exactExceptions.find(key); it != exactExceptions.end())
            return it->second;
        for (const Glob& g : exceptionGlobs)
            if (g.matches(key))
                return g.pattern;
        return nullptr;
    }
};

// Owns every string the string_view keys point into; a deque never moves them.
using Storage = std::deque<std::string>;

const std::string& keep(Storage& storage, std::string s)
{
    storage.push_back(std::move(s));
    return storage.back();
}

const char* const kNameRule = "a name is 1-64 characters of A-Z a-z 0-9 . _ -";

void compileDomain(CompiledAddressFilter& f, const std::string& pattern, Storage& storage)
{
    if (pattern.find('@') != std::string::npos)
        throw InputError("domain pattern \"" + pattern +
                         "\" contains '@'; put addresses in the exceptions");
    if (!pattern.empty() && pattern[0] == '.')
        throw InputError("domain pattern \"" + pattern + "\" starts with '.'; write \"*" + pattern +
                         "\" for its sub-domains");
    std::string key;
    try {
        key = normalizeDomain(pattern, true);
    } catch (const InputError& e) {
        throw InputError("domain pattern: " + std::string(e.what()));
    }
    const std::string* shown = &keep(storage, pattern);
    std::size_t star = key.find('*');
    if (star == std::string::npos) {
        f.exactDomains.emplace(keep(storage, key), shown);
    } else if (key == "*") {
        f.anyDomain = f.anyDomain ? f.anyDomain : shown;
    } else if (key.compare(0, 2, "*.") == 0 && key.find('*', 1) == std::string::npos) {
        f.subDomainsOf.emplace(keep(storage, key.substr(2)), shown);
    } else {
        f.domainGlobs.push_back(makeGlob(key, shown));
    }
}

void compileException(CompiledAddressFilter& f, const std::string& pattern, Storage& storage)
{
    MailAddress a;
    try {
        a = parseAddressPattern(pattern);
    } catch (const InputError& e) {
        throw InputError("exception: " + std::string(e.what()));
    }
    const std::string* shown = &keep(storage, pattern);
    if (a.key.find('*') == std::string::npos)
        f.exactExceptions.emplace(keep(storage, a.key), shown);
    else
        f.exceptionGlobs.push_back(makeGlob(a.key, shown));
}

// compileAddressFilter - throws InputError `address filter "N": ...`.
CompiledAddressFilter compileAddressFilter(const EmailAddressFilter& filter,
                                           const FilterLimits& limits, Storage& storage)
{
    const std::string who = "address filter \"" + filter.name + "\": ";
    if (!isValidName(filter.name))
        throw InputError(who + kNameRule);
    if (filter.domains.size() > limits.maxDomains)
        throw InputError(who + std::to_string(filter.domains.size()) + " domains; the limit is " +
                         std::to_string(limits.maxDomains));
    if (filter.exceptions.size() > limits.maxExceptions)
        throw InputError(who + std::to_string(filter.exceptions.size()) +
                         " exceptions; the limit is " + std::to_string(limits.maxExceptions));
    CompiledAddressFilter f;
    f.name = filter.name;
    f.type = filter.type;
    f.active = filter.active;
    try {
        for (const std::string& d : filter.domains)
            compileDomain(f, d, storage);
        for (const std::string& e : filter.exceptions)
            compileException(f, e, storage);
    } catch (const InputError& e) {
        throw InputError(who + e.what());
    }
    return f;
}

std::string angle(const std::string& address)
{
    return "<" + address + ">";
}

} // namespace

std::string filterTypeName(FilterType type)
{
    return type == FilterType::Allow ? "allow" : "deny";
}

std::string directionName(Direction direction)
{
    return direction == Direction::Inbound ? "inbound" : "outbound";
}

FilterType parseFilterType(const std::string& text)
{
    if (text == "allow")
        return FilterType::Allow;
    if (text == "deny")
        return FilterType::Deny;
    throw InputError("filter type \"" + text + "\": expected allow or deny");
}

Direction parseDirection(const std::string& text)
{
    if (text == "inbound")
        return Direction::Inbound;
    if (text == "outbound")
        return Direction::Outbound;
    throw InputError("direction \"" + text + "\": expected inbound or outbound");
}

std::string fieldName(AddressField field)
{
    switch (field) {
    case AddressField::EnvelopeSender:
        return "sender";
    case AddressField::HeaderFrom:
        return "From";
    case AddressField::Recipient:
        return "recipient";
    }
    return "address";
}

std::string ruleText(FilterType type, Rule rule, const std::string& pattern)
{
    std::string t = filterTypeName(type);
    switch (rule) {
    case Rule::Domain:
        return t + ", domain " + pattern;
    case Rule::Exception:
        return t + ", exception " + pattern;
    case Rule::Implicit:
    case Rule::None:
        return t + ", domain not listed";
    case Rule::NullSender:
        return "null sender";
    case Rule::Inactive:
        return t + ", inactive";
    }
    return t;
}

std::string FilterStep::text() const
{
    std::string head = fieldName(field) + " " + angle(address) + ": ";
    if (rule == Rule::NullSender)
        return head + "null sender: " + (opinion == Opinion::Allow ? "ALLOW" : "DENY") +
               " (bounce policy)";
    if (addressFilter.empty())
        return head + "system filter inactive: ALLOW";
    head += "address filter \"" + addressFilter + "\" (" + filterTypeName(type) + "): ";
    if (rule == Rule::Inactive)
        return head + "skipped (inactive)";
    std::string says = opinion == Opinion::Allow  ? "ALLOW"
                       : opinion == Opinion::Deny ? "DENY"
                                                  : "no opinion";
    std::string listed = listedBy.empty() ? "domain not listed" : "domain " + listedBy;
    if (rule == Rule::Exception)
        return head + says + " (" + listed + (listedBy.empty() ? "" : " listed") + ", exception " +
               pattern + ")";
    return head + says + " (" + listed + ")";
}

const AddressVerdict* Verdict::blocker() const
{
    for (const AddressVerdict& a : addresses)
        if (a.blocked)
            return &a;
    return nullptr;
}

void validateAddressFilter(const EmailAddressFilter& filter, const FilterLimits& limits)
{
    Storage scratch;
    compileAddressFilter(filter, limits, scratch);
}

namespace
{
struct CompiledSystem {
    std::string name;
    Direction direction = Direction::Inbound;
    bool active = true;
    Storage storage;
    std::vector<CompiledAddressFilter> filters;
};

// compileSystemFilter - fills out; throws InputError `system filter "N": ...`.
void compileSystemFilter(const SystemAddressFilter& filter, const FilterLimits& limits,
                         CompiledSystem& out)
{
    const std::string who = "system filter \"" + filter.name + "\": ";
    if (!isValidName(filter.name))
        throw InputError(who + kNameRule);
    if (filter.addressFilters.size() > limits.maxAddressFilters)
        throw InputError(who + std::to_string(filter.addressFilters.size()) +
                         " address filters; the limit is " +
                         std::to_string(limits.maxAddressFilters));
    out.name = filter.name;
    out.direction = filter.direction;
    out.active = filter.active;
    try {
        for (const EmailAddressFilter& f : filter.addressFilters)
            out.filters.push_back(compileAddressFilter(f, limits, out.storage));
    } catch (const InputError& e) {
        throw InputError(who + e.what());
    }
}
} // namespace

void validateSystemFilter(const SystemAddressFilter& filter, const FilterLimits& limits)
{
    CompiledSystem scratch;
    compileSystemFilter(filter, limits, scratch);
}

struct CompiledFilter::Impl : CompiledSystem {
    FilterOptions options;
};

CompiledFilter::CompiledFilter(const SystemAddressFilter& filter, const FilterOptions& options,
                               const FilterLimits& limits)
    : impl_(std::make_unique<Impl>())
{
    impl_->options = options;
    compileSystemFilter(filter, limits, *impl_);
}

CompiledFilter::~CompiledFilter() = default;
CompiledFilter::CompiledFilter(CompiledFilter&&) noexcept = default;
CompiledFilter& CompiledFilter::operator=(CompiledFilter&&) noexcept = default;

const std::string& CompiledFilter::name() const
{
    return impl_->name;
}
Direction CompiledFilter::direction() const
{
    return impl_->direction;
}

AddressVerdict CompiledFilter::judge(const MailAddress& address, AddressField field,
                                     std::vector<FilterStep>& steps) const
{
    const Impl& s = *impl_;
    AddressVerdict v;
    v.field = field;
    v.address = address.spec();
    v.key = address.key;
    const std::string who = fieldName(field) + " " + angle(v.address);
    const std::string sys = "system filter \"" + s.name + "\"";

    FilterStep step;
    step.field = field;
    step.address = v.address;

    if (!s.active) {
        step.rule = v.rule = Rule::Inactive;
        step.opinion = Opinion::Allow;
        steps.push_back(step);
        v.reason = who + " allowed: " + sys + " is inactive";
        return v;
    }
    if (address.isNull()) {
        v.blocked = !s.options.allowNullSender;
        step.rule = v.rule = Rule::NullSender;
        step.opinion = v.blocked ? Opinion::Deny : Opinion::Allow;
        steps.push_back(step);
        v.reason = who + (v.blocked ? " blocked by " : " allowed by ") + sys + " (null sender, " +
                   (v.blocked ? "bounces not allowed)" : "bounces allowed)");
        return v;
    }

    std::string_view key = address.key;
    std::string_view domain = key.substr(key.rfind('@') + 1);
    std::size_t firstAllowAt = 0, firstDenyAt = 0;
    bool allowed = false, denied = false;
    for (const CompiledAddressFilter& f : s.filters) {
        step.addressFilter = f.name;
        step.type = f.type;
        step.pattern.clear();
        step.listedBy.clear();
        if (!f.active) {
            step.rule = Rule::Inactive;
            step.opinion = Opinion::None;
            steps.push_back(step);
            continue;
        }
        const std::string* listed = f.matchDomain(domain);
        if (listed)
            step.listedBy = *listed;
        const std::string* exception = nullptr;
        if (listed || f.type == FilterType::Allow)
            exception = f.matchException(key);
        bool allow = f.type == FilterType::Allow;
        if (!listed && !allow) {
            step.opinion = Opinion::None;
            step.rule = Rule::None;
        } else {
            bool says = listed ? allow : false; // allow list without the domain: deny
            if (exception) {
                says = !says;
                step.rule = Rule::Exception;
                step.pattern = *exception;
            } else {
                step.rule = listed ? Rule::Domain : Rule::Implicit;
                step.pattern = listed ? *listed : "";
            }
            step.opinion = says ? Opinion::Allow : Opinion::Deny;
        }
        steps.push_back(step);
        if (step.opinion == Opinion::Allow && !allowed) {
            allowed = true;
            firstAllowAt = steps.size() - 1;
        }
        if (step.opinion == Opinion::Deny && !denied) {
            denied = true;
            firstDenyAt = steps.size() - 1;
        }
    }
    v.blocked = denied && !allowed;
    if (v.blocked || allowed) {
        const FilterStep& d = steps[v.blocked ? firstDenyAt : firstAllowAt];
        v.addressFilter = d.addressFilter;
        v.type = d.type;
        v.rule = d.rule;
        v.pattern = d.pattern;
        v.reason = who + (v.blocked ? " blocked by " : " allowed by ") + sys +
                   ", address filter \"" + d.addressFilter + "\" (" +
                   ruleText(d.type, d.rule, d.pattern) + ")";
        if (!v.blocked && denied) {
            const FilterStep& o = steps[firstDenyAt];
            v.overriddenFilter = o.addressFilter;
            v.overriddenRule = o.rule;
            v.overriddenPattern = o.pattern;
            v.reason += ", which beats address filter \"" + o.addressFilter + "\" (" +
                        ruleText(o.type, o.rule, o.pattern) + ")";
        }
    } else {
        v.reason = who + " allowed by " + sys + " (no address filter denies it)";
    }
    return v;
}

Verdict CompiledFilter::checkAddress(const MailAddress& address, AddressField field) const
{
    Verdict v;
    v.systemFilter = impl_->name;
    v.steps.reserve(impl_->filters.size());
    v.addresses.push_back(judge(address, field, v.steps));
    v.blocked = v.addresses.back().blocked;
    v.reason = v.addresses.back().reason;
    return v;
}

Verdict CompiledFilter::checkAddress(const std::string& address, AddressField field) const
{
    return checkAddress(parseAddress(address), field);
}

Verdict CompiledFilter::checkInbound(const std::string& envelopeSender,
                                     const std::string& headerFrom) const
{
    return checkInbound(envelopeSender, std::vector<std::string>{headerFrom});
}

Verdict CompiledFilter::checkInbound(const std::string& envelopeSender,
                                     const std::vector<std::string>& headerFroms) const
{
    bool nullSender = envelopeSender.find_first_not_of(" \t\r\n") == std::string::npos;
    MailAddress sender = nullSender ? MailAddress{} : parseAddress(envelopeSender);
    std::vector<MailAddress> from;
    for (std::size_t i = 0; i < headerFroms.size(); ++i) {
        try {
            for (MailAddress& a : parseAddressList(headerFroms[i]))
                from.push_back(std::move(a));
        } catch (const InputError& e) {
            if (headerFroms.size() == 1)
                throw;
            throw InputError("From field " + std::to_string(i + 1) + " of " +
                             std::to_string(headerFroms.size()) + ": " + e.what());
        }
    }

    Verdict v;
    v.systemFilter = impl_->name;
    v.addresses.reserve(1 + from.size());
    v.steps.reserve((1 + from.size()) * impl_->filters.size());
    v.addresses.push_back(judge(sender, AddressField::EnvelopeSender, v.steps));
    for (const MailAddress& a : from)
        v.addresses.push_back(judge(a, AddressField::HeaderFrom, v.steps));
    if (const AddressVerdict* b = v.blocker()) {
        v.blocked = true;
        v.reason = b->reason;
    } else {
        for (const AddressVerdict& a : v.addresses)
            v.reason += (v.reason.empty() ? "" : "; ") + a.reason;
    }
    return v;
}

} // namespace popgate
