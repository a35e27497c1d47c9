// migrations.cpp - lookup and statement splitting for the compiled-in migrations.
#include "core/migrations.h"

#include "core/text.h"

#include <sstream>

namespace popgate
{

std::vector<const Migration*> migrationsFor(const std::string& dialect)
{
    std::vector<const Migration*> out;
    for (const auto& m : allMigrations())
        if (dialect == m.dialect)
            out.push_back(&m);
    return out;
}

int latestSchemaVersion(const std::string& dialect)
{
    int latest = 0;
    for (const auto* m : migrationsFor(dialect))
        latest = std::max(latest, m->version);
    return latest;
}

std::vector<std::string> splitStatements(const std::string& sql)
{
    std::vector<std::string> out;
    std::istringstream in(sql);
    std::string line, current;
    while (std::getline(in, line)) {
        const std::string t = trim(line);
        if (t.empty() || t.compare(0, 2, "--") == 0)
            continue;
        current += line + "\n";
        if (t.back() == ';') {
            current = trim(current);
            current.pop_back();
            out.push_back(current);
            current.clear();
        }
    }
    if (!trim(current).empty())
        out.push_back(trim(current));
    return out;
}

} // namespace popgate
