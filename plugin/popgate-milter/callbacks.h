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

/// isUnixSocket - a milter.socket spec libmilter opens as a unix socket.
bool isUnixSocket(const std::string& socket);

/// tcpSocketNote - what --check-config and the start say about a TCP milter.socket.
inline const char* tcpSocketNote()
{
    return "a TCP socket costs the MTA one round trip per header of every message (Postfix "
           "writes to its milters with Nagle on, so popgate-milter must answer each header); "
           "a unix socket does not: unix:/var/spool/postfix/popgate/milter.sock, see "
           "/usr/share/doc/popgate/mta-integration.md";
}

/// registerMilter - smfi_register with popgate's callbacks; the objects must
/// outlive smfi_main. socket: the milter.socket it listens on (a unix socket
/// lets it negotiate fewer answers per message). Throws OperationError when
/// libmilter refuses.
void registerMilter(SnapshotSource& source, StorePool& pool, Poco::Logger& log,
                    const std::string& socket);

} // namespace popgate
