// import_fuzz_support.h - what the three import targets check of any reading
// (core/import_parsers.h): every setting names a popgate account field and a
// line of the file, the field table takes its value or refuses it with
// InputError only, every note names a line and a reason, an entry is either
// skipped with a reason or has a user and a password. Test code only.
#pragma once

#include "core/account.h"
#include "core/errors.h"
#include "core/import_parsers.h"
#include "tests/fuzz/fuzz_support.h"

#include <algorithm>
#include <string>

namespace popgate::fuzz
{

inline int lineCount(const std::string& text)
{
    return static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
}

inline void checkParse(const ImportParse& p, const std::string& text)
{
    const std::string where = "file " + shown(text);
    const int lines = lineCount(text);
    auto checkNote = [&](const ImportNote& n) {
        FUZZ_CHECK(n.line >= 0 && n.line <= lines, where + " note line " + std::to_string(n.line));
        FUZZ_CHECK(n.why.rfind("not ", 0) == 0, where + " note reason " + shown(n.why));
        FUZZ_CHECK(n.file == "rc", where);
    };
    for (const auto& n : p.notes)
        checkNote(n);
    for (const auto& e : p.entries) {
        for (const auto& n : e.notes)
            checkNote(n);
        FUZZ_CHECK(e.line >= 1 && e.line <= lines, where + " entry line " + std::to_string(e.line));
        if (e.skipped.empty())
            FUZZ_CHECK(!e.user.empty() || e.setting("auth") == std::string("none"),
                       where + " an entry without a user is not skipped");
        Account a;
        for (const auto& s : e.settings) {
            FUZZ_CHECK(findAccountField(s.field) != nullptr, where + " field " + shown(s.field));
            FUZZ_CHECK(s.line >= 0 && s.line <= lines,
                       where + " setting line " + std::to_string(s.line));
            try {
                setAccountField(a, s.field, s.value);
            } catch (const InputError&) {
                // the importer names it as not mapped
            }
        }
    }
}

} // namespace popgate::fuzz
