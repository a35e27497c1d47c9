// spool.cpp - see spool.h.
// SECURITY: spool and quarantine files hold whole messages: 0640 whatever the
// umask (the owner, and the spool directory's group, popgate-admin in the
// package, reads a quarantined copy to release it), never others.
#include "plugin/popgated/spool.h"

#include "core/errors.h"

#include <Poco/Path.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace popgate
{

namespace
{

constexpr mode_t kSpoolMode = 0640;

std::string why()
{
    return std::strerror(errno);
}

// createPrivate - a new file (O_EXCL) open for reading and writing with exactly
// kSpoolMode; -1 with errno set when it cannot be.
int createPrivate(const std::string& path, int access)
{
    const int fd = ::open(path.c_str(), access | O_CREAT | O_EXCL | O_CLOEXEC, kSpoolMode);
    if (fd < 0)
        return -1;
    if (::fchmod(fd, kSpoolMode) != 0) {
        const int e = errno;
        ::close(fd);
        ::unlink(path.c_str());
        errno = e;
        return -1;
    }
    return fd;
}

// syncPath - fsync a file or directory by name.
void syncPath(const std::string& path, int flags)
{
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
        const std::string e = why();
        if (fd >= 0)
            ::close(fd);
        throw SpoolError("spool " + path + ": cannot sync it: " + e);
    }
    ::close(fd);
}

} // namespace

Spool::Spool(std::string path, std::int64_t expectedOctets) : path_(std::move(path))
{
    if (expectedOctets >= static_cast<std::int64_t>(kMemoryLimit))
        spill();
    else if (expectedOctets > 0) // LIST's size and popgate's own header fields: no doubling
        memory_.reserve(static_cast<std::size_t>(expectedOctets) + 1024);
}

Spool::~Spool()
{
    if (file_)
        std::fclose(file_);
    if (spilled_)
        ::unlink(path_.c_str());
}

void Spool::spill()
{
    const int fd = createPrivate(path_, O_RDWR);
    if (fd < 0)
        throw SpoolError("spool " + path_ + ": cannot create it: " + why());
    file_ = ::fdopen(fd, "w+b");
    if (!file_) {
        const std::string e = why();
        ::close(fd);
        ::unlink(path_.c_str());
        throw SpoolError("spool " + path_ + ": cannot create it: " + e);
    }
    spilled_ = true;
    std::setvbuf(file_, nullptr, _IOFBF, 64 * 1024);
    if (!memory_.empty() && std::fwrite(memory_.data(), 1, memory_.size(), file_) != memory_.size())
        failed_ = true;
    std::string().swap(memory_);
}

std::streamsize Spool::xsputn(const char* s, std::streamsize n)
{
    if (!writing_ || failed_)
        return 0;
    const auto count = static_cast<std::size_t>(n);
    if (!file_ && memory_.size() + count > kMemoryLimit) {
        try {
            spill();
        } catch (const SpoolError& e) { // std::ostream would swallow it
            failed_ = true;
            error_ = e.what();
            return 0;
        }
    }
    if (file_) {
        if (std::fwrite(s, 1, count, file_) != count) {
            failed_ = true;
            error_ = "spool " + path_ + ": write failed: " + why();
            return 0;
        }
    } else {
        memory_.append(s, count);
    }
    size_ += n;
    return n;
}

Spool::int_type Spool::overflow(int_type ch)
{
    if (traits_type::eq_int_type(ch, traits_type::eof()))
        return traits_type::not_eof(ch);
    const char c = traits_type::to_char_type(ch);
    return xsputn(&c, 1) == 1 ? ch : traits_type::eof();
}

void Spool::finishWriting()
{
    if (file_ && std::fflush(file_) != 0)
        failed_ = true;
    writing_ = false;
    if (failed_)
        throw SpoolError(!error_.empty() ? error_
                                             : "spool " + path_ + ": write failed (disk full?)");
    rewind();
}

void Spool::rewind()
{
    readPos_ = 0;
    if (file_ && std::fseek(file_, 0, SEEK_SET) != 0)
        throw SpoolError("spool " + path_ + ": cannot read it back: " + why());
}

std::size_t Spool::read(char* buffer, std::size_t capacity)
{
    if (!file_) {
        const std::size_t n = std::min(capacity, memory_.size() - readPos_);
        std::memcpy(buffer, memory_.data() + readPos_, n);
        readPos_ += n;
        return n;
    }
    const std::size_t n = std::fread(buffer, 1, capacity, file_);
    if (n == 0 && std::ferror(file_))
        throw SpoolError("spool " + path_ + ": cannot read it back: " + why());
    return n;
}

void Spool::keep(const std::string& target)
{
    if (file_) {
        if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0)
            throw SpoolError("spool " + path_ + ": cannot sync it: " + why());
        std::fclose(file_);
        file_ = nullptr;
        if (::rename(path_.c_str(), target.c_str()) != 0)
            throw SpoolError("spool " + path_ + ": cannot move it to " + target + ": " +
                                 why());
        spilled_ = false;
    } else {
        const int fd = createPrivate(target, O_WRONLY);
        if (fd < 0)
            throw SpoolError("quarantine " + target + ": cannot create it: " + why());
        const char* p = memory_.data();
        std::size_t left = memory_.size();
        while (left > 0) {
            const ssize_t n = ::write(fd, p, left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                const std::string e = why();
                ::close(fd);
                ::unlink(target.c_str());
                throw SpoolError("quarantine " + target + ": write failed: " + e);
            }
            p += n;
            left -= static_cast<std::size_t>(n);
        }
        if (::fsync(fd) != 0 || ::close(fd) != 0) {
            const std::string e = why();
            ::unlink(target.c_str());
            throw SpoolError("quarantine " + target + ": write failed: " + e);
        }
        std::string().swap(memory_);
    }
    syncPath(Poco::Path(target).parent().toString(), O_RDONLY | O_DIRECTORY);
}

} // namespace popgate
