// keyvalue.h - the "key = value" line format that popgate.conf and
// accounts.d/NAME.conf share: one parser, so comments, blank lines, CRLF,
// repeated keys and the "FILE:LINE: message" problems read the same in both.
// It knows no key names: the callers check keys and values. Pure: no I/O.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace popgate
{

/// kMaxKeyValueLine - the longest line accepted, in bytes without its line end (64 KiB).
constexpr std::size_t kMaxKeyValueLine = 64 * 1024;

struct KeyValue {
    int line = 0;      ///< 1-based line number in the text
    std::string key;   ///< what stands before the first '=', trimmed (may be empty)
    std::string value; ///< the rest of the line, trimmed (may hold '=' and '#')
};

/// readKeyValues - calls use(kv) for each "key = value" line of text, in order. Skips blank
/// lines and lines whose first non-blank byte is '#'; drops the blanks (a CRLF's CR included)
/// around key and value. Adds "ORIGIN:LINE: message" to problems, in line order, and goes on,
/// for a line with a NUL byte, a line over kMaxKeyValueLine, a line without '=' ("expected
/// 'NOUN = value'"), a key given again ("KEY: set twice") and an InputError thrown by use.
/// Throws what use throws otherwise.
void readKeyValues(const std::string& text, const std::string& origin, const std::string& noun,
                   std::vector<std::string>& problems,
                   const std::function<void(const KeyValue&)>& use);

/// throwProblems - throws InputError with the problems one per line; returns if there are none.
void throwProblems(const std::vector<std::string>& problems);

} // namespace popgate
