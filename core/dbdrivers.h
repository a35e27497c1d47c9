// dbdrivers.h - registers the Poco::Data drivers popgate's store can use
// (SQLite, PostgreSQL). Called once by each program before opening a Store.
#pragma once

namespace popgate
{

/// registerDatabaseDrivers - idempotent.
void registerDatabaseDrivers();

} // namespace popgate
