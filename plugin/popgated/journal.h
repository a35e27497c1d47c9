// journal.h - the delivery journal: one line per message the MTA accepted,
// appended (write(2), no fsync) as soon as the 250 is read, before the next
// message's end of data is sent. The ledger records outcomes in groups (a
// commit per message would cost a fifth of the throughput); the journal
// covers the gap, so that a kill -9 leaves at most the one message in flight
// unrecorded. It survives a crash of popgated (the page cache keeps it), not
// of the machine, like the unflushed group commits it stands in for. The next
// poll of the account folds it into the ledger before it plans.
// One file per account (spool_dir/journal/ACCOUNT), used by one poll at a time.
// It is this host's file: with several hosts (leases, docs/scale-out.md) each
// outcome is committed before the next end of data instead, so that a host
// taking an account over finds all but the message in flight in the ledger;
// the journal then only covers a commit the database refused (an outage), and
// is folded in if this host holds the account again.
#pragma once

#include <string>
#include <vector>

namespace popgate
{

struct JournalEntry {
    std::string uidl;    ///< the ledger's key (Pop3Uid::uid: no white space)
    std::string queueId; ///< the MTA's queue id, "" if it gave none
};

class DeliveryJournal
{
public:
    /// DeliveryJournal - path of the account's journal; nothing is opened yet.
    explicit DeliveryJournal(std::string path);
    ~DeliveryJournal();
    DeliveryJournal(const DeliveryJournal&) = delete;
    DeliveryJournal& operator=(const DeliveryJournal&) = delete;

    /// read - what an earlier poll appended and did not clear (after a crash);
    /// a torn last line is ignored. Throws SpoolError when it cannot be read.
    std::vector<JournalEntry> read() const;
    /// append - one accepted message; creates the file (0640) on first use.
    /// Returns false when it cannot write (the caller commits at once instead).
    bool append(const JournalEntry& entry);
    /// clear - everything appended is in the ledger now (after a synced commit).
    void clear();

private:
    std::string path_;
    int fd_ = -1;
};

} // namespace popgate
