#!/bin/bash
# scaleout.sh - 1, 2 and 3 popgated processes (host ids h1..h3) on one PostgreSQL sharing N idle
# accounts (issue 15, item 11; docs/scale-out.md): per host CPU, peak RSS, polls and lateness,
# and the database's load (transactions and rows written per second, per host).
#   bench/scaleout.sh [BUILD_DIR]        (default build/; needs popgated and popgatectl built)
# Variables: SO_ACCOUNTS (3000), SO_INTERVAL (60 s poll interval), SO_SECONDS (160 per run: the
# window after the warm-up is two poll intervals), SO_WARMUP (40: left out of the figures; covers
# the first polls' 30 s spread), SO_HOSTS ("1 2 3"), SO_OUT (bench/results/scaleout.csv), SO_KEEP
# (1: keep the state dir and the logs). Runs as root on Debian 12: starts a private PostgreSQL and
# Dovecot (scripts/servers/) on free loopback ports, stops them by PID at the end.
# Only idle mailboxes: nothing reaches an MTA (reinject.port points at a closed port).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
accounts=${SO_ACCOUNTS:-3000} interval=${SO_INTERVAL:-60} seconds=${SO_SECONDS:-160}
warmup=${SO_WARMUP:-40} hostsList=${SO_HOSTS:-1 2 3} out=${SO_OUT:-$top/bench/results/scaleout.csv}
popgated=$build/plugin/popgated/popgated popgatectl=$build/popgatectl/popgatectl
export POPGATE_MODULE_DIR=$build/core
state=$(mktemp -d /tmp/popgate-scaleout.XXXXXX)
chmod 755 "$state"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  "$top/scripts/servers/dovecot.sh" stop "$state/dovecot" >/dev/null 2>&1 || true
  "$top/scripts/servers/postgresql.sh" stop "$state/pg" >/dev/null 2>&1 || true
  [ "${SO_KEEP:-0}" = 1 ] && echo "state kept in $state" >&2 || rm -rf "$state"
}
trap cleanup EXIT

"$top/scripts/servers/postgresql.sh" start "$state/pg" >/dev/null
POPGATE_TEST_DOVECOT_EXTRA_USERS=$accounts "$top/scripts/servers/dovecot.sh" start "$state/dovecot" >/dev/null
set -a; . "$state/pg/env"; . "$state/dovecot/env"; set +a
pg() { psql "$POPGATE_TEST_PG_CONNECT dbname=$1" -Atqc "$2"; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
hz=$(getconf CLK_TCK)

mkdir -p "$(dirname "$out")"
[ -s "$out" ] || echo "hosts,host,accounts,interval_s,window_s,cpu_pct,peak_rss_kb,accounts_held,polls,late_max_ms,late_p99_ms,late_over_2s,db_xact_per_s,db_rows_written_per_s,db_xact_per_s_per_host" > "$out"

for hosts in $hostsList; do
  db="so$hosts"
  pg postgres "CREATE DATABASE $db"
  w=$state/run$hosts
  mkdir -p "$w/accounts.d" "$w/secrets"
  printf '%s\n' "$POPGATE_TEST_DOVECOT_PASSWORD" > "$w/secrets/pop3.secret"
  chmod 600 "$w/secrets/pop3.secret"
  while read -r u _; do
    printf '%s\n' "server = 127.0.0.1" "port = $POPGATE_TEST_DOVECOT_PORT" "user = $u" \
      "security = none" "plaintext-auth = yes" "mailbox = $u@example.com" \
      "deliver-to = bench@popgate.test" "poll-interval = ${interval}s" \
      "secret_file = $w/secrets/pop3.secret" > "$w/accounts.d/$u.conf"
  done < "$POPGATE_TEST_DOVECOT_EXTRA_USERS_FILE"
  for h in $(seq 1 "$hosts"); do
    mkdir -p "$w/h$h/spool"
    cat > "$w/h$h/popgate.conf" <<CONF
database.driver = postgresql
database.connect = $POPGATE_TEST_PG_CONNECT dbname=$db
secret_key_file = $w/secret.key
header_key_file = $w/header.key
accounts_dir = $w/accounts.d
secrets_dir = $w/secrets
spool_dir = $w/h$h/spool
debug_log_dir = $w/h$h/debug
reinject.port = 9
host_id = h$h
CONF
  done
  ctl=("$popgatectl" --config="$w/h1/popgate.conf")
  "${ctl[@]}" db migrate >/dev/null
  "${ctl[@]}" config apply >/dev/null
  "$popgated" --config="$w/h1/popgate.conf" --once --log=stderr 2>/dev/null || true # header.key
  pids=()
  for h in $(seq 1 "$hosts"); do
    "$popgated" --config="$w/h$h/popgate.conf" --log=stderr > "$w/h$h/log" 2>&1 &
    pids+=($!)
  done
  sleep "$warmup"
  declare -A t0=()
  for i in "${!pids[@]}"; do t0[$i]=$(cpu_ticks "${pids[$i]}"); done
  x0=$(pg "$db" "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$db'")
  r0=$(pg "$db" "SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = '$db'")
  s0=$(date +%s.%N)
  sleep $((seconds - warmup))
  s1=$(date +%s.%N)
  x1=$(pg "$db" "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$db'")
  r1=$(pg "$db" "SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = '$db'")
  declare -A held=()
  while IFS='|' read -r hid n; do held[$hid]=$n; done < <(pg "$db" \
    "SELECT holder, COUNT(*) FROM account_leases WHERE expires_at > CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) GROUP BY holder")
  win=$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b - a}')
  xps=$(awk -v a="$x0" -v b="$x1" -v w="$win" 'BEGIN{printf "%.1f", (b - a) / w}')
  rps=$(awk -v a="$r0" -v b="$r1" -v w="$win" 'BEGIN{printf "%.1f", (b - a) / w}')
  xph=$(awk -v x="$xps" -v h="$hosts" 'BEGIN{printf "%.1f", x / h}')
  for i in "${!pids[@]}"; do
    p=${pids[$i]} h=$((i + 1))
    t1=$(cpu_ticks "$p")
    rss=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status")
    cpu=$(awk -v a="${t0[$i]}" -v b="$t1" -v w="$win" -v hz="$hz" 'BEGIN{printf "%.2f", 100 * (b - a) / hz / w}')
    kill -TERM "$p"; wait "$p" || true
    # the scheduler's summary at stop: polls and lateness over the whole run
    sum=$(grep -o 'scheduler: polls=[0-9]* late_max_ms=[0-9]* late_p99_ms=[0-9]* late_over_2s=[0-9]*' "$w/h$h/log" | tail -1)
    polls=$(sed 's/.*polls=\([0-9]*\).*/\1/' <<<"$sum")
    lmax=$(sed 's/.*late_max_ms=\([0-9]*\).*/\1/' <<<"$sum")
    lp99=$(sed 's/.*late_p99_ms=\([0-9]*\).*/\1/' <<<"$sum")
    l2=$(sed 's/.*late_over_2s=\([0-9]*\).*/\1/' <<<"$sum")
    echo "$hosts,h$h,$accounts,$interval,$win,$cpu,$rss,${held[h$h]:-0},$polls,$lmax,$lp99,$l2,$xps,$rps,$xph" | tee -a "$out"
  done
  pids=()
done
