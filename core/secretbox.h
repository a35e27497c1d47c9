// secretbox.h - seals account secrets (passwords, tokens) for the database
// with AES-256-GCM under a local key file. A sealed secret is
// "gcm1:" + base64(12-byte IV | ciphertext | 16-byte tag); tampering or a
// wrong key is detected on open. Plaintext secrets are never logged.
#pragma once

#include "core/errors.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <vector>

namespace popgate
{

/// SecretError - a secret popgate keeps cannot be used: the key file cannot be
/// loaded, or a sealed secret (password, token, client secret) does not open
/// under it. Neither the provider's nor the server's doing (Failure::Secret).
/// SecretBox itself throws plain OperationError; the callers that must tell the
/// two apart (accessTokenFor, popgated's scheduler) wrap it in this.
class SecretError : public OperationError
{
public:
    using OperationError::OperationError;
};

/// loadKeyFile - the 32 bytes of a 64-hex-digit key file; with create, a fresh
/// random key is written first when the file does not exist: mode 0600 whatever
/// the umask, written and synced under a temporary name, then linked into place
/// (never replacing a key created meanwhile). Throws OperationError when missing,
/// malformed or readable by others.
std::vector<unsigned char> loadKeyFile(const std::string& path, bool create);

/// KeyFile - what checkKeyFile accepts when the file does not exist.
enum class KeyFile {
    Required,  ///< missing is an error
    Creatable, ///< missing is fine when loadKeyFile(path, true) could create it
    Optional,  ///< missing is fine
};

/// checkKeyFile - what loadKeyFile would refuse, without creating anything: an
/// existing file goes through the very checks loadKeyFile makes (same messages:
/// readable by others, malformed, unreadable); a missing one is judged by when.
/// Throws OperationError.
void checkKeyFile(const std::string& path, KeyFile when);

class SecretBox
{
public:
    /// load - read a 64-hex-digit key file; throws OperationError when it is
    /// missing, malformed or readable by others.
    static SecretBox load(const std::string& keyFile);
    /// loadOrCreate - load, creating a fresh random key (mode 0600) if the file
    /// does not exist yet; throws OperationError when it cannot.
    static SecretBox loadOrCreate(const std::string& keyFile);
    /// fromKey - a box over 32 raw key bytes (tests); throws std::invalid_argument.
    static SecretBox fromKey(const std::vector<unsigned char>& key);

    /// seal - encrypt with a fresh random IV.
    std::string seal(const std::string& plaintext) const;
    /// open - decrypt; throws OperationError when the text was altered, sealed
    /// under another key, or is not a sealed secret.
    std::string open(const std::string& sealed) const;

private:
    explicit SecretBox(std::vector<unsigned char> key) : key_(std::move(key)) {}
    std::vector<unsigned char> key_;
};

/// SecretCache - a daemon's key file, read again only when it changed, and the
/// secrets opened under it (issue Perf: reading the key and running AES-GCM on
/// every poll was a fifth of an idle poll). Every call stats the file: another
/// inode, size, mtime or ctime (popgatectl writing a new key, a chmod) drops the
/// key and every secret opened under it; the same checks as SecretBox::load
/// (readable by others, malformed, missing) hold at each call. Thread-safe.
class SecretCache
{
public:
    explicit SecretCache(std::string keyFile) : keyFile_(std::move(keyFile)) {}
    /// box - the key file's current box; throws OperationError as SecretBox::load.
    std::shared_ptr<const SecretBox> box();
    /// open - box()->open(sealed), remembered by sealed text while the key is unchanged.
    /// Throws OperationError: the key file's (as box()), or the secret's, then
    /// prefixed with what ("password: stored secret failed ...").
    std::string open(const std::string& sealed, const std::string& what);

private:
    struct Identity {
        dev_t dev = 0;
        ino_t ino = 0;
        off_t size = -1;
        long mtimeSec = 0, mtimeNsec = 0, ctimeSec = 0, ctimeNsec = 0;
        bool operator==(const Identity& o) const;
    };
    /// current - under mutex_: the box, loaded again when the file changed.
    std::shared_ptr<const SecretBox> current();
    /// kMaxOpened - past this many secrets remembered, they are forgotten (and
    /// opened again as needed): passwords replaced over a long life pile up otherwise.
    static constexpr std::size_t kMaxOpened = 100000;

    std::string keyFile_;
    std::mutex mutex_;
    Identity identity_;
    std::shared_ptr<const SecretBox> box_;
    std::map<std::string, std::string> opened_; ///< sealed -> plaintext, under box_
};

} // namespace popgate
