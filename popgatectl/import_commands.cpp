// import_commands.cpp - `popgatectl import fetchmail|getmail|mpop`: read the
// old tool's rc file(s) (core/import_parsers.cpp), show each account it would
// create with where every field came from and every option it cannot map, and
// with --apply store them: the password sealed as `account add` seals it, the
// tool's record of fetched UIDLs as ledger rows so that the first poll delivers
// only what the old tool had not. Never prints a password.
#include "core/errors.h"
#include "core/import_parsers.h"
#include "core/message_store.h"
#include "core/text.h"
#include "plugin/net/pop3_client.h"
#include "popgatectl/import.h"

#include <Poco/File.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Path.h>
#include <Poco/Util/Option.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <pwd.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace popgate::cli
{

namespace
{

using Poco::Util::Option;
using Poco::Util::OptionSet;

const char* const kUsage =
    "usage: popgatectl import fetchmail RCFILE [--idfile=FILE] | import getmail RCFILE... "
    "[--getmaildir=DIR] | import mpop RCFILE [--uidls=FILE]  [--apply] [--json] "
    "[--deliver-to=ADDR] [--local-domains=LIST] [--name=NAME] [--no-uidls]";

// readBounded - a regular file of at most max bytes; nothing when it does not
// exist. Throws InputError for anything else it cannot read.
std::optional<std::string> readBounded(const std::string& path, std::size_t max)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return std::nullopt;
        throw InputError(escapeText(path, EscapeFor::Terminal) + ": cannot open (" +
                         std::strerror(errno) + ")");
    }
    struct stat st {
    };
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw InputError(escapeText(path, EscapeFor::Terminal) + ": not a regular file");
    }
    if (static_cast<std::size_t>(st.st_size) > max) {
        ::close(fd);
        throw InputError(escapeText(path, EscapeFor::Terminal) + ": larger than " +
                         std::to_string(max) + " bytes");
    }
    std::string text;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ::close(fd);
            throw InputError(escapeText(path, EscapeFor::Terminal) + ": cannot read");
        }
        if (n == 0)
            break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > max) {
            ::close(fd);
            throw InputError(escapeText(path, EscapeFor::Terminal) + ": larger than " +
                             std::to_string(max) + " bytes");
        }
    }
    ::close(fd);
    return text;
}

// Owner - the rc file's owner: whose mailbox the old tool delivered to.
struct Owner {
    std::string login;
    std::string home;
};
Owner ownerOf(const std::string& path)
{
    struct stat st {
    };
    if (::stat(path.c_str(), &st) != 0)
        return {};
    if (const passwd* pw = ::getpwuid(st.st_uid))
        return {pw->pw_name, pw->pw_dir};
    return {};
}

std::string directoryOf(const std::string& file)
{
    Poco::Path p(file);
    p.makeAbsolute();
    return p.parent().toString();
}

// expandHome - "~/x" under home; anything else as it is.
std::string expandHome(const std::string& path, const std::string& home)
{
    if (path.size() >= 2 && path[0] == '~' && path[1] == '/' && !home.empty())
        return home + path.substr(1);
    return path;
}

// Planned - one entry of the file, what the import makes of it.
struct Planned {
    ImportEntry entry;
    Account account;
    bool create = false;
    std::string reason;                 ///< why not created
    std::vector<ImportSetting> derived; ///< settings the importer added (recipient)
    std::string uidlFile;
    bool uidlFound = false;
    std::vector<std::string> uidls; ///< ledger keys
    std::size_t unreadable = 0;
};

struct Options {
    std::string tool;
    std::vector<std::string> files;
    std::string idFile, getmailDir, uidls, deliverTo, localDomains, name;
    bool apply = false, noUidls = false, json = false;
};

// UidlSource - loads the old tool's record for a planned account.
void loadUidls(const Options& o, const ImportParse& parse, const Owner& owner, Planned& p)
{
    const ImportEntry& e = p.entry;
    std::vector<std::string> found;
    if (o.tool == "fetchmail") {
        p.uidlFile = !o.idFile.empty()       ? o.idFile
                     : !parse.idFile.empty() ? expandHome(parse.idFile, owner.home)
                                             : directoryOf(e.file) + ".fetchids";
        const auto text = readBounded(p.uidlFile, kImportMaxUidlBytes);
        if (!text)
            return;
        p.uidlFound = true;
        for (const auto& list : parseFetchmailIds(*text, &p.unreadable))
            if (list.user == e.user &&
                (Poco::icompare(list.host, e.server) == 0 ||
                 (e.setting("server") && Poco::icompare(list.host, *e.setting("server")) == 0)))
                found.insert(found.end(), list.uidls.begin(), list.uidls.end());
    } else if (o.tool == "getmail") {
        const std::string dir = !o.getmailDir.empty() ? o.getmailDir : directoryOf(e.file);
        p.uidlFile = Poco::Path(Poco::Path(dir).makeDirectory(),
                                getmailOldmailName(e.server, e.port, e.user))
                         .toString();
        const auto text = readBounded(p.uidlFile, kImportMaxUidlBytes);
        if (!text)
            return;
        p.uidlFound = true;
        found = parseGetmailOldmail(*text, &p.unreadable);
    } else {
        std::string file = !o.uidls.empty()      ? o.uidls
                           : !e.uidlFile.empty() ? e.uidlFile
                                                 : "~/.mpop_uidls/%U_at_%H";
        std::string expanded;
        for (std::size_t i = 0; i < file.size(); ++i) {
            if (file[i] == '%' && i + 1 < file.size() &&
                (file[i + 1] == 'U' || file[i + 1] == 'H')) {
                expanded += file[i + 1] == 'U' ? e.user : e.server;
                ++i;
            } else
                expanded += file[i];
        }
        p.uidlFile = expandHome(expanded, owner.home);
        const auto text = readBounded(p.uidlFile, kImportMaxUidlBytes);
        if (!text)
            return;
        p.uidlFound = true;
        for (const auto& list : parseMpopUidls(*text, &p.unreadable))
            if (list.user == e.user && Poco::icompare(list.host, e.server) == 0)
                found.insert(found.end(), list.uidls.begin(), list.uidls.end());
    }
    std::set<std::string> seen;
    for (const auto& u : found) {
        if (!validPop3Uid(u)) {
            ++p.unreadable;
            continue;
        }
        const std::string key = pop3UidKey(u);
        if (seen.insert(key).second)
            p.uidls.push_back(key);
    }
}

// plan - what the import makes of one entry: the account, or why it is not created.
Planned plan(Context& ctx, const Options& o, const ImportParse& parse, const ImportEntry& e,
             std::size_t importable, std::set<std::string>& names)
{
    Planned p;
    p.entry = e;
    if (!e.skipped.empty()) {
        p.reason = e.skipped;
        return p;
    }
    Account& a = p.account;
    if (!o.name.empty() && importable == 1) {
        a.name = o.name;
    } else if (o.tool == "mpop") {
        // an mpop account has a name of its own: kept where popgate allows it
        for (char c : e.label.substr(std::min<std::size_t>(8, e.label.size())))
            a.name +=
                std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'
                    ? c
                    : '_';
        a.name = a.name.substr(0, 64);
    } else {
        a.name = importAccountName(e.user, e.server);
    }
    if (!isValidName(a.name)) {
        p.reason = "no usable account name (give --name)";
        return p;
    }
    for (const auto& s : e.settings) {
        try {
            setAccountField(a, s.field, s.value);
        } catch (const InputError& err) {
            p.entry.notes.push_back(
                {e.file, s.line, s.option, std::string("not mapped: ") + err.what()});
        }
    }
    const Owner owner = ownerOf(e.file);
    const bool domainMailbox = e.setting("recipients") == std::string("envelope");
    if (domainMailbox && !e.setting("local-domains") && !e.setting("recipient-map")) {
        // getmail never names the local domains, fetchmail not always: never guessed
        if (o.localDomains.empty()) {
            p.reason = "a domain mailbox (recipients envelope) whose file names no local "
                       "domains: give --local-domains=DOMAIN[,DOMAIN...]";
            return p;
        }
        try {
            setAccountField(a, "local-domains", o.localDomains);
            p.derived.push_back({"local-domains", o.localDomains, 0, "--local-domains"});
        } catch (const InputError& err) {
            p.reason = std::string("--local-domains: ") + err.what();
            return p;
        }
    }
    if (!e.hasRecipient && !domainMailbox) {
        ImportSetting s;
        s.field = "deliver-to";
        s.line = 0;
        if (!o.deliverTo.empty()) {
            s.value = o.deliverTo;
            s.option = "--deliver-to";
        } else {
            s.value = owner.login;
            s.option = "the owner of the file (" + o.tool + " delivered to that user)";
        }
        try {
            setAccountField(a, "deliver-to", s.value);
            p.derived.push_back(s);
        } catch (const InputError& err) {
            p.entry.notes.push_back(
                {e.file, 0, s.option, std::string("not mapped: ") + err.what()});
        }
    }
    Account probe = a;
    probe.sealedSecret = e.password ? "set" : "";
    const AccountCheck check = validateAccount(probe);
    if (!check.ok()) {
        p.reason = check.errors[0].field + ": " + check.errors[0].message;
        return p;
    }
    if (!names.insert(a.name).second) {
        p.reason = "another entry of the import has the name '" + a.name + "' (give --name)";
        return p;
    }
    if (ctx.store().account(a.name)) {
        p.reason = "an account of that name exists already";
        return p;
    }
    if (!o.noUidls)
        loadUidls(o, parse, owner, p);
    // The SMTP host: popgate's is reinject.host for every account; say which.
    const std::string relay =
        ctx.config.str("reinject.host") + ":" + std::to_string(ctx.config.integer("reinject.port"));
    for (auto& n : p.entry.notes) {
        if (n.option.rfind("smtphost ", 0) != 0)
            continue;
        const std::string host = n.option.substr(9, n.option.find_first_of("/:", 9) - 9);
        const bool local = host == "localhost" || host == "127.0.0.1" || host == "::1" ||
                           host == ctx.config.str("reinject.host");
        n.why = (local ? "not needed: popgate hands every message to the local MTA at "
                       : "not mapped: popgate hands every message to the local MTA at ") +
                relay + " (reinject.host, reinject.port in popgate.conf)";
    }
    std::stable_sort(p.entry.notes.begin(), p.entry.notes.end(),
                     [](const ImportNote& x, const ImportNote& y) { return x.line < y.line; });
    p.create = true;
    return p;
}

std::string where(const std::string& file, int line)
{
    return escapeText(file, EscapeFor::Terminal) + (line > 0 ? ":" + std::to_string(line) : "");
}

Poco::JSON::Object::Ptr noteJson(const ImportNote& n)
{
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("file", n.file);
    o->set("line", n.line);
    o->set("option", n.option);
    o->set("why", n.why);
    return o;
}

Poco::JSON::Object::Ptr plannedJson(const Planned& p, bool applied)
{
    Poco::JSON::Object::Ptr o = new Poco::JSON::Object(true);
    o->set("name", p.create ? p.account.name : std::string());
    o->set("file", p.entry.file);
    o->set("line", p.entry.line);
    o->set("entry", p.entry.label);
    o->set("action", p.create ? (applied ? "created" : "create") : "skip");
    o->set("reason", p.reason);
    Poco::JSON::Array::Ptr mapped = new Poco::JSON::Array;
    auto add = [&](const ImportSetting& s, const std::string& file) {
        Poco::JSON::Object::Ptr m = new Poco::JSON::Object(true);
        m->set("field", s.field);
        m->set("value", s.value);
        m->set("file", file);
        m->set("line", s.line);
        m->set("option", s.option);
        mapped->add(m);
    };
    for (const auto& s : p.entry.settings)
        add(s, p.entry.file);
    for (const auto& s : p.derived)
        add(s, "");
    o->set("mapped", mapped);
    o->set("password_set", p.entry.password.has_value());
    if (p.create) {
        Poco::JSON::Object::Ptr fields = new Poco::JSON::Object(true);
        for (const auto& f : accountFields())
            fields->set(f.name, f.get(p.account));
        o->set("fields", fields);
        Poco::JSON::Object::Ptr u = new Poco::JSON::Object(true);
        u->set("file", p.uidlFile);
        u->set("found", p.uidlFound);
        u->set("count", p.uidls.size());
        u->set("unreadable", p.unreadable);
        o->set("uidls", u);
    }
    Poco::JSON::Array::Ptr notes = new Poco::JSON::Array;
    for (const auto& n : p.entry.notes)
        notes->add(noteJson(n));
    o->set("not_mapped", notes);
    return o;
}

void printPlanned(std::ostream& out, const Options& o, const Planned& p, bool applied)
{
    const std::string from = where(p.entry.file, p.entry.line) + " (" +
                             escapeText(p.entry.label, EscapeFor::Terminal) + ")";
    if (!p.create) {
        out << "skipped " << from << ": " << escapeText(p.reason, EscapeFor::Terminal) << "\n";
    } else {
        out << "account '" << p.account.name << "' from " << from << ": "
            << (applied ? "created" : "would be created") << "\n";
        for (const auto& f : accountFields()) {
            std::string source;
            for (auto it = p.entry.settings.rbegin(); it != p.entry.settings.rend(); ++it)
                if (it->field == f.name) {
                    source = "line " + std::to_string(it->line) + " " +
                             escapeText(it->option, EscapeFor::Terminal);
                    break;
                }
            for (const auto& d : p.derived)
                if (d.field == f.name)
                    source = escapeText(d.option, EscapeFor::Terminal);
            std::string row = std::string("  ") + f.name + " = " +
                              escapeText(f.get(p.account), EscapeFor::Terminal);
            if (!source.empty())
                row += std::string(row.size() < 40 ? 40 - row.size() : 1, ' ') + "(" + source + ")";
            out << row << "\n";
            if (std::string(f.name) == "user")
                out << "  password = (set, sealed when stored)\n";
        }
        if (o.noUidls)
            out << "  fetched UIDLs: not loaded (--no-uidls): the first poll fetches every message "
                   "on the server\n";
        else if (!p.uidlFound)
            out << "  fetched UIDLs: none: " << escapeText(p.uidlFile, EscapeFor::Terminal)
                << " does not exist\n";
        else
            out << "  fetched UIDLs: " << p.uidls.size() << " from "
                << escapeText(p.uidlFile, EscapeFor::Terminal)
                << " (recorded as delivered; the first poll fetches only other messages)"
                << (p.unreadable
                        ? ", " + std::to_string(p.unreadable) + " unreadable line(s) left out"
                        : std::string())
                << "\n";
    }
    for (const auto& n : p.entry.notes)
        out << "  " << where(n.file, n.line) << ": " << escapeText(n.option, EscapeFor::Terminal)
            << ": " << escapeText(n.why, EscapeFor::Terminal) << "\n";
}

// store - the account and its imported ledger rows in one transaction, so that
// popgated never sees the account without its record of fetched mail.
void store(Context& ctx, const Options& o, Planned& p)
{
    Store& st = ctx.store();
    p.account.sealedSecret = ctx.secrets().seal(*p.entry.password);
    Transaction tx(st.session());
    st.addAccount(p.account);
    MessageStore ms(st);
    std::vector<MessageRecord> rows(p.uidls.size());
    std::vector<MessageRecord*> ptrs;
    ptrs.reserve(rows.size());
    const std::string reason = "imported from " + o.tool + " (" + p.uidlFile + "): fetched by " +
                               o.tool + " before popgate, not delivered again";
    for (std::size_t i = 0; i < rows.size(); ++i) {
        rows[i].accountId = p.account.id;
        rows[i].uidl = p.uidls[i];
        // The old tool handed these to the MTA: "injected" is the ledger's state
        // for "never hand over again"; the reason says who delivered them.
        rows[i].state = MessageState::Injected;
        rows[i].reason = reason;
        ptrs.push_back(&rows[i]);
    }
    ms.saveMany(ptrs);
    LogEntry e;
    e.account = p.account.name;
    e.status = "imported";
    e.detail = "account imported from " + o.tool + " " + p.entry.file + ":" +
               std::to_string(p.entry.line) + " with " + std::to_string(p.uidls.size()) +
               " fetched UIDL(s) from " + (p.uidlFound ? p.uidlFile : std::string("nowhere"));
    ms.log(e);
    tx.commit();
}

Options parseOptions(const std::vector<std::string>& args)
{
    OptionSet opts;
    opts.addOption(Option("idfile", "", "fetchmail's UIDL file").argument("FILE"));
    opts.addOption(Option("getmaildir", "", "getmail's directory").argument("DIR"));
    opts.addOption(Option("uidls", "", "mpop's UIDL file").argument("FILE"));
    opts.addOption(
        Option("deliver-to", "", "recipient where the file names none").argument("ADDR"));
    opts.addOption(
        Option("local-domains", "", "local-domains of a domain mailbox whose file names none")
            .argument("LIST"));
    opts.addOption(Option("name", "", "the account name (one account only)").argument("NAME"));
    opts.addOption(Option("no-uidls", "", "do not load the record of fetched UIDLs"));
    opts.addOption(Option("apply", "", "store the accounts"));
    opts.addOption(Option("json", "", "JSON output"));
    const ParsedArgs parsed = parseArgs(args, opts);
    Options o;
    if (parsed.positional.size() < 2)
        throw InputError(kUsage);
    o.tool = parsed.positional[0];
    if (o.tool != "fetchmail" && o.tool != "getmail" && o.tool != "mpop")
        throw InputError("unknown tool '" + flatten(o.tool).substr(0, 40) + "'; " + kUsage);
    o.files.assign(parsed.positional.begin() + 1, parsed.positional.end());
    if (o.tool != "getmail" && o.files.size() != 1)
        throw InputError(o.tool + ": one RCFILE; " + kUsage);
    auto opt = [&](const char* name) {
        return parsed.has(name) ? parsed.options.at(name) : std::string();
    };
    o.idFile = opt("idfile");
    o.getmailDir = opt("getmaildir");
    o.uidls = opt("uidls");
    o.deliverTo = opt("deliver-to");
    o.localDomains = opt("local-domains");
    o.name = opt("name");
    o.apply = parsed.has("apply");
    o.noUidls = parsed.has("no-uidls");
    o.json = parsed.has("json");
    if ((!o.idFile.empty() && o.tool != "fetchmail") ||
        (!o.getmailDir.empty() && o.tool != "getmail") || (!o.uidls.empty() && o.tool != "mpop"))
        throw InputError("--idfile is for fetchmail, --getmaildir for getmail, --uidls for mpop; " +
                         std::string(kUsage));
    if (!o.name.empty() && !isValidName(o.name))
        throw InputError("--name: must be 1-64 characters of A-Z a-z 0-9 . _ -");
    return o;
}

} // namespace

int importCommand(Context& ctx, const std::vector<std::string>& args)
{
    const Options o = parseOptions(args);
    const bool json = ctx.json || o.json;
    std::vector<ImportParse> parses;
    for (const auto& file : o.files) {
        const auto text = readBounded(file, kImportMaxRcBytes);
        if (!text)
            throw InputError(escapeText(file, EscapeFor::Terminal) + ": no such file");
        parses.push_back(o.tool == "fetchmail" ? parseFetchmailRc(*text, file)
                         : o.tool == "getmail" ? parseGetmailRc(*text, file)
                                               : parseMpopRc(*text, file));
    }
    std::size_t importable = 0;
    for (const auto& parse : parses)
        for (const auto& e : parse.entries)
            importable += e.skipped.empty() ? 1 : 0;
    if (!o.name.empty() && importable != 1)
        throw InputError("--name: the files declare " + std::to_string(importable) +
                         " accounts; --name names one");
    std::vector<Planned> planned;
    std::set<std::string> names;
    for (const auto& parse : parses)
        for (const auto& e : parse.entries)
            planned.push_back(plan(ctx, o, parse, e, importable, names));

    // A kept mailbox without its record would be delivered a second time.
    if (o.apply)
        for (const auto& p : planned)
            if (p.create && p.account.keepOnServer && !p.uidlFound && !o.noUidls)
                throw InputError(
                    "account '" + p.account.name + "': keeps mail on the server, and " +
                    escapeText(p.uidlFile, EscapeFor::Terminal) + " (the record of what " + o.tool +
                    " fetched) does not exist: every kept message would be delivered again. "
                    "Name the file (" +
                    (o.tool == "fetchmail" ? "--idfile"
                     : o.tool == "getmail" ? "--getmaildir"
                                           : "--uidls") +
                    "), or give --no-uidls to accept that; nothing was stored");
    std::size_t created = 0;
    if (o.apply)
        for (auto& p : planned)
            if (p.create) {
                store(ctx, o, p);
                ++created;
            }

    if (json) {
        Poco::JSON::Object out(true);
        out.set("tool", o.tool);
        out.set("applied", o.apply);
        Poco::JSON::Array::Ptr accounts = new Poco::JSON::Array;
        for (const auto& p : planned)
            accounts->add(plannedJson(p, o.apply));
        out.set("accounts", accounts);
        Poco::JSON::Array::Ptr notes = new Poco::JSON::Array;
        for (const auto& parse : parses)
            for (const auto& n : parse.notes)
                notes->add(noteJson(n));
        out.set("not_mapped", notes);
        printJson(*ctx.out, out);
        *ctx.out << "\n";
        return 0;
    }
    auto& out = *ctx.out;
    for (const auto& parse : parses)
        for (const auto& n : parse.notes)
            out << where(n.file, n.line) << ": " << escapeText(n.option, EscapeFor::Terminal)
                << ": " << escapeText(n.why, EscapeFor::Terminal) << "\n";
    for (const auto& p : planned)
        printPlanned(out, o, p, o.apply);
    if (o.apply)
        out << created << " account(s) created\n";
    else
        out << "dry run: nothing stored; run again with --apply to create "
            << std::count_if(planned.begin(), planned.end(),
                             [](const Planned& p) { return p.create; })
            << " account(s)\n";
    return 0;
}

} // namespace popgate::cli
