// store.cpp - Poco::Data implementation of the store (see store.h).
// Every statement binds its values; no value is ever pasted into SQL text.
// SECURITY: a SQLite database holds servers, user names and sealed secrets:
// popgate creates it 0660 (group the directory's) whatever the umask, and
// SQLite gives its -wal and -shm files the database file's mode and owner.
#include "core/store.h"

#include "core/errors.h"
#include "core/migrations.h"
#include "core/recipients.h"
#include "core/rows.h"
#include "core/text.h"

#include <Poco/Data/RecordSet.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <Poco/File.h>
#include <Poco/Path.h>
#include <Poco/Timestamp.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <regex>
#include <sys/stat.h>
#include <unistd.h>

using namespace Poco::Data::Keywords;
using Poco::Data::RecordSet;
using Poco::Data::Statement;

namespace popgate
{

using rows::dbError;
using rows::number;
using rows::text;

std::int64_t nowSeconds()
{
    return Poco::Timestamp().epochTime();
}

namespace
{

const char* const kAccountColumns =
    "id, name, type, auth, server, port, username, secret, security, filter, active, provisioned, "
    "debug_logging, mailbox, deliver_to, poll_interval, keep_on_server, max_message_size, "
    "tls_ca_file, tls_pin, oauth_profile, auth_mechanism, plaintext_auth, tls_min_version, "
    "created_at, "
    "updated_at, "
    "recipients, envelope_header, envelope_header_skip, local_domains, recipient_map, "
    "fallback_recipient";

// withoutPassword - a libpq connection string with any password=... removed.
std::string withoutPassword(const std::string& connect)
{
    static const std::regex password(R"(password\s*=\s*('([^'\\]|\\.)*'|\S+))");
    return std::regex_replace(connect, password, "password=(hidden)");
}

constexpr mode_t kDatabaseMode = 0660;
constexpr mode_t kDatabaseDirMode = 0770;

// createDirectories - path and its missing parents, each new one 0770 whatever the
// umask (the daemons' group writes the -wal and -shm files there); existing ones
// are left as they are.
void createDirectories(const std::string& description, const Poco::Path& dir)
{
    const std::string path = dir.toString();
    if (path.empty() || Poco::File(path).exists())
        return;
    createDirectories(description, Poco::Path(dir).makeParent());
    if (::mkdir(path.c_str(), kDatabaseDirMode) != 0 && errno != EEXIST)
        throw OperationError("database " + description + ": cannot create " + path + ": " +
                             std::strerror(errno));
    ::chmod(path.c_str(), kDatabaseDirMode);
}

// createDatabaseFile - an empty database file, 0660 whatever the umask, group the
// directory's when the creator may give it (else its own); SQLite then gives the
// -wal and -shm files the same mode. Nothing when the file exists.
void createDatabaseFile(const std::string& description, const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, kDatabaseMode);
    if (fd < 0) {
        if (errno == EEXIST)
            return;
        throw OperationError("database " + description + ": cannot create it: " +
                             std::strerror(errno));
    }
    struct stat dir {
    };
    // The directory's group (popgate-db in the package), where the creator may
    // set it; where it may not, the file keeps the creator's group: not an error.
    if (::stat(Poco::Path(path).parent().toString().c_str(), &dir) == 0 &&
        ::fchown(fd, static_cast<uid_t>(-1), dir.st_gid) != 0)
        errno = 0;
    const bool ok = ::fchmod(fd, kDatabaseMode) == 0;
    const int error = errno;
    ::close(fd);
    if (!ok) {
        ::unlink(path.c_str());
        throw OperationError("database " + description + ": cannot set its mode: " +
                             std::strerror(error));
    }
}

// closeToOthers - an existing database (or -wal, -shm) file that others may read
// or write, made private to owner and group (an earlier popgate created them under
// the umask). Only its owner or root may; anyone else leaves it as it is.
void closeToOthers(const std::string& path)
{
    struct stat st {
    };
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IRWXO) != 0 &&
        (::geteuid() == 0 || ::geteuid() == st.st_uid))
        ::chmod(path.c_str(), st.st_mode & 07770);
}

Account readAccount(RecordSet& rs)
{
    Account a;
    a.id = number(rs, "id");
    a.name = text(rs, "name");
    a.type = text(rs, "type");
    a.auth = parseAuth(text(rs, "auth"));
    a.server = text(rs, "server");
    a.port = static_cast<int>(number(rs, "port"));
    a.user = text(rs, "username");
    a.sealedSecret = text(rs, "secret");
    a.security = parseSecurity(text(rs, "security"));
    a.filter = text(rs, "filter");
    a.active = number(rs, "active") != 0;
    a.provisioned = number(rs, "provisioned") != 0;
    a.debugLogging = number(rs, "debug_logging") != 0;
    a.mailbox = text(rs, "mailbox");
    a.deliverTo = text(rs, "deliver_to");
    a.pollInterval = static_cast<int>(number(rs, "poll_interval"));
    a.keepOnServer = number(rs, "keep_on_server") != 0;
    a.maxMessageSize = number(rs, "max_message_size");
    a.tlsCaFile = text(rs, "tls_ca_file");
    a.tlsPin = text(rs, "tls_pin");
    a.oauthProfile = text(rs, "oauth_profile");
    a.authMechanism = text(rs, "auth_mechanism");
    a.plaintextAuth = number(rs, "plaintext_auth") != 0;
    a.tlsMinVersion = text(rs, "tls_min_version");
    a.createdAt = number(rs, "created_at");
    a.updatedAt = number(rs, "updated_at");
    a.recipientSource = parseRecipientSource(text(rs, "recipients"));
    a.envelopeHeader = text(rs, "envelope_header");
    a.envelopeHeaderSkip = static_cast<int>(number(rs, "envelope_header_skip"));
    a.localDomains = text(rs, "local_domains");
    a.recipientMap = text(rs, "recipient_map");
    a.fallbackRecipient = text(rs, "fallback_recipient");
    return a;
}

// saveRecipientFields - the domain-mailbox fields (0008) of account a, inside
// the caller's transaction, after its INSERT or UPDATE of the row.
void saveRecipientFields(Poco::Data::Session& session, const Account& a, Poco::Int64 id)
{
    session << "UPDATE accounts SET recipients = $1, envelope_header = $2, "
               "envelope_header_skip = $3, local_domains = $4, recipient_map = $5, "
               "fallback_recipient = $6 WHERE id = $7",
        bind(recipientSourceName(a.recipientSource)), bind(a.envelopeHeader),
        bind(a.envelopeHeaderSkip), bind(a.localDomains), bind(a.recipientMap),
        bind(a.fallbackRecipient), bind(id), now;
}

} // namespace

Store::Store(const Config& config, Open mode)
{
    const std::string driver = config.str("database.driver");
    try {
        if (driver == "postgresql") {
            dialect_ = "postgresql";
            description_ = "postgresql (" + withoutPassword(config.str("database.connect")) + ")";
            session_ =
                std::make_unique<Poco::Data::Session>("PostgreSQL", config.str("database.connect"));
        } else {
            dialect_ = "sqlite";
            const std::string path = config.str("database.path");
            description_ = "sqlite " + path;
            if (mode == Open::Existing && !Poco::File(path).exists())
                throw OperationError("database " + description_ +
                                     ": does not exist; create it with `popgatectl db migrate`");
            if (mode == Open::CreateFile) {
                createDirectories(description_, Poco::Path(path).parent());
                createDatabaseFile(description_, path);
                for (const char* suffix : {"", "-wal", "-shm"})
                    closeToOthers(path + suffix);
            }
            session_ = std::make_unique<Poco::Data::Session>("SQLite", path);
            *session_ << "PRAGMA busy_timeout = 10000", now;
            *session_ << "PRAGMA foreign_keys = ON", now;
            *session_ << "PRAGMA journal_mode = WAL", now;
            // FULL: a commit is on disk when it returns, power loss included
            // (NORMAL in WAL mode keeps it only across a process crash). The
            // fetcher commits once per batch of messages, not per message, so
            // the fsync costs little (see bench/README.md).
            *session_ << "PRAGMA synchronous = FULL", now;
            // Each connection (popgated opens one per worker plus one) keeps
            // its own page cache, 2 MB by default, which fills as the message
            // log grows: 256 KB holds the hot index pages, and a miss is a read
            // from the OS page cache.
            *session_ << "PRAGMA cache_size = -256", now;
        }
    } catch (const Poco::Data::NotConnectedException& e) {
        throw dbError(description_, "cannot connect", e);
    } catch (const Poco::Exception& e) {
        throw dbError(description_, "cannot open", e);
    }
}

int Store::latestVersion() const
{
    return latestSchemaVersion(dialect_);
}

int Store::schemaVersion()
{
    try {
        int tables = 0;
        if (dialect_ == "sqlite")
            *session_ << "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
                         "'schema_version'",
                into(tables), now;
        else
            *session_ << "SELECT count(*) FROM information_schema.tables "
                         "WHERE table_schema = current_schema() AND table_name = 'schema_version'",
                into(tables), now;
        if (tables == 0)
            return 0;
        int version = 0;
        *session_ << "SELECT COALESCE(MAX(version), 0) FROM schema_version", into(version), now;
        return version;
    } catch (const Poco::Exception& e) {
        throw dbError(description_, "cannot read the schema version", e);
    }
}

std::vector<std::string> Store::migrate()
{
    std::vector<std::string> applied;
    try {
        *session_ << "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                     "name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            now;
        for (const Migration* m : migrationsFor(dialect_)) {
            Transaction tx(*session_);
            {
                // Two hosts migrating one PostgreSQL database take turns.
                if (dialect_ == "postgresql")
                    *session_ << "SELECT pg_advisory_xact_lock(7046854)", now;
                int present = 0;
                *session_ << "SELECT count(*) FROM schema_version WHERE version = $1",
                    bind(m->version), into(present), now;
                if (present == 0) {
                    for (const auto& stmt : splitStatements(m->sql))
                        *session_ << stmt, now;
                    *session_ << "INSERT INTO schema_version (version, name, applied_at) VALUES "
                                 "($1, $2, $3)",
                        bind(m->version), bind(std::string(m->name)), bind(nowSeconds()), now;
                    applied.push_back(m->name);
                }
                tx.commit();
            }
        }
    } catch (const Poco::Exception& e) {
        throw dbError(description_, "migration failed", e);
    }
    const int version = schemaVersion();
    if (version > latestVersion())
        throw OperationError("database " + description_ + ": schema version " +
                             std::to_string(version) + " is newer than this popgate knows (" +
                             std::to_string(latestVersion()) + "); upgrade popgate");
    return applied;
}

void Store::requireCurrentSchema()
{
    const int version = schemaVersion();
    const int latest = latestVersion();
    if (version > latest)
        throw OperationError("database " + description_ + ": schema version " +
                             std::to_string(version) + " is newer than this popgate knows (" +
                             std::to_string(latest) + "); upgrade popgate");
    if (version < latest)
        throw OperationError("database " + description_ + ": schema version " +
                             std::to_string(version) + ", this popgate needs " +
                             std::to_string(latest) + "; run `popgatectl db migrate`");
}

std::vector<Account> Store::accounts()
{
    std::vector<Account> out;
    try {
        Statement select(*session_);
        select << "SELECT " << kAccountColumns << " FROM accounts ORDER BY name";
        select.execute();
        RecordSet rs(select);
        for (bool more = rs.moveFirst(); more; more = rs.moveNext())
            out.push_back(readAccount(rs));
    } catch (const Poco::Exception& e) {
        throw dbError(description_, "cannot list accounts", e);
    }
    return out;
}

std::optional<Account> Store::account(const std::string& name)
{
    try {
        Statement select(*session_);
        select << "SELECT " << kAccountColumns << " FROM accounts WHERE name = $1", bind(name);
        select.execute();
        RecordSet rs(select);
        if (!rs.moveFirst())
            return std::nullopt;
        return readAccount(rs);
    } catch (const Poco::Exception& e) {
        throw dbError(description_, "cannot read account '" + flatten(name) + "'", e);
    }
}

void Store::addAccount(Account& a)
{
    a.createdAt = a.updatedAt = nowSeconds();
    try {
        Transaction tx(*session_);
        int exists = 0;
        *session_ << "SELECT count(*) FROM accounts WHERE name = $1", bind(a.name), into(exists),
            now;
        if (exists)
            throw InputError("account '" + a.name +
                             "': name: an account of that name exists already");
        *session_
            << "INSERT INTO accounts (name, type, auth, server, port, username, secret, security, "
               "filter, active, provisioned, debug_logging, mailbox, deliver_to, poll_interval, "
               "keep_on_server, max_message_size, tls_ca_file, tls_pin, oauth_profile, "
               "auth_mechanism, "
               "plaintext_auth, tls_min_version, created_at, updated_at) VALUES ($1, $2, $3, $4, "
               "$5, "
               "$6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, "
               "$23, $24, $25)",
            bind(a.name), bind(a.type), bind(authName(a.auth)), bind(a.server), bind(a.port),
            bind(a.user), bind(a.sealedSecret), bind(securityName(a.security)), bind(a.filter),
            bind(int(a.active)), bind(int(a.provisioned)), bind(int(a.debugLogging)),
            bind(a.mailbox), bind(a.deliverTo), bind(a.pollInterval), bind(int(a.keepOnServer)),
            bind(Poco::Int64(a.maxMessageSize)), bind(a.tlsCaFile), bind(a.tlsPin),
            bind(a.oauthProfile), bind(a.authMechanism), bind(int(a.plaintextAuth)),
            bind(a.tlsMinVersion), bind(Poco::Int64(a.createdAt)), bind(Poco::Int64(a.updatedAt)),
            now;
        Poco::Int64 id = 0;
        *session_ << "SELECT id FROM accounts WHERE name = $1", bind(a.name), into(id), now;
        saveRecipientFields(*session_, a, id);
        bumpGeneration();
        tx.commit();
        a.id = id;
    } catch (const Poco::Exception& e) {
        throw dbError(description_, "cannot add account '" + flatten(a.name) + "'", e);
    }
}

void Store::updateAccount(Account& a)
{
    a.updatedAt = nowSeconds();
    try {
        Transaction tx(*session_);
        std::size_t rows = 0;
        Statement update(*session_);
        update
            << "UPDATE accounts SET type = $1, auth = $2, server = $3, port = $4, username = $5, "
               "secret = $6, security = $7, filter = $8, active = $9, provisioned = $10, "
               "debug_logging = $11, mailbox = $12, deliver_to = $13, poll_interval = $14, "
               "keep_on_server = $15, max_message_size = $16, tls_ca_file = $17, tls_pin = $18, "
               "oauth_profile = $19, auth_mechanism = $20, plaintext_auth = $21, tls_min_version = "
               "$22, "
               "updated_at = $23 WHERE id = $24",
            bind(a.type), bind(authName(a.auth)), bind(a.server), bind(a.port), bind(a.user),
            bind(a.sealedSecret), bind(securityName(a.security)), bind(a.filter),
            bind(int(a.active)), bind(int(a.provisioned)), bind(int(a.debugLogging)),
            bind(a.mailbox), bind(a.deliverTo), bind(a.pollInterval), bind(int(a.keepOnServer)),
            bind(Poco::Int64(a.maxMessageSize)), bind(a.tlsCaFile), bind(a.tlsPin),
            bind(a.oauthProfile), bind(a.authMechanism), bind(int(a.plaintextAuth)),
            bind(a.tlsMinVersion), bind(Poco::Int64(a.updatedAt)), bind(Poco::Int64(a.id));
        rows = update.execute();
        if (rows == 0)
            throw OperationError("account '" + a.name + "': no longer in the database");
        saveRecipientFields(*session_, a, Poco::Int64(a.id));
        bumpGeneration();
        tx.commit();
    } catch (const Poco::Exception& e) {
        throw dbError(description_, "cannot update account '" + flatten(a.name) + "'", e);
    }
}

bool Store::removeAccount(const std::string& name)
{
    try {
        Transaction tx(*session_);
        Statement del(*session_);
        del << "DELETE FROM accounts WHERE name = $1", bind(name);
        if (del.execute() == 0)
            return false;
        bumpGeneration();
        tx.commit();
        return true;
    } catch (const Poco::Exception& e) {
        throw dbError(description_, "cannot remove account '" + flatten(name) + "'", e);
    }
}

std::int64_t Store::generation()
{
    static const char* const sql = "SELECT generation FROM config_generation WHERE id = 1";
    if (PreparedCache* cache = prepared()) { // every poll (the filter cache): prepared once
        Prepared select(cache->get(sql));
        return select->step() ? select->number(0) : 0;
    }
    try {
        Poco::Int64 g = 0;
        *session_ << sql, into(g), now;
        return g;
    } catch (const Poco::Exception& e) {
        throw dbError(description_, "cannot read the config generation", e);
    }
}

void Store::bumpGeneration()
{
    *session_ << "UPDATE config_generation SET generation = generation + 1, updated_at = $1 "
                 "WHERE id = 1",
        bind(Poco::Int64(nowSeconds())), now;
}

namespace
{

std::mutex preparedFactoriesMutex;
std::map<std::string, PreparedCacheFactory>& preparedFactories()
{
    static std::map<std::string, PreparedCacheFactory> factories;
    return factories;
}

} // namespace

void setPreparedCacheFactory(const std::string& dialect, PreparedCacheFactory factory)
{
    std::lock_guard<std::mutex> lock(preparedFactoriesMutex);
    preparedFactories()[dialect] = factory;
}

PreparedCacheFactory preparedCacheFactory(const std::string& dialect)
{
    std::lock_guard<std::mutex> lock(preparedFactoriesMutex);
    auto it = preparedFactories().find(dialect);
    return it == preparedFactories().end() ? nullptr : it->second;
}

PreparedCache* Store::prepared()
{
    if (!preparedTried_) {
        preparedTried_ = true;
        if (PreparedCacheFactory make = preparedCacheFactory(dialect_))
            prepared_ = make(*session_, description_);
    }
    return prepared_.get();
}

void Store::setCommitSync(bool sync)
{
    static const char* const full = "PRAGMA synchronous = FULL";
    static const char* const normal = "PRAGMA synchronous = NORMAL";
    static const char* const on = "SET synchronous_commit TO on";
    static const char* const off = "SET synchronous_commit TO off";
    const char* const sql = dialect_ == "sqlite" ? (sync ? full : normal) : (sync ? on : off);
    if (PreparedCache* cache = prepared()) { // twice a poll: prepared once
        Prepared statement(cache->get(sql));
        while (statement->step()) {
        }
        return;
    }
    try {
        *session_ << sql, now;
    } catch (const Poco::Exception& e) {
        throw dbError(description_, "cannot set the commit mode", e);
    }
}

} // namespace popgate
