// popgate_id_fuzzer.cpp - X-Popgate-Id (core/message.h): verifyPopgateId on
// any value, and popgateIdHeader/verifyPopgateId on any key, account and UIDL.
// Invariants: a value that verifies is exactly what popgateIdHeader writes for
// the (account, uidl) it names, with a valid account name; what popgateIdHeader
// writes verifies (blanks around it too) and names what went in; it fails
// under another key and after any one byte is changed.
#include "core/account.h"
#include "core/message.h"
#include "core/text.h"
#include "tests/fuzz/fuzz_support.h"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>

using namespace popgate;
using popgate::fuzz::shown;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzedDataProvider in(data, size);
    const std::string key = in.ConsumeRandomLengthString(80);
    const std::string account = in.ConsumeRandomLengthString(80);
    const std::string uidl = in.ConsumeRandomLengthString(300);
    const std::size_t flipAt = in.ConsumeIntegral<std::uint16_t>();
    const auto flipBits = static_cast<char>(in.ConsumeIntegralInRange<int>(1, 255));
    const std::string value = in.ConsumeRemainingBytesAsString();

    PopgateId id{"untouched", "untouched"};
    if (verifyPopgateId(key, value, id)) {
        FUZZ_CHECK(!key.empty(), "verified under an empty key: " + shown(value));
        FUZZ_CHECK(isValidName(id.account), "verified " + shown(value) + " names account " +
                                                shown(id.account));
        FUZZ_CHECK(popgateIdHeader(key, id.account, id.uidl) == trim(value),
                   "verified " + shown(value) + " is not the canonical form");
    } else {
        FUZZ_CHECK(id.account == "untouched" && id.uidl == "untouched",
                   "a refused value changed out: " + shown(value));
    }

    if (key.empty() || !isValidName(account))
        return 0;
    const std::string header = popgateIdHeader(key, account, uidl);
    const std::string where = "key " + shown(key) + " account " + shown(account) + " uidl " +
                              shown(uidl) + " header " + shown(header);
    FUZZ_CHECK(header.find_first_of("\r\n") == std::string::npos, where);
    PopgateId back;
    FUZZ_CHECK(verifyPopgateId(key, header, back), where + " does not verify");
    FUZZ_CHECK(back.account == account && back.uidl == uidl,
               where + " names " + shown(back.account) + " " + shown(back.uidl));
    FUZZ_CHECK(verifyPopgateId(key, " \t" + header + "\r\n", back), where + " with blanks");
    FUZZ_CHECK(!verifyPopgateId(key + "x", header, back), where + " verifies under another key");

    std::string altered = header;
    altered[flipAt % altered.size()] ^= flipBits;
    PopgateId forged{"untouched", "untouched"};
    if (trim(altered) != header)
        FUZZ_CHECK(!verifyPopgateId(key, altered, forged),
                   where + " altered to " + shown(altered) + " still verifies");
    return 0;
}
