// filter_store.cpp - see filter_store.h. The schema (sql/*/0003_filters.sql)
// enforces "one active default per direction"; this file turns that
// constraint's failure into an InputError naming the filter that holds it.
// Every value is bound; no value is ever pasted into SQL text.
#include "core/filter_store.h"

#include "core/errors.h"
#include "core/rows.h"
#include "core/text.h"

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace popgate
{

using rows::dbError;
using rows::number;
using rows::text;

namespace
{

const std::size_t kMaxDescription = 1024;

std::string systemName(const std::string& name)
{
    return "system filter \"" + flatten(name).substr(0, 80) + "\"";
}

std::string addressName(const std::string& name)
{
    return "address filter \"" + flatten(name).substr(0, 80) + "\"";
}

SystemAddressFilter readSystem(RecordSet& rs)
{
    SystemAddressFilter f;
    f.id = number(rs, "id");
    f.name = text(rs, "name");
    f.direction = parseDirection(text(rs, "direction"));
    f.active = number(rs, "active") != 0;
    f.isDefault = number(rs, "is_default") != 0;
    f.description = text(rs, "description");
    return f;
}

EmailAddressFilter readAddress(RecordSet& rs)
{
    EmailAddressFilter f;
    f.id = number(rs, "id");
    f.name = text(rs, "name");
    f.type = parseFilterType(text(rs, "type"));
    f.active = number(rs, "active") != 0;
    return f;
}

// addPatterns - distribute rows of (address_filter_id, kind, pattern) to their filters.
void addPatterns(RecordSet& rs, const std::map<std::int64_t, EmailAddressFilter*>& byId)
{
    for (bool more = rs.moveFirst(); more; more = rs.moveNext()) {
        auto it = byId.find(number(rs, "address_filter_id"));
        if (it == byId.end())
            continue;
        (text(rs, "kind") == "domain" ? it->second->domains : it->second->exceptions)
            .push_back(text(rs, "pattern"));
    }
}

std::vector<std::string> names(RecordSet& rs)
{
    std::vector<std::string> out;
    for (bool more = rs.moveFirst(); more; more = rs.moveNext())
        out.push_back(text(rs, "name"));
    return out;
}

std::string quotedList(const std::vector<std::string>& items)
{
    std::string out;
    for (const auto& i : items)
        out += (out.empty() ? "'" : ", '") + i + "'";
    return out;
}

// lower - ASCII lowercase, for spotting a pattern listed twice.
std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

void refuseDuplicates(const EmailAddressFilter& f, const std::vector<std::string>& patterns,
                      const char* field)
{
    std::set<std::string> seen;
    for (const auto& p : patterns)
        if (!seen.insert(lower(p)).second)
            throw InputError(addressName(f.name) + ": " + field + ": \"" + flatten(p) +
                             "\" is listed twice");
}

} // namespace

void FilterStore::checkSystemFilter(const SystemAddressFilter& filter) const
{
    SystemAddressFilter shell = filter;
    shell.addressFilters.clear(); // the members are checked when attached
    validateSystemFilter(shell, limits_);
    if (filter.description.size() > kMaxDescription)
        throw InputError(systemName(filter.name) + ": description: at most " +
                         std::to_string(kMaxDescription) + " bytes (got " +
                         std::to_string(filter.description.size()) + ")");
}

void FilterStore::checkAddressFilter(const EmailAddressFilter& filter) const
{
    validateAddressFilter(filter, limits_);
    refuseDuplicates(filter, filter.domains, "domains");
    refuseDuplicates(filter, filter.exceptions, "exceptions");
}

std::optional<std::int64_t> FilterStore::idOf(const char* table, const std::string& name)
{
    Statement select(store_.session());
    select << "SELECT id FROM " << table << " WHERE name = $1", bind(name);
    select.execute();
    RecordSet rs(select);
    if (!rs.moveFirst())
        return std::nullopt;
    return number(rs, "id");
}

std::optional<std::string> FilterStore::otherActiveDefault(const SystemAddressFilter& filter)
{
    Statement select(store_.session());
    select << "SELECT name FROM system_filters WHERE direction = $1 AND is_default = 1 "
              "AND active = 1 AND name <> $2",
        bind(directionName(filter.direction)), bind(filter.name);
    select.execute();
    RecordSet rs(select);
    if (!rs.moveFirst())
        return std::nullopt;
    return text(rs, "name");
}

void FilterStore::loadMembers(SystemAddressFilter& filter)
{
    Statement members(store_.session());
    members << "SELECT a.id, a.name, a.type, a.active FROM system_filter_members m "
               "JOIN address_filters a ON a.id = m.address_filter_id "
               "WHERE m.system_filter_id = $1 ORDER BY m.position, a.name",
        bind(Poco::Int64(filter.id));
    members.execute();
    RecordSet rs(members);
    for (bool more = rs.moveFirst(); more; more = rs.moveNext())
        filter.addressFilters.push_back(readAddress(rs));
    std::map<std::int64_t, EmailAddressFilter*> byId;
    for (auto& f : filter.addressFilters)
        byId[f.id] = &f;
    Statement patterns(store_.session());
    patterns << "SELECT p.address_filter_id, p.kind, p.pattern FROM address_filter_patterns p "
                "JOIN system_filter_members m ON m.address_filter_id = p.address_filter_id "
                "WHERE m.system_filter_id = $1 ORDER BY p.position, p.id",
        bind(Poco::Int64(filter.id));
    patterns.execute();
    RecordSet prs(patterns);
    addPatterns(prs, byId);
}

std::vector<SystemAddressFilter> FilterStore::systemFilters()
{
    std::vector<SystemAddressFilter> out;
    try {
        Statement select(store_.session());
        select << "SELECT id, name, direction, active, is_default, description FROM system_filters "
                  "ORDER BY name";
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out.push_back(readSystem(rs));
        for (auto& f : out)
            loadMembers(f);
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot list system filters", e);
    }
    return out;
}

std::optional<SystemAddressFilter> FilterStore::loadSystemFilter(const std::string& name)
{
    try {
        Statement select(store_.session());
        select << "SELECT id, name, direction, active, is_default, description FROM system_filters "
                  "WHERE name = $1",
            bind(name);
        select.execute();
        RecordSet rs(select);
        if (!rs.moveFirst())
            return std::nullopt;
        SystemAddressFilter f = readSystem(rs);
        loadMembers(f);
        return f;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read " + systemName(name), e);
    }
}

std::optional<SystemAddressFilter> FilterStore::activeDefault(Direction direction)
{
    std::string name;
    try {
        Statement select(store_.session());
        select << "SELECT name FROM system_filters WHERE direction = $1 AND is_default = 1 "
                  "AND active = 1",
            bind(directionName(direction));
        select.execute();
        RecordSet rs(select);
        if (!rs.moveFirst())
            return std::nullopt;
        name = text(rs, "name");
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read the " + directionName(direction) + " default filter", e);
    }
    return loadSystemFilter(name);
}

void FilterStore::addSystemFilter(SystemAddressFilter& f)
{
    checkSystemFilter(f);
    const std::int64_t at = nowSeconds();
    try {
        Transaction tx(store_.session());
        if (idOf("system_filters", f.name))
            throw InputError(systemName(f.name) +
                             ": name: a system filter of that name exists already");
        store_.session()
            << "INSERT INTO system_filters (name, direction, active, is_default, "
               "description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            bind(f.name), bind(directionName(f.direction)), bind(int(f.active)),
            bind(int(f.isDefault)), bind(f.description), bind(Poco::Int64(at)),
            bind(Poco::Int64(at)), now;
        const auto id = idOf("system_filters", f.name);
        store_.bumpGeneration();
        tx.commit();
        f.id = id.value_or(0);
    } catch (const Poco::Exception& e) {
        // The transaction has been rolled back: a unique-index failure on the
        // default shows as the other filter still holding it.
        if (f.isDefault && f.active)
            if (auto other = otherActiveDefault(f))
                throw InputError(systemName(f.name) + ": default: " + systemName(*other) +
                                 " is already the active " + directionName(f.direction) +
                                 " default (at most one per direction; set it --default=no first)");
        throw dbError(store_, "cannot add " + systemName(f.name), e);
    }
}

void FilterStore::updateSystemFilter(const SystemAddressFilter& f)
{
    checkSystemFilter(f);
    try {
        Transaction tx(store_.session());
        Statement update(store_.session());
        update << "UPDATE system_filters SET direction = $1, active = $2, is_default = $3, "
                  "description = $4, updated_at = $5 WHERE name = $6",
            bind(directionName(f.direction)), bind(int(f.active)), bind(int(f.isDefault)),
            bind(f.description), bind(Poco::Int64(nowSeconds())), bind(f.name);
        if (update.execute() == 0)
            throw InputError(systemName(f.name) + ": no such system filter");
        store_.bumpGeneration();
        tx.commit();
    } catch (const Poco::Exception& e) {
        if (f.isDefault && f.active)
            if (auto other = otherActiveDefault(f))
                throw InputError(systemName(f.name) + ": default: " + systemName(*other) +
                                 " is already the active " + directionName(f.direction) +
                                 " default (at most one per direction; set it --default=no first)");
        throw dbError(store_, "cannot update " + systemName(f.name), e);
    }
}

std::vector<std::string> FilterStore::accountsUsing(const std::string& systemFilter)
{
    try {
        Statement select(store_.session());
        select << "SELECT name FROM accounts WHERE filter = $1 ORDER BY name", bind(systemFilter);
        select.execute();
        RecordSet rs(select);
        return names(rs);
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot list the accounts of " + systemName(systemFilter), e);
    }
}

bool guardsAsDefault(const SystemAddressFilter& filter)
{
    if (!filter.active || !filter.isDefault || filter.direction != Direction::Inbound)
        return false;
    return std::any_of(filter.addressFilters.begin(), filter.addressFilters.end(),
                       [](const EmailAddressFilter& a) { return a.active; });
}

bool FilterStore::removeSystemFilter(const std::string& name, bool force)
{
    try {
        Transaction tx(store_.session());
        const auto users = accountsUsing(name);
        if (!users.empty() && !force)
            throw InputError(systemName(name) + ": in use by account(s) " + quotedList(users) +
                             "; set their filter to another one first");
        Statement del(store_.session());
        del << "DELETE FROM system_filters WHERE name = $1", bind(name);
        if (del.execute() == 0)
            return false;
        store_.bumpGeneration();
        tx.commit();
        return true;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot remove " + systemName(name), e);
    }
}

std::vector<EmailAddressFilter> FilterStore::addressFilters()
{
    std::vector<EmailAddressFilter> out;
    try {
        Statement select(store_.session());
        select << "SELECT id, name, type, active FROM address_filters ORDER BY name";
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out.push_back(readAddress(rs));
        std::map<std::int64_t, EmailAddressFilter*> byId;
        for (auto& f : out)
            byId[f.id] = &f;
        Statement patterns(store_.session());
        patterns << "SELECT address_filter_id, kind, pattern FROM address_filter_patterns "
                    "ORDER BY position, id";
        patterns.execute();
        RecordSet prs(patterns);
        addPatterns(prs, byId);
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot list address filters", e);
    }
    return out;
}

std::optional<EmailAddressFilter> FilterStore::addressFilter(const std::string& name)
{
    try {
        Statement select(store_.session());
        select << "SELECT id, name, type, active FROM address_filters WHERE name = $1", bind(name);
        select.execute();
        RecordSet rs(select);
        if (!rs.moveFirst())
            return std::nullopt;
        EmailAddressFilter f = readAddress(rs);
        Statement patterns(store_.session());
        patterns << "SELECT address_filter_id, kind, pattern FROM address_filter_patterns "
                    "WHERE address_filter_id = $1 ORDER BY position, id",
            bind(Poco::Int64(f.id));
        patterns.execute();
        RecordSet prs(patterns);
        addPatterns(prs, {{f.id, &f}});
        return f;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot read " + addressName(name), e);
    }
}

void FilterStore::writePatterns(std::int64_t id, const EmailAddressFilter& f)
{
    store_.session() << "DELETE FROM address_filter_patterns WHERE address_filter_id = $1",
        bind(Poco::Int64(id)), now;
    auto insert = [&](const char* kind, const std::vector<std::string>& patterns) {
        int position = 0;
        for (const auto& p : patterns)
            store_.session() << "INSERT INTO address_filter_patterns (address_filter_id, kind, "
                                "position, pattern) VALUES ($1, $2, $3, $4)",
                bind(Poco::Int64(id)), bind(std::string(kind)), bind(++position), bind(p), now;
    };
    insert("domain", f.domains);
    insert("exception", f.exceptions);
}

void FilterStore::addAddressFilter(EmailAddressFilter& f)
{
    checkAddressFilter(f);
    const std::int64_t at = nowSeconds();
    try {
        Transaction tx(store_.session());
        if (idOf("address_filters", f.name))
            throw InputError(addressName(f.name) +
                             ": name: an address filter of that name exists already");
        store_.session()
            << "INSERT INTO address_filters (name, type, active, created_at, updated_at) "
               "VALUES ($1, $2, $3, $4, $5)",
            bind(f.name), bind(filterTypeName(f.type)), bind(int(f.active)), bind(Poco::Int64(at)),
            bind(Poco::Int64(at)), now;
        const std::int64_t id = idOf("address_filters", f.name).value_or(0);
        writePatterns(id, f);
        store_.bumpGeneration();
        tx.commit();
        f.id = id;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot add " + addressName(f.name), e);
    }
}

void FilterStore::updateAddressFilter(const EmailAddressFilter& f)
{
    checkAddressFilter(f);
    try {
        Transaction tx(store_.session());
        const auto id = idOf("address_filters", f.name);
        if (!id)
            throw InputError(addressName(f.name) + ": no such address filter");
        store_.session() << "UPDATE address_filters SET type = $1, active = $2, updated_at = $3 "
                            "WHERE id = $4",
            bind(filterTypeName(f.type)), bind(int(f.active)), bind(Poco::Int64(nowSeconds())),
            bind(Poco::Int64(*id)), now;
        writePatterns(*id, f);
        store_.bumpGeneration();
        tx.commit();
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot update " + addressName(f.name), e);
    }
}

std::vector<std::string> FilterStore::systemFiltersUsing(const std::string& addressFilter)
{
    try {
        Statement select(store_.session());
        select
            << "SELECT s.name FROM system_filters s JOIN system_filter_members m "
               "ON m.system_filter_id = s.id JOIN address_filters a ON a.id = m.address_filter_id "
               "WHERE a.name = $1 ORDER BY s.name",
            bind(addressFilter);
        select.execute();
        RecordSet rs(select);
        return names(rs);
    } catch (const Poco::Exception& e) {
        throw dbError(store_,
                      "cannot list the system filters holding " + addressName(addressFilter), e);
    }
}

bool FilterStore::removeAddressFilter(const std::string& name)
{
    try {
        Transaction tx(store_.session());
        const auto users = systemFiltersUsing(name);
        if (!users.empty())
            throw InputError(addressName(name) + ": attached to system filter(s) " +
                             quotedList(users) + "; detach it first");
        Statement del(store_.session());
        del << "DELETE FROM address_filters WHERE name = $1", bind(name);
        if (del.execute() == 0)
            return false;
        store_.bumpGeneration();
        tx.commit();
        return true;
    } catch (const Poco::Exception& e) {
        throw dbError(store_, "cannot remove " + addressName(name), e);
    }
}

void FilterStore::attach(const std::string& systemFilter, const std::string& addressFilterName)
{
    try {
        Transaction tx(store_.session());
        auto system = loadSystemFilter(systemFilter);
        if (!system)
            throw InputError(systemName(systemFilter) + ": no such system filter");
        auto address = addressFilter(addressFilterName);
        if (!address)
            throw InputError(addressName(addressFilterName) + ": no such address filter");
        for (const auto& member : system->addressFilters)
            if (member.id == address->id)
                throw InputError(systemName(systemFilter) + ": " + addressName(addressFilterName) +
                                 " is attached already");
        system->addressFilters.push_back(*address);
        validateSystemFilter(*system, limits_);
        store_.session()
            << "INSERT INTO system_filter_members (system_filter_id, address_filter_id, "
               "position) SELECT $1, $2, COALESCE(MAX(position), 0) + 1 "
               "FROM system_filter_members WHERE system_filter_id = $3",
            bind(Poco::Int64(system->id)), bind(Poco::Int64(address->id)),
            bind(Poco::Int64(system->id)), now;
        store_.bumpGeneration();
        tx.commit();
    } catch (const Poco::Exception& e) {
        throw dbError(store_,
                      "cannot attach " + addressName(addressFilterName) + " to " +
                          systemName(systemFilter),
                      e);
    }
}

void FilterStore::detach(const std::string& systemFilter, const std::string& addressFilterName)
{
    try {
        Transaction tx(store_.session());
        const auto systemId = idOf("system_filters", systemFilter);
        if (!systemId)
            throw InputError(systemName(systemFilter) + ": no such system filter");
        const auto addressId = idOf("address_filters", addressFilterName);
        if (!addressId)
            throw InputError(addressName(addressFilterName) + ": no such address filter");
        Statement del(store_.session());
        del << "DELETE FROM system_filter_members WHERE system_filter_id = $1 "
               "AND address_filter_id = $2",
            bind(Poco::Int64(*systemId)), bind(Poco::Int64(*addressId));
        if (del.execute() == 0)
            throw InputError(systemName(systemFilter) + ": " + addressName(addressFilterName) +
                             " is not attached");
        store_.bumpGeneration();
        tx.commit();
    } catch (const Poco::Exception& e) {
        throw dbError(store_,
                      "cannot detach " + addressName(addressFilterName) + " from " +
                          systemName(systemFilter),
                      e);
    }
}

FilterResolution FilterStore::resolveForAccount(const Account& account)
{
    try {
        FilterResolution r = resolve(account.filter);
        if (!r.warning.empty())
            r.warning = "account '" + account.name + "': " + r.warning;
        return r;
    } catch (const OperationError& e) {
        throw OperationError("account '" + account.name + "': " + e.what());
    }
}

FilterResolution FilterStore::resolve(const std::string& accountFilter)
{
    FilterResolution r;
    if (!accountFilter.empty()) {
        auto f = loadSystemFilter(accountFilter);
        if (!f)
            throw OperationError("filter: " + systemName(accountFilter) + " does not exist");
        if (!f->active) {
            r.warning = "filter: " + systemName(f->name) +
                        " is inactive; no filter applies (all mail allowed)";
            return r;
        }
        if (f->direction != Direction::Inbound)
            r.warning = "filter: " + systemName(f->name) +
                        " is an outbound filter; applied to inbound mail anyway";
        r.filter = std::move(f);
        r.source = FilterSource::Account;
        return r;
    }
    if (auto f = activeDefault(Direction::Inbound)) {
        r.filter = std::move(f);
        r.source = FilterSource::Default;
    }
    return r;
}

} // namespace popgate
