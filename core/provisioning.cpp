// provisioning.cpp - accounts.d files to store, and the account checks that
// need the file system or the store (see provisioning.h).
#include "core/provisioning.h"

#include "core/config.h"
#include "core/errors.h"
#include "core/filter_store.h"
#include "core/keyvalue.h"
#include "core/oauth.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "core/text.h"

#include <Poco/Crypto/X509Certificate.h>
#include <Poco/DirectoryIterator.h>
#include <Poco/Exception.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <pwd.h>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace popgate
{

namespace
{

constexpr std::size_t kMaxSecretFile = 64 * 1024;
const char* const kPopgateUser = "popgate";

std::string errnoText()
{
    return std::strerror(errno);
}

// realPath - the path with every symlink and dot resolved; throws InputError.
std::string realPath(const std::string& path, const std::string& what)
{
    char* resolved = ::realpath(path.c_str(), nullptr);
    if (!resolved)
        throw InputError(what + path + ": " + errnoText());
    std::string out(resolved);
    std::free(resolved);
    return out;
}

std::string userName(uid_t uid)
{
    const passwd* pw = ::getpwuid(uid);
    return pw ? std::string(pw->pw_name) : "uid " + std::to_string(uid);
}

// ownerAllowed - root, or the popgate user when there is one.
bool ownerAllowed(uid_t uid)
{
    if (uid == 0)
        return true;
    const passwd* pw = ::getpwnam(kPopgateUser);
    return pw && pw->pw_uid == uid;
}

std::string octal(mode_t mode)
{
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

// Fd - closes on scope exit.
struct Fd {
    int fd;
    ~Fd()
    {
        if (fd >= 0)
            ::close(fd);
    }
};

std::string readSecret(const std::string& given, const std::string& secretsDir, bool confined)
{
    if (given.empty())
        throw InputError("secret_file: is empty (give a file" +
                         (confined ? " inside secrets_dir " + secretsDir : std::string()) + ")");
    std::string path = given;
    if (given.front() != '/') {
        if (!confined)
            throw InputError("secret_file: must be an absolute path (got '" + flatten(given) +
                             "')");
        path = secretsDir + "/" + given;
    }
    if (confined) {
        const std::string dir = realPath(secretsDir, "secret_file: secrets_dir ");
        const std::string real = realPath(path, "secret_file: ");
        if (real.compare(0, dir.size() + 1, dir + "/") != 0)
            throw InputError("secret_file: " + path +
                             (real != path ? " (a symlink to " + real + ")" : std::string()) +
                             " is outside secrets_dir " + secretsDir +
                             "; secret files must live there");
        path = real;
    }
    // Checked on the open descriptor, so what is checked is what is read;
    // O_NONBLOCK keeps a FIFO from hanging us before the check refuses it.
    Fd f{::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)};
    if (f.fd < 0)
        throw InputError("secret_file: cannot open " + path + ": " + errnoText());
    struct stat st {
    };
    if (::fstat(f.fd, &st) != 0)
        throw InputError("secret_file: cannot stat " + path + ": " + errnoText());
    if (!S_ISREG(st.st_mode))
        throw InputError("secret_file: " + path + " is not a regular file");
    if (confined && !ownerAllowed(st.st_uid))
        throw InputError("secret_file: " + path + " is owned by " + userName(st.st_uid) +
                         "; it must be owned by root or " + kPopgateUser +
                         " (chown root:" + kPopgateUser + " it, chmod 0640: popgated reads it as " +
                         kPopgateUser + ")");
    if (confined && (st.st_mode & 0007) != 0)
        throw InputError("secret_file: " + path + " is accessible to others (mode " +
                         octal(st.st_mode) + "); chmod o-rwx it (mode 0600 or 0640)");
    std::string content(kMaxSecretFile, '\0');
    std::size_t got = 0;
    while (got < content.size()) {
        const ssize_t n = ::read(f.fd, &content[got], content.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            throw InputError("secret_file: cannot read " + path + ": " + errnoText());
        if (n == 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    content.resize(got);
    std::string secret = content.substr(0, content.find('\n'));
    std::fill(content.begin(), content.end(), '\0');
    if (!secret.empty() && secret.back() == '\r')
        secret.pop_back();
    if (secret.empty())
        throw InputError("secret_file: " + path + " is empty");
    return secret;
}

ProvisionedAccount loadFile(const std::string& path, const std::string& name,
                            const std::string& secretsDir, bool confined,
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
    bool secretGiven = false;
    readKeyValues(text.str(), path, "field", problems, [&](const KeyValue& kv) {
        p.lines[kv.key] = kv.line;
        if (kv.key == "secret_file") {
            secretGiven = true; // a refused file is its own problem, not "password: is required"
            p.secret = readSecret(kv.value, secretsDir, confined);
        } else if (kv.key == "name" || kv.key == "password" || kv.key == "secret") {
            throw InputError(kv.key + ": not allowed here (the name is the file name; "
                                      "secrets come from secret_file)");
        } else {
            setAccountField(p.account, kv.key, kv.value);
            if (kv.key == "tls-ca-file" && !kv.value.empty())
                checkCaFile(kv.value);
        }
    });
    // Whole-record rules, with the secret counted as set when one was given.
    Account check = p.account;
    check.sealedSecret = secretGiven ? "set" : "";
    for (const auto& e : validateAccount(check).errors)
        problems.push_back(path + ": account '" + name + "': " + e.field + ": " + e.message);
    return p;
}

std::vector<ProvisionedAccount> loadDir(const std::string& dir, const std::string& secretsDir,
                                        bool confined)
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
        out.push_back(loadFile(f, name, secretsDir, confined, problems));
    }
    throwProblems(problems);
    return out;
}

} // namespace

std::string readSecretFile(const std::string& path, const std::string& secretsDir)
{
    return readSecret(path, secretsDir, true);
}

void checkCaFile(const std::string& path)
{
    struct stat st {
    };
    if (::stat(path.c_str(), &st) != 0)
        throw InputError("tls-ca-file: cannot read " + path + ": " + errnoText());
    if (!S_ISREG(st.st_mode))
        throw InputError("tls-ca-file: " + path + " is not a regular file");
    if (::access(path.c_str(), R_OK) != 0)
        throw InputError("tls-ca-file: cannot read " + path + ": " + errnoText());
    std::size_t count = 0;
    try {
        count = Poco::Crypto::X509Certificate::readPEM(path).size();
    } catch (const Poco::Exception&) {
        count = 0;
    }
    if (count == 0)
        throw InputError("tls-ca-file: " + path +
                         " holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)");
}

std::vector<ProvisionedAccount> loadProvisioned(const Config& config)
{
    return loadProvisioned(config.str("accounts_dir"), config.str("secrets_dir"));
}

std::vector<ProvisionedAccount> loadProvisioned(const std::string& dir,
                                                const std::string& secretsDir)
{
    return loadDir(dir, secretsDir, true);
}

std::vector<ProvisionedAccount> loadProvisioned(const std::string& dir)
{
    return loadDir(dir, "", false);
}

std::vector<FieldProblem> referenceProblems(Store& store, const Account& account)
{
    std::vector<FieldProblem> out;
    if (!account.filter.empty() && !FilterStore(store).loadSystemFilter(account.filter))
        out.push_back({"filter", "no such filter '" + flatten(account.filter) + "'"});
    if (!account.oauthProfile.empty() && !OAuthStore(store).profile(account.oauthProfile))
        out.push_back(
            {"oauth-profile", "no such OAuth profile '" + flatten(account.oauthProfile) + "'"});
    return out;
}

void requireReferences(Store& store, const std::vector<ProvisionedAccount>& declared)
{
    std::vector<std::string> problems;
    for (const auto& p : declared)
        for (const auto& e : referenceProblems(store, p.account)) {
            const auto line = p.lines.find(e.field);
            problems.push_back(p.origin +
                               (line != p.lines.end() ? ":" + std::to_string(line->second) : "") +
                               ": " + e.field + ": " + e.message);
        }
    throwProblems(problems);
}

std::vector<std::string> brokenAccounts(Store& store)
{
    std::vector<std::string> out;
    for (const auto& a : store.accounts())
        for (const auto& e : referenceProblems(store, a))
            out.push_back("account '" + a.name + "': " + e.field + ": " + e.message);
    return out;
}

ProvisionReport applyProvisioned(Store& store, const SecretBox& box,
                                 const std::vector<ProvisionedAccount>& declared)
{
    ProvisionReport report;
    requireReferences(store, declared);
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
