// fetch_support.h - what the popgated end-to-end suites share: the test
// Dovecot and Postfix from the environment (a missing one fails the test),
// dropping messages into Dovecot's maildir, reading what Postfix delivered,
// a popgate instance in a TempDir driven through the real popgatectl and
// popgated binaries, its ledger read with the sqlite3 CLI, and its log lines.
// Must not depend on popgated's internals: only on what an operator can see.
#pragma once

#include "tests/support/testsupport.h"

#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <sys/types.h>
#include <vector>

namespace popgate::test
{

/// Servers - the Dovecot and Postfix of scripts/servers/ as seen from the environment.
struct Servers {
    Servers();
    std::string dovecotHost;
    int pop3sPort = 0;
    std::string ca;
    std::string user, user2, password;
    std::string maildir, maildir2; ///< Dovecot's, for user and user2
    int reinjectPort = 0;
    std::string postfixMaildir; ///< one maildir per local part below it
    std::string postfixLog;
    std::string postfixConfigDir;
};

/// uniqueAddress - a local address nobody else uses: "ft<pid>-<tag>-<n>@popgate.test".
std::string uniqueAddress(const std::string& tag);
/// localPart - "a" of "a@b".
std::string localPart(const std::string& address);

// ---- Dovecot side -----------------------------------------------------------

/// clearMaildir - removes every message from a Dovecot maildir (new/ and cur/).
void clearMaildir(const std::string& maildir);
/// dropMessage - bytes into maildir/new through tmp/, owned by nobody (Dovecot's
/// mail user); returns the file name. Names sort in the order of the calls.
std::string dropMessage(const std::string& maildir, const std::string& bytes);
/// dropGenerated - as dropMessage, the content written in pieces by write.
std::string dropGenerated(const std::string& maildir,
                          const std::function<void(std::ostream&)>& write);
/// countMessages - messages in a Dovecot maildir (new/ and cur/).
int countMessages(const std::string& maildir);

/// EmptyMailboxes - empties the given maildirs now and again when it goes.
class EmptyMailboxes
{
public:
    explicit EmptyMailboxes(std::vector<std::string> maildirs);
    ~EmptyMailboxes();
    EmptyMailboxes(const EmptyMailboxes&) = delete;
    EmptyMailboxes& operator=(const EmptyMailboxes&) = delete;

private:
    std::vector<std::string> maildirs_;
};

// ---- Postfix side -----------------------------------------------------------

/// Delivered - one message in Postfix's maildir (LF line ends, as Postfix writes).
struct Delivered {
    std::string file;
    std::string text;
    std::string head;                                        ///< up to the blank line, without it
    std::string body;                                        ///< after the blank line
    std::vector<std::pair<std::string, std::string>> fields; ///< unfolded, names as written
    /// all - values of every field with that name (case-insensitive), in order.
    std::vector<std::string> all(const std::string& name) const;
    /// first - the first value, "" when absent.
    std::string first(const std::string& name) const;
};

/// settle - waits (up to 30 s) until Postfix's queue holds nothing for our addresses.
void settle();
/// delivered - what Postfix delivered to address, oldest first (after settle()).
std::vector<Delivered> delivered(const std::string& address);
/// deliveredCount - the number of files in address's maildir (new/ and cur/).
int deliveredCount(const std::string& address);
/// maillogHas - Postfix's log mentions "QUEUEID:" (waits up to 5 s for postlogd).
bool maillogHas(const std::string& queueId);

/// toLf - CRLF made LF (a lone CR or LF stays): what Postfix's maildir delivery writes.
std::string toLf(const std::string& text);
/// bodyOf - the part of a CRLF message after its first blank line ("" when none).
std::string bodyOf(const std::string& crlfMessage);
/// message - a CRLF message from header lines and a body.
std::string message(const std::vector<std::string>& headers, const std::string& body);

// ---- popgated's log ---------------------------------------------------------

/// LogLine - one line of popgated's stderr log with its key=value words.
struct LogLine {
    std::string text;
    std::map<std::string, std::string>
        fields; ///< account, uidl, message-id, status, relay, queue-id, ...
    std::string get(const std::string& key) const;
};
/// messageLines - the per-message lines (those with status=) of a log.
std::vector<LogLine> messageLines(const std::string& log);

// ---- a popgate instance -------------------------------------------------------

struct LedgerRow {
    std::string account, uidl, state, messageId, queueId, reason;
    bool deleted = false;
    long long retryAt = 0;
    int attempts = 0;
};

/// Gateway - popgate.conf, database, keys, spool and debug logs in a TempDir,
/// reinjecting into the test Postfix; accounts made with the real popgatectl.
/// As root (scripts/test.sh), laid out as the Debian package lays out its files:
/// keys, database, spool and debug log directory belong to user popgate (groups
/// popgate-admin, popgate-db) with the package's modes, so that popgated, which
/// leaves root for user popgate, can use them; the test fails when that user is
/// missing (scripts/users.sh creates it). accounts.d and secrets stay root's: a
/// secret file popgated must read is group popgate, mode 0640.
class Gateway
{
public:
    explicit Gateway(const Servers& servers);

    /// set - change one popgate.conf key (the file is rewritten).
    void set(const std::string& key, const std::string& value);
    /// ctl - popgatectl --config=... ARGS; the test fails (REQUIRE) unless it exits 0.
    std::string ctl(const std::vector<std::string>& args, const std::string& input = "");
    /// addDovecotAccount - an ssl-tls account on the test Dovecot for user, delivering to
    /// deliverTo.
    void addDovecotAccount(const std::string& name, const std::string& user,
                           const std::string& deliverTo,
                           const std::vector<std::string>& extra = {});
    /// addFakeAccount - a plaintext USER/PASS account (user u, password p) on 127.0.0.1:port.
    void addFakeAccount(const std::string& name, int port, const std::string& deliverTo);
    /// once - popgated --once --log=stderr (extra arguments appended); waits for it.
    RunResult once(const std::vector<std::string>& extra = {});
    /// onceArgv - the argument vector of once(), program first.
    std::vector<std::string> onceArgv(const std::vector<std::string>& extra = {}) const;
    /// sql - runs a statement with the sqlite3 CLI; returns its output (fields split by '|').
    std::string sql(const std::string& statement);
    /// ledger - the messages rows, oldest first (all accounts when account is "").
    std::vector<LedgerRow> ledger(const std::string& account = "");
    /// headerKey - the raw bytes of header_key_file (made with the layout as root, else by
    /// popgated's first run).
    std::string headerKey() const;

    const std::string& configFile() const { return conf_; }
    std::string spoolDir() const { return dir_.file("spool"); }
    std::string dbFile() const { return dir_.file("db/popgate.db"); }
    std::string file(const std::string& name) const { return dir_.file(name); }

private:
    void write();
    void packageLayout();

    const Servers& servers_;
    TempDir dir_;
    std::string conf_;
    std::vector<std::pair<std::string, std::string>> settings_;
};

// ---- processes --------------------------------------------------------------

/// spawn - fork and exec argv (argv[0] is the program) with stderr (and stdout)
/// appended to logFile; returns the child's pid. The caller reaps it.
pid_t spawn(const std::vector<std::string>& argv, const std::string& logFile);
/// waitExit - waitpid; the exit status, or 128+signal.
int waitExit(pid_t pid);
/// vmHwmKb - VmHWM of a live process in kB (-1 when it cannot be read).
long vmHwmKb(pid_t pid);

/// countFiles - regular files directly in dir (0 when it does not exist).
int countFiles(const std::string& dir);

} // namespace popgate::test
