// testsupport.cpp - see testsupport.h.
#include "tests/support/testsupport.h"

#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>
#include <Poco/TemporaryFile.h>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <thread>

namespace popgate::test
{

TempDir::TempDir()
{
    Poco::File dir(Poco::TemporaryFile::tempName());
    dir.createDirectories();
    path_ = dir.path();
}

TempDir::~TempDir()
{
    try {
        Poco::File(path_).remove(true);
    } catch (...) {
    }
}

std::string TempDir::write(const std::string& name, const std::string& content, int mode) const
{
    const std::string p = file(name);
    Poco::File(Poco::Path(p).parent()).createDirectories();
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    ::chmod(p.c_str(), static_cast<mode_t>(mode));
    return p;
}

RunResult run(const std::string& program, const std::vector<std::string>& args,
              const std::string& input, const std::map<std::string, std::string>& env)
{
    Poco::Pipe inPipe, outPipe, errPipe;
    Poco::Process::Env penv(env.begin(), env.end());
    Poco::ProcessHandle ph =
        Poco::Process::launch(program, args, "", &inPipe, &outPipe, &errPipe, penv);
    // Write stdin and read stderr on other threads so no pipe can fill up.
    std::thread writer([&] {
        Poco::PipeOutputStream in(inPipe);
        in << input;
        in.close();
    });
    RunResult result;
    std::thread errReader([&] {
        Poco::PipeInputStream err(errPipe);
        Poco::StreamCopier::copyToString(err, result.err);
    });
    Poco::PipeInputStream out(outPipe);
    Poco::StreamCopier::copyToString(out, result.out);
    errReader.join();
    writer.join();
    result.status = ph.wait();
    return result;
}

std::string requireEnv(const std::string& name)
{
    const char* v = std::getenv(name.c_str());
    if (!v || !*v)
        BOOST_FAIL("environment variable " + name +
                   " is not set: this suite needs its test server; run it through scripts/test.sh");
    return v;
}

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string binary(const std::string& relative)
{
    return std::string(POPGATE_BINARY_DIR) + "/" + relative;
}

} // namespace popgate::test

namespace popgate::test
{
void handToPopgated(const std::string& dir)
{
    if (::geteuid() != 0)
        return;
    if (::getpwnam("popgate") == nullptr) {
        const RunResult r = run("/bin/bash", {POPGATE_SOURCE_DIR "/scripts/users.sh"});
        BOOST_TEST_REQUIRE(r.status == 0, "scripts/users.sh: " << r.out << r.err);
    }
    const RunResult r = run("/bin/chown", {"-R", "popgate:popgate", dir});
    BOOST_TEST_REQUIRE(r.status == 0, "chown -R popgate " << dir << ": " << r.err);
}
} // namespace popgate::test
