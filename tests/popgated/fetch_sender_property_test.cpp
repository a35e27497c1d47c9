// fetch_sender_property_test - issue [H] items 5, C and 7 on popgated's path,
// in-process: Fetcher::poll against the fake POP3 server and the SMTP sink of
// tests/support/, with a deny filter for spam.example and bücher.example.
// - generated messages (tests/core/sender_forms.h) with a blocked sender in
//   every legal and obsolete form are never handed to the MTA (ignored,
//   quarantined); the same forms with an allowed sender always are (a From
//   over 16 KiB fails closed); the seed is printed, POPGATE_PROPERTY_SEED
//   replays it;
// - control bytes: in a From field they make the sender unreadable (ignored),
//   in the body and in other fields they pass byte for byte (Postfix's smtpd
//   passes them too: message_reject_characters is empty by default);
// - "From: x:;" without Return-Path is the null sender: delivered with
//   MAIL FROM:<> when allow_null_sender = yes, ignored when no.
// None of these holds the mailbox back: every other message of the poll is
// delivered and every message leaves the server.
#define BOOST_TEST_MODULE fetch_sender_property
#include "core/message_store.h"
#include "core/store.h"
#include "plugin/popgated/fetcher.h"
#include "tests/core/sender_forms.h"
#include "tests/support/fake_mailbox_server.h"
#include "tests/support/smtp_sink.h"
#include "tests/support/testdb.h"
#include "tests/support/testsupport.h"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/File.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

using namespace popgate;
using namespace popgate::test;

namespace
{

const char* const kMailbox = "desk@example.com";

std::uint32_t seed()
{
    const char* env = std::getenv("POPGATE_PROPERTY_SEED");
    return env && *env ? static_cast<std::uint32_t>(std::stoul(env)) : 20261203u;
}

/// Text - the fetcher's log, shown when a check fails.
class Text : public Poco::Channel
{
public:
    void log(const Poco::Message& message) override
    {
        std::lock_guard<std::mutex> lock(mutex_);
        text_ += "  " + message.getText().substr(0, 400) + "\n";
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

/// Mail - one message of the mailbox and what must become of it.
struct Mail {
    std::string label;
    std::string text;       ///< CRLF message as its sender wrote it
    bool delivered = false; ///< must reach the MTA (else: ignored, never handed over)
    std::string mailFrom;   ///< when delivered and not "*": the MAIL FROM it must get
};

std::string idOf(std::size_t k)
{
    return "<p" + std::to_string(k) + ".property@example.org>";
}

/// build - header fields (CRLF-terminated, may be empty) plus our Message-ID and a body.
std::string build(const std::string& header, std::size_t k, const std::string& body = "")
{
    return header + "To: " + kMailbox + "\r\nSubject: property " + std::to_string(k) +
           "\r\nMessage-ID: " + idOf(k) + "\r\n\r\n" +
           (body.empty() ? "body of " + std::to_string(k) + "\r\n" : body);
}

/// Result - what one poll did with every message.
struct Result {
    PollReport report;
    std::map<std::string, SinkMessage> accepted; ///< by Message-ID
    std::map<std::string, MessageRecord> rows;   ///< by UIDL
    std::vector<std::string> held;               ///< UIDLs still on the server
    int quarantined = 0;                         ///< files under spool/quarantine/desk
    std::string log;
    std::string problems;
};

std::string messageIdOf(const std::string& text)
{
    const std::size_t at = text.find("\r\nMessage-ID: ");
    if (at == std::string::npos)
        return "";
    const std::size_t end = text.find("\r\n", at + 2);
    return text.substr(at + 14, end - at - 14);
}

Result poll(const std::vector<Mail>& mails, bool allowNullSender)
{
    std::vector<FakeMessage> messages;
    for (std::size_t k = 0; k < mails.size(); ++k)
        messages.push_back({wireFor(mails[k].text), "u" + std::to_string(k), -1, ""});

    TempDir dir;
    TestDatabase database("sqlite");
    Store store(database.config(), Store::Open::CreateFile);
    store.migrate();
    MessageStore ledger(store);
    MailboxOptions mailbox;
    FakeMailboxServer server(messages, mailbox);
    SmtpSink sink;

    Account account;
    account.name = "desk";
    account.server = "127.0.0.1";
    account.port = server.port();
    account.security = Security::None;
    account.plaintextAuth = true;
    account.auth = AuthKind::Password;
    account.user = mailbox.user;
    account.sealedSecret = "gcm1:unused-the-test-passes-the-password";
    account.mailbox = kMailbox;
    account.keepOnServer = false;
    store.addAccount(account);

    FetchSettings settings;
    settings.mta.host = "127.0.0.1";
    settings.mta.port = sink.port();
    settings.mta.helo = "gw.test";
    settings.mta.timeout = std::chrono::milliseconds(10000);
    settings.spoolDir = dir.file("spool");
    Poco::File(settings.spoolDir + "/tmp").createDirectories();
    settings.hostname = "gw.test";
    settings.headerKey = "0123456789abcdef0123456789abcdef";
    settings.connectTimeout = std::chrono::milliseconds(5000);
    settings.readTimeout = std::chrono::milliseconds(10000);
    settings.allowDuplicates = true;

    EmailAddressFilter deny;
    deny.name = "spam";
    deny.type = FilterType::Deny;
    deny.domains = {"spam.example", "bücher.example"};
    SystemAddressFilter sys;
    sys.name = "inbound-default";
    sys.addressFilters = {deny};
    FilterOptions options;
    options.allowNullSender = allowNullSender;
    auto filter = std::make_shared<const CompiledFilter>(sys, options);

    Poco::AutoPtr<Text> text = new Text;
    Poco::Logger& log = Poco::Logger::get("fetch_sender_property");
    log.setChannel(text);
    log.setLevel(Poco::Message::PRIO_INFORMATION);
    Fetcher fetcher(
        store, settings, [filter](const Account&) { return filter; }, log);
    const std::atomic<bool> stopping{false};

    Result r;
    r.report = fetcher.poll(account, mailbox.password, nullptr, stopping);
    BOOST_TEST_REQUIRE(server.awaitIdle());
    BOOST_TEST_REQUIRE(sink.awaitIdle());
    for (const SinkMessage& m : sink.received())
        if (m.reply == SinkReply::Accept)
            r.accepted[messageIdOf(m.text)] = m;
    for (auto& [uidl, row] : ledger.forAccount(account.id))
        r.rows[uidl] = row;
    r.held = server.held();
    const std::string q = settings.spoolDir + "/quarantine/desk";
    if (Poco::File(q).exists()) {
        std::vector<std::string> files;
        Poco::File(q).list(files);
        r.quarantined = static_cast<int>(files.size());
    }
    r.log = text->text();
    r.problems = server.problems() + sink.problems();
    return r;
}

std::string seedLabel(std::uint32_t seed, std::size_t k, const std::string& form, bool blocked)
{
    return "seed " + std::to_string(seed) + " case " + std::to_string(k) + " " +
           (blocked ? "blocked" : "allowed") + " " + form;
}

/// check - every message became what it must; returns the number of misses.
int check(const std::vector<Mail>& mails, const Result& r, const std::string& what)
{
    int misses = 0, ignored = 0;
    for (std::size_t k = 0; k < mails.size() && misses < 20; ++k) {
        const Mail& m = mails[k];
        auto it = r.accepted.find(idOf(k));
        auto row = r.rows.find("u" + std::to_string(k));
        const std::string state =
            row == r.rows.end() ? "(no row)" : messageStateName(row->second.state);
        BOOST_TEST_CONTEXT(what << " message " << k << " (" << m.label << "), ledger " << state
                                << (row == r.rows.end() ? "" : ": " + row->second.reason))
        {
            const bool got = it != r.accepted.end();
            misses += got != m.delivered;
            BOOST_TEST(got == m.delivered, (m.delivered ? "not delivered" : "DELIVERED")
                                               << "; From fields: " << m.text.substr(0, 300));
            BOOST_TEST(state == (m.delivered ? "injected" : "ignored"));
            if (got && m.delivered) {
                const std::string& t = it->second.text;
                BOOST_TEST((t.size() >= m.text.size() &&
                            t.compare(t.size() - m.text.size(), m.text.size(), m.text) == 0),
                           "the message reached the MTA byte for byte");
                if (m.mailFrom != "*")
                    BOOST_TEST(it->second.from == m.mailFrom);
            }
            ignored += !m.delivered;
        }
    }
    BOOST_TEST(r.report.ok, r.report.error);
    BOOST_TEST(r.held.empty(), "every message left the server: none blocks the mailbox");
    BOOST_TEST(r.quarantined == ignored, "each ignored message is in the quarantine");
    BOOST_TEST(r.problems == "");
    if (misses)
        BOOST_TEST_MESSAGE("fetcher log:\n" << r.log.substr(0, 20000));
    return misses;
}

} // namespace

BOOST_AUTO_TEST_CASE(generated_senders_through_popgated)
{
    const std::uint32_t s = seed();
    BOOST_TEST_MESSAGE("fetch_sender_property seed " << s << " (POPGATE_PROPERTY_SEED replays it)");
    const std::vector<SenderTarget> blocked = {
        {"x", "spam.example", ""},
        {"boss.man", "xn--bcher-kva.example", "bücher.example"},
    };
    const std::vector<SenderTarget> allowed = {
        {"a.b", "ok.example", ""},
        {"y", "xn--mnchen-3ya.example", "münchen.example"},
    };
    SenderForms forms(s, "a@ok.example");
    std::vector<Mail> mails;
    for (std::size_t k = 0; k < 300; ++k) {
        const bool isBlocked = k % 2 == 0;
        const SenderTarget& target = (isBlocked ? blocked : allowed)[forms.pick(2)];
        // the 1 MB form in a few messages only: the poll stays fast
        const SenderCase c = forms.next(target, k % 50 < 2);
        const std::string returnPath = forms.pick(2) ? "Return-Path: <rp@ok.example>\r\n" : "";
        Mail m;
        m.label = seedLabel(s, k, c.form, isBlocked);
        m.text = build(returnPath + c.header(), k);
        m.delivered = !isBlocked && !c.overLimit;
        m.mailFrom = "*";
        mails.push_back(std::move(m));
    }
    const Result r = poll(mails, true);
    check(mails, r, "seed " + std::to_string(s));
    BOOST_TEST(r.accepted.size() + r.quarantined == mails.size());
    BOOST_TEST_MESSAGE(mails.size() << " messages in one poll: " << r.accepted.size()
                                    << " delivered, " << r.quarantined << " quarantined");
}

BOOST_AUTO_TEST_CASE(control_bytes_through_popgated)
{
    // Policy (docs/man/popgate.conf.5, FILTER): control bytes pass, as Postfix's
    // smtpd passes them by default, except in a From field, where they make the
    // sender unreadable: the address judged must be the one a reader sees.
    const std::string nul(1, '\0');
    std::vector<Mail> mails;
    auto add = [&](const std::string& label, const std::string& header, bool delivered,
                   const std::string& body = "") {
        const std::size_t k = mails.size();
        mails.push_back({label, build(header, k, body), delivered, "*"});
    };
    add("NUL between two mailboxes", "From: <a@ok.example>" + nul + "<x@spam.example>\r\n", false);
    add("NUL after an allowed address", "From: a@ok.example" + nul + ", x@spam.example\r\n", false);
    add("NUL in an allowed From", "From: Ann" + nul + " <a@ok.example>\r\n", false);
    add("lone CR hiding a blocked address", "From: a@ok.example\r<x@spam.example>\r\n", false);
    add("lone CR in an allowed From", "From: Ann\r <a@ok.example>\r\n", false);
    add("terminal escape in the display name", "From: \x1b[2K\rBoss <a@ok.example>\r\n", false);
    add("DEL in the display name", "From: Bo\x7fss <a@ok.example>\r\n", false);
    add("control byte in a second From field",
        "From: a@ok.example\r\nFrom: B\x01 <b@ok.example>\r\n", false);
    add("NUL, ESC, DEL, bare CR and 0x01 in the body pass byte for byte", "From: a@ok.example\r\n",
        true,
        "nul " + nul + " esc \x1b[31m del \x7f soh \x01 cr\rmid\r\n" + nul + nul + "\r\nend\r\n");
    add("control bytes in other header fields pass",
        "From: a@ok.example\r\nX-Odd: nul " + nul + " esc \x1b bel \x07 cr\rx\r\n", true);
    add("HTAB in a From is white space", "From: Ann\t<a@ok.example>\r\n", true);
    add("raw ISO-2022-JP display name (old Japanese mailers)",
        "From: \x1b$B$3$s$K$A$O\x1b(B <a@ok.example>\r\n", true);
    add("raw ISO-2022-JP display name, blocked address",
        "From: \x1b$B$3$s\x1b(B <x@spam.example>\r\n", false);
    add("an escape that is not ISO-2022-JP", "From: \x1b(Z <a@ok.example>\r\n", false);
    add("a plain message after them all", "From: a@ok.example\r\n", true);
    const Result r = poll(mails, true);
    check(mails, r, "control bytes:");
    // the reason names the byte and where it is
    for (std::size_t k = 0; k < 3; ++k) {
        auto row = r.rows.find("u" + std::to_string(k));
        BOOST_TEST_REQUIRE((row != r.rows.end()));
        BOOST_TEST(row->second.reason.find("holds control byte 0x00 at octet") != std::string::npos,
                   row->second.reason);
    }
}

BOOST_AUTO_TEST_CASE(no_readable_originator_through_popgated)
{
    // Item C: "From: x:;" and no Return-Path is reinjected with MAIL FROM:<>
    // and judged as the null sender: allow_null_sender decides.
    for (const bool allowNull : {true, false}) {
        BOOST_TEST_CONTEXT("allow_null_sender = " << (allowNull ? "yes" : "no"))
        {
            std::vector<Mail> mails;
            auto add = [&](const std::string& label, const std::string& header, bool delivered,
                           const std::string& mailFrom) {
                const std::size_t k = mails.size();
                mails.push_back({label, build(header, k), delivered, mailFrom});
            };
            add("empty group, no Return-Path", "From: x:;\r\n", allowNull, "");
            add("empty group with a comment, no Return-Path",
                "From: undisclosed-recipients: (none);\r\n", allowNull, "");
            add("no From at all, no Return-Path", "", allowNull, "");
            add("empty group, blocked Return-Path",
                "Return-Path: <x@spam.example>\r\nFrom: x:;\r\n", false, "");
            add("empty group, allowed Return-Path", "Return-Path: <rp@ok.example>\r\nFrom: x:;\r\n",
                true, "rp@ok.example");
            add("a bounce with Return-Path <> and a readable From",
                "Return-Path: <>\r\nFrom: MAILER-DAEMON@ok.example\r\n", allowNull, "");
            add("a plain message", "From: a@ok.example\r\n", true, "a@ok.example");
            const Result r = poll(mails, allowNull);
            check(mails, r, allowNull ? "allow_null_sender yes:" : "allow_null_sender no:");
            if (!allowNull) {
                auto row = r.rows.find("u0");
                BOOST_TEST_REQUIRE((row != r.rows.end()));
                BOOST_TEST(row->second.reason.find("null sender, bounces not allowed") !=
                               std::string::npos,
                           row->second.reason);
            }
        }
    }
}
