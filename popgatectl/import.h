// import.h - `popgatectl import fetchmail|getmail|mpop`: accounts and the record
// of fetched UIDLs taken over from the tools popgate replaces (import_commands.cpp).
#pragma once

#include "popgatectl/cli.h"

#include <string>
#include <vector>

namespace popgate::cli
{

/// importCommand - shows (and with --apply stores) the accounts an rc file
/// declares, their passwords sealed and their fetched UIDLs in the ledger.
/// Returns 0; throws InputError (bad usage, unreadable or malformed file) or
/// OperationError (the store failed).
int importCommand(Context& ctx, const std::vector<std::string>& args);

} // namespace popgate::cli
