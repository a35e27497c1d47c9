// policy.cpp - the failure table (see policy.h). Change behaviour here, not
// in the POP3 or SMTP code.
#include "core/policy.h"

#include <algorithm>

namespace popgate
{

std::string failureName(Failure f)
{
    switch (f) {
    case Failure::Pop3Network:
        return "pop3-network";
    case Failure::Pop3Timeout:
        return "pop3-timeout";
    case Failure::Pop3Tls:
        return "pop3-tls";
    case Failure::Pop3Auth:
        return "pop3-auth";
    case Failure::Pop3Busy:
        return "pop3-busy";
    case Failure::Pop3Permanent:
        return "pop3-permanent";
    case Failure::Pop3Protocol:
        return "pop3-protocol";
    case Failure::Pop3Refused:
        return "pop3-refused";
    case Failure::MtaTemporary:
        return "mta-temporary";
    case Failure::MtaPermanent:
        return "mta-permanent";
    case Failure::MtaUnreachable:
        return "mta-unreachable";
    case Failure::MtaUncertain:
        return "mta-uncertain";
    case Failure::TooLarge:
        return "too-large";
    case Failure::Database:
        return "database";
    case Failure::Secret:
        return "secret";
    case Failure::RetrRefused:
        return "retr-refused";
    case Failure::RetrOutOfStep:
        return "retr-out-of-step";
    case Failure::RetrMalformed:
        return "retr-malformed";
    case Failure::OAuthRefused:
        return "oauth-refused";
    case Failure::OAuthUnavailable:
        return "oauth-unavailable";
    case Failure::Spool:
        return "spool";
    case Failure::LeaseLost:
        return "lease-lost";
    case Failure::RecipientTemporary:
        return "recipient-temporary";
    case Failure::RecipientPermanent:
        return "recipient-permanent";
    }
    return "unknown";
}

Decision decide(Failure f)
{
    Decision d;
    switch (f) {
    // POP3 side: the connection is unusable or the server refuses us. Drop the
    // session without QUIT; the message in flight was not handed over.
    case Failure::Pop3Network:
    case Failure::Pop3Timeout:
    case Failure::Pop3Protocol:
    case Failure::Pop3Busy:
    case Failure::Pop3Refused:
        d = {MessageOutcome::None, true, false, true, false, "temporary"};
        break;
    case Failure::Pop3Tls:
    case Failure::Pop3Permanent:
        d = {MessageOutcome::None, true, false, true, false, "needs attention"};
        break;
    case Failure::Pop3Auth:
    case Failure::OAuthRefused:
        d = {MessageOutcome::None, true, false, true, true, "authentication"};
        break;
    case Failure::OAuthUnavailable:
        d = {MessageOutcome::None, true, false, true, false, "temporary"};
        break;
    // One message the server will not hand over: the others go on; after
    // max attempts it is failed (failedAfterAttempts).
    case Failure::RetrRefused:
        d = {MessageOutcome::RetryLater, false, false, false, false, "deferred"};
        break;
    // A message that broke the protocol's framing (truncated at an unstuffed
    // dot): never delivered, failed at once (the server would send it the
    // same way again). Nothing after it can be trusted, so the session is
    // dropped without QUIT; what was recorded before it is deleted next time.
    // Not the account's failure: the next poll skips the failed message.
    case Failure::RetrOutOfStep:
        d = {MessageOutcome::MarkFailed, true, false, false, false, "failed"};
        break;
    // A message that broke a limit while the stream kept step: failed (it
    // would come the same way again); the others go on.
    case Failure::RetrMalformed:
        d = {MessageOutcome::MarkFailed, false, false, false, false, "failed"};
        break;
    // MTA side, for one message: the others may still go through.
    case Failure::MtaTemporary:
        d = {MessageOutcome::RetryLater, false, false, false, false, "deferred"};
        break;
    case Failure::MtaPermanent:
        d = {MessageOutcome::MarkFailed, false, false, false, false, "failed"};
        break;
    case Failure::TooLarge:
        d = {MessageOutcome::MarkFailed, false, false, false, false, "too large"};
        break;
    // MTA gone: stop, but QUIT so that what was recorded as delivered is deleted.
    case Failure::MtaUnreachable:
        d = {MessageOutcome::RetryLater, true, true, true, false, "mta unavailable"};
        break;
    case Failure::MtaUncertain:
        d = {MessageOutcome::Uncertain, true, true, true, false, "uncertain"};
        break;
    // Our own state is in doubt: delete nothing.
    case Failure::Database:
        d = {MessageOutcome::None, true, false, true, false, "database"};
        break;
    case Failure::Secret:
        d = {MessageOutcome::None, true, false, true, false, "configuration"};
        break;
    // Our own disk: the message in hand stays on the server; the session is
    // dropped (what was recorded is deleted by the next one).
    case Failure::Spool:
        d = {MessageOutcome::None, true, false, true, false, "local"};
        break;
    // Another host holds the account now (docs/scale-out.md): this one records
    // nothing more and deletes nothing (drop, no QUIT); the new holder resends
    // the message in flight with the same X-Popgate-Id. Not the account's
    // failure: no back-off, the account is simply no longer this host's.
    case Failure::LeaseLost:
        d = {MessageOutcome::None, true, false, false, false, "lease lost"};
        break;
    // One recipient of a domain-mailbox message (the others got it in the same
    // transaction): a 4xx keeps the message on the server and tries that
    // recipient again (only it: the ledger says who has it); a 5xx refuses
    // that recipient for good (recorded per recipient, `message retry` tries
    // it again). The message leaves the server once nobody waits for a retry
    // and somebody got it (messageDoneForRecipients).
    case Failure::RecipientTemporary:
        d = {MessageOutcome::RetryLater, false, false, false, false, "deferred"};
        break;
    case Failure::RecipientPermanent:
        d = {MessageOutcome::MarkFailed, false, false, false, false, "refused"};
        break;
    }
    return d;
}

bool messageDoneForRecipients(int delivered, int retryLater)
{
    return retryLater == 0 && delivered > 0;
}

std::int64_t accountBackoff(int failures, std::int64_t interval, std::int64_t cap)
{
    if (failures <= 0)
        return interval;
    std::int64_t delay = std::max<std::int64_t>(interval, 30);
    for (int i = 1; i < failures && delay < cap; ++i)
        delay *= 2;
    return std::min(delay, cap);
}

bool failedAfterAttempts(int attempts, int maxAttempts)
{
    return maxAttempts > 0 && attempts >= maxAttempts;
}

std::int64_t messageRetryDelay(int attempts)
{
    static const std::int64_t steps[] = {60, 300, 600, 1200, 2400, 3600};
    if (attempts <= 0)
        return steps[0];
    if (attempts <= 6)
        return steps[attempts - 1];
    return 7200;
}

} // namespace popgate
