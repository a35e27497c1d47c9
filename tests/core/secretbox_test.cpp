// secretbox_test - sealing secrets at rest (core/secretbox.cpp).
#define BOOST_TEST_MODULE secretbox
#include "core/errors.h"
#include "core/secretbox.h"
#include "tests/support/testsupport.h"

#include <boost/test/unit_test.hpp>
#include <sys/stat.h>

using namespace popgate;

BOOST_AUTO_TEST_CASE(round_trip_and_fresh_iv)
{
    const SecretBox box = SecretBox::fromKey(std::vector<unsigned char>(32, 7));
    for (const std::string& secret :
         {std::string("s3cret"), std::string(""), std::string(3000, 'x'),
          std::string("pa's\"s;--\n\x01\xff")}) {
        const std::string sealed = box.seal(secret);
        BOOST_TEST(sealed.rfind("gcm1:", 0) == 0u);
        BOOST_TEST((secret.empty() || sealed.find(secret) == std::string::npos));
        BOOST_TEST(box.open(sealed) == secret);
    }
    BOOST_TEST(box.seal("same") != box.seal("same"));
}

BOOST_AUTO_TEST_CASE(tampering_and_wrong_key_are_detected)
{
    const SecretBox box = SecretBox::fromKey(std::vector<unsigned char>(32, 7));
    const SecretBox other = SecretBox::fromKey(std::vector<unsigned char>(32, 8));
    const std::string sealed = box.seal("s3cret-password");
    // Every character but the last base64 quad (whose low bits may be padding).
    for (std::size_t i = 5; i + 4 < sealed.size(); ++i) {
        std::string bad = sealed;
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        BOOST_CHECK_THROW(box.open(bad), OperationError);
    }
    BOOST_CHECK_THROW(other.open(sealed), OperationError);
    BOOST_CHECK_THROW(box.open("s3cret-password"), OperationError);
    BOOST_CHECK_THROW(box.open("gcm1:AAAA"), OperationError);
}

BOOST_AUTO_TEST_CASE(key_file_created_0600_and_reused)
{
    test::TempDir dir;
    const std::string path = dir.file("secret.key");
    const SecretBox a = SecretBox::loadOrCreate(path);
    struct stat st {
    };
    BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0777) == 0600u);
    BOOST_TEST(test::readFile(path).size() == 65u);
    const SecretBox b = SecretBox::loadOrCreate(path);
    BOOST_TEST(b.open(a.seal("x")) == "x");
}

BOOST_AUTO_TEST_CASE(bad_key_files_are_refused)
{
    test::TempDir dir;
    BOOST_CHECK_THROW(SecretBox::load(dir.file("missing")), OperationError);
    BOOST_CHECK_THROW(SecretBox::load(dir.write("short", "abcd\n", 0600)), OperationError);
    const std::string open = dir.write("open", std::string(64, 'a') + "\n", 0644);
    try {
        SecretBox::load(open);
        BOOST_ERROR("world-readable key accepted");
    } catch (const OperationError& e) {
        BOOST_TEST(std::string(e.what()).find("readable by others") != std::string::npos);
    }
    BOOST_CHECK_NO_THROW(SecretBox::load(dir.write("ok", std::string(64, 'a') + "\n", 0640)));
}

// The daemon's cache: the key read once, and again as soon as the file changes
// (a new key written in its place, a chmod), with the same refusals as load.
BOOST_AUTO_TEST_CASE(cache_follows_the_key_file)
{
    test::TempDir dir;
    const std::string path = dir.write("secret.key", std::string(64, 'a') + "\n", 0600);
    SecretCache cache(path);
    const std::string sealedA = SecretBox::load(path).seal("under a");
    BOOST_TEST(cache.open(sealedA, "password") == "under a");
    BOOST_TEST(cache.open(sealedA, "password") == "under a"); // remembered
    const auto boxA = cache.box();
    BOOST_TEST(cache.box() == boxA); // not read again

    // Another key in the same place: what was opened under the old one is forgotten.
    dir.write("new.key", std::string(64, 'b') + "\n", 0600);
    BOOST_TEST_REQUIRE(::rename(dir.file("new.key").c_str(), path.c_str()) == 0);
    try {
        cache.open(sealedA, "password");
        BOOST_ERROR("a secret of the old key opened under the new one");
    } catch (const OperationError& e) {
        BOOST_TEST(std::string(e.what()).rfind("password: stored secret", 0) == 0u, e.what());
    }
    BOOST_TEST(cache.box() != boxA);
    const std::string sealedB = SecretBox::load(path).seal("under b");
    BOOST_TEST(cache.open(sealedB, "password") == "under b");

    // Readable by others: refused at once, as SecretBox::load refuses it.
    BOOST_TEST_REQUIRE(::chmod(path.c_str(), 0644) == 0);
    BOOST_CHECK_THROW(cache.open(sealedB, "password"), OperationError);
    BOOST_TEST_REQUIRE(::chmod(path.c_str(), 0600) == 0);
    BOOST_TEST(cache.open(sealedB, "password") == "under b");
    BOOST_TEST_REQUIRE(::unlink(path.c_str()) == 0);
    BOOST_CHECK_THROW(cache.box(), OperationError);
}
