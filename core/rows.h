// rows.h - what the store's files (store, filter_store, message_store, oauth,
// milter_seen) share to read a Poco::Data row and to report a failed
// statement. One definition, so NULL handling and the SQLite/PostgreSQL
// integer types are decided once. Core only: Poco::Data, no driver.
#pragma once

#include "core/errors.h"
#include "core/store.h"
#include "core/text.h"

#include <Poco/Data/RecordSet.h>
#include <Poco/Exception.h>
#include <cstdint>
#include <string>

namespace popgate::rows
{

/// text - the current row's column as text; "" when it is NULL.
inline std::string text(Poco::Data::RecordSet& rs, const char* col)
{
    const Poco::Dynamic::Var value = rs[col];
    return value.isEmpty() ? std::string() : value.convert<std::string>();
}

/// number - the current row's column as a 64-bit integer, whatever integer type
/// the driver returns (SQLite Int64, PostgreSQL Int32/Int64/text); 0 when NULL.
inline std::int64_t number(Poco::Data::RecordSet& rs, const char* col)
{
    const Poco::Dynamic::Var value = rs[col];
    return value.isEmpty() ? 0 : value.convert<Poco::Int64>();
}

/// dbError - OperationError "database WHERE: WHAT: the driver's message on one line".
inline OperationError dbError(const std::string& where, const std::string& what,
                              const Poco::Exception& e)
{
    return OperationError("database " + where + ": " + what + ": " + flatten(e.displayText()));
}

/// dbError - the same, naming the store's database (Store::describe, no password).
inline OperationError dbError(const Store& store, const std::string& what, const Poco::Exception& e)
{
    return dbError(store.describe(), what, e);
}

} // namespace popgate::rows
