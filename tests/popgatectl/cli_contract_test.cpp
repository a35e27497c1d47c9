// cli_contract_test - the one CLI contract of popgatectl(8), through the real
// binaries: --version on the three programs (the version of debian/changelog),
// exit 2 with the problem named on stderr for a bad option or a bad value of
// every verb, the special codes of `filter test`, and the operator's message
// commands: `message list` (sorted, age, --since, --limit), `message show`
// (escaped for the terminal, exact in --json), `message delete|purge` and
// `log --follow` (a child process, stopped by SIGTERM within a deadline).
#define BOOST_TEST_MODULE cli_contract
#include "tests/support/testsupport.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utime.h>

using namespace popgate;

namespace
{

struct Cli {
    test::TempDir dir;
    std::string conf;
    Cli()
    {
        conf = dir.write("popgate.conf", "database.path = " + dir.file("db/popgate.db") +
                                             "\nsecret_key_file = " + dir.file("secret.key") +
                                             "\naccounts_dir = " + dir.file("accounts.d") +
                                             "\nsecrets_dir = " + dir.file("secrets") +
                                             "\nspool_dir = " + dir.file("spool") + "\n");
    }
    std::vector<std::string> argv(std::vector<std::string> args) const
    {
        args.insert(args.begin(), "--config=" + conf);
        return args;
    }
    test::RunResult operator()(std::vector<std::string> args, const std::string& input = "") const
    {
        return test::run(test::binary("popgatectl/popgatectl"), argv(std::move(args)), input);
    }
    void ok(std::vector<std::string> args) const
    {
        const auto r = (*this)(args);
        BOOST_TEST_REQUIRE(r.status == 0, args[0] << ": " << r.err);
    }
    void sql(const std::string& statement) const
    {
        const auto r = test::run("/usr/bin/sqlite3", {"-batch", "-cmd", ".timeout 10000",
                                                      dir.file("db/popgate.db"), statement});
        BOOST_TEST_REQUIRE(r.status == 0, statement << ": " << r.err);
    }
};

// gateway - a database with one account "helpdesk", a default inbound filter that
// denies bad.example, and three ledger rows: 1 ignored and quarantined 2 h ago,
// 2 delivered a minute ago, 3 failed three days ago.
void gateway(const Cli& cli)
{
    cli.ok({"db", "migrate"});
    cli.ok({"account", "add", "helpdesk", "--server=pop.invalid", "--auth=none",
            "--mailbox=sd@example.com"});
    cli.ok({"filter", "add", "inbound", "--default=yes"});
    cli.ok({"filter", "address", "add", "spam", "--type=deny", "--domains=bad.example"});
    cli.ok({"filter", "attach", "inbound", "spam"});
    ::mkdir(cli.dir.file("spool").c_str(), 0750);
    ::mkdir(cli.dir.file("spool/quarantine").c_str(), 0750);
    ::mkdir(cli.dir.file("spool/quarantine/helpdesk").c_str(), 0750);
    // An escape sequence and a bell from the mail: never raw on the terminal.
    cli.dir.write("spool/quarantine/helpdesk/helpdesk.1.eml",
                  "From: Offers \x1b[31mRED <offers@bad.example>\r\n"
                  "Message-ID: <a1@bad.example>\r\n"
                  "Subject: caf\xc3\xa9\r\n\r\n"
                  "body \x07 line\r\n");
    const std::int64_t now = std::time(nullptr);
    auto t = [&](std::int64_t ago) { return std::to_string(now - ago); };
    cli.sql("INSERT INTO messages (account_id, uidl, state, deleted, message_id, envelope_from, "
            "header_from, size, reason, quarantine_path, created_at, updated_at) VALUES "
            "(1, 'u1', 'ignored', 1, '<a1@bad.example>', 'offers@bad.example', "
            "'Offers <offers@bad.example>', 120, 'blocked', '" +
            cli.dir.file("spool/quarantine/helpdesk/helpdesk.1.eml") + "', " + t(7200) + ", " +
            t(7200) +
            "), (1, 'u2', 'injected', 1, '<a2@ok.example>', 'x@ok.example', "
            "'x@ok.example', 50, '', '', " +
            t(60) + ", " + t(60) +
            "), (1, 'u3', 'failed', 0, '<a3@ok.example>', 'y@ok.example', 'y@ok.example', 50, "
            "'too large', '', " +
            t(3 * 86400) + ", " + t(3 * 86400) + ")");
    cli.sql("INSERT INTO message_log (at, account, uidl, message_id, sender, size, status, "
            "detail) VALUES (" +
            t(7200) +
            ", 'helpdesk', 'u1', '<a1@bad.example>', 'offers@bad.example', 120, "
            "'ignored', 'blocked')");
}

Poco::Dynamic::Var parse(const std::string& text)
{
    Poco::JSON::Parser parser;
    return parser.parse(text);
}

std::string changelogVersion()
{
    std::ifstream in(std::string(POPGATE_SOURCE_DIR) + "/debian/changelog");
    std::string line;
    std::getline(in, line);
    const auto open = line.find('('), close = line.find(')');
    BOOST_TEST_REQUIRE((open != std::string::npos && close != std::string::npos), line);
    return line.substr(open + 1, close - open - 1);
}

bool has(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_CASE(version_of_every_program_is_the_changelogs)
{
    const std::string version = changelogVersion();
    for (const char* program : {"popgatectl/popgatectl", "plugin/popgated/popgated",
                                "plugin/popgate-milter/popgate-milter"}) {
        const std::string name = std::string(program).substr(std::string(program).rfind('/') + 1);
        const auto r = test::run(test::binary(program), {"--version"});
        BOOST_TEST(r.status == 0, name << ": " << r.err);
        BOOST_TEST(r.out == name + " " + version + "\n", name);
        const auto shortForm = test::run(test::binary(program), {"-V"});
        BOOST_TEST(shortForm.out == r.out, name << " -V");
    }
}

BOOST_AUTO_TEST_CASE(man_pages_name_the_changelogs_version)
{
    const std::string version = changelogVersion();
    for (const char* page : {"popgatectl.8", "popgated.8", "popgate-milter.8", "popgate.conf.5"}) {
        std::ifstream in(std::string(POPGATE_SOURCE_DIR) + "/docs/man/" + page);
        std::string th;
        for (std::string line; std::getline(in, line);)
            if (line.rfind(".TH ", 0) == 0) {
                th = line;
                break;
            }
        BOOST_TEST(has(th, "\"popgate " + version + "\""), page << ": " << th);
    }
}

struct UsageRow {
    const char* label;
    const char* program;
    std::vector<std::string> args;
    const char* named; ///< stderr names the problem with this
};

BOOST_AUTO_TEST_CASE(daemons_exit_2_on_bad_usage)
{
    const std::vector<UsageRow> rows = {
        {"popgated unknown option", "plugin/popgated/popgated", {"--bogus"}, "bogus"},
        {"popgated missing argument", "plugin/popgated/popgated", {"--config"}, "config"},
        {"popgated Poco's --daemon is not offered",
         "plugin/popgated/popgated",
         {"--daemon"},
         "daemon"},
        {"popgated --log=x", "plugin/popgated/popgated", {"--log=x", "--check-config"}, "--log"},
        {"milter unknown option", "plugin/popgate-milter/popgate-milter", {"--bogus"}, "bogus"},
        {"milter missing argument", "plugin/popgate-milter/popgate-milter", {"--socket"}, "socket"},
    };
    for (const auto& row : rows) {
        const auto r = test::run(test::binary(row.program), row.args);
        BOOST_TEST(r.status == 2, row.label << ": exit " << r.status << ": " << r.err);
        BOOST_TEST(has(r.err, row.named), row.label << ": " << r.err);
    }
}

BOOST_AUTO_TEST_CASE(every_verb_exits_2_naming_a_bad_option_or_value)
{
    Cli cli;
    gateway(cli);
    struct Row {
        std::vector<std::string> args;
        const char* named;
    };
    // Every verb with an option it does not take.
    const std::vector<std::vector<std::string>> verbs = {
        {"account", "add", "x", "--server=h"},
        {"account", "list"},
        {"account", "show", "helpdesk"},
        {"account", "set", "helpdesk"},
        {"account", "enable", "helpdesk"},
        {"account", "disable", "helpdesk"},
        {"account", "remove", "helpdesk"},
        {"account", "test", "helpdesk"},
        {"account", "authorize", "helpdesk"},
        {"filter", "add", "f2"},
        {"filter", "list"},
        {"filter", "show", "inbound"},
        {"filter", "set", "inbound"},
        {"filter", "remove", "inbound"},
        {"filter", "attach", "inbound", "spam"},
        {"filter", "detach", "inbound", "spam"},
        {"filter", "test", "--from=a@b.example"},
        {"filter", "address", "add", "a2"},
        {"filter", "address", "set", "spam"},
        {"filter", "address", "list"},
        {"filter", "address", "show", "spam"},
        {"filter", "address", "remove", "spam"},
        {"message", "list"},
        {"message", "show", "1"},
        {"message", "delete", "1"},
        {"message", "purge", "--older-than=1d"},
        {"message", "release", "1"},
        {"message", "retry", "3"},
        {"log"},
        {"status"},
        {"receiving"},
        {"db", "migrate"},
        {"db", "status"},
        {"config", "check"},
        {"config", "apply"},
        {"config", "sample"},
        {"oauth", "profile", "add", "p1"},
        {"oauth", "profile", "set", "p1"},
        {"oauth", "profile", "list"},
        {"oauth", "profile", "show", "p1"},
        {"oauth", "profile", "remove", "p1"},
        {"oauth", "status"},
    };
    std::vector<Row> rows;
    for (auto v : verbs) {
        v.push_back("--no-such-option");
        rows.push_back({v, "no-such-option"});
    }
    // Bad values: a state, an account, an id, a time, a number that is not one.
    const std::vector<Row> values = {
        {{"log", "--state=bogus"}, "bogus"},
        {{"log", "--account=nosuch"}, "nosuch"},
        {{"log", "--since=someday"}, "someday"},
        {{"log", "--limit=0"}, "0"},
        {{"message", "list", "--state=bogus"}, "bogus"},
        {{"message", "list", "--account=nosuch"}, "nosuch"},
        {{"message", "list", "--since=someday"}, "someday"},
        {{"message", "list", "--limit=-1"}, "-1"},
        {{"message", "show", "abc"}, "abc"},
        {{"message", "show", "999"}, "999"},
        {{"message", "delete", "2"}, "injected"},
        {{"message", "purge", "--older-than=soon"}, "soon"},
        {{"message", "purge", "--older-than=10s"}, "older-than"},
        {{"message", "purge"}, "older-than"},
        {{"message", "purge", "--older-than=1d", "--account=nosuch"}, "nosuch"},
        {{"message", "frobnicate"}, "frobnicate"},
        {{"account", "show", "nosuch"}, "nosuch"},
        {{"account", "test", "nosuch"}, "nosuch"},
        {{"filter", "test", "--account=nosuch", "--from=a@b.example"}, "nosuch"},
        {{"filter", "test", "--from=a<<b"}, "a<<b"},
        {{"status", "nosuch"}, "nosuch"},
        {{"receiving", "maybe"}, "maybe"},
        {{"db", "frobnicate"}, "usage"},
        {{"frobnicate"}, "frobnicate"},
    };
    rows.insert(rows.end(), values.begin(), values.end());
    for (const auto& row : rows) {
        std::string label;
        for (const auto& a : row.args)
            label += a + " ";
        const auto r = cli(row.args);
        BOOST_TEST(r.status == 2, label << ": exit " << r.status << ": " << r.err);
        BOOST_TEST(has(r.err, row.named),
                   label << ": stderr does not name '" << row.named << "': " << r.err);
        BOOST_TEST(r.out.empty(), label << ": " << r.out);
    }
}

BOOST_AUTO_TEST_CASE(filter_test_codes_and_json)
{
    Cli cli;
    gateway(cli);
    auto r = cli({"filter", "test", "--from=a@ok.example"});
    BOOST_TEST(r.status == 0, r.err);
    r = cli({"filter", "test", "--from=a@bad.example", "--json"});
    BOOST_TEST(r.status == 1, r.err);
    auto o = parse(r.out).extract<Poco::JSON::Object::Ptr>();
    BOOST_TEST(o->getValue<std::string>("verdict") == "blocked");
    BOOST_TEST(o->getArray("steps")->size() == 1u);
    BOOST_TEST(has(o->getArray("steps")->getObject(0)->getValue<std::string>("text"), "DENY"));
    // No verdict at all (here: no database): 3, not 1 as for "blocked".
    Cli empty;
    r = empty({"filter", "test", "--from=a@bad.example"});
    BOOST_TEST(r.status == 3, r.err);
    BOOST_TEST(has(r.err, "filter test failed"), r.err);
    // --json on the commands that print data and had none.
    r = cli({"db", "status", "--json"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(parse(r.out).extract<Poco::JSON::Object::Ptr>()->getValue<std::string>("status") ==
               "current");
    r = cli({"config", "check", "--json"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(parse(r.out).extract<Poco::JSON::Object::Ptr>()->getValue<bool>("ok"));
    r = cli({"config", "apply", "--json"});
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(parse(r.out).extract<Poco::JSON::Object::Ptr>()->has("added"));
    r = cli({"account", "test", "helpdesk", "--json"}); // pop.invalid never resolves
    BOOST_TEST(r.status == 10, r.err);
    o = parse(r.out).extract<Poco::JSON::Object::Ptr>();
    BOOST_TEST(o->getValue<std::string>("result") == "failed");
    BOOST_TEST(o->getValue<int>("exit_code") == 10);
}

BOOST_AUTO_TEST_CASE(message_list_is_sorted_with_age_since_and_limit)
{
    Cli cli;
    gateway(cli);
    auto r = cli({"message", "list"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    const auto at3 = r.out.find("\n3 "), at1 = r.out.find("\n1 "), at2 = r.out.find("\n2 ");
    BOOST_TEST((at3 < at1 && at1 < at2 && at2 != std::string::npos), "oldest first:\n" << r.out);
    BOOST_TEST(has(r.out, " AGE "), r.out);
    BOOST_TEST(has(r.out, " 3d "), r.out);
    BOOST_TEST(has(r.out, " 2h "), r.out);
    r = cli({"message", "list", "--limit=2", "--json"});
    auto arr = parse(r.out).extract<Poco::JSON::Array::Ptr>();
    BOOST_TEST_REQUIRE(arr->size() == 2u);
    BOOST_TEST(arr->getObject(0)->getValue<int>("id") == 1);
    BOOST_TEST(arr->getObject(1)->getValue<int>("id") == 2);
    BOOST_TEST(arr->getObject(0)->getValue<int>("age_seconds") >= 7200);
    r = cli({"message", "list", "--since=1d", "--json"});
    BOOST_TEST(parse(r.out).extract<Poco::JSON::Array::Ptr>()->size() == 2u);
    r = cli({"message", "list", "--state=failed", "--json"});
    arr = parse(r.out).extract<Poco::JSON::Array::Ptr>();
    BOOST_TEST_REQUIRE(arr->size() == 1u);
    BOOST_TEST(arr->getObject(0)->getValue<int>("id") == 3);
}

BOOST_AUTO_TEST_CASE(message_show_escapes_for_the_terminal_and_is_exact_in_json)
{
    Cli cli;
    gateway(cli);
    auto r = cli({"message", "show", "1", "--body"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(r.out.find('\x1b') == std::string::npos, "no raw ESC:\n" << r.out);
    BOOST_TEST(r.out.find('\x07') == std::string::npos, "no raw BEL");
    BOOST_TEST(has(r.out, "From: Offers \\x1b[31mRED <offers@bad.example>"), r.out);
    BOOST_TEST(has(r.out, "Subject: caf\xc3\xa9"), "UTF-8 kept: " << r.out);
    BOOST_TEST(has(r.out, "body \\x07 line"), r.out);
    BOOST_TEST(has(r.out, "envelope to:    <sd@example.com>"), r.out);
    BOOST_TEST(has(r.out, "system filter \"inbound\""), r.out);
    BOOST_TEST(has(r.out, "blocked: "), r.out);
    BOOST_TEST(has(r.out, "ignored (blocked)"), "its log line: " << r.out);
    // A readable sender of the same row, judged through the ledger: every step shown.
    cli.sql("UPDATE messages SET header_from = 'x@ok.example' WHERE id = 2");
    r = cli({"message", "show", "2"});
    BOOST_TEST(has(r.out, "allowed: "), r.out);
    BOOST_TEST(has(r.out, "address filter \"spam\" (deny): no opinion"), r.out);

    r = cli({"message", "show", "1", "--body", "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    auto o = parse(r.out).extract<Poco::JSON::Object::Ptr>();
    auto headers = o->getArray("headers");
    BOOST_TEST_REQUIRE(headers->size() == 3u);
    BOOST_TEST(headers->getElement<std::string>(0) ==
               "From: Offers \x1b[31mRED <offers@bad.example>");
    BOOST_TEST(headers->getElement<std::string>(2) == "Subject: caf\xc3\xa9");
    BOOST_TEST(o->getValue<std::string>("body") == "body \x07 line\r\n");
    BOOST_TEST(o->getObject("filter_now")->getValue<std::string>("verdict") == "blocked");
    BOOST_TEST(o->getObject("quarantine")->getValue<std::string>("copy") == "kept");
    BOOST_TEST(o->getArray("log")->size() == 1u);

    // A header section that never ends (one 3 MiB line): cut at 1 MiB, not read whole.
    cli.dir.write("spool/quarantine/helpdesk/helpdesk.1.eml",
                  "X-Long: " + std::string(3 * 1024 * 1024, 'a'));
    r = cli({"message", "show", "1", "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    o = parse(r.out).extract<Poco::JSON::Object::Ptr>();
    BOOST_TEST(o->getValue<bool>("headers_cut"));
    BOOST_TEST(o->getArray("headers")->size() == 0u);
    BOOST_TEST(r.out.size() < 64u * 1024, "nothing of it printed: " << r.out.size());
    r = cli({"message", "show", "1"});
    BOOST_TEST(has(r.out, "[header section cut"), r.out.substr(0, 2000));
}

BOOST_AUTO_TEST_CASE(message_delete_and_purge_empty_the_quarantine_by_hand)
{
    Cli cli;
    gateway(cli);
    const std::string copy = cli.dir.file("spool/quarantine/helpdesk/helpdesk.1.eml");
    auto r = cli({"message", "delete", "1"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(::access(copy.c_str(), F_OK) != 0, "the file is gone");
    r = cli({"message", "show", "1", "--json"});
    auto o = parse(r.out).extract<Poco::JSON::Object::Ptr>();
    BOOST_TEST(o->getValue<std::string>("state") == "ignored", "the ledger row stays");
    BOOST_TEST(o->getObject("quarantine")->getValue<std::string>("copy") == "none");
    BOOST_TEST(o->getArray("log")->getObject(1)->getValue<std::string>("status") == "purged");
    r = cli({"message", "delete", "1"});
    BOOST_TEST(r.status == 2, "nothing left to delete: " << r.err);

    // purge: a young copy stays, an old one and an old file no row names go.
    const std::string young = cli.dir.write("spool/quarantine/helpdesk/helpdesk.4.eml", "x\r\n");
    const std::string old = cli.dir.write("spool/quarantine/helpdesk/helpdesk.5.eml", "x\r\n");
    const std::string orphan = cli.dir.write("spool/quarantine/helpdesk/orphan.eml", "x\r\n");
    // Old, but `message release` is sending it (the row says injecting): it stays.
    const std::string sending = cli.dir.write("spool/quarantine/helpdesk/helpdesk.6.eml", "x\r\n");
    const std::int64_t now = std::time(nullptr);
    for (const auto& f : {old, orphan, sending}) {
        struct utimbuf t {
            static_cast<time_t>(now - 3 * 86400), static_cast<time_t>(now - 3 * 86400)
        };
        BOOST_TEST_REQUIRE(::utime(f.c_str(), &t) == 0);
    }
    cli.sql("INSERT INTO messages (account_id, uidl, state, deleted, quarantine_path, created_at, "
            "updated_at) VALUES (1, 'u4', 'ignored', 1, '" +
            young + "', " + std::to_string(now) + ", " + std::to_string(now) +
            "), (1, 'u5', 'ignored', 1, '" + old + "', " + std::to_string(now - 3 * 86400) + ", " +
            std::to_string(now - 3 * 86400) + "), (1, 'u6', 'injecting', 1, '" +
            cli.dir.file("spool//quarantine/helpdesk/helpdesk.6.eml") + "', " +
            std::to_string(now - 3 * 86400) + ", " + std::to_string(now) +
            // old, its copy on another gateway host (not in this spool_dir): left alone
            "), (1, 'u7', 'ignored', 1, '/var/spool/popgate-elsewhere/quarantine/helpdesk/"
            "helpdesk.7.eml', " +
            std::to_string(now - 3 * 86400) + ", " + std::to_string(now - 3 * 86400) + ")");
    r = cli({"message", "purge", "--older-than=1d", "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    o = parse(r.out).extract<Poco::JSON::Object::Ptr>();
    BOOST_TEST_REQUIRE(o->getArray("purged")->size() == 1u, r.out);
    BOOST_TEST(o->getArray("purged")->getElement<int>(0) == 5);
    BOOST_TEST(o->getArray("files_without_row")->size() == 1u, r.out);
    BOOST_TEST(::access(young.c_str(), F_OK) == 0, "the young copy stays");
    BOOST_TEST(::access(old.c_str(), F_OK) != 0);
    BOOST_TEST(::access(orphan.c_str(), F_OK) != 0);
    BOOST_TEST(::access(sending.c_str(), F_OK) == 0, "a copy being released stays, however spelt");
    r = cli({"message", "show", "7", "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    o = parse(r.out).extract<Poco::JSON::Object::Ptr>();
    BOOST_TEST(o->getObject("quarantine")->getValue<std::string>("path") ==
                   "/var/spool/popgate-elsewhere/quarantine/helpdesk/helpdesk.7.eml",
               "a row whose copy is on another host keeps naming it: " << r.out);
    r = cli({"message", "delete", "7"});
    BOOST_TEST(r.status == 1, "not on this host: " << r.err);
    BOOST_TEST(has(r.err, "is not on this host"), r.err);
}

namespace
{

/// Child - popgatectl running on its own, its stdout on a pipe.
struct Child {
    pid_t pid = -1;
    int out = -1;
    std::string seen;

    explicit Child(const std::vector<std::string>& args)
    {
        int fds[2];
        BOOST_TEST_REQUIRE(::pipe(fds) == 0);
        const std::string program = test::binary("popgatectl/popgatectl");
        pid = ::fork();
        BOOST_TEST_REQUIRE(pid >= 0);
        if (pid == 0) {
            ::dup2(fds[1], 1);
            ::close(fds[0]);
            ::close(fds[1]);
            std::vector<char*> argv{const_cast<char*>(program.c_str())};
            for (const auto& a : args)
                argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            ::execv(program.c_str(), argv.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        out = fds[0];
    }
    ~Child()
    {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (out >= 0)
            ::close(out);
    }
    /// waitFor - reads until the output holds text or the deadline passes.
    bool waitFor(const std::string& text, std::chrono::seconds limit)
    {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (seen.find(text) == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                return false;
            pollfd p{out, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
                continue;
            char buf[4096];
            const ssize_t n = ::read(out, buf, sizeof buf);
            if (n <= 0)
                return false;
            seen.append(buf, static_cast<std::size_t>(n));
        }
        return true;
    }
    /// stop - sends sig and returns the exit status, or -1 if it did not end in time.
    int stop(int sig, std::chrono::seconds limit)
    {
        ::kill(pid, sig);
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
    }
};

} // namespace

BOOST_AUTO_TEST_CASE(log_follow_prints_new_lines_and_stops_cleanly_on_a_signal)
{
    Cli cli;
    gateway(cli);
    for (int sig : {SIGTERM, SIGINT}) {
        Child follow(cli.argv({"log", "--follow", "--account=helpdesk"}));
        BOOST_TEST_REQUIRE(follow.waitFor("status=ignored (blocked)", std::chrono::seconds(10)),
                           "the existing line first: " << follow.seen);
        const std::string tag = "follow-" + std::to_string(sig);
        cli.sql("INSERT INTO message_log (at, account, status, detail) VALUES (" +
                std::to_string(std::time(nullptr)) + ", 'helpdesk', 'poll', '" + tag + "')");
        cli.sql("INSERT INTO message_log (at, account, status, detail) VALUES (" +
                std::to_string(std::time(nullptr)) + ", 'other', 'poll', 'not-mine')");
        BOOST_TEST(follow.waitFor(tag, std::chrono::seconds(10)), "a new line: " << follow.seen);
        BOOST_TEST(follow.stop(sig, std::chrono::seconds(10)) == 0, "exit 0 on signal " << sig);
        BOOST_TEST(!has(follow.seen, "not-mine"), "only the account asked for");
    }
}
