// config_fuzzer.cpp - popgate.conf parsing (core/config.h) and the key = value
// reader under it (core/keyvalue.h) on any bytes. Invariants: the reader
// hands over trimmed keys without '=', values without a line end or NUL, in
// line order, and every problem names the origin and a line; a text that
// parses gives values of their declared type (integer() and flag() accept
// them), and printing every key back as "key = value" parses to the same
// configuration.
#include "core/config.h"
#include "core/errors.h"
#include "core/keyvalue.h"
#include "tests/fuzz/fuzz_support.h"

#include <algorithm>
#include <cstdint>

using namespace popgate;
using popgate::fuzz::shown;

namespace
{

bool trimmed(const std::string& s)
{
    auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    return s.empty() || (!blank(s.front()) && !blank(s.back()));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string text(reinterpret_cast<const char*>(data), size);
    const std::string where = "text " + shown(text);

    std::vector<std::string> problems;
    int lastLine = 0;
    const int lines = 1 + static_cast<int>(std::count(text.begin(), text.end(), '\n'));
    readKeyValues(text, "fuzz.conf", "key", problems, [&](const KeyValue& kv) {
        FUZZ_CHECK(kv.line > lastLine && kv.line <= lines, where + " line " +
                                                             std::to_string(kv.line));
        lastLine = kv.line;
        FUZZ_CHECK(kv.key.find('=') == std::string::npos, where + " key " + shown(kv.key));
        FUZZ_CHECK(trimmed(kv.key) && trimmed(kv.value), where + " " + shown(kv.key) + " = " +
                                                             shown(kv.value));
        const std::string both = kv.key + kv.value;
        FUZZ_CHECK(both.find_first_of(std::string("\n\0", 2)) == std::string::npos,
                   where + " " + shown(kv.key) + " = " + shown(kv.value));
        FUZZ_CHECK(kv.value.size() <= kMaxKeyValueLine, where);
        if (kv.key == "throw")
            throw InputError("thrown by use");
    });
    for (const std::string& p : problems)
        FUZZ_CHECK(p.compare(0, 10, "fuzz.conf:") == 0, where + " problem " + shown(p));

    Config config;
    try {
        config = Config::parse(text, "fuzz.conf");
    } catch (const InputError& e) {
        const std::string what = e.what();
        FUZZ_CHECK(!what.empty(), where);
        return 0;
    }
    std::string printed;
    for (const ConfigKey& key : configKeys()) {
        const std::string value = config.str(key.name);
        try {
            if (key.type == ConfigType::Integer || key.type == ConfigType::Duration)
                config.integer(key.name);
            if (key.type == ConfigType::Boolean)
                config.flag(key.name);
        } catch (const InputError& e) {
            FUZZ_CHECK(false, where + " accepted " + key.name + " = " + shown(value) +
                                  " but reading it fails: " + e.what());
        }
        printed += std::string(key.name) + " = " + value + "\n";
    }
    Config again;
    try {
        again = Config::parse(printed, "printed.conf");
    } catch (const InputError& e) {
        FUZZ_CHECK(false, where + " printed as " + shown(printed) + " is refused: " + e.what());
    }
    for (const ConfigKey& key : configKeys())
        FUZZ_CHECK(again.str(key.name) == config.str(key.name),
                   where + " " + key.name + ": " + shown(config.str(key.name)) + " printed reads " +
                       shown(again.str(key.name)));
    return 0;
}
