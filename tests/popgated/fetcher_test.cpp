// fetcher_test - one odd message never blocks a mailbox: Fetcher::poll
// (plugin/popgated/fetcher.cpp) in-process against the stateful fake POP3
// server and the SMTP sink of tests/support/, on a throwaway SQLite ledger.
// No root, no real servers, no fixed ports, no sleeps. One table row per
// case: a mailbox of three messages whose second one is odd, one or more
// polls, and after each poll what the sink accepted, what the server still
// holds, the ledger states and the PollReport. Between two polls the clock
// "moves on": deferred rows are made due.
#define BOOST_TEST_MODULE fetcher
#include "core/message_store.h"
#include "core/store.h"
#include "plugin/popgated/fetcher.h"
#include "tests/support/fake_mailbox_server.h"
#include "tests/support/smtp_sink.h"
#include "tests/support/testdb.h"
#include "tests/support/testsupport.h"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/File.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <algorithm>
#include <boost/test/results_collector.hpp>
#include <boost/test/unit_test.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>

using namespace popgate;
using namespace popgate::test;

namespace
{

constexpr int kMessages = 3;
const char* const kMailbox = "desk@example.com";

// ---- the mailbox --------------------------------------------------------------

/// messageText - message k (1-based): its own From, Subject and Message-ID, a
/// body line that starts with a dot (stuffing), CRLF line ends.
std::string messageText(int k, const std::string& extraBody = "")
{
    const std::string n = std::to_string(k);
    std::string text;
    text += "From: Sender " + n + " <sender" + n + "@example.org>\r\n";
    text += std::string("To: ") + kMailbox + "\r\n";
    text += "Subject: message " + n + "\r\n";
    text += "Message-ID: <m" + n + ".fetcher-test@example.org>\r\n";
    text += "Date: Tue, 02 Dec 2025 10:00:0" + n + " +0000\r\n";
    text += "\r\n";
    text += "Body of message " + n + ".\r\n";
    text += ".a line that starts with a dot\r\n";
    return text + extraBody + "last line of message " + n + "\r\n";
}

/// whichMessage - k when the text carries message k's Message-ID, else 0.
int whichMessage(const std::string& text)
{
    for (int k = 1; k <= kMessages; ++k)
        if (text.find("Message-ID: <m" + std::to_string(k) + ".fetcher-test@example.org>") !=
            std::string::npos)
            return k;
    return 0;
}

std::string crlf(const std::string& text)
{
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r'))
            out += '\r';
        out += text[i];
    }
    return out;
}

std::string lf(std::string text)
{
    std::string out;
    for (char c : text)
        if (c != '\r')
            out += c;
    return out;
}

bool hasBareLf(const std::string& bytes)
{
    for (std::size_t i = 0; i < bytes.size(); ++i)
        if (bytes[i] == '\n' && (i == 0 || bytes[i - 1] != '\r'))
            return true;
    return false;
}

/// headerValues - the values of every `name:` line of the header section.
std::vector<std::string> headerValues(const std::string& text, const std::string& name)
{
    std::vector<std::string> values;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.empty())
            break;
        if (line.size() > name.size() && line[name.size()] == ':' &&
            std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) ==
                       std::tolower(static_cast<unsigned char>(b));
            }))
            values.push_back(line.substr(name.size() + 1));
    }
    return values;
}

/// Setup - what a row may change before the polls: message 2 is the odd one.
struct Setup {
    std::vector<std::string> texts;    ///< the messages as their senders wrote them
    std::vector<FakeMessage> messages; ///< as the server holds them
    MailboxOptions mailbox;
    std::vector<SinkRule> rules;
    int maxAttempts = 5;
    std::int64_t maxMessageSize = 0;

    Setup()
    {
        for (int k = 1; k <= kMessages; ++k) {
            texts.push_back(messageText(k));
            messages.push_back({wireFor(texts.back()), "uid-" + std::to_string(k), -1, ""});
        }
    }
    FakeMessage& odd() { return messages[1]; }
};

// ---- expectations -------------------------------------------------------------

/// After - the state expected after one poll. Messages are named by number.
struct After {
    const char* delivered; ///< what the sink accepted during this poll: "1 3"
    const char* held;      ///< what the server holds after it: "2"
    const char* rows;      ///< ledger state of messages 1 2 3: "injected failed *" (- none, * any)
    bool quit;             ///< the POP3 session ended with QUIT
    bool ok;               ///< PollReport::ok
};

bool has(const std::vector<std::string>& lines, const std::string& line)
{
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

/// findRow - message k's ledger row: under its UIDL or, for a ledger that
/// keys long UIDLs otherwise, the row with its Message-ID; nullptr if none.
const MessageRecord* findRow(const std::map<std::string, MessageRecord>& rows, const Setup& setup,
                             int k)
{
    auto it = rows.find(setup.messages[k - 1].uidl);
    if (it != rows.end())
        return &it->second;
    const std::string id = "<m" + std::to_string(k) + ".fetcher-test@example.org>";
    for (const auto& [uidl, row] : rows)
        if (row.messageId == id)
            return &row;
    return nullptr;
}

/// Outcome - everything a row's own checks may look at, after the last poll.
struct Outcome {
    const Setup& setup;
    std::vector<PollReport> reports;
    std::vector<std::size_t> sessionsBefore; ///< server sessions before each poll
    std::vector<MailboxSession> sessions;
    std::vector<SinkMessage> received;
    std::map<std::string, MessageRecord> rows; ///< by UIDL

    const MessageRecord* row(int k) const { return findRow(rows, setup, k); }
    /// ofPoll - one list of the sessions of poll p (0-based), all its sessions.
    std::vector<std::string> ofPoll(std::size_t p,
                                    std::vector<std::string> MailboxSession::*list) const
    {
        std::vector<std::string> out;
        const std::size_t end =
            p + 1 < sessionsBefore.size() ? sessionsBefore[p + 1] : sessions.size();
        for (std::size_t s = sessionsBefore[p]; s < end; ++s)
            out.insert(out.end(), (sessions[s].*list).begin(), (sessions[s].*list).end());
        return out;
    }
    std::vector<std::string> commandsOfPoll(std::size_t p) const
    {
        return ofPoll(p, &MailboxSession::commands);
    }
    /// retrievedInPoll / markedInPoll - whether poll p sent RETR / DELE for message k.
    bool retrievedInPoll(std::size_t p, int k) const
    {
        return has(ofPoll(p, &MailboxSession::retrieved), setup.messages[k - 1].uidl);
    }
    bool markedInPoll(std::size_t p, int k) const
    {
        return has(ofPoll(p, &MailboxSession::marked), setup.messages[k - 1].uidl);
    }
};

struct Case {
    const char* label;
    std::function<void(Setup&)> setup; ///< make message 2 odd
    std::vector<After> polls;
    std::function<void(const Outcome&)> also; ///< the row's own checks, or nullptr
};

/// numbers - "1 3" -> {1, 3}.
std::vector<int> numbers(const std::string& text)
{
    std::vector<int> out;
    std::istringstream in(text);
    int k = 0;
    while (in >> k)
        out.push_back(k);
    return out;
}

std::string join(std::vector<int> v)
{
    std::sort(v.begin(), v.end());
    std::string out;
    for (int k : v)
        out += (out.empty() ? "" : " ") + std::to_string(k);
    return out;
}

/// brokenByUnstuffedDot - message 2 with a "." line the server did not
/// stuff, then what looks like replies and more text: a client that takes the
/// "." for the end loses step with the server.
void brokenByUnstuffedDot(Setup& s)
{
    std::string wire = wireFor(s.texts[1]);
    wire.erase(wire.size() - 3); // its ".\r\n"
    wire += ".\r\n+OK 377 octets\r\nReceived: from nowhere\r\nmore body after the dot\r\n"
            "+OK\r\nstill more of message 2\r\n.\r\n";
    s.odd().wire = wire;
}

// ---- the table ----------------------------------------------------------------

const std::vector<Case>& cases()
{
    static const std::vector<Case> table = {
        {"list_size_half",
         [](Setup& s) { s.odd().listSize = realSize(s.odd().wire) / 2; },
         {{"1 2 3", "", "injected injected injected", true, true}},
         nullptr},

        {"list_size_tenfold",
         [](Setup& s) { s.odd().listSize = realSize(s.odd().wire) * 10; },
         {{"1 2 3", "", "injected injected injected", true, true}},
         nullptr},

        {"bare_lf_line_ends",
         [](Setup& s) {
             s.texts[1] = lf(s.texts[1]);
             s.odd().wire = lf(wireFor(s.texts[1])); // ends "\n.\n"
         },
         {{"1 2 3", "", "injected injected injected", true, true}},
         [](const Outcome& o) {
             for (const auto& m : o.received)
                 if (whichMessage(m.text) == 2)
                     BOOST_TEST(!hasBareLf(m.wire), "message 2 reached SMTP with a bare LF");
         }},

        {"unstuffed_dot_pipelined",
         brokenByUnstuffedDot,
         {{"1", "1 2 3", "injected failed *", false, true},
          {"3", "2", "injected failed injected", true, true}},
         [](const Outcome& o) {
             const MessageRecord* r = o.row(2);
             BOOST_TEST((r && !r->reason.empty()), "message 2's failed row gives a reason");
             BOOST_TEST(!o.retrievedInPoll(1, 2), "a failed message is not fetched again");
         }},

        {"unstuffed_dot_not_pipelined",
         [](Setup& s) {
             brokenByUnstuffedDot(s);
             s.mailbox.pipelining = false;
         },
         {{"1", "1 2 3", "injected failed *", false, true},
          {"3", "2", "injected failed injected", true, true}},
         [](const Outcome& o) {
             const MessageRecord* r = o.row(2);
             BOOST_TEST((r && !r->reason.empty()), "message 2's failed row gives a reason");
             BOOST_TEST(!o.retrievedInPoll(1, 2), "a failed message is not fetched again");
         }},

        {"uidl_10000_characters",
         [](Setup& s) {
             s.messages[0].uidl = std::string(9000, 'u') + std::string(1000, '1');
             s.messages[1].uidl = std::string(9000, 'u') + std::string(1000, '2');
             s.messages[2].uidl = std::string(10000, '3');
         },
         {{"1 2 3", "", "injected injected injected", true, true}},
         [](const Outcome& o) {
             BOOST_TEST(o.rows.size() == 3u, "three distinct ledger rows");
             for (int k = 1; k <= kMessages; ++k)
                 BOOST_TEST(o.row(k) != nullptr, "a row of its own for message " << k);
         }},

        {"retr_refused",
         [](Setup& s) {
             s.odd().retrError = "cannot read message 2 right now";
             s.maxAttempts = 2;
         },
         {{"1 3", "2", "injected deferred injected", true, true},
          {"", "2", "injected failed injected", true, true}},
         [](const Outcome& o) {
             BOOST_TEST(!o.markedInPoll(0, 2), "no DELE for message 2");
             BOOST_TEST(!o.markedInPoll(1, 2), "no DELE for message 2");
             BOOST_TEST(o.retrievedInPoll(1, 2), "a due deferred message is tried again");
         }},

        {"mta_permanent_554",
         [](Setup& s) {
             s.rules.push_back({"Subject: message 2", 0, SinkReply::Permanent, -1});
         },
         {{"1 3", "2", "injected failed injected", true, true}},
         nullptr},

        {"mta_temporary_451",
         [](Setup& s) {
             s.rules.push_back({"Subject: message 2", 0, SinkReply::Temporary, -1});
         },
         {{"1 3", "2", "injected deferred injected", true, true}},
         nullptr},

        {"mta_hangs_up_after_dot",
         [](Setup& s) {
             s.rules.push_back({"Subject: message 2", 0, SinkReply::HangUp, 1});
         },
         {{"1", "2 3", "injected injecting *", true, false},
          {"2 3", "", "injected injected injected", true, true}},
         [](const Outcome& o) {
             std::vector<std::string> ids; // message 2's X-Popgate-Id, copy by copy
             for (const auto& m : o.received)
                 if (whichMessage(m.text) == 2)
                     for (const auto& v : headerValues(m.text, "X-Popgate-Id"))
                         ids.push_back(v);
             BOOST_TEST_REQUIRE(ids.size() == 2u, "message 2 reached the MTA twice");
             BOOST_TEST(ids[0] == ids[1], "the second copy carries the first one's X-Popgate-Id");
         }},

        {"apop_refused_user_accepted",
         [](Setup& s) {
             s.mailbox.apopTimestamp = true;
             s.mailbox.apopAccepted = false;
         },
         {{"1 2 3", "", "injected injected injected", true, true}},
         [](const Outcome& o) {
             const auto lines = o.commandsOfPoll(0);
             BOOST_TEST(
                 std::any_of(lines.begin(), lines.end(),
                             [](const std::string& l) { return l.rfind("APOP desk ", 0) == 0; }),
                 "APOP tried first (the greeting offers it)");
             BOOST_TEST(has(lines, "USER desk"));
         }},

        {"line_over_one_mebibyte",
         [](Setup& s) {
             // 1.5 MiB on one line: over the client's line cap. Read to its
             // end in step, failed, never delivered; the others go on.
             s.texts[1] = messageText(2, std::string(1536 * 1024, 'x') + "\r\n");
             s.odd().wire = wireFor(s.texts[1]);
         },
         {{"1 3", "2", "injected failed injected", true, true}},
         [](const Outcome& o) {
             const MessageRecord* r = o.row(2);
             BOOST_TEST((r && r->reason.find("longer than") != std::string::npos),
                        "the reason says why: '" << (r ? r->reason : "") << "'");
         }},

        {"unstuffed_dot_word_line",
         [](Setup& s) {
             // ".bad line" on the wire: not stuffed by the server; RFC 1939's
             // reader drops the first dot, as every other line's.
             s.texts[1] = messageText(2, "bad line\r\n");
             std::string wire = wireFor(s.texts[1]);
             const auto at = wire.find("\r\nbad line\r\n");
             wire.insert(at + 2, ".");
             s.odd().wire = wire;
         },
         {{"1 2 3", "", "injected injected injected", true, true}},
         nullptr},

        {"over_account_size_limit",
         [](Setup& s) {
             std::string filler;
             for (int i = 0; filler.size() < 30000; ++i)
                 filler += "filler line " + std::to_string(i) + " of the large message 2\r\n";
             s.texts[1] = messageText(2, filler);
             s.odd().wire = wireFor(s.texts[1]);
             s.maxMessageSize = 20000;
         },
         {{"1 3", "2", "injected failed injected", true, true}},
         [](const Outcome& o) {
             const MessageRecord* r = o.row(2);
             const std::string size = std::to_string(realSize(o.setup.messages[1].wire));
             BOOST_TEST((r && r->reason.find(size) != std::string::npos),
                        "the reason names the size " << size << ": '" << (r ? r->reason : "")
                                                     << "'");
         }},

        {"control_nothing_odd",
         [](Setup&) {},
         {{"1 2 3", "", "injected injected injected", true, true}},
         [](const Outcome& o) {
             BOOST_TEST(o.received.size() == 3u, "the sink got exactly three messages");
         }},
    };
    return table;
}

// ---- running a row ------------------------------------------------------------

/// LogLines - the fetcher's log, shown when a row fails.
class LogLines : public Poco::Channel
{
public:
    void log(const Poco::Message& message) override
    {
        std::lock_guard<std::mutex> lock(mutex_);
        text_ += "  " + message.getText() + "\n";
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

const char* replyName(SinkReply reply)
{
    switch (reply) {
    case SinkReply::Accept:
        return "accepted";
    case SinkReply::Temporary:
        return "answered 451";
    case SinkReply::Permanent:
        return "answered 554";
    case SinkReply::HangUp:
        return "hung up on";
    }
    return "?";
}

bool currentCasePassed()
{
    using namespace boost::unit_test;
    return results_collector.results(framework::current_test_case().p_id).passed();
}

/// ShowOnFailure - prints the fetcher's log and both peers' view when the row failed.
struct ShowOnFailure {
    Poco::AutoPtr<LogLines> log;
    const FakeMailboxServer* server = nullptr;
    const SmtpSink* sink = nullptr;
    ~ShowOnFailure()
    {
        if (currentCasePassed())
            return;
        std::string pop3;
        for (const auto& s : server->sessions()) {
            pop3 += "  -- session" + std::string(s.quit ? " (QUIT)" : " (dropped)") + "\n";
            for (const auto& c : s.commands)
                pop3 += "  " + (c.size() > 80 ? c.substr(0, 80) + "..." : c) + "\n";
        }
        std::string smtp;
        for (const auto& m : sink->received())
            smtp += "  message " + std::to_string(whichMessage(m.text)) + " (session " +
                    std::to_string(m.session + 1) + ") " + replyName(m.reply) + "\n";
        BOOST_TEST_MESSAGE("fetcher log:\n"
                           << log->text() << "POP3 commands:\n"
                           << pop3 << "SMTP messages:\n"
                           << smtp);
    }
};

void runCase(const Case& c)
{
    Setup setup;
    c.setup(setup);

    TempDir dir;
    TestDatabase database("sqlite");
    Store store(database.config(), Store::Open::CreateFile);
    store.migrate();
    MessageStore ledger(store);

    FakeMailboxServer server(setup.messages, setup.mailbox);
    SmtpSink sink;
    for (const auto& rule : setup.rules)
        sink.addRule(rule);

    Account account;
    account.name = "desk";
    account.server = "127.0.0.1";
    account.port = server.port();
    account.security = Security::None;
    account.plaintextAuth = true;
    account.auth = AuthKind::Password;
    account.user = setup.mailbox.user;
    account.sealedSecret = "gcm1:unused-the-test-passes-the-password";
    account.mailbox = kMailbox;
    account.keepOnServer = false;
    account.maxMessageSize = setup.maxMessageSize;
    store.addAccount(account);

    FetchSettings settings;
    settings.mta.host = "127.0.0.1";
    settings.mta.port = sink.port();
    settings.mta.helo = "gw.test";
    settings.mta.timeout = std::chrono::milliseconds(5000);
    settings.spoolDir = dir.file("spool");
    Poco::File(settings.spoolDir + "/tmp").createDirectories();
    settings.hostname = "gw.test";
    settings.headerKey = "0123456789abcdef0123456789abcdef";
    settings.connectTimeout = std::chrono::milliseconds(5000);
    settings.readTimeout = std::chrono::milliseconds(5000);
    settings.maxAttempts = setup.maxAttempts;

    ShowOnFailure show;
    show.log = new LogLines;
    show.server = &server;
    show.sink = &sink;
    Poco::Logger& log = Poco::Logger::get(std::string("fetcher_test.") + c.label);
    log.setChannel(show.log);
    log.setLevel(Poco::Message::PRIO_DEBUG);

    Fetcher fetcher(
        store, settings, [](const Account&) { return std::shared_ptr<const CompiledFilter>(); },
        log);
    const std::atomic<bool> stopping{false};
    const std::string states[] = {"injecting", "injected", "ignored", "failed", "deferred"};

    Outcome outcome{setup, {}, {}, {}, {}, {}};
    std::vector<int> heldBefore = {1, 2, 3};
    for (std::size_t p = 0; p < c.polls.size(); ++p) {
        const After& want = c.polls[p];
        BOOST_TEST_CONTEXT("poll " << p + 1)
        {
            if (p > 0) {
                // The clock moves on: a deferred row is due at the next poll.
                for (auto& [uidl, row] : ledger.forAccount(account.id))
                    if (row.state == MessageState::Deferred) {
                        row.retryAt = 0;
                        ledger.save(row);
                    }
            }
            const auto rowsBefore = ledger.forAccount(account.id);
            const std::size_t sinkBefore = sink.received().size();
            outcome.sessionsBefore.push_back(server.sessions().size());

            const PollReport report =
                fetcher.poll(account, setup.mailbox.password, nullptr, stopping);
            outcome.reports.push_back(report);
            BOOST_TEST_REQUIRE(server.awaitIdle(), "the POP3 session is over");
            BOOST_TEST_REQUIRE(sink.awaitIdle(), "the SMTP session is over");

            // What the sink accepted in this poll, and how.
            const auto received = sink.received();
            std::vector<int> delivered;
            for (std::size_t i = sinkBefore; i < received.size(); ++i) {
                const SinkMessage& m = received[i];
                BOOST_TEST(!hasBareLf(m.wire), "a bare LF reached SMTP");
                if (m.reply != SinkReply::Accept)
                    continue;
                const int k = whichMessage(m.text);
                delivered.push_back(k);
                BOOST_TEST_CONTEXT("delivered message " << k)
                {
                    BOOST_TEST_REQUIRE(k > 0);
                    const std::string original = crlf(setup.texts[k - 1]);
                    BOOST_TEST((m.text.size() >= original.size() &&
                                m.text.compare(m.text.size() - original.size(), original.size(),
                                               original) == 0),
                               "the text ends with the message as sent, byte for byte");
                    BOOST_TEST(headerValues(m.text, "X-Popgate-Id").size() == 1u);
                    BOOST_TEST(m.to == std::vector<std::string>{kMailbox},
                               boost::test_tools::per_element());
                }
            }
            BOOST_TEST(join(delivered) == join(numbers(want.delivered)),
                       "delivered in this poll: [" << join(delivered) << "], want ["
                                                   << want.delivered << "]");

            // What the server still holds.
            std::vector<int> held;
            for (const auto& uidl : server.held())
                for (int k = 1; k <= kMessages; ++k)
                    if (setup.messages[k - 1].uidl == uidl)
                        held.push_back(k);
            BOOST_TEST(join(held) == join(numbers(want.held)),
                       "held by the server: [" << join(held) << "], want [" << want.held << "]");

            const auto sessions = server.sessions();
            BOOST_TEST_REQUIRE(sessions.size() > outcome.sessionsBefore.back(), "a POP3 session");
            bool anyQuit = false;
            for (std::size_t i = outcome.sessionsBefore.back(); i < sessions.size(); ++i)
                anyQuit = anyQuit || sessions[i].quit;
            if (want.quit)
                BOOST_TEST(sessions.back().quit, "the session ended with QUIT");
            else
                BOOST_TEST(!anyQuit, "the session was dropped without QUIT");

            // The ledger.
            const auto rows = ledger.forAccount(account.id);
            std::istringstream wanted(want.rows);
            int becameFailed = 0, becameDeferred = 0;
            for (int k = 1; k <= kMessages; ++k) {
                std::string state;
                wanted >> state;
                const MessageRecord* row = findRow(rows, setup, k);
                const MessageRecord* before = findRow(rowsBefore, setup, k);
                const std::string now = row ? messageStateName(row->state) : "(no row)";
                BOOST_TEST_CONTEXT("ledger row of message " << k)
                {
                    if (state == "-")
                        BOOST_TEST(!row, "no row, got " << now);
                    else if (state != "*")
                        BOOST_TEST(now == state, "state "
                                                     << now << ", want " << state
                                                     << (!row || row->reason.empty()
                                                             ? std::string()
                                                             : " (reason: " + row->reason + ")"));
                    if (row) {
                        becameFailed += row->state == MessageState::Failed &&
                                        !(before && before->state == MessageState::Failed);
                        becameDeferred += row->state == MessageState::Deferred &&
                                          !(before && before->state == MessageState::Deferred);
                        const bool gone = std::find(held.begin(), held.end(), k) == held.end();
                        BOOST_TEST(row->deleted == gone, "deleted flag as the server has it");
                    }
                }
            }

            // The report.
            BOOST_TEST(report.ok == want.ok, "report ok " << report.ok << ", want " << want.ok
                                                          << (report.error.empty() ? "" : ": ")
                                                          << report.error);
            BOOST_TEST(report.listed == static_cast<int>(heldBefore.size()));
            BOOST_TEST(report.delivered == static_cast<int>(delivered.size()));
            BOOST_TEST(report.deleted == static_cast<int>(heldBefore.size() - held.size()));
            // The counters match the ledger where the row pins every state.
            if (std::string(want.rows).find('*') == std::string::npos) {
                BOOST_TEST(report.failed == becameFailed);
                BOOST_TEST(report.deferred == becameDeferred);
            }
            heldBefore = held;
        }
    }
    outcome.sessions = server.sessions();
    outcome.received = sink.received();
    outcome.rows = ledger.forAccount(account.id);
    if (c.also)
        c.also(outcome);
    BOOST_TEST(server.problems() == "", "the POP3 client kept the protocol");
    BOOST_TEST(sink.problems() == "", "the SMTP client kept the protocol");
}

/// Each row is a test case of its own, named by its label.
struct Registrar {
    Registrar()
    {
        auto& master = boost::unit_test::framework::master_test_suite();
        for (const Case& c : cases())
            master.add(boost::unit_test::make_test_case([&c] { runCase(c); }, c.label, __FILE__,
                                                        __LINE__));
    }
} registrar;

} // namespace
