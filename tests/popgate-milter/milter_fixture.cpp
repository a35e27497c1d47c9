// milter_fixture.cpp - see milter_fixture.h. The database is written through
// the core API (Store, FilterStore, MessageStore, MilterSeen), as popgatectl
// and popgated would write it.
#include "tests/popgate-milter/milter_fixture.h"

#include "core/dbdrivers.h"
#include "core/filter_store.h"
#include "core/message.h"
#include "core/milter_seen.h"
#include "core/secretbox.h"
#include "core/store.h"

#include <arpa/inet.h>
#include <boost/test/unit_test.hpp>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace popgate::test
{

int freePort()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_TEST_REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    BOOST_TEST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

namespace
{

bool accepts(int port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

bool acceptsUnix(const std::string& path)
{
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    path.copy(a.sun_path, std::min(path.size(), sizeof a.sun_path - 1));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

// requirePackageUsers - as root: the package's users and groups, made by
// scripts/users.sh when one is missing (idempotent; kept, as the package keeps
// them): these suites also run without scripts/test.sh (dpkg-buildpackage).
void requirePackageUsers()
{
    static const bool made = [] {
        if (::getpwnam("popgate") && ::getpwnam("popgate-milter") && ::getgrnam("popgate-db"))
            return true;
        const RunResult r = run("/bin/bash", {POPGATE_SOURCE_DIR "/scripts/users.sh"});
        BOOST_TEST_MESSAGE("scripts/users.sh: " << r.status << " " << r.out << r.err);
        return r.status == 0;
    }();
    BOOST_REQUIRE_MESSAGE(made && ::getpwnam("popgate") && ::getpwnam("popgate-milter") &&
                              ::getgrnam("popgate-db"),
                          "users popgate and popgate-milter and group popgate-db: popgate-milter "
                          "started as root switches to its user; scripts/users.sh creates them");
}

// own - as root: path becomes user popgate, group popgate-db, with mode (the
// package's layout).
void own(const std::string& path, mode_t mode)
{
    requirePackageUsers();
    const passwd* pw = ::getpwnam("popgate");
    const group* gr = ::getgrnam("popgate-db");
    BOOST_REQUIRE_MESSAGE(::chown(path.c_str(), pw->pw_uid, gr->gr_gid) == 0 &&
                              ::chmod(path.c_str(), mode) == 0,
                          "cannot give " << path << " to popgate:popgate-db");
}

} // namespace

MilterWorld::MilterWorld(const std::string& extraConfig, bool createDatabase)
{
    registerDatabaseDrivers();
    const bool root = ::geteuid() == 0;
    // As root, the package's /var/lib/popgate: popgate:popgate-db 2770, so that the
    // milter, which leaves root for user popgate-milter (group popgate-db), may
    // create the database's -wal and -shm files here.
    if (root)
        own(dir_.path(), 02770);
    std::string text = "header_key_file = " + dir_.file("header.key") + "\n" + extraConfig;
    if (extraConfig.find("database.") == std::string::npos)
        text += "database.path = " + dir_.file("popgate.db") + "\n";
    configPath_ = dir_.write("popgate.conf", text);
    config_ = Config::load(configPath_);
    const auto key = loadKeyFile(config_.str("header_key_file"), true);
    headerKey_.assign(key.begin(), key.end());
    if (root)
        own(config_.str("header_key_file"), 0640); // as the postinst: popgate:popgate-db 0640
    if (!createDatabase)
        return;

    Store store(config_, Store::Open::CreateFile);
    store.migrate();
    FilterStore filters(store);
    EmailAddressFilter spam;
    spam.name = "spam";
    spam.type = FilterType::Deny;
    spam.domains = {"bad.com", "*.bad.net"};
    spam.exceptions = {"friend@bad.com"};
    filters.addAddressFilter(spam);
    SystemAddressFilter inbound;
    inbound.name = "inbound";
    inbound.direction = Direction::Inbound;
    inbound.isDefault = true;
    filters.addSystemFilter(inbound);
    filters.attach("inbound", "spam");

    Account a;
    a.name = "helpdesk";
    a.server = "pop.example.com";
    a.auth = AuthKind::None;
    a.mailbox = "service-desk@company.com";
    store.addAccount(a);
    accountId_ = a.id;
    if (root && config_.str("database.driver") == "sqlite")
        for (const char* suffix : {"", "-wal", "-shm"})
            if (::access((config_.str("database.path") + suffix).c_str(), F_OK) == 0)
                own(config_.str("database.path") + suffix, 0660);
}

std::string MilterWorld::popgateId(const std::string& account, const std::string& uidl) const
{
    return popgateIdHeader(headerKey_, account, uidl);
}

void MilterWorld::setLedger(const std::string& uidl, MessageState state)
{
    Store store(config_);
    MessageStore ledger(store);
    auto rows = ledger.forAccount(accountId_);
    MessageRecord rec = rows.count(uidl) ? rows[uidl] : MessageRecord();
    rec.accountId = accountId_;
    rec.uidl = uidl;
    rec.state = state;
    ledger.save(rec);
}

std::string MilterWorld::seenQueueId(const std::string& uidl)
{
    Store store(config_);
    return MilterSeen(store).seenBefore(accountId_, uidl).value_or("");
}

void MilterWorld::forget(const std::string& uidl)
{
    Store store(config_);
    MilterSeen(store).forget(accountId_, uidl);
}

std::string milterBinary()
{
    return binary("plugin/popgate-milter/popgate-milter");
}

MilterProcess::MilterProcess(const MilterWorld& world, std::vector<std::string> extraArgs)
{
    port_ = freePort();
    logPath_ = world.dir().file("milter-" + std::to_string(port_) + ".log");
    std::vector<std::string> args = {milterBinary(), "--config=" + world.configPath(),
                                     "--socket=inet:" + std::to_string(port_) + "@127.0.0.1",
                                     "--log=stderr", "--foreground"};
    for (const std::string& a : extraArgs) // --socket=unix:PATH replaces the TCP port
        if (a.rfind("--socket=unix:", 0) == 0) {
            unixPath_ = a.substr(14);
            args.erase(args.begin() + 2); // the inet one: the option may be given once
        }
    args.insert(args.end(), extraArgs.begin(), extraArgs.end());
    pid_ = ::fork();
    BOOST_TEST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
        const int fd = ::open(logPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        std::vector<char*> argv;
        for (auto& s : args)
            argv.push_back(s.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (unixPath_.empty() ? !accepts(port_) : !acceptsUnix(unixPath_)) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            BOOST_FAIL("popgate-milter exited at start: " << log());
        }
        if (std::chrono::steady_clock::now() > deadline)
            BOOST_FAIL("popgate-milter does not listen on "
                       << (unixPath_.empty() ? "127.0.0.1:" + std::to_string(port_) : unixPath_)
                       << ": " << log());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

MilterProcess::~MilterProcess()
{
    // SIGKILL: libmilter notices SIGTERM only at its next 5-second poll; the clean
    // stop is tested on its own (stop()).
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
}

std::string MilterProcess::log() const
{
    return readFile(logPath_);
}

bool MilterProcess::waitForLog(const std::regex& pattern, std::chrono::milliseconds wait) const
{
    const auto deadline = std::chrono::steady_clock::now() + wait;
    do {
        if (std::regex_search(log(), pattern))
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
}

void MilterProcess::reload() const
{
    if (pid_ > 0)
        ::kill(pid_, SIGUSR1);
}

int MilterProcess::stop()
{
    if (pid_ <= 0)
        return -1;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
}

RunResult miltertest(int port, const std::map<std::string, std::string>& globals)
{
    std::vector<std::string> args = {"-D", "port=" + std::to_string(port), "-D",
                                     std::string("dir=") + POPGATE_MILTER_LUA_DIR};
    for (const auto& [name, value] : globals) {
        args.push_back("-D");
        args.push_back(name + "=" + value);
    }
    args.push_back("-s");
    args.push_back(std::string(POPGATE_MILTER_LUA_DIR) + "/message.lua");
    return run("/usr/bin/miltertest", args);
}

} // namespace popgate::test
