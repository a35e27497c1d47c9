// config_test - popgate.conf parsing, errors with line numbers, and the
// sample in conf/ generated from the key table (core/config.cpp).
#define BOOST_TEST_MODULE config
#include "core/config.h"
#include "core/errors.h"
#include "tests/support/testsupport.h"

#include <boost/test/unit_test.hpp>
#include <sstream>

using namespace popgate;

BOOST_AUTO_TEST_CASE(defaults)
{
    const Config c = Config::defaults();
    BOOST_TEST(c.str("database.driver") == "sqlite");
    BOOST_TEST(c.str("database.path") == "/var/lib/popgate/popgate.db");
    BOOST_TEST(c.str("secret_key_file") == "/etc/popgate/secret.key");
    BOOST_TEST(c.integer("debug_logging_expiry") == 86400);
}

BOOST_AUTO_TEST_CASE(parses_values_and_comments)
{
    const Config c = Config::parse("# comment\n\ndatabase.driver = postgresql\n"
                                   "database.connect = host=127.0.0.1 port=5432 dbname=x\n"
                                   "debug_logging_expiry = 2h\n",
                                   "t.conf");
    BOOST_TEST(c.str("database.driver") == "postgresql");
    BOOST_TEST(c.str("database.connect") == "host=127.0.0.1 port=5432 dbname=x");
    BOOST_TEST(c.integer("debug_logging_expiry") == 7200);
    BOOST_TEST(c.origin() == "t.conf");
}

BOOST_AUTO_TEST_CASE(every_problem_is_reported_with_its_line)
{
    try {
        Config::parse("database.driver = mysql\nno equals sign\ncolour = blue\n"
                      "database.path = relative.db\ndebug_logging_expiry = soon\n"
                      "database.driver = sqlite\n",
                      "popgate.conf");
        BOOST_ERROR("accepted a broken file");
    } catch (const InputError& e) {
        const std::string msg = e.what();
        BOOST_TEST_MESSAGE(msg);
        BOOST_TEST(msg.find("popgate.conf:1: database.driver: unknown value 'mysql' (expected "
                            "sqlite, postgresql)") != std::string::npos);
        BOOST_TEST(msg.find("popgate.conf:2: expected 'key = value'") != std::string::npos);
        BOOST_TEST(msg.find("popgate.conf:3: unknown key 'colour'") != std::string::npos);
        BOOST_TEST(msg.find("popgate.conf:4: database.path: must be an absolute path") !=
                   std::string::npos);
        BOOST_TEST(msg.find("popgate.conf:5: debug_logging_expiry: expected a duration") !=
                   std::string::npos);
        BOOST_TEST(msg.find("popgate.conf:6: database.driver: set twice") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(postgresql_needs_a_connection_string)
{
    BOOST_CHECK_THROW(Config::parse("database.driver = postgresql\n", "x"), InputError);
}

BOOST_AUTO_TEST_CASE(conf_sample_is_generated_from_the_table)
{
    // conf/popgate.conf is what `popgatectl config sample` prints; regenerate
    // it with that command when a key changes.
    const std::string shipped =
        test::readFile(std::string(POPGATE_SOURCE_DIR) + "/conf/popgate.conf");
    BOOST_TEST(shipped == sampleConfig());
    // The sample, uncommented, parses to the defaults.
    BOOST_CHECK_NO_THROW(Config::parse(sampleConfig(), "sample"));
    // Independently of sampleConfig(): each key of the table is a whole line
    // "#key = default" of the shipped file, and the shipped file uncommented
    // parses to exactly the documented defaults.
    std::string uncommented;
    std::istringstream lines(shipped);
    for (std::string line; std::getline(lines, line);)
        if (line.size() > 1 && line[0] == '#' && line.find(" =") != std::string::npos &&
            line[1] != ' ')
            uncommented += line.substr(1) + "\n";
    const Config parsed = Config::parse(uncommented, "shipped sample");
    for (const auto& key : configKeys()) {
        BOOST_TEST_CONTEXT(key.name)
        {
            const std::string line = std::string("#") + key.name + " = " + key.defaultValue;
            BOOST_TEST((shipped.find("\n" + line + "\n") != std::string::npos ||
                        (!*key.defaultValue && shipped.find(std::string("\n#") + key.name +
                                                            " =\n") != std::string::npos)),
                       "no line '" << line << "' in conf/popgate.conf");
            const bool listed =
                (uncommented.find(std::string(key.name) + " =") == 0u ||
                 uncommented.find(std::string("\n") + key.name + " =") != std::string::npos);
            BOOST_TEST(listed, "key missing from conf/popgate.conf");
            BOOST_TEST(parsed.str(key.name) == Config::defaults().str(key.name));
        }
    }
}

BOOST_AUTO_TEST_CASE(load_and_resolve)
{
    test::TempDir dir;
    const std::string path = dir.write("popgate.conf", "database.path = /tmp/x.db\n");
    BOOST_TEST(Config::resolve(path).str("database.path") == "/tmp/x.db");
    BOOST_CHECK_THROW(Config::resolve(dir.file("missing.conf")), InputError);
}
