// policy.h - the one place that decides what a failure means for a message
// and for its account: keep it on the server and retry later, mark it failed,
// or treat the outcome as uncertain; end the session with QUIT (apply the
// DELEs of messages already recorded) or drop it (apply none); back off.
// When the outcome is uncertain popgate errs toward a duplicate, never a loss.
// Pure: no I/O. The POP3 and SMTP code only classify; this file decides.
#pragma once

#include <cstdint>
#include <string>

namespace popgate
{

enum class Failure {
    Pop3Network,    ///< connection refused, reset, dropped
    Pop3Timeout,    ///< the server stalled
    Pop3Tls,        ///< handshake, certificate or pin refused
    Pop3Auth,       ///< credentials refused ([AUTH] or plain -ERR to PASS/AUTH)
    Pop3Busy,       ///< [IN-USE], [LOGIN-DELAY], [SYS/TEMP]
    Pop3Permanent,  ///< [SYS/PERM]
    Pop3Protocol,   ///< the server broke the protocol (lied about sizes, garbage)
    Pop3Refused,    ///< -ERR to a command without a response code
    RetrRefused,    ///< -ERR to RETR of one message: that message only
    RetrOutOfStep,  ///< a message ended early (unstuffed "."): the session lost step
    RetrMalformed,  ///< a message broke a limit (a line over 1 MiB); the session kept step
    MtaTemporary,   ///< 4xx from the MTA for this message
    MtaPermanent,   ///< 5xx from the MTA for this message
    MtaUnreachable, ///< no SMTP session could be had
    MtaUncertain,   ///< the session broke after the final dot, before the reply
    TooLarge,       ///< over the account's or the MTA's size limit
    Database,       ///< the store failed: nothing may be deleted
    Secret,         ///< the account's secret cannot be unsealed
    OAuthRefused,   ///< the token endpoint refused the grant (invalid_grant, ...)
    OAuthUnavailable, ///< the token endpoint could not be reached or answered 5xx
    Spool,          ///< a spool or quarantine file could not be written (disk full)
    LeaseLost,      ///< another host holds the account now (or the lease expired): fenced
    RecipientTemporary, ///< 4xx to one RCPT of a domain-mailbox message: that recipient only
    RecipientPermanent, ///< 5xx to one RCPT of a domain-mailbox message: that recipient only
};

enum class MessageOutcome {
    None,       ///< no message was in flight, or it is untouched
    RetryLater, ///< kept on the server, tried again after a delay
    MarkFailed, ///< kept on the server, not fetched again until `message retry`
    Uncertain,  ///< kept on the server and in state injecting; resent with the
                ///< same X-Popgate-Id, the milter discards a second copy
};

struct Decision {
    MessageOutcome message = MessageOutcome::None;
    bool endSession = false;     ///< stop this poll
    bool quit = false;           ///< end with QUIT so recorded DELEs apply
    bool accountFailure = false; ///< counts as a failed poll (back-off)
    bool authFailure = false;    ///< counts toward auto-deactivation
    const char* meaning = "";    ///< one word for the log: temporary, permanent, ...
};

/// failureName - "pop3-network", "mta-temporary", ... for logs.
std::string failureName(Failure failure);
/// decide - what the failure means (the table is in policy.cpp).
Decision decide(Failure failure);
/// messageDoneForRecipients - whether a domain-mailbox message whose recipients
/// were each decided (none left to try now) may leave the server: true when at
/// least one of them got it; with none delivered it is failed and kept.
bool messageDoneForRecipients(int delivered, int retryLater);
/// accountBackoff - seconds to wait after `failures` consecutive failed polls:
/// interval, then doubling, capped at cap.
std::int64_t accountBackoff(int failures, std::int64_t interval, std::int64_t cap);
/// failedAfterAttempts - whether a message whose own problem was decided
/// RetryLater `attempts` times (this one included) is now failed instead;
/// maxAttempts <= 0 never turns a retry into a failure.
bool failedAfterAttempts(int attempts, int maxAttempts);
/// messageRetryDelay - seconds before a deferred message is tried again after
/// `attempts` tries: 1, 5, 10, 20, 40, 60 minutes, then every 2 hours.
std::int64_t messageRetryDelay(int attempts);

} // namespace popgate
