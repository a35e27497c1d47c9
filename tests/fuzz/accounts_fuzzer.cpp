// accounts_fuzzer.cpp - accounts.d parsing (core/provisioning.h): the input is
// written to <tmp>/accounts/fuzz.conf (/dev/shm when it exists) and read with loadProvisioned, secret
// files confined to <tmp>/secrets (which holds one good secret file, "pw").
// Invariants: only InputError; what loads is one valid provisioned account
// named after its file; printing each of its fields back ("field = value",
// through the field table, plus its secret_file) loads the same account.
#include "core/account.h"
#include "core/errors.h"
#include "core/provisioning.h"
#include "tests/fuzz/fuzz_support.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace popgate;
using popgate::fuzz::shown;

namespace
{

std::string root;

void removeRoot()
{
    ::unlink((root + "/accounts/fuzz.conf").c_str());
    ::unlink((root + "/secrets/pw").c_str());
    ::rmdir((root + "/accounts").c_str());
    ::rmdir((root + "/secrets").c_str());
    ::rmdir(root.c_str());
}

void writeFile(const std::string& path, const std::string& text, mode_t mode)
{
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
    }
    ::chmod(path.c_str(), mode);
}

bool forbidden(const std::string& field)
{
    return field == "name" || field == "password" || field == "secret" || field == "secret_file";
}

std::string fieldsText(const Account& a)
{
    std::string out;
    for (const AccountField& f : accountFields())
        out += std::string(f.name) + "=" + shown(f.get(a)) + " ";
    return out;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    // tmpfs when there is one: the target writes a file per input.
    struct stat st {
    };
    const std::string base = ::stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp";
    std::string templ = base + "/popgate-fuzz-accounts-XXXXXX";
    if (!::mkdtemp(templ.data()))
        std::abort();
    root = templ;
    ::mkdir((root + "/accounts").c_str(), 0700);
    ::mkdir((root + "/secrets").c_str(), 0700);
    writeFile(root + "/secrets/pw", "s3cret\n", 0600);
    std::atexit(removeRoot);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string text(reinterpret_cast<const char*>(data), size);
    const std::string file = root + "/accounts/fuzz.conf";
    writeFile(file, text, 0600);
    std::vector<ProvisionedAccount> loaded;
    try {
        loaded = loadProvisioned(root + "/accounts", root + "/secrets");
    } catch (const InputError&) {
        return 0;
    }
    const std::string where = "file " + shown(text);
    FUZZ_CHECK(loaded.size() == 1, where);
    const ProvisionedAccount& p = loaded.front();
    FUZZ_CHECK(p.account.name == "fuzz" && p.account.provisioned && p.origin == file, where);
    FUZZ_CHECK(p.secret.empty() || p.secret == "s3cret", where + " secret " + shown(p.secret));
    Account check = p.account;
    check.sealedSecret = p.lines.count("secret_file") ? "set" : "";
    FUZZ_CHECK(validateAccount(check).ok(), where + " loads an invalid account");

    std::string printed;
    for (const AccountField& f : accountFields()) {
        if (forbidden(f.name))
            continue;
        const std::string value = f.get(p.account);
        FUZZ_CHECK(value.find_first_of(std::string("\n\0", 2)) == std::string::npos,
                   where + " field " + f.name + " prints " + shown(value));
        printed += std::string(f.name) + " = " + value + "\n";
    }
    if (p.lines.count("secret_file"))
        printed += "secret_file = pw\n";
    writeFile(file, printed, 0600);
    std::vector<ProvisionedAccount> again;
    try {
        again = loadProvisioned(root + "/accounts", root + "/secrets");
    } catch (const InputError& e) {
        FUZZ_CHECK(false, where + " printed as " + shown(printed) + " is refused: " + e.what());
    }
    FUZZ_CHECK(again.size() == 1, where);
    FUZZ_CHECK(fieldsText(again.front().account) == fieldsText(p.account),
               where + ": " + fieldsText(p.account) + " printed reads " +
                   fieldsText(again.front().account));
    FUZZ_CHECK(again.front().secret == p.secret, where);
    return 0;
}
