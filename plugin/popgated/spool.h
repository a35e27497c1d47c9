// spool.h - where one fetched message waits between RETR and the MTA's reply.
// Small messages stay in memory (one batch of them is a few hundred KiB);
// a message that outgrows kMemoryLimit, or is announced larger by LIST, goes
// to a file in the spool directory. The spool is transient: the server keeps
// its copy until the MTA accepted ours, so nothing here is fsync'd except a
// copy kept for good (quarantine, keep()).
#pragma once

#include "core/errors.h"

#include <cstdint>
#include <cstdio>
#include <ostream>
#include <streambuf>
#include <string>

namespace popgate
{

/// A spool or quarantine file could not be written, synced or read back
/// (disk full, I/O error): our own disk, not the database (policy: Spool).
class SpoolError : public OperationError
{
public:
    using OperationError::OperationError;
};

class Spool : public std::streambuf
{
public:
    static constexpr std::size_t kMemoryLimit = 256 * 1024;

    /// Spool - path is the file used when the message does not fit in memory;
    /// expectedOctets >= kMemoryLimit goes to the file from the start.
    Spool(std::string path, std::int64_t expectedOctets);
    ~Spool() override; ///< removes the file, if any
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    /// finishWriting - flush; throws SpoolError naming the file when a
    /// write failed (disk full). Afterwards the spool is read-only.
    void finishWriting();
    std::int64_t size() const { return size_; }
    bool inMemory() const { return file_ == nullptr && !spilled_; }

    /// read - sequential reads from the start (after finishWriting); rewind()
    /// starts over. Returns 0 at the end; throws SpoolError on I/O errors.
    std::size_t read(char* buffer, std::size_t capacity);
    void rewind();

    /// keep - store the message durably at target (written or renamed, then
    /// fsync'd with its directory); the spool is empty afterwards. Throws SpoolError.
    void keep(const std::string& target);

protected:
    int_type overflow(int_type ch) override;
    std::streamsize xsputn(const char* s, std::streamsize n) override;

private:
    void spill();

    std::string path_;
    std::string memory_;
    std::FILE* file_ = nullptr;
    bool spilled_ = false;
    bool failed_ = false;
    std::string error_; ///< why failed_, for finishWriting()
    bool writing_ = true;
    std::int64_t size_ = 0;
    std::size_t readPos_ = 0;
};

} // namespace popgate
