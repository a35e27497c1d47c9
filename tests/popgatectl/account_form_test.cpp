// account_form_test - the guided form of `popgatectl account add NAME`,
// driven through a pseudo-terminal (forkpty) as a person would: each question
// comes in the reference page's order, the password is not echoed, the
// insecure-security warning shows, the port follows the security, the filter is
// chosen from those that exist, a refused answer is asked again, the summary
// shows, the account is stored and Test Connection runs when accepted. Without
// a terminal `account add` only says what is missing.
#define BOOST_TEST_MODULE account_form
#include "tests/support/testsupport.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <thread>
#include <unistd.h>

using namespace popgate;

namespace
{

const std::string kSecret = "S3cret-never-echoed";

struct Cli {
    test::TempDir dir;
    std::string conf;
    Cli()
    {
        conf = dir.write("popgate.conf", "database.path = " + dir.file("db/popgate.db") +
                                             "\nsecret_key_file = " + dir.file("secret.key") +
                                             "\naccounts_dir = " + dir.file("accounts.d") +
                                             "\nsecrets_dir = " + dir.file("secrets") +
                                             "\npop3.connect_timeout = 5\n");
    }
    test::RunResult operator()(std::vector<std::string> args, const std::string& input = "") const
    {
        args.insert(args.begin(), "--config=" + conf);
        return test::run(test::binary("popgatectl/popgatectl"), args, input);
    }
};

/// Terminal - popgatectl on the slave side of a pseudo-terminal; the test is the person.
class Terminal
{
public:
    explicit Terminal(std::vector<std::string> args)
    {
        const std::string program = test::binary("popgatectl/popgatectl");
        pid_ = ::forkpty(&master_, nullptr, nullptr, nullptr);
        BOOST_TEST_REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            std::vector<char*> argv{const_cast<char*>(program.c_str())};
            for (auto& a : args)
                argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            ::execv(program.c_str(), argv.data());
            ::_exit(127);
        }
    }
    ~Terminal()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(master_);
    }
    /// expect - reads until text shows after what was read before (10 s at most).
    bool expect(const std::string& text)
    {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (all_.find(text, mark_) == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count();
            if (left <= 0 || !readSome(static_cast<int>(left)))
                return false;
        }
        mark_ = all_.find(text, mark_) + text.size();
        return true;
    }
    void type(const std::string& line)
    {
        const std::string withEnd = line + "\r";
        BOOST_TEST_REQUIRE(::write(master_, withEnd.data(), withEnd.size()) ==
                           static_cast<ssize_t>(withEnd.size()));
    }
    /// raw - bytes as typed, with no line end.
    void raw(const std::string& bytes)
    {
        BOOST_TEST_REQUIRE(::write(master_, bytes.data(), bytes.size()) ==
                           static_cast<ssize_t>(bytes.size()));
    }
    /// answer - waits for the question, then types the answer.
    void answer(const std::string& question, const std::string& reply)
    {
        BOOST_TEST_REQUIRE(expect(question), "asked '" << question << "'; the screen:\n" << all_);
        type(reply);
    }
    /// exitStatus - reads the rest and waits (10 s at most) for the exit status.
    int exitStatus()
    {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < deadline) {
            readSome(50);
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                while (readSome(50)) {
                }
                return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
        }
        return -1;
    }
    const std::string& screen() const { return all_; }

private:
    bool readSome(int ms)
    {
        pollfd p{master_, POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0)
            return false;
        char buf[4096];
        const ssize_t n = ::read(master_, buf, sizeof buf);
        if (n <= 0)
            return false;
        all_.append(buf, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int master_ = -1;
    std::string all_;
    std::size_t mark_ = 0;
};

Poco::JSON::Object::Ptr showJson(const Cli& cli, const std::string& name)
{
    const auto r = cli({"account", "show", name, "--json"});
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    Poco::JSON::Parser parser;
    return parser.parse(r.out).extract<Poco::JSON::Object::Ptr>();
}

bool has(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_CASE(the_form_asks_in_the_pages_order_and_stores_the_account)
{
    Cli cli;
    BOOST_TEST_REQUIRE(cli({"db", "migrate"}).status == 0);
    BOOST_TEST_REQUIRE(cli({"filter", "add", "inbound", "--default=yes"}).status == 0);
    BOOST_TEST_REQUIRE(cli({"filter", "add", "strict"}).status == 0);

    Terminal t({"--config=" + cli.conf, "account", "add", "helpdesk"});
    t.answer("Type (pop3) [pop3]: ", "");
    t.answer("Authentication (none, password, oauth, oauth2) [password]: ", "");
    t.answer("Server (FQDN or IP address): ", "not a host!");
    BOOST_TEST(t.expect("is not a host name or IP address"), t.screen()); // asked again
    t.answer("Server (FQDN or IP address): ", "127.0.0.1");
    t.answer("User name: ", "helpdesk");
    t.answer("Password for account 'helpdesk': ", kSecret);
    t.answer("Connection security (none, starttls, ssl-tls) [ssl-tls]: ", "starttls");
    BOOST_TEST(t.expect("may expose your data"), "the warning: " << t.screen());
    t.answer("Port [110]: ", "1"); // the default follows starttls; port 1: nothing listens
    BOOST_TEST(t.expect("System address filters: inbound strict"), t.screen());
    t.answer("System address filter (empty: the inbound default, inbound): ", "nosuch");
    BOOST_TEST(t.expect("no inbound system filter 'nosuch'"), t.screen());
    t.answer("System address filter (empty: the inbound default, inbound): ", "strict");
    t.answer("Active (yes, no) [yes]: ", "");
    t.answer("Mailbox address (its mail is delivered to it here): ", "service-desk@company.com");
    t.answer("Recipients (fixed: all to the mailbox; envelope: a domain mailbox) [fixed]: ", "");
    BOOST_TEST(t.expect("Summary:"), t.screen());
    BOOST_TEST(t.expect("password:               (set)"), t.screen());
    t.answer("Store this account? [yes]: ", "");
    t.answer("account 'helpdesk' added", "");
    t.answer("Test Connection now? [yes]: ", "yes");
    BOOST_TEST(t.expect("Connection failed at"), "the test ran: " << t.screen());
    BOOST_TEST(t.exitStatus() == 11, "the test's exit code (connect): " << t.screen());
    BOOST_TEST(!has(t.screen(), kSecret), "the password is never echoed:\n" << t.screen());

    const auto a = showJson(cli, "helpdesk");
    BOOST_TEST(a->getValue<std::string>("server") == "127.0.0.1");
    BOOST_TEST(a->getValue<std::string>("user") == "helpdesk");
    BOOST_TEST(a->getValue<bool>("password_set"));
    BOOST_TEST(a->getValue<std::string>("security") == "starttls");
    BOOST_TEST(a->getValue<int>("port") == 1);
    BOOST_TEST(a->getValue<std::string>("filter") == "strict");
    BOOST_TEST(a->getValue<bool>("active"));
    BOOST_TEST(a->getValue<std::string>("mailbox") == "service-desk@company.com");
}

BOOST_AUTO_TEST_CASE(the_port_defaults_from_ssl_tls_and_the_test_can_be_declined)
{
    Cli cli;
    BOOST_TEST_REQUIRE(cli({"db", "migrate"}).status == 0);
    Terminal t({"--config=" + cli.conf, "account", "add", "desk2", "--auth=none"});
    t.answer("Type (pop3) [pop3]: ", "");
    t.answer("Authentication (none, password, oauth, oauth2) [none]: ", "");
    t.answer("Server (FQDN or IP address): ", "pop.example.com");
    t.answer("Connection security (none, starttls, ssl-tls) [ssl-tls]: ", "");
    t.answer("Port [995]: ", "");
    BOOST_TEST(t.expect("System address filters: none defined"), t.screen());
    t.answer("System address filter (empty: the inbound default, (none)): ", "");
    t.answer("Active (yes, no) [yes]: ", "no");
    t.answer("Mailbox address (its mail is delivered to it here): ", "desk2@company.com");
    t.answer("Recipients (fixed: all to the mailbox; envelope: a domain mailbox) [fixed]: ", "");
    t.answer("Store this account? [yes]: ", "yes");
    t.answer("Test Connection now? [yes]: ", "no");
    BOOST_TEST(t.exitStatus() == 0, t.screen());
    BOOST_TEST(!has(t.screen(), "may expose your data"), "no warning for ssl-tls");
    const auto a = showJson(cli, "desk2");
    BOOST_TEST(a->getValue<int>("port") == 995);
    BOOST_TEST(!a->getValue<bool>("active"));
    BOOST_TEST(a->getValue<std::string>("auth") == "none");
}

BOOST_AUTO_TEST_CASE(a_domain_mailbox_is_asked_for_its_envelope_header_and_domains)
{
    Cli cli;
    BOOST_TEST_REQUIRE(cli({"db", "migrate"}).status == 0);
    Terminal t({"--config=" + cli.conf, "account", "add", "company", "--auth=none"});
    t.answer("Type (pop3) [pop3]: ", "");
    t.answer("Authentication (none, password, oauth, oauth2) [none]: ", "");
    t.answer("Server (FQDN or IP address): ", "pop.example.com");
    t.answer("Connection security (none, starttls, ssl-tls) [ssl-tls]: ", "");
    t.answer("Port [995]: ", "");
    t.answer("System address filter (empty: the inbound default, (none)): ", "");
    t.answer("Active (yes, no) [yes]: ", "");
    t.answer("Mailbox address (its mail is delivered to it here): ", "catchall@company.example");
    t.answer("Recipients (fixed: all to the mailbox; envelope: a domain mailbox) [fixed]: ",
             "envelope");
    t.answer("Envelope header (Delivered-To, X-Original-To, Envelope-To, X-Envelope-To) "
             "[Delivered-To]: ",
             "To");
    BOOST_TEST(t.expect("unknown envelope header"), t.screen()); // never To/Cc
    t.answer("Envelope header (Delivered-To, X-Original-To, Envelope-To, X-Envelope-To) "
             "[Delivered-To]: ",
             "x-original-to");
    t.answer("Fields of it to skip, from the top (0: the provider's own) [0]: ", "");
    t.answer("Local domains (comma-separated) [company.example]: ", "");
    t.answer("Fallback recipient (empty: quarantine mail without a local recipient): ", "");
    BOOST_TEST(t.expect("(none: quarantine)"), t.screen());
    t.answer("Store this account? [yes]: ", "yes");
    t.answer("Test Connection now? [yes]: ", "no");
    BOOST_TEST(t.exitStatus() == 0, t.screen());
    const auto a = showJson(cli, "company");
    BOOST_TEST(a->getValue<std::string>("recipients") == "envelope");
    BOOST_TEST(a->getValue<std::string>("envelope_header") == "X-Original-To");
    BOOST_TEST(a->getValue<std::string>("local_domains") == "company.example");
}

BOOST_AUTO_TEST_CASE(end_of_input_cancels_and_stores_nothing)
{
    Cli cli;
    BOOST_TEST_REQUIRE(cli({"db", "migrate"}).status == 0);
    Terminal t({"--config=" + cli.conf, "account", "add", "gone"});
    t.answer("Type (pop3) [pop3]: ", "");
    BOOST_TEST_REQUIRE(t.expect("Authentication"));
    t.raw("\x04"); // Ctrl-D at the start of a line: end of input
    BOOST_TEST(t.exitStatus() == 2, t.screen());
    BOOST_TEST(has(t.screen(), "nothing stored"), t.screen());
    BOOST_TEST(cli({"account", "show", "gone"}).status == 2);
}

BOOST_AUTO_TEST_CASE(without_a_terminal_nothing_changes)
{
    Cli cli;
    BOOST_TEST_REQUIRE(cli({"db", "migrate"}).status == 0);
    const auto r = cli({"account", "add", "helpdesk"}, "pop.example.com\n");
    BOOST_TEST(r.status == 2, r.err);
    BOOST_TEST(has(r.err, "server: is required"), r.err);
    BOOST_TEST(!has(r.err, "Type (pop3)"), "no form: " << r.err);
    BOOST_TEST(cli({"account", "show", "helpdesk"}).status == 2, "nothing stored");
}
