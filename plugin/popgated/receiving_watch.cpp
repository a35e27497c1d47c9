// receiving_watch.cpp - see receiving_watch.h.
#include "plugin/popgated/receiving_watch.h"

#include "core/settings.h"
#include "core/text.h"

namespace popgate
{

namespace
{

// bySomeone - " (switched by USER@HOST)" when the switch was recorded, else "".
std::string bySomeone(const ReceivingState& s)
{
    return s.changedBy.empty()
               ? std::string()
               : " (switched by " + escapeText(s.changedBy, EscapeFor::LogField) + ")";
}

} // namespace

bool ReceivingWatch::update(Store& store)
{
    ReceivingState s;
    try {
        s = readReceiving(store);
    } catch (const std::exception&) {
        return on_;
    }
    if (!known_ || s.on != on_) {
        if (!s.on)
            log_.warning("receiving is off" + bySomeone(s) +
                         ": no account is polled (popgatectl receiving on to resume)");
        else if (known_)
            log_.notice("receiving is on again" + bySomeone(s) + ": polling resumes");
    }
    known_ = true;
    on_ = s.on;
    return on_;
}

} // namespace popgate
