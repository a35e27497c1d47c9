// cli.cpp - shared command-line plumbing for popgatectl (see cli.h).
#include "popgatectl/cli.h"

#include "core/errors.h"
#include "core/text.h"

#include <Poco/DateTimeFormat.h>
#include <Poco/DateTimeFormatter.h>
#include <Poco/DateTimeParser.h>
#include <Poco/Exception.h>
#include <Poco/NumberParser.h>
#include <Poco/Timestamp.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionException.h>
#include <Poco/Util/OptionProcessor.h>
#include <fstream>
#include <iostream>
#include <termios.h>
#include <unistd.h>

namespace popgate::cli
{

Store& Context::openStore(Store::Open mode)
{
    if (!store_)
        store_ = std::make_unique<Store>(config, mode);
    return *store_;
}

Store& Context::store()
{
    const bool fresh = !store_;
    Store& s = openStore();
    if (fresh)
        s.requireCurrentSchema();
    return s;
}

const SecretBox& Context::secrets()
{
    if (!box_)
        box_ = SecretBox::loadOrCreate(config.str("secret_key_file"));
    return *box_;
}

ParsedArgs parseArgs(const std::vector<std::string>& args, const Poco::Util::OptionSet& options)
{
    ParsedArgs parsed;
    Poco::Util::OptionProcessor processor(options);
    try {
        for (const auto& arg : args) {
            std::string name, value;
            if (processor.process(arg, name, value)) {
                if (!name.empty()) {
                    parsed.options[name] = value;
                    parsed.ordered.emplace_back(name, value);
                }
            } else {
                parsed.positional.push_back(arg);
            }
        }
        processor.checkRequired();
    } catch (const Poco::Util::OptionException& e) {
        throw InputError(flatten(e.displayText()));
    }
    return parsed;
}

void requirePositional(const ParsedArgs& args, std::size_t n, const std::string& usage)
{
    if (args.positional.size() != n)
        throw InputError("usage: popgatectl " + usage);
}

namespace
{

// promptNoEcho - echo goes off before the prompt shows: nothing typed after the
// prompt appeared is ever echoed.
std::string promptNoEcho(const std::string& prompt)
{
    termios old{};
    const bool tty = ::tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::cerr << prompt << std::flush;
    std::string line;
    std::getline(std::cin, line);
    if (tty)
        ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::cerr << "\n";
    return line;
}

} // namespace

std::optional<std::string> readSecret(const ParsedArgs& args, bool prompt,
                                      const std::string& account)
{
    std::string secret;
    if (args.has("password-stdin")) {
        if (!std::getline(std::cin, secret))
            throw InputError("account '" + account + "': password: nothing on standard input");
    } else if (args.has("password-file")) {
        std::ifstream in(args.options.at("password-file"));
        if (!in || !std::getline(in, secret))
            throw InputError("account '" + account + "': password: cannot read " +
                             args.options.at("password-file"));
    } else if (prompt && ::isatty(STDIN_FILENO)) {
        secret = promptNoEcho("Password for account '" + account + "': ");
    } else {
        return std::nullopt;
    }
    if (!secret.empty() && secret.back() == '\r')
        secret.pop_back();
    if (secret.empty())
        throw InputError("account '" + account + "': password: is empty");
    if (secret.size() > 4096)
        throw InputError("account '" + account + "': password: too long (at most 4096 bytes)");
    return secret;
}

std::int64_t parseSince(const std::string& text)
{
    if (text.empty())
        return 0;
    try {
        return nowSeconds() - parseDuration(text);
    } catch (const InputError&) {
    }
    Poco::DateTime dt;
    int tz = 0;
    if (Poco::DateTimeParser::tryParse(text, dt, tz))
        return dt.timestamp().epochTime() - tz;
    throw InputError("since: expected a duration such as 2h or a date such as 2026-11-28, got '" +
                     flatten(text) + "'");
}

MessageRecord requireMessageRecord(MessageStore& ms, const std::string& idText)
{
    Poco::Int64 id = 0;
    if (!Poco::NumberParser::tryParse64(idText, id) || id <= 0)
        throw InputError("message '" + flatten(idText).substr(0, 40) +
                         "': expected a message id (see popgatectl message list)");
    auto m = ms.find(id);
    if (!m)
        throw InputError("message " + std::to_string(id) + ": no such message");
    return *m;
}

std::string ageText(std::int64_t seconds)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds < 120)
        return std::to_string(seconds) + "s";
    if (seconds < 2 * 3600)
        return std::to_string(seconds / 60) + "m";
    if (seconds < 2 * 86400)
        return std::to_string(seconds / 3600) + "h";
    return std::to_string(seconds / 86400) + "d";
}

std::string isoTime(std::int64_t seconds)
{
    if (seconds == 0)
        return "-";
    return Poco::DateTimeFormatter::format(Poco::Timestamp::fromEpochTime(seconds),
                                           Poco::DateTimeFormat::ISO8601_FORMAT);
}

} // namespace popgate::cli
