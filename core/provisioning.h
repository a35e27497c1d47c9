// provisioning.h - accounts declared in files (accounts_dir/NAME.conf), the
// popgate equivalent of the vendor-provisioned account on the reference page.
// Each file holds "field = value" lines with the account field names, plus
// secret_file = PATH (the secret is read from that file, never written inline).
// Synced into the store by `popgatectl config apply` and at daemon start;
// provisioned accounts can be deactivated there, not edited.
#pragma once

#include "core/account.h"

#include <string>
#include <vector>

namespace popgate
{

class SecretBox;
class Store;

struct ProvisionedAccount {
    Account account;    ///< provisioned = true; sealedSecret empty
    std::string secret; ///< plaintext from secret_file, if any
    std::string origin; ///< the file it came from
};

/// loadProvisioned - read every *.conf in dir (sorted); a missing dir is empty.
/// Throws InputError listing every problem as "FILE:LINE: message".
std::vector<ProvisionedAccount> loadProvisioned(const std::string& dir);

struct ProvisionReport {
    std::vector<std::string> added, updated, unchanged, deactivated;
};

/// applyProvisioned - make the store match the files, all or nothing: new
/// files add accounts, changed files update them (an operator's enable or
/// disable is kept), accounts whose file is gone are deactivated (their state
/// is kept). Throws InputError if a file is invalid or a name is taken by an
/// account made by hand; OperationError on database failure.
ProvisionReport applyProvisioned(Store& store, const SecretBox& box,
                                 const std::vector<ProvisionedAccount>& declared);

} // namespace popgate
