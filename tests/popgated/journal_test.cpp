// journal_test - the delivery journal (plugin/popgated/journal.cpp): what
// append writes, read gives back, a line torn by a crash is ignored, clear
// empties it, and nothing that could break a line is ever written.
#define BOOST_TEST_MODULE journal
#include "plugin/popgated/journal.h"

#include "tests/support/testsupport.h"

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sys/stat.h>

using namespace popgate;

BOOST_AUTO_TEST_CASE(append_read_clear)
{
    test::TempDir dir;
    const std::string path = dir.path() + "/journal/helpdesk";
    DeliveryJournal journal(path);
    BOOST_TEST(journal.read().empty()); // no file yet
    BOOST_TEST(journal.append({"uidl-1", "ABC123"}));
    BOOST_TEST(journal.append({"sha256:" + std::string(64, 'a'), ""}));
    const auto entries = DeliveryJournal(path).read(); // as the next poll reads it
    BOOST_TEST_REQUIRE(entries.size() == 2u);
    BOOST_TEST(entries[0].uidl == "uidl-1");
    BOOST_TEST(entries[0].queueId == "ABC123");
    BOOST_TEST(entries[1].uidl == "sha256:" + std::string(64, 'a'));
    BOOST_TEST(entries[1].queueId == "");
    struct stat st;
    BOOST_TEST_REQUIRE(::stat(path.c_str(), &st) == 0);
    BOOST_TEST((st.st_mode & 0007) == 0u, "not readable by others");
    journal.clear();
    BOOST_TEST(DeliveryJournal(path).read().empty());
    BOOST_TEST(journal.append({"uidl-2", "Q2"})); // appends again after clear
    BOOST_TEST(DeliveryJournal(path).read().size() == 1u);
}

BOOST_AUTO_TEST_CASE(torn_and_hostile_lines)
{
    test::TempDir dir;
    const std::string path = dir.path() + "/j";
    {
        std::ofstream out(path, std::ios::binary);
        out << "uidl-1 Q1\n" << "garbage-without-queue-field\n" << "uidl-3 Q3"; // torn: no newline
    }
    const auto entries = DeliveryJournal(path).read();
    BOOST_TEST_REQUIRE(entries.size() == 1u);
    BOOST_TEST(entries[0].uidl == "uidl-1");

    DeliveryJournal journal(dir.path() + "/k");
    BOOST_TEST(!journal.append({"two words", "Q"}));
    BOOST_TEST(!journal.append({"line\nbreak", "Q"}));
    BOOST_TEST(!journal.append({"", "Q"}));
    BOOST_TEST(!journal.append({"uidl", "Q\n"}));
    BOOST_TEST(DeliveryJournal(dir.path() + "/k").read().empty());
}
