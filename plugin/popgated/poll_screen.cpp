// poll_screen.cpp - the screen stage (see poll.h): for every message of the
// batch that was retrieved, the network-free checks of core/screen.h (loop,
// own mailbox, duplicate Message-ID, the system filter; an unreadable sender
// is blocked). Duplicates are looked up in the ledger in one query per batch,
// and within the batch itself. screenMessages is the whole decision, shared
// with popgated --dry-run (dry_run.cpp).
#include "plugin/popgated/poll.h"

#include <map>

namespace popgate
{

std::vector<ScreenVerdict> screenMessages(MessageStore& ledger, const Account& account,
                                          const FetchSettings& settings,
                                          const CompiledFilter* filter,
                                          const std::vector<ScreenInput>& messages)
{
    std::map<std::string, std::vector<std::string>> known; // Message-ID -> UIDLs
    if (!settings.allowDuplicates) {
        std::vector<std::string> ids;
        for (const ScreenInput& m : messages)
            if (!m.facts->messageId.empty())
                ids.push_back(m.facts->messageId);
        if (!ids.empty())
            known = ledger.duplicatesOf(account.id, ids, nowSeconds() - settings.duplicateWindow);
    }
    ScreenRules rules;
    rules.maxHops = settings.maxHops;
    rules.ownMailbox = account.mailbox;
    rules.allowDuplicates = settings.allowDuplicates;

    std::vector<ScreenVerdict> verdicts;
    verdicts.reserve(messages.size());
    std::map<std::string, std::string> inBatch; // Message-ID -> UIDL
    for (const ScreenInput& m : messages) {
        const MessageFacts& facts = *m.facts;
        std::string duplicateOf;
        if (!facts.messageId.empty()) {
            auto other = inBatch.find(facts.messageId);
            if (other != inBatch.end()) {
                duplicateOf = other->second;
            } else if (auto k = known.find(facts.messageId); k != known.end()) {
                for (const auto& uidl : k->second)
                    if (uidl != m.uidl) {
                        duplicateOf = uidl;
                        break;
                    }
            }
            inBatch.emplace(facts.messageId, m.uidl);
        }
        verdicts.push_back(screenFetched(rules, facts, m.envelopeFrom, duplicateOf, filter));
    }
    return verdicts;
}

void Poll::screen(Batch& batch)
{
    std::vector<ScreenInput> in;
    std::vector<Item*> items;
    for (Item& it : batch.items)
        if (it.retrieval == Retrieval::Retrieved) {
            in.push_back({it.uid.uid, &it.rewriter->facts(), it.rec.envelopeFrom});
            items.push_back(&it);
        }
    const auto verdicts = screenMessages(ledger_, account_, settings_, filter_.get(), in);
    for (std::size_t i = 0; i < items.size(); ++i)
        items[i]->verdict = verdicts[i];
}

} // namespace popgate
