// address_fuzzer.cpp - parseAddress, parseAddressList and parseAddressPattern
// (core/address.h) on any bytes. Besides "only InputError, never a crash":
// what parses prints back (spec()) to text that parses to the same key; a key
// is lowercase, its domain ASCII (A-labels); no parsed address carries CR, LF
// or NUL (it becomes an SMTP MAIL FROM and a log field).
#include "core/address.h"
#include "core/errors.h"
#include "tests/fuzz/fuzz_support.h"

#include <cstdint>

using namespace popgate;
using popgate::fuzz::shown;

namespace
{

void checkParsed(const MailAddress& a, const std::string& input, bool pattern)
{
    const std::string where = "input " + shown(input) + " key " + shown(a.key);
    if (a.isNull()) {
        FUZZ_CHECK(a.localPart.empty() && a.domain.empty() && a.spec().empty(), where);
        return;
    }
    const std::size_t at = a.key.rfind('@');
    FUZZ_CHECK(at != std::string::npos && at + 1 < a.key.size(), where); // ""@x is legal
    for (char c : a.key.substr(at + 1))
        FUZZ_CHECK(static_cast<unsigned char>(c) < 0x80 && !(c >= 'A' && c <= 'Z'), where);
    for (char c : a.key.substr(0, at))
        FUZZ_CHECK(!(c >= 'A' && c <= 'Z'), where);
    const std::string spec = a.spec();
    FUZZ_CHECK(spec.find_first_of(std::string("\r\n\0", 3)) == std::string::npos,
               where + " spec " + shown(spec));
    if (!pattern && a.key[at + 1] != '[') // a domain literal keeps its dtext, '*' included
        FUZZ_CHECK(a.key.find('*', at) == std::string::npos, where);

    // Round trip: the printed form reads back as the same address.
    MailAddress again;
    try {
        again = pattern ? parseAddressPattern(spec) : parseAddress("<" + spec + ">");
    } catch (const InputError& e) {
        FUZZ_CHECK(false, where + " spec " + shown(spec) + " does not parse back: " + e.what());
    }
    FUZZ_CHECK(again.key == a.key, where + " spec " + shown(spec) + " reads as " + shown(again.key));
    FUZZ_CHECK(again.localPart == a.localPart, where + " local part " + shown(again.localPart));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string text(reinterpret_cast<const char*>(data), size);

    MailAddress single;
    bool parsed = false;
    try {
        single = parseAddress(text);
        parsed = true;
    } catch (const InputError&) {
    }
    if (parsed)
        checkParsed(single, text, false);

    std::vector<MailAddress> list;
    bool listed = false;
    try {
        list = parseAddressList(text);
        listed = true;
    } catch (const InputError&) {
    }
    // Where both read one mailbox, they read the same one. (parseAddress is
    // the more lenient: "x, <a@b>" is one mailbox to it and a bad list to
    // parseAddressList, which then fails closed.)
    if (parsed && listed && list.size() == 1)
        FUZZ_CHECK(list[0].key == single.key, "parseAddress reads " + shown(text) + " as " +
                                                  shown(single.key) + ", parseAddressList as " +
                                                  shown(list[0].key));
    if (listed) {
        std::string joined;
        for (const MailAddress& a : list) {
            FUZZ_CHECK(!a.isNull() || !popgate::fuzz::kNullFromRefused,
                       "null mailbox in list " + shown(text) + " (finding F1)");
            joined += (joined.empty() ? "" : ", ") + ("<" + a.spec() + ">");
            if (!a.isNull())
                checkParsed(a, text, false);
        }
        std::vector<MailAddress> again;
        try {
            again = parseAddressList(joined);
        } catch (const InputError& e) {
            FUZZ_CHECK(false, "list " + shown(text) + " printed as " + shown(joined) +
                                  " does not parse back: " + e.what());
        }
        FUZZ_CHECK(again.size() == list.size(), "list " + shown(text) + " -> " + shown(joined));
        for (std::size_t i = 0; i < list.size(); ++i)
            FUZZ_CHECK(again[i].key == list[i].key, "list " + shown(text) + " -> " + shown(joined));
    }

    try {
        checkParsed(parseAddressPattern(text), text, true);
    } catch (const InputError&) {
    }
    return 0;
}
