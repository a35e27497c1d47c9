// testsupport.h - helpers shared by the suites: temporary directories,
// running a real binary and capturing its output, the test servers' addresses
// from the environment (a missing server fails the test, it is never skipped).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace popgate::test
{

/// TempDir - a fresh directory under $TMPDIR, removed with everything in it.
class TempDir
{
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    /// file - path + "/" + name.
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    /// write - create a file with that content (and mode); returns its path.
    std::string write(const std::string& name, const std::string& content, int mode = 0644) const;

private:
    std::string path_;
};

struct RunResult {
    int status = -1;
    std::string out;
    std::string err;
};

/// run - run a program with arguments, standard input and extra environment
/// variables; waits and captures stdout and stderr.
RunResult run(const std::string& program, const std::vector<std::string>& args,
              const std::string& input = "", const std::map<std::string, std::string>& env = {});

/// requireEnv - the variable's value; fails the test (BOOST_FAIL) naming the
/// variable and scripts/test.sh when it is missing.
std::string requireEnv(const std::string& name);

/// readFile - whole file content ("" when missing).
std::string readFile(const std::string& path);

/// binary - path of a program built in this tree, e.g. binary("popgatectl/popgatectl").
std::string binary(const std::string& relative);

} // namespace popgate::test

namespace popgate::test
{
/// handToPopgated - as root, give the tree at dir to user popgate (group popgate), so
/// that popgated, which leaves root for that user at start, can use the files
/// popgatectl made there as root; creates the package's users first when missing
/// (scripts/users.sh). Not root: nothing to do (popgated runs as the caller).
void handToPopgated(const std::string& dir);
} // namespace popgate::test
