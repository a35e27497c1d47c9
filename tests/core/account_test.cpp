// account_test - the account field table and validation (core/account.cpp).
#define BOOST_TEST_MODULE account
#include "core/account.h"
#include "core/errors.h"

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

using namespace popgate;

namespace
{

Account valid()
{
    Account a;
    a.name = "helpdesk";
    a.server = "pop.example.com";
    a.user = "helpdesk";
    a.sealedSecret = "gcm1:x";
    a.mailbox = "service-desk@company.com";
    return a;
}

struct FieldRow {
    const char* label;
    const char* field;
    std::string value;
    const char* error; ///< expected substring of the error, nullptr: accepted
};

} // namespace

BOOST_AUTO_TEST_CASE(defaults_follow_the_reference_page)
{
    Account a = valid();
    BOOST_TEST(a.type == "pop3");
    BOOST_TEST(securityName(a.security) == "ssl-tls");
    BOOST_TEST(a.effectivePort() == 995);
    a.security = Security::StartTls;
    BOOST_TEST(a.effectivePort() == 110);
    a.security = Security::None;
    BOOST_TEST(a.effectivePort() == 110);
    a.port = 1110;
    BOOST_TEST(a.effectivePort() == 1110);
    a = valid();
    BOOST_TEST(a.pollInterval == 120);
    BOOST_TEST(!a.keepOnServer);
    BOOST_TEST(a.recipients() == std::vector<std::string>{"service-desk@company.com"});
    BOOST_TEST(validateAccount(a).ok());
    BOOST_TEST(validateAccount(a).warnings.empty());
}

BOOST_AUTO_TEST_CASE(field_parsing_table)
{
    const std::vector<FieldRow> rows = {
        {"port 0 refused", "port", "0", "must be 1-65535 (got 0)"},
        {"port 70000 refused", "port", "70000", "must be 1-65535 (got 70000)"},
        {"port not a number", "port", "pop", "expected a whole number"},
        {"port 995 accepted", "port", "995", nullptr},
        {"unknown authentication", "auth", "kerberos", "unknown authentication 'kerberos'"},
        {"oauth2 accepted", "auth", "OAuth2", nullptr},
        {"unknown security", "security", "ssl3", "unknown connection security 'ssl3'"},
        {"ssl/tls spelling accepted", "security", "SSL/TLS", nullptr},
        {"unknown type", "type", "imap", "unknown type 'imap'"},
        {"10 kB server", "server", std::string(10240, 'a'), "too long (10240 characters"},
        {"10 kB user", "user", std::string(10240, 'u'), "too long"},
        {"10 kB deliver-to", "deliver-to", std::string(10240, 'd'), "too long"},
        {"control character", "user",
         std::string("a\x01"
                     "b"),
         "control character"},
        {"active yes/no", "active", "maybe", "expected yes or no"},
        {"poll interval too short", "poll-interval", "5s", "between 10s and 1d"},
        {"poll interval in minutes", "poll-interval", "15m", nullptr},
        {"size with unit", "max-message-size", "50M", nullptr},
        {"size garbage", "max-message-size", "lots", "expected a size"},
        {"relative CA file", "tls-ca-file", "ca.pem", "absolute path"},
        {"short pin", "tls-pin", "abcd", "64 hex digits"},
        {"pin with colons", "tls-pin",
         std::string(95, ':').replace(0, 95,
                                      "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:"
                                      "23:45:67:89:AB:CD:EF:01:23:45:67:89"),
         nullptr},
        {"filter with quote", "filter", "x'; DROP TABLE accounts;--", "is not a filter name"},
        {"unknown field", "colour", "blue", "unknown field 'colour'"},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Account a = valid();
            if (row.error) {
                try {
                    setAccountField(a, row.field, row.value);
                    BOOST_ERROR("accepted a bad value");
                } catch (const InputError& e) {
                    const std::string msg = e.what();
                    BOOST_TEST(msg.find(row.error) != std::string::npos, "message: " << msg);
                    if (std::string(row.field) != "colour")
                        BOOST_TEST(msg.rfind(std::string(row.field) + ": ", 0) == 0,
                                   "message names the field: " << msg);
                }
            } else {
                BOOST_CHECK_NO_THROW(setAccountField(a, row.field, row.value));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(pin_is_normalised_and_values_print_back)
{
    Account a = valid();
    setAccountField(a, "tls-pin", std::string(64, 'A'));
    BOOST_TEST(a.tlsPin == std::string(64, 'a'));
    setAccountField(a, "poll-interval", "2m");
    BOOST_TEST(findAccountField("poll-interval")->get(a) == "120");
    setAccountField(a, "server", "POP.Example.COM");
    BOOST_TEST(a.server == "pop.example.com");
}

struct RecordRow {
    const char* label;
    void (*mutate)(Account&);
    const char* field; ///< expected failing field, nullptr: valid
};

BOOST_AUTO_TEST_CASE(record_validation_table)
{
    const std::vector<RecordRow> rows = {
        {"valid", [](Account&) {}, nullptr},
        {"empty server", [](Account& a) { a.server.clear(); }, "server"},
        {"server with space", [](Account& a) { a.server = "pop example.com"; }, "server"},
        {"IPv4 server", [](Account& a) { a.server = "192.0.2.7"; }, nullptr},
        {"IPv6 server", [](Account& a) { a.server = "2001:db8::7"; }, nullptr},
        {"password auth without password", [](Account& a) { a.sealedSecret.clear(); }, "password"},
        {"password with authentication none", [](Account& a) { a.auth = AuthKind::None; },
         "password"},
        {"none without user or password",
         [](Account& a) {
             a.auth = AuthKind::None;
             a.user.clear();
             a.sealedSecret.clear();
         },
         nullptr},
        {"user required", [](Account& a) { a.user.clear(); }, "user"},
        {"oauth needs a profile",
         [](Account& a) {
             a.auth = AuthKind::OAuth2;
             a.sealedSecret.clear();
         },
         "oauth-profile"},
        {"oauth with profile",
         [](Account& a) {
             a.auth = AuthKind::OAuth;
             a.sealedSecret.clear();
             a.oauthProfile = "google";
         },
         nullptr},
        {"bad name", [](Account& a) { a.name = "a b"; }, "name"},
        {"65-character name", [](Account& a) { a.name = std::string(65, 'n'); }, "name"},
        {"SQL in name", [](Account& a) { a.name = "x'; DROP TABLE accounts;--"; }, "name"},
        {"no recipient", [](Account& a) { a.mailbox.clear(); }, "deliver-to"},
        {"local deliver-to",
         [](Account& a) {
             a.mailbox.clear();
             a.deliverTo = "helpdesk, ops@example.org";
         },
         nullptr},
        {"bad mailbox", [](Account& a) { a.mailbox = "not an address"; }, "mailbox"},
    };
    for (const auto& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            Account a = valid();
            row.mutate(a);
            const AccountCheck check = validateAccount(a);
            if (!row.field) {
                BOOST_TEST(check.ok());
            } else {
                BOOST_TEST_REQUIRE(!check.ok());
                BOOST_TEST(check.errors[0].field == row.field);
                BOOST_CHECK_THROW(requireValid(a), InputError);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(insecure_security_warns_like_the_reference_page)
{
    Account a = valid();
    for (Security s : {Security::None, Security::StartTls}) {
        a.security = s;
        const AccountCheck check = validateAccount(a);
        BOOST_TEST(check.ok());
        BOOST_TEST_REQUIRE(check.warnings.size() == 1u);
        BOOST_TEST(check.warnings[0].find("may expose your data") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(error_names_account_and_field)
{
    Account a = valid();
    a.server.clear();
    try {
        requireValid(a);
        BOOST_ERROR("no error");
    } catch (const InputError& e) {
        BOOST_TEST(std::string(e.what()) == "account 'helpdesk': server: is required");
    }
}
