// provisioning_test - accounts.d files synced into the store (core/provisioning.cpp).
#define BOOST_TEST_MODULE provisioning
#include "core/dbdrivers.h"
#include "core/errors.h"
#include "core/provisioning.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "tests/support/testsupport.h"

#include "core/filter_store.h"

#include <Poco/File.h>
#include <boost/test/unit_test.hpp>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace popgate;

namespace
{

struct Fixture {
    test::TempDir dir;
    Config config = Config::defaults();
    SecretBox box = SecretBox::fromKey(std::vector<unsigned char>(32, 3));
    std::unique_ptr<Store> store;
    Fixture()
    {
        registerDatabaseDrivers();
        config.set("database.path", dir.file("popgate.db"));
        store = std::make_unique<Store>(config, Store::Open::CreateFile);
        store->migrate();
        dir.write("secrets/vendor", "vendor-pass\n", 0600);
    }
    std::string accounts() const { return dir.file("accounts.d"); }
    void declare(const std::string& name, const std::string& body)
    {
        dir.write("accounts.d/" + name + ".conf", body);
    }
    std::string secrets() const { return dir.file("secrets"); }
    ProvisionReport apply()
    {
        return applyProvisioned(*store, box, loadProvisioned(accounts(), secrets()));
    }
    std::string vendorFile() const
    {
        return "server = pop.vendor.example\nuser = instance\nsecret_file = " +
               dir.file("secrets/vendor") + "\nmailbox = instance@vendor.example\n";
    }
};

} // namespace

BOOST_FIXTURE_TEST_CASE(missing_directory_declares_nothing, Fixture)
{
    BOOST_TEST(loadProvisioned(dir.file("nope")).empty());
}

BOOST_FIXTURE_TEST_CASE(add_then_unchanged_then_updated, Fixture)
{
    declare("vendor", vendorFile());
    ProvisionReport r = apply();
    BOOST_TEST(r.added == std::vector<std::string>{"vendor"});
    auto a = store->account("vendor");
    BOOST_TEST_REQUIRE(a.has_value());
    BOOST_TEST(a->provisioned);
    BOOST_TEST(a->active);
    BOOST_TEST(box.open(a->sealedSecret) == "vendor-pass");

    r = apply();
    BOOST_TEST(r.unchanged == std::vector<std::string>{"vendor"});
    BOOST_TEST(store->account("vendor")->sealedSecret == a->sealedSecret);

    // The operator disables it; a changed file updates it but keeps that choice.
    Account off = *store->account("vendor");
    off.active = false;
    store->updateAccount(off);
    declare("vendor", vendorFile() + "poll-interval = 5m\n");
    r = apply();
    BOOST_TEST(r.updated == std::vector<std::string>{"vendor"});
    BOOST_TEST(store->account("vendor")->pollInterval == 300);
    BOOST_TEST(!store->account("vendor")->active);
}

BOOST_FIXTURE_TEST_CASE(removed_file_deactivates_and_keeps, Fixture)
{
    declare("vendor", vendorFile());
    apply();
    Poco::File(dir.file("accounts.d/vendor.conf")).remove();
    const ProvisionReport r = apply();
    BOOST_TEST(r.deactivated == std::vector<std::string>{"vendor"});
    BOOST_TEST_REQUIRE(store->account("vendor").has_value());
    BOOST_TEST(!store->account("vendor")->active);
}

BOOST_FIXTURE_TEST_CASE(hand_made_account_is_not_taken_over, Fixture)
{
    Account mine;
    mine.name = "vendor";
    mine.server = "pop.mine.example";
    mine.auth = AuthKind::None;
    mine.mailbox = "me@mine.example";
    store->addAccount(mine);
    declare("vendor", vendorFile());
    BOOST_CHECK_THROW(apply(), InputError);
    BOOST_TEST(store->account("vendor")->server == "pop.mine.example");
}

BOOST_FIXTURE_TEST_CASE(bad_files_report_file_and_line_and_change_nothing, Fixture)
{
    declare("good", vendorFile());
    declare("bad",
            "server = pop.example.com\nport = 70000\npassword = inline\nmailbox = x@example.com\n");
    try {
        apply();
        BOOST_ERROR("bad file applied");
    } catch (const InputError& e) {
        const std::string msg = e.what();
        BOOST_TEST_MESSAGE(msg);
        BOOST_TEST(msg.find("bad.conf:2: port: must be 1-65535 (got 70000)") != std::string::npos);
        BOOST_TEST(msg.find("bad.conf:3: password: not allowed here") != std::string::npos);
        BOOST_TEST(msg.find("inline") == std::string::npos);
    }
    BOOST_TEST(store->accounts().empty());
}

namespace
{

struct SecretRow {
    const char* label;
    std::string secretFile; ///< the value of secret_file
    std::string message;    ///< expected in the problem; empty: accepted
};

std::string problemsOf(Fixture& f)
{
    try {
        loadProvisioned(f.accounts(), f.secrets());
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}

} // namespace

BOOST_FIXTURE_TEST_CASE(secret_files_are_checked_before_they_are_read, Fixture)
{
    // Content that would be recognisable if it ever reached a message or the store.
    const std::string leak = "LEAKED-CONTENT-7f3a";
    dir.write("outside", leak + "\n", 0600);
    dir.write("secrets/open", leak + "\n", 0644);
    dir.write("secrets/grouped", "group-pass\n", 0640);
    const std::string owned = dir.write("secrets/owned", leak + "\n", 0600);
    const passwd* nobody = ::getpwnam("nobody");
    BOOST_TEST_REQUIRE(nobody != nullptr);
    BOOST_TEST_REQUIRE(::chown(owned.c_str(), nobody->pw_uid, 0) == 0);
    BOOST_TEST_REQUIRE(::symlink("/etc/shadow", dir.file("secrets/shadow-link").c_str()) == 0);
    BOOST_TEST_REQUIRE(::symlink(dir.file("outside").c_str(), dir.file("secrets/out-link").c_str()) ==
                       0);
    BOOST_TEST_REQUIRE(::symlink("vendor", dir.file("secrets/in-link").c_str()) == 0);
    BOOST_TEST_REQUIRE(::mkfifo(dir.file("secrets/fifo").c_str(), 0600) == 0);
    Poco::File(dir.file("secrets/subdir")).createDirectories();
    const std::string out = " is outside secrets_dir " + secrets();
    const std::vector<SecretRow> rows = {
        {"/etc/shadow", "/etc/shadow", "secret_file: /etc/shadow" + out},
        {"outside the directory", dir.file("outside"), "secret_file: " + dir.file("outside") + out},
        {"dot-dot out", dir.file("secrets/../outside"), out},
        {"relative dot-dot out", "../outside", out},
        {"symlink to /etc/shadow", dir.file("secrets/shadow-link"),
         "(a symlink to /etc/shadow)" + out},
        {"symlink out", "out-link", "(a symlink to " + dir.file("outside") + ")" + out},
        {"readable by others", "open",
         "secret_file: " + dir.file("secrets/open") +
             " is accessible to others (mode 0644); chmod o-rwx it"},
        {"owned by another user", "owned",
         "secret_file: " + dir.file("secrets/owned") + " is owned by nobody; it must be owned by "
                                                       "root or popgate"},
        {"a FIFO", "fifo", "secret_file: " + dir.file("secrets/fifo") + " is not a regular file"},
        {"a directory", "subdir", " is not a regular file"},
        {"missing", "nope", "secret_file: " + dir.file("secrets/nope") + ": No such file"},
        {"empty value", "", "secret_file: is empty"},
        {"absolute inside", dir.file("secrets/vendor"), ""},
        {"relative inside", "vendor", ""},
        {"symlink inside", "in-link", ""},
        {"group-readable", "grouped", ""},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            declare("vendor", "server = pop.vendor.example\nuser = instance\n"
                              "mailbox = instance@vendor.example\nsecret_file = " +
                                  row.secretFile + "\n");
            const std::string problems = problemsOf(*this);
            if (row.message.empty()) {
                BOOST_TEST(problems.empty(), problems);
                continue;
            }
            BOOST_TEST(problems.find("vendor.conf:4: secret_file: ") != std::string::npos,
                       problems);
            BOOST_TEST(problems.find(row.message) != std::string::npos, problems);
            BOOST_TEST(problems.find("password: is required") == std::string::npos, problems);
            BOOST_TEST(problems.find(leak) == std::string::npos, problems);
            BOOST_CHECK_THROW(apply(), InputError);
            BOOST_TEST(store->accounts().empty());
        }
    }
}

BOOST_FIXTURE_TEST_CASE(names_and_ca_files_are_checked, Fixture)
{
    declare("vendor", vendorFile() + "filter = nosuch\noauth-profile = gone\n");
    try {
        apply();
        BOOST_ERROR("a missing filter was applied");
    } catch (const InputError& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("vendor.conf:5: filter: no such filter 'nosuch'") != std::string::npos,
                   msg);
        BOOST_TEST(msg.find("vendor.conf:6: oauth-profile: no such OAuth profile 'gone'") !=
                       std::string::npos,
                   msg);
    }
    BOOST_TEST(store->accounts().empty());

    SystemAddressFilter f;
    f.name = "nosuch";
    FilterStore(*store).addSystemFilter(f);
    declare("vendor", vendorFile() + "filter = nosuch\n");
    BOOST_TEST(apply().added == std::vector<std::string>{"vendor"});
    BOOST_TEST(brokenAccounts(*store).empty());
    BOOST_TEST(FilterStore(*store).removeSystemFilter("nosuch", true));
    BOOST_TEST(brokenAccounts(*store) ==
               std::vector<std::string>{"account 'vendor': filter: no such filter 'nosuch'"});

    dir.write("not.pem", "hello\n");
    declare("ca", vendorFile() + "tls-ca-file = " + dir.file("not.pem") + "\n");
    BOOST_CHECK_EXCEPTION(loadProvisioned(accounts(), secrets()), InputError,
                          [&](const InputError& e) {
                              return std::string(e.what()).find(
                                         "ca.conf:5: tls-ca-file: " + dir.file("not.pem") +
                                         " holds no PEM certificate") != std::string::npos;
                          });
    BOOST_CHECK_THROW(checkCaFile("/nonexistent"), InputError);
    BOOST_CHECK_NO_THROW(checkCaFile("/etc/ssl/certs/ca-certificates.crt"));
}

// A domain mailbox (docs/multidrop.md) in accounts.d: the fields under the
// names importers write, stored (migration 0008) and read back; without an
// envelope header the file is refused.
BOOST_FIXTURE_TEST_CASE(domain_mailbox_fields_round_trip, Fixture)
{
    declare("company", vendorFile() +
                           "recipients = envelope\nenvelope-header = x-original-to\n"
                           "envelope-header-skip = 1\nlocal-domains = Company.Example, "
                           "other.example\nrecipient-map = sales@company.example=sales-team\n"
                           "fallback-recipient = postmaster\n");
    BOOST_TEST(apply().added == std::vector<std::string>{"company"});
    const auto a = store->account("company");
    BOOST_TEST_REQUIRE(a.has_value());
    BOOST_TEST((a->recipientSource == RecipientSource::Envelope));
    BOOST_TEST(a->envelopeHeader == "X-Original-To");
    BOOST_TEST(a->envelopeHeaderSkip == 1);
    BOOST_TEST(a->localDomains == "company.example, other.example");
    BOOST_TEST(a->recipientMap == "sales@company.example=sales-team");
    BOOST_TEST(a->fallbackRecipient == "postmaster");
    BOOST_TEST(apply().unchanged == std::vector<std::string>{"company"});
    declare("company", vendorFile() + "recipients = envelope\nlocal-domains = company.example\n");
    BOOST_CHECK_THROW(apply(), InputError); // no envelope-header: never a guess
    BOOST_TEST(store->account("company")->envelopeHeader == "X-Original-To");
}
