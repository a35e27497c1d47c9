// import_tools_test - `popgatectl import` against the state the real tools
// leave: the Debian fetchmail, getmail6 and mpop fetch N messages from the test
// Dovecot (POP3S, verified against the test CA) and keep them on the server;
// M more arrive; the import (a dry run, then --apply) takes over the account
// and the tool's record of fetched UIDLs; `popgated --once` then delivers
// exactly the M new messages to the test Postfix, and without keep-on-server
// deletes the imported ones undelivered. The password is never printed.
#define BOOST_TEST_MODULE import_tools
#include "tests/popgated/fetch_support.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/test/unit_test.hpp>
#include <set>
#include <unistd.h>

using namespace popgate;
using namespace popgate::test;

namespace
{

constexpr int kOld = 3; ///< fetched by the old tool, kept on the server
constexpr int kNew = 2; ///< arrived after it

struct Tool {
    const char* label;
    const char* name; ///< popgatectl import's tool word
    /// writes the rc file(s) into dir and returns popgatectl import's arguments after the tool
    std::function<std::vector<std::string>(const Servers&, const TempDir&, const std::string& rcpt)>
        setup;
    /// the command that fetches with the tool (program, arguments, environment)
    std::function<RunResult(const TempDir&)> fetch;
};

std::string messageId(const std::string& tool, int n)
{
    return "<import-" + tool + "-" + std::to_string(n) + "." + std::to_string(::getpid()) +
           "@import.test>";
}

std::vector<Tool> tools()
{
    return {
        {"fetchmail: poll with ssl, sslcertfile, keep, is ... here; .fetchids beside the rc file",
         "fetchmail",
         [](const Servers& s, const TempDir& dir, const std::string& rcpt) {
             // fetchmail checks no IP address in a certificate: sslcommonname names the
             // test certificate's DNS name (an option popgate need not map: it checks the IP)
             dir.write("fetchmailrc",
                       "# written by import_tools_test\n"
                       "set no bouncemail\n"
                       "poll " +
                           s.dovecotHost + " with proto POP3 port " + std::to_string(s.pop3sPort) +
                           "\n"
                           "  user \"" +
                           s.user2 + "\" there with password \"" + s.password + "\" is \"" + rcpt +
                           "\" here\n"
                           "  keep ssl sslcertck sslcertfile \"" +
                           s.ca +
                           "\" sslcommonname \"localhost\"\n"
                           "  mda \"/bin/cat >/dev/null\"\n",
                       0600);
             return std::vector<std::string>{dir.file("fetchmailrc")};
         },
         [](const TempDir& dir) {
             return run("/usr/bin/timeout",
                        {"60", "fetchmail", "--nosyslog", "-f", dir.file("fetchmailrc"),
                         "--pidfile", dir.file("fetchmail.pid")},
                        "", {{"HOME", dir.path()}, {"FETCHMAILHOME", dir.path()}});
         }},
        {"getmail6: SimplePOP3SSLRetriever with ca_certs, delete false; oldmail in getmaildir",
         "getmail",
         [](const Servers& s, const TempDir& dir, const std::string& rcpt) {
             dir.write("getmailrc",
                       "[retriever]\n"
                       "type = SimplePOP3SSLRetriever\n"
                       "server = " +
                           s.dovecotHost +
                           "\n"
                           "port = " +
                           std::to_string(s.pop3sPort) +
                           "\n"
                           "username = " +
                           s.user2 +
                           "\n"
                           "password = " +
                           s.password +
                           "\n"
                           "ca_certs = " +
                           s.ca +
                           "\n"
                           "\n[destination]\n"
                           "type = MDA_external\n"
                           "path = /bin/true\n"
                           "allow_root_commands = true\n"
                           "\n[options]\n"
                           "read_all = false\n"
                           "delete = false\n"
                           "message_log_syslog = false\n",
                       0600);
             return std::vector<std::string>{dir.file("getmailrc"), "--getmaildir=" + dir.path(),
                                             "--deliver-to=" + rcpt};
         },
         [](const TempDir& dir) {
             return run("/usr/bin/timeout",
                        {"60", "getmail", "--getmaildir=" + dir.path(), "--rcfile=getmailrc"}, "",
                        {{"HOME", dir.path()}});
         }},
        {"mpop: tls on, tls_starttls off, tls_trust_file, keep on; uidls_file from the rc", "mpop",
         [](const Servers& s, const TempDir& dir, const std::string& rcpt) {
             dir.write("mpoprc",
                       "defaults\n"
                       "tls on\n"
                       "tls_starttls off\n"
                       "tls_trust_file " +
                           s.ca +
                           "\n"
                           "\naccount imported\n"
                           "host " +
                           s.dovecotHost +
                           "\n"
                           "port " +
                           std::to_string(s.pop3sPort) +
                           "\n"
                           "user " +
                           s.user2 +
                           "\n"
                           "password " +
                           s.password +
                           "\n"
                           "keep on\n"
                           "uidls_file " +
                           dir.file("uidls/%U_at_%H") +
                           "\n"
                           "delivery mda \"/bin/cat >/dev/null\"\n",
                       0600);
             return std::vector<std::string>{dir.file("mpoprc"), "--deliver-to=" + rcpt};
         },
         [](const TempDir& dir) {
             return run("/usr/bin/timeout",
                        {"60", "mpop", "--file=" + dir.file("mpoprc"), "imported"}, "",
                        {{"HOME", dir.path()}});
         }},
    };
}

Poco::JSON::Object::Ptr parseJson(const std::string& text)
{
    return Poco::JSON::Parser().parse(text).extract<Poco::JSON::Object::Ptr>();
}

} // namespace

BOOST_AUTO_TEST_CASE(first_poll_after_import_delivers_only_the_new_messages)
{
    const Servers servers;
    for (const Tool& tool : tools()) {
        BOOST_TEST_CONTEXT(tool.label)
        {
            EmptyMailboxes empty({servers.maildir2});
            TempDir dir;
            const std::string rcpt = uniqueAddress(std::string("imp-") + tool.name);
            const std::vector<std::string> importArgs = tool.setup(servers, dir, rcpt);
            for (int n = 0; n < kOld; ++n)
                dropMessage(servers.maildir2,
                            message({"From: old@example.org", "Subject: old " + std::to_string(n),
                                     "Message-ID: " + messageId(tool.name, n)},
                                    "fetched by the old tool\r\n"));
            const RunResult fetched = tool.fetch(dir);
            BOOST_REQUIRE_MESSAGE(fetched.status == 0, std::string(tool.name) + " exited " +
                                                           std::to_string(fetched.status) + ": " +
                                                           fetched.err + fetched.out);
            BOOST_REQUIRE_EQUAL(countMessages(servers.maildir2), kOld); // kept on the server
            for (int n = kOld; n < kOld + kNew; ++n)
                dropMessage(servers.maildir2,
                            message({"From: new@example.org", "Subject: new " + std::to_string(n),
                                     "Message-ID: " + messageId(tool.name, n)},
                                    "arrived after the old tool's last poll\r\n"));

            Gateway gw(servers);
            std::vector<std::string> args{"import", tool.name};
            args.insert(args.end(), importArgs.begin(), importArgs.end());

            // The dry run shows the account, stores nothing, never the password.
            std::vector<std::string> dry = args;
            dry.push_back("--json");
            const std::string shown = gw.ctl(dry);
            BOOST_CHECK(shown.find(servers.password) == std::string::npos);
            const auto report = parseJson(shown);
            BOOST_CHECK(!report->getValue<bool>("applied"));
            const auto accounts = report->getArray("accounts");
            BOOST_REQUIRE_EQUAL(accounts->size(), 1u);
            const auto account = accounts->getObject(0);
            BOOST_CHECK_EQUAL(account->getValue<std::string>("action"), "create");
            BOOST_CHECK_EQUAL(account->getObject("uidls")->getValue<int>("count"), kOld);
            const auto fields = account->getObject("fields");
            BOOST_CHECK_EQUAL(fields->getValue<std::string>("security"), "ssl-tls");
            BOOST_CHECK_EQUAL(fields->getValue<std::string>("keep-on-server"), "yes");
            BOOST_CHECK_EQUAL(fields->getValue<std::string>("tls-ca-file"), servers.ca);
            BOOST_CHECK_EQUAL(fields->getValue<std::string>("deliver-to"), rcpt);
            BOOST_CHECK(gw.ledger().empty());
            BOOST_CHECK(gw.ctl({"account", "list", "--json"}).find(servers.user2) ==
                        std::string::npos);

            args.push_back("--apply");
            const std::string applied = gw.ctl(args);
            BOOST_CHECK(applied.find(servers.password) == std::string::npos);
            BOOST_CHECK(applied.find("1 account(s) created") != std::string::npos);
            const auto ledger = gw.ledger();
            BOOST_CHECK_EQUAL(ledger.size(), static_cast<std::size_t>(kOld));
            for (const auto& row : ledger)
                BOOST_CHECK(row.reason.find("imported from " + std::string(tool.name)) == 0);
            // The password is stored sealed, never in the clear.
            BOOST_CHECK(gw.sql("SELECT secret FROM accounts").find(servers.password) ==
                        std::string::npos);
            BOOST_CHECK(gw.sql("SELECT secret FROM accounts").rfind("gcm1:", 0) == 0);

            const RunResult polled = gw.once();
            BOOST_REQUIRE_MESSAGE(polled.status == 0, polled.err);
            settle();
            std::set<std::string> arrived;
            for (const auto& d : delivered(rcpt))
                arrived.insert(d.first("Message-ID"));
            std::set<std::string> expected;
            for (int n = kOld; n < kOld + kNew; ++n)
                expected.insert(messageId(tool.name, n));
            BOOST_CHECK(arrived == expected);
            BOOST_CHECK_EQUAL(deliveredCount(rcpt), kNew);
            BOOST_CHECK_EQUAL(countMessages(servers.maildir2), kOld + kNew); // keep
            BOOST_CHECK_EQUAL(gw.ledger().size(), static_cast<std::size_t>(kOld + kNew));
            // `message list` shows the imported rows as what they are.
            const std::string list = gw.ctl({"message", "list"});
            BOOST_CHECK(list.find("imported from " + std::string(tool.name)) != std::string::npos);

            // Without keep-on-server the imported messages are deleted, never delivered.
            const std::string name = account->getValue<std::string>("name");
            gw.ctl({"account", "set", name, "--keep-on-server=no"});
            const RunResult again = gw.once();
            BOOST_REQUIRE_MESSAGE(again.status == 0, again.err);
            settle();
            BOOST_CHECK_EQUAL(countMessages(servers.maildir2), 0);
            BOOST_CHECK_EQUAL(deliveredCount(rcpt), kNew);
        }
    }
}
