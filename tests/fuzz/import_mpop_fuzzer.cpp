// import_mpop_fuzzer.cpp - an mpoprc (parseMpopRc) or mpop's UIDL file (parseMpopUidls),
// from core/import_parsers.h. The first byte picks the file: even, the rc file;
// odd, the record of fetched UIDLs; the rest is its text. Invariants: only
// InputError escapes; the reading holds import_fuzz_support.h's checks; every
// UIDL read is a non-empty single line, and no more are read than the file has lines.
#include "tests/fuzz/import_fuzz_support.h"

#include <cstdint>

using namespace popgate;
using namespace popgate::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::string where = "file " + shown(text);
    try {
        if (data[0] % 2 == 0) {
            checkParse(parseMpopRc(text, "rc"), text);
            return 0;
        }
        // each line is at most one list's header or one UIDL
        std::size_t total = 0;
        for (const auto& list : parseMpopUidls(text)) {
            for (const auto& u : list.uidls) {
                FUZZ_CHECK(!u.empty() && u[0] != ' ' && u.find('\n') == std::string::npos,
                           where + " uidl " + shown(u));
                ++total;
            }
            total += 1;
        }
        FUZZ_CHECK(total <= static_cast<std::size_t>(lineCount(text)), where);
    } catch (const InputError&) {
    }
    return 0;
}
