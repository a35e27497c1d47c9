// import_parsers_test - the readers of core/import_parsers.cpp in-process:
// fetchmail, getmail6 and mpop rc files (each row a file and the lines its
// description must hold: the fields mapped, the entries skipped and why, every
// option not mapped with its line), the UIDL records, and the bounds.
#define BOOST_TEST_MODULE import_parsers
#include "core/errors.h"
#include "core/import_parsers.h"

#include <boost/test/unit_test.hpp>
#include <functional>
#include <sstream>

using namespace popgate;

namespace
{

// describe - one line per fact: "0 server=pop.example.com", "0 password",
// "0 skipped: ...", "0 note 7 mda: not mapped: ...", "file note 1 set daemon: ...".
std::string describe(const ImportParse& p)
{
    std::ostringstream out;
    for (std::size_t i = 0; i < p.entries.size(); ++i) {
        const ImportEntry& e = p.entries[i];
        out << i << " entry " << e.label << " line " << e.line << "\n";
        for (const auto& s : e.settings)
            out << i << " " << s.field << "=" << s.value << " (line " << s.line << ")\n";
        if (e.password)
            out << i << " password\n";
        if (!e.skipped.empty())
            out << i << " skipped: " << e.skipped << "\n";
        for (const auto& n : e.notes)
            out << i << " note " << n.line << " " << n.option << ": " << n.why << "\n";
    }
    for (const auto& n : p.notes)
        out << "file note " << n.line << " " << n.option << ": " << n.why << "\n";
    if (!p.idFile.empty())
        out << "idfile " << p.idFile << "\n";
    return out.str();
}

struct Row {
    const char* label;
    std::string text;
    std::vector<std::string> has;    ///< lines (or parts of lines) the description holds
    std::vector<std::string> hasNot; ///< parts it must not hold
};

void check(const std::function<ImportParse(const std::string&, const std::string&)>& parse,
           const std::vector<Row>& rows)
{
    for (const Row& row : rows) {
        BOOST_TEST_CONTEXT(row.label)
        {
            const std::string d = describe(parse(row.text, "rc"));
            BOOST_TEST_INFO("description:\n" << d);
            for (const auto& h : row.has)
                BOOST_CHECK_MESSAGE(d.find(h) != std::string::npos, "missing: " << h);
            for (const auto& h : row.hasNot)
                BOOST_CHECK_MESSAGE(d.find(h) == std::string::npos, "present: " << h);
        }
    }
}

const std::string kMulti = kImportMultidrop;

} // namespace

BOOST_AUTO_TEST_CASE(fetchmail_rc)
{
    check(parseFetchmailRc,
          {
              {"one poll: ssl, keep, is ... here, port, password never a setting",
               "poll pop.example.com with proto POP3 port 995\n"
               "  user \"joe\" there with password \"s3cr#t\" is \"joe@local.example\" here\n"
               "  options ssl keep\n",
               {"0 server=pop.example.com (line 1)", "0 port=995 (line 1)", "0 user=joe (line 2)",
                "0 password", "0 deliver-to=joe@local.example (line 2)",
                "0 security=ssl-tls (line 3)", "0 keep-on-server=yes (line 3)"},
               {"s3cr#t", "skipped"}},
              {"no ssl: STARTTLS as fetchmail 6.4 upgrades; nokeep",
               "poll pop.example.com user joe pass x is bob nokeep\n",
               {"0 security=starttls", "0 keep-on-server=no (line 1)", "0 deliver-to=bob"},
               {}},
              {"sslproto '' turns TLS off: none with plaintext-auth",
               "poll h user u password p sslproto ''\n",
               {"0 security=none (line 1)", "0 plaintext-auth=yes (line 1)"},
               {"security=starttls"}},
              {"defaults apply to every poll after them; their notes once, at their line",
               "defaults proto pop3 keep mda \"/usr/bin/procmail\"\n"
               "poll a.example user u1 password p1\n"
               "poll b.example user u2 password p2 no keep\n",
               {"0 server=a.example", "0 keep-on-server=yes (line 1)", "1 server=b.example",
                "1 keep-on-server=no (line 3)", "file note 1 mda: not mapped: popgate hands"},
               {"0 note 1 mda"}},
              {"two users in one poll are two accounts",
               "poll pop.example.com proto pop3\n"
               "  user a with password pa is la here\n"
               "  user b with password pb is lb here keep\n",
               {"0 user=a (line 2)", "0 deliver-to=la", "1 user=b (line 3)", "1 deliver-to=lb",
                "1 keep-on-server=yes (line 3)"},
               {"0 keep-on-server=yes"}},
              {"IMAP is named and skipped",
               "poll imap.example.com proto IMAP user u password p\n",
               {"0 skipped: protocol IMAP: popgate fetches POP3 only"},
               {}},
              {"skip entries are imported inactive",
               "skip old.example proto pop3 user u password p\n",
               {"0 active=no (line 1)", "0 entry skip old.example"},
               {}},
              {"multidrop mapped: envelope N HEADER, localdomains, is *",
               "poll mx.example proto pop3\n"
               "  envelope 1 \"X-Original-To\"\n"
               "  localdomains example.com example.net\n"
               "  user catchall password p is * here\n",
               {"0 envelope-header=X-Original-To (line 2)", "0 envelope-header-skip=1 (line 2)",
                "0 local-domains=example.com, example.net (line 3)",
                "0 recipients=envelope (line 4)"},
               {"deliver-to", "note", "skipped"}},
              {"envelope without a count skips none; the header name is canonical",
               "poll h envelope delivered-to localdomains c.example user u password p is * here\n",
               {"0 envelope-header=Delivered-To (line 1)", "0 envelope-header-skip=0 (line 1)",
                "0 recipients=envelope"},
               {"skipped"}},
              {"an 'ADDRESS'='LOCAL' pair is a recipient-map entry; a bare name is named",
               "poll h envelope Envelope-To localdomains c.example\n"
               "  user u password p is * 'info@o.example'='alice' 'sales'='team' here\n",
               {"0 recipient-map=info@o.example=alice (line 2)", "0 recipients=envelope",
                "0 note 2 is 'sales'='team': not mapped: fetchmail maps the name at the server's"},
               {"sales@", "skipped"}},
              {"several local names without *: envelope, the list named as not mapped",
               "poll mx.example envelope Delivered-To localdomains c.example\n"
               "  user catchall password p is alice bob here\n",
               {"0 recipients=envelope", "0 note 2 is (several local users): not mapped: local "
                                         "names without *"},
               {"deliver-to=alice", "skipped"}},
              {"multidrop without envelope is refused: popgate never guesses from To/Cc",
               "poll h localdomains c.example user u password p is * here\n",
               {"0 note 1 multidrop without envelope: not mapped: multidrop without envelope "
                "(popgate never guesses recipients from To/Cc)",
                "0 skipped: multidrop without envelope"},
               {"0 recipients=envelope", "local-domains=", "deliver-to"}},
              {"no envelope is named; the multidrop poll is refused",
               "poll h no envelope user u password p is a b here\n",
               {"0 note 1 no envelope: not mapped: multidrop without envelope",
                "0 skipped: multidrop without envelope"},
               {"0 recipients=envelope"}},
              {"a header popgate does not read is named with its line, and refuses the poll",
               "poll h\n  envelope Received\n  user u password p is * here\n",
               {"0 note 2 envelope Received: not mapped: popgate reads only Delivered-To",
                "0 skipped: multidrop without envelope"},
               {"0 envelope-header="}},
              {"envelope skip over 16 is named",
               "poll h envelope 17 Delivered-To user u password p is * here\n",
               {"0 note 1 envelope 17 Delivered-To: not mapped: popgate skips at most 16"},
               {"0 envelope-header="}},
              {"one local name: envelope and localdomains are not needed; deliver-to",
               "poll h envelope Delivered-To localdomains c.example user u password p is bob\n",
               {"0 deliver-to=bob", "0 note 1 envelope: not needed",
                "0 note 1 localdomains: not needed"},
               {"recipients=envelope", "local-domains=", "envelope-header="}},
              {"qvirtual, aka, dns, checkalias, fetchdomains stay not mapped, with lines",
               "poll h envelope Delivered-To localdomains c.example\n"
               "  qvirtual \"mbox-\"\n  aka mx.c.example\n  dns checkalias\n"
               "  fetchdomains c.example\n  user u password p is * here\n",
               {"0 note 2 qvirtual: " + kMulti, "0 note 3 aka: " + kMulti,
                "0 note 4 dns: " + kMulti, "0 note 4 checkalias: " + kMulti,
                "0 note 5 fetchdomains: " + kMulti, "0 recipients=envelope"},
               {"skipped"}},
              {"reverse form: user LOCAL here is REMOTE there",
               "poll h user \"localbob\" here is \"remotebob\" there password p\n",
               {"0 user=remotebob", "0 deliver-to=localbob"},
               {}},
              {"smtpname is the full recipient and wins over is; smtphost is named",
               "poll h user u password p is bob here smtphost mx.local/25 smtpname "
               "bob@local.example\n",
               {"0 deliver-to=bob@local.example", "0 note 1 smtphost mx.local/25: not mapped"},
               {"deliver-to=bob (line"}},
              {"a SHA-256 sslfingerprint is a pin; an MD5 one is named",
               "poll a.example user u password p ssl sslfingerprint "
               "\"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:"
               "01:23:45:67:89\"\n"
               "poll b.example user u password p ssl sslfingerprint "
               "\"E8:49:53:55:D7:ED:AD:62:9A:7B:23:80:5F:12:7D:4F\"\n",
               {"0 tls-pin=abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
                "1 note 2 sslfingerprint: not mapped: popgate pins SHA-256"},
               {}},
              {"no sslcertck, sslcertfile, sslcertpath",
               "poll h user u password p ssl no sslcertck sslcertfile /etc/ca.pem\n"
               "  sslcertpath /etc/ssl/certs\n",
               {"0 note 1 no sslcertck: not mapped: popgate always verifies",
                "0 tls-ca-file=/etc/ca.pem (line 1)", "0 note 2 sslcertpath: not mapped"},
               {}},
              {"set daemon is the poll interval; set idfile is the UIDL record; other sets named",
               "set daemon 300\nset idfile \"/var/lib/fm/ids\"\nset postmaster \"root\"\n"
               "poll h user u password p\n",
               {"0 poll-interval=300s (line 1)", "idfile /var/lib/fm/ids",
                "file note 3 set postmaster: not mapped"},
               {}},
              {"comments, escapes, noise words and punctuation",
               "# a comment \"with quotes\"\n"
               "poll h, proto pop3; user u, with pass \"a\\\"b\\x41\" # trailing comment\n",
               {"0 user=u (line 2)", "0 password"},
               {"note"}},
              {"an unknown keyword is named with its line, the rest still read",
               "poll h proto pop3\n  user u password p\n  frobnicate keep\n",
               {"0 note 3 frobnicate: not understood", "0 keep-on-server=yes (line 3)"},
               {}},
              {"a password written with = is still the password, never shown in a note",
               "poll h proto pop3 user u password = \"s3cret\"\n"
               "poll h2 proto pop3 user u password p \"s3cret2\"\n",
               {"0 password", "1 note 2 a quoted string: not understood"},
               {"s3cret", "0 skipped"}},
              {"finding I1: `no` before a word that is no keyword is named, not a crash",
               "poll h proto pop3 user u password p no frobnicate keep\n",
               {"0 note 1 no frobnicate: not understood", "0 keep-on-server=yes"},
               {}},
              {"no password: skipped with how to add it",
               "poll h proto pop3 user u\n",
               {"0 skipped: no password in the file"},
               {}},
              {"auth apop and limit",
               "poll h proto pop3 auth apop user u password p limit 1000000\n",
               {"0 auth-mechanism=apop", "0 max-message-size=1000000"},
               {}},
          });
}

BOOST_AUTO_TEST_CASE(finding_I2_a_nul_byte_in_a_word_ends)
{
    // the tokenizer stopped at a NUL without moving (strchr finds the terminator)
    const auto p = parseFetchmailRc(std::string("poll h\0x user u password p\n", 27), "rc");
    BOOST_REQUIRE_EQUAL(p.entries.size(), 1u);
    BOOST_CHECK_EQUAL(p.entries[0].server, std::string("h\0x", 3));
}

BOOST_AUTO_TEST_CASE(fetchmail_rc_errors_name_file_and_line)
{
    try {
        parseFetchmailRc("poll h\n user u\n password \"open\n", "fetchmailrc");
        BOOST_FAIL("no error");
    } catch (const InputError& e) {
        BOOST_CHECK_EQUAL(std::string(e.what()),
                          "fetchmailrc:3: a quoted string is not closed on its line");
    }
    BOOST_CHECK_THROW(parseFetchmailRc(std::string(kImportMaxRcBytes + 1, ' '), "rc"), InputError);
    BOOST_CHECK_THROW(parseFetchmailRc("poll " + std::string(kImportMaxLine + 1, 'h'), "rc"),
                      InputError);
}

BOOST_AUTO_TEST_CASE(getmail_rc)
{
    check(
        parseGetmailRc,
        {
            {"SimplePOP3SSLRetriever with ca_certs; getmail keeps mail unless delete",
             "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = pop.example.com\n"
             "username = joe\npassword = pw\nca_certs = /etc/ca.pem\n"
             "[destination]\ntype = Maildir\npath = ~/Maildir/\n",
             {"0 server=pop.example.com (line 3)", "0 user=joe (line 4)", "0 password",
              "0 tls-ca-file=/etc/ca.pem (line 6)", "0 security=ssl-tls (line 2)",
              "0 keep-on-server=yes", "0 note 8 [destination] type = Maildir: not mapped"},
             {"plaintext-auth"}},
            {"SimplePOP3Retriever in clear, delete true, read_all named",
             "[retriever]\ntype = SimplePOP3Retriever\nserver = h\nport = 1110\n"
             "username = u\npassword = p\n[options]\ndelete = true\nread_all = true\n",
             {"0 security=none (line 2)", "0 plaintext-auth=yes", "0 port=1110 (line 4)",
              "0 keep-on-server=no (line 8)", "0 note 9 read_all: not needed"},
             {}},
            {"an MDA_external sendmail names the recipient",
             "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = h\nusername = u\n"
             "password = p\n[destination]\ntype = MDA_external\npath = /usr/sbin/sendmail\n"
             "arguments = (\"-i\", \"-bm\", \"bob@local.example\")\n",
             {"0 deliver-to=bob@local.example (line 7)"},
             {"[destination] type"}},
            {"MultidropPOP3Retriever with envelope_recipient HEADER:N: skip N-1",
             "[retriever]\ntype = MultidropPOP3Retriever\nserver = h\nusername = u\n"
             "password = p\nenvelope_recipient = delivered-to:2\n",
             {"0 recipients=envelope (line 2)", "0 envelope-header=Delivered-To (line 6)",
              "0 envelope-header-skip=1 (line 6)", "0 security=none"},
             {"skipped", "note 6", "local-domains"}},
            {"MultidropPOP3SSLRetriever :1 is the topmost field",
             "[retriever]\ntype = MultidropPOP3SSLRetriever\nserver = h\nusername = u\n"
             "password = p\nenvelope_recipient = X-Envelope-To:1\n",
             {"0 envelope-header=X-Envelope-To (line 6)", "0 envelope-header-skip=0 (line 6)",
              "0 security=ssl-tls"},
             {"skipped"}},
            {"a getmail envelope header popgate does not read is named and refused",
             "[retriever]\ntype = MultidropPOP3Retriever\nserver = h\nusername = u\n"
             "password = p\nenvelope_recipient = x-rcpt:1\n",
             {"0 note 6 envelope_recipient: not mapped: popgate reads only",
              "0 skipped: envelope_recipient (line 6) names a header"},
             {"recipients=envelope"}},
            {"envelope_recipient not HEADER:N is named and refused",
             "[retriever]\ntype = MultidropPOP3Retriever\nserver = h\nusername = u\n"
             "password = p\nenvelope_recipient = delivered-to:0\n",
             {"0 note 6 envelope_recipient: not understood: expected HEADER:N",
              "0 skipped: envelope_recipient (line 6) is not HEADER:N"},
             {"recipients=envelope"}},
            {"a Multidrop retriever without envelope_recipient is refused",
             "[retriever]\ntype = MultidropPOP3Retriever\nserver = h\nusername = u\n"
             "password = p\n",
             {"0 skipped: type = MultidropPOP3Retriever without envelope_recipient"},
             {"recipients=envelope"}},
            {"envelope_recipient on a plain retriever is not needed",
             "[retriever]\ntype = SimplePOP3Retriever\nserver = h\nusername = u\n"
             "password = p\nenvelope_recipient = delivered-to:1\n",
             {"0 note 6 envelope_recipient: not needed: only a Multidrop retriever"},
             {"recipients=envelope", "skipped"}},
            {"IMAP retrievers are named and skipped",
             "[retriever]\ntype = SimpleIMAPSSLRetriever\nserver = h\nusername = u\npassword = p\n"
             "mailboxes = (\"INBOX\",)\n",
             {"0 skipped: retriever SimpleIMAPSSLRetriever: popgate fetches POP3 only",
              "0 note 6 mailboxes: not mapped: IMAP only"},
             {}},
            {"password_command is named; the account is skipped without a password",
             "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = h\nusername = u\n"
             "password_command = (\"pass\", \"mail\")\n",
             {"0 note 5 password_command: not mapped", "0 skipped: no password in the file"},
             {}},
            {"a line without = names only its first word (it may hold a password)",
             "[retriever]\ntype = SimplePOP3SSLRetriever\nserver = h\nusername = u\n"
             "password = p\npassword s3cret\n",
             {"file note 6 password: not understood: expected key = value"},
             {"s3cret"}},
            {"comments, continuation lines, key: value",
             "# comment\n[retriever]\ntype: SimplePOP3SSLRetriever\nserver: h\n"
             "username = u\npassword = p\n; another comment\n[options]\nverbose = 0\n",
             {"0 server=h (line 4)", "0 note 9 verbose: not mapped"},
             {"not understood"}},
        });
}

BOOST_AUTO_TEST_CASE(mpop_rc)
{
    check(
        parseMpopRc,
        {
            {"defaults, tls with tls_starttls off, trust file, keep, uidls_file",
             "defaults\ntls on\ntls_starttls off\ntls_trust_file /etc/ca.pem\n\n"
             "account work\nhost pop.example.com\nuser joe\npassword \"p w\"\nkeep on\n"
             "uidls_file ~/.mpop_uidls/%U_at_%H\ndelivery maildir ~/Maildir\n",
             {"0 entry account work line 6", "0 server=pop.example.com (line 7)",
              "0 user=joe (line 8)", "0 password", "0 tls-ca-file=/etc/ca.pem (line 4)",
              "0 keep-on-server=yes (line 10)", "0 security=ssl-tls (line 3)",
              "0 note 12 delivery maildir: not mapped"},
             {}},
            {"tls off: none with plaintext-auth; tls_starttls on: starttls",
             "account a\nhost h\nuser u\npassword p\n"
             "account b\nhost h\nuser u\npassword p\ntls on\n",
             {"0 security=none", "0 plaintext-auth=yes", "1 security=starttls (line 9)"},
             {"1 plaintext-auth"}},
            {"passwordeval is named, the account skipped",
             "account a\nhost h\nuser u\npasswordeval \"pass show mail\"\n",
             {"0 note 4 passwordeval: not mapped",
              "0 skipped: no password in the file (passwordeval)"},
             {}},
            {"account A : B inherits B; delivery mda with msmtp names the recipient",
             "account base\nhost h\nuser u\npassword p\nport 1995\n"
             "account child : base\nuser v\ndelivery mda \"/usr/bin/msmtp -- bob@local.example\"\n",
             {"1 server=h (line 2)", "1 port=1995 (line 5)", "1 user=v (line 7)",
              "1 deliver-to=bob@local.example (line 8)"},
             {}},
            {"a SHA-256 tls_fingerprint is a pin; tls_certcheck off is named",
             "account a\nhost h\nuser u\npassword p\ntls on\n"
             "tls_fingerprint "
             "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:"
             "23:45:67:89\n"
             "tls_certcheck off\n",
             {"0 tls-pin=abcdef01", "0 note 7 tls_certcheck off: not mapped"},
             {}},
            {"an unknown command is named with its line",
             "account a\nhost h\nuser u\npassword p\nfrobnicate yes\n",
             {"0 note 5 frobnicate: not mapped: unknown to the importer"},
             {}},
        });
}

BOOST_AUTO_TEST_CASE(uidl_records)
{
    std::size_t bad = 0;
    const auto fm = parseFetchmailIds("joe@pop.example.com 0001\n"
                                      "joe@example.org@pop.example.com 0002\n"
                                      "garbage\n"
                                      "joe@pop.example.com 0003\n",
                                      &bad);
    BOOST_REQUIRE_EQUAL(fm.size(), 2u);
    BOOST_CHECK_EQUAL(fm[0].user, "joe");
    BOOST_CHECK_EQUAL(fm[0].host, "pop.example.com");
    BOOST_CHECK_EQUAL(fm[0].uidls.size(), 2u);
    BOOST_CHECK_EQUAL(fm[1].user, "joe@example.org"); // a user name may hold '@'
    BOOST_CHECK_EQUAL(bad, 1u);

    const char oldmail[] = "a1\0"
                           "1796312507\nb2\0"
                           "1796312507\nbad\n";
    const auto gm = parseGetmailOldmail(std::string(oldmail, sizeof oldmail - 1), &bad);
    BOOST_CHECK_EQUAL(gm.size(), 2u);
    BOOST_CHECK_EQUAL(bad, 1u);

    const auto mp = parseMpopUidls("# This file was generated by mpop version 1.4.18.\n#\n"
                                   " 2 pop.example.com joe\nu1\nu2\n"
                                   " 1 other.example joe\nu3\n",
                                   &bad);
    BOOST_REQUIRE_EQUAL(mp.size(), 2u);
    BOOST_CHECK_EQUAL(mp[0].host, "pop.example.com");
    BOOST_CHECK_EQUAL(mp[0].user, "joe");
    BOOST_CHECK_EQUAL(mp[0].uidls.size(), 2u);
    BOOST_CHECK_EQUAL(mp[1].uidls.at(0), "u3");
    BOOST_CHECK_EQUAL(bad, 0u);
    // a count larger than the list: what is there is kept, the short list counted
    const auto shortList = parseMpopUidls(" 5 h u\nx\n 1 h2 u\ny\n", &bad);
    BOOST_CHECK_EQUAL(shortList.size(), 2u);
    BOOST_CHECK_EQUAL(bad, 1u);

    BOOST_CHECK_EQUAL(getmailOldmailName("pop.example.com", 995, "joe@example.org"),
                      "oldmail-pop.example.com-995-joe@example.org");
    BOOST_CHECK_EQUAL(getmailOldmailName("h", 110, "a/b:c"), "oldmail-h-110-a-b-c");
    BOOST_CHECK_EQUAL(importAccountName("joe@example.org", "pop.example.com"),
                      "joe_example.org_at_pop.example.com");
    BOOST_CHECK_EQUAL(importAccountName(std::string(100, 'x'), "h").size(), 64u);
}
