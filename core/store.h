// store.h - the SQL store (Poco::Data) for accounts and, later, filters and
// message state. One API over two dialects: SQLite (embedded default) and
// PostgreSQL (shared by several gateway hosts). Bound parameters only, `$1`
// placeholders (both drivers accept them). The drivers themselves are
// registered by the programs (core/dbdrivers.h), so the core stays driver-free.
#pragma once

#include "core/account.h"
#include "core/config.h"
#include "core/prepared.h"

#include <Poco/Data/Session.h>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace popgate
{

class Store
{
public:
    enum class Open { Existing, CreateFile };

    /// Store - connect as configured; throws OperationError naming the database.
    /// With Open::Existing a missing SQLite file is an error (nothing is created).
    explicit Store(const Config& config, Open mode = Open::Existing);

    /// dialect - "sqlite" or "postgresql".
    const std::string& dialect() const { return dialect_; }
    /// describe - where the data lives, for messages (no password).
    const std::string& describe() const { return description_; }

    /// schemaVersion - the version recorded in the database (0: empty).
    int schemaVersion();
    /// latestVersion - the version this build of popgate needs.
    int latestVersion() const;
    /// migrate - apply the missing migrations, each in its own transaction;
    /// returns their names. Throws OperationError if the database is newer.
    std::vector<std::string> migrate();
    /// requireCurrentSchema - throws OperationError unless the database is at
    /// exactly latestVersion(), saying what to do about it.
    void requireCurrentSchema();

    /// accounts - all accounts by name.
    std::vector<Account> accounts();
    /// account - one account, or nothing.
    std::optional<Account> account(const std::string& name);
    /// addAccount - insert; sets id and times. Throws InputError if the name exists.
    void addAccount(Account& account);
    /// updateAccount - write every field of an existing account (by id); sets updatedAt.
    void updateAccount(Account& account);
    /// removeAccount - false when there was no such account.
    bool removeAccount(const std::string& name);

    /// generation - the configuration generation: it grows with every change
    /// to an account or a filter (each in the change's own transaction), so a
    /// daemon re-reads its accounts and filters only when it moved.
    std::int64_t generation();
    /// bumpGeneration - for writers of configuration, inside their transaction.
    void bumpGeneration();

    Poco::Data::Session& session() { return *session_; }
    /// setCommitSync - true (the default): a commit is on disk when it
    /// returns. false: commits are written but not flushed (SQLite
    /// synchronous = NORMAL in WAL mode, PostgreSQL synchronous_commit = off):
    /// they survive a crash of this process, not of the machine or of the
    /// database server, until the next synced commit flushes them too. For
    /// group commit: many cheap commits, then one synced. Not inside a
    /// transaction.
    void setCommitSync(bool sync);
    /// prepared - this session's statements prepared once (core/prepared.h), or
    /// nullptr where the driver has none: then the caller goes through Poco.
    PreparedCache* prepared();

private:
    std::string dialect_;
    std::string description_;
    std::unique_ptr<Poco::Data::Session> session_;
    std::unique_ptr<PreparedCache> prepared_; ///< after session_: finalized before it closes
    bool preparedTried_ = false;
};

/// Transaction - begins one unless the session already has one open, so that
/// store operations compose inside a caller's larger transaction; rolls back
/// on destruction unless committed.
class Transaction
{
public:
    explicit Transaction(Poco::Data::Session& session)
        : session_(session), owner_(!session.isTransaction())
    {
        if (owner_)
            session_.begin();
    }
    ~Transaction()
    {
        if (owner_ && session_.isTransaction()) {
            try {
                session_.rollback();
            } catch (...) {
            }
        }
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    /// commit - commits when this object began the transaction.
    void commit()
    {
        if (owner_)
            session_.commit();
    }

private:
    Poco::Data::Session& session_;
    bool owner_;
};

/// nowSeconds - the current Unix time.
std::int64_t nowSeconds();

} // namespace popgate
