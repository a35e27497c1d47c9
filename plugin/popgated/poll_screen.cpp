// poll_screen.cpp - the screen stage (see poll.h): for every message of the
// batch that was retrieved, the network-free checks of core/screen.h (loop,
// own mailbox, duplicate Message-ID, the system filter; an unreadable sender
// is blocked). Duplicates are looked up in the ledger in one query per batch,
// and within the batch itself. screenMessages is the whole decision, shared
// with popgated --dry-run (dry_run.cpp). A domain mailbox (recipients envelope)
// counts a Message-ID per recipient instead: each recipient gets it once
// (screenRecipients), however many copies the provider drops in the mailbox.
#include "core/text.h"
#include "plugin/popgated/poll.h"

#include <map>
#include <set>

namespace popgate
{

std::vector<ScreenVerdict> screenMessages(MessageStore& ledger, const Account& account,
                                          const FetchSettings& settings,
                                          const CompiledFilter* filter,
                                          const std::vector<ScreenInput>& messages)
{
    std::map<std::string, std::vector<std::string>> known; // Message-ID -> UIDLs
    // A domain mailbox judges duplicates per recipient (Poll::screenRecipients).
    const bool envelope = account.recipientSource == RecipientSource::Envelope;
    if (!settings.allowDuplicates && !envelope) {
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
        if (!facts.messageId.empty() && !envelope) {
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
    if (envelope())
        screenRecipients(batch);
}

void Poll::screenRecipients(Batch& batch)
{
    std::vector<std::string> retried, ids;
    for (const Item& it : batch.items) {
        if (it.retrieval != Retrieval::Retrieved)
            continue;
        if (it.hadRow)
            retried.push_back(it.uid.uid);
        if (!it.rec.messageId.empty())
            ids.push_back(it.rec.messageId);
    }
    // What earlier polls recorded: a retried message goes to whom it did not reach.
    auto stored = retried.empty() ? std::map<std::string, std::vector<RecipientRecord>>()
                                  : ledger_.recipientsOfMany(account_.id, retried);
    // Message-ID -> (UIDL, recipient) handed over or on the way, here and in the batch.
    auto having =
        settings_.allowDuplicates || ids.empty()
            ? std::map<std::string, std::vector<std::pair<std::string, std::string>>>()
            : ledger_.recipientsHaving(account_.id, ids, nowSeconds() - settings_.duplicateWindow);
    for (Item& it : batch.items) {
        if (it.retrieval != Retrieval::Retrieved)
            continue;
        it.rcpts.clear();
        std::string nobody; // why nobody is left, if so
        if (auto s = stored.find(it.uid.uid); s != stored.end() && !s->second.empty()) {
            it.rcpts = s->second;
            bool waiting = false;
            for (const auto& r : it.rcpts)
                waiting = waiting || r.state == RecipientState::Pending ||
                          r.state == RecipientState::Deferred;
            // Nobody waits: a failed message retried (`message retry`) tries
            // its refused-by-the-MTA recipients again.
            for (auto& r : it.rcpts)
                if (!waiting && r.state == RecipientState::Failed)
                    r.state = RecipientState::Pending;
            nobody = "no recipient left to hand it to";
        } else {
            const RecipientResolution res =
                resolveRecipients(account_, it.rewriter->facts().envelope);
            for (const auto& r : res.recipients)
                it.rcpts.push_back({account_.id, it.uid.uid, r, RecipientState::Pending,
                                    it.rec.messageId, "", "", 0});
            for (const auto& r : res.refused)
                it.rcpts.push_back({account_.id, it.uid.uid, r.address, RecipientState::Refused,
                                    it.rec.messageId, "", r.reason, 0});
            nobody = res.detail;
        }
        for (auto& r : it.rcpts)
            r.messageId = it.rec.messageId;
        // The same Message-ID once per recipient.
        std::string duplicates;
        for (auto& r : it.rcpts) {
            if (r.state != RecipientState::Pending && r.state != RecipientState::Deferred)
                continue;
            if (it.rec.messageId.empty() || settings_.allowDuplicates)
                continue;
            auto& seen = having[it.rec.messageId];
            const auto other = std::find_if(seen.begin(), seen.end(), [&](const auto& p) {
                return p.second == r.recipient && p.first != it.uid.uid;
            });
            if (other != seen.end()) {
                r.state = RecipientState::Refused;
                r.reason = "duplicate: Message-ID " + it.rec.messageId +
                           " already handed to it (UIDL " + other->first + ")";
                duplicates += (duplicates.empty() ? "" : ", ") + r.recipient;
            } else if (it.verdict.admitted()) {
                seen.emplace_back(it.uid.uid, r.recipient); // later copies in this batch
            }
        }
        const bool anyone = std::any_of(it.rcpts.begin(), it.rcpts.end(), [](const auto& r) {
            return r.state == RecipientState::Pending || r.state == RecipientState::Deferred;
        });
        if (!it.verdict.admitted() || anyone)
            continue;
        if (!duplicates.empty())
            it.verdict = {ScreenReason::Duplicate, "duplicate: Message-ID " + it.rec.messageId +
                                                       " already handed to " + duplicates};
        else
            it.verdict = {ScreenReason::NoRecipient,
                          nobody.empty() ? std::string("no recipient") : nobody};
    }
}

} // namespace popgate
