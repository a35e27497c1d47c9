#!/bin/bash
# postgresql.sh start|stop STATEDIR - a throwaway PostgreSQL 15 cluster for the
# tests: trust authentication, 127.0.0.1 only, a free high port, socket in
# STATEDIR. `start` writes STATEDIR/env (POPGATE_TEST_PG_CONNECT=...);
# `stop` stops it by its PID file. Needs root (runs the server as postgres).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/lib.sh"

cmd=${1:?usage: postgresql.sh start|stop STATEDIR}
state=${2:?usage: postgresql.sh start|stop STATEDIR}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=$state/data

case "$cmd" in
start)
  mkdir -p "$state"
  chown postgres: "$state"
  chmod 700 "$state"
  runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres --no-sync >"$state/initdb.log"
  port=$(free_port)
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$state/server.log" -w -t 60 \
    -o "-p $port -k $state -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
  echo "POPGATE_TEST_PG_CONNECT='host=127.0.0.1 port=$port user=postgres'" > "$state/env"
  echo "postgresql: listening on 127.0.0.1:$port (pid $(head -n 1 "$data/postmaster.pid"))"
  ;;
stop)
  if [ -f "$data/postmaster.pid" ]; then
    pid=$(head -n 1 "$data/postmaster.pid")
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  ;;
*)
  echo "usage: postgresql.sh start|stop STATEDIR" >&2
  exit 2
  ;;
esac
