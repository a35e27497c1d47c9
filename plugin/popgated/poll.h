// poll.h - one poll of one account as named stages (internal to popgated;
// Fetcher::poll is the only caller). Each stage has its own file:
//   open      connect, TLS, log in                          fetcher.cpp
//   plan      UIDL/LIST against the ledger: what to move,   poll_plan.cpp
//             what only to delete; the next batch
//   retrieve  RETR a batch, pipelined, into spools          poll_retrieve.cpp
//   screen    loop, duplicate, filter (core/screen.h)       poll_screen.cpp
//   record    one commit: quarantined rows `ignored`, the   poll_record.cpp
//             rest `injecting`; RETR problems `deferred`/`failed`
//   deliver   SMTP; each outcome committed before the next  poll_deliver.cpp
//             message's end of data is sent
//   expunge   DELE what the ledger says is done, QUIT       poll_expunge.cpp
// Every message the plan takes ends the poll in exactly one state: delivered
// (`injected`), ignored, deferred, failed, or not reached (its row as it was).
// What each failure means comes from core/policy.h.
#pragma once

#include "core/message.h"
#include "core/message_store.h"
#include "core/policy.h"
#include "core/recipients.h"
#include "core/screen.h"
#include "plugin/net/pop3_client.h"
#include "plugin/net/reinject.h"
#include "plugin/popgated/fetcher.h"
#include "plugin/popgated/journal.h"
#include "plugin/popgated/spool.h"

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace popgate
{

/// How far one message of a batch got in retrieve.
enum class Retrieval {
    Pending,   ///< not (yet) reached: its row stays as it was
    Retrieved, ///< whole, in step: in its spool, facts known
    Refused,   ///< the server answered -ERR to its RETR
    OutOfStep, ///< it broke the framing: never delivered
    Malformed, ///< it broke a limit (a line over 1 MiB) in step: never delivered
};

/// Item - one message of a batch, from RETR to the MTA's reply. The streams
/// are stacked: out -> rewriter -> spoolStream -> spool (destroyed in reverse).
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
    Retrieval retrieval = Retrieval::Pending;
    std::string problem;  ///< Refused / OutOfStep / Malformed: the server's words or what broke
    std::string sizeNote; ///< LIST and RETR disagreed (a warning, both numbers)
    ScreenVerdict verdict;
    /// A domain-mailbox (recipients envelope) message only: one row per
    /// recipient (core/message_store.h); deliver hands it to the Pending and
    /// Deferred ones, in one transaction.
    std::vector<RecipientRecord> rcpts;
};

/// A batch: up to kBatchMessages, kBatchOctets announced (at least one).
struct Batch {
    std::vector<Item> items;
    /// Set by retrieve when the session cannot go on after this batch: the
    /// failure and its words (an out-of-step stream, a dropped connection).
    std::optional<Failure> endsSession;
    std::string endWords;
};

/// ScreenInput - one retrieved message as screenMessages judges it.
struct ScreenInput {
    std::string uidl;
    const MessageFacts* facts = nullptr;
    std::string envelopeFrom;
};

/// screenMessages - the screen stage's decision for messages retrieved
/// together (core/screen.h: loop, own mailbox, duplicate, filter), in order:
/// duplicates looked up in the ledger (one query) and among the messages
/// themselves. Read-only. Throws OperationError for the database.
std::vector<ScreenVerdict> screenMessages(MessageStore& ledger, const Account& account,
                                          const FetchSettings& settings,
                                          const CompiledFilter* filter,
                                          const std::vector<ScreenInput>& messages);

/// PlanAction - what a poll does with a message the server lists, by its ledger row.
enum class PlanAction {
    Fetch,      ///< retrieve, screen, deliver (no row, due for a retry, outcome unknown)
    DeleteOnly, ///< done (delivered or ignored, or released from quarantine): only DELE
    Wait,       ///< failed or deferred and not due yet: left alone
};

/// planAction - the plan stage's rule for a listed message that has a ledger row.
PlanAction planAction(const MessageRecord& row, std::int64_t now);

class Poll
{
public:
    Poll(Store& store, MessageStore& ledger, const FetchSettings& settings, Poco::Logger& log,
         const Account& account, ProtocolTrace* trace, const std::atomic<bool>& stopping,
         std::shared_ptr<LeaseToken> lease);

    /// run - the whole poll; never throws for server, MTA, disk or database trouble.
    PollReport run(const std::string& secret, const FilterFor& filterFor);

private:
    // The stages, in order.
    void open(const std::string& secret);
    void plan();
    bool nextBatch(Batch& batch);
    void retrieve(Batch& batch);
    void screen(Batch& batch);
    void record(Batch& batch);
    void deliver(Batch& batch);
    void expunge();
    /// settleJournal - fold what an interrupted poll left in the delivery
    /// journal into the ledger (part of plan).
    void settleJournal(std::map<std::string, MessageRecord>& rows);

    // Shared by the stages.
    void fail(Failure failure, const std::string& words);
    void endSession(Failure failure, const std::string& words);
    /// commit - one transaction: the lease check (fencing), stage(), the staged rows and log.
    void commit(const std::string& what, const std::function<void()>& stage);
    void stageRow(MessageRecord& row) { pendingRows_.push_back(&row); }
    void stageLog(const Item& it, const std::string& status, const std::string& queueId,
                  const std::string& detail);
    void logLine(const Item& it, const std::string& status, const std::string& tail);
    /// markFailed - the row failed with reason; retried after failed_retry_polls intervals.
    void markFailed(Item& it, const std::string& reason);
    void scheduleDelete(const Pop3Uid& uid);
    /// envelope - recipients envelope: per message, per recipient (core/recipients.h).
    bool envelope() const { return account_.recipientSource == RecipientSource::Envelope; }
    /// screenRecipients - screen's part for a domain mailbox: each message's
    /// recipients from its envelope header (or its rows, on a retry), the same
    /// Message-ID once per recipient; a message with nobody to go to is kept out.
    void screenRecipients(Batch& batch);
    /// recipientOutcome - deliver's part for a domain mailbox: the MTA's words
    /// for each recipient into its row; the message's state from them.
    void recipientOutcome(Item& it, const SmtpResult& r);

    Store& store_;
    MessageStore& ledger_;
    const FetchSettings& settings_;
    Poco::Logger& log_;
    const Account& account_;
    ProtocolTrace* trace_;
    const std::atomic<bool>& stopping_;
    /// This host's lease on the account (nullptr with SQLite): commit() checks
    /// it in every ledger transaction; expunge() before DELE and before QUIT.
    const std::shared_ptr<LeaseToken> lease_;
    const std::chrono::steady_clock::time_point started_;
    const std::string who_; ///< "account=NAME"

    PollReport report_;
    std::shared_ptr<const CompiledFilter> filter_;
    std::unique_ptr<Pop3Client> pop_;
    SmtpReinjector mta_;
    DeliveryJournal journal_;
    std::vector<std::string> recipients_;

    struct Candidate {
        Pop3Uid uid;
        std::int64_t listed = -1;
        /// none: no ledger row yet (every new message). Out of line: a listed
        /// message without a row costs 56 bytes rather than ~340 (bench case 1).
        std::unique_ptr<MessageRecord> row;
    };
    std::vector<Candidate> todo_; ///< what this poll has to move, in server order
    std::size_t next_ = 0;
    std::vector<std::pair<int, std::string>> toDelete_; ///< (number, uidl)
    bool ended_ = false; ///< the session ends after the current stage
    bool quit_ = true;   ///< end with QUIT (apply DELEs) rather than drop

    std::vector<MessageRecord*> pendingRows_; ///< staged for commit()
    std::vector<LogEntry> pendingLog_;
};

} // namespace popgate
