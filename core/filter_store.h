// filter_store.h - system and email address filters in the SQL store (issue
// [B]): CRUD, membership, the config generation daemons poll to reload, and
// the rule that picks an account's filter. Loads into core/filter.h's model;
// compiling and judging stay in the engine. Same SQL for both dialects ($n
// placeholders, bound values only); every change bumps the generation in its own transaction.
#pragma once

#include "core/account.h"
#include "core/filter.h"
#include "core/store.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace popgate
{

/// Where resolveForAccount found the filter.
enum class FilterSource {
    Account, ///< the account names it
    Default, ///< the active inbound default
    None,    ///< nothing applies: every message is allowed
};

struct FilterResolution {
    std::optional<SystemAddressFilter> filter; ///< loaded, ready to compile; empty: allow all
    FilterSource source = FilterSource::None;
    std::string warning; ///< non-empty: one line the caller logs (e.g. an inactive account filter)
};

/// guardsAsDefault - true when filter is the active default inbound filter with at
/// least one active address filter: the one that judges the mail of every account
/// without a filter of its own. A change that turns this false lets all such mail
/// through, and popgatectl asks for --force.
bool guardsAsDefault(const SystemAddressFilter& filter);

class FilterStore
{
public:
    explicit FilterStore(Store& store, FilterLimits limits = {}) : store_(store), limits_(limits) {}

    const FilterLimits& limits() const { return limits_; }

    /// systemFilters - every system filter by name, each loaded as by loadSystemFilter.
    std::vector<SystemAddressFilter> systemFilters();
    /// loadSystemFilter - the filter with its address filters (in order) and their
    /// patterns, ready for CompiledFilter; nothing when there is no such filter.
    std::optional<SystemAddressFilter> loadSystemFilter(const std::string& name);
    /// activeDefault - the active default filter of a direction, loaded; or nothing.
    std::optional<SystemAddressFilter> activeDefault(Direction direction);
    /// addSystemFilter - insert name, direction, flags and description (addressFilters
    /// are ignored: attach them); sets id. Throws InputError for a bad or taken name,
    /// a too long description, or a second active default of the direction.
    void addSystemFilter(SystemAddressFilter& filter);
    /// updateSystemFilter - write direction, flags and description of the filter of
    /// that name. Throws InputError as addSystemFilter, or when there is no such filter.
    void updateSystemFilter(const SystemAddressFilter& filter);
    /// removeSystemFilter - false when there was none. Throws InputError naming the
    /// accounts while any account names it, unless force (those accounts are then
    /// not fetched until their filter is set again).
    bool removeSystemFilter(const std::string& name, bool force = false);
    /// accountsUsing - names of the accounts whose filter is this one.
    std::vector<std::string> accountsUsing(const std::string& systemFilter);

    /// addressFilters - every address filter by name, with its patterns.
    std::vector<EmailAddressFilter> addressFilters();
    /// addressFilter - one with its patterns, or nothing.
    std::optional<EmailAddressFilter> addressFilter(const std::string& name);
    /// addAddressFilter - validate (validateAddressFilter and the limits) and insert;
    /// sets id. Throws InputError for a bad filter, a duplicate pattern or a taken name.
    void addAddressFilter(EmailAddressFilter& filter);
    /// updateAddressFilter - validate and replace type, active and every pattern of
    /// the filter of that name. Throws InputError as addAddressFilter or when missing.
    void updateAddressFilter(const EmailAddressFilter& filter);
    /// removeAddressFilter - false when there was none. Throws InputError naming the
    /// system filters while it is attached to any.
    bool removeAddressFilter(const std::string& name);
    /// systemFiltersUsing - names of the system filters that hold this address filter.
    std::vector<std::string> systemFiltersUsing(const std::string& addressFilter);

    /// attach - append the address filter to the system filter's list. Throws
    /// InputError when either is missing, it is attached already, or the system
    /// filter would exceed its limit (validateSystemFilter's message).
    void attach(const std::string& systemFilter, const std::string& addressFilter);
    /// detach - take it off the list. Throws InputError when either is missing or
    /// it was not attached.
    void detach(const std::string& systemFilter, const std::string& addressFilter);

    /// generation - the config generation (Store::generation): it grows with
    /// every filter change, and every account change.
    std::int64_t generation() { return store_.generation(); }

    /// resolveForAccount - the account's own filter if set, else the active inbound
    /// default, else none. An inactive account filter counts as none and sets a
    /// warning. Throws OperationError naming account and filter when the account's
    /// filter does not exist.
    FilterResolution resolveForAccount(const Account& account);
    /// resolve - the same for an account whose filter field is accountFilter;
    /// the warning and errors do not name an account.
    FilterResolution resolve(const std::string& accountFilter);

private:
    Store& store_;
    FilterLimits limits_;

    void checkSystemFilter(const SystemAddressFilter& filter) const;
    void checkAddressFilter(const EmailAddressFilter& filter) const;
    void writePatterns(std::int64_t addressFilterId, const EmailAddressFilter& filter);
    std::optional<std::int64_t> idOf(const char* table, const std::string& name);
    std::optional<std::string> otherActiveDefault(const SystemAddressFilter& filter);
    void loadMembers(SystemAddressFilter& filter);
};

} // namespace popgate
