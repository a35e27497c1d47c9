#!/bin/bash
# milter_path.sh - what popgate-milter costs Postfix per message, on a unix socket and on
# a TCP socket, side by side with no milter, in one run. Postfix's load generator
# (smtp-source: one session, -d) sends COUNT x 4 KB to a private Postfix
# (scripts/servers/postfix.sh, virtual(8) delivery) whose smtpd_milters is switched
# between the cases with `postfix.sh set-milter`; runs alternate case by case.
#   bench/milter_path.sh        (as root)
# Environment: BENCH_N [500]  BENCH_RUNS [3]  BENCH_SESSIONS [1] (smtp-source -s)
#   POPGATE_BUILD_DIR [build-bench]  BENCH_BEFORE_BUILD [] another build tree: its
#   popgate-milter runs as the cases "unix-before" and "inet-before"
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${POPGATE_BUILD_DIR:-$top/build-bench}
before=${BENCH_BEFORE_BUILD:-}
N=${BENCH_N:-500}
RUNS=${BENCH_RUNS:-3}
SESSIONS=${BENCH_SESSIONS:-1}
die() { echo "milter_path.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (Postfix starts as root)"
for b in "$build" ${before:+"$before"}; do
  [ -x "$b/plugin/popgate-milter/popgate-milter" ] && [ -x "$b/popgatectl/popgatectl" ] ||
    die "$b: build popgate-milter and popgatectl first"
done

state=$(mktemp -d /tmp/popgate-milter-bench.XXXXXX)
chmod 755 "$state"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "$top/scripts/servers/postfix.sh" stop "$state/postfix" >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT

# The milter's world: a deny filter as the package's default inbound filter.
ctl="$build/popgatectl/popgatectl --config=$state/popgate.conf"
printf 'header_key_file = %s/header.key\ndatabase.path = %s/popgate.db\n' "$state" "$state" > "$state/popgate.conf"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$state/header.key"
chmod 600 "$state/header.key"
$ctl db migrate >/dev/null
$ctl filter address add spam --type=deny --domains=spam.example >/dev/null
$ctl filter add inbound --default=yes >/dev/null
$ctl filter attach inbound spam >/dev/null
# popgate-milter leaves root before it reads the key and opens the database, and
# makes its unix sockets in $state: all of it is its user's, as the package sets up.
chown popgate-milter: "$state" "$state"/header.key "$state"/popgate.db*

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A spec
start_milter() { # start_milter CASE BUILD unix|inet
  local name=$1 b=$2 kind=$3 sock
  if [ "$kind" = unix ]; then
    sock=unix:$state/$name.sock; spec[$name]=$sock
  else
    local port; port=$(free_port)
    sock=inet:$port@127.0.0.1; spec[$name]=inet:127.0.0.1:$port
  fi
  "$b/plugin/popgate-milter/popgate-milter" --config="$state/popgate.conf" --socket="$sock" \
    --log=stderr --foreground > "$state/$name.log" 2>&1 &
  pids+=($!)
  disown $!
}
cases=(none)
start_milter unix "$build" unix; start_milter inet "$build" inet; cases+=(unix inet)
if [ -n "$before" ]; then
  start_milter unix-before "$before" unix; start_milter inet-before "$before" inet
  cases+=(unix-before inet-before)
fi
sleep 2
chmod 777 "$state"/*.sock
for c in "${cases[@]}"; do
  [ "$c" = none ] || grep -q starting "$state/$c.log" || die "milter $c did not start: $(cat "$state/$c.log")"
done

POPGATE_TEST_POSTFIX_VIRTUAL_USERS=bench "$top/scripts/servers/postfix.sh" start "$state/postfix" >/dev/null
. "$state/postfix/env"

echo "popgate-milter in Postfix's path: $N x 4 KB, smtp-source -s $SESSIONS -d, $RUNS runs, $(nproc) cores, $(date -u +%FT%TZ)"
declare -A rates
for r in $(seq "$RUNS"); do
  for c in "${cases[@]}"; do
    s=""; [ "$c" = none ] || s=${spec[$c]}
    "$top/scripts/servers/postfix.sh" set-milter "$state/postfix" $s >/dev/null
    start=$(date +%s.%N)
    /usr/sbin/smtp-source -d -s "$SESSIONS" -m "$N" -l 4096 -f a@ok.example -t bench@popgate.test \
      "127.0.0.1:$POPGATE_TEST_POSTFIX_SMTP_PORT" || die "smtp-source failed in case $c"
    end=$(date +%s.%N)
    rates[$c]+=" $(python3 -c "print(round($N/($end-$start)))")"
  done
done
printf '%-12s %-28s %s\n' case "msgs/s per run" "median"
for c in "${cases[@]}"; do
  med=$(tr ' ' '\n' <<<"${rates[$c]}" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '%-12s %-28s %s\n' "$c" "${rates[$c]# }" "$med"
done
