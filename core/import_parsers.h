// import_parsers.h - readers for the files of the tools popgate replaces:
// fetchmail's rc file and .fetchids, getmail6's rc files and oldmail-* files,
// mpop's rc file and UIDL file. Each rc entry becomes the popgate account
// fields it maps to (by the field names of core/account.h), a password kept
// apart, and a note with file and line for every option that does not map.
// Pure functions over text already read (bounded by the caller and again
// here): no I/O, no store, no secret box. Throw InputError "FILE:LINE: ...".
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace popgate
{

/// Bounds for hostile-ish files: what a caller reads, and what a parser takes.
constexpr std::size_t kImportMaxRcBytes = 1024 * 1024;        ///< an rc file
constexpr std::size_t kImportMaxUidlBytes = 64 * 1024 * 1024; ///< a UIDL record file
constexpr std::size_t kImportMaxLine = 64 * 1024;             ///< a line of either

/// kImportMultidrop - the reason given for every multidrop option (one place).
extern const char* const kImportMultidrop;

/// ImportNote - an option of the old tool's file that popgate does not take over.
struct ImportNote {
    std::string file;
    int line = 0;
    std::string option; ///< as written ("sslcertpath", "passwordeval", ...)
    std::string why;    ///< "not mapped: ..."
};

/// ImportSetting - one popgate account field and where it came from.
struct ImportSetting {
    std::string field; ///< a name of accountFields()
    std::string value;
    int line = 0;
    std::string option; ///< the old tool's option as written
};

/// ImportEntry - one account of the old tool's file (a fetchmail user of a
/// poll, a getmail rc file, an mpop account).
struct ImportEntry {
    std::string file;
    int line = 0;       ///< where the entry starts
    std::string label;  ///< "poll pop.example.com", "account work", "[retriever]"
    std::string server; ///< as the tool names it (its UIDL record's key)
    int port = 0;       ///< 0: the protocol's default
    std::string user;
    std::optional<std::string> password; ///< plaintext, only in memory; never printed
    std::vector<ImportSetting> settings; ///< in order; a later one wins
    std::vector<ImportNote> notes;
    std::string skipped;       ///< non-empty: why it is not imported (IMAP, ...)
    std::string uidlFile;      ///< mpop's uidls_file as written (%U, %H, ~ not expanded)
    bool hasRecipient = false; ///< a deliver-to setting came from the file

    /// setting - the value of field's last setting, or nothing.
    std::optional<std::string> setting(const std::string& field) const;
};

/// ImportParse - what one rc file says.
struct ImportParse {
    std::vector<ImportEntry> entries;
    std::vector<ImportNote> notes; ///< file-wide options (fetchmail `set`, defaults)
    std::string idFile;            ///< fetchmail `set idfile` as written
};

/// parseFetchmailRc - the poll and skip entries of a fetchmailrc (defaults,
/// quoted strings, noise words, several users per poll). Throws InputError for
/// what fetchmail itself would refuse to read (an unterminated string).
ImportParse parseFetchmailRc(const std::string& text, const std::string& file);
/// parseGetmailRc - one getmail rc file (INI: [retriever], [destination], [options]).
ImportParse parseGetmailRc(const std::string& text, const std::string& file);
/// parseMpopRc - the accounts of an mpoprc (defaults, inheritance with `account A : B`).
ImportParse parseMpopRc(const std::string& text, const std::string& file);

/// UidlList - the UIDLs a tool recorded for one user on one server.
struct UidlList {
    std::string user;
    std::string host;
    std::vector<std::string> uidls;
};

/// parseFetchmailIds - .fetchids ("user@host uidl" lines). Lines it cannot
/// read are counted in *skipped. Throws InputError for an over-long line.
std::vector<UidlList> parseFetchmailIds(const std::string& text, std::size_t* skipped = nullptr);
/// parseGetmailOldmail - a getmail oldmail-* file ("uidl\0timestamp" lines).
std::vector<std::string> parseGetmailOldmail(const std::string& text,
                                             std::size_t* skipped = nullptr);
/// parseMpopUidls - mpop's UIDL file (" N host user" then N UIDLs, in lists).
std::vector<UidlList> parseMpopUidls(const std::string& text, std::size_t* skipped = nullptr);

/// getmailOldmailName - "oldmail-SERVER-PORT-USER" as getmail6 names it.
std::string getmailOldmailName(const std::string& server, int port, const std::string& user);
/// importAccountName - a popgate account name for user on server: "USER_at_SERVER"
/// with every character outside [A-Za-z0-9._-] as '_', at most 64 characters.
std::string importAccountName(const std::string& user, const std::string& server);

} // namespace popgate
