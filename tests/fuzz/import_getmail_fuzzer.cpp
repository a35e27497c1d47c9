// import_getmail_fuzzer.cpp - a getmail6 rc file (parseGetmailRc) or an oldmail-* file
// (parseGetmailOldmail), from core/import_parsers.h. The first byte picks the file: even, the rc
// file; odd, the record of fetched UIDLs; the rest is its text. Invariants: only InputError
// escapes; the reading holds import_fuzz_support.h's checks; every UIDL read is a non-empty single
// line, and no more are read than the file has lines.
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
            checkParse(parseGetmailRc(text, "rc"), text);
            return 0;
        }
        std::size_t bad = 0;
        const auto uidls = parseGetmailOldmail(text, &bad);
        for (const auto& u : uidls)
            FUZZ_CHECK(!u.empty() && u.find_first_of(std::string("\n\0", 2)) == std::string::npos,
                       where + " uidl " + shown(u));
        FUZZ_CHECK(uidls.size() + bad <= static_cast<std::size_t>(lineCount(text)), where);
    } catch (const InputError&) {
    }
    return 0;
}
