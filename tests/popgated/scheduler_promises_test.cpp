// scheduler_promises_test - popgated's promises about accounts, as
// conf/popgate.conf and docs/man say them: a failing account backs off
// (the wait doubles from its poll interval up to backoff_cap) and is
// deactivated after auto_deactivate_after authentication failures in a row;
// one hung server does not delay the other accounts; debug logging writes a
// trace without the password and switches itself off after
// debug_logging_expiry; quarantined messages go after quarantine_retention.
// runScheduler (plugin/popgated/scheduler.cpp) in-process, against the fake
// POP3 server and the SMTP sink of tests/support/ and a SQLite database in a
// temporary directory. No root, no servers, no fixed ports; waits are on a
// condition with a deadline, never a sleep standing in for one.
#define BOOST_TEST_MODULE scheduler_promises
#include "core/message_store.h"
#include "core/secretbox.h"
#include "core/store.h"
#include "plugin/popgated/scheduler.h"
#include "tests/support/fake_mailbox_server.h"
#include "tests/support/reserved_port.h"
#include "tests/support/smtp_sink.h"
#include "tests/support/testdb.h"
#include "tests/support/testsupport.h"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/File.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Timestamp.h>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

using namespace popgate;
using namespace popgate::test;

namespace
{

const char* const kPassword = "Pa55-w0rd-never-logged";

class Lines : public Poco::Channel
{
public:
    void log(const Poco::Message& message) override
    {
        std::lock_guard<std::mutex> lock(mutex_);
        text_ += message.getText() + "\n";
    }
    std::string text()
    {
        std::lock_guard<std::mutex> lock(mutex_);
        return text_;
    }

private:
    std::mutex mutex_;
    std::string text_;
};

std::string fileText(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::int64_t nowSeconds()
{
    return Poco::Timestamp().epochTime();
}

std::string message(int k)
{
    const std::string n = std::to_string(k);
    return "From: sender" + n + "@example.org\r\nTo: desk@example.com\r\nSubject: sched " + n +
           "\r\nMessage-ID: <s" + n + ".sched@example.org>\r\n\r\nBody " + n + ".\r\n";
}

std::vector<FakeMessage> mailbox(int count)
{
    std::vector<FakeMessage> out;
    for (int k = 1; k <= count; ++k)
        out.push_back({wireFor(message(k)), "uid-" + std::to_string(k), -1, ""});
    return out;
}

/// Rig - the daemon's configuration in a temporary directory; the sink is its MTA.
struct Rig {
    TempDir dir;
    TestDatabase database{"sqlite"};
    Config config = database.config();
    std::unique_ptr<Store> store;
    SmtpSink sink;
    Poco::AutoPtr<Lines> lines{new Lines};
    Poco::Logger* log = nullptr;
    std::atomic<bool> stopping{false};
    std::atomic<bool> reload{false};

    Rig()
    {
        config.set("secret_key_file", dir.file("secret.key"));
        config.set("header_key_file", dir.file("header.key"));
        config.set("spool_dir", dir.file("spool"));
        config.set("accounts_dir", dir.file("accounts.d"));
        config.set("secrets_dir", dir.file("secrets"));
        config.set("debug_log_dir", dir.file("debug"));
        config.set("reinject.host", "127.0.0.1");
        config.set("reinject.port", std::to_string(sink.port()));
        config.set("pop3.connect_timeout", "5s");
        config.set("pop3.read_timeout", "5s");
        store = std::make_unique<Store>(config, Store::Open::CreateFile);
        store->migrate();
        static std::atomic<int> counter{0};
        log = &Poco::Logger::get("scheduler_promises." + std::to_string(++counter));
        log->setChannel(lines);
        log->setLevel(Poco::Message::PRIO_DEBUG);
    }

    /// add - an active account on 127.0.0.1:port logging in as desk/password.
    Account add(const std::string& name, int port, const std::string& password)
    {
        Account a;
        a.name = name;
        a.server = "127.0.0.1";
        a.port = port;
        a.security = Security::None;
        a.plaintextAuth = true;
        a.auth = AuthKind::Password;
        a.user = "desk";
        a.sealedSecret = SecretBox::loadOrCreate(config.str("secret_key_file")).seal(password);
        a.mailbox = "desk@example.com";
        a.pollInterval = 60;
        store->addAccount(a);
        return a;
    }
    Account account(const std::string& name)
    {
        for (const auto& a : store->accounts())
            if (a.name == name)
                return a;
        BOOST_FAIL("no account " << name);
        return {};
    }
    AccountStatus status(const std::string& name)
    {
        return MessageStore(*store).status(account(name).id);
    }
    /// once - popgated --once: every active account polled once.
    int once()
    {
        SchedulerOptions options;
        options.once = true;
        return runScheduler(config, options, *log, stopping, reload);
    }
};

// ---- back-off and auto-deactivation -------------------------------------------

BOOST_AUTO_TEST_CASE(backoff_doubles_to_the_cap_and_auth_failures_deactivate)
{
    FakeMailboxServer server(mailbox(1)); // password "secret"
    Rig rig;
    rig.config.set("backoff_cap", "150s");
    rig.config.set("auto_deactivate_after", "3");
    rig.add("desk", server.port(), "wrong password");
    FakeMailboxServer other(mailbox(1));
    rig.add("other", other.port(), "secret");

    // wait - the back-off the status shows, within the scheduler's +-10 % jitter.
    auto expectWait = [&](std::int64_t seconds, const char* name = "desk") {
        const AccountStatus st = rig.status(name);
        const std::int64_t wait = st.nextPollAt - st.lastPollAt;
        BOOST_TEST((wait >= seconds * 9 / 10 - 1 && wait <= seconds * 11 / 10 + 1),
                   "next poll in " << wait << " s, want " << seconds << " s +-10 %");
    };

    BOOST_TEST(rig.once() == 1, "a failed poll makes --once fail");
    BOOST_TEST(rig.status("desk").consecutiveFailures == 1);
    expectWait(60); // the poll interval
    BOOST_TEST(rig.status("other").consecutiveFailures == 0, "the other account is not touched");
    expectWait(60, "other");
    rig.once();
    expectWait(120); // doubled
    BOOST_TEST(rig.account("desk").active, "2 authentication failures of 3: still active");

    // A success resets the count: the next failures start from the interval.
    Account fixed = rig.account("desk");
    fixed.sealedSecret = SecretBox::load(rig.config.str("secret_key_file")).seal("secret");
    rig.store->updateAccount(fixed);
    BOOST_TEST(rig.once() == 0, rig.lines->text());
    BOOST_TEST(rig.status("desk").consecutiveFailures == 0);
    BOOST_TEST(rig.status("desk").authFailures == 0);
    expectWait(60);

    Account broken = rig.account("desk");
    broken.sealedSecret = SecretBox::load(rig.config.str("secret_key_file")).seal("wrong again");
    rig.store->updateAccount(broken);
    rig.once();
    expectWait(60);
    rig.once();
    expectWait(120);
    BOOST_TEST(rig.account("desk").active, "the count started again after the success");
    rig.once();
    expectWait(150); // 240 capped at backoff_cap
    BOOST_TEST(!rig.account("desk").active, "deactivated after 3 authentication failures");
    BOOST_TEST(rig.lines->text().find("account=desk deactivated after 3 authentication") !=
               std::string::npos);
    BOOST_TEST(rig.account("other").active);

    // Deactivated: not polled any more.
    const std::size_t sessions = server.sessions().size();
    rig.once();
    BOOST_TEST(server.sessions().size() == sessions, "a deactivated account is not polled");
}

BOOST_AUTO_TEST_CASE(network_failures_back_off_but_never_deactivate)
{
    // auto_deactivate_after counts authentication failures only.
    ReservedPort refused; // held, never listening: connection refused
    Rig rig;
    rig.config.set("auto_deactivate_after", "1");
    rig.add("desk", refused.port(), "secret");
    rig.once();
    rig.once();
    BOOST_TEST(rig.status("desk").consecutiveFailures == 2);
    BOOST_TEST(rig.status("desk").authFailures == 0);
    BOOST_TEST(rig.account("desk").active, rig.lines->text());
}

// ---- one hung server ----------------------------------------------------------

BOOST_AUTO_TEST_CASE(hung_server_does_not_delay_other_accounts)
{
    // "a-hung" accepts the connection (the kernel's backlog) and never says a
    // word: its poll waits pop3.read_timeout. "b-good" must be fetched in
    // the meantime, not after it.
    Poco::Net::ServerSocket hung(Poco::Net::SocketAddress("127.0.0.1", 0), 8);
    FakeMailboxServer good(mailbox(3));
    Rig rig;
    const int timeout = 6;
    rig.config.set("pop3.read_timeout", std::to_string(timeout) + "s");
    rig.add("a-hung", hung.address().port(), "secret");
    rig.add("b-good", good.port(), "secret");

    const auto start = std::chrono::steady_clock::now();
    auto run = std::async(std::launch::async, [&] { return rig.once(); });
    const auto deadline = start + std::chrono::seconds(timeout);
    while (rig.sink.accepted().size() < 3 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const auto goodDone = std::chrono::steady_clock::now() - start;
    const int rc = run.get();
    const auto allDone = std::chrono::steady_clock::now() - start;

    BOOST_TEST(rig.sink.accepted().size() == 3u, rig.lines->text());
    BOOST_TEST(bool(goodDone < std::chrono::seconds(timeout - 1)),
               "b-good was fetched "
                   << std::chrono::duration_cast<std::chrono::milliseconds>(goodDone).count()
                   << " ms after the start, while a-hung still waited");
    BOOST_TEST(bool(allDone >= std::chrono::seconds(timeout - 1)), "a-hung really hung");
    BOOST_TEST(rc == 1, "a-hung's poll failed");
    BOOST_TEST(rig.status("a-hung").consecutiveFailures == 1);
    BOOST_TEST(rig.status("b-good").consecutiveFailures == 0);
}

// ---- debug logging ------------------------------------------------------------

BOOST_AUTO_TEST_CASE(debug_log_hides_the_password_and_switches_itself_off)
{
    FakeMailboxServer server(mailbox(1), MailboxOptions{"desk", kPassword});
    Rig rig;
    rig.config.set("debug_logging_expiry", "1h");
    Account a = rig.add("desk", server.port(), kPassword);
    a = rig.account("desk");
    a.debugLogging = true;
    rig.store->updateAccount(a);

    const std::int64_t before = nowSeconds();
    BOOST_TEST(rig.once() == 0, rig.lines->text());
    const std::string trace = rig.dir.file("debug") + "/desk.log";
    BOOST_TEST_REQUIRE(Poco::File(trace).exists(), "the debug log is written");
    const std::string written = fileText(trace);
    BOOST_TEST(written.find("USER desk") != std::string::npos, "the trace holds the dialogue");
    BOOST_TEST(written.find("PASS") != std::string::npos, "the trace shows the PASS command");
    BOOST_TEST(written.find(kPassword) == std::string::npos, "no password in the debug log");
    BOOST_TEST(rig.lines->text().find(kPassword) == std::string::npos,
               "no password in popgated's log");
    BOOST_TEST(rig.sink.accepted().size() == 1u);
    const AccountStatus st = rig.status("desk");
    BOOST_TEST((st.debugUntil >= before + 3600 && st.debugUntil <= nowSeconds() + 3600),
               "debug logging ends an hour after it was first seen: " << st.debugUntil - before);

    // Still on within the hour: the trace grows.
    rig.once();
    const std::size_t grown = fileText(trace).size();
    BOOST_TEST(grown > written.size(), "a second poll within the hour is traced too");

    // The hour is over.
    AccountStatus expired = rig.status("desk");
    expired.debugUntil = nowSeconds() - 1;
    MessageStore(*rig.store).saveStatus(expired);
    rig.once();
    BOOST_TEST(!rig.account("desk").debugLogging, "debug_logging switched off in the database");
    BOOST_TEST(rig.lines->text().find("account=desk debug logging switched itself off") !=
               std::string::npos);
    rig.once();
    BOOST_TEST(fileText(trace).size() == grown, "no more tracing after the expiry");
    BOOST_TEST(server.sessions().size() == 4u, "the account is still polled");
}

// ---- quarantine retention -----------------------------------------------------

BOOST_AUTO_TEST_CASE(quarantine_keeps_messages_for_quarantine_retention)
{
    Rig rig;
    rig.config.set("quarantine_retention", "2d");
    const std::string dir = rig.dir.file("spool") + "/quarantine/desk";
    Poco::File(dir).createDirectories();
    auto make = [&](const std::string& name, std::int64_t ageSeconds) {
        const std::string path = dir + "/" + name;
        std::ofstream(path) << "Subject: " << name << "\r\n\r\nquarantined\r\n";
        Poco::File(path).setLastModified(Poco::Timestamp() -
                                         Poco::Timespan(ageSeconds, 0));
        return path;
    };
    const std::string old = make("three-days.eml", 3 * 86400);
    const std::string young = make("one-day.eml", 86400);

    // The daemon (not --once) sweeps at start and then hourly.
    SchedulerOptions options;
    auto run = std::async(std::launch::async,
                          [&] { return runScheduler(rig.config, options, *rig.log, rig.stopping,
                                                    rig.reload); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (Poco::File(old).exists() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    rig.stopping = true;
    run.get();
    BOOST_TEST(!Poco::File(old).exists(), "older than quarantine_retention: removed");
    BOOST_TEST(Poco::File(young).exists(), "younger than quarantine_retention: kept");
}

} // namespace
