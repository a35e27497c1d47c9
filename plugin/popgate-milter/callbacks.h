// callbacks.h - the libmilter side of popgate-milter: thin callbacks that read
// the envelope and headers, ask the core (CompiledFilter, judgeReinjected) and
// map the answer to SMFIS_* codes, replies and header changes.
#pragma once

#include "plugin/popgate-milter/snapshot.h"

#include <Poco/Logger.h>
#include <string>

namespace popgate
{

/// smtpReplyText - text safe for smfi_setreply: one line, printable ASCII, '%'
/// doubled, at most 900 characters.
std::string smtpReplyText(const std::string& text);

/// registerMilter - smfi_register with popgate's callbacks; the objects must
/// outlive smfi_main. Throws OperationError when libmilter refuses.
void registerMilter(SnapshotSource& source, StorePool& pool, Poco::Logger& log);

} // namespace popgate
