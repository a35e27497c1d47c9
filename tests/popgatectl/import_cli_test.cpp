// import_cli_test - `popgatectl import` through the real binary on a SQLite
// database in a temporary directory (no servers): the CLI contract (exit 2 for
// bad usage and bad files, naming them; 0 for a dry run that stores nothing),
// hostile bytes escaped, the password never printed and sealed when stored,
// the UIDL record loaded into the ledger, the refusal to import a kept mailbox
// without its record, and an existing account left alone.
#define BOOST_TEST_MODULE import_cli
#include "tests/support/testsupport.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/test/unit_test.hpp>

using namespace popgate;

namespace
{

struct Cli {
    test::TempDir dir;
    std::string conf;
    Cli()
    {
        conf = dir.write("popgate.conf", "database.path = " + dir.file("popgate.db") +
                                             "\nsecret_key_file = " + dir.file("secret.key") +
                                             "\naccounts_dir = " + dir.file("accounts.d") +
                                             "\nsecrets_dir = " + dir.file("secrets") + "\n");
        BOOST_TEST_REQUIRE((*this)({"db", "migrate"}).status == 0);
    }
    test::RunResult operator()(std::vector<std::string> args) const
    {
        args.insert(args.begin(), "--config=" + conf);
        return test::run(test::binary("popgatectl/popgatectl"), args);
    }
    std::string sql(const std::string& statement) const
    {
        const auto r = test::run("/usr/bin/sqlite3", {"-batch", dir.file("popgate.db"), statement});
        BOOST_TEST_REQUIRE(r.status == 0, statement << ": " << r.err);
        return r.out;
    }
};

const std::string kPassword = "Pa55-w0rd-never-shown";

std::string fetchmailRc(const std::string& extra = "")
{
    return "set daemon 600\n"
           "poll pop.example.com proto pop3\n"
           "  user \"joe\" there with password \"" +
           kPassword +
           "\" is \"joe@local.example\" here\n"
           "  ssl keep smtphost localhost mda \"/usr/bin/procmail\"\n" +
           extra;
}

} // namespace

BOOST_AUTO_TEST_CASE(bad_usage_and_bad_files_exit_2_naming_them)
{
    Cli cli;
    const std::string rc = cli.dir.write("fetchmailrc", fetchmailRc(), 0600);
    const std::string broken = cli.dir.write("broken", "poll h\n user u\n password \"open\n", 0600);
    struct Row {
        const char* label;
        std::vector<std::string> args;
        std::string named; ///< what stderr must name
    };
    const std::vector<Row> rows = {
        {"no tool", {"import"}, "usage"},
        {"unknown tool", {"import", "offlineimap", rc}, "offlineimap"},
        {"no file", {"import", "fetchmail"}, "usage"},
        {"a missing file", {"import", "fetchmail", cli.dir.file("nosuch")}, "nosuch: no such file"},
        {"a directory", {"import", "mpop", cli.dir.path()}, "not a regular file"},
        {"an unterminated string, with file and line", {"import", "fetchmail", broken}, "broken:3"},
        {"--idfile is fetchmail's", {"import", "getmail", rc, "--idfile=x"}, "--idfile"},
        {"an unknown option", {"import", "fetchmail", rc, "--frobnicate"}, "frobnicate"},
        {"two rc files for fetchmail", {"import", "fetchmail", rc, rc}, "one RCFILE"},
        {"a bad --name", {"import", "fetchmail", rc, "--name=a b"}, "--name"},
    };
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const auto r = cli(row.args);
            BOOST_CHECK_EQUAL(r.status, 2);
            BOOST_CHECK_MESSAGE(r.err.find(row.named) != std::string::npos, r.err);
        }
    }
}

BOOST_AUTO_TEST_CASE(dry_run_then_apply)
{
    Cli cli;
    // a control byte in an option the importer does not know: escaped on the terminal
    const std::string rc =
        cli.dir.write("fetchmailrc", fetchmailRc("  frob\x1b[31mnicate keep\n"), 0600);
    cli.dir.write(".fetchids", "joe@pop.example.com UID-1\njoe@pop.example.com UID-2\n"
                               "other@pop.example.com UID-3\n");
    auto dry = cli({"import", "fetchmail", rc});
    BOOST_TEST_REQUIRE(dry.status == 0, dry.err);
    BOOST_CHECK(dry.out.find(kPassword) == std::string::npos);
    BOOST_CHECK(dry.out.find('\x1b') == std::string::npos);
    BOOST_CHECK(dry.out.find("frob\\x1b[31mnicate: not understood") != std::string::npos);
    BOOST_CHECK(dry.out.find("account 'joe_at_pop.example.com' from " + rc +
                             ":3 (poll pop.example.com): would be created") != std::string::npos);
    BOOST_CHECK(dry.out.find("fetched UIDLs: 2 from " + cli.dir.file(".fetchids")) !=
                std::string::npos);
    BOOST_CHECK(dry.out.find(rc + ":4: mda: not mapped") != std::string::npos);
    BOOST_CHECK(dry.out.find(rc + ":4: smtphost localhost: not needed: popgate hands every "
                                  "message to the local MTA at 127.0.0.1:10026") !=
                std::string::npos);
    BOOST_CHECK(dry.out.find("poll-interval = 600") != std::string::npos);
    BOOST_CHECK(dry.out.find("dry run: nothing stored") != std::string::npos);
    BOOST_CHECK_EQUAL(cli.sql("SELECT count(*) FROM accounts"), "0\n");

    const auto json = cli({"--json", "import", "fetchmail", rc});
    BOOST_TEST_REQUIRE(json.status == 0, json.err);
    BOOST_CHECK(json.out.find(kPassword) == std::string::npos);
    const auto report = Poco::JSON::Parser().parse(json.out).extract<Poco::JSON::Object::Ptr>();
    const auto account = report->getArray("accounts")->getObject(0);
    BOOST_CHECK_EQUAL(account->getValue<std::string>("action"), "create");
    BOOST_CHECK(account->getValue<bool>("password_set"));
    BOOST_CHECK_EQUAL(account->getObject("fields")->getValue<std::string>("security"), "ssl-tls");

    const auto applied = cli({"import", "fetchmail", rc, "--apply"});
    BOOST_TEST_REQUIRE(applied.status == 0, applied.err);
    BOOST_CHECK(applied.out.find(kPassword) == std::string::npos);
    BOOST_CHECK(applied.out.find("1 account(s) created") != std::string::npos);
    const std::string secret = cli.sql("SELECT secret FROM accounts");
    BOOST_CHECK(secret.rfind("gcm1:", 0) == 0);
    BOOST_CHECK(secret.find(kPassword) == std::string::npos);
    BOOST_CHECK_EQUAL(cli.sql("SELECT uidl, state, queue_id, deleted FROM messages ORDER BY uidl"),
                      "UID-1|injected||0\nUID-2|injected||0\n");
    BOOST_CHECK_EQUAL(cli.sql("SELECT status FROM message_log"), "imported\n");
    const auto list = cli({"message", "list"});
    BOOST_CHECK(list.out.find("imported from fetchmail") != std::string::npos);

    // Again: the account exists; it is left alone, and nothing is added.
    const auto again = cli({"import", "fetchmail", rc, "--apply"});
    BOOST_TEST_REQUIRE(again.status == 0, again.err);
    BOOST_CHECK(again.out.find("an account of that name exists already") != std::string::npos);
    BOOST_CHECK_EQUAL(cli.sql("SELECT count(*) FROM messages"), "2\n");
}

BOOST_AUTO_TEST_CASE(a_kept_mailbox_without_its_record_is_refused)
{
    Cli cli;
    const std::string rc = cli.dir.write("fetchmailrc", fetchmailRc(), 0600);
    const auto refused = cli({"import", "fetchmail", rc, "--apply"});
    BOOST_CHECK_EQUAL(refused.status, 2);
    BOOST_CHECK(refused.err.find("keeps mail on the server") != std::string::npos);
    BOOST_CHECK_EQUAL(cli.sql("SELECT count(*) FROM accounts"), "0\n");
    const auto accepted = cli({"import", "fetchmail", rc, "--apply", "--no-uidls"});
    BOOST_TEST_REQUIRE(accepted.status == 0, accepted.err);
    BOOST_CHECK_EQUAL(cli.sql("SELECT count(*) FROM accounts"), "1\n");
    BOOST_CHECK_EQUAL(cli.sql("SELECT count(*) FROM messages"), "0\n");
}

BOOST_AUTO_TEST_CASE(a_domain_mailbox_is_imported_with_its_envelope_fields)
{
    Cli cli;
    const std::string rc = cli.dir.write(
        "getmailrc",
        "[retriever]\ntype = MultidropPOP3SSLRetriever\nserver = pop.provider.example\n"
        "username = catchall\npassword = " +
            kPassword + "\nenvelope_recipient = Delivered-To:2\n[options]\ndelete = true\n",
        0600);
    // getmail names no local domains: refused, with file and line, until they are given
    const auto dry = cli({"import", "getmail", rc});
    BOOST_TEST_REQUIRE(dry.status == 0, dry.err);
    BOOST_CHECK_MESSAGE(dry.out.find("skipped " + rc + ":1") != std::string::npos &&
                            dry.out.find("names no local domains: give --local-domains") !=
                                std::string::npos,
                        dry.out);

    const auto applied =
        cli({"import", "getmail", rc, "--apply", "--local-domains=company.example"});
    BOOST_TEST_REQUIRE(applied.status == 0, applied.err);
    BOOST_CHECK_MESSAGE(applied.out.find("1 account(s) created") != std::string::npos, applied.out);
    const auto show = cli({"--json", "account", "show", "catchall_at_pop.provider.example"});
    BOOST_TEST_REQUIRE(show.status == 0, show.err);
    const auto a = Poco::JSON::Parser().parse(show.out).extract<Poco::JSON::Object::Ptr>();
    BOOST_CHECK_EQUAL(a->getValue<std::string>("recipients"), "envelope");
    BOOST_CHECK_EQUAL(a->getValue<std::string>("envelope_header"), "Delivered-To");
    BOOST_CHECK_EQUAL(a->getValue<int>("envelope_header_skip"), 1);
    BOOST_CHECK_EQUAL(a->getValue<std::string>("local_domains"), "company.example");
    BOOST_CHECK_EQUAL(a->getValue<std::string>("security"), "ssl-tls");

    // fetchmail: the header, the skip, the domains and a mapping come from the file
    const std::string frc =
        cli.dir.write("fetchmailrc",
                      "poll pop.other.example proto pop3 envelope 1 X-Original-To localdomains "
                      "other.example\n  user \"drop\" password \"" +
                          kPassword + "\" is * 'sales@other.example'='sales-team' here\n",
                      0600);
    const auto f = cli({"import", "fetchmail", frc, "--apply"});
    BOOST_TEST_REQUIRE(f.status == 0, f.err);
    const auto fshow = cli({"account", "show", "drop_at_pop.other.example"});
    BOOST_TEST_REQUIRE(fshow.status == 0, fshow.err);
    for (const char* want :
         {"envelope", "X-Original-To", "other.example", "sales@other.example=sales-team"})
        BOOST_CHECK_MESSAGE(fshow.out.find(want) != std::string::npos, want << "\n" << fshow.out);
}
