// poll_expunge.cpp - the expunge stage (see poll.h): DELE, in the server's
// message order, for every message whose ledger row says injected or ignored
// (unless the account keeps mail on the server), then QUIT. Only a +OK to
// QUIT marks the rows deleted: a session dropped before it applies no DELE,
// and the next poll deletes those messages without delivering them again.
#include "core/text.h"
#include "plugin/popgated/poll.h"

#include <algorithm>

namespace popgate
{

void Poll::expunge()
{
    if (toDelete_.empty()) {
        pop_->quit();
        return;
    }
    // Under a lease: DELE only while this host still holds the account
    // (checked on the database, which also says for how long), and QUIT, which
    // applies the DELEs, only while that is still known to hold; else the
    // session is dropped and the next holder deletes these (they are recorded).
    if (lease_)
        commit("the lease check", [] {});
    std::sort(toDelete_.begin(), toDelete_.end());
    std::vector<int> numbers;
    for (const auto& d : toDelete_)
        numbers.push_back(d.first);
    const auto replies = pop_->deleteMany(numbers);
    std::vector<std::string> done;
    for (std::size_t i = 0; i < replies.size(); ++i) {
        if (replies[i].ok)
            done.push_back(toDelete_[i].second);
        else
            log_.warning(who_ + " uidl=" + escapeText(toDelete_[i].second, EscapeFor::LogField) +
                         " DELE " + std::to_string(toDelete_[i].first) +
                         " refused: " + escapeText(replies[i].problem, EscapeFor::LogText) +
                         " (kept on the server; not delivered again)");
    }
    if (lease_ && !lease_->validFor(settings_.leaseMarginMs))
        throw LeaseLost("the lease ran out while DELE was sent; QUIT not sent, so no DELE applies");
    pop_->quit();
    commit("the deleted messages", [&] { ledger_.markDeleted(account_.id, done); });
    report_.deleted = static_cast<int>(done.size());
}

} // namespace popgate
