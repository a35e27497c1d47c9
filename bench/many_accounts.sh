#!/bin/bash
# many_accounts.sh - one popgated over N idle accounts of a private Dovecot (issue Perf, goal 2:
# 10 000 accounts at 60 s on one host under 25 % of a core, under 64 MiB, p99 lateness under 1 s),
# for each N in MA_ACCOUNTS: CPU % of a core over a window after start-up, per thread, peak RSS,
# private memory, lateness, polls, failed logins. No fetchmail: popgated alone.
#   bench/many_accounts.sh [BUILD_DIR]      (default build/; needs popgated and popgatectl built)
# Variables (defaults in brackets):
#   MA_ACCOUNTS ["1000 3000 10000"]  MA_INTERVAL [60]  MA_DRIVER [sqlite] (postgresql: a private one)
#   MA_WARMUP [70]   seconds after start left out: start-up and the first round, which popgated
#                    spreads over the first 30 s; the window then holds steady-state polls only
#   MA_SECONDS [190] how long each popgated runs (window = MA_SECONDS - MA_WARMUP: two intervals)
#   MA_WORKERS [popgate's default, 8]  popgated's `workers`
#   MA_PERF [0]      1: `perf record -e cpu-clock -g` over the window; the report in MA_OUT_DIR
#   MA_OUT [bench/results/many_accounts.csv]  MA_KEEP [0] (1: keep the state dir)
#   MA_GIT   the commit to record when the tree is not a git checkout (a snapshot)
# Memory: VmHWM (peak RSS) and, from /proc/PID/smaps_rollup at the window's end, private =
# Private_Dirty + Private_Clean (pages only this process maps: heap, stacks, written data),
# and Anonymous. Runs as root on Debian 12 (Dovecot starts as root; popgated drops to popgate).
# Timing-sensitive: run it under `flock /work/bench.lock` when others bench on the machine.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
accountsList=${MA_ACCOUNTS:-1000 3000 10000} interval=${MA_INTERVAL:-60} driver=${MA_DRIVER:-sqlite}
warmup=${MA_WARMUP:-70} seconds=${MA_SECONDS:-190} perf=${MA_PERF:-0}
out=${MA_OUT:-$top/bench/results/many_accounts.csv}
outDir=$(dirname "$out")
popgated=$build/plugin/popgated/popgated popgatectl=$build/popgatectl/popgatectl
export POPGATE_MODULE_DIR=$build/core
max=0
for n in $accountsList; do [ "$n" -gt "$max" ] && max=$n; done
state=$(mktemp -d /tmp/popgate-many.XXXXXX) && chmod 755 "$state"
pid="" perfPid=""
cleanup() {
  [ -n "$perfPid" ] && kill -INT "$perfPid" 2>/dev/null || true
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  "$top/scripts/servers/dovecot.sh" stop "$state/dovecot" >/dev/null 2>&1 || true
  [ -f "$state/pg/env" ] && "$top/scripts/servers/postgresql.sh" stop "$state/pg" >/dev/null 2>&1 || true
  [ "${MA_KEEP:-0}" = 1 ] && echo "state kept in $state" >&2 || rm -rf "$state"
}
trap cleanup EXIT

POPGATE_TEST_DOVECOT_EXTRA_USERS=$max "$top/scripts/servers/dovecot.sh" start "$state/dovecot" >/dev/null
. "$state/dovecot/env"
mapfile -t users < <(cut -d' ' -f1 "$POPGATE_TEST_DOVECOT_EXTRA_USERS_FILE")
dlog=$state/dovecot/main/dovecot.log
if [ "$driver" = postgresql ]; then
  "$top/scripts/servers/postgresql.sh" start "$state/pg" >/dev/null
  . "$state/pg/env"
fi
cpu_ticks() { sed 's/.*) //' "$1" | awk '{print $12 + $13}'; }
hz=$(getconf CLK_TCK)
rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo "${MA_GIT:-unknown}")
mkdir -p "$outDir"
[ -s "$out" ] || echo "driver,workers,accounts,interval_s,window_s,cpu_pct,cpu_ms_per_poll,peak_rss_kb,private_kb,anonymous_kb,polls,window_logins,late_max_ms,late_p99_ms,late_over_2s,failed_logins,poll_errors,accounts_polled,threads_cpu,git,load_start,load_end" > "$out"

for n in $accountsList; do
  w=$state/run-$n
  rm -rf "$w" && mkdir -p "$w/accounts.d" "$w/secrets"
  if [ "$driver" = postgresql ]; then
    psql -q "$POPGATE_TEST_PG_CONNECT dbname=postgres" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' >/dev/null
    db="database.driver = postgresql
database.connect = $POPGATE_TEST_PG_CONNECT"
  else
    db="database.driver = sqlite
database.path = $w/popgate.db"
  fi
  cat > "$w/popgate.conf" <<CONF
$db
secret_key_file = $w/secret.key
header_key_file = $w/header.key
accounts_dir = $w/accounts.d
secrets_dir = $w/secrets
spool_dir = $w/spool
debug_log_dir = $w/debug
reinject.port = 9
CONF
  [ -n "${MA_WORKERS:-}" ] && echo "workers = $MA_WORKERS" >> "$w/popgate.conf"
  printf '%s\n' "$POPGATE_TEST_DOVECOT_PASSWORD" > "$w/secrets/pop3.secret" && chmod 600 "$w/secrets/pop3.secret"
  for u in "${users[@]:0:n}"; do
    printf '%s\n' "server = 127.0.0.1" "port = $POPGATE_TEST_DOVECOT_PORT" "user = $u" "security = none" \
      "plaintext-auth = yes" "mailbox = bench@popgate.test" "poll-interval = ${interval}s" \
      "secret_file = $w/secrets/pop3.secret" > "$w/accounts.d/$u.conf"
  done
  ctl=("$popgatectl" --config="$w/popgate.conf")
  "${ctl[@]}" db migrate >/dev/null
  "${ctl[@]}" config apply >/dev/null
  "${ctl[@]}" filter add inbound --default=yes >/dev/null
  "${ctl[@]}" filter address add spam --type=deny --domains=spam.example >/dev/null
  "${ctl[@]}" filter attach inbound spam >/dev/null
  chown -R popgate:popgate "$w"
  load0=$(cut -d' ' -f1 /proc/loadavg)
  from=$(stat -c %s "$dlog")
  tStart=$(date +%s.%N)
  "$popgated" --config="$w/popgate.conf" --log=stderr > "$w/log" 2>&1 &
  pid=$!
  sleep "$warmup"
  kill -0 "$pid"
  declare -A t0=() names=()
  for f in /proc/$pid/task/*/stat; do
    tid=${f#/proc/$pid/task/}; tid=${tid%/stat}
    t0[$tid]=$(cpu_ticks "$f"); names[$tid]=$(cat "/proc/$pid/task/$tid/comm")
  done
  p0=$(cpu_ticks "/proc/$pid/stat") w0=$(date +%s.%N) l0=$(stat -c %s "$dlog")
  if [ "$perf" = 1 ]; then
    perf record -q -e cpu-clock -g -p "$pid" -o "$w/perf.data" >/dev/null 2>&1 &
    perfPid=$!
  fi
  sleep $((seconds - warmup))
  p1=$(cpu_ticks "/proc/$pid/stat") w1=$(date +%s.%N) l1=$(stat -c %s "$dlog")
  threads=""
  for f in /proc/$pid/task/*/stat; do
    tid=${f#/proc/$pid/task/}; tid=${tid%/stat}
    d=$(( $(cpu_ticks "$f") - ${t0[$tid]:-0} ))
    [ "$d" -gt 0 ] && threads="$threads ${names[$tid]:-$(cat "/proc/$pid/task/$tid/comm")}:$d"
  done
  hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status")
  priv=$(awk '/^Private_(Dirty|Clean):/{s += $2} END{print s}' "/proc/$pid/smaps_rollup")
  anon=$(awk '/^Anonymous:/{print $2}' "/proc/$pid/smaps_rollup")
  if [ -n "$perfPid" ]; then
    kill -INT "$perfPid"; wait "$perfPid" || true; perfPid=""
    {
      echo "# perf record -e cpu-clock -g over the window, $n accounts, $driver: by object, by thread, by symbol"
      perf report -i "$w/perf.data" --no-children -g none --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 25
      perf report -i "$w/perf.data" --no-children -g none --sort tid --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 25
      perf report -i "$w/perf.data" --no-children -g none --sort dso,sym --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -n 70
    } > "$outDir/perf-many-$driver-$n.txt" || true
    perf report -i "$w/perf.data" --children --sort sym --stdio -g caller,0.5,callee --percent-limit 2 2>/dev/null |
      head -n 400 > "$outDir/perf-many-$driver-$n-callers.txt" || true
  fi
  kill -TERM "$pid"; wait "$pid" || true; pid=""
  load1=$(cut -d' ' -f1 /proc/loadavg)
  tail -c +$((from + 1)) "$dlog" > "$w/dovecot.log"
  windowLogins=$(head -c $((l1 - from)) "$w/dovecot.log" | tail -c +$((l0 - from + 1)) |
    grep -c 'pop3-login: Info: Login: user=<bench' || true)
  declare -A st=()
  while IFS== read -r k v; do st[$k]=$v; done < <(python3 "$top/bench/idle_stats.py" popgate \
    "$w/log" "$w/dovecot.log" "$tStart" "${users[@]:0:n}")
  win=$(awk -v a="$w0" -v b="$w1" 'BEGIN{printf "%.1f", b - a}')
  cpu=$(awk -v t=$((p1 - p0)) -v hz="$hz" -v w="$win" 'BEGIN{printf "%.2f", 100 * t / hz / w}')
  perPoll=$(awk -v t=$((p1 - p0)) -v hz="$hz" -v n="$windowLogins" 'BEGIN{printf "%.3f", n ? 1000 * t / hz / n : 0}')
  line="$driver,${MA_WORKERS:-8},$n,$interval,$win,$cpu,$perPoll,$hwm,$priv,$anon,${st[polls]},$windowLogins,${st[late_max_ms]},${st[late_p99_ms]},${st[late_over_2s]},${st[failed_logins]},${st[poll_errors]},${st[accounts_polled]},${threads# },$rev,$load0,$load1"
  echo "$line" >> "$out"
  echo "$line"
  [ "${MA_KEEP:-0}" = 1 ] || rm -rf "$w"
done
