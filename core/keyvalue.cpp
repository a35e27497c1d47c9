// keyvalue.cpp - the "key = value" parser (see keyvalue.h). A problem leaves
// its line out and parsing goes on, so that one run names every bad line.
#include "core/keyvalue.h"

#include "core/errors.h"
#include "core/text.h"

#include <set>
#include <string_view>

namespace popgate
{

void readKeyValues(const std::string& text, const std::string& origin, const std::string& noun,
                   std::vector<std::string>& problems,
                   const std::function<void(const KeyValue&)>& use)
{
    std::set<std::string> seen;
    int number = 0;
    for (std::string::size_type start = 0; start < text.size();) {
        auto end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        const std::string_view line(text.data() + start, end - start);
        start = end + 1;
        ++number;
        const std::string where = origin + ":" + std::to_string(number) + ": ";
        if (line.size() > kMaxKeyValueLine) {
            problems.push_back(where + "line longer than " + std::to_string(kMaxKeyValueLine) +
                               " bytes");
            continue;
        }
        if (line.find('\0') != std::string_view::npos) {
            problems.push_back(where + "contains a NUL byte");
            continue;
        }
        const std::string t = trim(std::string(line));
        if (t.empty() || t[0] == '#')
            continue;
        const auto eq = t.find('=');
        if (eq == std::string::npos) {
            problems.push_back(where + "expected '" + noun + " = value'");
            continue;
        }
        const KeyValue kv{number, trim(t.substr(0, eq)), trim(t.substr(eq + 1))};
        if (!seen.insert(kv.key).second) {
            problems.push_back(where + flatten(kv.key) + ": set twice");
            continue;
        }
        try {
            use(kv);
        } catch (const InputError& e) {
            problems.push_back(where + e.what());
        }
    }
}

void throwProblems(const std::vector<std::string>& problems)
{
    if (problems.empty())
        return;
    std::string msg;
    for (const auto& p : problems)
        msg += (msg.empty() ? "" : "\n") + p;
    throw InputError(msg);
}

} // namespace popgate
