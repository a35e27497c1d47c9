// fetcher.cpp - one poll of one account (see fetcher.h and poll.h): the
// orchestration of the stages, the open stage (connect, TLS, log in) and
// what the stages share (commits, log lines, the end of a session).
// Messages move in batches; a crash anywhere leaves every message either on
// the server or recorded, and no DELE is sent for a row that does not say
// injected or ignored.
#include "plugin/popgated/fetcher.h"

#include "core/errors.h"
#include "core/store.h"
#include "core/text.h"
#include "plugin/net/oauth_client.h"
#include "plugin/net/oauth_sasl.h"
#include "plugin/popgated/poll.h"

#include <Poco/Exception.h>

namespace popgate
{

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
                         const std::atomic<bool>& stopping, std::shared_ptr<LeaseToken> lease)
{
    Poll poll(store_, ledger_, settings_, log_, account, trace, stopping, std::move(lease));
    return poll.run(secret, filterFor_);
}

Poll::Poll(Store& store, MessageStore& ledger, const FetchSettings& settings, Poco::Logger& log,
           const Account& account, ProtocolTrace* trace, const std::atomic<bool>& stopping,
           std::shared_ptr<LeaseToken> lease)
    : store_(store), ledger_(ledger), settings_(settings), log_(log), account_(account),
      trace_(trace), stopping_(stopping), lease_(std::move(lease)),
      started_(std::chrono::steady_clock::now()), who_("account=" + account.name),
      mta_(settings.mta), journal_(settings.spoolDir + "/journal/" + account.name),
      recipients_(account.recipients())
{
}

PollReport Poll::run(const std::string& secret, const FilterFor& filterFor)
{
    try {
        // The filter first: an account whose filter cannot be had is not fetched.
        filter_ = filterFor ? filterFor(account_) : nullptr;
        open(secret);
        plan();
        if (!todo_.empty()) {
            // The MTA first: its SIZE limit is known before anything is fetched.
            const SmtpResult c = mta_.connect();
            if (c.kind != SmtpResult::Kind::Accepted) {
                const std::string words = c.describe(mta_.relay());
                log_.warning(who_ + " relay=" + mta_.relay() +
                             " MTA unavailable, nothing fetched (" +
                             escapeText(words, EscapeFor::LogText) + ")");
                endSession(Failure::MtaUnreachable, words);
            }
        }
        while (!ended_ && next_ < todo_.size()) {
            if (stopping_.load() ||
                std::chrono::steady_clock::now() - started_ > settings_.timeBudget) {
                log_.notice(who_ +
                            (stopping_.load() ? " stopping: " : " session time budget spent: ") +
                            "the rest waits for the next poll");
                break;
            }
            Batch batch;
            if (!nextBatch(batch))
                continue;
            retrieve(batch);
            screen(batch);
            record(batch);
            deliver(batch);
            if (batch.endsSession)
                endSession(*batch.endsSession, batch.endWords);
        }
        mta_.close();
        if (quit_)
            expunge();
        // else: the client's destructor drops the session, so no DELE applies
    } catch (const Pop3Error& e) {
        fail(classifyPop3(e), e.what());
    } catch (const SpoolError& e) {
        fail(Failure::Spool, e.what());
    } catch (const OAuthError& e) {
        fail(e.kind() == OAuthErrorKind::Refused ? Failure::OAuthRefused
                                                 : Failure::OAuthUnavailable,
             e.what());
    } catch (const SecretError& e) {
        fail(Failure::Secret, e.what());
    } catch (const LeaseLost& e) {
        // Fenced: nothing more is recorded or deleted; the client's destructor
        // drops the session without QUIT.
        report_.leaseLost = true;
        fail(Failure::LeaseLost, e.what());
        log_.warning(who_ + " lease lost: " + escapeText(e.what(), EscapeFor::LogText) +
                     "; session dropped, nothing more recorded or deleted by this host");
    } catch (const OperationError& e) {
        fail(Failure::Database, e.what());
    } catch (const Poco::Exception& e) {
        fail(Failure::Pop3Network, flatten(e.displayText()));
    } catch (const std::exception& e) {
        fail(Failure::Pop3Network, e.what());
    }
    return report_;
}

void Poll::open(const std::string& secret)
{
    Pop3Settings ps;
    ps.host = account_.server;
    ps.port = account_.effectivePort();
    ps.security = account_.security;
    ps.tls.caFile = account_.tlsCaFile;
    ps.tls.pinSha256 = account_.tlsPin;
    ps.tls.minVersion = account_.tlsMinVersion;
    ps.connectTimeout = settings_.connectTimeout;
    ps.readTimeout = settings_.readTimeout;
    ps.allowPlaintextAuth = account_.plaintextAuth;
    ps.trace = trace_;
    pop_ = std::make_unique<Pop3Client>(ps);
    pop_->open();
    if (account_.auth == AuthKind::Password) {
        pop_->authenticate(account_.user, secret, parsePop3Mechanism(account_.authMechanism));
        // A fallback is news once per poll: what was refused, what worked.
        const auto& tries = pop_->authAttempts();
        if (tries.size() > 1) {
            std::string refused;
            for (const auto& t : tries)
                if (!t.ok)
                    refused += (refused.empty() ? "" : ", ") + pop3MechanismName(t.mechanism) +
                               " (" + escapeText(t.reply, EscapeFor::LogText) + ")";
            log_.notice(who_ + " logged in with " + pop3MechanismName(pop_->usedMechanism()) +
                        " after " + refused + " was refused");
        }
    } else if (account_.auth != AuthKind::None) {
        authenticateOAuth(*pop_, account_, secret); // secret: the access token
    }
}

void Poll::fail(Failure failure, const std::string& words)
{
    // A failure that is not the account's (one message broke the framing)
    // ends the session but leaves the poll counted as done.
    if (decide(failure).accountFailure || !report_.ok) {
        report_.ok = false;
        report_.failure = failure;
        report_.error = words;
    }
}

void Poll::endSession(Failure failure, const std::string& words)
{
    if (ended_)
        return;
    const Decision d = decide(failure);
    ended_ = true;
    quit_ = d.quit;
    fail(failure, words);
}

void Poll::commit(const std::string& what, const std::function<void()>& stage)
{
    pendingRows_.clear();
    pendingLog_.clear();
    try {
        Transaction tx(store_.session());
        // The fencing token, in the write's own transaction (core/lease.h).
        if (lease_)
            fence(store_, settings_.instance, *lease_);
        stage();
        ledger_.saveMany(pendingRows_);
        ledger_.logMany(pendingLog_);
        tx.commit();
    } catch (const OperationError&) {
        throw;
    } catch (const Poco::Exception& e) {
        throw OperationError("database " + store_.describe() + ": cannot record " + what + ": " +
                             flatten(e.displayText()));
    }
}

void Poll::stageLog(const Item& it, const std::string& status, const std::string& queueId,
                    const std::string& detail)
{
    LogEntry e;
    e.account = account_.name;
    e.uidl = it.uid.uid;
    e.messageId = it.rec.messageId;
    e.sender = it.rec.envelopeFrom;
    e.size = it.rec.size;
    e.status = status;
    e.relay = mta_.relay();
    e.queueId = queueId;
    e.detail = detail;
    pendingLog_.push_back(std::move(e));
}

void Poll::logLine(const Item& it, const std::string& status, const std::string& tail)
{
    // Values from mail or from the server are escaped (EscapeFor::LogField): no
    // space, so a Message-ID cannot add a "status=" field of its own.
    log_.information(
        who_ + " uidl=" + escapeText(it.uid.uid, EscapeFor::LogField) + " message-id=" +
        (it.rec.messageId.empty() ? "-" : escapeText(it.rec.messageId, EscapeFor::LogField)) +
        " from=<" + escapeText(it.rec.envelopeFrom, EscapeFor::LogField) + "> size=" +
        std::to_string(it.rec.size) + " status=" + status + (tail.empty() ? "" : " " + tail));
}

void Poll::markFailed(Item& it, const std::string& reason)
{
    it.rec.state = MessageState::Failed;
    it.rec.reason = reason;
    it.rec.retryAt = settings_.failedRetryPolls > 0
                         ? nowSeconds() + static_cast<std::int64_t>(settings_.failedRetryPolls) *
                                              account_.pollInterval
                         : 0;
}

void Poll::scheduleDelete(const Pop3Uid& uid)
{
    if (!account_.keepOnServer)
        toDelete_.emplace_back(uid.number, uid.uid);
}

} // namespace popgate
