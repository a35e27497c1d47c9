// dry_run.h - popgated --dry-run: one pass that connects, lists, retrieves and
// screens each account's mail exactly as a poll would judge it (the plan's
// rule planAction, the screen stage's screenMessages, the policy's
// TooLarge decision), and prints what a poll would do with each message. It
// delivers, deletes and records nothing: no SMTP, no DELE (the session ends
// with QUIT and no DELE sent, so the server changes nothing), no ledger,
// status or log row, no journal, no spool file; it takes no lease and no
// lock, so it may run beside a popgated (which may then find the mailbox in
// use for a moment and try again). An OAuth account's access token may be
// refreshed and stored, as any use of the account would.
#pragma once

#include "core/config.h"

#include <Poco/Logger.h>
#include <ostream>
#include <string>

namespace popgate
{

/// runDryRun - every active account (onlyAccount: that one, active or not);
/// the report on out, escaped for a terminal. Returns 0 when every account
/// was reached, 1 when one failed (connect, log in, list, retrieve). Throws
/// InputError for an unknown onlyAccount, OperationError for the database.
int runDryRun(const Config& config, const std::string& onlyAccount, std::ostream& out,
              Poco::Logger& log);

} // namespace popgate
