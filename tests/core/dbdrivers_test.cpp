// dbdrivers_test - the database drivers (core/dbdrivers.cpp): SQLite linked
// in, PostgreSQL loaded from popgate-pgsql.so on the first PostgreSQL session,
// so that no program maps libpq and its dependencies otherwise. Needs no
// server: the PostgreSQL cases connect to a closed port. ctest points
// $POPGATE_MODULE_DIR at the module in this build tree.
#define BOOST_TEST_MODULE dbdrivers
#include "core/dbdrivers.h"
#include "core/errors.h"
#include "core/pgsql_module.h"
#include "core/store.h"
#include "tests/support/testsupport.h"

#include <Poco/Data/Session.h>
#include <boost/test/unit_test.hpp>
#include <cstdlib>

using namespace popgate;

namespace
{

bool mapped(const std::string& library)
{
    return test::readFile("/proc/self/maps").find(library) != std::string::npos;
}

Config unreachablePostgresql()
{
    Config c = Config::defaults();
    c.set("database.driver", "postgresql");
    c.set("database.connect", "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2");
    return c;
}

// openError - what opening the store says (it must fail).
std::string openError(const Config& config)
{
    try {
        Store store(config);
    } catch (const OperationError& e) {
        return e.what();
    }
    BOOST_ERROR("opened a database that is not there");
    return "";
}

} // namespace

// The cases run in this order: the module is loaded once per process.

BOOST_AUTO_TEST_CASE(programs_do_not_link_libpq)
{
    for (const char* program : {"plugin/popgated/popgated", "popgatectl/popgatectl",
                                "plugin/popgate-milter/popgate-milter"}) {
        BOOST_TEST_CONTEXT(program)
        {
            // What ldd does: the dynamic linker lists the libraries and exits.
            const auto r =
                test::run(test::binary(program), {}, "", {{"LD_TRACE_LOADED_OBJECTS", "1"}});
            BOOST_TEST(r.status == 0, r.err);
            BOOST_TEST(r.out.find("libPocoDataSQLite") != std::string::npos, r.out);
            BOOST_TEST(r.out.find("libpq") == std::string::npos, r.out);
            BOOST_TEST(r.out.find("PostgreSQL") == std::string::npos, r.out);
        }
    }
}

BOOST_AUTO_TEST_CASE(sqlite_maps_no_postgresql_library)
{
    registerDatabaseDrivers();
    test::TempDir dir;
    Config c = Config::defaults();
    c.set("database.path", dir.file("popgate.db"));
    Store store(c, Store::Open::CreateFile);
    store.migrate();
    BOOST_TEST(!mapped("libpq"));
    BOOST_TEST(!mapped(kPgsqlModuleFile));
}

// SQLite's statements prepared once (core/prepared.h): the same statement runs
// again with new values, a failed step throws OperationError naming the
// database, and the statement is ready again after it.
BOOST_AUTO_TEST_CASE(sqlite_prepared_statements_run_again)
{
    registerDatabaseDrivers();
    test::TempDir dir;
    Config c = Config::defaults();
    c.set("database.path", dir.file("popgate.db"));
    Store store(c, Store::Open::CreateFile);
    PreparedCache* cache = store.prepared();
    BOOST_REQUIRE(cache);
    store.session() << "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)",
        Poco::Data::Keywords::now;
    static const char* const insert = "INSERT INTO t (k, v) VALUES ($1, $2)";
    static const char* const select = "SELECT v FROM t WHERE k = $1";
    for (std::int64_t k = 1; k <= 3; ++k) {
        Prepared p(cache->get(insert));
        p->bind(1, k);
        p->bind(2, "value " + std::to_string(k));
        BOOST_TEST(!p->step());
    }
    BOOST_TEST(&cache->get(insert) == &cache->get(insert)); // one statement, kept
    {
        Prepared p(cache->get(select));
        p->bind(1, std::int64_t{2});
        BOOST_REQUIRE(p->step());
        BOOST_TEST(p->text(0) == "value 2");
        BOOST_TEST(!p->step());
    }
    try {
        Prepared p(cache->get(insert));
        p->bind(1, std::int64_t{1}); // exists: the primary key refuses it
        p->bind(2, "again");
        p->step();
        BOOST_FAIL("a duplicate key was inserted");
    } catch (const OperationError& e) {
        BOOST_TEST(std::string(e.what()).find(store.describe()) != std::string::npos);
    }
    Prepared p(cache->get(select));
    p->bind(1, std::int64_t{1});
    BOOST_REQUIRE(p->step());
    BOOST_TEST(p->text(0) == "value 1");
}

BOOST_AUTO_TEST_CASE(a_missing_module_names_its_path)
{
    registerDatabaseDrivers();
    const char* buildTree = std::getenv(kModuleDirEnv);
    BOOST_REQUIRE_MESSAGE(buildTree, "ctest sets $POPGATE_MODULE_DIR");
    const std::string saved = buildTree;
    test::TempDir empty;
    ::setenv(kModuleDirEnv, empty.path().c_str(), 1);
    BOOST_TEST(pgsqlModulePath() == empty.file(kPgsqlModuleFile));
    const std::string msg = openError(unreachablePostgresql());
    ::setenv(kModuleDirEnv, saved.c_str(), 1);
    BOOST_TEST(msg.find("database postgresql (host=127.0.0.1 port=1") != std::string::npos, msg);
    BOOST_TEST(msg.find(empty.file(kPgsqlModuleFile)) != std::string::npos, msg);
    BOOST_TEST(msg.find(kModuleDirEnv) != std::string::npos, msg);
    BOOST_TEST(!mapped("libpq"));
}

BOOST_AUTO_TEST_CASE(the_module_loads_on_the_next_postgresql_session)
{
    registerDatabaseDrivers();
    // libpq itself answers now: the module was found after the failure above.
    const std::string msg = openError(unreachablePostgresql());
    BOOST_TEST(msg.find("Connection refused") != std::string::npos, msg);
    BOOST_TEST(mapped("libpq"));
    BOOST_TEST(mapped(kPgsqlModuleFile));
}
