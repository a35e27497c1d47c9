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
/// Where an escaped text goes; see escapeText.
enum class EscapeFor {
    /// A key=value field of a log line: a value never contains a space.
    LogField,
    /// Free text at the end of a log line (a reason, a server's reply): spaces
    /// stay, CR/LF runs become one space, '=' is escaped so no word in it reads
    /// as a field.
    LogText,
    /// Text for the admin's terminal (a table cell, a `show` row): spaces stay.
    Terminal,
    /// A JSON document as Poco::JSON writes it (C0 controls in strings as \u00HH
    /// already; TAB, LF and CR outside them are JSON's white space and stay):
    /// DEL and C1 controls become \u007f / \u00HH (the exact code point), a byte
    /// that is not valid UTF-8 becomes \ufffd (JSON is UTF-8 and has no form for
    /// it); nothing else changes.
    Json,
};
/// escapeText - the text, from mail or from a server, safe for `where`:
/// control bytes (0x00-0x1F, 0x7F), C1 controls (U+0080-U+009F, as their two
/// bytes) and bytes that are not valid UTF-8 become \xHH (lower-case hex);
/// valid UTF-8 is kept. LogField also writes a space as \x20 and a backslash as
/// \\ (a field's value reads back exactly); LogText writes '=' as \x3d. LogText
/// and Terminal keep backslashes, so text escaped already (a POP3 reply through
/// flattenServerText, flatten()) is not escaped twice. Never throws.
std::string escapeText(const std::string& text, EscapeFor where);
/// yesNo - "yes" or "no".
inline const char* yesNo(bool value)
{
    return value ? "yes" : "no";
}

} // namespace popgate
