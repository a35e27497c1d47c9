// filter_commands.cpp - `popgatectl filter ...`: system filters (add, list,
// show, set, remove, attach, detach), their address filters (`filter address
// ...`) and `filter test`, which compiles a filter with the core engine and
// prints its verdict and every step. Storage is core/filter_store.h; matching
// is core/filter.h - nothing here decides what a pattern means.
#include "core/errors.h"
#include "core/filter_store.h"
#include "core/address.h"
#include "core/screen.h"
#include "core/text.h"
#include "popgatectl/cli.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Util/Option.h>
#include <algorithm>
#include <cctype>
#include <iomanip>
#include <iostream>

namespace popgate::cli
{

namespace
{

using Poco::Util::Option;
using Poco::Util::OptionSet;

const char* const kUsage =
    "usage: popgatectl filter add|list|show|set|remove|attach|detach|test ... | "
    "filter address add|list|show|set|remove ...";

// withValues - an OptionSet of --NAME=VALUE options (repeatable ones may be
// given several times) plus --json.
OptionSet withValues(std::initializer_list<const char*> names,
                     std::initializer_list<const char*> repeatable = {})
{
    OptionSet set;
    for (const char* n : names)
        set.addOption(Option(n, "", n).argument("VALUE"));
    for (const char* n : repeatable)
        set.addOption(Option(n, "", n).argument("VALUE").repeatable(true));
    set.addOption(Option("json", "", "JSON output"));
    return set;
}

// withForce - opts plus --force, the flag a change that weakens filtering needs.
OptionSet withForce(OptionSet opts = OptionSet())
{
    opts.addOption(Option("force", "", "do it even though filtering stops"));
    return opts;
}

const char* const kNoFilter = "without it no system filter applies and all mail is let through";
const char* const kNoMember =
    "with no active address filter left it judges nothing and all mail is let through";

// refuseOrWarn - a change that turns the guarding inbound default (see
// guardsAsDefault) into one that lets all mail through needs --force: without
// it, InputError "WHO: refusing to ACTION; CONSEQUENCE. Use --force ...";
// with it, the warning to print once the change is done.
std::string refuseOrWarn(const ParsedArgs& args, const std::string& who, const std::string& action,
                         const std::string& consequence)
{
    if (!args.has("force"))
        throw InputError(who + ": refusing to " + action + "; " + consequence +
                         ". Use --force to do it anyway");
    return who + ": done with --force: " + action + "; " + consequence;
}

void warn(Context& ctx, const std::string& warning)
{
    if (!warning.empty())
        *ctx.err << "popgatectl: warning: " << warning << "\n";
}

// guardingDefault - the inbound default when it guards mail, else nothing.
std::optional<SystemAddressFilter> guardingDefault(FilterStore& filters)
{
    auto current = filters.activeDefault(Direction::Inbound);
    if (current && guardsAsDefault(*current))
        return current;
    return std::nullopt;
}

std::string shown(const std::string& name)
{
    return flatten(name).substr(0, 80);
}

void requireName(const char* kind, const std::string& name)
{
    if (!isValidName(name))
        throw InputError(std::string(kind) + " \"" + shown(name) +
                         "\": name: must be 1-64 characters of A-Z a-z 0-9 . _ -");
}

// option - parse one option's value, prefixing the error with who and what.
template <typename Parse>
auto parseField(const std::string& who, const std::string& field, const std::string& value,
                Parse parse)
{
    try {
        return parse(value);
    } catch (const InputError& e) {
        throw InputError(who + ": " + field + ": " + e.what());
    }
}

std::string systemWho(const std::string& name)
{
    return "system filter \"" + shown(name) + "\"";
}
std::string addressWho(const std::string& name)
{
    return "address filter \"" + shown(name) + "\"";
}

SystemAddressFilter requireSystem(FilterStore& filters, const std::string& name)
{
    auto f = filters.loadSystemFilter(name);
    if (!f)
        throw InputError(systemWho(name) + ": no such system filter");
    return *f;
}

EmailAddressFilter requireAddress(FilterStore& filters, const std::string& name)
{
    auto f = filters.addressFilter(name);
    if (!f)
        throw InputError(addressWho(name) + ": no such address filter");
    return *f;
}

bool wantJson(const Context& ctx, const ParsedArgs& args)
{
    return ctx.json || args.has("json");
}

void printJson(Context& ctx, const Poco::JSON::Object::Ptr& o)
{
    cli::printJson(*ctx.out, *o);
    *ctx.out << "\n";
}

void printJson(Context& ctx, const Poco::JSON::Array& a)
{
    cli::printJson(*ctx.out, a);
    *ctx.out << "\n";
}

Poco::JSON::Array::Ptr jsonList(const std::vector<std::string>& items)
{
    Poco::JSON::Array::Ptr a = new Poco::JSON::Array;
    for (const auto& i : items)
        a->add(i);
    return a;
}

Poco::JSON::Object::Ptr toJson(const EmailAddressFilter& f)
{
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("name", f.name);
    o->set("type", filterTypeName(f.type));
    o->set("active", f.active);
    o->set("domains", jsonList(f.domains));
    o->set("exceptions", jsonList(f.exceptions));
    return o;
}

Poco::JSON::Object::Ptr toJson(const SystemAddressFilter& f, bool full)
{
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("name", f.name);
    o->set("direction", directionName(f.direction));
    o->set("active", f.active);
    o->set("default", f.isDefault);
    o->set("description", f.description);
    Poco::JSON::Array::Ptr members = new Poco::JSON::Array;
    for (const auto& a : f.addressFilters) {
        if (full)
            members->add(toJson(a));
        else
            members->add(a.name);
    }
    o->set("address_filters", members);
    return o;
}

std::string joined(const std::vector<std::string>& items, const std::string& none = "-")
{
    std::string out;
    for (const auto& i : items)
        out += (out.empty() ? "" : ", ") + i;
    return out.empty() ? none : out;
}

void row(Context& ctx, const std::string& key, const std::string& value)
{
    *ctx.out << std::left << std::setw(18) << (key + ":") << value << "\n";
}

// applySystemOptions - --direction, --default, --active, --description; true if any.
bool applySystemOptions(SystemAddressFilter& f, const ParsedArgs& args)
{
    const std::string who = systemWho(f.name);
    bool changed = false;
    for (const auto& [name, value] : args.ordered) {
        if (name == "direction")
            f.direction = parseField(who, name, value, parseDirection);
        else if (name == "default")
            f.isDefault = parseField(who, name, value, parseBool);
        else if (name == "active")
            f.active = parseField(who, name, value, parseBool);
        else if (name == "description")
            f.description = value;
        else
            continue;
        changed = true;
    }
    return changed;
}

int addSystem(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args =
        parseArgs(rest, withValues({"direction", "default", "active", "description"}));
    requirePositional(args, 1,
                      "filter add NAME [--direction=inbound|outbound] [--default=yes|no] "
                      "[--active=yes|no] [--description=TEXT]");
    SystemAddressFilter f;
    f.name = args.positional[0];
    requireName("system filter", f.name);
    applySystemOptions(f, args);
    FilterStore(ctx.store()).addSystemFilter(f);
    *ctx.out << "system filter \"" << f.name << "\" added (" << directionName(f.direction)
             << (f.isDefault ? ", default" : "") << (f.active ? "" : ", inactive") << ")\n";
    return 0;
}

int listSystem(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, withValues({}));
    requirePositional(args, 0, "filter list [--json]");
    const auto all = FilterStore(ctx.store()).systemFilters();
    if (wantJson(ctx, args)) {
        Poco::JSON::Array arr;
        for (const auto& f : all)
            arr.add(toJson(f, false));
        printJson(ctx, arr);
        return 0;
    }
    auto& out = *ctx.out;
    out << std::left << std::setw(24) << "NAME" << std::setw(10) << "DIRECTION" << std::setw(7)
        << "ACTIVE" << std::setw(8) << "DEFAULT" << std::setw(8) << "FILTERS"
        << "DESCRIPTION\n";
    for (const auto& f : all)
        out << std::left << std::setw(24) << f.name << std::setw(10) << directionName(f.direction)
            << std::setw(7) << yesNo(f.active) << std::setw(8) << yesNo(f.isDefault) << std::setw(8)
            << f.addressFilters.size() << flatten(f.description) << "\n";
    return 0;
}

int showSystem(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, withValues({}));
    requirePositional(args, 1, "filter show NAME [--json]");
    FilterStore filters(ctx.store());
    const SystemAddressFilter f = requireSystem(filters, args.positional[0]);
    const auto accounts = filters.accountsUsing(f.name);
    if (wantJson(ctx, args)) {
        auto o = toJson(f, true);
        o->set("accounts", jsonList(accounts));
        printJson(ctx, o);
        return 0;
    }
    row(ctx, "name", f.name);
    row(ctx, "direction", directionName(f.direction));
    row(ctx, "active", yesNo(f.active));
    row(ctx, "default", yesNo(f.isDefault));
    row(ctx, "description", flatten(f.description));
    row(ctx, "accounts", joined(accounts));
    row(ctx, "address filters", std::to_string(f.addressFilters.size()));
    int n = 0;
    for (const auto& a : f.addressFilters)
        *ctx.out << "  " << ++n << ". " << a.name << " (" << filterTypeName(a.type)
                 << (a.active ? "" : ", inactive") << "): " << a.domains.size() << " domain(s), "
                 << a.exceptions.size() << " exception(s)\n";
    return 0;
}

int setSystem(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(
        rest, withForce(withValues({"direction", "default", "active", "description"})));
    const std::string usage = "filter set NAME [--direction=inbound|outbound] [--default=yes|no] "
                              "[--active=yes|no] [--description=TEXT] [--force]";
    requirePositional(args, 1, usage);
    FilterStore filters(ctx.store());
    SystemAddressFilter f = requireSystem(filters, args.positional[0]);
    if (!applySystemOptions(f, args))
        throw InputError(systemWho(f.name) + ": nothing to change; usage: popgatectl " + usage);
    std::string warning;
    if (auto current = guardingDefault(filters); current && current->name == f.name &&
                                                  !guardsAsDefault(f)) {
        const char* verb = !f.active      ? "deactivate"
                           : !f.isDefault ? "unset the default flag of"
                                          : "turn outbound";
        warning = refuseOrWarn(args,
                               systemWho(f.name),
                               std::string(verb) + " the active default inbound filter",
                               kNoFilter);
    }
    filters.updateSystemFilter(f);
    *ctx.out << "system filter \"" << f.name << "\" updated\n";
    warn(ctx, warning);
    return 0;
}

int removeSystem(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, withForce());
    requirePositional(args, 1, "filter remove NAME [--force]");
    const std::string name = args.positional[0];
    FilterStore filters(ctx.store());
    std::vector<std::string> warnings;
    if (auto current = guardingDefault(filters); current && current->name == name)
        warnings.push_back(refuseOrWarn(
            args, systemWho(name), "remove the active default inbound filter",
            kNoFilter));
    const bool force = args.has("force");
    if (force) {
        std::string users;
        for (const auto& a : filters.accountsUsing(name))
            users += (users.empty() ? "'" : ", '") + a + "'";
        if (!users.empty())
            warnings.push_back("account(s) " + users + " name " + systemWho(name) +
                               " and are not fetched until their filter is set again");
    }
    if (!filters.removeSystemFilter(name, force))
        throw InputError(systemWho(name) + ": no such system filter");
    *ctx.out << "system filter \"" << name << "\" removed\n";
    for (const auto& w : warnings)
        warn(ctx, w);
    return 0;
}

int attachOrDetach(Context& ctx, const std::vector<std::string>& rest, bool attach)
{
    const ParsedArgs args = parseArgs(rest, attach ? OptionSet() : withForce());
    const std::string verb = attach ? "attach" : "detach";
    requirePositional(args, 2,
                      "filter " + verb + " SYSTEMFILTER ADDRESSFILTER" + (attach ? "" : " [--force]"));
    FilterStore filters(ctx.store());
    const std::string& system = args.positional[0];
    const std::string& address = args.positional[1];
    std::string warning;
    if (auto current = guardingDefault(filters); !attach && current && current->name == system) {
        SystemAddressFilter after = *current;
        auto& members = after.addressFilters;
        members.erase(std::remove_if(members.begin(), members.end(),
                                     [&](const EmailAddressFilter& a) { return a.name == address; }),
                      members.end());
        if (!guardsAsDefault(after))
            warning = refuseOrWarn(args,
                                   systemWho(system),
                                   "detach " + addressWho(address) +
                                       ", the last active address filter of the active default "
                                       "inbound filter",
                                   kNoMember);
    }
    if (attach)
        filters.attach(system, address);
    else
        filters.detach(system, address);
    *ctx.out << "address filter \"" << address << "\" "
             << (attach ? "attached to" : "detached from") << " system filter \"" << system
             << "\"\n";
    warn(ctx, warning);
    return 0;
}

// filter test ---------------------------------------------------------------

int test(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, withValues({"account", "from", "envelope"}));
    const std::string usage =
        "filter test [NAME | --account=ACCOUNT] [--from=ADDRESS] [--envelope=ADDRESS]";
    if (args.positional.size() > 1 || (args.positional.size() == 1 && args.has("account")))
        throw InputError("usage: popgatectl " + usage);
    if (!args.has("from") && !args.has("envelope"))
        throw InputError("filter test: give --from=ADDRESS, --envelope=ADDRESS or both");
    FilterStore filters(ctx.store());
    std::optional<SystemAddressFilter> chosen;
    std::string why;
    if (args.positional.size() == 1) {
        chosen = requireSystem(filters, args.positional[0]);
        why = "as named";
    } else if (args.has("account")) {
        const std::string name = args.options.at("account");
        auto account = ctx.store().account(name);
        if (!account)
            throw InputError("account '" + shown(name) + "': no such account");
        FilterResolution r = filters.resolveForAccount(*account);
        if (!r.warning.empty())
            *ctx.err << "popgatectl: warning: " << r.warning << "\n";
        chosen = std::move(r.filter);
        why = r.source == FilterSource::Account
                  ? "the filter of account '" + account->name + "'"
                  : "the inbound default, account '" + account->name + "' names none";
    } else {
        chosen = filters.activeDefault(Direction::Inbound);
        why = "the inbound default";
    }
    const bool json = ctx.json || args.has("json");
    if (!chosen) {
        const std::string reason =
            "no system filter applies (no filter named and no active inbound default)";
        if (json) {
            Poco::JSON::Object o(true);
            o.set("system_filter", "");
            o.set("verdict", "allowed");
            o.set("reason", reason);
            o.set("steps", Poco::JSON::Array::Ptr(new Poco::JSON::Array));
            cli::printJson(*ctx.out, o);
            *ctx.out << "\n";
        } else {
            *ctx.out << "allowed: " << reason << "\n";
        }
        return 0;
    }
    // The enforcement's own reading (core/screen.h judgeSenders, as popgated and
    // popgate-milter judge, with allow_null_sender from popgate.conf). Addresses
    // that do not parse are the operator's bad input (exit 2), checked first.
    FilterOptions options;
    options.allowNullSender = ctx.config.flag("allow_null_sender");
    const CompiledFilter compiled(*chosen, options, filters.limits());
    const std::string from = args.has("from") ? args.options.at("from") : "";
    Verdict v;
    if (args.has("envelope")) {
        const std::string envelope = args.options.at("envelope");
        if (envelope != "" && envelope != "<>")
            (void)parseAddress(envelope);
        MessageFacts facts;
        if (args.has("from")) {
            (void)parseAddressList(from);
            facts.from = from;
            facts.froms = {from};
            facts.fromFields = 1;
        }
        judgeSenders(compiled, envelope == "<>" ? "" : envelope,
                     args.has("from") ? &facts : nullptr, &v);
    } else {
        v = compiled.checkAddress(from, AddressField::HeaderFrom);
    }
    if (json) {
        Poco::JSON::Object o(true);
        o.set("system_filter", chosen->name);
        o.set("source", why);
        o.set("active", chosen->active);
        o.set("verdict", v.blocked ? "blocked" : "allowed");
        o.set("reason", v.reason);
        Poco::JSON::Array::Ptr steps = new Poco::JSON::Array;
        for (const FilterStep& st : v.steps) {
            Poco::JSON::Object::Ptr step = new Poco::JSON::Object(true);
            step->set("field", fieldName(st.field));
            step->set("address", st.address);
            step->set("address_filter", st.addressFilter);
            step->set("text", st.text());
            steps->add(step);
        }
        o.set("steps", steps);
        cli::printJson(*ctx.out, o);
        *ctx.out << "\n";
        return v.blocked ? 1 : 0;
    }
    *ctx.out << "system filter: \"" << chosen->name << "\" (" << why
             << (chosen->active ? "" : "; inactive") << ")\n"
             << (v.blocked ? "blocked: " : "allowed: ") << v.reason << "\n"
             << "steps:\n";
    for (const FilterStep& s : v.steps)
        *ctx.out << "  " << s.text() << "\n";
    return v.blocked ? 1 : 0;
}

// testOrFailed - `filter test`'s exit codes: 0 allowed, 1 blocked, 2 bad input, and
// kFilterTestFailed when no verdict could be reached (database, a filter gone).
int testOrFailed(Context& ctx, const std::vector<std::string>& rest)
{
    try {
        return test(ctx, rest);
    } catch (const InputError&) {
        throw;
    } catch (const std::exception& e) {
        *ctx.err << "popgatectl: filter test failed (no verdict): " << e.what() << "\n";
        return kFilterTestFailed;
    }
}

// filter address ... ----------------------------------------------------------

int addAddress(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args =
        parseArgs(rest, withValues({"type", "domains", "exceptions", "active"}));
    const std::string usage = "filter address add NAME --type=allow|deny [--domains=a.com,*.b.com] "
                              "[--exceptions=boss@a.com,...] [--active=yes|no]";
    requirePositional(args, 1, usage);
    EmailAddressFilter f;
    f.name = args.positional[0];
    requireName("address filter", f.name);
    const std::string who = addressWho(f.name);
    if (!args.has("type"))
        throw InputError(who + ": type: is required (allow or deny)");
    f.type = parseField(who, "type", args.options.at("type"), parseFilterType);
    if (args.has("active"))
        f.active = parseField(who, "active", args.options.at("active"), parseBool);
    if (args.has("domains"))
        f.domains = splitList(args.options.at("domains"));
    if (args.has("exceptions"))
        f.exceptions = splitList(args.options.at("exceptions"));
    FilterStore(ctx.store()).addAddressFilter(f);
    *ctx.out << "address filter \"" << f.name << "\" added (" << filterTypeName(f.type) << ", "
             << f.domains.size() << " domain(s), " << f.exceptions.size() << " exception(s))\n";
    return 0;
}

bool samePattern(const std::string& a, const std::string& b)
{
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
               return std::tolower(x) == std::tolower(y);
           });
}

// edit - add or remove patterns of one list, in the order given.
void edit(const std::string& who, const char* field, std::vector<std::string>& list,
          const std::string& value, bool add)
{
    for (const auto& p : splitList(value)) {
        auto it = std::find_if(list.begin(), list.end(),
                               [&](const std::string& x) { return samePattern(x, p); });
        if (add && it != list.end())
            throw InputError(who + ": " + field + ": \"" + flatten(p) + "\" is listed already");
        if (!add && it == list.end())
            throw InputError(who + ": " + field + ": \"" + flatten(p) + "\" is not listed");
        if (add)
            list.push_back(p);
        else
            list.erase(it);
    }
}

int setAddress(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args =
        parseArgs(rest, withForce(withValues({"type", "active"},
                                             {"add-domain", "remove-domain", "add-exception",
                                              "remove-exception"})));
    const std::string usage =
        "filter address set NAME [--add-domain=X] [--remove-domain=X] [--add-exception=X] "
        "[--remove-exception=X] [--type=allow|deny] [--active=yes|no] [--force]";
    requirePositional(args, 1, usage);
    FilterStore filters(ctx.store());
    EmailAddressFilter f = requireAddress(filters, args.positional[0]);
    const std::string who = addressWho(f.name);
    bool changed = false;
    for (const auto& [name, value] : args.ordered) {
        if (name == "type")
            f.type = parseField(who, name, value, parseFilterType);
        else if (name == "active")
            f.active = parseField(who, name, value, parseBool);
        else if (name == "add-domain" || name == "remove-domain")
            edit(who, "domains", f.domains, value, name == "add-domain");
        else if (name == "add-exception" || name == "remove-exception")
            edit(who, "exceptions", f.exceptions, value, name == "add-exception");
        else
            continue;
        changed = true;
    }
    if (!changed)
        throw InputError(who + ": nothing to change; usage: popgatectl " + usage);
    std::string warning;
    if (auto current = guardingDefault(filters)) {
        SystemAddressFilter after = *current;
        for (auto& member : after.addressFilters)
            if (member.name == f.name)
                member = f;
        if (!guardsAsDefault(after))
            warning = refuseOrWarn(args,
                                   who,
                                   "deactivate the last active address filter of the active "
                                   "default inbound filter \"" +
                                       current->name + "\"",
                                   kNoMember);
    }
    filters.updateAddressFilter(f);
    *ctx.out << "address filter \"" << f.name << "\" updated (" << filterTypeName(f.type) << ", "
             << f.domains.size() << " domain(s), " << f.exceptions.size() << " exception(s))\n";
    warn(ctx, warning);
    return 0;
}

int listAddress(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, withValues({}));
    requirePositional(args, 0, "filter address list [--json]");
    FilterStore filters(ctx.store());
    const auto all = filters.addressFilters();
    if (wantJson(ctx, args)) {
        Poco::JSON::Array arr;
        for (const auto& f : all) {
            auto o = toJson(f);
            o->set("system_filters", jsonList(filters.systemFiltersUsing(f.name)));
            arr.add(o);
        }
        printJson(ctx, arr);
        return 0;
    }
    auto& out = *ctx.out;
    out << std::left << std::setw(24) << "NAME" << std::setw(6) << "TYPE" << std::setw(7)
        << "ACTIVE" << std::setw(8) << "DOMAINS" << std::setw(11) << "EXCEPTIONS"
        << "SYSTEM FILTERS\n";
    for (const auto& f : all)
        out << std::left << std::setw(24) << f.name << std::setw(6) << filterTypeName(f.type)
            << std::setw(7) << yesNo(f.active) << std::setw(8) << f.domains.size() << std::setw(11)
            << f.exceptions.size() << joined(filters.systemFiltersUsing(f.name)) << "\n";
    return 0;
}

int showAddress(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, withValues({}));
    requirePositional(args, 1, "filter address show NAME [--json]");
    FilterStore filters(ctx.store());
    const EmailAddressFilter f = requireAddress(filters, args.positional[0]);
    const auto users = filters.systemFiltersUsing(f.name);
    if (wantJson(ctx, args)) {
        auto o = toJson(f);
        o->set("system_filters", jsonList(users));
        printJson(ctx, o);
        return 0;
    }
    row(ctx, "name", f.name);
    row(ctx, "type", filterTypeName(f.type));
    row(ctx, "active", yesNo(f.active));
    row(ctx, "system filters", joined(users));
    row(ctx, "domains", std::to_string(f.domains.size()));
    for (const auto& d : f.domains)
        *ctx.out << "  " << d << "\n";
    row(ctx, "exceptions", std::to_string(f.exceptions.size()));
    for (const auto& e : f.exceptions)
        *ctx.out << "  " << e << "\n";
    return 0;
}

int removeAddress(Context& ctx, const std::vector<std::string>& rest)
{
    const ParsedArgs args = parseArgs(rest, OptionSet());
    requirePositional(args, 1, "filter address remove NAME");
    const std::string name = args.positional[0];
    if (!FilterStore(ctx.store()).removeAddressFilter(name))
        throw InputError(addressWho(name) + ": no such address filter");
    *ctx.out << "address filter \"" << name << "\" removed\n";
    return 0;
}

int addressCommand(Context& ctx, const std::vector<std::string>& args)
{
    const std::string usage = "usage: popgatectl filter address add|list|show|set|remove ...";
    if (args.empty())
        throw InputError(usage);
    const std::string verb = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (verb == "add")
        return addAddress(ctx, rest);
    if (verb == "list")
        return listAddress(ctx, rest);
    if (verb == "show")
        return showAddress(ctx, rest);
    if (verb == "set")
        return setAddress(ctx, rest);
    if (verb == "remove")
        return removeAddress(ctx, rest);
    throw InputError("unknown command 'filter address " + flatten(verb).substr(0, 40) + "'; " +
                     usage);
}

} // namespace

int filterCommand(Context& ctx, const std::vector<std::string>& args)
{
    if (args.empty())
        throw InputError(kUsage);
    const std::string verb = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    if (verb == "add")
        return addSystem(ctx, rest);
    if (verb == "list")
        return listSystem(ctx, rest);
    if (verb == "show")
        return showSystem(ctx, rest);
    if (verb == "set")
        return setSystem(ctx, rest);
    if (verb == "remove")
        return removeSystem(ctx, rest);
    if (verb == "attach")
        return attachOrDetach(ctx, rest, true);
    if (verb == "detach")
        return attachOrDetach(ctx, rest, false);
    if (verb == "test")
        return testOrFailed(ctx, rest);
    if (verb == "address")
        return addressCommand(ctx, rest);
    throw InputError("unknown command 'filter " + flatten(verb).substr(0, 40) + "'; " + kUsage);
}

} // namespace popgate::cli
