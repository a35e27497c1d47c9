// secretbox.cpp - AES-256-GCM sealing with Poco::Crypto (see secretbox.h).
#include "core/secretbox.h"

#include "core/errors.h"
#include "core/text.h"

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <Poco/Crypto/Cipher.h>
#include <Poco/Crypto/CipherFactory.h>
#include <Poco/Crypto/CipherKey.h>
#include <Poco/Crypto/CryptoTransform.h>
#include <Poco/Exception.h>
#include <Poco/HexBinaryDecoder.h>
#include <Poco/HexBinaryEncoder.h>
#include <Poco/RandomStream.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace popgate
{

namespace
{

constexpr std::size_t kKeySize = 32;
constexpr std::size_t kIvSize = 12;
constexpr std::size_t kTagSize = 16;
const std::string kPrefix = "gcm1:";

std::vector<unsigned char> randomBytes(std::size_t n)
{
    std::vector<unsigned char> out(n);
    Poco::RandomInputStream rnd;
    rnd.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
    return out;
}

// run - push data through a transform (encrypt or decrypt) and finalize it.
std::string run(Poco::Crypto::CryptoTransform& t, const std::string& in)
{
    std::string out(in.size() + t.blockSize() + 32, '\0');
    auto* o = reinterpret_cast<unsigned char*>(&out[0]);
    std::streamsize n = t.transform(reinterpret_cast<const unsigned char*>(in.data()),
                                    static_cast<std::streamsize>(in.size()), o,
                                    static_cast<std::streamsize>(out.size()));
    n += t.finalize(o + n, static_cast<std::streamsize>(out.size()) - n);
    out.resize(static_cast<std::size_t>(n));
    return out;
}

Poco::Crypto::Cipher::Ptr cipherFor(const std::vector<unsigned char>& key,
                                    const std::vector<unsigned char>& iv)
{
    Poco::Crypto::CipherKey ck("aes-256-gcm", key, iv);
    return Poco::Crypto::CipherFactory::defaultFactory().createCipher(ck);
}

} // namespace

SecretBox SecretBox::fromKey(const std::vector<unsigned char>& key)
{
    if (key.size() != kKeySize)
        throw std::invalid_argument("SecretBox key must be 32 bytes");
    return SecretBox(key);
}

namespace
{

std::vector<unsigned char> readKey(const std::string& keyFile)
{
    struct stat st {
    };
    if (::stat(keyFile.c_str(), &st) != 0)
        throw OperationError("key file " + keyFile + ": " + std::strerror(errno));
    if (st.st_mode & S_IROTH)
        throw OperationError("key file " + keyFile +
                             ": readable by others; chmod o-rwx it (mode 0600 or 0640)");
    std::ifstream in(keyFile);
    std::string hex;
    if (!in || !std::getline(in, hex))
        throw OperationError("key file " + keyFile + ": cannot read it");
    hex = trim(hex);
    if (hex.size() != 2 * kKeySize ||
        hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        throw OperationError("key file " + keyFile + ": expected 64 hex digits");
    std::istringstream hs(hex);
    Poco::HexBinaryDecoder dec(hs);
    std::vector<unsigned char> key(kKeySize);
    dec.read(reinterpret_cast<char*>(key.data()), kKeySize);
    return key;
}

// kKeyMode - a key a program creates (a missing key file) is its creator's alone:
// which group may share it is not the program's to guess (a daemon's own group
// would be the wrong one). The package's postinst creates both keys itself, 0640
// with the group that shares each (secret.key popgate-admin, header.key
// popgate-db), before a daemon starts; readKey accepts that, never others.
constexpr mode_t kKeyMode = 0600;

// directoryOf - the directory a key file is created in.
std::string directoryOf(const std::string& keyFile)
{
    const auto slash = keyFile.rfind('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : keyFile.substr(0, slash);
}

// createKey - false when the file exists already. The key is written and synced
// under a temporary name with its final mode, then renamed without replacing:
// a reader never sees a partial key, and a key created meanwhile is kept.
bool createKey(const std::string& keyFile)
{
    struct stat existing {
    };
    if (::stat(keyFile.c_str(), &existing) == 0)
        return false;
    const std::string tmp =
        keyFile + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(::time(nullptr));
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        throw OperationError("key file " + keyFile + ": cannot create it: " + std::strerror(errno));
    std::ostringstream hex;
    {
        Poco::HexBinaryEncoder enc(hex);
        enc.rdbuf()->setLineLength(0);
        const auto key = randomBytes(kKeySize);
        enc.write(reinterpret_cast<const char*>(key.data()), kKeySize);
        enc.close();
    }
    const std::string line = hex.str() + "\n";
    bool ok = ::fchmod(fd, kKeyMode) == 0 &&
              ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
              ::fsync(fd) == 0;
    const int error = errno;
    ok = ::close(fd) == 0 && ok;
    if (!ok) {
        ::unlink(tmp.c_str());
        throw OperationError("key file " + keyFile + ": cannot write it: " + std::strerror(error));
    }
    // link + unlink: an atomic create that never replaces a key created meanwhile.
    if (::link(tmp.c_str(), keyFile.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        if (e == EEXIST)
            return false;
        throw OperationError("key file " + keyFile + ": cannot create it: " + std::strerror(e));
    }
    ::unlink(tmp.c_str());
    const int dfd = ::open(directoryOf(keyFile).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
    return true;
}

} // namespace

std::vector<unsigned char> loadKeyFile(const std::string& path, bool create)
{
    if (create)
        createKey(path);
    return readKey(path);
}

void checkKeyFile(const std::string& path, KeyFile when)
{
    struct stat st {
    };
    if (::stat(path.c_str(), &st) == 0 || errno != ENOENT || when == KeyFile::Required) {
        readKey(path);
        return;
    }
    if (when == KeyFile::Optional)
        return;
    if (::access(directoryOf(path).c_str(), W_OK | X_OK) != 0)
        throw OperationError("key file " + path + ": cannot create it: " + std::strerror(errno));
}

SecretBox SecretBox::load(const std::string& keyFile)
{
    return SecretBox(loadKeyFile(keyFile, false));
}

SecretBox SecretBox::loadOrCreate(const std::string& keyFile)
{
    return SecretBox(loadKeyFile(keyFile, true));
}

std::string SecretBox::seal(const std::string& plaintext) const
{
    const auto iv = randomBytes(kIvSize);
    auto cipher = cipherFor(key_, iv);
    auto enc = cipher->createEncryptor();
    std::string blob(iv.begin(), iv.end());
    blob += run(*enc, plaintext);
    blob += enc->getTag(kTagSize);
    std::ostringstream out;
    Poco::Base64Encoder b64(out);
    b64.rdbuf()->setLineLength(0);
    b64 << blob;
    b64.close();
    return kPrefix + out.str();
}

std::string SecretBox::open(const std::string& sealed) const
{
    if (sealed.compare(0, kPrefix.size(), kPrefix) != 0)
        throw OperationError("stored secret is not sealed by popgate (unknown format)");
    std::istringstream in(sealed.substr(kPrefix.size()));
    Poco::Base64Decoder b64(in);
    std::string blob((std::istreambuf_iterator<char>(b64)), std::istreambuf_iterator<char>());
    if (blob.size() < kIvSize + kTagSize)
        throw OperationError("stored secret is damaged (too short)");
    const std::vector<unsigned char> iv(blob.begin(), blob.begin() + kIvSize);
    const std::string tag = blob.substr(blob.size() - kTagSize);
    const std::string body = blob.substr(kIvSize, blob.size() - kIvSize - kTagSize);
    try {
        auto cipher = cipherFor(key_, iv);
        auto dec = cipher->createDecryptor();
        dec->setTag(tag);
        return run(*dec, body);
    } catch (const Poco::Exception&) {
        throw OperationError("stored secret failed its integrity check "
                             "(altered, or sealed under another secret key)");
    }
}

bool SecretCache::Identity::operator==(const Identity& o) const
{
    return dev == o.dev && ino == o.ino && size == o.size && mtimeSec == o.mtimeSec &&
           mtimeNsec == o.mtimeNsec && ctimeSec == o.ctimeSec && ctimeNsec == o.ctimeNsec;
}

std::shared_ptr<const SecretBox> SecretCache::current()
{
    struct stat st {
    };
    Identity now;
    if (::stat(keyFile_.c_str(), &st) == 0) {
        now.dev = st.st_dev;
        now.ino = st.st_ino;
        now.size = st.st_size;
        now.mtimeSec = st.st_mtim.tv_sec;
        now.mtimeNsec = st.st_mtim.tv_nsec;
        now.ctimeSec = st.st_ctim.tv_sec;
        now.ctimeNsec = st.st_ctim.tv_nsec;
    }
    if (!box_ || !(now == identity_)) {
        box_.reset();
        opened_.clear();
        // throws as SecretBox::load (missing, readable by others, malformed): nothing kept
        box_ = std::make_shared<const SecretBox>(SecretBox::load(keyFile_));
        identity_ = now;
    }
    return box_;
}

std::shared_ptr<const SecretBox> SecretCache::box()
{
    std::lock_guard<std::mutex> lock(mutex_);
    return current();
}

std::string SecretCache::open(const std::string& sealed, const std::string& what)
{
    std::lock_guard<std::mutex> lock(mutex_);
    const auto box = current();
    if (auto it = opened_.find(sealed); it != opened_.end())
        return it->second;
    std::string plain;
    try {
        plain = box->open(sealed); // throws: nothing remembered
    } catch (const OperationError& e) {
        throw OperationError(what + ": " + e.what());
    }
    if (opened_.size() >= kMaxOpened)
        opened_.clear();
    opened_.emplace(sealed, plain);
    return plain;
}

} // namespace popgate
