// filter_store_test - core/filter_store.cpp and sql/*/0003_filters.sql on real
// SQLite and on a real PostgreSQL server ($POPGATE_TEST_PG_CONNECT, started by
// scripts/test.sh; without it the PostgreSQL rows fail). Every case runs on
// both dialects.
#define BOOST_TEST_MODULE filter_store
#include "core/dbdrivers.h"
#include "core/errors.h"
#include "core/filter_store.h"
#include "core/store.h"
#include "tests/support/testdb.h"
#include "tests/support/testsupport.h"

#include <Poco/Data/Session.h>
#include <Poco/Exception.h>
#include <Poco/Process.h>
#include <atomic>
#include <boost/test/unit_test.hpp>
#include <functional>
#include <memory>

using namespace popgate;
using namespace Poco::Data::Keywords;

namespace
{

using Strings = std::vector<std::string>;

// Db - backend, migrated store and filter store of one dialect.
struct Db {
    std::unique_ptr<test::TestDatabase> backend;
    std::unique_ptr<Store> store;
    std::unique_ptr<FilterStore> filters;
    explicit Db(const std::string& dialect)
    {
        backend = std::make_unique<test::TestDatabase>(dialect);
        store = std::make_unique<Store>(backend->config(), Store::Open::CreateFile);
        store->migrate();
        filters = std::make_unique<FilterStore>(*store);
    }
};

// eachDialect - run the body once per dialect, labelled.
void eachDialect(const std::function<void(Db&)>& body)
{
    for (const char* d : test::kDialects) {
        BOOST_TEST_CONTEXT(d)
        {
            Db db(d);
            body(db);
        }
    }
}

SystemAddressFilter systemFilter(const std::string& name, bool isDefault = false,
                                 Direction direction = Direction::Inbound)
{
    SystemAddressFilter f;
    f.name = name;
    f.direction = direction;
    f.isDefault = isDefault;
    return f;
}

EmailAddressFilter addressFilter(const std::string& name, FilterType type, Strings domains,
                                 Strings exceptions = {})
{
    EmailAddressFilter f;
    f.name = name;
    f.type = type;
    f.domains = std::move(domains);
    f.exceptions = std::move(exceptions);
    return f;
}

Account account(const std::string& name, const std::string& filter)
{
    Account a;
    a.name = name;
    a.server = "pop.example.com";
    a.auth = AuthKind::None;
    a.mailbox = name + "@example.com";
    a.filter = filter;
    return a;
}

// messageOf - the what() of the exception fn throws (of type E), or "" if none.
template <typename E> std::string messageOf(const std::function<void()>& fn)
{
    try {
        fn();
    } catch (const E& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_CASE(system_filter_round_trip)
{
    eachDialect([](Db& db) {
        FilterStore& fs = *db.filters;
        BOOST_TEST(fs.systemFilters().empty());
        SystemAddressFilter f = systemFilter("inbound-default", true);
        f.description = "O'Brien's \"list\"; DROP TABLE system_filters;-- $1 ? %";
        fs.addSystemFilter(f);
        BOOST_TEST(f.id > 0);
        auto got = fs.loadSystemFilter("inbound-default");
        BOOST_TEST_REQUIRE(got.has_value());
        BOOST_TEST(got->description == f.description);
        BOOST_TEST(got->isDefault);
        BOOST_TEST(got->active);
        BOOST_TEST((got->direction == Direction::Inbound));
        BOOST_TEST(got->addressFilters.empty());

        SystemAddressFilter out = systemFilter("outbound-x", false, Direction::Outbound);
        out.active = false;
        fs.addSystemFilter(out);
        const auto all = fs.systemFilters();
        BOOST_TEST_REQUIRE(all.size() == 2u);
        BOOST_TEST(all[0].name == "inbound-default");
        BOOST_TEST(all[1].name == "outbound-x");
        BOOST_TEST(!all[1].active);
        BOOST_TEST((all[1].direction == Direction::Outbound));

        got->description = "changed";
        got->isDefault = false;
        fs.updateSystemFilter(*got);
        BOOST_TEST(fs.loadSystemFilter("inbound-default")->description == "changed");
        BOOST_TEST(!fs.loadSystemFilter("inbound-default")->isDefault);

        SystemAddressFilter dup = systemFilter("inbound-default");
        BOOST_TEST(contains(messageOf<InputError>([&] { fs.addSystemFilter(dup); }),
                            "name: a system filter of that name exists already"));
        SystemAddressFilter ghost = systemFilter("ghost");
        BOOST_TEST(contains(messageOf<InputError>([&] { fs.updateSystemFilter(ghost); }),
                            "system filter \"ghost\": no such system filter"));
        SystemAddressFilter bad = systemFilter("x'; DROP TABLE accounts;--");
        BOOST_CHECK_THROW(fs.addSystemFilter(bad), InputError);
        SystemAddressFilter longText = systemFilter("long");
        longText.description = std::string(1025, 'd');
        BOOST_TEST(contains(messageOf<InputError>([&] { fs.addSystemFilter(longText); }),
                            "description: at most 1024 bytes (got 1025)"));

        BOOST_TEST(fs.removeSystemFilter("outbound-x"));
        BOOST_TEST(!fs.removeSystemFilter("outbound-x"));
        BOOST_TEST(!fs.loadSystemFilter("x' OR '1'='1").has_value());
        BOOST_TEST(fs.systemFilters().size() == 1u);
    });
}

BOOST_AUTO_TEST_CASE(address_filter_round_trip_keeps_order_and_metacharacters)
{
    eachDialect([](Db& db) {
        FilterStore& fs = *db.filters;
        EmailAddressFilter f = addressFilter(
            "spam", FilterType::Deny, {"bad.com", "*.evil.com", "mail*.example.com", "a.org"},
            {"\"o'brien; drop table x;--\"@bad.com", "boss@bad.com", "*-noreply@evil.com"});
        fs.addAddressFilter(f);
        BOOST_TEST(f.id > 0);
        auto got = fs.addressFilter("spam");
        BOOST_TEST_REQUIRE(got.has_value());
        BOOST_TEST(got->domains == f.domains, boost::test_tools::per_element());
        BOOST_TEST(got->exceptions == f.exceptions, boost::test_tools::per_element());
        BOOST_TEST((got->type == FilterType::Deny));
        BOOST_TEST(got->active);

        got->type = FilterType::Allow;
        got->active = false;
        got->domains = {"corp.com"};
        got->exceptions = {};
        fs.updateAddressFilter(*got);
        auto again = fs.addressFilter("spam");
        BOOST_TEST((again->type == FilterType::Allow));
        BOOST_TEST(!again->active);
        BOOST_TEST(again->domains == Strings{"corp.com"}, boost::test_tools::per_element());
        BOOST_TEST(again->exceptions.empty());

        EmailAddressFilter other = addressFilter("other", FilterType::Deny, {"x.com"});
        fs.addAddressFilter(other);
        const auto all = fs.addressFilters();
        BOOST_TEST_REQUIRE(all.size() == 2u);
        BOOST_TEST(all[0].name == "other");
        BOOST_TEST(all[0].domains == Strings{"x.com"}, boost::test_tools::per_element());
        BOOST_TEST(all[1].domains == Strings{"corp.com"}, boost::test_tools::per_element());

        struct Row {
            const char* label;
            EmailAddressFilter filter;
            const char* message;
        };
        const std::vector<Row> rows = {
            {"taken name", addressFilter("spam", FilterType::Deny, {}),
             "address filter \"spam\": name: an address filter of that name exists already"},
            {"bad name", addressFilter("a b", FilterType::Deny, {}), "a name is 1-64 characters"},
            {"domain with @", addressFilter("d1", FilterType::Deny, {"x@bad.com"}),
             "put addresses in the exceptions"},
            {"domain twice", addressFilter("d2", FilterType::Deny, {"bad.com", "BAD.com"}),
             "address filter \"d2\": domains: \"BAD.com\" is listed twice"},
            {"exception twice", addressFilter("d3", FilterType::Deny, {}, {"a@b.com", "a@b.com"}),
             "address filter \"d3\": exceptions: \"a@b.com\" is listed twice"},
        };
        for (const Row& r : rows) {
            BOOST_TEST_CONTEXT(r.label)
            {
                EmailAddressFilter copy = r.filter;
                const std::string msg = messageOf<InputError>([&] { fs.addAddressFilter(copy); });
                BOOST_TEST(contains(msg, r.message), msg);
            }
        }
        BOOST_TEST(fs.addressFilters().size() == 2u);

        BOOST_TEST(fs.removeAddressFilter("other"));
        BOOST_TEST(!fs.removeAddressFilter("other"));
        EmailAddressFilter ghost = addressFilter("ghost", FilterType::Deny, {});
        BOOST_TEST(contains(messageOf<InputError>([&] { fs.updateAddressFilter(ghost); }),
                            "address filter \"ghost\": no such address filter"));
    });
}

BOOST_AUTO_TEST_CASE(one_active_default_per_direction_is_enforced_by_the_schema)
{
    eachDialect([](Db& db) {
        FilterStore& fs = *db.filters;
        SystemAddressFilter first = systemFilter("first", true);
        fs.addSystemFilter(first);
        const std::int64_t before = fs.generation();

        SystemAddressFilter second = systemFilter("second", true);
        const std::string msg = messageOf<InputError>([&] { fs.addSystemFilter(second); });
        BOOST_TEST(contains(msg, "system filter \"second\": default: system filter \"first\" is "
                                 "already the active inbound default"),
                   msg);
        BOOST_TEST(!fs.loadSystemFilter("second").has_value());
        BOOST_TEST(fs.generation() == before); // a refused change changes nothing

        // An inactive default, or a default of the other direction, is fine.
        SystemAddressFilter inactive = systemFilter("inactive-default", true);
        inactive.active = false;
        fs.addSystemFilter(inactive);
        SystemAddressFilter outbound = systemFilter("outbound-default", true, Direction::Outbound);
        fs.addSystemFilter(outbound);
        // ...but activating it while "first" holds the place is not.
        inactive.active = true;
        BOOST_TEST(
            contains(messageOf<InputError>([&] { fs.updateSystemFilter(inactive); }),
                     "default: system filter \"first\" is already the active inbound default"));
        BOOST_TEST(!fs.loadSystemFilter("inactive-default")->active);
        // Hand over: first gives it up, then the other may take it.
        first.isDefault = false;
        fs.updateSystemFilter(first);
        fs.updateSystemFilter(inactive);
        BOOST_TEST(fs.activeDefault(Direction::Inbound)->name == "inactive-default");
        BOOST_TEST(fs.activeDefault(Direction::Outbound)->name == "outbound-default");

        // The schema itself refuses, whoever writes the row.
        auto rawInsert =
            [&] {
                db.store->session()
                    << "INSERT INTO system_filters (name, direction, active, is_default, "
                       "description, created_at, updated_at) VALUES ('raw', 'inbound', 1, "
                       "1, '', 0, 0)",
                    now;
            };
        BOOST_CHECK_THROW(rawInsert(), Poco::Exception);
    });
}

BOOST_AUTO_TEST_CASE(limits_are_enforced_with_clear_messages)
{
    eachDialect([](Db& db) {
        FilterStore& fs = *db.filters;
        Strings domains, exceptions;
        for (int i = 0; i < 101; ++i)
            domains.push_back("d" + std::to_string(i) + ".example");
        for (int i = 0; i < 1001; ++i)
            exceptions.push_back("u" + std::to_string(i) + "@example.com");

        EmailAddressFilter atLimit = addressFilter(
            "at-limit", FilterType::Deny, Strings(domains.begin(), domains.begin() + 100),
            Strings(exceptions.begin(), exceptions.begin() + 1000));
        fs.addAddressFilter(atLimit);
        BOOST_TEST(fs.addressFilter("at-limit")->exceptions.size() == 1000u);

        EmailAddressFilter tooManyDomains = addressFilter("big", FilterType::Deny, domains);
        std::string msg = messageOf<InputError>([&] { fs.addAddressFilter(tooManyDomains); });
        BOOST_TEST(contains(msg, "address filter \"big\": 101 domains; the limit is 100"), msg);
        EmailAddressFilter tooManyExceptions =
            addressFilter("big", FilterType::Deny, {}, exceptions);
        msg = messageOf<InputError>([&] { fs.addAddressFilter(tooManyExceptions); });
        BOOST_TEST(contains(msg, "address filter \"big\": 1001 exceptions; the limit is 1000"),
                   msg);
        BOOST_TEST(!fs.addressFilter("big").has_value());

        // Growing an existing filter past the limit is refused the same way.
        EmailAddressFilter grown = *fs.addressFilter("at-limit");
        grown.domains.push_back("one-more.example");
        msg = messageOf<InputError>([&] { fs.updateAddressFilter(grown); });
        BOOST_TEST(contains(msg, "101 domains; the limit is 100"), msg);
        BOOST_TEST(fs.addressFilter("at-limit")->domains.size() == 100u);

        // A system filter holds at most 100 address filters.
        SystemAddressFilter s = systemFilter("many");
        fs.addSystemFilter(s);
        for (int i = 0; i < 101; ++i) {
            EmailAddressFilter f = addressFilter("f" + std::to_string(i), FilterType::Deny,
                                                 {"x" + std::to_string(i) + ".example"});
            fs.addAddressFilter(f);
        }
        for (int i = 0; i < 100; ++i)
            fs.attach("many", "f" + std::to_string(i));
        msg = messageOf<InputError>([&] { fs.attach("many", "f100"); });
        BOOST_TEST(contains(msg, "system filter \"many\": 101 address filters; the limit is 100"),
                   msg);
        BOOST_TEST(fs.loadSystemFilter("many")->addressFilters.size() == 100u);
    });
}

BOOST_AUTO_TEST_CASE(attach_detach_keep_order_and_the_loaded_filter_compiles)
{
    eachDialect([](Db& db) {
        FilterStore& fs = *db.filters;
        SystemAddressFilter s = systemFilter("inbound-default", true);
        fs.addSystemFilter(s);
        EmailAddressFilter tlds = addressFilter("tlds", FilterType::Deny, {"*.com"});
        EmailAddressFilter partners = addressFilter("partners", FilterType::Allow, {"corp.com"});
        EmailAddressFilter spam = addressFilter("spam", FilterType::Deny, {"bad.org"});
        fs.addAddressFilter(tlds);
        fs.addAddressFilter(partners);
        fs.addAddressFilter(spam);
        fs.attach("inbound-default", "tlds");
        fs.attach("inbound-default", "spam");
        fs.attach("inbound-default", "partners");
        auto loaded = fs.loadSystemFilter("inbound-default");
        BOOST_TEST_REQUIRE(loaded->addressFilters.size() == 3u);
        BOOST_TEST(loaded->addressFilters[0].name == "tlds");
        BOOST_TEST(loaded->addressFilters[1].name == "spam");
        BOOST_TEST(loaded->addressFilters[2].name == "partners");
        BOOST_TEST(loaded->addressFilters[2].domains == Strings{"corp.com"},
                   boost::test_tools::per_element());

        CompiledFilter compiled(*loaded);
        BOOST_TEST(!compiled.checkAddress("x@corp.com", AddressField::HeaderFrom).blocked);
        BOOST_TEST(compiled.checkAddress("x@other.com", AddressField::HeaderFrom).blocked);
        const Verdict bad = compiled.checkAddress("x@bad.org", AddressField::HeaderFrom);
        BOOST_TEST(bad.blocked);
        BOOST_TEST(bad.blocker()->addressFilter == "spam"); // the first that denied, in order
        BOOST_TEST(bad.steps.size() == 3u);

        struct Row {
            const char* label;
            std::function<void()> call;
            const char* message;
        };
        const std::vector<Row> rows = {
            {"attach twice", [&] { fs.attach("inbound-default", "spam"); },
             "address filter \"spam\" is attached already"},
            {"attach to a missing system filter", [&] { fs.attach("nope", "spam"); },
             "system filter \"nope\": no such system filter"},
            {"attach a missing address filter", [&] { fs.attach("inbound-default", "nope"); },
             "address filter \"nope\": no such address filter"},
            {"remove while attached", [&] { fs.removeAddressFilter("spam"); },
             "address filter \"spam\": attached to system filter(s) 'inbound-default'; detach it "
             "first"},
        };
        for (const Row& r : rows) {
            BOOST_TEST_CONTEXT(r.label)
            {
                const std::string msg = messageOf<InputError>(r.call);
                BOOST_TEST(contains(msg, r.message), msg);
            }
        }

        fs.detach("inbound-default", "spam");
        BOOST_TEST(contains(messageOf<InputError>([&] { fs.detach("inbound-default", "spam"); }),
                            "is not attached"));
        BOOST_TEST(fs.systemFiltersUsing("spam").empty());
        BOOST_TEST(fs.systemFiltersUsing("tlds") == Strings{"inbound-default"},
                   boost::test_tools::per_element());
        fs.attach("inbound-default", "spam"); // re-attached at the end
        loaded = fs.loadSystemFilter("inbound-default");
        BOOST_TEST(loaded->addressFilters.back().name == "spam");
        BOOST_TEST(fs.removeSystemFilter("inbound-default")); // memberships go with it
        BOOST_TEST(fs.removeAddressFilter("spam"));
    });
}

BOOST_AUTO_TEST_CASE(resolution_rule)
{
    eachDialect([](Db& db) {
        FilterStore& fs = *db.filters;
        Account plain = account("plain", "");
        // Nothing configured: no filter, no warning.
        FilterResolution r = fs.resolveForAccount(plain);
        BOOST_TEST(!r.filter.has_value());
        BOOST_TEST((r.source == FilterSource::None));
        BOOST_TEST(r.warning.empty());

        SystemAddressFilter def = systemFilter("inbound-default", true);
        SystemAddressFilter own = systemFilter("staff");
        SystemAddressFilter off = systemFilter("retired");
        off.active = false;
        SystemAddressFilter outDefault = systemFilter("out", true, Direction::Outbound);
        fs.addSystemFilter(def);
        fs.addSystemFilter(own);
        fs.addSystemFilter(off);
        fs.addSystemFilter(outDefault);
        EmailAddressFilter staff = addressFilter("corp", FilterType::Allow, {"corp.com"});
        fs.addAddressFilter(staff);
        fs.attach("staff", "corp");

        Account withOwn = account("helpdesk", "staff");
        Account withOff = account("old", "retired");
        Account withGhost = account("broken", "ghost");
        for (Account* a : {&plain, &withOwn, &withOff, &withGhost})
            db.store->addAccount(*a);

        r = fs.resolveForAccount(withOwn);
        BOOST_TEST_REQUIRE(r.filter.has_value());
        BOOST_TEST(r.filter->name == "staff");
        BOOST_TEST((r.source == FilterSource::Account));
        BOOST_TEST(r.filter->addressFilters.size() == 1u);
        BOOST_TEST(r.warning.empty());

        r = fs.resolveForAccount(plain);
        BOOST_TEST_REQUIRE(r.filter.has_value());
        BOOST_TEST(r.filter->name == "inbound-default"); // never the outbound default
        BOOST_TEST((r.source == FilterSource::Default));

        r = fs.resolveForAccount(withOff);
        BOOST_TEST(!r.filter.has_value());
        BOOST_TEST((r.source == FilterSource::None));
        BOOST_TEST(r.warning == "account 'old': filter: system filter \"retired\" is inactive; no "
                                "filter applies (all mail allowed)");

        const std::string msg = messageOf<OperationError>([&] { fs.resolveForAccount(withGhost); });
        BOOST_TEST(msg == "account 'broken': filter: system filter \"ghost\" does not exist");

        // An inactive default is no default.
        def.active = false;
        fs.updateSystemFilter(def);
        BOOST_TEST(!fs.resolveForAccount(plain).filter.has_value());

        // A filter named by an account cannot be removed; the message names them.
        const std::string refused = messageOf<InputError>([&] { fs.removeSystemFilter("staff"); });
        BOOST_TEST(refused == "system filter \"staff\": in use by account(s) 'helpdesk'; set their "
                              "filter to another one first");
        BOOST_TEST(fs.accountsUsing("staff") == Strings{"helpdesk"},
                   boost::test_tools::per_element());
        BOOST_TEST(fs.loadSystemFilter("staff").has_value());
    });
}

BOOST_AUTO_TEST_CASE(every_change_bumps_the_generation_once)
{
    eachDialect([](Db& db) {
        FilterStore& fs = *db.filters;
        std::int64_t last = fs.generation();
        BOOST_TEST(last >= 1);
        struct Row {
            const char* label;
            std::function<void()> change;
        };
        SystemAddressFilter s = systemFilter("inbound-default", true);
        EmailAddressFilter a = addressFilter("spam", FilterType::Deny, {"bad.com"});
        const std::vector<Row> rows = {
            {"add system filter", [&] { fs.addSystemFilter(s); }},
            {"update system filter",
             [&] {
                 s.description = "x";
                 fs.updateSystemFilter(s);
             }},
            {"add address filter", [&] { fs.addAddressFilter(a); }},
            {"update address filter",
             [&] {
                 a.domains.push_back("worse.com");
                 fs.updateAddressFilter(a);
             }},
            {"attach", [&] { fs.attach("inbound-default", "spam"); }},
            {"detach", [&] { fs.detach("inbound-default", "spam"); }},
            {"remove address filter", [&] { fs.removeAddressFilter("spam"); }},
            {"remove system filter", [&] { fs.removeSystemFilter("inbound-default"); }},
        };
        for (const Row& r : rows) {
            BOOST_TEST_CONTEXT(r.label)
            {
                r.change();
                const std::int64_t g = fs.generation();
                BOOST_TEST(g == last + 1);
                last = g;
                // Reads leave it alone.
                fs.systemFilters();
                fs.addressFilters();
                BOOST_TEST(fs.generation() == last);
            }
        }
        // Refused changes and no-ops leave it alone too.
        BOOST_CHECK_THROW(fs.attach("nope", "nope"), InputError);
        BOOST_TEST(!fs.removeSystemFilter("nope"));
        BOOST_TEST(!fs.removeAddressFilter("nope"));
        BOOST_TEST(fs.generation() == last);
        // Another connection (a running daemon) sees the new value.
        Store other(db.backend->config());
        BOOST_TEST(FilterStore(other).generation() == last);
    });
}

BOOST_AUTO_TEST_CASE(guards_as_default_only_with_an_active_member)
{
    SystemAddressFilter f;
    f.name = "inbound";
    f.isDefault = true;
    BOOST_TEST(!guardsAsDefault(f)); // no address filter: judges nothing
    EmailAddressFilter spam;
    spam.name = "spam";
    f.addressFilters.push_back(spam);
    BOOST_TEST(guardsAsDefault(f));
    f.addressFilters[0].active = false;
    BOOST_TEST(!guardsAsDefault(f));
    f.addressFilters[0].active = true;
    SystemAddressFilter off = f;
    off.active = false;
    BOOST_TEST(!guardsAsDefault(off));
    SystemAddressFilter notDefault = f;
    notDefault.isDefault = false;
    BOOST_TEST(!guardsAsDefault(notDefault));
    SystemAddressFilter outbound = f;
    outbound.direction = Direction::Outbound;
    BOOST_TEST(!guardsAsDefault(outbound));
}
