// provisioning_test - accounts.d files synced into the store (core/provisioning.cpp).
#define BOOST_TEST_MODULE provisioning
#include "core/dbdrivers.h"
#include "core/errors.h"
#include "core/provisioning.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "tests/support/testsupport.h"

#include <Poco/File.h>
#include <boost/test/unit_test.hpp>

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
    ProvisionReport apply() { return applyProvisioned(*store, box, loadProvisioned(accounts())); }
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
