// receiving_watch.h - popgated's side of the receiving switch (core/settings.h):
// the scheduler asks it once a second whether to poll; it reads the switch
// (one primary-key read) and logs a change once, naming who switched it.
// Off: no account is polled (no POP3 connection), polls in flight finish.
#pragma once

#include "core/store.h"

#include <Poco/Logger.h>

namespace popgate
{

class ReceivingWatch
{
public:
    explicit ReceivingWatch(Poco::Logger& log) : log_(log) {}

    /// update - read the switch and log what changed since the last read (at
    /// the first read: only "off"); returns whether receiving is on. A failed
    /// read keeps the last state (on before the first) and logs nothing: the
    /// scheduler's own database errors say so.
    bool update(Store& store);
    bool on() const { return on_; }

private:
    Poco::Logger& log_;
    bool on_ = true;
    bool known_ = false;
};

} // namespace popgate
