// policy_test - the failure table and the back-off schedules (core/policy.cpp).
#define BOOST_TEST_MODULE policy
#include "core/policy.h"

#include <boost/test/unit_test.hpp>
#include <vector>

using namespace popgate;

namespace
{

struct Row {
    Failure failure;
    MessageOutcome message;
    bool endSession;
    bool quit;
    bool accountFailure;
    bool authFailure;
};

const char* outcomeName(MessageOutcome o)
{
    switch (o) {
    case MessageOutcome::None:
        return "none";
    case MessageOutcome::RetryLater:
        return "retry-later";
    case MessageOutcome::MarkFailed:
        return "mark-failed";
    case MessageOutcome::Uncertain:
        return "uncertain";
    }
    return "?";
}

} // namespace

BOOST_AUTO_TEST_CASE(failure_table)
{
    using M = MessageOutcome;
    const std::vector<Row> rows = {
        // POP3 trouble: drop the session without QUIT so no DELE applies.
        {Failure::Pop3Network, M::None, true, false, true, false},
        {Failure::Pop3Timeout, M::None, true, false, true, false},
        {Failure::Pop3Protocol, M::None, true, false, true, false},
        {Failure::Pop3Busy, M::None, true, false, true, false},
        {Failure::Pop3Refused, M::None, true, false, true, false},
        {Failure::Pop3Tls, M::None, true, false, true, false},
        {Failure::Pop3Permanent, M::None, true, false, true, false},
        {Failure::Pop3Auth, M::None, true, false, true, true},
        // One message refused: the others go on.
        {Failure::MtaTemporary, M::RetryLater, false, false, false, false},
        {Failure::MtaPermanent, M::MarkFailed, false, false, false, false},
        {Failure::TooLarge, M::MarkFailed, false, false, false, false},
        // MTA gone: stop, but QUIT so recorded deliveries are deleted.
        {Failure::MtaUnreachable, M::RetryLater, true, true, true, false},
        {Failure::MtaUncertain, M::Uncertain, true, true, true, false},
        // Our own state in doubt: delete nothing.
        {Failure::Database, M::None, true, false, true, false},
        {Failure::Secret, M::None, true, false, true, false},
        // One message the server refuses: deferred, the others go on.
        {Failure::RetrRefused, M::RetryLater, false, false, false, false},
        // A message that broke the framing: failed, the session dropped
        // (no DELE from it), but not the account's failure.
        {Failure::RetrOutOfStep, M::MarkFailed, true, false, false, false},
        // A message over a limit, the stream in step: failed, the others go on.
        {Failure::RetrMalformed, M::MarkFailed, false, false, false, false},
        // The token endpoint: a refusal counts toward deactivation.
        {Failure::OAuthRefused, M::None, true, false, true, true},
        {Failure::OAuthUnavailable, M::None, true, false, true, false},
        // Our disk: stop, delete nothing in this session.
        {Failure::Spool, M::None, true, false, true, false},
        // Another host holds the account now: record and delete nothing more,
        // drop the session; not the account's failure (no back-off).
        {Failure::LeaseLost, M::None, true, false, false, false},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(failureName(r.failure))
        {
            const Decision d = decide(r.failure);
            BOOST_TEST(outcomeName(d.message) == outcomeName(r.message));
            BOOST_TEST(d.endSession == r.endSession);
            BOOST_TEST(d.quit == r.quit);
            BOOST_TEST(d.accountFailure == r.accountFailure);
            BOOST_TEST(d.authFailure == r.authFailure);
            BOOST_TEST(std::string(d.meaning).size() > 0u);
            // Never QUIT (which applies DELEs) unless the session is ending anyway
            // or nothing is wrong with our own state.
            if (r.failure == Failure::Database || r.failure == Failure::LeaseLost)
                BOOST_TEST(!d.quit);
        }
    }
}

BOOST_AUTO_TEST_CASE(account_backoff_doubles_and_caps)
{
    BOOST_TEST(accountBackoff(0, 120, 3600) == 120);
    BOOST_TEST(accountBackoff(1, 120, 3600) == 120);
    BOOST_TEST(accountBackoff(2, 120, 3600) == 240);
    BOOST_TEST(accountBackoff(3, 120, 3600) == 480);
    BOOST_TEST(accountBackoff(10, 120, 3600) == 3600);
    BOOST_TEST(accountBackoff(1000, 120, 3600) == 3600);
    BOOST_TEST(accountBackoff(2, 10, 3600) == 60); // short intervals back off from 30 s
}

BOOST_AUTO_TEST_CASE(message_retry_schedule)
{
    const std::vector<std::int64_t> expected = {60, 60, 300, 600, 1200, 2400, 3600, 7200, 7200};
    for (int attempts = 0; attempts < static_cast<int>(expected.size()); ++attempts)
        BOOST_TEST(messageRetryDelay(attempts) == expected[static_cast<std::size_t>(attempts)],
                   attempts);
}

BOOST_AUTO_TEST_CASE(failed_after_attempts)
{
    BOOST_TEST(!failedAfterAttempts(1, 5));
    BOOST_TEST(!failedAfterAttempts(4, 5));
    BOOST_TEST(failedAfterAttempts(5, 5));
    BOOST_TEST(failedAfterAttempts(9, 5));
    BOOST_TEST(!failedAfterAttempts(100, 0)); // 0: never
}
