// config.h - popgate.conf: every key declared once in configKeys() (name,
// type, default, meaning). That table drives parsing, validation with line
// numbers, `config check`, `--check-config` and the commented sample in conf/.
// Format: "key = value" lines, '#' starts a comment line. Pure: reads a file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace popgate
{

enum class ConfigType { String, Path, Integer, Boolean, Duration, Choice };

struct ConfigKey {
    const char* name;
    ConfigType type;
    const char* defaultValue;
    const char* meaning;
    const char* choices; ///< Choice: values separated by '|'; else nullptr
    bool secret;         ///< never printed (may hold a password)
};

/// configKeys - every key popgate.conf accepts, in sample-file order.
const std::vector<ConfigKey>& configKeys();

/// kDefaultConfigPath - /etc/popgate/popgate.conf (POPGATE_SYSCONFDIR).
extern const char* const kDefaultConfigPath;

class Config
{
public:
    /// defaults - every key at its default; origin "(defaults)".
    static Config defaults();
    /// parse - text of a popgate.conf; throws InputError listing every
    /// problem as "ORIGIN:LINE: message", one per line.
    static Config parse(const std::string& text, const std::string& origin);
    /// load - parse the file at path; throws InputError when it cannot be read.
    static Config load(const std::string& path);
    /// resolve - the config to use: explicit path (must exist), else
    /// $POPGATE_CONFIG (must exist), else /etc/popgate/popgate.conf if present,
    /// else the defaults.
    static Config resolve(const std::string& explicitPath);

    /// str / integer / flag - the value of a declared key (throws std::logic_error
    /// for an undeclared key: a programming error).
    std::string str(const std::string& key) const;
    std::int64_t integer(const std::string& key) const;
    bool flag(const std::string& key) const;
    /// set - override one key (tests, command-line options); throws InputError.
    void set(const std::string& key, const std::string& value);

    const std::string& origin() const { return origin_; }

private:
    std::map<std::string, std::string> values_;
    std::string origin_;
};

/// sampleConfig - the commented popgate.conf shipped in conf/, from configKeys().
std::string sampleConfig();

} // namespace popgate
