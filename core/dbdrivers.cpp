// dbdrivers.cpp - see dbdrivers.h. Separate from popgate_core so that the
// core library does not link any database driver itself.
#include "core/dbdrivers.h"

#include <Poco/Data/PostgreSQL/Connector.h>
#include <Poco/Data/SQLite/Connector.h>
#include <mutex>

namespace popgate
{

void registerDatabaseDrivers()
{
    static std::once_flag once;
    std::call_once(once, [] {
        Poco::Data::SQLite::Connector::registerConnector();
        Poco::Data::PostgreSQL::Connector::registerConnector();
    });
}

} // namespace popgate
