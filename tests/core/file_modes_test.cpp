// file_modes_test - the files the core creates have their documented modes
// whatever the umask (core/store.cpp, core/secretbox.cpp): a SQLite database
// and its -wal and -shm files 0660 (never others), a new database directory
// 0770, a key 0600; a database an earlier popgate left readable by others is
// closed to them by `db migrate` (Open::CreateFile). popgatectl goes through
// the same calls, so this is what `popgatectl db migrate` does too.
#define BOOST_TEST_MODULE file_modes
#include "core/config.h"
#include "core/dbdrivers.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "tests/support/testsupport.h"

#include <Poco/File.h>
#include <boost/test/unit_test.hpp>
#include <sstream>
#include <sys/stat.h>

using namespace popgate;

namespace
{

mode_t modeOf(const std::string& path)
{
    struct stat st {
    };
    BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0, path);
    return st.st_mode & 07777;
}

std::string octal(mode_t mode)
{
    std::ostringstream out;
    out << std::oct << mode;
    return out.str();
}

// UmaskScope - sets the umask, restores the old one when it goes.
struct UmaskScope {
    explicit UmaskScope(mode_t mask) : old(::umask(mask)) {}
    ~UmaskScope() { ::umask(old); }
    mode_t old;
};

Config sqliteAt(const std::string& path)
{
    return Config::parse("database.path = " + path + "\n", "test");
}

} // namespace

BOOST_AUTO_TEST_CASE(database_wal_shm_and_key_modes_whatever_the_umask)
{
    registerDatabaseDrivers();
    for (mode_t mask : {mode_t(0), mode_t(022), mode_t(077)}) {
        BOOST_TEST_CONTEXT("umask " << octal(mask))
        {
            test::TempDir dir;
            const std::string db = dir.file("new/popgate.db");
            UmaskScope scope(mask);
            {
                Store store(sqliteAt(db), Store::Open::CreateFile);
                store.migrate();
                // The writer holds the WAL and the shared memory index open.
                BOOST_TEST(modeOf(db) == 0660u);
                BOOST_TEST(modeOf(db + "-wal") == 0660u);
                BOOST_TEST(modeOf(db + "-shm") == 0660u);
                BOOST_TEST(modeOf(dir.file("new")) == 0770u);
            }
            loadKeyFile(dir.file("secret.key"), true);
            BOOST_TEST(modeOf(dir.file("secret.key")) == 0600u);
            // No temporary file is left beside it: "new" and "secret.key" only.
            std::vector<std::string> names;
            Poco::File(dir.path()).list(names);
            BOOST_TEST(names.size() == 2u, "left: " << names.size() << " entries");
        }
    }
}

BOOST_AUTO_TEST_CASE(migrate_closes_a_database_left_readable_by_others)
{
    registerDatabaseDrivers();
    test::TempDir dir;
    const std::string db = dir.file("popgate.db");
    {
        Store store(sqliteAt(db), Store::Open::CreateFile);
        store.migrate();
    }
    ::chmod(db.c_str(), 0644); // as an earlier popgate created it under umask 022
    {
        Store store(sqliteAt(db), Store::Open::CreateFile);
        store.migrate();
    }
    BOOST_TEST(modeOf(db) == 0640u);
    {
        Store reader(sqliteAt(db)); // a daemon's open changes nothing
        BOOST_TEST(modeOf(db) == 0640u);
    }
}

BOOST_AUTO_TEST_CASE(check_key_file_says_what_load_says)
{
    test::TempDir dir;
    struct Row {
        const char* label;
        std::string path;
        KeyFile when;
        bool refused;
    };
    const std::string open = dir.write("open.key", std::string(64, 'a') + "\n", 0644);
    const std::string good = dir.write("good.key", std::string(64, 'a') + "\n", 0640);
    const std::string bad = dir.write("bad.key", "abcd\n", 0600);
    const std::vector<Row> rows = {
        {"readable by others", open, KeyFile::Creatable, true},
        {"malformed", bad, KeyFile::Optional, true},
        {"good", good, KeyFile::Required, false},
        {"missing, required", dir.file("none.key"), KeyFile::Required, true},
        {"missing, creatable here", dir.file("none.key"), KeyFile::Creatable, false},
        {"missing, optional", dir.file("none.key"), KeyFile::Optional, false},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            std::string checked, loaded;
            try {
                checkKeyFile(row.path, row.when);
            } catch (const std::exception& e) {
                checked = e.what();
            }
            BOOST_TEST(checked.empty() == !row.refused, checked);
            if (row.refused) {
                try {
                    loadKeyFile(row.path, false);
                } catch (const std::exception& e) {
                    loaded = e.what();
                }
                BOOST_TEST(checked == loaded);
            }
        }
    }
    BOOST_TEST(!Poco::File(dir.file("none.key")).exists(), "checking creates nothing");
}
