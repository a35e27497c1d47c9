// popgatectl - the admin CLI: accounts, database schema, configuration.
//
// Runs as: root or a member of the popgate-admin group (the "admin" role of
// the reference page); anyone else is refused before the database is opened.
// Reads: popgate.conf, accounts.d/*.conf, the secret files they name (only
// inside secrets_dir, after their owner and mode were checked), the secret key file.
// Writes: the account database (SQLite file or PostgreSQL), the secret key
// file when it does not exist yet. Talks to: the database only.
// Exit status: 0 done, 1 the operation failed or the verdict is negative, 2 bad
// usage or bad input; the special codes (account test, filter test) in popgatectl(8).
#include "core/dbdrivers.h"
#include "core/errors.h"
#include "core/keyvalue.h"
#include "core/provisioning.h"
#include "core/text.h"
#include "popgatectl/cli.h"
#include "popgatectl/import.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/Util/Application.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionException.h>
#include <Poco/Util/OptionSet.h>
#include <grp.h>
#include <iostream>
#include <unistd.h>

using Poco::Util::Application;
using Poco::Util::Option;
using Poco::Util::OptionSet;

namespace popgate::cli
{

namespace
{

const char* const kAdminGroup = "popgate-admin";

const char* const kCommands =
    "commands:\n"
    "  account add NAME --server=HOST [--FIELD=VALUE ...] [--password-stdin|--password-file=F]\n"
    "  account add NAME                 on a terminal: the account form\n"
    "  account list [--json] | show NAME [--json]\n"
    "  account set NAME --FIELD=VALUE ... | enable NAME | disable NAME | remove NAME\n"
    "  account test NAME [--deep] [--json]\n"
    "    Test Connection (exit 0 ok; 10-16 the failing stage; 17 MTA)\n"
    "  filter add NAME [--direction=inbound|outbound] [--default=yes|no] [--active=yes|no]\n"
    "    [--description=TEXT] | filter list [--json] | show NAME [--json] | set NAME ... | remove "
    "NAME\n"
    "  filter attach|detach SYSTEMFILTER ADDRESSFILTER\n"
    "    (stopping the active inbound default from filtering needs --force: remove, set, detach,\n"
    "    address set --active=no)\n"
    "  filter address add NAME --type=allow|deny [--domains=a.com,*.b.com] [--exceptions=X,...]\n"
    "    [--active=yes|no] | filter address set NAME [--add-domain=X] [--remove-domain=X]\n"
    "    [--add-exception=X] [--remove-exception=X] [--type=T] [--active=B] | list | show | "
    "remove\n"
    "  filter test [NAME | --account=ACCOUNT] --from=ADDR [--envelope=ADDR]\n"
    "    [--json] (exit 0 allowed, 1 blocked, 2 bad input, 3 failed: no verdict)\n"
    "  message list [--account=A] [--state=S] [--since=WHEN] [--limit=N]\n"
    "    (oldest first, with each message's age)\n"
    "  message show ID [--body] | delete ID | purge --older-than=AGE [--account=A]\n"
    "  message release ID [--force] | message retry ID|--account=A\n"
    "  log [--account=A] [--since=2h] [--state=S] [--limit=N] [--follow] [--json]\n"
    "    (the message log; --follow: new lines until Ctrl-C)\n"
    "  status [NAME] [--long] [--json]  is popgated running, receiving, accounts\n"
    "    (failing first; NAME or --long: each account's detail)\n"
    "  receiving [on|off] [--json]      off: no popgated host polls anything\n"
    "  hosts [--json]                   PostgreSQL: the popgated hosts, heartbeat, version, "
    "accounts held\n"
    "  db migrate | db status [--json]\n"
    "  config check [--json] | config apply [--json] | config sample\n"
    "  oauth profile add|set NAME [--provider=generic|google|microsoft] [--client-id=ID]\n"
    "    [--client-secret-stdin|--client-secret-file=F] [--auth-url=U] [--token-url=U] "
    "[--device-url=U]\n"
    "    [--scope=S] [--tenant=T] [--grant=authorization_code|device_code|client_credentials]\n"
    "  oauth profile list [--json] | show NAME [--json] | remove NAME\n"
    "  oauth status [ACCOUNT] [--json]  token state of OAuth accounts (never the tokens)\n"
    "  account authorize NAME [--timeout=10m]  obtain and store an OAuth account's tokens\n"
    "  import fetchmail RCFILE [--idfile=FILE] | import getmail RCFILE... [--getmaildir=DIR]\n"
    "    | import mpop RCFILE [--uidls=FILE]  [--apply] [--deliver-to=ADDR] [--name=NAME]\n"
    "    [--no-uidls] [--json]  (a dry run without --apply)\n"
    "account fields: type auth server port user security filter active debug-logging mailbox\n"
    "  deliver-to poll-interval keep-on-server max-message-size tls-ca-file tls-pin\n"
    "  auth-mechanism plaintext-auth tls-min-version oauth-profile\n";

// isAdmin - root, or popgate-admin among the process's groups.
bool isAdmin()
{
    if (::geteuid() == 0)
        return true;
    const group* g = ::getgrnam(kAdminGroup);
    if (!g)
        return false;
    if (::getegid() == g->gr_gid)
        return true;
    const int n = ::getgroups(0, nullptr);
    std::vector<gid_t> groups(n > 0 ? n : 0);
    if (n > 0 && ::getgroups(n, groups.data()) == n)
        for (gid_t gid : groups)
            if (gid == g->gr_gid)
                return true;
    return false;
}

// withJson - the positional arguments; a --json among them sets ctx.json, any
// other option is an InputError (exit 2) naming it.
std::vector<std::string> withJson(Context& ctx, const std::vector<std::string>& rest)
{
    OptionSet options;
    options.addOption(Option("json", "", "JSON output"));
    const ParsedArgs parsed = parseArgs(rest, options);
    ctx.json = ctx.json || parsed.has("json");
    return parsed.positional;
}

int dbCommand(Context& ctx, const std::vector<std::string>& rest)
{
    const std::vector<std::string> args = withJson(ctx, rest);
    if (args.size() != 1)
        throw InputError("usage: popgatectl db migrate|status [--json]");
    if (args[0] == "migrate") {
        Store& store = ctx.openStore(Store::Open::CreateFile);
        const auto applied = store.migrate();
        for (const auto& name : applied)
            *ctx.out << "applied " << name << "\n";
        *ctx.out << "database " << store.describe() << ": schema version " << store.schemaVersion()
                 << (applied.empty() ? " (already current)" : "") << "\n";
        return 0;
    }
    if (args[0] == "status") {
        Store& store = ctx.openStore();
        const int version = store.schemaVersion();
        const int latest = store.latestVersion();
        if (ctx.json) {
            Poco::JSON::Object o(true);
            o.set("database", store.describe());
            o.set("schema_version", version);
            o.set("needed", latest);
            o.set("status", version == latest  ? "current"
                            : version < latest ? "needs migrate"
                                               : "newer than this popgate");
            printJson(*ctx.out, o);
            *ctx.out << "\n";
            return version == latest ? 0 : 1;
        }
        *ctx.out << "database: " << store.describe() << "\n"
                 << "schema version: " << version << "\n"
                 << "this popgate needs: " << latest << "\n";
        if (version == latest) {
            *ctx.out << "status: current\n";
            return 0;
        }
        *ctx.out << "status: "
                 << (version < latest ? "needs `popgatectl db migrate`" : "newer than this popgate")
                 << "\n";
        return 1;
    }
    throw InputError("unknown command 'db " + flatten(args[0]).substr(0, 40) +
                     "'; usage: popgatectl db migrate|status");
}

int configCommand(Context& ctx, const std::vector<std::string>& rest)
{
    const std::vector<std::string> args = withJson(ctx, rest);
    if (args.size() != 1)
        throw InputError("usage: popgatectl config check|apply|sample [--json]");
    if (args[0] == "sample") {
        *ctx.out << sampleConfig();
        return 0;
    }
    if (args[0] == "check") {
        const auto declared = loadProvisioned(ctx.config);
        // Filter and OAuth profile names live in the database: checked when it
        // can be opened, and said so when it cannot.
        Store* store = nullptr;
        try {
            store = &ctx.store();
        } catch (const OperationError& e) {
            *ctx.err << "popgatectl: warning: filter and oauth-profile names not checked: "
                     << e.what() << "\n";
        }
        if (store) {
            requireReferences(*store, declared);
            std::vector<std::string> broken;
            for (const auto& b : brokenAccounts(*store))
                broken.push_back(b + " (the account is not fetched until this is fixed)");
            throwProblems(broken);
        }
        if (ctx.json) {
            Poco::JSON::Object o(true);
            o.set("ok", true);
            o.set("configuration", ctx.config.origin());
            o.set("accounts_dir", ctx.config.str("accounts_dir"));
            o.set("provisioned_accounts", declared.size());
            o.set("database_checked", store != nullptr);
            printJson(*ctx.out, o);
            *ctx.out << "\n";
            return 0;
        }
        *ctx.out << "configuration OK: " << ctx.config.origin() << ", " << declared.size()
                 << " provisioned account(s) in " << ctx.config.str("accounts_dir") << "\n";
        return 0;
    }
    if (args[0] == "apply") {
        const auto declared = loadProvisioned(ctx.config);
        const ProvisionReport r = applyProvisioned(ctx.store(), ctx.secrets(), declared);
        if (ctx.json) {
            Poco::JSON::Object o(true);
            auto names = [](const std::vector<std::string>& list) {
                Poco::JSON::Array::Ptr a = new Poco::JSON::Array;
                for (const auto& n : list)
                    a->add(n);
                return a;
            };
            o.set("added", names(r.added));
            o.set("updated", names(r.updated));
            o.set("unchanged", names(r.unchanged));
            o.set("deactivated", names(r.deactivated));
            printJson(*ctx.out, o);
            *ctx.out << "\n";
            return 0;
        }
        auto print = [&](const char* what, const std::vector<std::string>& names) {
            for (const auto& n : names)
                *ctx.out << "account '" << n << "' " << what << "\n";
        };
        print("added", r.added);
        print("updated", r.updated);
        print("unchanged", r.unchanged);
        print("deactivated (its file is gone)", r.deactivated);
        return 0;
    }
    throw InputError("unknown command 'config " + flatten(args[0]).substr(0, 40) +
                     "'; usage: popgatectl config check|apply|sample");
}

} // namespace

class PopgateCtl : public Application
{
public:
    explicit PopgateCtl(std::vector<std::string> command) : command_(std::move(command))
    {
        setUnixOptions(true);
    }

protected:
    void defineOptions(OptionSet& options) override
    {
        options.addOption(Option("help", "h", "show this help and exit"));
        options.addOption(Option("version", "V", "show the version and exit"));
        options.addOption(Option("config", "c",
                                 "configuration file (default " + std::string(kDefaultConfigPath) +
                                     ", or $POPGATE_CONFIG)")
                              .argument("FILE"));
        options.addOption(Option("json", "j", "JSON output (every command that prints data)"));
    }

    void handleOption(const std::string& name, const std::string& value) override
    {
        if (name == "help")
            help_ = true;
        else if (name == "version")
            version_ = true;
        else if (name == "config")
            configPath_ = value;
        else if (name == "json")
            json_ = true;
    }

    // main - Poco's run() would turn an exception into exit 70: map them here.
    int main(const std::vector<std::string>&) override
    {
        try {
            return dispatch();
        } catch (const InputError& e) {
            std::cerr << "popgatectl: " << e.what() << "\n";
            return 2;
        } catch (const OperationError& e) {
            std::cerr << "popgatectl: " << e.what() << "\n";
            return 1;
        } catch (const Poco::Exception& e) {
            std::cerr << "popgatectl: " << flatten(e.displayText()) << "\n";
            return 1;
        } catch (const std::exception& e) {
            std::cerr << "popgatectl: " << e.what() << "\n";
            return 1;
        }
    }

private:
    int dispatch()
    {
        if (help_ || (command_.empty() && !version_)) {
            Poco::Util::HelpFormatter help(options());
            help.setCommand("popgatectl");
            help.setUsage("[--config=FILE] [--json] COMMAND ...");
            help.setHeader("Administer popgate: email accounts, database, configuration.");
            help.setFooter(kCommands);
            help.format(std::cout);
            return help_ ? 0 : 2;
        }
        if (version_) {
            std::cout << "popgatectl " << POPGATE_VERSION << "\n";
            return 0;
        }
        if (!isAdmin()) {
            std::cerr << "popgatectl: permission denied: the admin role is required (run as root, "
                         "or as a member of the "
                      << kAdminGroup << " group, and of popgate-db for the database: adduser NAME "
                      << kAdminGroup << "; adduser NAME popgate-db)\n";
            return 1;
        }
        Context ctx;
        ctx.out = &std::cout;
        ctx.err = &std::cerr;
        ctx.json = json_;
        ctx.config = Config::resolve(configPath_);
        registerDatabaseDrivers();
        const std::string noun = command_[0];
        const std::vector<std::string> rest(command_.begin() + 1, command_.end());
        if (noun == "account")
            return accountCommand(ctx, rest);
        if (noun == "filter")
            return filterCommand(ctx, rest);
        if (noun == "db")
            return dbCommand(ctx, rest);
        if (noun == "message")
            return messageCommand(ctx, rest);
        if (noun == "log")
            return logCommand(ctx, rest);
        if (noun == "status")
            return statusCommand(ctx, rest);
        if (noun == "hosts")
            return hostsCommand(ctx, rest);
        if (noun == "receiving")
            return receivingCommand(ctx, rest);
        if (noun == "config")
            return configCommand(ctx, rest);
        if (noun == "oauth")
            return oauthCommand(ctx, rest);
        if (noun == "import")
            return importCommand(ctx, rest);
        throw InputError("unknown command '" + flatten(noun).substr(0, 40) +
                         "' (see popgatectl --help)");
    }

    std::vector<std::string> command_;
    std::string configPath_;
    bool help_ = false, version_ = false, json_ = false;
};

} // namespace popgate::cli

int main(int argc, char** argv)
{
    // Global options come before the command; everything from the command
    // word on belongs to the command and is parsed by it.
    std::vector<std::string> global{argv[0]}, command;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (!command.empty() || arg.empty() || arg[0] != '-') {
            command.push_back(arg);
        } else {
            global.push_back(arg);
            if ((arg == "--config" || arg == "-c") && i + 1 < argc)
                global.push_back(argv[++i]);
        }
    }
    try {
        popgate::cli::PopgateCtl app(command);
        app.init(global);
        return app.run();
    } catch (const popgate::InputError& e) {
        std::cerr << "popgatectl: " << e.what() << "\n";
        return 2;
    } catch (const popgate::OperationError& e) {
        std::cerr << "popgatectl: " << e.what() << "\n";
        return 1;
    } catch (const Poco::Util::OptionException& e) {
        std::cerr << "popgatectl: " << popgate::flatten(e.displayText())
                  << " (see popgatectl --help)\n";
        return 2;
    } catch (const Poco::Exception& e) {
        std::cerr << "popgatectl: " << popgate::flatten(e.displayText()) << "\n";
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "popgatectl: " << e.what() << "\n";
        return 1;
    }
}
