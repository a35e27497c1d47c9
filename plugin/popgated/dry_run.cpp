// dry_run.cpp - see dry_run.h. The decisions are the poll's own functions
// (planAction, screenMessages, decide, failedAfterAttempts); what is here is
// reading (UIDL, LIST, RETR into a rewriter that keeps only the facts, the
// ledger) and printing. Nothing in this file writes to the database, the
// spool or the server.
#include "plugin/popgated/dry_run.h"

#include "core/errors.h"
#include "core/filter_store.h"
#include "core/recipients.h"
#include "core/secretbox.h"
#include "core/settings.h"
#include "core/store.h"
#include "core/text.h"
#include "plugin/net/oauth_client.h"
#include "plugin/net/oauth_sasl.h"
#include "plugin/popgated/poll.h"

#include <Poco/Exception.h>
#include <map>
#include <memory>
#include <set>
#include <vector>

namespace popgate
{

namespace
{

constexpr std::size_t kRetrChunk = 128; ///< RETR commands in one retrieveMany (as a poll's batch)

// NullBuffer - where a retrieved message goes: counted by the rewriter, kept nowhere.
class NullBuffer : public std::streambuf
{
protected:
    int_type overflow(int_type ch) override { return traits_type::not_eof(ch); }
    std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

std::string term(const std::string& s)
{
    return escapeText(s, EscapeFor::Terminal);
}

// recipientsText - whom a delivered message would go to, as the poll gives
// them to the MTA (one place, so a per-message recipient list can extend it).
// A domain mailbox: the envelope field the retrieval kept, resolved as the poll
// resolves it (core/recipients.h); the addresses refused are named too.
std::string recipientsText(const Account& account, const MessageFacts& facts)
{
    if (account.recipientSource == RecipientSource::Envelope) {
        const RecipientResolution res = resolveRecipients(account, facts.envelope);
        std::string out;
        for (const auto& r : res.recipients)
            out += (out.empty() ? "" : ", ") + term(r);
        for (const auto& r : res.refused)
            out += (out.empty() ? "" : ", ") + std::string("not ") + term(r.address) + " (" +
                   term(r.reason) + ")";
        if (!res.deliverable())
            out = "nobody (" + recipientVerdictName(res.verdict) + ": " + term(res.detail) + ")" +
                  (out.empty() ? "" : "; " + out);
        return out;
    }
    std::string out;
    for (const auto& r : account.recipients())
        out += (out.empty() ? "" : ", ") + term(r);
    return out.empty() ? "(no recipient: set mailbox or deliver-to)" : out;
}

// secretFor - what the account logs in with (as the scheduler's accountSecret).
std::string secretFor(const Config& config, Store& store, const Account& account, Poco::Logger& log)
{
    if (account.auth == AuthKind::OAuth || account.auth == AuthKind::OAuth2)
        return accessTokenFor(store, SecretBox::load(config.str("secret_key_file")), account, log);
    if (!account.hasSecret())
        return {};
    return SecretBox::load(config.str("secret_key_file")).open(account.sealedSecret);
}

// Message - one listed message and what a poll would do with it.
struct Message {
    Pop3Uid uid;
    std::int64_t listed = -1;
    const MessageRecord* row = nullptr;
    std::string fate; ///< set once decided
    bool retrieve = false;
    std::unique_ptr<MessageRewriter> rewriter;
    std::unique_ptr<std::ostream> out;
    MessageFacts facts;
    std::string envelopeFrom;
};

class DryRun
{
public:
    DryRun(const Config& config, Store& store, std::ostream& out, Poco::Logger& log)
        : config_(config), store_(store), ledger_(store), out_(out), log_(log)
    {
        settings_.maxHops = static_cast<int>(config.integer("max_hops"));
        settings_.duplicateWindow = config.integer("duplicate_window");
        settings_.allowDuplicates = config.flag("allow_duplicate_message_ids");
        settings_.maxAttempts = static_cast<int>(config.integer("message_max_attempts"));
        settings_.connectTimeout = std::chrono::seconds(config.integer("pop3.connect_timeout"));
        settings_.readTimeout = std::chrono::seconds(config.integer("pop3.read_timeout"));
        filterOptions_.allowNullSender = config.flag("allow_null_sender");
    }

    /// account - one account's report; false when it could not be reached.
    bool account(const Account& a)
    {
        out_ << "account " << term(a.name) << " (" << term(a.server) << ":" << a.effectivePort()
             << (a.active ? "" : ", inactive: popgated does not poll it") << ")\n";
        try {
            run(a);
            return true;
        } catch (const Pop3Error& e) {
            failed(failureName(classifyPop3(e)), e.what());
        } catch (const OAuthError& e) {
            failed("oauth", e.what());
        } catch (const InputError& e) { // the account's filter is gone
            failed("filter", e.what());
        } catch (const OperationError& e) { // the database, the key file
            failed("database or key", e.what());
        } catch (const Poco::Exception& e) {
            failed("pop3-network", e.displayText());
        }
        return false;
    }

private:
    void failed(const std::string& what, const std::string& words)
    {
        out_ << "  poll would fail (" << what << "): " << term(flatten(words)) << "\n";
    }

    std::shared_ptr<const CompiledFilter> filterFor(const Account& a)
    {
        const FilterResolution r = FilterStore(store_).resolve(a.filter);
        if (!r.warning.empty())
            out_ << "  note: " << term(r.warning) << "\n";
        if (!r.filter)
            return nullptr;
        return std::make_shared<const CompiledFilter>(*r.filter, filterOptions_);
    }

    // open - connect, TLS, log in: as the poll's open stage does.
    std::unique_ptr<Pop3Client> open(const Account& a, const std::string& secret)
    {
        Pop3Settings ps;
        ps.host = a.server;
        ps.port = a.effectivePort();
        ps.security = a.security;
        ps.tls.caFile = a.tlsCaFile;
        ps.tls.pinSha256 = a.tlsPin;
        ps.tls.minVersion = a.tlsMinVersion;
        ps.connectTimeout = settings_.connectTimeout;
        ps.readTimeout = settings_.readTimeout;
        ps.allowPlaintextAuth = a.plaintextAuth;
        auto pop = std::make_unique<Pop3Client>(ps);
        pop->open();
        if (a.auth == AuthKind::Password)
            pop->authenticate(a.user, secret, parsePop3Mechanism(a.authMechanism));
        else if (a.auth != AuthKind::None)
            authenticateOAuth(*pop, a, secret);
        return pop;
    }

    void run(const Account& a)
    {
        const auto filter = filterFor(a);
        const std::string secret = secretFor(config_, store_, a, log_);
        auto pop = open(a, secret);
        const auto uids = pop->uidl();
        std::map<int, std::int64_t> sizes;
        for (const auto& l : pop->list())
            sizes[l.number] = l.octets;
        const auto rows = ledger_.forAccount(a.id);
        std::set<std::string> journaled;
        for (const auto& e :
             DeliveryJournal(config_.str("spool_dir") + "/journal/" + a.name).read())
            journaled.insert(e.uidl);
        out_ << "  " << uids.size() << " message(s) listed; a poll would:\n";

        const std::int64_t now = nowSeconds();
        const std::string dele = a.keepOnServer ? "" : ", then DELE";
        std::vector<Message> messages(uids.size());
        for (std::size_t i = 0; i < uids.size(); ++i) {
            Message& m = messages[i];
            m.uid = uids[i];
            const auto size = sizes.find(m.uid.number);
            m.listed = size == sizes.end() ? -1 : size->second;
            const auto row = rows.find(m.uid.uid);
            if (row != rows.end())
                m.row = &row->second;
            PlanAction action = m.row ? planAction(*m.row, now) : PlanAction::Fetch;
            // The delivery journal of an interrupted poll: the plan records
            // these as delivered first, then only deletes them.
            if (m.row && m.row->state == MessageState::Injecting && journaled.count(m.uid.uid))
                action = PlanAction::DeleteOnly;
            if (action == PlanAction::DeleteOnly) {
                const std::string before = journaled.count(m.uid.uid)
                                               ? "delivered before, in the delivery journal"
                                               : messageStateName(m.row->state) + " before";
                m.fate = a.keepOnServer ? "leave it (" + before + "; keep-on-server)"
                                        : "only DELE (" + before + ")";
                continue;
            }
            if (action == PlanAction::Wait) {
                m.fate = std::string("leave it (") + messageStateName(m.row->state) +
                         (m.row->retryAt > 0
                              ? " until " + std::to_string(m.row->retryAt - now) + " s from now"
                              : ", until `popgatectl message retry`") +
                         ": " + term(m.row->reason) + ")";
                continue;
            }
            if (a.maxMessageSize > 0 && m.listed > a.maxMessageSize) {
                const Decision d = decide(Failure::TooLarge);
                m.fate = std::string(d.message == MessageOutcome::MarkFailed ? "fail" : "defer") +
                         " (message too large: " + std::to_string(m.listed) +
                         " octets, account limit " + std::to_string(a.maxMessageSize) +
                         "; kept on the server)";
                continue;
            }
            m.retrieve = true;
        }
        const bool inStep = retrieve(a, *pop, messages);

        std::vector<ScreenInput> in;
        std::vector<Message*> screened;
        for (Message& m : messages)
            if (m.retrieve && m.fate.empty()) {
                in.push_back({m.uid.uid, &m.facts, m.envelopeFrom});
                screened.push_back(&m);
            }
        const auto verdicts = screenMessages(ledger_, a, settings_, filter.get(), in);
        for (std::size_t i = 0; i < screened.size(); ++i) {
            Message& m = *screened[i];
            const ScreenVerdict& v = verdicts[i];
            if (v.admitted())
                m.fate = "deliver to " + recipientsText(a, m.facts) + dele;
            else
                m.fate = "ignore (" + screenReasonName(v.reason) + ": " + term(v.detail) +
                         "; quarantined" + dele + ")";
        }
        for (const Message& m : messages) {
            out_ << "  " << m.uid.number << " uidl=" << term(m.uid.uid);
            if (m.retrieve && m.envelopeFrom.size() + m.facts.messageId.size() > 0)
                out_ << " from=<" << term(m.envelopeFrom) << ">"
                     << " message-id="
                     << (m.facts.messageId.empty() ? "-" : term(m.facts.messageId));
            else if (m.row)
                out_ << " from=<" << term(m.row->envelopeFrom) << ">"
                     << " message-id=" << (m.row->messageId.empty() ? "-" : term(m.row->messageId));
            out_ << " size=" << m.listed << ": " << m.fate << "\n";
        }
        // QUIT with no DELE sent: the server changes nothing (RFC 1939 UPDATE
        // state). Out of step, the session is dropped (no QUIT) as a poll would.
        if (inStep)
            pop->quit();
    }

    // retrieve - RETR what the plan would fetch, kept as facts only; a RETR
    // problem is the message's fate as the record stage would decide it.
    // Returns false when the stream lost step (the session is not to be reused).
    bool retrieve(const Account& a, Pop3Client& pop, std::vector<Message>& messages)
    {
        NullBuffer null;
        std::ostream sink(&null);
        std::vector<Message*> todo;
        for (Message& m : messages)
            if (m.retrieve)
                todo.push_back(&m);
        for (std::size_t start = 0; start < todo.size(); start += kRetrChunk) {
            const std::size_t end = std::min(todo.size(), start + kRetrChunk);
            std::vector<Pop3Listing> listing;
            for (std::size_t i = start; i < end; ++i) {
                Message& m = *todo[i];
                m.rewriter = std::make_unique<MessageRewriter>(sink, "");
                if (a.recipientSource == RecipientSource::Envelope)
                    m.rewriter->collectEnvelope(a.envelopeHeader);
                m.out = std::make_unique<std::ostream>(m.rewriter.get());
                listing.push_back({m.uid.number, m.listed, m.uid.uid});
            }
            std::size_t cursor = start;
            auto done = [&](const Pop3BatchReply& r) {
                Message& m = *todo[cursor++];
                if (!r.ok) {
                    problem(m, r.malformed ? Failure::RetrMalformed : Failure::RetrRefused,
                            "RETR " + std::to_string(r.number) +
                                (r.malformed ? ": " : ": server said: ") + r.problem);
                    return;
                }
                m.out->flush();
                m.facts = m.rewriter->finish();
                m.envelopeFrom = envelopeSender(m.facts);
            };
            try {
                pop.retrieveMany(
                    listing, [&](int) -> std::ostream& { return *todo[cursor]->out; }, done);
            } catch (const Pop3OutOfStepError& e) {
                for (std::size_t i = start; i < todo.size(); ++i)
                    if (todo[i]->uid.number == e.suspect())
                        problem(*todo[i], Failure::RetrOutOfStep, e.what());
                    else if (i >= cursor && todo[i]->fate.empty())
                        todo[i]->fate = "not reached (the session ends after a message that "
                                        "broke the framing)";
                return false;
            }
        }
        return true;
    }

    void problem(Message& m, Failure f, const std::string& words)
    {
        const Decision d = decide(f);
        const int attempts = (m.row ? m.row->attempts : 0) + 1;
        const bool fail = d.message == MessageOutcome::MarkFailed ||
                          failedAfterAttempts(attempts, settings_.maxAttempts);
        m.fate = std::string(fail ? "fail" : "defer") + " (" + term(flatten(words)) +
                 "; kept on the server)";
    }

    const Config& config_;
    Store& store_;
    MessageStore ledger_;
    std::ostream& out_;
    Poco::Logger& log_;
    FetchSettings settings_;
    FilterOptions filterOptions_;
};

} // namespace

int runDryRun(const Config& config, const std::string& onlyAccount, std::ostream& out,
              Poco::Logger& log)
{
    Store store(config);
    store.requireCurrentSchema();
    std::vector<Account> accounts;
    if (!onlyAccount.empty()) {
        auto a = store.account(onlyAccount);
        if (!a)
            throw InputError("account '" + term(onlyAccount) + "': no such account");
        accounts.push_back(std::move(*a));
    } else {
        for (auto& a : store.accounts())
            if (a.active)
                accounts.push_back(std::move(a));
    }
    out << "popgated --dry-run: nothing is delivered, deleted or recorded\n";
    if (!readReceiving(store).on)
        out << "note: receiving is off: the daemon polls nothing now (popgatectl receiving on)\n";
    DryRun dry(config, store, out, log);
    int rc = 0;
    for (const auto& a : accounts)
        if (!dry.account(a))
            rc = 1;
    if (accounts.empty())
        out << "no active account\n";
    return rc;
}

} // namespace popgate
