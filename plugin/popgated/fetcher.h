// fetcher.h - one poll of one account: POP3 in, SMTP to the local MTA out,
// as named stages (poll.h): open, plan, then per batch retrieve, screen,
// record, deliver, and at the end expunge. Every message ends the poll in
// exactly one state: delivered, ignored, deferred, failed or not reached; a
// problem of one message never keeps the others from being delivered. No
// DELE is ever sent for a message whose ledger row does not say injected or
// ignored. What each failure means comes from core/policy.h.
#pragma once

#include "core/account.h"
#include "core/filter.h"
#include "core/lease.h"
#include "core/message_store.h"
#include "core/policy.h"
#include "plugin/net/reinject.h"

#include <Poco/Logger.h>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace popgate
{

class ProtocolTrace;

struct FetchSettings {
    SmtpTarget mta;
    std::string spoolDir;  ///< spool files; quarantine/ below it
    std::string hostname;  ///< for our Received: line
    std::string headerKey; ///< HMAC key for X-Popgate-Id (raw bytes)
    int maxHops = 3;
    /// reinject.xclient_hop: the provider's Received: field that names the origin
    /// (1 = topmost, popgate's own not counted); used with mta.xclient.
    int xclientHop = 1;
    std::int64_t duplicateWindow = 30 * 86400;
    bool allowDuplicates = false;
    std::chrono::milliseconds connectTimeout{30000};
    std::chrono::milliseconds readTimeout{60000};
    std::chrono::seconds timeBudget{600};
    std::string tlsMinVersion = "1.2";
    /// A message whose own problem (its RETR refused) was retried this many
    /// times is failed (message_max_attempts; 0: retried for ever).
    int maxAttempts = 5;
    /// A failed message is tried again after this many poll intervals
    /// (failed_retry_polls; 0: only by `popgatectl message retry`).
    int failedRetryPolls = 0;
    /// This process's lease instance (core/lease.h): with a lease, every
    /// ledger write and the DELEs are fenced by it.
    std::string instance;
    /// QUIT (which applies the DELEs) is sent only while the lease is known
    /// good for this much longer; else the session is dropped.
    std::int64_t leaseMarginMs = 1000;
};

struct PollReport {
    int listed = 0;
    int delivered = 0;
    int ignored = 0;
    int deferred = 0;
    int failed = 0;
    int deleted = 0;
    std::int64_t deliveredBytes = 0;        ///< ledger sizes of the delivered messages
    bool ok = true;                         ///< no failure of the account's (policy)
    bool leaseLost = false;                 ///< fenced: another host holds the account now
    Failure failure = Failure::Pop3Network; ///< when !ok
    std::string error;                      ///< when !ok: command and the peer's words
};

/// The compiled system address filter for an account (nullptr: allow all).
using FilterFor = std::function<std::shared_ptr<const CompiledFilter>(const Account&)>;

class Fetcher
{
public:
    /// Fetcher - store is used from the calling thread only.
    Fetcher(Store& store, FetchSettings settings, FilterFor filterFor, Poco::Logger& log);

    /// poll - one session with the account's server; secret is the unsealed
    /// password (or token); trace, if given, sees the redacted exchange; lease,
    /// if given (PostgreSQL), fences every ledger write and the DELEs.
    /// Never throws for server, MTA or database trouble: see the report.
    PollReport poll(const Account& account, const std::string& secret, ProtocolTrace* trace,
                    const std::atomic<bool>& stopping, std::shared_ptr<LeaseToken> lease = nullptr);

private:
    Store& store_;
    MessageStore ledger_;
    FetchSettings settings_;
    FilterFor filterFor_;
    Poco::Logger& log_;
};

/// classifyPop3 - the policy's name for a POP3 client failure.
Failure classifyPop3(const class Pop3Error& error);

} // namespace popgate
