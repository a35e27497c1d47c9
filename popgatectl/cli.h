// cli.h - what every popgatectl command shares: the parsed command line, the
// configuration, lazy access to the store and the secret box, and output
// helpers. Commands throw InputError (exit 2) or OperationError (exit 1).
#pragma once

#include "core/config.h"
#include "core/message_store.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "core/text.h"

#include <Poco/Util/OptionSet.h>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace popgate::cli
{

struct Context {
    Config config = Config::defaults();
    bool json = false;
    std::ostream* out = nullptr;
    std::ostream* err = nullptr;

    /// store - the store at the current schema (opened on first use).
    Store& store();
    /// openStore - the store without the schema check (db commands).
    Store& openStore(Store::Open mode = Store::Open::Existing);
    /// secrets - the secret box, creating the key file when missing.
    const SecretBox& secrets();

private:
    std::unique_ptr<Store> store_;
    std::optional<SecretBox> box_;
};

/// ParsedArgs - a command's positional arguments and its --options.
struct ParsedArgs {
    std::vector<std::string> positional;
    std::map<std::string, std::string> options; ///< in the order of the OptionSet
    std::vector<std::pair<std::string, std::string>> ordered;
    bool has(const std::string& name) const { return options.count(name) != 0; }
};

/// parseArgs - process args against options with Poco's OptionProcessor;
/// throws InputError for an unknown option or a missing argument.
ParsedArgs parseArgs(const std::vector<std::string>& args, const Poco::Util::OptionSet& options);

/// requirePositional - exactly n positional arguments, else InputError with usage.
void requirePositional(const ParsedArgs& args, std::size_t n, const std::string& usage);

/// readSecret - from --password-stdin, --password-file or a no-echo prompt
/// on a terminal; nothing when none applies. Throws InputError.
std::optional<std::string> readSecret(const ParsedArgs& args, bool prompt,
                                      const std::string& account);

/// printJson - json (a Poco::JSON Object or Array) indented by 2 on out, valid
/// UTF-8 with no raw control byte (EscapeFor::Json): values from mail stay exact
/// where JSON can carry them.
template <typename Json> void printJson(std::ostream& out, const Json& json)
{
    std::ostringstream text;
    json.stringify(text, 2);
    out << escapeText(text.str(), EscapeFor::Json);
}
/// printJsonLine - json on one line (JSON Lines, for output that streams), escaped as printJson.
template <typename Json> void printJsonLine(std::ostream& out, const Json& json)
{
    std::ostringstream text;
    json.stringify(text);
    out << escapeText(text.str(), EscapeFor::Json) << "\n";
}
/// isoTime - "2026-11-28T18:00:00Z", or "-" for 0.
std::string isoTime(std::int64_t seconds);
/// ageText - "45s", "12m", "3h", "5d": a duration in the largest unit that fits twice.
std::string ageText(std::int64_t seconds);
/// parseSince - seconds since the epoch for "2h" (ago), "2026-11-28" or
/// "2026-11-28T10:00:00Z"; 0 for "". Throws InputError.
std::int64_t parseSince(const std::string& text);
/// requireMessageRecord - the ledger row whose id idText gives; InputError for a
/// malformed or unknown id.
MessageRecord requireMessageRecord(MessageStore& ms, const std::string& idText);

int accountCommand(Context& ctx, const std::vector<std::string>& args);
/// fillAccountForm - the guided form of `account add` (account_form.cpp): asks each
/// field in the reference page's order, draft's values as defaults, until the core
/// takes each answer; the password without echo, sealed. Throws InputError at end of input.
Account fillAccountForm(Context& ctx, Account draft);
/// printAccountSummary - the form's answers, the password only as (set).
void printAccountSummary(Context& ctx, const Account& account);
/// askYesNo - a yes/no question on the terminal, asked until answered.
bool askYesNo(Context& ctx, const std::string& question, bool byDefault);
/// messageCommand - `message list|show|delete|purge|release|retry`.
int messageCommand(Context& ctx, const std::vector<std::string>& args);
/// messageShow / messageDelete / messagePurge - message_inspect.cpp.
int messageShow(Context& ctx, const std::vector<std::string>& args);
int messageDelete(Context& ctx, const std::vector<std::string>& args);
int messagePurge(Context& ctx, const std::vector<std::string>& args);
/// logCommand - `log`: the message log, filtered.
int logCommand(Context& ctx, const std::vector<std::string>& args);
/// statusCommand - `status [NAME] [--long]`: whether popgated runs, the receiving
/// switch, each account's poll state and 24-hour counts (status_commands.cpp).
int statusCommand(Context& ctx, const std::vector<std::string>& args);
/// receivingCommand - `receiving [on|off]`: the gateway-wide switch (status_commands.cpp).
int receivingCommand(Context& ctx, const std::vector<std::string>& args);
/// kFilterTestFailed - `filter test` reached no verdict (the database, a filter gone).
constexpr int kFilterTestFailed = 3;
/// filterCommand - `filter ...`; `filter test` returns 0 allowed, 1 blocked,
/// kFilterTestFailed when it could not judge.
int filterCommand(Context& ctx, const std::vector<std::string>& args);
/// oauthCommand - `oauth profile add|set|list|show|remove`, `oauth status` (oauth_commands.cpp).
int oauthCommand(Context& ctx, const std::vector<std::string>& args);
/// hostsCommand - `hosts`: the popgated hosts on a PostgreSQL database (host_commands.cpp).
int hostsCommand(Context& ctx, const std::vector<std::string>& args);
/// leaseSummaries - per account id, who holds its lease and until when, for
/// `status` ("HOST ISO-TIME" with json); empty with SQLite.
std::map<std::int64_t, std::string> leaseSummaries(Context& ctx, bool json);
/// authorizeAccount - `account authorize NAME`: obtain and store the account's tokens.
int authorizeAccount(Context& ctx, const std::vector<std::string>& args);

} // namespace popgate::cli
