// settings.h - gateway-wide state kept in the database, so that every
// popgated host sharing it obeys the same thing: the receiving switch
// (`popgatectl receiving on|off`, table settings, migration 0007) and the
// popgated heartbeat as popgatectl reads it (table hosts, migration 0006; on
// PostgreSQL written by the lease keeper through core/lease.h, on SQLite by
// the one popgated of the file through SingleHostBeat). Core only: Poco::Data,
// no driver.
#pragma once

#include "core/lease.h"
#include "core/store.h"

#include <cstdint>
#include <string>
#include <vector>

namespace popgate
{

/// ReceivingState - the receiving switch as last written.
struct ReceivingState {
    bool on = true;
    std::int64_t changedAt = 0; ///< Unix seconds; 0: never switched (the default, on)
    std::string changedBy;      ///< "user@host" of the popgatectl that switched it
};

/// readReceiving - one primary-key read. Throws OperationError for the database.
ReceivingState readReceiving(Store& store);
/// setReceiving - switch receiving on or off, recording who and when;
/// returns the state before. Throws OperationError.
ReceivingState setReceiving(Store& store, bool on, const std::string& by);

/// SingleHostBeat - SQLite's heartbeat: the hosts row of the one popgated of
/// the database file (SingleHostLock keeps it one), so that popgatectl status
/// can tell whether it runs. PostgreSQL hosts beat through LeaseStore.
class SingleHostBeat
{
public:
    SingleHostBeat(Store& store, HostIdentity me) : store_(store), me_(std::move(me)) {}
    /// start - the row for this process, started and beaten now. Throws OperationError.
    void start();
    /// beat - heartbeat_at = now. Throws OperationError.
    void beat();
    /// leave - heartbeat_at = 0: a clean stop. Throws OperationError.
    void leave();

private:
    Store& store_;
    HostIdentity me_;
};

/// hostBeats - every hosts row, either dialect, ages on the database's clock
/// (accountsHeld only with leases). Throws OperationError.
std::vector<HostView> hostBeats(Store& store);

} // namespace popgate
