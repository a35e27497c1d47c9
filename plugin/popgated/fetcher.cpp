// fetcher.cpp - one poll of one account (see fetcher.h). Messages move in
// batches: RETR pipelined into spools, the checks, ONE commit recording every
// decision ("injecting" rows before the MTA sees anything), SMTP pipelined, ONE
// commit recording every outcome. DELE is sent only for rows that say
// injected or ignored, and only at the end, so that a crash anywhere leaves
// every message either on the server or recorded.
#include "plugin/popgated/fetcher.h"

#include "core/address.h"
#include "core/errors.h"
#include "core/message.h"
#include "core/milter_seen.h"
#include "core/store.h"
#include "core/text.h"
#include "plugin/net/oauth_sasl.h"
#include "plugin/net/pop3_client.h"
#include "plugin/popgated/spool.h"

#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/Process.h>
#include <Poco/String.h>
#include <algorithm>
#include <atomic>
#include <exception>
#include <set>
#include <tuple>
#include <unistd.h>

namespace popgate
{

namespace
{

std::atomic<unsigned> spoolCounter{0};

// Rejected - a decision to keep a message out of the MTA, with the reason.
struct Rejected {
    bool ignored = false;
    std::string reason;
};

std::string angle(const std::string& address)
{
    return "<" + address + ">";
}

// envelopeSender - Return-Path, else the first From mailbox, else <>.
std::string envelopeSender(const MessageFacts& facts)
{
    if (facts.nullReturnPath)
        return {};
    try {
        if (!facts.returnPath.empty())
            return parseAddress(facts.returnPath).spec();
    } catch (const InputError&) {
    }
    try {
        const auto from = parseAddressList(facts.from);
        if (!from.empty())
            return from.front().spec();
    } catch (const InputError&) {
    }
    return {};
}

} // namespace

Failure classifyPop3(const Pop3Error& e)
{
    switch (e.kind()) {
    case Pop3ErrorKind::Network:
        return Failure::Pop3Network;
    case Pop3ErrorKind::Timeout:
        return Failure::Pop3Timeout;
    case Pop3ErrorKind::Protocol:
        return Failure::Pop3Protocol;
    case Pop3ErrorKind::Tls:
        return Failure::Pop3Tls;
    case Pop3ErrorKind::Auth:
        return Failure::Pop3Auth;
    case Pop3ErrorKind::ServerError:
        break;
    }
    const std::string& code = e.responseCode();
    if (code == "AUTH")
        return Failure::Pop3Auth;
    if (code == "IN-USE" || code == "LOGIN-DELAY" || code == "SYS/TEMP")
        return Failure::Pop3Busy;
    if (code == "SYS/PERM")
        return Failure::Pop3Permanent;
    return Failure::Pop3Refused;
}

Fetcher::Fetcher(Store& store, FetchSettings settings, FilterFor filterFor, Poco::Logger& log)
    : store_(store), ledger_(store), settings_(std::move(settings)),
      filterFor_(std::move(filterFor)), log_(log)
{
}

namespace
{

constexpr std::size_t kBatchMessages = 128;          ///< messages per commit pair
constexpr std::int64_t kBatchOctets = 1024 * 1024; ///< announced octets per batch
constexpr std::size_t kOutcomeGroup = 16;           ///< MTA replies per commit, at most
constexpr std::chrono::milliseconds kOutcomeDelay{10}; ///< and the oldest waits no longer

// Item - one message of a batch, from RETR to the MTA's reply. The streams
// are stacked: out -> rewriter -> spoolStream -> spool (destroyed in reverse).
struct Item {
    Pop3Uid uid;
    std::int64_t listed = -1; ///< LIST octets, -1 unknown
    MessageRecord rec;
    MessageRecord original; ///< the row before this poll touched it
    bool hadRow = false;
    std::unique_ptr<Spool> spool;
    std::unique_ptr<std::ostream> spoolStream;
    std::unique_ptr<MessageRewriter> rewriter;
    std::unique_ptr<std::ostream> out;
    bool retrieved = false;
    Rejected rejected;
};

} // namespace

PollReport Fetcher::poll(const Account& account, const std::string& secret, ProtocolTrace* trace,
                         const std::atomic<bool>& stopping)
{
    PollReport report;
    const auto started = std::chrono::steady_clock::now();
    const std::string who = "account=" + account.name;
    SmtpReinjector mta(settings_.mta);
    const std::vector<std::string> recipients = account.recipients();
    const std::string spoolTmp = settings_.spoolDir + "/tmp";
    const std::string quarantine = settings_.spoolDir + "/quarantine/" + account.name;
    const std::string mailboxKey = Poco::toLower(account.mailbox);
    std::vector<MessageRecord*> pendingRows; // staged for record()
    std::vector<LogEntry> pendingLog;

    auto fail = [&](Failure f, const std::string& error) {
        report.ok = false;
        report.failure = f;
        report.error = error;
    };
    auto logLine = [&](const Item& it, const std::string& status, const std::string& tail) {
        log_.information(who + " uidl=" + flatten(it.uid.uid) + " message-id=" +
                         (it.rec.messageId.empty() ? "-" : flatten(it.rec.messageId)) +
                         " from=" + angle(it.rec.envelopeFrom) +
                         " size=" + std::to_string(it.rec.size) + " status=" + status +
                         (tail.empty() ? "" : " " + tail));
    };
    auto logEntry = [&](const Item& it, const std::string& status, const std::string& queueId,
                        const std::string& detail) {
        LogEntry e;
        e.account = account.name;
        e.uidl = it.uid.uid;
        e.messageId = it.rec.messageId;
        e.sender = it.rec.envelopeFrom;
        e.size = it.rec.size;
        e.status = status;
        e.relay = mta.relay();
        e.queueId = queueId;
        e.detail = detail;
        pendingLog.push_back(std::move(e));
    };
    auto saveRow = [&](MessageRecord& r) { pendingRows.push_back(&r); };
    // record - run fn, then write the rows and log entries it staged: one
    // transaction, a few multi-row statements. A database failure ends the poll.
    auto record = [&](const std::string& what, const std::function<void()>& fn) {
        pendingRows.clear();
        pendingLog.clear();
        try {
            Transaction tx(store_.session());
            fn();
            ledger_.saveMany(pendingRows);
            ledger_.logMany(pendingLog);
            tx.commit();
        } catch (const OperationError&) {
            throw;
        } catch (const Poco::Exception& e) {
            throw OperationError("database " + store_.describe() + ": cannot record " + what +
                                 ": " + flatten(e.displayText()));
        }
    };

    try {
        // The filter first: an account whose filter cannot be had is not fetched.
        const auto filter = filterFor_ ? filterFor_(account) : nullptr;
        Pop3Settings ps;
        ps.host = account.server;
        ps.port = account.effectivePort();
        ps.security = account.security;
        ps.tls.caFile = account.tlsCaFile;
        ps.tls.pinSha256 = account.tlsPin;
        ps.tls.minVersion = account.tlsMinVersion;
        ps.connectTimeout = settings_.connectTimeout;
        ps.readTimeout = settings_.readTimeout;
        ps.allowPlaintextAuth = account.plaintextAuth;
        ps.trace = trace;
        Pop3Client pop(ps);
        pop.open();
        if (account.auth == AuthKind::Password)
            pop.authenticate(account.user, secret, parsePop3Mechanism(account.authMechanism));
        else if (account.auth != AuthKind::None)
            authenticateOAuth(pop, account, secret); // secret: the access token

        const auto uids = pop.uidl();
        std::map<int, std::int64_t> sizes;
        for (const auto& l : pop.list())
            sizes[l.number] = l.octets;
        auto rows = ledger_.forAccount(account.id);
        report.listed = static_cast<int>(uids.size());
        // Rows whose message the server no longer lists were deleted (by our
        // QUIT, when a crash kept us from recording it, or by someone else).
        {
            std::set<std::string> listed;
            for (const auto& u : uids)
                listed.insert(u.uid);
            std::vector<std::string> gone;
            for (const auto& [uid, r] : rows)
                if (!r.deleted && !listed.count(uid))
                    gone.push_back(uid);
            ledger_.markDeleted(account.id, gone);
        }

        std::vector<int> toDelete;
        std::vector<std::string> toDeleteUids;
        auto scheduleDelete = [&](const Pop3Uid& u) {
            if (!account.keepOnServer) {
                toDelete.push_back(u.number);
                toDeleteUids.push_back(u.uid);
            }
        };

        // What this poll has to move (a few words each: the messages' state
        // lives in a batch at a time); what is done already is only deleted.
        struct Candidate {
            const Pop3Uid* uid;
            std::int64_t listed;
            const MessageRecord* row; ///< nullptr: no ledger row yet
        };
        const std::int64_t now0 = nowSeconds();
        std::vector<Candidate> todo;
        for (const auto& u : uids) {
            auto row = rows.find(u.uid);
            if (row != rows.end()) {
                const MessageRecord& r = row->second;
                if (r.state == MessageState::Injected || r.state == MessageState::Ignored) {
                    if (r.deleted)
                        log_.notice(
                            who + " uidl=" + flatten(u.uid) +
                            " server lists a message that was deleted already: deleting again");
                    scheduleDelete(u);
                    continue;
                }
                if (r.state == MessageState::Failed)
                    continue;
                if (r.state == MessageState::Deferred && r.retryAt > now0)
                    continue;
            }
            auto size = sizes.find(u.number);
            todo.push_back({&u, size != sizes.end() ? size->second : -1,
                            row != rows.end() ? &row->second : nullptr});
        }

        bool endSession = false;
        bool quit = true;
        if (!todo.empty()) {
            // The MTA first: its SIZE limit is known before anything is fetched.
            const SmtpResult c = mta.connect();
            if (c.kind != SmtpResult::Kind::Accepted) {
                const Decision d = decide(Failure::MtaUnreachable);
                const std::string words = c.describe(mta.relay());
                log_.warning(who + " relay=" + mta.relay() + " MTA unavailable, nothing fetched (" +
                             words + ")");
                endSession = true;
                quit = d.quit;
                fail(Failure::MtaUnreachable, words);
                todo.clear();
            }
        }

        std::size_t next = 0;
        while (next < todo.size() && !endSession) {
            if (stopping.load() ||
                std::chrono::steady_clock::now() - started > settings_.timeBudget) {
                log_.notice(who +
                            (stopping.load() ? " stopping: " : " session time budget spent: ") +
                            "the rest waits for the next poll");
                break;
            }
            // The batch: up to kBatchMessages, kBatchOctets announced (at least
            // one). Too large for the account or the MTA: recorded as failed.
            std::vector<Item> items;
            items.reserve(kBatchMessages);
            std::int64_t octets = 0;
            while (next < todo.size() && items.size() < kBatchMessages &&
                   (items.empty() ||
                    octets + std::max<std::int64_t>(todo[next].listed, 0) <= kBatchOctets)) {
                const Candidate& c = todo[next++];
                Item it;
                it.uid = *c.uid;
                it.listed = c.listed;
                it.hadRow = c.row != nullptr;
                if (c.row)
                    it.original = *c.row;
                it.rec = it.original;
                it.rec.accountId = account.id;
                it.rec.uidl = it.uid.uid;
                it.rec.size = it.listed;
                std::string tooLarge;
                if (account.maxMessageSize > 0 && it.listed > account.maxMessageSize)
                    tooLarge = "message too large: " + std::to_string(it.listed) +
                               " octets, account limit " + std::to_string(account.maxMessageSize);
                else if (mta.sizeLimit() > 0 && it.listed > mta.sizeLimit())
                    tooLarge = "message too large: " + std::to_string(it.listed) +
                               " octets, MTA SIZE " + std::to_string(mta.sizeLimit());
                if (!tooLarge.empty()) {
                    it.rec.state = MessageState::Failed;
                    it.rec.reason = tooLarge;
                    record("a refusal", [&] {
                        saveRow(it.rec);
                        logEntry(it, "failed", "", tooLarge);
                    });
                    logLine(it, "failed", "(" + tooLarge + "; kept on the server)");
                    ++report.failed;
                    continue;
                }
                octets += std::max<std::int64_t>(it.listed, 0);
                items.push_back(std::move(it));
            }
            if (items.empty())
                continue;
            std::vector<Item*> batch;
            for (auto& it : items)
                batch.push_back(&it);

            // RETR, pipelined, each message through the rewriter into its spool.
            Poco::File(spoolTmp).createDirectories();
            std::vector<Pop3Listing> listing;
            const std::string first = recipients.empty() ? account.mailbox : recipients.front();
            for (Item* it : batch) {
                it->spool = std::make_unique<Spool>(
                    spoolTmp + "/" + account.name + "." + std::to_string(Poco::Process::id()) +
                        "." + std::to_string(++spoolCounter),
                    it->listed);
                it->spoolStream = std::make_unique<std::ostream>(it->spool.get());
                it->rewriter = std::make_unique<MessageRewriter>(
                    *it->spoolStream,
                    receivedHeader(account.server, settings_.hostname, account.name, it->uid.uid,
                                   first, nowSeconds()) +
                        "X-Popgate-Id: " +
                        popgateIdHeader(settings_.headerKey, account.name, it->uid.uid) + "\r\n");
                it->out = std::make_unique<std::ostream>(it->rewriter.get());
                listing.push_back({it->uid.number, it->listed});
            }
            std::size_t cursor = 0;
            // A RETR refused, lied about or cut off: what came before it is
            // still handed over (DELE waits for the next poll), then the
            // session ends with that error.
            std::exception_ptr refused;
            try {
            pop.retrieveMany(
                listing, [&](int) -> std::ostream& { return *batch[cursor]->out; },
                [&](const Pop3BatchReply& r) {
                    Item& it = *batch[cursor++];
                    if (!r.ok) {
                        if (!refused) {
                            const std::string command = "RETR " + std::to_string(r.number);
                            refused = r.problem.rfind("size mismatch", 0) == 0
                                          ? std::make_exception_ptr(Pop3ProtocolError(
                                                Pop3Stage::Retr, command, r.problem))
                                          : std::make_exception_ptr(
                                                Pop3ServerError(Pop3Stage::Retr, command, r.problem));
                        }
                        return;
                    }
                    it.out->flush();
                    const MessageFacts& facts = it.rewriter->finish();
                    it.spool->finishWriting();
                    it.rec.messageId = facts.messageId;
                    it.rec.headerFrom = facts.from;
                    it.rec.envelopeFrom = envelopeSender(facts);
                    it.rec.size = facts.outputOctets;
                    it.retrieved = true;
                });
            } catch (const Pop3Error&) {
                refused = std::current_exception();
            }
            // What came before a refused RETR is handled; the session ends after it.
            std::size_t good = 0;
            while (good < batch.size() && batch[good]->retrieved)
                ++good;
            batch.resize(good);

            // Loop, duplicate and address-filter checks.
            std::map<std::string, std::vector<std::string>> known; // Message-ID -> UIDLs
            if (!settings_.allowDuplicates) {
                std::vector<std::string> ids;
                for (Item* it : batch)
                    if (!it->rec.messageId.empty())
                        ids.push_back(it->rec.messageId);
                known = ledger_.duplicatesOf(account.id, ids,
                                             nowSeconds() - settings_.duplicateWindow);
            }
            std::map<std::string, std::string> batchIds; // Message-ID -> UIDL in this batch
            for (Item* it : batch) {
                const MessageFacts& facts = it->rewriter->facts();
                Rejected& rejected = it->rejected;
                if (facts.popgateHops > settings_.maxHops) {
                    rejected = {true, "mail loop: passed popgate " +
                                          std::to_string(facts.popgateHops) + " times (max_hops " +
                                          std::to_string(settings_.maxHops) + ")"};
                } else if (facts.popgateHops > 0 && !mailboxKey.empty() &&
                           Poco::toLower(it->rec.envelopeFrom) == mailboxKey) {
                    rejected = {true, "mail loop: sent by the account's own mailbox " +
                                          angle(account.mailbox) + " and already through popgate"};
                } else if (!settings_.allowDuplicates && !facts.messageId.empty()) {
                    auto other = batchIds.find(facts.messageId);
                    if (other != batchIds.end())
                        rejected = {true,
                                    "duplicate message-id (as uidl " + flatten(other->second) + ")"};
                    else if (known.count(facts.messageId)) {
                        for (const auto& uidl : known[facts.messageId])
                            if (uidl != it->uid.uid) {
                                rejected = {true,
                                            "duplicate message-id (as uidl " + flatten(uidl) + ")"};
                                break;
                            }
                    }
                }
                if (!facts.messageId.empty())
                    batchIds.emplace(facts.messageId, it->uid.uid);
                if (!rejected.ignored && filter) {
                    try {
                        const Verdict v = filter->checkInbound(
                            it->rec.envelopeFrom.empty() ? "<>" : it->rec.envelopeFrom, facts.from);
                        if (v.blocked)
                            rejected = {true, v.reason};
                    } catch (const InputError& e) {
                        rejected = {true, std::string("unreadable sender address: ") + e.what()};
                    }
                }
            }

            // One commit: ignored messages quarantined (fsync'd) and recorded,
            // the rest "injecting" before the MTA sees any of them.
            std::vector<Item*> sending;
            record("the batch", [&] {
                for (Item* it : batch) {
                    if (it->rejected.ignored) {
                        Poco::File(quarantine).createDirectories();
                        const std::string kept = quarantine + "/" + account.name + "." +
                                                 std::to_string(Poco::Process::id()) + "." +
                                                 std::to_string(++spoolCounter) + ".eml";
                        it->spool->keep(kept);
                        it->rec.state = MessageState::Ignored;
                        it->rec.reason = it->rejected.reason;
                        it->rec.quarantinePath = kept;
                        saveRow(it->rec);
                        logEntry(*it, "ignored", "", it->rejected.reason);
                    } else {
                        it->rec.state = MessageState::Injecting;
                        ++it->rec.attempts;
                        saveRow(it->rec);
                        sending.push_back(it);
                    }
                }
            });
            for (Item* it : batch) {
                if (!it->rejected.ignored)
                    continue;
                logLine(*it, "ignored", "(" + it->rejected.reason + ")");
                ++report.ignored;
                scheduleDelete(it->uid);
            }

            // SMTP, pipelined. Outcomes are committed, with their message-log
            // rows, as the MTA answers: whenever kOutcomeGroup are pending or
            // the oldest has waited kOutcomeDelay, so that a crash of popgated
            // resends (duplicates, with the same X-Popgate-Id) only what the
            // MTA accepted in the last few milliseconds. Those commits are not
            // flushed one by one; the batch's last one is, before anything
            // depends on them (DELE).
            std::vector<SmtpMessage> messages;
            for (Item* it : sending) {
                SmtpMessage m;
                m.sender = it->rec.envelopeFrom;
                m.recipients = recipients;
                m.size = it->rec.size;
                Spool* spool = it->spool.get();
                m.body = [spool](char* buffer, std::size_t capacity) {
                    return spool->read(buffer, capacity);
                };
                messages.push_back(std::move(m));
            }
            struct Outcome {
                Item* it;
                std::string status; ///< delivered, deferred, failed, uncertain
                std::string queueId;
                std::string detail; ///< the MTA's reply, or what went wrong
            };
            std::vector<Outcome> outcomes;
            auto oldest = std::chrono::steady_clock::now();
            bool relaxed = false;
            auto flushOutcomes = [&](bool last) {
                if (last == relaxed) { // the batch's last commit is synced, the others not
                    store_.setCommitSync(last);
                    relaxed = !last;
                }
                record("the deliveries", [&] {
                    for (auto& o : outcomes) {
                        saveRow(o.it->rec);
                        // A copy that did not get in: the milter must not count it as delivered.
                        if (o.it->rec.state == MessageState::Deferred ||
                            o.it->rec.state == MessageState::Failed)
                            MilterSeen(store_).forget(account.id, o.it->uid.uid);
                        logEntry(*o.it, o.status, o.queueId, o.detail);
                    }
                });
                for (auto& o : outcomes) {
                    if (o.status == "delivered") {
                        logLine(*o.it, "delivered",
                                "relay=" + mta.relay() +
                                    " queue-id=" + (o.queueId.empty() ? "-" : o.queueId) + " (" +
                                    o.detail + ")");
                        ++report.delivered;
                        scheduleDelete(o.it->uid);
                        continue;
                    }
                    logLine(*o.it, o.status, "relay=" + mta.relay() + " (" + o.detail + ")");
                    if (o.status == "deferred")
                        ++report.deferred;
                    else if (o.status == "failed")
                        ++report.failed;
                }
                outcomes.clear();
            };
            auto outcome = [&](std::size_t k, const SmtpResult& r) {
                Item& it = *sending[k];
                if (outcomes.empty())
                    oldest = std::chrono::steady_clock::now();
                if (r.kind == SmtpResult::Kind::Accepted) {
                    it.rec.state = MessageState::Injected;
                    it.rec.queueId = r.queueId;
                    it.rec.reason.clear();
                    outcomes.push_back({&it, "delivered", r.queueId, r.reply});
                } else {
                    const Failure f = r.kind == SmtpResult::Kind::Temporary ? Failure::MtaTemporary
                                      : r.kind == SmtpResult::Kind::Permanent
                                          ? Failure::MtaPermanent
                                      : r.kind == SmtpResult::Kind::Uncertain
                                          ? Failure::MtaUncertain
                                          : Failure::MtaUnreachable;
                    const Decision d = decide(f);
                    const std::string words = r.describe(mta.relay());
                    switch (d.message) {
                    case MessageOutcome::RetryLater:
                        it.rec.state = MessageState::Deferred;
                        it.rec.retryAt = nowSeconds() + messageRetryDelay(it.rec.attempts);
                        break;
                    case MessageOutcome::MarkFailed:
                        it.rec.state = MessageState::Failed;
                        break;
                    case MessageOutcome::Uncertain:
                    case MessageOutcome::None:
                        break; // stays "injecting": resent with the same X-Popgate-Id
                    }
                    it.rec.reason = words;
                    outcomes.push_back({&it,
                                        it.rec.state == MessageState::Injecting
                                            ? "uncertain"
                                            : messageStateName(it.rec.state),
                                        "", words});
                    if (d.endSession && !endSession) {
                        endSession = true;
                        quit = d.quit;
                        fail(f, words);
                    }
                }
                // The last result of the batch: all of it, or the one that ended the session.
                const bool last = k + 1 == sending.size() ||
                                  r.kind == SmtpResult::Kind::Unreachable ||
                                  r.kind == SmtpResult::Kind::Uncertain;
                if (last || outcomes.size() >= kOutcomeGroup ||
                    std::chrono::steady_clock::now() - oldest >= kOutcomeDelay)
                    flushOutcomes(last);
            };
            std::size_t attempted = 0;
            try {
                if (!messages.empty())
                    attempted = mta.deliverMany(messages, outcome).size();
            } catch (...) {
                if (relaxed) {
                    try {
                        store_.setCommitSync(true);
                    } catch (...) {
                    }
                }
                throw;
            }
            if (relaxed) // only when the last result never came: cannot happen, but be sure
                store_.setCommitSync(true);
            if (attempted < sending.size()) {
                // Never handed over (the session ended first): as they were.
                record("the messages not handed over", [&] {
                    for (std::size_t k = attempted; k < sending.size(); ++k) {
                        Item& it = *sending[k];
                        if (it.hadRow) {
                            it.rec = it.original;
                        } else {
                            it.rec.state = MessageState::Deferred;
                            it.rec.retryAt = 0;
                            it.rec.attempts = 0;
                            it.rec.reason = "not handed over: the MTA session ended before it";
                        }
                        saveRow(it.rec);
                    }
                });
            }
            if (refused) // the batch's items (and spools) go with this scope either way
                std::rethrow_exception(refused);
        }

        mta.close();
        if (!quit)
            return report; // the client's destructor drops the session: no DELE applies
        if (!toDelete.empty()) {
            { // in message-number order, as the server listed them
                std::vector<std::pair<int, std::string>> order;
                for (std::size_t i = 0; i < toDelete.size(); ++i)
                    order.emplace_back(toDelete[i], toDeleteUids[i]);
                std::sort(order.begin(), order.end());
                for (std::size_t i = 0; i < order.size(); ++i)
                    std::tie(toDelete[i], toDeleteUids[i]) = order[i];
            }
            const auto replies = pop.deleteMany(toDelete);
            std::vector<std::string> done;
            for (std::size_t i = 0; i < replies.size(); ++i) {
                if (replies[i].ok)
                    done.push_back(toDeleteUids[i]);
                else
                    log_.warning(who + " uidl=" + flatten(toDeleteUids[i]) + " DELE " +
                                 std::to_string(toDelete[i]) + " refused: " + replies[i].problem +
                                 " (kept on the server; not delivered again)");
            }
            pop.quit();
            ledger_.markDeleted(account.id, done);
            report.deleted = static_cast<int>(done.size());
        } else {
            pop.quit();
        }
    } catch (const Pop3Error& e) {
        fail(classifyPop3(e), e.what());
    } catch (const OperationError& e) {
        fail(Failure::Database, e.what());
    } catch (const Poco::Exception& e) {
        fail(Failure::Pop3Network, flatten(e.displayText()));
    } catch (const std::exception& e) {
        fail(Failure::Pop3Network, e.what());
    }
    return report;
}

} // namespace popgate
