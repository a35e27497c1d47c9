// fetcher.cpp - one poll of one account (see fetcher.h). The ledger row is
// written before the MTA sees a message and after it answered; DELE is sent
// only for rows that say injected or ignored, and only at the end, so that a
// crash anywhere leaves every message either on the server or recorded.
#include "plugin/popgated/fetcher.h"

#include "core/address.h"
#include "core/errors.h"
#include "core/message.h"
#include "core/milter_seen.h"
#include "core/store.h"
#include "core/text.h"
#include "plugin/popgated/oauth_sasl.h"
#include "plugin/popgated/pop3_client.h"

#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/Process.h>
#include <Poco/String.h>
#include <atomic>
#include <fstream>
#include <set>
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
    std::string inFlight; // spool file to remove if we leave early

    auto fail = [&](Failure f, const std::string& error) {
        report.ok = false;
        report.failure = f;
        report.error = error;
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
        const std::int64_t now0 = nowSeconds();
        bool endSession = false;
        bool quit = true;

        for (const auto& u : uids) {
            if (endSession)
                break;
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
            if (stopping.load() ||
                std::chrono::steady_clock::now() - started > settings_.timeBudget) {
                log_.notice(who +
                            (stopping.load() ? " stopping: " : " session time budget spent: ") +
                            "the rest waits for the next poll");
                break;
            }

            MessageRecord rec = row != rows.end() ? row->second : MessageRecord();
            rec.accountId = account.id;
            rec.uidl = u.uid;
            const std::int64_t size = sizes.count(u.number) ? sizes[u.number] : -1;
            rec.size = size;
            auto logLine = [&](const std::string& status, const std::string& tail) {
                log_.information(who + " uidl=" + flatten(u.uid) + " message-id=" +
                                 (rec.messageId.empty() ? "-" : flatten(rec.messageId)) + " from=" +
                                 angle(rec.envelopeFrom) + " size=" + std::to_string(rec.size) +
                                 " status=" + status + (tail.empty() ? "" : " " + tail));
            };
            auto logEntry = [&](const std::string& status, const std::string& queueId,
                                const std::string& detail) {
                LogEntry e;
                e.account = account.name;
                e.uidl = u.uid;
                e.messageId = rec.messageId;
                e.sender = rec.envelopeFrom;
                e.size = rec.size;
                e.status = status;
                e.relay = mta.relay();
                e.queueId = queueId;
                e.detail = detail;
                ledger_.log(e);
            };

            // Size limits: the account's own and the MTA's announced SIZE.
            std::string tooLarge;
            if (account.maxMessageSize > 0 && size > account.maxMessageSize)
                tooLarge = "message too large: " + std::to_string(size) +
                           " octets, account limit " + std::to_string(account.maxMessageSize);
            else if (mta.sizeLimit() > 0 && size > mta.sizeLimit())
                tooLarge = "message too large: " + std::to_string(size) + " octets, MTA SIZE " +
                           std::to_string(mta.sizeLimit());
            if (!tooLarge.empty()) {
                rec.state = MessageState::Failed;
                rec.reason = tooLarge;
                ledger_.save(rec);
                logLine("failed", "(" + tooLarge + "; kept on the server)");
                logEntry("failed", "", tooLarge);
                ++report.failed;
                continue;
            }

            // RETR into the spool, through the rewriter.
            Poco::File(spoolTmp).createDirectories();
            const std::string spool = spoolTmp + "/" + account.name + "." +
                                      std::to_string(Poco::Process::id()) + "." +
                                      std::to_string(++spoolCounter);
            inFlight = spool;
            MessageFacts facts;
            {
                std::ofstream file(spool, std::ios::binary | std::ios::trunc);
                if (!file)
                    throw OperationError("spool " + spool + ": cannot create it");
                const std::string first = recipients.empty() ? account.mailbox : recipients.front();
                MessageRewriter rewriter(
                    file, receivedHeader(account.server, settings_.hostname, account.name, u.uid,
                                         first, nowSeconds()) +
                              "X-Popgate-Id: " +
                              popgateIdHeader(settings_.headerKey, account.name, u.uid) + "\r\n");
                std::ostream out(&rewriter);
                pop.retrieve(u.number, out, size);
                out.flush();
                facts = rewriter.finish();
                file.flush();
                if (!file)
                    throw OperationError("spool " + spool + ": write failed (disk full?)");
            }
            rec.messageId = facts.messageId;
            rec.headerFrom = facts.from;
            rec.envelopeFrom = envelopeSender(facts);
            rec.size = facts.outputOctets;

            // Loop, duplicate and address-filter checks.
            Rejected rejected;
            const std::string mailboxKey = Poco::toLower(account.mailbox);
            if (facts.popgateHops > settings_.maxHops) {
                rejected = {true, "mail loop: passed popgate " + std::to_string(facts.popgateHops) +
                                      " times (max_hops " + std::to_string(settings_.maxHops) +
                                      ")"};
            } else if (facts.popgateHops > 0 && !mailboxKey.empty() &&
                       Poco::toLower(rec.envelopeFrom) == mailboxKey) {
                rejected = {true, "mail loop: sent by the account's own mailbox " +
                                      angle(account.mailbox) + " and already through popgate"};
            } else if (!settings_.allowDuplicates) {
                if (auto other = ledger_.duplicateOf(account.id, facts.messageId, u.uid,
                                                     nowSeconds() - settings_.duplicateWindow))
                    rejected = {true, "duplicate message-id (as uidl " + flatten(*other) + ")"};
            }
            if (!rejected.ignored && filter) {
                try {
                    const Verdict v = filter->checkInbound(
                        rec.envelopeFrom.empty() ? "<>" : rec.envelopeFrom, facts.from);
                    if (v.blocked)
                        rejected = {true, v.reason};
                } catch (const InputError& e) {
                    rejected = {true, std::string("unreadable sender address: ") + e.what()};
                }
            }
            if (rejected.ignored) {
                Poco::File(quarantine).createDirectories();
                const std::string kept =
                    quarantine + "/" + Poco::Path(spool).getFileName() + ".eml";
                Poco::File(spool).renameTo(kept);
                inFlight.clear();
                rec.state = MessageState::Ignored;
                rec.reason = rejected.reason;
                rec.quarantinePath = kept;
                ledger_.save(rec);
                logLine("ignored", "(" + rejected.reason + ")");
                logEntry("ignored", "", rejected.reason);
                ++report.ignored;
                scheduleDelete(u);
                continue;
            }

            // Hand it over: the ledger says "injecting" before the MTA sees it.
            rec.state = MessageState::Injecting;
            ++rec.attempts;
            ledger_.save(rec);
            std::ifstream in(spool, std::ios::binary);
            const SmtpResult sent = mta.deliver(rec.envelopeFrom, recipients, in, rec.size);
            in.close();
            if (sent.kind == SmtpResult::Kind::Accepted) {
                rec.state = MessageState::Injected;
                rec.queueId = sent.queueId;
                rec.reason.clear();
                try {
                    // The ledger row and its message-log row: one commit.
                    Transaction tx(store_.session());
                    ledger_.save(rec);
                    logEntry("delivered", sent.queueId, sent.reply);
                    tx.commit();
                } catch (const Poco::Exception& e) {
                    throw OperationError(
                        "database " + store_.describe() +
                        ": cannot record the delivery: " + flatten(e.displayText()));
                }
                Poco::File(spool).remove();
                inFlight.clear();
                logLine("delivered", "relay=" + mta.relay() + " queue-id=" +
                                         (sent.queueId.empty() ? "-" : sent.queueId) + " (" +
                                         sent.reply + ")");
                ++report.delivered;
                scheduleDelete(u);
                continue;
            }
            const Failure f = sent.kind == SmtpResult::Kind::Temporary   ? Failure::MtaTemporary
                              : sent.kind == SmtpResult::Kind::Permanent ? Failure::MtaPermanent
                              : sent.kind == SmtpResult::Kind::Uncertain ? Failure::MtaUncertain
                                                                         : Failure::MtaUnreachable;
            const Decision d = decide(f);
            const std::string words = sent.describe(mta.relay());
            switch (d.message) {
            case MessageOutcome::RetryLater:
                rec.state = MessageState::Deferred;
                rec.retryAt = nowSeconds() + messageRetryDelay(rec.attempts);
                ++report.deferred;
                break;
            case MessageOutcome::MarkFailed:
                rec.state = MessageState::Failed;
                ++report.failed;
                break;
            case MessageOutcome::Uncertain:
            case MessageOutcome::None:
                break; // stays "injecting": resent with the same X-Popgate-Id
            }
            rec.reason = words;
            ledger_.save(rec);
            // This copy did not get in: the milter must not count it as delivered.
            if (rec.state != MessageState::Injecting)
                MilterSeen(store_).forget(account.id, u.uid);
            Poco::File(spool).remove();
            inFlight.clear();
            logLine(messageStateName(rec.state) == "injecting" ? "uncertain"
                                                               : messageStateName(rec.state),
                    "relay=" + mta.relay() + " (" + words + ")");
            logEntry(rec.state == MessageState::Injecting ? "uncertain"
                                                          : messageStateName(rec.state),
                     "", words);
            if (d.endSession) {
                endSession = true;
                quit = d.quit;
                fail(f, words);
            }
        }

        mta.close();
        if (!quit)
            return report; // the client's destructor drops the session: no DELE applies
        if (!toDelete.empty()) {
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
    if (!inFlight.empty()) {
        try {
            Poco::File(inFlight).remove();
        } catch (...) {
        }
    }
    return report;
}

} // namespace popgate
