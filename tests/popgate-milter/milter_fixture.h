// milter_fixture.h - what the milter suites share: a popgate world on disk
// (popgate.conf, header key, a migrated database with filters, an account and
// ledger rows), the real popgate-milter on a free loopback port with its log in
// a file, and miltertest runs of lua/message.lua. Never skips: a missing tool fails.
#pragma once

#include "core/config.h"
#include "core/message_store.h"
#include "tests/support/testsupport.h"

#include <chrono>
#include <map>
#include <regex>
#include <string>
#include <sys/types.h>
#include <vector>

namespace popgate::test
{

/// freePort - a loopback TCP port nobody listens on right now (bound to 0, closed).
int freePort();

/// MilterWorld - the files and the database popgate-milter reads.
class MilterWorld
{
public:
    /// MilterWorld - SQLite in the temp dir unless extraConfig sets database.*; the
    /// database gets the schema, address filter "spam" (deny bad.com, *.bad.net),
    /// inbound default system filter "inbound", and account "helpdesk". As root, the
    /// directory, the header key and the SQLite files are popgate:popgate-db with the
    /// package's modes (2770, 0640, 0660): popgate-milter, which leaves root for user
    /// popgate-milter (a member of popgate-db), uses them as in the package; missing
    /// users are made first with scripts/users.sh, as scripts/test.sh makes them.
    explicit MilterWorld(const std::string& extraConfig = "", bool createDatabase = true);

    const TempDir& dir() const { return dir_; }
    const std::string& configPath() const { return configPath_; }
    const Config& config() const { return config_; }
    /// popgateId - a valid X-Popgate-Id value for (account, uidl).
    std::string popgateId(const std::string& account, const std::string& uidl) const;
    /// setLedger - write the ledger row of helpdesk/uidl in that state.
    void setLedger(const std::string& uidl, MessageState state);
    /// seenQueueId - milter_seen's queue id for helpdesk/uidl ("" when none).
    std::string seenQueueId(const std::string& uidl);
    /// forget - MilterSeen::forget for helpdesk/uidl (what popgated does after a refusal).
    void forget(const std::string& uidl);
    std::int64_t accountId() const { return accountId_; }

private:
    TempDir dir_;
    std::string configPath_;
    Config config_;
    std::string headerKey_;
    std::int64_t accountId_ = 0;
};

/// MilterProcess - the real popgate-milter, --log=stderr into a file, on
/// inet:PORT@127.0.0.1; stopped with SIGTERM by its pid.
class MilterProcess
{
public:
    MilterProcess(const MilterWorld& world, std::vector<std::string> extraArgs = {});
    ~MilterProcess();
    MilterProcess(const MilterProcess&) = delete;
    MilterProcess& operator=(const MilterProcess&) = delete;

    /// port - the TCP port; with "--socket=unix:PATH" in extraArgs it listens on PATH instead.
    int port() const { return port_; }
    /// log - everything the milter wrote so far.
    std::string log() const;
    /// waitForLog - true once a log line matches (within `wait`).
    bool waitForLog(const std::regex& pattern,
                    std::chrono::milliseconds wait = std::chrono::milliseconds(5000)) const;
    /// reload - SIGUSR1.
    void reload() const;
    /// stop - SIGTERM and wait (up to 10 s); returns the exit status. The destructor SIGKILLs.
    int stop();

private:
    int port_ = 0;
    std::string unixPath_; ///< from extraArgs' --socket=unix:PATH, else ""
    pid_t pid_ = -1;
    std::string logPath_;
};

/// miltertest - run lua/message.lua against the milter with -D globals; the
/// result's status is miltertest's (0: every check in the script held).
RunResult miltertest(int port, const std::map<std::string, std::string>& globals);

/// milterBinary - the built popgate-milter.
std::string milterBinary();

} // namespace popgate::test
