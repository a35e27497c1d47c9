// migrations.h - the schema migrations compiled in from sql/<dialect>/NNNN_*.sql.
// Numbered, forward-only, one set per dialect; applied by Store::migrate().
#pragma once

#include <string>
#include <vector>

namespace popgate
{

struct Migration {
    const char* dialect; ///< "sqlite" | "postgresql"
    int version;
    const char* name; ///< file name without .sql, e.g. "0001_accounts"
    const char* sql;
};

/// allMigrations - every migration of every dialect (generated file).
const std::vector<Migration>& allMigrations();
/// migrationsFor - one dialect's migrations in version order.
std::vector<const Migration*> migrationsFor(const std::string& dialect);
/// latestSchemaVersion - the highest version this build knows for the dialect.
int latestSchemaVersion(const std::string& dialect);
/// splitStatements - the statements of a migration: split at ';' ending a
/// line, "--" comment lines dropped.
std::vector<std::string> splitStatements(const std::string& sql);

} // namespace popgate
