// config.cpp - the key table and the popgate.conf parser (see config.h).
// New keys are added to kKeys only; everything else follows from the table.
#include "core/config.h"

#include "core/errors.h"
#include "core/keyvalue.h"
#include "core/text.h"

#include <Poco/File.h>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace popgate
{

const char* const kDefaultConfigPath = POPGATE_SYSCONFDIR "/popgate.conf";

namespace
{

const std::vector<ConfigKey> kKeys = {
    {"database.driver", ConfigType::Choice, "sqlite",
     "Where accounts and message state live: sqlite (embedded; one popgated per database "
     "file) or postgresql (one or several gateway hosts sharing the accounts, see "
     "docs/scale-out.md).",
     "sqlite|postgresql", false},
    {"database.path", ConfigType::Path, POPGATE_STATEDIR "/popgate.db",
     "SQLite database file (database.driver = sqlite).", nullptr, false},
    {"database.connect", ConfigType::String, "",
     "PostgreSQL connection string (database.driver = postgresql), e.g. "
     "host=127.0.0.1 port=5432 dbname=popgate user=popgate. Prefer a .pgpass file "
     "to a password here.",
     nullptr, true},
    {"secret_key_file", ConfigType::Path, POPGATE_SYSCONFDIR "/secret.key",
     "AES-256 key that seals account secrets in the database; created mode 0600 when missing.",
     nullptr, false},
    {"secrets_dir", ConfigType::Path, POPGATE_SYSCONFDIR "/secrets",
     "The only place an accounts.d file's secret_file may point into (a relative secret_file "
     "is taken from here). Each secret file must be a regular file whose real path lies inside "
     "this directory, owned by root or the popgate user, with no permission for others (chmod "
     "o-rwx); any other is refused before it is read.",
     nullptr, false},
    {"accounts_dir", ConfigType::Path, POPGATE_SYSCONFDIR "/accounts.d",
     "Provisioned accounts: one NAME.conf per account, synced by `popgatectl config apply` "
     "and at daemon start.",
     nullptr, false},
    {"debug_log_dir", ConfigType::Path, "/var/log/popgate",
     "Where per-account debug logs (raw protocol, secrets redacted) are written.", nullptr, false},
    {"debug_logging_expiry", ConfigType::Duration, "24h",
     "An account's debug logging switches itself off after this long.", nullptr, false},
    {"header_key_file", ConfigType::Path, POPGATE_SYSCONFDIR "/header.key",
     "Key that authenticates popgate's X-Popgate-Id header between popgated and the milter "
     "(HMAC-SHA256); created when missing. Holds no account secret.",
     nullptr, false},
    {"spool_dir", ConfigType::Path, "/var/spool/popgate",
     "Where popgated spools a message while it is handed to the MTA, and keeps quarantined "
     "(ignored) messages under quarantine/.",
     nullptr, false},
    {"reinject.host", ConfigType::String, "127.0.0.1",
     "The local MTA's SMTP listener that fetched mail is handed to (see conf/postfix/).", nullptr,
     false},
    {"reinject.port", ConfigType::Integer, "10026", "Port of that listener.", nullptr, false},
    {"reinject.timeout", ConfigType::Duration, "120s",
     "How long popgated waits for each reply of the MTA; no reply to the end of DATA in time "
     "is an uncertain outcome (the message is sent again, and the milter drops the second copy).",
     nullptr, false},
    {"reinject.helo", ConfigType::String, "localhost", "Name popgated gives in EHLO.", nullptr,
     false},
    {"reinject.xclient", ConfigType::Boolean, "no",
     "Tell the MTA, with XCLIENT (Postfix), the address and name of the host that handed each "
     "message to the mailbox provider, as the provider's Received: field says "
     "(reinject.xclient_hop), so SPF and DMARC milters on the reinjection listener judge the "
     "real origin. Needs smtpd_authorized_xclient_hosts on that listener (conf/postfix/); an MTA "
     "that does not offer XCLIENT gets the messages as without it. A message whose field cannot "
     "be read is handed over from popgated's own address, never with a guessed origin.",
     nullptr, false},
    {"reinject.xclient_hop", ConfigType::Integer, "1",
     "Which Received: field (1 = the topmost of the message as the provider delivered it, "
     "popgate's own not counted) is the provider's record of the host it received the message "
     "from. 1 fits a provider that adds a single trace field; count down past its internal "
     "hops otherwise. Values below 1 are taken as 1.",
     nullptr, false},
    {"workers", ConfigType::Integer, "8",
     "Accounts fetched at the same time (one session per account at a time).", nullptr, false},
    {"host_id", ConfigType::String, "",
     "This gateway host's name among the popgated processes sharing one PostgreSQL database "
     "(empty: the host name). Two live processes with the same id are refused at start. "
     "See docs/scale-out.md.",
     nullptr, false},
    {"lease_period", ConfigType::Duration, "60s",
     "With PostgreSQL: how long a host's hold on an account lasts unless renewed (it is renewed "
     "every sixth of it while the host runs). A host that dies or loses the database gives up "
     "its accounts within this time, and the other hosts take them over; at least 2s. With "
     "either database popgated records its heartbeat every sixth of it, and `popgatectl "
     "status` says it is not running after three beats missed.",
     nullptr, false},
    {"session_time_budget", ConfigType::Duration, "10m",
     "A poll that runs longer stops after the message in flight and QUITs, so one slow server "
     "never holds a worker for long.",
     nullptr, false},
    {"pop3.connect_timeout", ConfigType::Duration, "30s", "Timeout to connect to a POP3 server.",
     nullptr, false},
    {"pop3.read_timeout", ConfigType::Duration, "60s",
     "Timeout for each read from or write to a POP3 server.", nullptr, false},
    {"backoff_cap", ConfigType::Duration, "1h",
     "Longest wait between polls of an account that keeps failing (the wait doubles from its "
     "poll interval).",
     nullptr, false},
    {"auto_deactivate_after", ConfigType::Integer, "0",
     "Deactivate an account after this many consecutive authentication failures (0: never).",
     nullptr, false},
    {"message_max_attempts", ConfigType::Integer, "5",
     "A message the POP3 server refuses to hand over (-ERR to RETR) is tried again at the next "
     "polls; after this many tries it is failed: kept on the server and listed by `popgatectl "
     "message list --state=failed` (0: tried for ever).",
     nullptr, false},
    {"failed_retry_polls", ConfigType::Integer, "0",
     "A failed message is tried again after this many poll intervals of its account (0: only "
     "by `popgatectl message retry`).",
     nullptr, false},
    {"max_hops", ConfigType::Integer, "3",
     "A message that has passed popgate more than this many times is ignored as a mail loop.",
     nullptr, false},
    {"duplicate_window", ConfigType::Duration, "30d",
     "A second message with the same Message-ID on the same account within this window is "
     "ignored (reason: duplicate message-id).",
     nullptr, false},
    {"allow_duplicate_message_ids", ConfigType::Boolean, "no",
     "Deliver messages whose Message-ID was seen before on the same account.", nullptr, false},
    {"allow_null_sender", ConfigType::Boolean, "yes",
     "Let the null sender <> through the address filters (bounces must arrive).", nullptr, false},
    {"quarantine_retention", ConfigType::Duration, "30d",
     "How long ignored messages are kept in the quarantine.", nullptr, false},
    {"metrics_listen", ConfigType::String, "",
     "Where popgated serves Prometheus metrics at /metrics (see popgated(8), METRICS): "
     "PORT or :PORT for 127.0.0.1, or ADDRESS:PORT ([ADDRESS]:PORT for IPv6) written out; "
     "empty: off. There is no authentication: keep it on loopback.",
     nullptr, false},
    {"milter.socket", ConfigType::String, "unix:/var/spool/postfix/popgate/milter.sock",
     "Where popgate-milter listens: unix:/path or inet:PORT@127.0.0.1 (libmilter syntax). The "
     "default lies inside Postfix's chroot, so main.cf says smtpd_milters = "
     "unix:popgate/milter.sock.",
     nullptr, false},
    {"milter.filter", ConfigType::String, "",
     "System address filter popgate-milter applies to inbound mail (envelope sender at MAIL "
     "FROM, header From at end of message): a filter name, empty for the active inbound "
     "default, none to allow all.",
     nullptr, false},
    {"milter.action", ConfigType::Choice, "reject",
     "What popgate-milter does with blocked mail: reject (550 5.7.1 with the reason), discard, "
     "quarantine (the MTA's hold queue) or tag (add X-Popgate-Filter and accept).",
     "reject|discard|quarantine|tag", false},
    {"milter.on_database_error", ConfigType::Choice, "tempfail",
     "What popgate-milter does when the database cannot be read or written: tempfail (451 "
     "4.3.0, the sender retries) or accept (unfiltered, no duplicate check).",
     "tempfail|accept", false},
    {"milter.metrics_listen", ConfigType::String, "",
     "Where popgate-milter serves its Prometheus metrics at /metrics (see popgate-milter(8), "
     "METRICS); the same forms as metrics_listen, a port of its own. Empty: off.",
     nullptr, false},
    {"milter.reinject_daemon_name", ConfigType::String, "POPGATE",
     "The MTA's {daemon_name} of the listener popgated reinjects into (Postfix "
     "milter_macro_daemon_name). Mail arriving there is judged at end of message, after the "
     "X-Popgate-Id check, never refused at MAIL FROM.",
     nullptr, false},
};

const ConfigKey* findKey(const std::string& name)
{
    for (const auto& k : kKeys)
        if (name == k.name)
            return &k;
    return nullptr;
}

// checkValue - throws InputError when value does not fit the key's type.
void checkValue(const ConfigKey& key, const std::string& value)
{
    switch (key.type) {
    case ConfigType::String:
        break;
    case ConfigType::Path:
        if (!value.empty() && value.front() != '/')
            throw InputError("must be an absolute path (got '" + flatten(value) + "')");
        break;
    case ConfigType::Integer:
        parseInteger(value, 0, INT64_MAX);
        break;
    case ConfigType::Boolean:
        parseBool(value);
        break;
    case ConfigType::Duration:
        parseDuration(value);
        break;
    case ConfigType::Choice: {
        const auto choices = splitList(key.choices, '|');
        for (const auto& c : choices)
            if (c == value)
                return;
        std::string list;
        for (const auto& c : choices)
            list += (list.empty() ? "" : ", ") + c;
        throw InputError("unknown value '" + flatten(value) + "' (expected " + list + ")");
    }
    }
}

} // namespace

const std::vector<ConfigKey>& configKeys()
{
    return kKeys;
}

Config Config::defaults()
{
    Config c;
    for (const auto& k : kKeys)
        c.values_[k.name] = k.defaultValue;
    c.origin_ = "(defaults)";
    return c;
}

Config Config::parse(const std::string& text, const std::string& origin)
{
    Config c = defaults();
    c.origin_ = origin;
    std::vector<std::string> problems;
    readKeyValues(text, origin, "key", problems, [&c](const KeyValue& kv) {
        const ConfigKey* key = findKey(kv.key);
        if (!key)
            throw InputError("unknown key '" + flatten(kv.key) + "'");
        try {
            checkValue(*key, kv.value);
        } catch (const InputError& e) {
            throw InputError(kv.key + ": " + e.what());
        }
        c.values_[kv.key] = kv.value;
    });
    if (c.str("database.driver") == "postgresql" && c.str("database.connect").empty())
        problems.push_back(origin +
                           ": database.connect: required with database.driver = postgresql");
    throwProblems(problems);
    return c;
}

Config Config::load(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        throw InputError(path + ": cannot read configuration file");
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), path);
}

Config Config::resolve(const std::string& explicitPath)
{
    if (!explicitPath.empty())
        return load(explicitPath);
    if (const char* env = std::getenv("POPGATE_CONFIG"); env && *env)
        return load(env);
    if (Poco::File(kDefaultConfigPath).exists())
        return load(kDefaultConfigPath);
    return defaults();
}

std::string Config::str(const std::string& key) const
{
    const auto it = values_.find(key);
    if (it == values_.end())
        throw std::logic_error("undeclared configuration key " + key);
    return it->second;
}

std::int64_t Config::integer(const std::string& key) const
{
    const ConfigKey* k = findKey(key);
    if (k && k->type == ConfigType::Duration)
        return parseDuration(str(key));
    return parseInteger(str(key), INT64_MIN, INT64_MAX);
}

bool Config::flag(const std::string& key) const
{
    return parseBool(str(key));
}

void Config::set(const std::string& key, const std::string& value)
{
    const ConfigKey* k = findKey(key);
    if (!k)
        throw InputError("unknown configuration key '" + flatten(key) + "'");
    try {
        checkValue(*k, value);
    } catch (const InputError& e) {
        throw InputError(key + ": " + e.what());
    }
    values_[key] = value;
}

std::string sampleConfig()
{
    std::ostringstream out;
    out << "# /etc/popgate/popgate.conf - configuration of popgated, popgate-milter and "
           "popgatectl.\n"
           "# Generated from the key table in core/config.cpp (popgatectl config sample).\n"
           "# Every key is shown with its default, commented out. Format: key = value.\n";
    for (const auto& k : kKeys) {
        out << "\n";
        std::istringstream words(k.meaning);
        std::string word, line = "#";
        while (words >> word) {
            if (line.size() + 1 + word.size() > 78) {
                out << line << "\n";
                line = "#";
            }
            line += " " + word;
        }
        out << line << "\n";
        if (k.choices)
            out << "# One of: " << k.choices << "\n";
        out << "#" << k.name << " =" << (*k.defaultValue ? " " : "") << k.defaultValue << "\n";
    }
    return out.str();
}

} // namespace popgate
