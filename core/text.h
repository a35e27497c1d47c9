// text.h - small string helpers shared by core and the programs: trimming,
// splitting, yes/no and duration parsing, and flattening a peer's reply for a
// log line. Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace popgate
{

/// trim - without leading and trailing blanks (space, tab, CR, LF).
std::string trim(const std::string& text);
/// splitList - split at `sep`, trim each piece, drop empty pieces.
std::vector<std::string> splitList(const std::string& text, char sep = ',');
/// parseBool - yes/no, true/false, on/off, 1/0; throws InputError otherwise.
bool parseBool(const std::string& text);
/// parseInteger - a whole number in [min, max]; throws InputError otherwise.
std::int64_t parseInteger(const std::string& text, std::int64_t min, std::int64_t max);
/// parseDuration - seconds from "90", "90s", "15m", "24h" or "30d"; throws InputError.
std::int64_t parseDuration(const std::string& text);
/// parseSize - bytes from "1048576", "512k", "10M" or "1G"; throws InputError.
std::int64_t parseSize(const std::string& text);
/// flatten - the text on one line: CR/LF become spaces, control bytes escaped.
std::string flatten(const std::string& text);
/// yesNo - "yes" or "no".
inline const char* yesNo(bool value)
{
    return value ? "yes" : "no";
}

} // namespace popgate
