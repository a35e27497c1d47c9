// filter_cli_test - `popgatectl filter ...` end to end through the real binary
// (popgatectl/filter_commands.cpp) on a throwaway SQLite database, and one
// pass on the test PostgreSQL server. `filter test` runs the issue's vectors
// and exits 0 allowed, 1 blocked.
#define BOOST_TEST_MODULE filter_cli
#include "tests/support/testsupport.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <unistd.h>

using namespace popgate;

namespace
{

using Args = std::vector<std::string>;

struct Cli {
    test::TempDir dir;
    std::string conf;
    explicit Cli(const std::string& database = "")
    {
        const std::string db =
            database.empty() ? "database.path = " + dir.file("db/popgate.db") + "\n" : database;
        conf = dir.write("popgate.conf", db + "secret_key_file = " + dir.file("secret.key") +
                                             "\naccounts_dir = " + dir.file("accounts.d") + "\n");
    }
    test::RunResult operator()(Args args) const
    {
        args.insert(args.begin(), "--config=" + conf);
        return test::run(test::binary("popgatectl/popgatectl"), args);
    }
    // ok - run and require exit 0.
    std::string ok(const Args& args) const
    {
        const auto r = (*this)(args);
        BOOST_TEST_REQUIRE(r.status == 0, args[0] << " " << args[1] << ": " << r.err);
        return r.out;
    }
};

Poco::Dynamic::Var parseJson(const std::string& text)
{
    Poco::JSON::Parser parser;
    return parser.parse(text);
}

bool contains(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

// migrated - a CLI on a migrated database with the filters of the issue's vectors:
// system filters "inbound-default" (default: spam = deny{bad.com}), "staff"
// (allow{corp.com} except leaver@corp.com) and "tlds" (deny{*.com} + allow{corp.com}).
void addVectors(const Cli& cli)
{
    cli.ok({"db", "migrate"});
    cli.ok({"filter", "add", "inbound-default", "--default=yes", "--description=the default"});
    cli.ok({"filter", "add", "staff"});
    cli.ok({"filter", "add", "tlds"});
    cli.ok({"filter", "address", "add", "spam", "--type=deny", "--domains=bad.com"});
    cli.ok({"filter", "address", "add", "corp", "--type=allow", "--domains=corp.com",
            "--exceptions=leaver@corp.com"});
    cli.ok({"filter", "address", "add", "dotcom", "--type=deny", "--domains=*.com"});
    cli.ok({"filter", "address", "add", "partners", "--type=allow", "--domains=corp.com"});
    cli.ok({"filter", "attach", "inbound-default", "spam"});
    cli.ok({"filter", "attach", "staff", "corp"});
    cli.ok({"filter", "attach", "tlds", "dotcom"});
    cli.ok({"filter", "attach", "tlds", "partners"});
}

void addAccount(const Cli& cli, const std::string& name, const std::string& filter)
{
    Args args{"account",     "add",
              name,          "--server=pop.example.com",
              "--auth=none", "--mailbox=" + name + "@example.com"};
    if (!filter.empty())
        args.push_back("--filter=" + filter);
    cli.ok(args);
}

struct TestRow {
    const char* label;
    Args args;
    int status;
    std::string output; ///< expected in stdout
};

void runRows(const Cli& cli, const std::vector<TestRow>& rows)
{
    for (const TestRow& r : rows) {
        BOOST_TEST_CONTEXT(r.label)
        {
            Args args{"filter", "test"};
            args.insert(args.end(), r.args.begin(), r.args.end());
            const auto res = cli(args);
            BOOST_TEST(res.status == r.status, "stderr: " << res.err << " stdout: " << res.out);
            BOOST_TEST(contains(res.out, r.output), res.out);
        }
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(filter_test_on_the_issue_vectors)
{
    Cli cli;
    addVectors(cli);
    const std::vector<TestRow> rows = {
        {"deny{bad.com}: x@bad.com blocked",
         {"inbound-default", "--from=x@bad.com"},
         1,
         "blocked: From <x@bad.com> blocked by system filter \"inbound-default\", address filter "
         "\"spam\" (deny, domain bad.com)\nsteps:\n  From <x@bad.com>: address filter \"spam\" "
         "(deny): DENY (domain bad.com)\n"},
        {"deny{bad.com}: x@ok.com allowed",
         {"inbound-default", "--from=x@ok.com"},
         0,
         "allowed: From <x@ok.com> allowed by system filter \"inbound-default\""},
        {"no name: the inbound default", {"--from=X@Bad.Com"}, 1, "(the inbound default)"},
        {"envelope and From both tested",
         {"inbound-default", "--envelope=a@ok.com", "--from=b@bad.com"},
         1,
         "  sender <a@ok.com>: address filter \"spam\" (deny): no opinion (domain not listed)\n"
         "  From <b@bad.com>: address filter \"spam\" (deny): DENY (domain bad.com)\n"},
        {"allow{corp.com}+exception: leaver blocked",
         {"staff", "--from=leaver@corp.com"},
         1,
         "(allow, exception leaver@corp.com)"},
        {"allow{corp.com}+exception: staff allowed",
         {"staff", "--from=someone@corp.com"},
         0,
         "allowed: "},
        {"allow{corp.com}: other domain blocked",
         {"staff", "--from=x@other.org"},
         1,
         "(allow, domain not listed)"},
        {"deny{*.com}+allow{corp.com}: corp allowed",
         {"tlds", "--from=x@corp.com"},
         0,
         "address filter \"partners\" (allow, domain corp.com), which beats address filter "
         "\"dotcom\" (deny, domain *.com)"},
        {"deny{*.com}+allow{corp.com}: other blocked",
         {"tlds", "--from=x@other.com"},
         1,
         "(deny, domain *.com)"},
        {"deny{*.com}+allow{corp.com}: .org blocked by the allow list",
         {"tlds", "--from=x@other.org"},
         1,
         "address filter \"partners\" (allow, domain not listed)"},
    };
    runRows(cli, rows);

    // Editing an address filter changes the next verdict.
    cli.ok({"filter", "address", "set", "spam", "--add-exception=boss@bad.com"});
    runRows(cli, {{"exception added",
                   {"inbound-default", "--from=boss@bad.com"},
                   0,
                   "(deny, exception boss@bad.com)"}});
    cli.ok(
        {"filter", "address", "set", "spam", "--remove-domain=bad.com", "--add-domain=worse.com"});
    runRows(cli, {{"domain replaced", {"inbound-default", "--from=x@bad.com"}, 0, "allowed: "},
                  {"new domain", {"inbound-default", "--from=x@worse.com"}, 1, "blocked: "}});
    // An inactive system filter allows everything, and says so.
    cli.ok({"filter", "set", "tlds", "--active=no"});
    runRows(cli, {{"inactive system filter",
                   {"tlds", "--from=x@other.com"},
                   0,
                   "system filter inactive: ALLOW"}});
}

// filter test reads popgate.conf as the enforcement does (issue 21): with
// allow_null_sender = no the null sender is blocked, as popgate-milter answers 550.
BOOST_AUTO_TEST_CASE(filter_test_reads_allow_null_sender)
{
    Cli cli;
    addVectors(cli);
    runRows(cli, {{"bounces allowed (the default)",
                   {"inbound-default", "--envelope=<>"},
                   0,
                   "allowed: "}});
    std::ofstream(cli.conf, std::ios::app) << "allow_null_sender = no\n";
    runRows(cli, {{"allow_null_sender = no", {"inbound-default", "--envelope=<>"}, 1, "blocked: "},
                  {"a sender still judged",
                   {"inbound-default", "--envelope=a@ok.com", "--from=b@ok.com"},
                   0,
                   "allowed: "},
                  {"a control byte in From fails closed",
                   {"inbound-default", "--envelope=a@ok.com", "--from=B\x1b <b@ok.com>"},
                   1,
                   "blocked: "}});
}

BOOST_AUTO_TEST_CASE(filter_test_resolves_accounts)
{
    Cli cli;
    addVectors(cli);
    addAccount(cli, "helpdesk", "staff");
    addAccount(cli, "plain", "");
    addAccount(cli, "old", "tlds");
    addAccount(cli, "broken", "");
    cli.ok({"filter", "set", "tlds", "--active=no"});
    // A filter that is named when entered but removed with --force later.
    cli.ok({"filter", "add", "ghost"});
    cli.ok({"account", "set", "broken", "--filter=ghost"});
    cli.ok({"filter", "remove", "ghost", "--force"});

    runRows(
        cli,
        {
            {"own filter",
             {"--account=helpdesk", "--from=leaver@corp.com"},
             1,
             "system filter: \"staff\" (the filter of account 'helpdesk')"},
            {"own filter allows", {"--account=helpdesk", "--from=boss@corp.com"}, 0, "allowed: "},
            {"default",
             {"--account=plain", "--from=x@bad.com"},
             1,
             "system filter: \"inbound-default\" (the inbound default"},
            {"inactive own filter counts as none",
             {"--account=old", "--from=x@other.com"},
             0,
             "allowed: no system filter applies"},
        });
    auto r = cli({"filter", "test", "--account=old", "--from=x@other.com"});
    BOOST_TEST(
        contains(r.err, "warning: account 'old': filter: system filter \"tlds\" is inactive"),
        r.err);
    r = cli({"filter", "test", "--account=broken", "--from=x@ok.com"});
    BOOST_TEST(r.status == 3, "no verdict: not 1, which says blocked");
    BOOST_TEST(contains(r.err, "account 'broken': filter: system filter \"ghost\" does not exist"),
               r.err);
    r = cli({"filter", "test", "--account=nobody", "--from=x@ok.com"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(contains(r.err, "account 'nobody': no such account"), r.err);

    // Without an active inbound default an account without a filter gets none.
    cli.ok({"filter", "set", "inbound-default", "--default=no", "--force"});
    runRows(cli, {{"no default",
                   {"--account=plain", "--from=x@bad.com"},
                   0,
                   "allowed: no system filter applies"}});
}

BOOST_AUTO_TEST_CASE(remove_is_refused_while_in_use)
{
    Cli cli;
    addVectors(cli);
    addAccount(cli, "helpdesk", "staff");
    addAccount(cli, "sales", "staff");
    auto r = cli({"filter", "remove", "staff"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(contains(r.err, "popgatectl: system filter \"staff\": in use by account(s) "
                               "'helpdesk', 'sales'"),
               r.err);
    r = cli({"filter", "address", "remove", "corp"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(contains(r.err, "address filter \"corp\": attached to system filter(s) 'staff'; "
                               "detach it first"),
               r.err);
    cli.ok({"account", "set", "helpdesk", "--filter=inbound-default"});
    cli.ok({"account", "remove", "sales"});
    BOOST_TEST(contains(cli.ok({"filter", "remove", "staff"}), "system filter \"staff\" removed"));
    BOOST_TEST(contains(cli.ok({"filter", "address", "remove", "corp"}), "removed"));
    BOOST_TEST(cli({"filter", "show", "staff"}).status == 2);
}

BOOST_AUTO_TEST_CASE(list_and_show_json)
{
    Cli cli;
    addVectors(cli);
    addAccount(cli, "helpdesk", "tlds");
    auto list = parseJson(cli.ok({"filter", "list", "--json"})).extract<Poco::JSON::Array::Ptr>();
    BOOST_TEST_REQUIRE(list->size() == 3u);
    auto first = list->getObject(0);
    BOOST_TEST(first->getValue<std::string>("name") == "inbound-default");
    BOOST_TEST(first->getValue<bool>("default"));
    BOOST_TEST(first->getValue<std::string>("description") == "the default");
    BOOST_TEST(first->getArray("address_filters")->getElement<std::string>(0) == "spam");

    auto show =
        parseJson(cli.ok({"filter", "show", "tlds", "--json"})).extract<Poco::JSON::Object::Ptr>();
    auto members = show->getArray("address_filters");
    BOOST_TEST_REQUIRE(members->size() == 2u);
    BOOST_TEST(members->getObject(0)->getValue<std::string>("name") == "dotcom");
    BOOST_TEST(members->getObject(1)->getValue<std::string>("type") == "allow");
    BOOST_TEST(members->getObject(1)->getArray("domains")->getElement<std::string>(0) ==
               "corp.com");
    BOOST_TEST(show->getArray("accounts")->getElement<std::string>(0) == "helpdesk");

    auto address = parseJson(cli.ok({"filter", "address", "show", "corp", "--json"}))
                       .extract<Poco::JSON::Object::Ptr>();
    BOOST_TEST(address->getArray("exceptions")->getElement<std::string>(0) == "leaver@corp.com");
    BOOST_TEST(address->getArray("system_filters")->getElement<std::string>(0) == "staff");
    const auto addresses = parseJson(cli.ok({"filter", "address", "list", "--json"}))
                               .extract<Poco::JSON::Array::Ptr>();
    BOOST_TEST(addresses->size() == 4u);

    const std::string text = cli.ok({"filter", "show", "tlds"});
    BOOST_TEST(contains(text, "  1. dotcom (deny): 1 domain(s), 0 exception(s)\n"), text);
    BOOST_TEST(contains(text, "accounts:         helpdesk\n"), text);
    BOOST_TEST(contains(cli.ok({"filter", "list"}), "inbound-default"));
    BOOST_TEST(contains(cli.ok({"filter", "address", "list"}), "partners"));
}

struct BadRow {
    const char* label;
    Args args;
    const char* message;
};

BOOST_AUTO_TEST_CASE(bad_input_and_limits_exit_2_and_change_nothing)
{
    Cli cli;
    addVectors(cli);
    std::string domains101, exceptions1001;
    for (int i = 0; i < 101; ++i)
        domains101 += (i ? "," : "") + std::string("d") + std::to_string(i) + ".example";
    for (int i = 0; i < 1001; ++i)
        exceptions1001 += (i ? "," : "") + std::string("u") + std::to_string(i) + "@example.com";
    const std::string beforeSystem = cli.ok({"filter", "list", "--json"});
    const std::string beforeAddress = cli.ok({"filter", "address", "list", "--json"});

    const std::vector<BadRow> rows = {
        {"101 domains",
         {"filter", "address", "add", "big", "--type=deny", "--domains=" + domains101},
         "address filter \"big\": 101 domains; the limit is 100"},
        {"1001 exceptions",
         {"filter", "address", "add", "big", "--type=deny", "--exceptions=" + exceptions1001},
         "address filter \"big\": 1001 exceptions; the limit is 1000"},
        {"second active default",
         {"filter", "add", "another", "--default=yes"},
         "system filter \"another\": default: system filter \"inbound-default\" is already the "
         "active inbound default"},
        {"set a second default",
         {"filter", "set", "staff", "--default=yes"},
         "is already the active inbound default"},
        {"bad direction",
         {"filter", "add", "x", "--direction=sideways"},
         "system filter \"x\": direction: direction \"sideways\": expected inbound or outbound"},
        {"bad yes/no",
         {"filter", "add", "x", "--active=maybe"},
         "system filter \"x\": active: expected yes or no, got 'maybe'"},
        {"taken name",
         {"filter", "add", "staff"},
         "name: a system filter of that name exists already"},
        {"SQL in name",
         {"filter", "add", "x'; DROP TABLE system_filters;--"},
         "name: must be 1-64 characters"},
        {"10 kB name",
         {"filter", "address", "add", std::string(10240, 'n'), "--type=deny"},
         "name: must be 1-64 characters"},
        {"missing type",
         {"filter", "address", "add", "x"},
         "address filter \"x\": type: is required"},
        {"bad type",
         {"filter", "address", "add", "x", "--type=maybe"},
         "address filter \"x\": type: filter type \"maybe\": expected allow or deny"},
        {"address as domain",
         {"filter", "address", "add", "x", "--type=deny", "--domains=a@b.com"},
         "put addresses in the exceptions"},
        {"add a listed domain",
         {"filter", "address", "set", "spam", "--add-domain=BAD.com"},
         "address filter \"spam\": domains: \"BAD.com\" is listed already"},
        {"remove an unlisted exception",
         {"filter", "address", "set", "spam", "--remove-exception=a@b.c"},
         "address filter \"spam\": exceptions: \"a@b.c\" is not listed"},
        {"set nothing", {"filter", "address", "set", "spam"}, "nothing to change"},
        {"attach twice", {"filter", "attach", "staff", "corp"}, "is attached already"},
        {"attach unknown",
         {"filter", "attach", "staff", "nope"},
         "address filter \"nope\": no such address filter"},
        {"detach unattached", {"filter", "detach", "staff", "spam"}, "is not attached"},
        {"show unknown",
         {"filter", "show", "nope"},
         "system filter \"nope\": no such system filter"},
        {"remove unknown", {"filter", "address", "remove", "nope"}, "no such address filter"},
        {"test unknown filter",
         {"filter", "test", "nope", "--from=a@b.com"},
         "no such system filter"},
        {"test without address", {"filter", "test", "staff"}, "give --from=ADDRESS"},
        {"test bad address", {"filter", "test", "staff", "--from=not an address"}, ""},
        {"unknown option", {"filter", "add", "x", "--colour=blue"}, "colour"},
        {"unknown verb", {"filter", "frobnicate"}, "unknown command 'filter frobnicate'"},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const auto r = cli(row.args);
            BOOST_TEST(r.status == 2, r.out);
            BOOST_TEST(contains(r.err, row.message), "stderr: " << r.err);
            BOOST_TEST(r.err.rfind("popgatectl: ", 0) == 0u);
        }
    }
    BOOST_TEST(cli.ok({"filter", "list", "--json"}) == beforeSystem);
    BOOST_TEST(cli.ok({"filter", "address", "list", "--json"}) == beforeAddress);

    // 100 address filters fit in a system filter, the 101st does not.
    cli.ok({"filter", "add", "many"});
    for (int i = 0; i < 101; ++i) {
        const std::string name = "f" + std::to_string(i);
        cli.ok({"filter", "address", "add", name, "--type=deny", "--domains=" + name + ".example"});
        if (i < 100)
            cli.ok({"filter", "attach", "many", name});
    }
    const auto r = cli({"filter", "attach", "many", "f100"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(contains(r.err, "system filter \"many\": 101 address filters; the limit is 100"),
               r.err);
}

BOOST_AUTO_TEST_CASE(postgresql_pass)
{
    const std::string connect = test::requireEnv("POPGATE_TEST_PG_CONNECT");
    const std::string db = "popgate_fcli_" + std::to_string(::getpid());
    BOOST_TEST_REQUIRE(test::run("/usr/bin/env", {"psql", "-q", connect + " dbname=postgres", "-c",
                                                  "CREATE DATABASE " + db})
                           .status == 0);
    {
        Cli cli("database.driver = postgresql\ndatabase.connect = " + connect + " dbname=" + db +
                "\n");
        addVectors(cli);
        addAccount(cli, "helpdesk", "staff");
        runRows(cli, {{"deny{bad.com}", {"--from=x@bad.com"}, 1, "blocked: "},
                      {"leaver", {"--account=helpdesk", "--from=leaver@corp.com"}, 1, "blocked: "},
                      {"corp via tlds", {"tlds", "--from=x@corp.com"}, 0, "allowed: "}});
        auto r = cli({"filter", "add", "another", "--default=yes"});
        BOOST_TEST(r.status == 2);
        BOOST_TEST(contains(r.err, "is already the active inbound default"), r.err);
        r = cli({"filter", "remove", "staff"});
        BOOST_TEST(r.status == 2);
        BOOST_TEST(contains(r.err, "'helpdesk'"), r.err);
        cli.ok({"filter", "set", "staff", "--description=O'Brien; DROP TABLE accounts;--"});
        auto show = parseJson(cli.ok({"filter", "show", "staff", "--json"}))
                        .extract<Poco::JSON::Object::Ptr>();
        BOOST_TEST(show->getValue<std::string>("description") == "O'Brien; DROP TABLE accounts;--");
    }
    test::run("/usr/bin/env",
              {"psql", "-q", connect + " dbname=postgres", "-c", "DROP DATABASE " + db});
}
