// security_test - the mistakes and attacks of issue [P] (least privilege),
// one row each, through the real popgatectl binary on a throwaway SQLite
// database: secret files outside secrets_dir or open to others are refused
// before they are read, names and CA files are checked when entered, and
// stopping the inbound default from filtering needs --force.
#define BOOST_TEST_MODULE popgatectl_security
#include "tests/support/testsupport.h"

#include <Poco/File.h>
#include <boost/test/unit_test.hpp>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace popgate;

namespace
{

using Args = std::vector<std::string>;

// Content that must never reach any output or the database.
const std::string kLeak = "LEAKED-SECRET-CONTENT-4b1d";

struct Cli {
    test::TempDir dir;
    std::string conf;
    Cli()
    {
        conf = dir.write("popgate.conf", "database.path = " + dir.file("db/popgate.db") +
                                             "\nsecret_key_file = " + dir.file("secret.key") +
                                             "\naccounts_dir = " + dir.file("accounts.d") +
                                             "\nsecrets_dir = " + dir.file("secrets") + "\n");
        Poco::File(dir.file("accounts.d")).createDirectories();
        dir.write("secrets/good", "good-pass\n", 0600);
    }
    test::RunResult operator()(Args args) const
    {
        args.insert(args.begin(), "--config=" + conf);
        const auto r = test::run(test::binary("popgatectl/popgatectl"), args);
        BOOST_TEST(r.out.find(kLeak) == std::string::npos);
        BOOST_TEST(r.err.find(kLeak) == std::string::npos);
        return r;
    }
    std::string ok(const Args& args) const
    {
        const auto r = (*this)(args);
        BOOST_TEST_REQUIRE(r.status == 0, args[0] << " " << args[1] << ": " << r.err);
        return r.out;
    }
    void declare(const std::string& secretFile) const
    {
        dir.write("accounts.d/vendor.conf",
                  "server = pop.vendor.example\nuser = instance\nmailbox = i@vendor.example\n"
                  "secret_file = " +
                      secretFile + "\n");
    }
};

bool contains(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

struct Row {
    Row(const char* l, Args a, int s, std::string e, std::string o = "")
        : label(l), args(std::move(a)), status(s), err(std::move(e)), out(std::move(o))
    {
    }
    const char* label;
    Args args;
    int status;
    std::string err; ///< expected in stderr (exact text of the refusal or warning)
    std::string out; ///< expected in stdout
};

void runRows(const Cli& cli, const std::vector<Row>& rows)
{
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const auto r = cli(row.args);
            BOOST_TEST(r.status == row.status, "stderr: " << r.err << " stdout: " << r.out);
            BOOST_TEST(contains(r.err, row.err), r.err);
            BOOST_TEST(contains(r.out, row.out), r.out);
        }
    }
}

} // namespace

BOOST_AUTO_TEST_CASE(secret_files_are_refused_before_they_are_read)
{
    Cli cli;
    cli.ok({"db", "migrate"});
    const std::string secrets = cli.dir.file("secrets");
    cli.dir.write("elsewhere", kLeak + "\n", 0600);
    cli.dir.write("secrets/open", kLeak + "\n", 0644);
    const std::string owned = cli.dir.write("secrets/owned", kLeak + "\n", 0600);
    const passwd* nobody = ::getpwnam("nobody");
    BOOST_TEST_REQUIRE(nobody != nullptr);
    BOOST_TEST_REQUIRE(::chown(owned.c_str(), nobody->pw_uid, 0) == 0);
    BOOST_TEST_REQUIRE(
        ::symlink(cli.dir.file("elsewhere").c_str(), cli.dir.file("secrets/link").c_str()) == 0);
    BOOST_TEST_REQUIRE(::symlink("/etc/shadow", cli.dir.file("secrets/shadow").c_str()) == 0);
    const std::string file = cli.dir.file("accounts.d/vendor.conf") + ":4: secret_file: ";
    const std::string outside = " is outside secrets_dir " + secrets + "; secret files must live there";
    struct SecretRow {
        const char* label;
        std::string secretFile;
        std::string message;
    };
    const std::vector<SecretRow> rows = {
        {"secret_file = /etc/shadow", "/etc/shadow", file + "/etc/shadow" + outside},
        {"symlink to /etc/shadow", "shadow",
         file + secrets + "/shadow (a symlink to /etc/shadow)" + outside},
        {"symlink out of secrets_dir", "link",
         file + secrets + "/link (a symlink to " + cli.dir.file("elsewhere") + ")" + outside},
        {"file outside secrets_dir", cli.dir.file("elsewhere"),
         file + cli.dir.file("elsewhere") + outside},
        {"world-readable secret file", "open",
         file + secrets +
             "/open is accessible to others (mode 0644); chmod o-rwx it (mode 0600 or 0640)"},
        {"secret file owned by another user", "owned",
         file + secrets + "/owned is owned by nobody; it must be owned by root or popgate (chown "
                          "root:popgate it, chmod 0640: popgated reads it as popgate)"},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            cli.declare(row.secretFile);
            for (const char* verb : {"check", "apply"}) {
                const auto r = cli({"config", verb});
                BOOST_TEST(r.status == 2, verb << ": " << r.err);
                BOOST_TEST(r.err == "popgatectl: " + row.message + "\n", verb << ": " << r.err);
            }
            // config apply refused before storing anything.
            BOOST_TEST(cli.ok({"account", "list"}).find("vendor") == std::string::npos);
        }
    }
    BOOST_TEST(test::readFile(cli.dir.file("db/popgate.db")).find(kLeak) == std::string::npos);

    // The same file, put right, is accepted.
    cli.declare("good");
    BOOST_TEST(contains(cli.ok({"config", "check"}), "1 provisioned account(s)"));
    BOOST_TEST(contains(cli.ok({"config", "apply"}), "account 'vendor' added"));

    // A file that goes wrong later is refused and the stored secret is kept.
    const std::string before = cli.ok({"account", "list", "--json"});
    cli.declare("link");
    BOOST_TEST(cli({"config", "apply"}).status == 2);
    BOOST_TEST(cli.ok({"account", "list", "--json"}) == before);
}

BOOST_AUTO_TEST_CASE(names_and_ca_files_are_checked_when_entered)
{
    Cli cli;
    cli.ok({"db", "migrate"});
    const std::string notPem = cli.dir.write("not.pem", "this is not a certificate\n");
    const Args add{"account", "add", "n1", "--server=pop.example.com", "--auth=none",
                   "--mailbox=n1@example.com"};
    auto with = [&](const std::string& option) {
        Args a = add;
        a.push_back(option);
        return a;
    };
    runRows(cli,
            {
                {"--filter=nosuch", with("--filter=nosuch"), 2,
                 "popgatectl: account 'n1': filter: no such filter 'nosuch'\n"},
                {"--oauth-profile=nosuch", with("--oauth-profile=nosuch"), 2,
                 "popgatectl: account 'n1': oauth-profile: no such OAuth profile 'nosuch'\n"},
                {"--tls-ca-file=/nonexistent", with("--tls-ca-file=/nonexistent"), 2,
                 "popgatectl: account 'n1': tls-ca-file: cannot read /nonexistent: No such file "
                 "or directory\n"},
                {"CA file that is not PEM", with("--tls-ca-file=" + notPem), 2,
                 "popgatectl: account 'n1': tls-ca-file: " + notPem +
                     " holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)\n"},
                {"add without them", add, 0, "", "account 'n1' added"},
                {"set --filter=nosuch",
                 {"account", "set", "n1", "--filter=nosuch"},
                 2,
                 "popgatectl: account 'n1': filter: no such filter 'nosuch'\n"},
                {"set --oauth-profile=nosuch",
                 {"account", "set", "n1", "--oauth-profile=nosuch"},
                 2,
                 "popgatectl: account 'n1': oauth-profile: no such OAuth profile 'nosuch'\n"},
                {"set --tls-ca-file=/nonexistent",
                 {"account", "set", "n1", "--tls-ca-file=/nonexistent"},
                 2,
                 "popgatectl: account 'n1': tls-ca-file: cannot read /nonexistent"},
                {"set a real CA file",
                 {"account", "set", "n1", "--tls-ca-file=/etc/ssl/certs/ca-certificates.crt"},
                 0,
                 "",
                 "account 'n1' updated"},
            });
    BOOST_TEST(contains(cli.ok({"account", "show", "n1"}), "filter:           \n"));

    // accounts.d files get the same checks, with file and line.
    const std::string conf = cli.dir.file("accounts.d/vendor.conf");
    cli.dir.write("accounts.d/vendor.conf",
                  "server = pop.vendor.example\nuser = instance\nmailbox = i@vendor.example\n"
                  "secret_file = good\nfilter = nosuch\noauth-profile = nosuch\ntls-ca-file = " +
                      notPem + "\n");
    for (const char* verb : {"check", "apply"}) {
        const auto r = cli({"config", verb});
        BOOST_TEST(r.status == 2, verb);
        BOOST_TEST(contains(r.err, conf + ":7: tls-ca-file: " + notPem + " holds no PEM"), r.err);
    }
    cli.dir.write("accounts.d/vendor.conf",
                  "server = pop.vendor.example\nuser = instance\nmailbox = i@vendor.example\n"
                  "secret_file = good\nfilter = nosuch\noauth-profile = nosuch\n");
    for (const char* verb : {"check", "apply"}) {
        const auto r = cli({"config", verb});
        BOOST_TEST(r.status == 2, verb);
        BOOST_TEST(r.err == "popgatectl: " + conf + ":5: filter: no such filter 'nosuch'\n" + conf +
                                ":6: oauth-profile: no such OAuth profile 'nosuch'\n",
                   r.err);
    }
    BOOST_TEST(!contains(cli.ok({"account", "list"}), "vendor"));
}

BOOST_AUTO_TEST_CASE(stopping_the_inbound_default_needs_force)
{
    Cli cli;
    cli.ok({"db", "migrate"});
    cli.ok({"filter", "add", "inbound", "--default=yes"});
    cli.ok({"filter", "address", "add", "spam", "--type=deny", "--domains=spam.example"});
    cli.ok({"filter", "attach", "inbound", "spam"});
    const std::string sys = "popgatectl: system filter \"inbound\": refusing to ";
    const std::string noFilter = "; without it no system filter applies and all mail is let "
                                 "through. Use --force to do it anyway\n";
    const std::string noMember = "; with no active address filter left it judges nothing and all "
                                 "mail is let through. Use --force to do it anyway\n";
    const std::string warn = "popgatectl: warning: system filter \"inbound\": done with --force: ";
    const Args blocked{"filter", "test", "--from=x@spam.example"};
    runRows(
        cli,
        {
            {"remove without --force",
             {"filter", "remove", "inbound"},
             2,
             sys + "remove the active default inbound filter" + noFilter},
            {"deactivate without --force",
             {"filter", "set", "inbound", "--active=no"},
             2,
             sys + "deactivate the active default inbound filter" + noFilter},
            {"undefault without --force",
             {"filter", "set", "inbound", "--default=no"},
             2,
             sys + "unset the default flag of the active default inbound filter" + noFilter},
            {"outbound without --force",
             {"filter", "set", "inbound", "--direction=outbound"},
             2,
             sys + "turn outbound the active default inbound filter" + noFilter},
            {"detach the last without --force",
             {"filter", "detach", "inbound", "spam"},
             2,
             sys +
                 "detach address filter \"spam\", the last active address filter of the active "
                 "default inbound filter" +
                 noMember},
            {"deactivate the last address filter without --force",
             {"filter", "address", "set", "spam", "--active=no"},
             2,
             "popgatectl: address filter \"spam\": refusing to deactivate the last active address "
             "filter of the active default inbound filter \"inbound\"" +
                 noMember},
            {"still filtering", blocked, 1, "", "blocked: "},
            {"harmless change", {"filter", "set", "inbound", "--description=d"}, 0, "", "updated"},
            // With --force each is done, with a warning line.
            {"deactivate the last address filter with --force",
             {"filter", "address", "set", "spam", "--active=no", "--force"},
             0,
             "popgatectl: warning: address filter \"spam\": done with --force: deactivate the last "
             "active address filter of the active default inbound filter \"inbound\"; with no "
             "active address filter left it judges nothing and all mail is let through\n",
             "address filter \"spam\" updated"},
            {"inactive member lets mail through", blocked, 0, "", "allowed: "},
            {"reactivate", {"filter", "address", "set", "spam", "--active=yes"}, 0, "", "updated"},
            {"detach with --force",
             {"filter", "detach", "inbound", "spam", "--force"},
             0,
             warn +
                 "detach address filter \"spam\", the last active address filter of the active "
                 "default inbound filter; with no active address filter left it judges nothing "
                 "and all mail is let through\n",
             "detached from system filter \"inbound\""},
            {"attach again", {"filter", "attach", "inbound", "spam"}, 0, "", "attached"},
            {"deactivate with --force",
             {"filter", "set", "inbound", "--active=no", "--force"},
             0,
             warn + "deactivate the active default inbound filter; without it no system filter "
                    "applies and all mail is let through\n",
             "updated"},
            {"inactive default: no filter", blocked, 0, "", "allowed: no system filter applies"},
            {"reactivate the default",
             {"filter", "set", "inbound", "--active=yes"},
             0,
             "",
             "updated"},
            {"undefault with --force",
             {"filter", "set", "inbound", "--default=no", "--force"},
             0,
             warn + "unset the default flag of the active default inbound filter; without it no "
                    "system filter applies and all mail is let through\n",
             "updated"},
            {"not the default: no refusal",
             {"filter", "set", "inbound", "--default=yes"},
             0,
             "",
             "updated"},
            {"outbound with --force",
             {"filter", "set", "inbound", "--direction=outbound", "--force"},
             0,
             warn + "turn outbound the active default inbound filter; without it no system "
                    "filter applies and all mail is let through\n",
             "updated"},
            {"inbound again",
             {"filter", "set", "inbound", "--direction=inbound"},
             0,
             "",
             "updated"},
            {"remove with --force",
             {"filter", "remove", "inbound", "--force"},
             0,
             warn + "remove the active default inbound filter; without it no system filter "
                    "applies and all mail is let through\n",
             "system filter \"inbound\" removed"},
            {"removed: no filter", blocked, 0, "", "allowed: no system filter applies"},
        });
}

BOOST_AUTO_TEST_CASE(accounts_whose_filter_is_gone_are_named)
{
    Cli cli;
    cli.ok({"db", "migrate"});
    cli.ok({"filter", "add", "staff"});
    cli.ok({"account", "add", "helpdesk", "--server=pop.example.com", "--auth=none",
            "--mailbox=h@example.com", "--filter=staff"});
    auto r = cli({"filter", "remove", "staff"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(contains(r.err, "in use by account(s) 'helpdesk'"), r.err);
    r = cli({"filter", "remove", "staff", "--force"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(r.err == "popgatectl: warning: account(s) 'helpdesk' name system filter \"staff\" "
                        "and are not fetched until their filter is set again\n",
               r.err);
    r = cli({"config", "check"});
    BOOST_TEST(r.status == 2);
    BOOST_TEST(r.err == "popgatectl: account 'helpdesk': filter: no such filter 'staff' (the "
                        "account is not fetched until this is fixed)\n",
               r.err);
    BOOST_TEST(contains(cli.ok({"status", "--long"}), "  problem:      filter: no such filter 'staff' (not "
                                            "fetched until this is fixed)\n"));
    BOOST_TEST(contains(cli.ok({"status", "--json"}), "no such filter 'staff'"));
    BOOST_TEST(contains(cli.ok({"status"}), "helpdesk  broken "), "failing first, state broken");
    cli.ok({"account", "set", "helpdesk", "--filter="});
    BOOST_TEST(cli({"config", "check"}).status == 0);
    BOOST_TEST(contains(cli.ok({"status"}), "helpdesk  new "));
    BOOST_TEST(!contains(cli.ok({"status", "--long"}), "problem:"));
}
