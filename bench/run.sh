#!/bin/bash
# run.sh - popgated side by side with fetchmail, getmail6, mpop and a bare
# reference mover, on the same private Dovecot (POP3) and the same receivers (a
# counting SMTP sink, a private Postfix), all on 127.0.0.1. One command:
#   bench/run.sh                      every case, 3 runs each, results in bench/results/
# Environment (defaults in brackets):
#   BENCH_CASES [1 2 3 4 5 6 7 8] 1: 1 account x N x 4 KB -> sink; 2: the same -> Postfix;
#                             3: 4 accounts x N/4 -> Postfix; 4: BIG_N x BIG_SIZE -> sink;
#                             5: IDLE_ACCOUNTS empty mailboxes polled every IDLE_INTERVAL s
#                                for IDLE_SECONDS (popgated and `fetchmail -d` as daemons);
#                             6: RTT_N x 4 KB -> sink, POP3 through a relay adding RTT_MS;
#                             7: the filter micro-benchmark
#                             8: SLOW_N x 4 KB -> sink, POP3 through small_writes_relay.py: no
#                                CAPA, every server line in its own write (popa3d, solid-pop3d)
#   BENCH_N [2000]  BENCH_SIZE [4096]  BENCH_BIG_N [20]  BENCH_BIG_SIZE [10485760]
#   BENCH_N1 BENCH_N2 BENCH_N3 [BENCH_N]  N for case 1, 2 or 3 alone (the peers take ~0.05 s a
#                             message: 2000 in cases 2 and 3 too would add half an hour)
#   BENCH_RTT_N [100]  BENCH_RTT_MS [50]  BENCH_SLOW_N [200]
#   BENCH_IDLE_ACCOUNTS [1000]  BENCH_IDLE_SECONDS [300]  BENCH_IDLE_INTERVAL [60]
#   BENCH_IDLE_WARMUP [5]     popgated's start-up left out of case 5's CPU figure (seconds)
#   BENCH_IDLE_RUNS [1]       runs per tool of case 5 (each takes IDLE_SECONDS)
#   BENCH_IDLE_DRIVER [sqlite] popgated's database in case 5 (postgresql: a private one)
#   BENCH_RUNS [3]            runs per tool and case, alternated A B C A B C
#   BENCH_MEM_MS [20]         cases 1-4, 6, 8: how often bench/privmem.py samples the tool's
#                             /proc/PID/smaps_rollup (private memory and file pages, peaks)
#   BENCH_MEM_SMAPS [0]       1: also keep the tool's /proc/PID/smaps at its private peak, in
#                             STATE/smaps/CASE-TOOL-rRUN (with BENCH_KEEP=1; read it with
#                             bench/privmem.py --by-mapping FILE)
#   BENCH_TOOLS [popgate fetchmail getmail6 mpop refclient smtp-source]
#                             smtp-source (Postfix's load generator, no POP3) runs in cases 2
#                             and 3 only, popgate and fetchmail in case 5 only
#   BENCH_MAX_LOAD [1.0] BENCH_LOAD_WAIT [0]   wait up to LOAD_WAIT s for the 1-minute load
#                             to drop below MAX_LOAD before the first run (0 = do not wait)
#   BENCH_OUT [bench/results]  BENCH_STATE [mktemp]  BENCH_KEEP [0: remove the state dir]
#   POPGATE_BUILD_DIR [build-bench]
#   BENCH_BEFORE_BUILD []     a build tree of another revision (popgated, popgatectl built):
#                             the tool popgate-before runs its binaries, so a change is
#                             measured before and after in one run (BENCH_TOOLS="popgate
#                             popgate-before ...")
#                             popgate-milter-unix, popgate-milter-inet (cases 2 and 3): popgate
#                             with popgate-milter in Postfix's path, as the package sets it up,
#                             on a unix socket or on inet:PORT@127.0.0.1 (goal 0 of issue Perf:
#                             compare with the tool popgate in the same run)
# Needs root: apt-get for missing peers, Dovecot and Postfix want root to start.
# Peers come from Debian only: fetchmail, getmail6, mpop, msmtp (never msmtp-mta).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${POPGATE_BUILD_DIR:-$top/build-bench}
out=${BENCH_OUT:-$top/bench/results}
cases=${BENCH_CASES:-1 2 3 4 5 6 7 8}
RTT_N=${BENCH_RTT_N:-100}
RTT_MS=${BENCH_RTT_MS:-50}
SLOW_N=${BENCH_SLOW_N:-200}
N=${BENCH_N:-2000}
N1=${BENCH_N1:-$N} N2=${BENCH_N2:-$N} N3=${BENCH_N3:-$N}
SIZE=${BENCH_SIZE:-4096}
BIG_N=${BENCH_BIG_N:-20}
BIG_SIZE=${BENCH_BIG_SIZE:-10485760}
RUNS=${BENCH_RUNS:-3}
MEM_MS=${BENCH_MEM_MS:-20}
IDLE_ACCOUNTS=${BENCH_IDLE_ACCOUNTS:-1000}
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-300}
IDLE_INTERVAL=${BENCH_IDLE_INTERVAL:-60}
IDLE_WARMUP=${BENCH_IDLE_WARMUP:-5}
IDLE_RUNS=${BENCH_IDLE_RUNS:-1}
IDLE_DRIVER=${BENCH_IDLE_DRIVER:-sqlite}
tools=${BENCH_TOOLS:-popgate fetchmail getmail6 mpop refclient smtp-source}
rcpt=bench@popgate.test
py=/usr/bin/python3 # Debian's, not a pyenv shim

die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (apt-get, Dovecot, Postfix)"
for v in IDLE_ACCOUNTS IDLE_SECONDS IDLE_INTERVAL IDLE_WARMUP IDLE_RUNS; do
  case ${!v} in ''|*[!0-9]*) die "BENCH_$v must be a whole number" ;; esac
done
# popgate refuses poll intervals under 10 s; the window must outlast the warm-up
[ "$IDLE_INTERVAL" -ge 10 ] || die "BENCH_IDLE_INTERVAL must be at least 10 (popgate's minimum)"
[ "$IDLE_SECONDS" -gt "$IDLE_WARMUP" ] || die "BENCH_IDLE_SECONDS must exceed BENCH_IDLE_WARMUP"

# --- peers and tools, from Debian -------------------------------------------
"$top/scripts/install-deps.sh"
"$top/scripts/users.sh" # popgated started as root runs as user popgate
want=(fetchmail getmail6 mpop msmtp gnuplot-nox time linux-perf)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "run.sh: installing ${missing[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then # no system fetchmail daemon started by postinst
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    rm_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -n "${rm_policy:-}" ] && rm -f /usr/sbin/policy-rc.d
fi

cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target popgatectl popgated popgate-milter filter_bench smtp_sink >/dev/null
# the tree as built (before this run's results make it dirty)
git_rev=$(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)
popgated=$build/plugin/popgated/popgated
popgatectl=$build/popgatectl/popgatectl

# --- servers -----------------------------------------------------------------
state=${BENCH_STATE:-$(mktemp -d /tmp/popgate-bench.XXXXXX)}
mkdir -p "$state" && state=$(cd "$state" && pwd) && chmod 755 "$state"
sink_pid="" relay_pid="" slow_pid="" idle_pid="" milter_pid=""
cleanup() {
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
  [ -n "$idle_pid" ] && kill "$idle_pid" 2>/dev/null || true # case 5's daemon, if interrupted
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
  [ -n "$slow_pid" ] && kill "$slow_pid" 2>/dev/null || true
  [ -n "$milter_pid" ] && kill -9 "$milter_pid" 2>/dev/null || true
  "$top/scripts/servers/postfix.sh" stop "$state/postfix" >/dev/null 2>&1 || true
  "$top/scripts/servers/dovecot.sh" stop "$state/dovecot" >/dev/null 2>&1 || true
  [ -f "$state/pg/env" ] && "$top/scripts/servers/postgresql.sh" stop "$state/pg" >/dev/null 2>&1 || true
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$state"
}
trap cleanup EXIT
# Extra POP3 users bench0001..: four for case 3, IDLE_ACCOUNTS for case 5.
extra_users=0
[[ " $cases " == *" 3 "* ]] && extra_users=4
[[ " $cases " == *" 5 "* ]] && [ "$IDLE_ACCOUNTS" -gt "$extra_users" ] && extra_users=$IDLE_ACCOUNTS
POPGATE_TEST_DOVECOT_EXTRA_USERS=$extra_users \
  "$top/scripts/servers/dovecot.sh" start "$state/dovecot" >/dev/null
# bench@ is delivered by Postfix's own virtual(8), not the pipe script that forks bash
# per message (the test suites' default): a real mail host's cost, not a fork that
# competes for the two CPUs with the tool measured.
POPGATE_TEST_POSTFIX_VIRTUAL_USERS=${rcpt%@*} \
  "$top/scripts/servers/postfix.sh" start "$state/postfix" >/dev/null
. "$state/dovecot/env"
. "$state/postfix/env"
"$build/bench/smtp_sink" 0 > "$state/sink.out" 2>&1 &
sink_pid=$!
for _ in $(seq 50); do grep -q '^port ' "$state/sink.out" && break; sleep 0.1; done
sink_port=$(sed -n 's/^port //p' "$state/sink.out")
[ -n "$sink_port" ] || die "smtp_sink did not start: $(cat "$state/sink.out")"
pop_port=$POPGATE_TEST_DOVECOT_PORT
relay_port=""
if [[ " $cases " == *" 6 "* ]]; then # case 6: POP3 RTT_MS away (no tc netem needed)
  "$py" "$top/bench/delay_relay.py" 0 "$pop_port" $((RTT_MS / 2)) > "$state/relay.out" 2>&1 &
  relay_pid=$!
  for _ in $(seq 50); do grep -q '^port ' "$state/relay.out" && break; sleep 0.1; done
  relay_port=$(sed -n 's/^port //p' "$state/relay.out")
  [ -n "$relay_port" ] || die "delay_relay.py did not start: $(cat "$state/relay.out")"
fi
slow_port=""
if [[ " $cases " == *" 8 "* ]]; then # case 8: a server that writes line by line, no CAPA
  "$py" "$top/bench/small_writes_relay.py" 0 "$pop_port" > "$state/slow.out" 2>&1 &
  slow_pid=$!
  for _ in $(seq 50); do grep -q '^port ' "$state/slow.out" && break; sleep 0.1; done
  slow_port=$(sed -n 's/^port //p' "$state/slow.out")
  [ -n "$slow_port" ] || die "small_writes_relay.py did not start: $(cat "$state/slow.out")"
fi
password=$POPGATE_TEST_DOVECOT_PASSWORD
declare -A maildir=([$POPGATE_TEST_DOVECOT_USER]=$POPGATE_TEST_DOVECOT_MAILDIR
                    [$POPGATE_TEST_DOVECOT_USER2]=$POPGATE_TEST_DOVECOT_MAILDIR2)
extra=() # bench0001 ... in order
while read -r u d; do maildir[$u]=$d; extra+=("$u"); done < "$POPGATE_TEST_DOVECOT_EXTRA_USERS_FILE"
postfix_box=$POPGATE_TEST_POSTFIX_MAILDIR/${rcpt%@*}

# sink_cmd VERB - one control command to the sink, prints its reply.
sink_cmd() {
  local greet reply
  exec 3<>"/dev/tcp/127.0.0.1/$sink_port"
  read -r -u 3 greet
  printf '%s\r\nQUIT\r\n' "$1" >&3
  read -r -u 3 reply
  exec 3<&-
  echo "${reply%$'\r'}"
}

# --- one run -------------------------------------------------------------------
# Each tool's configuration for USERS (space separated) and a target port, in $w.
setup_popgate() { # DIR PORT USERS...
  local w=$1 port=$2; shift 2
  rm -rf "$w" && mkdir -p "$w"
  cat > "$w/popgate.conf" <<CONF
database.driver = sqlite
database.path = $w/popgate.db
secret_key_file = $w/secret.key
header_key_file = $w/header.key
accounts_dir = $w/accounts.d
spool_dir = $w/spool
debug_log_dir = $w/debug
reinject.port = $port
workers = $#
CONF
  local ctl=("$popgatectl" --config="$w/popgate.conf")
  "${ctl[@]}" db migrate >/dev/null
  local u
  for u in "$@"; do
    echo "$password" | "${ctl[@]}" account add "$u" --server=127.0.0.1 --port="$pop_port" --user="$u" \
      --security=none --plaintext-auth=yes --mailbox="$rcpt" --password-stdin >/dev/null 2>&1
  done
  # a filter as a real installation has one (the demo's)
  "${ctl[@]}" filter add inbound --default=yes >/dev/null
  "${ctl[@]}" filter address add spam --type=deny --domains=spam.example >/dev/null
  "${ctl[@]}" filter attach inbound spam >/dev/null
  # popgated, started as root, runs as popgate: what popgatectl made as root is its
  chown -R popgate:popgate "$w"
  cmd=("$popgated" --config="$w/popgate.conf" --once --log=stderr)
}
# setup_popgate_before - the same, with the binaries of BENCH_BEFORE_BUILD.
setup_popgate_before() {
  [ -n "${BENCH_BEFORE_BUILD:-}" ] || die "the tool popgate-before needs BENCH_BEFORE_BUILD"
  local popgated=$BENCH_BEFORE_BUILD/plugin/popgated/popgated
  local popgatectl=$BENCH_BEFORE_BUILD/popgatectl/popgatectl
  setup_popgate "$@"
}
# setup_popgate_milter_unix, _inet - popgate as above, and popgate-milter on its
# database and header key in Postfix's smtpd_milters (both listeners, the reinjection
# one with milter_macro_daemon_name=POPGATE as in docs/mta-integration.md), with the
# package's Postfix settings (milter_protocol = 6, milter_default_action = tempfail):
# every copy popgated sends passes the milter's duplicate backstop (ledger read,
# milter_seen write) as on a real host. The milter runs as user popgate here (the
# package's popgate-milter shares the files through group popgate-db); stopped by
# teardown_popgate_milter after the run.
setup_popgate_milter_unix() { setup_popgate "$@"; start_bench_milter "$1" unix; }
setup_popgate_milter_inet() { setup_popgate "$@"; start_bench_milter "$1" inet; }
start_bench_milter() { # DIR unix|inet
  local w=$1 sock spec port
  if [ "$2" = unix ]; then
    sock=unix:$w/milter.sock spec=$sock
  else
    port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    sock=inet:$port@127.0.0.1 spec=inet:127.0.0.1:$port
  fi
  # popgated would make the header key at its start; the milter starts first and reads it
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$w/header.key")
  chown popgate:popgate "$w/header.key"
  "$build/plugin/popgate-milter/popgate-milter" --config="$w/popgate.conf" --socket="$sock" \
    --user=popgate --log=stderr --foreground > "$w/milter.log" 2>&1 &
  milter_pid=$!
  for _ in $(seq 100); do grep -q starting "$w/milter.log" && break; sleep 0.05; done
  grep -q starting "$w/milter.log" || die "popgate-milter did not start: $(cat "$w/milter.log")"
  [ "$2" = unix ] && chmod 777 "$w/milter.sock" # Postfix's smtpd: not in group popgate here
  "$top/scripts/servers/postfix.sh" set-milter "$state/postfix" "$spec" >/dev/null
}
teardown_popgate_milter_unix() { teardown_popgate_milter; }
teardown_popgate_milter_inet() { teardown_popgate_milter; }
teardown_popgate_milter() {
  "$top/scripts/servers/postfix.sh" set-milter "$state/postfix" >/dev/null
  kill -9 "$milter_pid" 2>/dev/null || true
  wait "$milter_pid" 2>/dev/null || true
  milter_pid=""
}
setup_fetchmail() {
  local w=$1 port=$2; shift 2
  rm -rf "$w" && mkdir -p "$w"
  # sslproto '': fetchmail 6.4 upgrades to TLS by itself when the server offers STLS
  # (Dovecot does), silently under -s; every tool runs plain POP3 here.
  {
    echo "set no bouncemail"
    echo "set no syslog"
    local u
    for u in "$@"; do
      echo "poll 127.0.0.1 port $pop_port protocol pop3 user \"$u\" password \"$password\" is \"$rcpt\" here" \
        "smtphost 127.0.0.1/$port smtpname \"$rcpt\" fetchall nokeep no rewrite no sslcertck sslproto ''"
    done
  } > "$w/fetchmailrc"
  chmod 600 "$w/fetchmailrc"
  cmd=(env HOME="$w" FETCHMAILHOME="$w" fetchmail -s -N -f "$w/fetchmailrc" --idfile "$w/ids" --pidfile "$w/pid")
}
msmtp_args() { # PORT
  echo "/usr/bin/msmtp --file=$w/msmtprc --host=127.0.0.1 --port=$1 --auth=off --tls=off --from=$rcpt -- $rcpt"
}
setup_getmail6() {
  local w=$1 port=$2; shift 2
  rm -rf "$w" && mkdir -p "$w" && : > "$w/msmtprc" && chmod 600 "$w/msmtprc"
  cmd=(getmail --getmaildir="$w")
  local u
  for u in "$@"; do
    cat > "$w/$u.rc" <<EOF
[retriever]
type = SimplePOP3Retriever
server = 127.0.0.1
port = $pop_port
username = $u
password = $password

[destination]
type = MDA_external
path = /usr/bin/msmtp
allow_root_commands = true
arguments = ("--file=$w/msmtprc", "--host=127.0.0.1", "--port=$port", "--auth=off", "--tls=off", "--from=$rcpt", "--", "$rcpt")

[options]
read_all = true
delete = true
verbose = 0
message_log_syslog = false
EOF
    cmd+=(--rcfile="$u.rc")
  done
}
setup_mpop() {
  local w=$1 port=$2; shift 2
  rm -rf "$w" && mkdir -p "$w" && : > "$w/msmtprc" && chmod 600 "$w/msmtprc"
  {
    local u
    for u in "$@"; do
      printf 'account %s\nhost 127.0.0.1\nport %s\nuser %s\npassword %s\ntls off\nauth user\n' \
        "$u" "$pop_port" "$u" "$password"
      printf 'keep off\nonly_new off\nuidls_file %s/%s.uidls\ndelivery mda "%s"\n\n' "$w" "$u" "$(msmtp_args "$port")"
    done
  } > "$w/mpoprc"
  chmod 600 "$w/mpoprc"
  cmd=(mpop --file="$w/mpoprc" --quiet --all-accounts)
}
# Postfix's own load generator, straight to the reinjection listener: the MTA's ceiling
# on this machine (no POP3). One session per account (-s), all messages of a session
# over one connection (-d) like the fetchers; COUNT x SIZE from run_one's total and size.
setup_smtp_source() {
  local w=$1 port=$2; shift 2
  rm -rf "$w" && mkdir -p "$w"
  cmd=(/usr/sbin/smtp-source -d -s "$#" -m "$total" -l "$size" -M localhost
       -f "$rcpt" -t "$rcpt" "127.0.0.1:$port")
}
setup_refclient() {
  local w=$1 port=$2; shift 2
  rm -rf "$w" && mkdir -p "$w"
  cmd=("$py" "$top/bench/refclient.py" 127.0.0.1 "$pop_port" 127.0.0.1 "$port" "$rcpt")
  local u
  for u in "$@"; do cmd+=("$u:$password"); done
}

# mailbox_left USERS... - messages still on the POP3 server.
mailbox_left() {
  local u n=0
  for u in "$@"; do n=$((n + $(find "${maildir[$u]}/new" "${maildir[$u]}/cur" -type f | wc -l))); done
  echo "$n"
}

csv=$state/results.csv
echo "case,tool,run,accounts,messages,octets,wall_s,user_s,sys_s,maxrss_kb,ok,problem,load1,private_kb,anon_kb,file_kb" > "$csv"

# run_one CASE TOOL RUN TARGET COUNT SIZE USERS...
run_one() {
  local case=$1 tool=$2 run=$3 target=$4 count=$5 size=$6; shift 6
  local users=("$@") u octets=0 total=$(( count * $# )) w=$state/work/$tool port
  [ "$target" = sink ] && port=$sink_port || port=$POPGATE_TEST_POSTFIX_REINJECT_PORT
  if [ "$tool" = smtp-source ]; then
    octets=$((total * size)) # its payload (-l); it adds a few header lines
  else
    for u in "${users[@]}"; do
      find "${maildir[$u]}/new" "${maildir[$u]}/cur" "${maildir[$u]}/tmp" -type f -delete
      octets=$((octets + $("$py" "$top/bench/fill.py" "${maildir[$u]}" "$count" "$size" "c$case-$tool-r$run-$u")))
    done
  fi
  rm -rf "$postfix_box"
  sink_cmd XRESET >/dev/null
  "setup_${tool//-/_}" "$w" "$port" "${users[@]}"
  sync
  local load1 rc=0
  load1=$(cut -d' ' -f1 /proc/loadavg)
  # privmem.py: the parent of /usr/bin/time (its CPU is not counted), samples the tool's
  # smaps_rollup every MEM_MS ms; peaks in $w/mem (its header says what each is)
  local smaps=""
  [ "${BENCH_MEM_SMAPS:-0}" = 1 ] && mkdir -p "$state/smaps" && smaps=$state/smaps/c$case-$tool-r$run
  PRIVMEM_SMAPS=$smaps timeout 1800 "$py" "$top/bench/privmem.py" "$w/mem" "$MEM_MS" \
    /usr/bin/time -f '%e %U %S %M' -o "$w/time" "${cmd[@]}" > "$w/log" 2>&1 || rc=$?
  local times private anon file
  times=$(tail -n 1 "$w/time")
  private=$(sed -n 's/.*private_kb=\([0-9]*\).*/\1/p' "$w/mem" 2>/dev/null)
  anon=$(sed -n 's/.*anon_kb=\([0-9]*\).*/\1/p' "$w/mem" 2>/dev/null)
  file=$(sed -n 's/.*file_kb=\([0-9]*\).*/\1/p' "$w/mem" 2>/dev/null)
  # correctness: the receiver got exactly the messages, each once; the mailbox is empty
  local got distinct problem="" left
  if [ "$target" = sink ]; then
    local stat
    stat=$(sink_cmd XSTAT)
    got=$(sed -n 's/.*messages=\([0-9]*\).*/\1/p' <<<"$stat")
    distinct=$(sed -n 's/.*distinct=\([0-9]*\).*/\1/p' <<<"$stat")
  else
    # Postfix delivers after accepting: wait for the queue to drain into the maildir
    local last=-1 stable=0
    for _ in $(seq 600); do
      got=$(find "$postfix_box/new" -type f 2>/dev/null | wc -l)
      [ "$got" -ge "$total" ] && [ "$(postqueue -c "$POPGATE_TEST_POSTFIX_CONFIG_DIR" -p | tail -n 1)" = "Mail queue is empty" ] && break
      if [ "$got" = "$last" ]; then stable=$((stable + 1)); [ $stable -ge 100 ] && break; else stable=0; fi
      last=$got
      sleep 0.2
    done
    ! declare -F "teardown_${tool//-/_}" >/dev/null || "teardown_${tool//-/_}" # after delivery
    distinct=$( (find "$postfix_box/new" -type f -print0 2>/dev/null | xargs -0r grep -hi -m1 '^Message-ID:' || true) | sort -u | wc -l)
  fi
  left=$(mailbox_left "${users[@]}")
  # smtp-source: no POP3 mailbox, and its Message-IDs are not ours: the count only
  [ "$tool" = smtp-source ] && distinct=$total left=0
  [ "$rc" = 0 ] || problem="exit $rc;"
  [ "$got" = "$total" ] || problem="$problem received $got of $total;"
  [ "$distinct" = "$total" ] || problem="$problem $distinct distinct;"
  [ "$left" = 0 ] || problem="$problem $left left on server;"
  local ok=1
  [ -z "$problem" ] || ok=0
  read -r wall usr sys rss <<<"$times"
  echo "$case,$tool,$run,$#,$total,$octets,$wall,$usr,$sys,$rss,$ok,${problem% },$load1,$private,$anon,$file" >> "$csv"
  printf 'case %s run %s %-11s %5s msgs %8.2f s  %7.1f msgs/s  cpu %6.2f s  rss %6d KB  private %6s KB  %s\n' \
    "$case" "$run" "$tool" "$total" "$wall" "$(awk -v n="$total" -v t="$wall" 'BEGIN{print (t>0)?n/t:0}')" \
    "$(awk -v u="$usr" -v s="$sys" 'BEGIN{print u+s}')" "$rss" "${private:-?}" "${problem:-ok}"
  if [ "$ok" = 0 ]; then
    mkdir -p "$state/failed" && cp "$w/log" "$state/failed/c$case-$tool-r$run.log" 2>/dev/null || true
    tail -n 5 "$w/log" | sed 's/^/    /'
  fi
}

# --- case 5: idle accounts, the tools as daemons -------------------------------------
idle_csv=$state/idle.csv
echo "case,tool,run,accounts,interval_s,seconds,warmup_s,window_s,cpu_s,cpu_pct,cpu_all_pct,peak_rss_kb,polls,expected_polls,logins,accounts_polled,failed_logins,poll_errors,late_max_ms,late_p99_ms,late_over_2s,max_gap_s,first_login_s,ok,problem,load1" > "$idle_csv"
clk_tck=$(getconf CLK_TCK)

# cpu_ticks PID - user + system time of the process, all its threads, in clock ticks
# (/proc/PID/stat fields 14 and 15; field 2 may hold spaces, so count after its ')').
cpu_ticks() {
  local rest
  rest=$(sed 's/.*) //' "/proc/$1/stat")
  awk '{print $12 + $13}' <<<"$rest"
}

# Daemon configurations for case 5, in $w; the command in cmd. Mail would go to the sink.
setup_idle_popgate() { # DIR USERS...
  local w=$1; shift
  rm -rf "$w" && mkdir -p "$w/accounts.d"
  # workers: popgate's default (8), as an operator would leave it
  local db="database.driver = sqlite
database.path = $w/popgate.db"
  if [ "$IDLE_DRIVER" = postgresql ]; then # a private PostgreSQL, started once, emptied per run
    if [ ! -f "$state/pg/env" ]; then
      "$top/scripts/servers/postgresql.sh" start "$state/pg" >/dev/null
    fi
    . "$state/pg/env"
    export POPGATE_MODULE_DIR=$build/core # this build's PostgreSQL driver
    psql -q "$POPGATE_TEST_PG_CONNECT dbname=postgres" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' >/dev/null
    db="database.driver = postgresql
database.connect = $POPGATE_TEST_PG_CONNECT"
  fi
  cat > "$w/popgate.conf" <<CONF
$db
secret_key_file = $w/secret.key
header_key_file = $w/header.key
accounts_dir = $w/accounts.d
secrets_dir = $w/secrets
spool_dir = $w/spool
debug_log_dir = $w/debug
reinject.port = $sink_port
CONF
  # Provisioned accounts (accounts.d, one file each, the password from secret_file) and
  # one `config apply`: a thousand `account add` would each start popgatectl.
  mkdir -p "$w/secrets"
  printf '%s\n' "$password" > "$w/secrets/pop3.secret" && chmod 600 "$w/secrets/pop3.secret"
  local u
  for u in "$@"; do
    printf '%s\n' "server = 127.0.0.1" "port = $pop_port" "user = $u" "security = none" \
      "plaintext-auth = yes" "mailbox = $rcpt" "poll-interval = ${IDLE_INTERVAL}s" \
      "secret_file = $w/secrets/pop3.secret" > "$w/accounts.d/$u.conf"
  done
  local ctl=("$popgatectl" --config="$w/popgate.conf")
  "${ctl[@]}" db migrate >/dev/null
  "${ctl[@]}" config apply >/dev/null
  "${ctl[@]}" filter add inbound --default=yes >/dev/null
  "${ctl[@]}" filter address add spam --type=deny --domains=spam.example >/dev/null
  "${ctl[@]}" filter attach inbound spam >/dev/null
  chown -R popgate:popgate "$w" # popgated runs as popgate (see setup_popgate)
  # in the foreground (it does not fork; --daemon is Poco's and would), log on stderr
  cmd=("$popgated" --config="$w/popgate.conf" --log=stderr)
}
setup_idle_fetchmail() { # DIR USERS...
  local w=$1; shift
  setup_fetchmail "$w" "$sink_port" "$@"
  # -d: poll every account, sleep IDLE_INTERVAL, again; -N: stay in the foreground
  cmd=(env HOME="$w" FETCHMAILHOME="$w" fetchmail -d "$IDLE_INTERVAL" -N -f "$w/fetchmailrc"
       --idfile "$w/ids" --pidfile "$w/pid")
}

# run_idle TOOL RUN USERS... - the daemon over the USERS' empty mailboxes for IDLE_SECONDS.
# CPU % of one core = (utime + stime) delta / wall over the window from IDLE_WARMUP s after
# the start (popgated: opening the database and loading the accounts, ~0.1-0.5 s; its first
# polls are spread over 8-10 s after start, so the first round is inside the window) to
# just before SIGTERM. fetchmail has no start-up to leave out and polls at once: its window
# starts at 0. Peak RSS = VmHWM just before SIGTERM.
run_idle() {
  local tool=$1 run=$2; shift 2
  local n=$# w=$state/work/idle-$tool u
  # empty mailboxes (case 3 used the first four)
  for u in "$@"; do printf '%s\0' "${maildir[$u]}"; done |
    xargs -0 sh -c 'find "$@" -type f -delete' find-files
  "setup_idle_$tool" "$w" "$@"
  local dlog=$state/dovecot/main/dovecot.log from
  from=$(stat -c %s "$dlog")
  local warm=$IDLE_WARMUP load1 t_start t0 t1 ticks0=0 ticks1 hwm pid rc=0 problem=""
  [ "$tool" = fetchmail ] && warm=0
  load1=$(cut -d' ' -f1 /proc/loadavg)
  sync
  t_start=$(date +%s.%N)
  "${cmd[@]}" > "$w/log" 2>&1 &
  pid=$!
  idle_pid=$pid
  sleep "$warm"
  if kill -0 "$pid" 2>/dev/null; then
    [ "$warm" = 0 ] || ticks0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    [ "$warm" = 0 ] && t0=$t_start
    sleep "$(awk -v s="$t_start" -v d="$IDLE_SECONDS" -v now="$(date +%s.%N)" 'BEGIN{r = s + d - now; print (r > 0) ? r : 0}')"
  fi
  if kill -0 "$pid" 2>/dev/null; then
    ticks1=$(cpu_ticks "$pid")
    t1=$(date +%s.%N)
    hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status")
    kill -TERM "$pid"
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      problem="still running 30 s after SIGTERM;"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" || rc=$?
  else
    wait "$pid" || rc=$?
    problem="exited by itself (exit $rc) before SIGTERM;"
    ticks1=0 t1=$(date +%s.%N) hwm=0 t0=${t0:-$t_start}
  fi
  idle_pid=""
  # popgated exits 0 after SIGTERM (1 if a poll failed); fetchmail exits 1 and logs
  # "terminated with signal 15", which is its normal way to stop
  if [ "$tool" = fetchmail ] && [ "$rc" = 1 ] && grep -q 'terminated with signal 15' "$w/log"; then rc=0; fi
  [ "$rc" = 0 ] || problem="$problem exit $rc after SIGTERM;"
  tail -c +$((from + 1)) "$dlog" > "$w/dovecot.log"
  local stats k v
  stats=$("$py" "$top/bench/idle_stats.py" "$tool" "$w/log" "$w/dovecot.log" "$t_start" "$@")
  local -A st=()
  while IFS== read -r k v; do st[$k]=$v; done <<<"$stats"
  local window cpu_s cpu_pct cpu_all expected
  window=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}')
  cpu_s=$(awk -v a="$ticks0" -v b="$ticks1" -v hz="$clk_tck" 'BEGIN{printf "%.2f", (b - a) / hz}')
  cpu_pct=$(awk -v c="$cpu_s" -v w="$window" 'BEGIN{printf "%.3f", (w > 0) ? 100 * c / w : 0}')
  cpu_all=$(awk -v t="$ticks1" -v hz="$clk_tck" -v a="$t_start" -v b="$t1" 'BEGIN{printf "%.3f", (b > a) ? 100 * t / hz / (b - a) : 0}')
  expected=$(( n * (IDLE_SECONDS / IDLE_INTERVAL) ))
  [ "${st[accounts_polled]}" = "$n" ] || problem="$problem $((n - st[accounts_polled])) accounts never polled;"
  [ "${st[failed_logins]}" = 0 ] || problem="$problem ${st[failed_logins]} failed logins (Dovecot);"
  [ "${st[poll_errors]}" = 0 ] || problem="$problem ${st[poll_errors]} poll errors ($tool log);"
  # popgate promises a poll per interval and account: at least 90 % of that, roughly
  # (jitter +-10 %, first polls 8-10 s after start). fetchmail -d sleeps the interval
  # after each round, so it polls less often by design: reported, not judged.
  if [ "$tool" = popgate ] && [ $(( ${st[logins]} * 10 )) -lt $(( expected * 9 )) ]; then
    problem="$problem ${st[logins]} logins, expected about $expected;"
  fi
  local ok=1
  [ -z "$problem" ] || ok=0
  echo "5,$tool,$run,$n,$IDLE_INTERVAL,$IDLE_SECONDS,$warm,$window,$cpu_s,$cpu_pct,$cpu_all,$hwm,${st[polls]},$expected,${st[logins]},${st[accounts_polled]},${st[failed_logins]},${st[poll_errors]},${st[late_max_ms]},${st[late_p99_ms]},${st[late_over_2s]},${st[max_gap_s]},${st[first_login_s]},$ok,${problem% },$load1" >> "$idle_csv"
  printf 'case 5 run %s %-9s %5s accounts %6.1f s  cpu %5.2f %% of a core (%s s)  rss %6s KB  logins %s/%s  late max %s ms  %s\n' \
    "$run" "$tool" "$n" "$window" "$cpu_pct" "$cpu_s" "$hwm" "${st[logins]}" "$expected" \
    "${st[late_max_ms]}" "${problem:-ok}"
  if [ "$ok" = 0 ]; then
    mkdir -p "$state/failed" && cp "$w/log" "$state/failed/c5-$tool-r$run.log" 2>/dev/null || true
    tail -n 5 "$w/log" | sed 's/^/    /'
  fi
}

# --- the runs ------------------------------------------------------------------
wait_load() {
  local limit=${BENCH_MAX_LOAD:-1.0} waited=0 max=${BENCH_LOAD_WAIT:-0}
  while [ "$waited" -lt "$max" ] && awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v m="$limit" 'BEGIN{exit !(l >= m)}'; do
    sleep 10; waited=$((waited + 10))
  done
  echo "run.sh: load average $(cut -d' ' -f1-3 /proc/loadavg) (waited ${waited}s for < $limit)"
}
wait_load
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
u1=$POPGATE_TEST_DOVECOT_USER
for c in $cases; do
  runs=$RUNS
  [ "$c" = 5 ] && runs=$IDLE_RUNS
  for r in $(seq "$runs"); do
    for t in $tools; do
      # smtp-source is a ceiling for the Postfix cases, not a POP3 client; case 5
      # needs a daemon mode (getmail6 and mpop have none, refclient is one pass)
      case $c:$t in
        2:smtp-source|3:smtp-source|[23]:popgate-milter-*) ;;
        *:smtp-source|*:popgate-milter-*) continue ;;
        5:popgate|5:fetchmail) ;;
        5:*) continue ;;
      esac
      case $c in
        1) run_one 1 "$t" "$r" sink "$N1" "$SIZE" "$u1" ;;
        2) run_one 2 "$t" "$r" postfix "$N2" "$SIZE" "$u1" ;;
        3) run_one 3 "$t" "$r" postfix $((N3 / 4)) "$SIZE" "${extra[@]:0:4}" ;;
        4) run_one 4 "$t" "$r" sink "$BIG_N" "$BIG_SIZE" "$u1" ;;
        5) run_idle "$t" "$r" "${extra[@]:0:IDLE_ACCOUNTS}" ;;
        6) pop_port=$relay_port
           run_one 6 "$t" "$r" sink "$RTT_N" "$SIZE" "$u1"
           pop_port=$POPGATE_TEST_DOVECOT_PORT ;;
        8) pop_port=$slow_port
           run_one 8 "$t" "$r" sink "$SLOW_N" "$SIZE" "$u1"
           pop_port=$POPGATE_TEST_DOVECOT_PORT ;;
        7) [ "$t" = popgate ] && "$build/bench/filter_bench" | tee -a "$state/filter_bench.txt" ;;
        *) die "unknown case $c" ;;
      esac
    done
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report --------------------------------------------------------------------
mkdir -p "$out"
cp "$csv" "$out/results.csv"
if [ "$(wc -l < "$idle_csv")" -gt 1 ]; then cp "$idle_csv" "$out/idle.csv"; else rm -f "$out/idle.csv"; fi
[ -f "$state/filter_bench.txt" ] && cp "$state/filter_bench.txt" "$out/filter_bench.txt"
{
  echo "date=$started"
  echo "machine=$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(free -m | awk '/^Mem:/{print $2}') MiB RAM, Linux $(uname -r)"
  echo "load=start $load_start, end $load_end"
  echo "popgate=$(sed -n 's/^project(popgate VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt") (git $git_rev, RelWithDebInfo)"
  echo "fetchmail=$(dpkg-query -W -f='${Version}' fetchmail)"
  echo "getmail6=$(dpkg-query -W -f='${Version}' getmail6)"
  echo "mpop=$(dpkg-query -W -f='${Version}' mpop)"
  echo "msmtp=$(dpkg-query -W -f='${Version}' msmtp)"
  echo "dovecot=$(dpkg-query -W -f='${Version}' dovecot-core)"
  echo "postfix=$(dpkg-query -W -f='${Version}' postfix)"
  echo "python3=$(dpkg-query -W -f='${Version}' python3)"
  echo "smtp_source=postfix $(dpkg-query -W -f='${Version}' postfix) /usr/sbin/smtp-source"
  echo "sizes=N1=$N1 N2=$N2 N3=$N3 SIZE=$SIZE BIG_N=$BIG_N BIG_SIZE=$BIG_SIZE RTT_N=$RTT_N RTT_MS=$RTT_MS RUNS=$RUNS"
  echo "mem=bench/privmem.py, smaps_rollup of the tool's main process every ${MEM_MS} ms"
  echo "idle=ACCOUNTS=$IDLE_ACCOUNTS SECONDS=$IDLE_SECONDS INTERVAL=$IDLE_INTERVAL WARMUP=$IDLE_WARMUP RUNS=$IDLE_RUNS DRIVER=$IDLE_DRIVER"
  echo "postfix_delivery=$rcpt by Postfix's own virtual(8) into a maildir (POPGATE_TEST_POSTFIX_VIRTUAL_USERS=${rcpt%@*}), not the test suites' pipe script"
} > "$out/meta.txt"
"$py" "$top/bench/report.py" "$out"
( cd "$out" && gnuplot chart.gp )
echo "run.sh: results in $out (results.md, results.png, results.csv)"
