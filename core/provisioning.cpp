// provisioning.cpp - accounts.d files to store (see provisioning.h).
#include "core/provisioning.h"

#include "core/errors.h"
#include "core/keyvalue.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "core/text.h"

#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace popgate
{

namespace
{

std::string readSecretFile(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        throw InputError("secret_file: cannot read " + path);
    std::string secret;
    std::getline(in, secret);
    if (!secret.empty() && secret.back() == '\r')
        secret.pop_back();
    if (secret.empty())
        throw InputError("secret_file: " + path + " is empty");
    return secret;
}

ProvisionedAccount loadFile(const std::string& path, const std::string& name,
                            std::vector<std::string>& problems)
{
    ProvisionedAccount p;
    p.origin = path;
    p.account.name = name;
    p.account.provisioned = true;
    std::ifstream in(path);
    if (!in) {
        problems.push_back(path + ": cannot read");
        return p;
    }
    std::ostringstream text;
    text << in.rdbuf();
    readKeyValues(text.str(), path, "field", problems, [&p](const KeyValue& kv) {
        if (kv.key == "secret_file")
            p.secret = readSecretFile(kv.value);
        else if (kv.key == "name" || kv.key == "password" || kv.key == "secret")
            throw InputError(kv.key + ": not allowed here (the name is the file name; "
                                      "secrets come from secret_file)");
        else
            setAccountField(p.account, kv.key, kv.value);
    });
    // Whole-record rules, with the secret counted as set when one was given.
    Account check = p.account;
    check.sealedSecret = p.secret.empty() ? "" : "set";
    for (const auto& e : validateAccount(check).errors)
        problems.push_back(path + ": account '" + name + "': " + e.field + ": " + e.message);
    return p;
}

} // namespace

std::vector<ProvisionedAccount> loadProvisioned(const std::string& dir)
{
    std::vector<ProvisionedAccount> out;
    if (!Poco::File(dir).exists())
        return out;
    std::vector<std::string> files;
    for (Poco::DirectoryIterator it(dir), end; it != end; ++it)
        if (it->isFile() && Poco::Path(it->path()).getExtension() == "conf")
            files.push_back(it->path());
    std::sort(files.begin(), files.end());
    std::vector<std::string> problems;
    for (const auto& f : files) {
        const std::string name = Poco::Path(f).getBaseName();
        if (!isValidName(name)) {
            problems.push_back(
                f + ": the file name must be an account name (1-64 of A-Z a-z 0-9 . _ -) + .conf");
            continue;
        }
        out.push_back(loadFile(f, name, problems));
    }
    throwProblems(problems);
    return out;
}

ProvisionReport applyProvisioned(Store& store, const SecretBox& box,
                                 const std::vector<ProvisionedAccount>& declared)
{
    ProvisionReport report;
    std::map<std::string, Account> existing;
    for (auto& a : store.accounts())
        existing.emplace(a.name, a);

    for (const auto& p : declared) {
        auto it = existing.find(p.account.name);
        if (it != existing.end() && !it->second.provisioned)
            throw InputError(p.origin + ": account '" + p.account.name +
                             "' exists already and was not provisioned; rename the file or "
                             "remove the account first");
    }

    // Everything was checked: now write.
    Transaction tx(store.session());
    {
        std::set<std::string> names;
        for (const auto& p : declared) {
            names.insert(p.account.name);
            Account want = p.account;
            auto it = existing.find(want.name);
            if (it == existing.end()) {
                want.sealedSecret = p.secret.empty() ? "" : box.seal(p.secret);
                store.addAccount(want);
                report.added.push_back(want.name);
                continue;
            }
            const Account& have = it->second;
            want.id = have.id;
            want.active = have.active; // the operator's enable/disable stands
            want.createdAt = have.createdAt;
            const std::string oldSecret =
                have.sealedSecret.empty() ? "" : box.open(have.sealedSecret);
            want.sealedSecret = oldSecret == p.secret
                                    ? have.sealedSecret
                                    : (p.secret.empty() ? "" : box.seal(p.secret));
            bool same = want.sealedSecret == have.sealedSecret;
            for (const auto& f : accountFields())
                if (std::string(f.name) != "active")
                    same = same && f.get(want) == f.get(have);
            if (same) {
                report.unchanged.push_back(want.name);
            } else {
                store.updateAccount(want);
                report.updated.push_back(want.name);
            }
        }
        for (auto& [name, account] : existing) {
            if (!account.provisioned || names.count(name) || !account.active)
                continue;
            account.active = false;
            store.updateAccount(account);
            report.deactivated.push_back(name);
        }
        tx.commit();
    }
    return report;
}

} // namespace popgate
