// store_test - the SQL store on real SQLite and on a real PostgreSQL server
// (core/store.cpp, core/migrations.cpp). The PostgreSQL cases need the server
// scripts/test.sh starts ($POPGATE_TEST_PG_CONNECT); without it they fail.
#define BOOST_TEST_MODULE store
#include "core/dbdrivers.h"
#include "core/errors.h"
#include "core/migrations.h"
#include "core/store.h"
#include "tests/support/testdb.h"
#include "tests/support/testsupport.h"

#include <Poco/Data/Session.h>
#include <Poco/Process.h>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <memory>

using namespace popgate;
using namespace Poco::Data::Keywords;

namespace
{

Account sample(const std::string& name)
{
    Account a;
    a.name = name;
    a.server = "pop.example.com";
    a.user = "O'Brien \"the user\"; DROP TABLE accounts;--";
    a.sealedSecret = "gcm1:c2VhbGVk";
    a.security = Security::StartTls;
    a.port = 1110;
    a.filter = "inbound-default";
    a.debugLogging = true;
    a.mailbox = "service-desk@company.com";
    a.deliverTo = "helpdesk, ops@example.org";
    a.pollInterval = 300;
    a.keepOnServer = true;
    a.maxMessageSize = 50LL * 1024 * 1024 * 1024; // beyond 32 bits on purpose
    a.tlsCaFile = "/etc/ssl/certs/ca-certificates.crt";
    a.tlsPin = std::string(64, 'a');
    return a;
}

} // namespace

BOOST_AUTO_TEST_CASE(migrations_are_numbered_per_dialect)
{
    for (const char* d : test::kDialects) {
        const auto list = migrationsFor(d);
        BOOST_TEST_REQUIRE(!list.empty());
        for (std::size_t i = 0; i < list.size(); ++i)
            BOOST_TEST(list[i]->version == static_cast<int>(i + 1), d << " " << list[i]->name);
    }
    BOOST_TEST(latestSchemaVersion("sqlite") == latestSchemaVersion("postgresql"));
    BOOST_TEST(
        splitStatements("-- c\nCREATE TABLE a (x INT);\n\nCREATE TABLE b (y INT);\n").size() == 2u);
}

BOOST_AUTO_TEST_CASE(migrate_empty_then_migrated)
{
    for (const char* d : test::kDialects) {
        BOOST_TEST_CONTEXT(d)
        {
            test::TestDatabase backend(d);
            Store store(backend.config(), Store::Open::CreateFile);
            BOOST_TEST(store.schemaVersion() == 0);
            BOOST_CHECK_THROW(store.requireCurrentSchema(), OperationError);
            const auto applied = store.migrate();
            BOOST_TEST(applied.size() == static_cast<std::size_t>(store.latestVersion()));
            BOOST_TEST(store.schemaVersion() == store.latestVersion());
            BOOST_CHECK_NO_THROW(store.requireCurrentSchema());
            BOOST_TEST(store.migrate().empty()); // a migrated database is left alone
            Store again(backend.config());
            BOOST_TEST(again.schemaVersion() == store.latestVersion());
        }
    }
}

BOOST_AUTO_TEST_CASE(newer_schema_is_refused)
{
    for (const char* d : test::kDialects) {
        BOOST_TEST_CONTEXT(d)
        {
            test::TestDatabase backend(d);
            Store store(backend.config(), Store::Open::CreateFile);
            store.migrate();
            store.session() << "INSERT INTO schema_version (version, name, applied_at) VALUES "
                               "(999, 'future', 0)",
                now;
            try {
                store.requireCurrentSchema();
                BOOST_ERROR("newer schema accepted");
            } catch (const OperationError& e) {
                BOOST_TEST(
                    std::string(e.what()).find("schema version 999 is newer than this popgate") !=
                    std::string::npos);
            }
            BOOST_CHECK_THROW(store.migrate(), OperationError);
        }
    }
}

BOOST_AUTO_TEST_CASE(missing_sqlite_file_is_not_created_by_readers)
{
    test::TempDir dir;
    Config c = Config::defaults();
    c.set("database.path", dir.file("none/popgate.db"));
    registerDatabaseDrivers();
    try {
        Store store(c);
        BOOST_ERROR("opened a missing database");
    } catch (const OperationError& e) {
        BOOST_TEST(std::string(e.what()).find("popgatectl db migrate") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(account_round_trip)
{
    for (const char* d : test::kDialects) {
        BOOST_TEST_CONTEXT(d)
        {
            test::TestDatabase backend(d);
            Store store(backend.config(), Store::Open::CreateFile);
            store.migrate();
            Account a = sample("helpdesk");
            store.addAccount(a);
            BOOST_TEST(a.id > 0);
            BOOST_TEST(a.createdAt > 0);
            const auto got = store.account("helpdesk");
            BOOST_TEST_REQUIRE(got.has_value());
            BOOST_TEST(got->user == a.user);
            BOOST_TEST(got->sealedSecret == a.sealedSecret);
            BOOST_TEST(securityName(got->security) == "starttls");
            BOOST_TEST(got->port == 1110);
            BOOST_TEST(got->filter == "inbound-default");
            BOOST_TEST(got->debugLogging);
            BOOST_TEST(got->keepOnServer);
            BOOST_TEST(got->maxMessageSize == a.maxMessageSize);
            BOOST_TEST(got->deliverTo == a.deliverTo);
            BOOST_TEST(got->tlsPin == a.tlsPin);
            BOOST_TEST(got->pollInterval == 300);
            BOOST_TEST(!got->provisioned);
            for (const auto& f : accountFields())
                BOOST_TEST(f.get(*got) == f.get(a), f.name);

            Account b = sample("second");
            b.auth = AuthKind::OAuth2;
            b.oauthProfile = "google";
            b.sealedSecret.clear();
            store.addAccount(b);
            BOOST_TEST(store.accounts().size() == 2u);
            BOOST_TEST(store.accounts()[0].name == "helpdesk");

            Account dup = sample("helpdesk");
            BOOST_CHECK_THROW(store.addAccount(dup), InputError);
            BOOST_TEST(store.accounts().size() == 2u);

            Account changed = *got;
            changed.active = false;
            changed.server = "pop2.example.com";
            store.updateAccount(changed);
            BOOST_TEST(!store.account("helpdesk")->active);
            BOOST_TEST(store.account("helpdesk")->server == "pop2.example.com");

            BOOST_TEST(store.removeAccount("helpdesk"));
            BOOST_TEST(!store.removeAccount("helpdesk"));
            BOOST_TEST(!store.account("helpdesk").has_value());
            BOOST_TEST(!store.account("x' OR '1'='1").has_value());
        }
    }
}

// popgated re-reads its accounts only when the generation moved: every
// account write must move it, in its own transaction, and a refused one not.
BOOST_AUTO_TEST_CASE(account_writes_move_the_configuration_generation)
{
    for (const char* d : test::kDialects) {
        BOOST_TEST_CONTEXT(d)
        {
            test::TestDatabase backend(d);
            Store store(backend.config(), Store::Open::CreateFile);
            store.migrate();
            std::int64_t g = store.generation();
            auto moved = [&] {
                const std::int64_t current = store.generation();
                const bool up = current > g;
                g = current;
                return up;
            };
            Account a = sample("gen");
            store.addAccount(a);
            BOOST_TEST(moved(), "add");
            Account dup = sample("gen");
            BOOST_CHECK_THROW(store.addAccount(dup), InputError);
            BOOST_TEST(!moved(), "a refused add");
            a.active = false;
            store.updateAccount(a);
            BOOST_TEST(moved(), "update");
            Account gone = a;
            gone.id = a.id + 1000;
            BOOST_CHECK_THROW(store.updateAccount(gone), OperationError);
            BOOST_TEST(!moved(), "an update of no row");
            BOOST_TEST(store.removeAccount("gen"));
            BOOST_TEST(moved(), "remove");
            BOOST_TEST(!store.removeAccount("gen"));
            BOOST_TEST(!moved(), "a remove of nothing");
            store.accounts();
            BOOST_TEST(!moved(), "a read");
        }
    }
}

BOOST_AUTO_TEST_CASE(unreachable_postgresql_names_the_database)
{
    registerDatabaseDrivers();
    Config c = Config::defaults();
    c.set("database.driver", "postgresql");
    c.set("database.connect",
          "host=127.0.0.1 port=1 dbname=x user=x password=hunter2 connect_timeout=2");
    try {
        Store store(c);
        BOOST_ERROR("connected to nothing");
    } catch (const OperationError& e) {
        const std::string msg = e.what();
        BOOST_TEST(msg.find("database postgresql (host=127.0.0.1 port=1") != std::string::npos,
                   msg);
        BOOST_TEST(msg.find("hunter2") == std::string::npos, msg);
    }
}
