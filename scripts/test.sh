#!/bin/bash
# test.sh - the whole test suite on a fresh Debian 12 machine (as root):
# installs the dependencies, builds with warnings as errors, creates the
# package's system users when missing (scripts/users.sh: started as root, the
# daemons switch to popgate and popgate-milter, and the suites start them as
# root), starts the real servers the suites use (PostgreSQL, Dovecot, Postfix)
# on 127.0.0.1 high ports, runs every suite with ctest, and stops the servers
# by PID whatever happens.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${POPGATE_BUILD_DIR:-$top/build}

"$top/scripts/install-deps.sh"
"$top/scripts/users.sh"
cmake -S "$top" -B "$build" -DPOPGATE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"

servers=$(mktemp -d /tmp/popgate-servers.XXXXXX)
chmod 755 "$servers"
stop_servers() {
  "$top/scripts/servers/postfix.sh" stop "$servers/postfix" || true
  "$top/scripts/servers/dovecot.sh" stop "$servers/dovecot" || true
  "$top/scripts/servers/postgresql.sh" stop "$servers/pg" || true
  rm -rf "$servers"
}
trap stop_servers EXIT

"$top/scripts/servers/postgresql.sh" start "$servers/pg"
"$top/scripts/servers/dovecot.sh" start "$servers/dovecot"
"$top/scripts/servers/postfix.sh" start "$servers/postfix"
set -a
. "$servers/pg/env"
. "$servers/dovecot/env"
. "$servers/postfix/env"
set +a

ctest --test-dir "$build" --output-on-failure --timeout 600 "$@"
