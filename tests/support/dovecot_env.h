// dovecot_env.h - the Dovecot of scripts/servers/dovecot.sh as the tests see
// it: addresses and credentials from POPGATE_TEST_DOVECOT_* (a missing one
// fails the test, never skips it) and delivery into its maildir.
#pragma once

#include <Poco/DirectoryIterator.h>
#include <Poco/Environment.h>
#include <Poco/File.h>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <pwd.h>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace popgate::test
{

/// requireEnv - the variable's value; throws naming it and how to set it.
inline std::string requireEnv(const std::string& name)
{
    std::string full = "POPGATE_TEST_DOVECOT_" + name;
    if (!Poco::Environment::has(full) || Poco::Environment::get(full).empty())
        throw std::runtime_error(full + " is not set: run scripts/servers/dovecot.sh start DIR "
                                        "and source DIR/env (scripts/test.sh does)");
    return Poco::Environment::get(full);
}

struct DovecotEnv {
    std::string host = requireEnv("HOST");
    int port = std::stoi(requireEnv("PORT"));
    int pop3sPort = std::stoi(requireEnv("POP3S_PORT"));
    int expiredPort = std::stoi(requireEnv("EXPIRED_PORT"));
    int wrongHostPort = std::stoi(requireEnv("WRONGHOST_PORT"));
    std::string ca = requireEnv("CA");
    std::string pin = requireEnv("PIN");
    std::string user = requireEnv("USER");
    std::string password = requireEnv("PASSWORD");
    std::string maildir = requireEnv("MAILDIR");
    std::string user2 = requireEnv("USER2");       ///< same password; its own mailbox so that
    std::string maildir2 = requireEnv("MAILDIR2"); ///< suites can run in parallel
};

/// clearMaildir - removes every message (new/ and cur/) of a maildir.
inline void clearMaildir(const std::string& maildir)
{
    for (const char* sub : {"/new", "/cur"}) {
        std::vector<std::string> files;
        for (Poco::DirectoryIterator it(maildir + sub), end; it != end; ++it)
            files.push_back(it->path());
        for (const std::string& file : files)
            Poco::File(file).remove();
    }
}

/// deliver - writes message (bytes as given) into maildir/new via tmp/, owned
/// by the mail user (nobody); returns the file name. Names sort in delivery order.
inline std::string deliver(const std::string& maildir, const std::string& message)
{
    static std::atomic<int> counter{0};
    std::string name = std::to_string(::time(nullptr)) + ".P" + std::to_string(::getpid()) + "Q" +
                       std::to_string(1000 + counter++) + ".popgate-test";
    std::string tmp = maildir + "/tmp/" + name;
    {
        std::ofstream out(tmp, std::ios::binary);
        out << message;
        if (!out)
            throw std::runtime_error("cannot write " + tmp);
    }
    if (const passwd* pw = ::getpwnam("nobody"))
        if (::chown(tmp.c_str(), pw->pw_uid, pw->pw_gid) != 0)
            throw std::runtime_error("cannot chown " + tmp);
    if (std::rename(tmp.c_str(), (maildir + "/new/" + name).c_str()) != 0)
        throw std::runtime_error("cannot move " + tmp + " into new/");
    return name;
}

} // namespace popgate::test
