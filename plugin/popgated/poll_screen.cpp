// poll_screen.cpp - the screen stage (see poll.h): for every message of the
// batch that was retrieved, the network-free checks of core/screen.h (loop,
// own mailbox, duplicate Message-ID, the system filter; an unreadable sender
// is blocked). Duplicates are looked up in the ledger in one query per batch,
// and within the batch itself.
#include "plugin/popgated/poll.h"

#include <map>

namespace popgate
{

void Poll::screen(Batch& batch)
{
    std::map<std::string, std::vector<std::string>> known; // Message-ID -> UIDLs
    if (!settings_.allowDuplicates) {
        std::vector<std::string> ids;
        for (const Item& it : batch.items)
            if (it.retrieval == Retrieval::Retrieved && !it.rec.messageId.empty())
                ids.push_back(it.rec.messageId);
        if (!ids.empty())
            known = ledger_.duplicatesOf(account_.id, ids,
                                         nowSeconds() - settings_.duplicateWindow);
    }
    ScreenRules rules;
    rules.maxHops = settings_.maxHops;
    rules.ownMailbox = account_.mailbox;
    rules.allowDuplicates = settings_.allowDuplicates;

    std::map<std::string, std::string> inBatch; // Message-ID -> UIDL
    for (Item& it : batch.items) {
        if (it.retrieval != Retrieval::Retrieved)
            continue;
        const MessageFacts& facts = it.rewriter->facts();
        std::string duplicateOf;
        if (!facts.messageId.empty()) {
            auto other = inBatch.find(facts.messageId);
            if (other != inBatch.end()) {
                duplicateOf = other->second;
            } else if (auto k = known.find(facts.messageId); k != known.end()) {
                for (const auto& uidl : k->second)
                    if (uidl != it.uid.uid) {
                        duplicateOf = uidl;
                        break;
                    }
            }
            inBatch.emplace(facts.messageId, it.uid.uid);
        }
        it.verdict = screenFetched(rules, facts, it.rec.envelopeFrom, duplicateOf, filter_.get());
    }
}

} // namespace popgate
