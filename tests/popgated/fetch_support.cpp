// fetch_support.cpp - see fetch_support.h.
#include "tests/popgated/fetch_support.h"

#include "core/secretbox.h"

#include <Poco/DirectoryIterator.h>
#include <Poco/File.h>
#include <Poco/String.h>
#include <algorithm>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace popgate::test
{

namespace
{

int envPort(const std::string& name)
{
    return std::stoi(requireEnv(name));
}

std::string addressTag()
{
    return "ft" + std::to_string(::getpid()) + "-";
}

void chownToNobody(const std::string& path)
{
    if (const passwd* pw = ::getpwnam("nobody"))
        if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0)
            throw std::runtime_error("cannot chown " + path + " to nobody");
}

std::vector<std::string> filesIn(const std::string& dir)
{
    std::vector<std::string> out;
    if (!Poco::File(dir).exists())
        return out;
    for (Poco::DirectoryIterator it(dir), end; it != end; ++it)
        if (it->isFile())
            out.push_back(it->path());
    std::sort(out.begin(), out.end());
    return out;
}

// own - as root: path becomes user:group with mode (the package's layout); the
// test fails when either is missing (scripts/users.sh creates them).
void own(const std::string& path, const char* user, const char* group, mode_t mode)
{
    const passwd* pw = ::getpwnam(user);
    BOOST_REQUIRE_MESSAGE(pw != nullptr, std::string("user ") + user +
                                             " is missing: popgated started as root switches to "
                                             "it; scripts/users.sh (run by scripts/test.sh) "
                                             "creates it");
    const uid_t uid = pw->pw_uid;
    const struct group* gr = ::getgrnam(group);
    BOOST_REQUIRE_MESSAGE(gr != nullptr, std::string("group ") + group +
                                             " is missing; scripts/users.sh creates it");
    BOOST_REQUIRE_MESSAGE(::chown(path.c_str(), uid, gr->gr_gid) == 0 &&
                              ::chmod(path.c_str(), mode) == 0,
                          "cannot give " << path << " to " << user << ":" << group);
}

void sleepMs(int ms)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

} // namespace

Servers::Servers()
    : dovecotHost(requireEnv("POPGATE_TEST_DOVECOT_HOST")),
      pop3sPort(envPort("POPGATE_TEST_DOVECOT_POP3S_PORT")),
      ca(requireEnv("POPGATE_TEST_DOVECOT_CA")), user(requireEnv("POPGATE_TEST_DOVECOT_USER")),
      user2(requireEnv("POPGATE_TEST_DOVECOT_USER2")),
      password(requireEnv("POPGATE_TEST_DOVECOT_PASSWORD")),
      maildir(requireEnv("POPGATE_TEST_DOVECOT_MAILDIR")),
      maildir2(requireEnv("POPGATE_TEST_DOVECOT_MAILDIR2")),
      reinjectPort(envPort("POPGATE_TEST_POSTFIX_REINJECT_PORT")),
      postfixMaildir(requireEnv("POPGATE_TEST_POSTFIX_MAILDIR")),
      postfixLog(requireEnv("POPGATE_TEST_POSTFIX_LOG")),
      postfixConfigDir(requireEnv("POPGATE_TEST_POSTFIX_CONFIG_DIR"))
{
}

std::string uniqueAddress(const std::string& tag)
{
    static std::atomic<int> counter{0};
    return addressTag() + tag + "-" + std::to_string(++counter) + "@popgate.test";
}

std::string localPart(const std::string& address)
{
    return address.substr(0, address.find('@'));
}

// ---- Dovecot side -----------------------------------------------------------

void clearMaildir(const std::string& maildir)
{
    for (const char* sub : {"/new", "/cur", "/tmp"})
        for (const auto& f : filesIn(maildir + sub))
            Poco::File(f).remove();
}

std::string dropGenerated(const std::string& maildir,
                          const std::function<void(std::ostream&)>& write)
{
    static std::atomic<int> counter{0};
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%ld.P%dQ%06d", static_cast<long>(::time(nullptr)),
                  static_cast<int>(::getpid()), ++counter);
    const std::string name = std::string(stamp) + ".popgate-fetch-test";
    const std::string tmp = maildir + "/tmp/" + name;
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        write(out);
        out.flush();
        if (!out)
            throw std::runtime_error("cannot write " + tmp);
    }
    chownToNobody(tmp);
    if (std::rename(tmp.c_str(), (maildir + "/new/" + name).c_str()) != 0)
        throw std::runtime_error("cannot move " + tmp + " into new/");
    return name;
}

std::string dropMessage(const std::string& maildir, const std::string& bytes)
{
    return dropGenerated(maildir, [&](std::ostream& out) { out << bytes; });
}

int countMessages(const std::string& maildir)
{
    return static_cast<int>(filesIn(maildir + "/new").size() + filesIn(maildir + "/cur").size());
}

EmptyMailboxes::EmptyMailboxes(std::vector<std::string> maildirs) : maildirs_(std::move(maildirs))
{
    for (const auto& m : maildirs_)
        clearMaildir(m);
}

EmptyMailboxes::~EmptyMailboxes()
{
    for (const auto& m : maildirs_) {
        try {
            clearMaildir(m);
        } catch (...) {
        }
    }
}

// ---- Postfix side -----------------------------------------------------------

std::vector<std::string> Delivered::all(const std::string& name) const
{
    std::vector<std::string> out;
    for (const auto& f : fields)
        if (Poco::icompare(f.first, name) == 0)
            out.push_back(f.second);
    return out;
}

std::string Delivered::first(const std::string& name) const
{
    const auto v = all(name);
    return v.empty() ? std::string() : v.front();
}

void settle()
{
    const std::string dir = requireEnv("POPGATE_TEST_POSTFIX_CONFIG_DIR");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        const RunResult r = run("/usr/sbin/postqueue", {"-c", dir, "-j"});
        if (r.status == 0 && r.out.find(addressTag()) == std::string::npos)
            return;
        sleepMs(100);
    }
    BOOST_FAIL("Postfix's queue still holds mail for this suite after 30 s:\n"
               << run("/usr/sbin/postqueue", {"-c", dir, "-j"}).out);
}

std::vector<Delivered> delivered(const std::string& address)
{
    const std::string base = requireEnv("POPGATE_TEST_POSTFIX_MAILDIR") + "/" + localPart(address);
    std::vector<std::string> files = filesIn(base + "/new");
    for (const auto& f : filesIn(base + "/cur"))
        files.push_back(f);
    std::vector<Delivered> out;
    for (const auto& f : files) {
        Delivered d;
        d.file = f;
        d.text = readFile(f);
        const auto blank = d.text.find("\n\n");
        d.head = d.text.substr(0, blank == std::string::npos ? d.text.size() : blank + 1);
        d.body = blank == std::string::npos ? std::string() : d.text.substr(blank + 2);
        std::istringstream lines(d.head);
        std::string line;
        while (std::getline(lines, line)) {
            if (line.empty())
                continue;
            if ((line[0] == ' ' || line[0] == '\t') && !d.fields.empty()) {
                d.fields.back().second += " " + Poco::trim(line);
                continue;
            }
            const auto colon = line.find(':');
            if (colon == std::string::npos)
                continue;
            d.fields.emplace_back(line.substr(0, colon), Poco::trim(line.substr(colon + 1)));
        }
        out.push_back(std::move(d));
    }
    return out;
}

int deliveredCount(const std::string& address)
{
    const std::string base = requireEnv("POPGATE_TEST_POSTFIX_MAILDIR") + "/" + localPart(address);
    return static_cast<int>(filesIn(base + "/new").size() + filesIn(base + "/cur").size());
}

bool maillogHas(const std::string& queueId)
{
    const std::string log = requireEnv("POPGATE_TEST_POSTFIX_LOG");
    for (int i = 0; i < 50; ++i) {
        if (readFile(log).find(" " + queueId + ": ") != std::string::npos)
            return true;
        sleepMs(100);
    }
    return false;
}

std::string toLf(const std::string& text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i)
        if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n'))
            out += text[i];
    return out;
}

std::string bodyOf(const std::string& crlfMessage)
{
    const auto blank = crlfMessage.find("\r\n\r\n");
    return blank == std::string::npos ? std::string() : crlfMessage.substr(blank + 4);
}

std::string message(const std::vector<std::string>& headers, const std::string& body)
{
    std::string out;
    for (const auto& h : headers)
        out += h + "\r\n";
    return out + "\r\n" + body;
}

// ---- popgated's log ---------------------------------------------------------

std::string LogLine::get(const std::string& key) const
{
    const auto it = fields.find(key);
    return it == fields.end() ? std::string() : it->second;
}

std::vector<LogLine> messageLines(const std::string& log)
{
    std::vector<LogLine> out;
    std::istringstream lines(log);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.find(" status=") == std::string::npos)
            continue;
        LogLine l;
        l.text = line;
        std::istringstream words(line);
        std::string word;
        while (words >> word) {
            const auto eq = word.find('=');
            if (eq != std::string::npos && eq > 0)
                l.fields.emplace(word.substr(0, eq), word.substr(eq + 1));
        }
        out.push_back(std::move(l));
    }
    return out;
}

// ---- a popgate instance -------------------------------------------------------

Gateway::Gateway(const Servers& servers) : servers_(servers)
{
    settings_ = {
        {"database.path", dir_.file("db/popgate.db")},
        {"secret_key_file", dir_.file("secret.key")},
        {"header_key_file", dir_.file("header.key")},
        {"accounts_dir", dir_.file("accounts.d")},
        {"secrets_dir", dir_.file("secrets")},
        {"debug_log_dir", dir_.file("debug")},
        {"spool_dir", dir_.file("spool")},
        {"reinject.host", "127.0.0.1"},
        {"reinject.port", std::to_string(servers_.reinjectPort)},
        {"pop3.connect_timeout", "5s"},
        {"pop3.read_timeout", "5s"},
    };
    write();
    if (::geteuid() == 0)
        packageLayout();
    ctl({"db", "migrate"});
    if (::geteuid() == 0)
        for (const char* suffix : {"", "-wal", "-shm"})
            if (Poco::File(dbFile() + suffix).exists())
                own(dbFile() + suffix, "popgate", "popgate-db", 0660);
}

void Gateway::packageLayout()
{
    // What debian/popgate.postinst makes of /etc/popgate and /var/*/popgate
    // (ARCHITECTURE.md, "Who can read what"): popgated, started as root,
    // switches to user popgate, which can then use them as in the package.
    ::chmod(dir_.path().c_str(), 0755);
    for (const char* d : {"db", "spool", "debug"})
        Poco::File(dir_.file(d)).createDirectories();
    own(dir_.file("db"), "popgate", "popgate-db", 02770);
    own(dir_.file("spool"), "popgate", "popgate-admin", 02770);
    own(dir_.file("debug"), "popgate", "popgate-admin", 02750);
    loadKeyFile(dir_.file("secret.key"), true);
    loadKeyFile(dir_.file("header.key"), true);
    own(dir_.file("secret.key"), "popgate", "popgate-admin", 0640);
    own(dir_.file("header.key"), "popgate", "popgate-db", 0640);
}

void Gateway::write()
{
    std::string text = "# written by tests/popgated/fetch_support.cpp\n";
    for (const auto& kv : settings_)
        text += kv.first + " = " + kv.second + "\n";
    conf_ = dir_.write("popgate.conf", text);
}

void Gateway::set(const std::string& key, const std::string& value)
{
    for (auto& kv : settings_)
        if (kv.first == key) {
            kv.second = value;
            write();
            return;
        }
    settings_.emplace_back(key, value);
    write();
}

std::string Gateway::ctl(const std::vector<std::string>& args, const std::string& input)
{
    std::vector<std::string> all{"--config=" + conf_};
    all.insert(all.end(), args.begin(), args.end());
    const RunResult r = run(binary("popgatectl/popgatectl"), all, input);
    std::string shown;
    for (const auto& a : args)
        shown += " " + a;
    BOOST_REQUIRE_MESSAGE(r.status == 0, "popgatectl" + shown + " exited " +
                                             std::to_string(r.status) + ": " + r.err + r.out);
    return r.out;
}

void Gateway::addDovecotAccount(const std::string& name, const std::string& user,
                                const std::string& deliverTo, const std::vector<std::string>& extra)
{
    std::vector<std::string> args{"account",
                                  "add",
                                  name,
                                  "--server=" + servers_.dovecotHost,
                                  "--port=" + std::to_string(servers_.pop3sPort),
                                  "--security=ssl-tls",
                                  "--user=" + user,
                                  "--tls-ca-file=" + servers_.ca,
                                  "--mailbox=" + name + "@example.com",
                                  "--deliver-to=" + deliverTo,
                                  "--password-stdin"};
    args.insert(args.end(), extra.begin(), extra.end());
    ctl(args, servers_.password + "\n");
}

void Gateway::addFakeAccount(const std::string& name, int port, const std::string& deliverTo)
{
    ctl({"account", "add", name, "--server=127.0.0.1", "--port=" + std::to_string(port),
         "--security=none", "--plaintext-auth=yes", "--auth-mechanism=user", "--user=u",
         "--mailbox=" + name + "@example.com", "--deliver-to=" + deliverTo, "--password-stdin"},
        "p\n");
}

std::vector<std::string> Gateway::onceArgv(const std::vector<std::string>& extra) const
{
    std::vector<std::string> argv{binary("plugin/popgated/popgated"), "--config=" + conf_, "--once",
                                  "--log=stderr"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

RunResult Gateway::once(const std::vector<std::string>& extra)
{
    // Not run(): a popgated that never exits must fail this test, not stall the suite.
    static std::atomic<int> counter{0};
    const std::string logFile = dir_.file("once-" + std::to_string(++counter) + ".log");
    const pid_t pid = spawn(onceArgv(extra), logFile);
    RunResult r;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    for (;;) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL); // our own child
            r.status = waitExit(pid);
            BOOST_ERROR("popgated --once did not exit within 90 s (killed): " << readFile(logFile));
            break;
        }
        sleepMs(10);
    }
    r.err = readFile(logFile);
    BOOST_TEST_MESSAGE("popgated --once exited " << r.status << ":\n" << r.err);
    return r;
}

std::string Gateway::sql(const std::string& statement)
{
    const RunResult r =
        run("/usr/bin/sqlite3", {"-batch", "-cmd", ".timeout 10000", dbFile(), statement});
    BOOST_REQUIRE_MESSAGE(r.status == 0, "sqlite3 '" + statement + "': " + r.err);
    return r.out;
}

std::vector<LedgerRow> Gateway::ledger(const std::string& account)
{
    std::string q = "SELECT a.name, m.uidl, m.state, m.deleted, coalesce(m.message_id, ''), "
                    "coalesce(m.queue_id, ''), m.attempts, m.retry_at, "
                    "replace(coalesce(m.reason, ''), '|', '/') FROM messages m JOIN accounts a ON "
                    "a.id = m.account_id";
    if (!account.empty())
        q += " WHERE a.name = '" + account + "'";
    q += " ORDER BY m.id";
    std::vector<LedgerRow> rows;
    std::istringstream lines(sql(q));
    std::string line;
    while (std::getline(lines, line)) {
        std::vector<std::string> f;
        std::size_t start = 0;
        for (int i = 0; i < 8; ++i) {
            const auto bar = line.find('|', start);
            f.push_back(line.substr(start, bar - start));
            start = bar == std::string::npos ? line.size() : bar + 1;
        }
        f.push_back(line.substr(start));
        LedgerRow r;
        r.account = f[0];
        r.uidl = f[1];
        r.state = f[2];
        r.deleted = f[3] == "1";
        r.messageId = f[4];
        r.queueId = f[5];
        r.attempts = f[6].empty() ? 0 : std::stoi(f[6]);
        r.retryAt = f[7].empty() ? 0 : std::stoll(f[7]);
        r.reason = f[8];
        rows.push_back(r);
    }
    return rows;
}

std::string Gateway::headerKey() const
{
    const std::string hex = Poco::trim(readFile(dir_.file("header.key")));
    std::string raw;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    return raw;
}

// ---- processes --------------------------------------------------------------

pid_t spawn(const std::vector<std::string>& argv, const std::string& logFile)
{
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int fd = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        throw std::runtime_error("cannot open " + logFile);
    const pid_t pid = ::fork();
    if (pid == 0) {
        // Only async-signal-safe calls between fork and exec. popgated blocks
        // the signals it takes itself; start it with none blocked.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        const int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            ::dup2(devnull, 0);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(fd);
    if (pid < 0)
        throw std::runtime_error("fork failed");
    return pid;
}

int waitExit(pid_t pid)
{
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

long vmHwmKb(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0)
            return std::stol(line.substr(6));
    return -1;
}

int countFiles(const std::string& dir)
{
    return static_cast<int>(filesIn(dir).size());
}

} // namespace popgate::test
