// poll_record.cpp - the record stage (see poll.h): ONE commit for the batch,
// before the MTA sees any of it. Screened-out messages are written to the
// quarantine (fsync'd) and their rows say `ignored`; every message that goes
// to the MTA is `injecting`; a RETR the server refused is `deferred` (the
// next poll tries again) or, after message_max_attempts, `failed`; a message
// that broke the framing or a limit is `failed`. A message not reached keeps its row.
// A domain mailbox's message records its recipients (message_recipients) here too.
#include "core/text.h"
#include "plugin/popgated/poll.h"

#include <Poco/File.h>
#include <Poco/Process.h>

namespace popgate
{

namespace
{

std::atomic<unsigned> quarantineCounter{0};

} // namespace

void Poll::record(Batch& batch)
{
    const std::string quarantine = settings_.spoolDir + "/quarantine/" + account_.name;
    commit("the batch", [&] {
        for (Item& it : batch.items) {
            switch (it.retrieval) {
            case Retrieval::Pending:
                break;
            case Retrieval::Retrieved:
                if (!it.verdict.admitted()) {
                    try {
                        Poco::File(quarantine).createDirectories();
                    } catch (const Poco::Exception& e) {
                        throw SpoolError("quarantine " + quarantine + ": cannot create it: " +
                                         flatten(e.displayText()));
                    }
                    const std::string kept = quarantine + "/" + account_.name + "." +
                                             std::to_string(Poco::Process::id()) + "." +
                                             std::to_string(++quarantineCounter) + ".eml";
                    it.spool->keep(kept);
                    it.rec.state = MessageState::Ignored;
                    it.rec.reason = it.verdict.detail;
                    it.rec.quarantinePath = kept;
                    stageRow(it.rec);
                    stageLog(it, "ignored", "", it.verdict.detail);
                } else {
                    it.rec.state = MessageState::Injecting;
                    ++it.rec.attempts;
                    stageRow(it.rec);
                }
                // A domain mailbox: who it goes to, in the same commit.
                if (!it.rcpts.empty())
                    ledger_.saveRecipients(it.rcpts);
                break;
            case Retrieval::Refused:
            case Retrieval::OutOfStep:
            case Retrieval::Malformed: {
                const Failure f = it.retrieval == Retrieval::Refused     ? Failure::RetrRefused
                                  : it.retrieval == Retrieval::OutOfStep ? Failure::RetrOutOfStep
                                                                         : Failure::RetrMalformed;
                ++it.rec.attempts;
                const Decision d = decide(f);
                if (d.message == MessageOutcome::MarkFailed ||
                    failedAfterAttempts(it.rec.attempts, settings_.maxAttempts)) {
                    markFailed(it, it.problem +
                                       (d.message == MessageOutcome::MarkFailed
                                            ? ""
                                            : " (" + std::to_string(it.rec.attempts) +
                                                  " tries; kept on the server)"));
                } else {
                    it.rec.state = MessageState::Deferred;
                    it.rec.reason = it.problem;
                    it.rec.retryAt = 0; // the next poll
                }
                stageRow(it.rec);
                stageLog(it, messageStateName(it.rec.state), "", it.rec.reason);
                break;
            }
            }
        }
    });
    for (Item& it : batch.items) {
        if (it.retrieval == Retrieval::Retrieved && !it.verdict.admitted()) {
            logLine(it, "ignored", "(" + escapeText(it.verdict.detail, EscapeFor::LogText) + ")");
            ++report_.ignored;
            scheduleDelete(it.uid);
        } else if (it.retrieval == Retrieval::Refused || it.retrieval == Retrieval::OutOfStep ||
                   it.retrieval == Retrieval::Malformed) {
            const bool failed = it.rec.state == MessageState::Failed;
            logLine(it, messageStateName(it.rec.state),
                    "(" + escapeText(it.rec.reason, EscapeFor::LogText) +
                        (failed ? "" : "; kept on the server, tried again") + ")");
            ++(failed ? report_.failed : report_.deferred);
        }
    }
}

} // namespace popgate
