// config.cpp - the key table and the popgate.conf parser (see config.h).
// New keys are added to kKeys only; everything else follows from the table.
#include "core/config.h"

#include "core/errors.h"
#include "core/text.h"

#include <Poco/File.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace popgate {

const char* const kDefaultConfigPath = POPGATE_SYSCONFDIR "/popgate.conf";

namespace {

const std::vector<ConfigKey> kKeys = {
    {"database.driver", ConfigType::Choice, "sqlite",
     "Where accounts and message state live: sqlite (embedded, one host) or postgresql "
     "(several gateway hosts sharing the work).",
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
    {"accounts_dir", ConfigType::Path, POPGATE_SYSCONFDIR "/accounts.d",
     "Provisioned accounts: one NAME.conf per account, synced by `popgatectl config apply` "
     "and at daemon start.",
     nullptr, false},
    {"debug_log_dir", ConfigType::Path, "/var/log/popgate",
     "Where per-account debug logs (raw protocol, secrets redacted) are written.", nullptr,
     false},
    {"debug_logging_expiry", ConfigType::Duration, "24h",
     "An account's debug logging switches itself off after this long.", nullptr, false},
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

const std::vector<ConfigKey>& configKeys() { return kKeys; }

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
    std::set<std::string> seen;
    std::istringstream in(text);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        const std::string t = trim(line);
        if (t.empty() || t[0] == '#')
            continue;
        const std::string where = origin + ":" + std::to_string(number) + ": ";
        const auto eq = t.find('=');
        if (eq == std::string::npos) {
            problems.push_back(where + "expected 'key = value'");
            continue;
        }
        const std::string name = trim(t.substr(0, eq));
        const std::string value = trim(t.substr(eq + 1));
        const ConfigKey* key = findKey(name);
        if (!key) {
            problems.push_back(where + "unknown key '" + flatten(name) + "'");
            continue;
        }
        if (!seen.insert(name).second) {
            problems.push_back(where + name + ": set twice");
            continue;
        }
        try {
            checkValue(*key, value);
            c.values_[name] = value;
        } catch (const InputError& e) {
            problems.push_back(where + name + ": " + e.what());
        }
    }
    if (c.str("database.driver") == "postgresql" && c.str("database.connect").empty())
        problems.push_back(origin + ": database.connect: required with database.driver = postgresql");
    if (!problems.empty()) {
        std::string msg;
        for (const auto& p : problems)
            msg += (msg.empty() ? "" : "\n") + p;
        throw InputError(msg);
    }
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

bool Config::flag(const std::string& key) const { return parseBool(str(key)); }

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
    out << "# /etc/popgate/popgate.conf - configuration of popgated, popgate-milter and popgatectl.\n"
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
