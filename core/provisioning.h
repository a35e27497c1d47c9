// provisioning.h - accounts declared in files (accounts_dir/NAME.conf), the
// popgate equivalent of the vendor-provisioned account on the reference page.
// Each file holds "field = value" lines with the account field names, plus
// secret_file = PATH (the secret is read from that file, never written inline).
// Synced into the store by `popgatectl config apply` and at daemon start;
// provisioned accounts can be deactivated there, not edited.
// Also here: the account checks that need the file system or the store
// (secret files, CA files, filter and OAuth profile names), shared by the
// accounts.d files and `popgatectl account add/set`.
// SECURITY: a secret file is checked (confined to secrets_dir by its real
// path, regular, owned by root or popgate, no permission for others) on the
// open descriptor before one byte of it is read.
#pragma once

#include "core/account.h"

#include <map>
#include <string>
#include <vector>

namespace popgate
{

class Config;
class SecretBox;
class Store;

struct ProvisionedAccount {
    Account account;    ///< provisioned = true; sealedSecret empty
    std::string secret; ///< plaintext from secret_file, if any
    std::string origin; ///< the file it came from
    std::map<std::string, int> lines; ///< field name -> its line in origin
};

/// readSecretFile - the first line of the secret file path (relative: inside
/// secretsDir). Throws InputError "secret_file: ..." naming the failed check
/// when its real path is not inside secretsDir, it is not a regular file, it
/// is owned by neither root nor the popgate user, others have any permission
/// on it, or it is empty; nothing is read from a file that fails a check.
std::string readSecretFile(const std::string& path, const std::string& secretsDir);

/// checkCaFile - throws InputError "tls-ca-file: ..." unless path is a
/// readable regular file holding at least one PEM certificate.
void checkCaFile(const std::string& path);

/// loadProvisioned - read every *.conf in accounts_dir (sorted), secret files
/// checked against secrets_dir; a missing dir is empty. Throws InputError
/// listing every problem as "FILE:LINE: message".
std::vector<ProvisionedAccount> loadProvisioned(const Config& config);
/// loadProvisioned - the same with the two directories given.
std::vector<ProvisionedAccount> loadProvisioned(const std::string& dir,
                                                const std::string& secretsDir);
/// loadProvisioned - LEGACY, for callers without a Config: secret files must be
/// regular files but are neither confined nor checked for owner and mode. Use
/// loadProvisioned(config).
std::vector<ProvisionedAccount> loadProvisioned(const std::string& dir);

/// referenceProblems - the account's filter and oauth-profile when the store
/// holds no such system filter or OAuth profile ("no such filter 'x'").
std::vector<FieldProblem> referenceProblems(Store& store, const Account& account);
/// requireReferences - throws InputError "FILE:LINE: FIELD: no such ..." for
/// every declared account whose filter or OAuth profile the store lacks.
void requireReferences(Store& store, const std::vector<ProvisionedAccount>& declared);
/// brokenAccounts - "account 'NAME': filter: no such filter 'x'" for every
/// stored account whose filter or OAuth profile is gone (such an account is
/// not fetched).
std::vector<std::string> brokenAccounts(Store& store);

struct ProvisionReport {
    std::vector<std::string> added, updated, unchanged, deactivated;
};

/// applyProvisioned - make the store match the files, all or nothing: new
/// files add accounts, changed files update them (an operator's enable or
/// disable is kept), accounts whose file is gone are deactivated (their state
/// is kept). Throws InputError if a file names a filter or OAuth profile the
/// store lacks, or a name is taken by an account made by hand;
/// OperationError on database failure.
ProvisionReport applyProvisioned(Store& store, const SecretBox& box,
                                 const std::vector<ProvisionedAccount>& declared);

} // namespace popgate
