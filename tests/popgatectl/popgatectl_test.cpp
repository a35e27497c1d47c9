// popgatectl_test - the admin CLI end to end through the real binary, on a
// throwaway SQLite database and (one smoke pass) the test PostgreSQL server.
#define BOOST_TEST_MODULE popgatectl
#include "tests/support/testsupport.h"

#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/test/unit_test.hpp>
#include <ctime>
#include <sys/stat.h>
#include <unistd.h>

using namespace popgate;

namespace
{

const std::string kSecret = "Tr0ub4dor&3-unique-secret";

struct Cli {
    test::TempDir dir;
    std::string conf;
    explicit Cli(const std::string& extra = "")
    {
        conf = dir.write("popgate.conf", "database.path = " + dir.file("db/popgate.db") +
                                             "\nsecret_key_file = " + dir.file("secret.key") +
                                             "\naccounts_dir = " + dir.file("accounts.d") +
                                             "\nsecrets_dir = " + dir.file("secrets") + "\n" +
                                             extra);
    }
    test::RunResult operator()(std::vector<std::string> args, const std::string& input = "") const
    {
        args.insert(args.begin(), "--config=" + conf);
        const auto r = test::run(test::binary("popgatectl/popgatectl"), args, input);
        // No output of any command ever shows the secret.
        BOOST_TEST(r.out.find(kSecret) == std::string::npos);
        BOOST_TEST(r.err.find(kSecret) == std::string::npos);
        return r;
    }
    std::string listJson() const { return (*this)({"account", "list", "--json"}).out; }
};

Poco::JSON::Array::Ptr parseArray(const std::string& text)
{
    Poco::JSON::Parser parser;
    return parser.parse(text).extract<Poco::JSON::Array::Ptr>();
}

void addHelpdesk(const Cli& cli)
{
    const auto r = cli({"account", "add", "helpdesk", "--server=pop.example.com", "--user=helpdesk",
                        "--mailbox=service-desk@company.com", "--password-stdin"},
                       kSecret + "\n");
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
}

} // namespace

BOOST_AUTO_TEST_CASE(account_life_cycle)
{
    Cli cli;
    BOOST_TEST(cli({"account", "list"}).status == 1); // no database yet
    auto r = cli({"db", "migrate"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(r.out.find("applied 0001_accounts") != std::string::npos);
    BOOST_TEST(cli({"db", "status"}).status == 0);
    addHelpdesk(cli);

    auto list = parseArray(cli.listJson());
    BOOST_TEST_REQUIRE(list->size() == 1u);
    auto a = list->getObject(0);
    BOOST_TEST(a->getValue<std::string>("name") == "helpdesk");
    BOOST_TEST(a->getValue<int>("port") == 995);
    BOOST_TEST(a->getValue<std::string>("security") == "ssl-tls");
    BOOST_TEST(a->getValue<bool>("password_set"));
    BOOST_TEST(!a->has("password"));

    r = cli({"account", "show", "helpdesk"});
    BOOST_TEST(r.status == 0);
    BOOST_TEST(r.out.find("password:         (set)") != std::string::npos, r.out);

    // The secret is sealed in the database file too.
    BOOST_TEST(test::readFile(cli.dir.file("db/popgate.db")).find(kSecret) == std::string::npos);
    struct stat st {
    };
    BOOST_TEST_REQUIRE(::stat(cli.dir.file("secret.key").c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);

    r = cli({"account", "set", "helpdesk", "--security=starttls", "--port", "1110"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(r.err.find("may expose your data") != std::string::npos);
    a = parseArray(cli.listJson())->getObject(0);
    BOOST_TEST(a->getValue<int>("port") == 1110);
    BOOST_TEST(a->getValue<std::string>("security") == "starttls");

    BOOST_TEST(cli({"account", "disable", "helpdesk"}).status == 0);
    BOOST_TEST(!parseArray(cli.listJson())->getObject(0)->getValue<bool>("active"));
    BOOST_TEST(cli({"account", "enable", "helpdesk"}).status == 0);
    BOOST_TEST(cli({"account", "remove", "helpdesk"}).status == 0);
    BOOST_TEST(parseArray(cli.listJson())->size() == 0u);
}

struct BadRow {
    const char* label;
    std::vector<std::string> args;
    const char* message;
};

BOOST_AUTO_TEST_CASE(bad_input_exits_2_and_changes_nothing)
{
    Cli cli;
    BOOST_TEST_REQUIRE(cli({"db", "migrate"}).status == 0);
    addHelpdesk(cli);
    const std::string before = cli.listJson();
    const std::string base = "--mailbox=x@example.com";
    const std::vector<BadRow> rows = {
        {"port 0",
         {"account", "add", "n1", "--server=h", "--auth=none", base, "--port=0"},
         "account 'n1': port: must be 1-65535 (got 0)"},
        {"port 70000",
         {"account", "add", "n1", "--server=h", "--auth=none", base, "--port=70000"},
         "port: must be 1-65535 (got 70000)"},
        {"unknown auth",
         {"account", "add", "n1", "--server=h", base, "--auth=kerberos"},
         "unknown authentication 'kerberos'"},
        {"unknown security",
         {"account", "add", "n1", "--server=h", "--auth=none", base, "--security=ssl3"},
         "unknown connection security 'ssl3'"},
        {"empty server",
         {"account", "add", "n1", "--server=", "--auth=none", base},
         "account 'n1': server: is required"},
        {"duplicate name",
         {"account", "add", "helpdesk", "--server=h", "--auth=none", base},
         "account 'helpdesk': name: an account of that name exists already"},
        {"password with auth none",
         {"account", "add", "n1", "--server=h", "--auth=none", base, "--password-stdin"},
         "account 'n1': password: is set but authentication is none"},
        {"password as argument",
         {"account", "add", "n1", "--server=h", "--password=" + kSecret},
         "password: never given as an argument"},
        {"10 kB server",
         {"account", "add", "n1", "--auth=none", base, "--server=" + std::string(10240, 'a')},
         "server: too long"},
        {"10 kB name",
         {"account", "add", std::string(10240, 'n'), "--server=h", "--auth=none", base},
         "name: must be 1-64 characters"},
        {"SQL in name",
         {"account", "add", "x'; DROP TABLE accounts;--", "--server=h", "--auth=none", base},
         "name: must be 1-64 characters"},
        {"quote in name",
         {"account", "add", "o'brien", "--server=h", "--auth=none", base},
         "name: must be 1-64 characters"},
        {"unknown option", {"account", "add", "n1", "--server=h", "--colour=blue"}, "colour"},
        {"unknown command", {"account", "frobnicate"}, "unknown command 'account frobnicate'"},
        {"set unknown account",
         {"account", "set", "nobody", "--port=1"},
         "account 'nobody': no such account"},
        {"set bad port",
         {"account", "set", "helpdesk", "--port=0"},
         "account 'helpdesk': port: must be 1-65535"},
        {"set password with none",
         {"account", "set", "helpdesk", "--auth=none"},
         "account 'helpdesk': password: is set but authentication is none"},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const auto r = cli(row.args, kSecret + "\n");
            BOOST_TEST(r.status == 2);
            BOOST_TEST(r.err.find(row.message) != std::string::npos, "stderr: " << r.err);
            BOOST_TEST(r.err.rfind("popgatectl: ", 0) == 0u);
        }
    }
    BOOST_TEST(cli.listJson() == before);
}

BOOST_AUTO_TEST_CASE(broken_config_file_exits_2_with_line_numbers)
{
    Cli cli("database.driver = mysql\nbogus line\n");
    const auto r = cli({"config", "check"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(r.err.find("popgate.conf:5: database.driver: unknown value 'mysql'") !=
                   std::string::npos,
               r.err);
    BOOST_TEST(r.err.find("popgate.conf:6: expected 'key = value'") != std::string::npos, r.err);
    BOOST_TEST(cli({"account", "list"}).status == 2);
    BOOST_TEST(!Poco::File(cli.dir.file("db/popgate.db")).exists());
}

BOOST_AUTO_TEST_CASE(provisioned_accounts_can_be_disabled_not_edited)
{
    Cli cli;
    BOOST_TEST_REQUIRE(cli({"db", "migrate"}).status == 0);
    const std::string secretFile = cli.dir.write("secrets/vendor", kSecret + "\n", 0600);
    cli.dir.write("accounts.d/vendor.conf",
                  "server = pop.vendor.example\nuser = instance\nsecret_file = " + secretFile +
                      "\nmailbox = instance@vendor.example\n");
    auto r = cli({"config", "check"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(r.out.find("1 provisioned account(s)") != std::string::npos);
    r = cli({"config", "apply"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(r.out.find("account 'vendor' added") != std::string::npos);
    BOOST_TEST(parseArray(cli.listJson())->getObject(0)->getValue<bool>("provisioned"));

    r = cli({"account", "disable", "vendor"});
    BOOST_TEST(r.status == 0, r.err);
    r = cli({"account", "set", "vendor", "--server=evil.example"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(r.err.find("account 'vendor': provisioned from") != std::string::npos, r.err);
    BOOST_TEST(cli({"account", "remove", "vendor"}).status == 2);
    auto a = parseArray(cli.listJson())->getObject(0);
    BOOST_TEST(a->getValue<std::string>("server") == "pop.vendor.example");
    BOOST_TEST(!a->getValue<bool>("active"));
    // Re-applying the files keeps the operator's choice.
    BOOST_TEST(cli({"config", "apply"}).out.find("unchanged") != std::string::npos);
    BOOST_TEST(!parseArray(cli.listJson())->getObject(0)->getValue<bool>("active"));
}

BOOST_AUTO_TEST_CASE(non_admin_is_refused_before_the_database)
{
    // Run a copy of the binary as nobody (no popgate-admin membership).
    Cli cli;
    test::TempDir bin;
    ::chmod(bin.path().c_str(), 0755);
    const std::string copy = bin.file("popgatectl");
    Poco::File(test::binary("popgatectl/popgatectl")).copyTo(copy);
    ::chmod(copy.c_str(), 0755);
    const auto r =
        test::run("/usr/bin/setpriv", {"--reuid=nobody", "--regid=nogroup", "--clear-groups", copy,
                                       "--config=" + cli.conf, "db", "migrate"});
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find("permission denied: the admin role is required") != std::string::npos,
               r.err);
    BOOST_TEST(!Poco::File(cli.dir.file("db")).exists());
}

BOOST_AUTO_TEST_CASE(postgresql_smoke)
{
    const std::string connect = test::requireEnv("POPGATE_TEST_PG_CONNECT");
    const std::string db = "popgate_cli_" + std::to_string(::getpid());
    BOOST_TEST_REQUIRE(test::run("/usr/bin/env", {"psql", "-q", connect + " dbname=postgres", "-c",
                                                  "CREATE DATABASE " + db})
                           .status == 0);
    {
        Cli cli("database.driver = postgresql\ndatabase.connect = " + connect + " dbname=" + db +
                "\n");
        BOOST_TEST_REQUIRE(cli({"db", "migrate"}).status == 0);
        addHelpdesk(cli);
        auto list = parseArray(cli.listJson());
        BOOST_TEST_REQUIRE(list->size() == 1u);
        BOOST_TEST(list->getObject(0)->getValue<std::string>("mailbox") ==
                   "service-desk@company.com");
        BOOST_TEST(
            cli({"account", "add", "helpdesk", "--server=h", "--auth=none", "--mailbox=a@b.c"})
                .status == 2);
        // The message commands' SQL (issue [O]) on PostgreSQL: list, show, delete, log.
        const std::string copy = cli.dir.write("held.eml", "From: a@bad.example\r\n\r\nx\r\n");
        const std::string now = std::to_string(std::time(nullptr));
        BOOST_TEST_REQUIRE(
            test::run("/usr/bin/env",
                      {"psql", "-q", "-v", "ON_ERROR_STOP=1", connect + " dbname=" + db, "-c",
                       "INSERT INTO messages (account_id, uidl, state, deleted, envelope_from, "
                       "quarantine_path, created_at, updated_at) SELECT id, 'u1', 'ignored', 1, "
                       "'a@bad.example', '" + copy + "', " + now + ", " + now +
                           " FROM accounts; INSERT INTO message_log (at, account, uidl, status) "
                           "VALUES (" + now + ", 'helpdesk', 'u1', 'ignored')"})
                .status == 0);
        auto r = cli({"message", "list", "--account=helpdesk", "--state=ignored", "--since=1h",
                      "--limit=5", "--json"});
        BOOST_TEST_REQUIRE(r.status == 0, r.err);
        auto rows = parseArray(r.out);
        BOOST_TEST_REQUIRE(rows->size() == 1u);
        const std::string id = std::to_string(rows->getObject(0)->getValue<int>("id"));
        r = cli({"message", "show", id, "--json"});
        BOOST_TEST(r.status == 0, r.err);
        BOOST_TEST(cli({"log", "--account=helpdesk", "--state=ignored"}).status == 0);
        r = cli({"message", "delete", id});
        BOOST_TEST(r.status == 0, r.err);
        BOOST_TEST(::access(copy.c_str(), F_OK) != 0);
        r = cli({"log", "--account=helpdesk", "--state=purged", "--json"});
        BOOST_TEST(parseArray(r.out)->size() == 1u, r.out << r.err);
    }
    test::run("/usr/bin/env",
              {"psql", "-q", connect + " dbname=postgres", "-c", "DROP DATABASE " + db});
}
