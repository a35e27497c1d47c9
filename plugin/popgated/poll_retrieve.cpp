// poll_retrieve.cpp - the retrieve stage (see poll.h): RETR for a whole batch,
// pipelined when the server offers it, each message streamed through
// MessageRewriter into its spool. LIST sizes are advisory: a message that
// ended in step is good whatever LIST said (a warning with both numbers).
// A -ERR to one RETR, or a message over a limit (a line over 1 MiB) read
// to its end in step, concerns that message only. A stream that lost step
// (a message cut short at an unstuffed ".") fails the message that broke
// it; nothing after it is trusted, and the session ends after this batch.
#include "core/text.h"
#include "plugin/popgated/poll.h"

#include <Poco/File.h>
#include <Poco/Process.h>

namespace popgate
{

namespace
{

std::atomic<unsigned> spoolCounter{0};

} // namespace

void Poll::retrieve(Batch& batch)
{
    const std::string spoolTmp = settings_.spoolDir + "/tmp";
    try {
        Poco::File(spoolTmp).createDirectories();
    } catch (const Poco::Exception& e) {
        throw SpoolError("spool " + spoolTmp + ": cannot create it: " + flatten(e.displayText()));
    }
    // A domain mailbox's recipients are known only from each message (the
    // Received: field then names none).
    const std::string first = envelope()            ? std::string()
                              : recipients_.empty() ? account_.mailbox
                                                    : recipients_.front();
    std::vector<Pop3Listing> listing;
    for (Item& it : batch.items) {
        it.spool = std::make_unique<Spool>(spoolTmp + "/" + account_.name + "." +
                                               std::to_string(Poco::Process::id()) + "." +
                                               std::to_string(++spoolCounter),
                                           it.listed);
        it.spoolStream = std::make_unique<std::ostream>(it.spool.get());
        it.rewriter = std::make_unique<MessageRewriter>(
            *it.spoolStream,
            receivedHeader(account_.server, settings_.hostname, account_.name, it.uid.uid, first,
                           nowSeconds()) +
                "X-Popgate-Id: " + popgateIdHeader(settings_.headerKey, account_.name, it.uid.uid) +
                "\r\n");
        if (envelope()) // kept in facts, and renamed X-Fetched-... on its way
            it.rewriter->collectEnvelope(account_.envelopeHeader);
        it.out = std::make_unique<std::ostream>(it.rewriter.get());
        listing.push_back({it.uid.number, it.listed, it.uid.uid});
    }

    std::size_t cursor = 0;
    auto done = [&](const Pop3BatchReply& r) {
        Item& it = batch.items[cursor++];
        if (!r.ok) {
            it.retrieval = r.malformed ? Retrieval::Malformed : Retrieval::Refused;
            it.problem = "RETR " + std::to_string(r.number) +
                         (r.malformed ? ": " : ": server said: ") + r.problem;
            if (r.malformed && r.sizeDiffers())
                it.sizeNote = "LIST said " + std::to_string(r.listed) + " octets";
            return;
        }
        it.out->flush();
        const MessageFacts& facts = it.rewriter->finish();
        it.spool->finishWriting();
        it.rec.messageId = facts.messageId;
        it.rec.headerFrom = facts.from;
        it.rec.envelopeFrom = envelopeSender(facts);
        it.rec.size = facts.outputOctets;
        it.retrieval = Retrieval::Retrieved;
        if (r.sizeDiffers())
            it.sizeNote = "LIST said " + std::to_string(r.listed) + " octets, RETR delivered " +
                          std::to_string(r.octets);
    };
    try {
        pop_->retrieveMany(
            listing, [&](int) -> std::ostream& { return *batch.items[cursor].out; }, done);
    } catch (const Pop3OutOfStepError& e) {
        // The suspect broke the framing; what came before it is good.
        bool after = false;
        for (Item& it : batch.items) {
            if (it.uid.number == e.suspect()) {
                it.retrieval = Retrieval::OutOfStep;
                it.problem = e.what();
                after = true;
            } else if (after) {
                it.retrieval = Retrieval::Pending;
            }
        }
        batch.endsSession = Failure::RetrOutOfStep;
        batch.endWords = e.what();
    } catch (const Pop3Error& e) {
        // The connection failed mid-batch: what was read whole and in step
        // is handed over; a message whose size LIST disagreed with was not
        // yet checked for step, so it and what follows wait.
        bool unchecked = false;
        for (Item& it : batch.items) {
            if (!it.sizeNote.empty() || it.retrieval == Retrieval::Malformed)
                unchecked = true;
            if (unchecked || it.retrieval != Retrieval::Retrieved)
                it.retrieval = it.retrieval == Retrieval::Refused && !unchecked
                                   ? Retrieval::Refused
                                   : Retrieval::Pending;
        }
        batch.endsSession = classifyPop3(e);
        batch.endWords = e.what();
    }

    for (const Item& it : batch.items)
        if (it.retrieval == Retrieval::Retrieved && !it.sizeNote.empty())
            log_.warning(who_ + " uidl=" + escapeText(it.uid.uid, EscapeFor::LogField) + " RETR " +
                         std::to_string(it.uid.number) + ": size differs from LIST (" +
                         it.sizeNote + "); the message ended in step, delivered as received");
}

} // namespace popgate
