#!/bin/bash
# busy_profile.sh [BUILD_DIR] [OUT_DIR] - what one 4 KB message costs popgated on the busy
# path (issue Perf, goal 6), in instructions: callgrind over `popgated --once` fetching N1 and
# then N2 messages from a private Dovecot into the counting sink (SQLite, the demo's filter);
# per message = (Ir(N2) - Ir(N1)) / (N2 - N1), so start-up cancels out and the machine's load
# does not matter (no bench lock needed). Also strace -c -f of an N2 run. As root.
#   BUILD_DIR [build-bench] (popgated, popgatectl, smtp_sink built)  OUT_DIR [bench/results/tmp/busy]
#   N1 [100] N2 [300]; per-function figures: callgrind_annotate --inclusive=yes OUT_DIR/cg.N
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build-bench}; outd=${2:-$top/bench/results/tmp/busy}; N1=${N1:-100}; N2=${N2:-300}
mkdir -p $outd && chmod 777 $outd # popgated leaves root for popgate: callgrind writes as that user
state=$(mktemp -d /tmp/popgate-busy-profile.XXXXXX); chmod 755 $state
cleanup() { [ -n "${sp:-}" ] && kill $sp 2>/dev/null; $top/scripts/servers/dovecot.sh stop $state/dovecot >/dev/null 2>&1 || true; rm -rf $state; }
trap cleanup EXIT
$top/scripts/servers/dovecot.sh start $state/dovecot >/dev/null
. $state/dovecot/env
$build/bench/smtp_sink 0 > $state/sink.out 2>&1 & sp=$!
for _ in $(seq 50); do grep -q '^port ' $state/sink.out && break; sleep 0.1; done
sport=$(sed -n 's/^port //p' $state/sink.out)
u=$POPGATE_TEST_DOVECOT_USER; md=$POPGATE_TEST_DOVECOT_MAILDIR
one() { # N TOOLPREFIX...
  local n=$1; shift
  local w=$state/w; rm -rf $w; mkdir -p $w
  find $md/new $md/cur $md/tmp -type f -delete
  python3 $top/bench/fill.py $md $n 4096 "p$n-$RANDOM" >/dev/null
  cat > $w/popgate.conf <<CONF
database.driver = sqlite
database.path = $w/popgate.db
secret_key_file = $w/secret.key
header_key_file = $w/header.key
accounts_dir = $w/accounts.d
spool_dir = $w/spool
debug_log_dir = $w/debug
reinject.port = $sport
workers = 1
CONF
  local ctl="$build/popgatectl/popgatectl --config=$w/popgate.conf"
  $ctl db migrate >/dev/null
  echo "$POPGATE_TEST_DOVECOT_PASSWORD" | $ctl account add $u --server=127.0.0.1 --port=$POPGATE_TEST_DOVECOT_PORT --user=$u --security=none --plaintext-auth=yes --mailbox=bench@popgate.test --password-stdin >/dev/null 2>&1
  $ctl filter add inbound --default=yes >/dev/null
  $ctl filter address add spam --type=deny --domains=spam.example >/dev/null
  $ctl filter attach inbound spam >/dev/null
  chown -R popgate:popgate $w
  "$@" $build/plugin/popgated/popgated --config=$w/popgate.conf --once --log=stderr > $w/log 2>&1 || { echo "rc $?"; tail -5 $w/log; }
  left=$(find $md/new $md/cur -type f | wc -l); [ $left = 0 ] || { echo "left $left"; tail $w/log; exit 1; }
}
for n in $N1 $N2; do
  rm -f $outd/cg.$n; : > $outd/cg.$n && chown popgate $outd/cg.$n
  one $n valgrind --tool=callgrind --vgdb=no --callgrind-out-file=$outd/cg.$n
done
one $N2 strace -f -c -o $outd/strace.$N2
i1=$(grep -m1 '^summary:\|^totals:' $outd/cg.$N1 | awk '{print $2}'); i2=$(grep -m1 '^summary:\|^totals:' $outd/cg.$N2 | awk '{print $2}')
echo "Ir N1=$N1 $i1  N2=$N2 $i2  per message $(( (i2 - i1) / (N2 - N1) ))" | tee $outd/per-message.txt
