// journal.cpp - the delivery journal (see journal.h).
#include "plugin/popgated/journal.h"

#include "plugin/popgated/spool.h"

#include <Poco/Exception.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <unistd.h>

namespace popgate
{

namespace
{

constexpr std::size_t kMaxLine = 4096;            ///< a UIDL key is at most ~200 octets
constexpr std::size_t kMaxJournal = 16 * 1024 * 1024; ///< a batch writes a few kB

bool plainWord(const std::string& s)
{
    for (unsigned char c : s)
        if (c <= ' ' || c >= 0x7f)
            return false;
    return true;
}

} // namespace

DeliveryJournal::DeliveryJournal(std::string path) : path_(std::move(path)) {}

DeliveryJournal::~DeliveryJournal()
{
    if (fd_ >= 0)
        ::close(fd_);
}

std::vector<JournalEntry> DeliveryJournal::read() const
{
    std::vector<JournalEntry> out;
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return out;
        throw SpoolError("journal " + path_ + ": cannot read it: " + std::strerror(errno));
    }
    std::string text;
    char buffer[8192];
    ssize_t n = 0;
    while (text.size() < kMaxJournal && (n = ::read(fd, buffer, sizeof buffer)) > 0)
        text.append(buffer, static_cast<std::size_t>(n));
    const int readErrno = errno;
    ::close(fd);
    if (n < 0)
        throw SpoolError("journal " + path_ + ": cannot read it: " + std::strerror(readErrno));
    std::size_t at = 0;
    for (std::size_t nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) {
        // what follows the last newline was torn by a crash mid-write: ignored
        std::istringstream words(text.substr(at, std::min(nl - at, kMaxLine)));
        JournalEntry e;
        std::string queueId;
        if (!(words >> e.uidl >> queueId))
            continue;
        e.queueId = queueId == "-" ? "" : queueId;
        out.push_back(std::move(e));
    }
    return out;
}

bool DeliveryJournal::append(const JournalEntry& entry)
{
    if (!plainWord(entry.uidl) || entry.uidl.empty() || !plainWord(entry.queueId))
        return false;
    if (fd_ < 0) {
        try {
            Poco::File(Poco::Path(path_).parent()).createDirectories();
        } catch (const Poco::Exception&) {
            return false;
        }
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd_ < 0)
            return false;
    }
    const std::string line =
        entry.uidl + " " + (entry.queueId.empty() ? "-" : entry.queueId) + "\n";
    // One write(2) with O_APPEND: the line lands whole or (after a crash) torn at its end.
    return ::write(fd_, line.data(), line.size()) == static_cast<ssize_t>(line.size());
}

void DeliveryJournal::clear()
{
    if (fd_ >= 0) {
        if (::ftruncate(fd_, 0) == 0)
            return;
        ::close(fd_);
        fd_ = -1;
    }
    if (::truncate(path_.c_str(), 0) != 0 && errno != ENOENT)
        throw SpoolError("journal " + path_ + ": cannot clear it: " + std::strerror(errno));
}

} // namespace popgate
