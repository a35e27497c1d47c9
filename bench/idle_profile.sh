#!/bin/bash
# idle_profile.sh - what one idle poll costs popgated and fetchmail, in instructions
# (valgrind --tool=callgrind: deterministic, independent of the machine's load) and
# in system calls (strace -c), over ACCOUNTS empty mailboxes of a private Dovecot.
#   bench/idle_profile.sh [BUILD_DIR]          results in $PROF_OUT (bench/results/profile)
# Environment (defaults in brackets):
#   PROF_ACCOUNTS [20]  PROF_INTERVAL [10]  PROF_SECONDS [60]  PROF_WARMUP [15]
#   PROF_TOOLS [popgate fetchmail]  PROF_DRIVER [sqlite] (postgresql: a private PostgreSQL)
#   PROF_LABEL [now]  names the output files (e.g. before, after)
#   PROF_STRACE [1]  also a run under strace -c -f for the system calls per poll
#   PROF_KEEP_CG [0]  1: keep the callgrind files of the long runs in PROF_OUT (large)
# Instructions per poll: each daemon runs twice under callgrind, PROF_WARMUP s and
# PROF_SECONDS s; per poll = the difference of the instructions / the difference of
# Dovecot's logins of these users (start-up cancels out). System calls: one run under
# strace -c -f attached from PROF_WARMUP s to PROF_SECONDS s, / the logins in between.
# Needs root (Dovecot starts as root; popgated drops to user popgate), valgrind and strace
# (Debian packages; installed by nothing here). Not part of CI.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${POPGATE_BUILD_DIR:-$top/build}}
ACCOUNTS=${PROF_ACCOUNTS:-20}
INTERVAL=${PROF_INTERVAL:-10}
SECONDS_=${PROF_SECONDS:-60}
WARMUP=${PROF_WARMUP:-15}
TOOLS=${PROF_TOOLS:-popgate fetchmail}
DRIVER=${PROF_DRIVER:-sqlite}
LABEL=${PROF_LABEL:-now}
STRACE=${PROF_STRACE:-1}
out=${PROF_OUT:-$top/bench/results/profile}
popgated=$build/plugin/popgated/popgated
popgatectl=$build/popgatectl/popgatectl
rcpt=bench@popgate.test
mkdir -p "$out"
export POPGATE_MODULE_DIR=$build/core # the PostgreSQL driver of this build

state=$(mktemp -d /tmp/popgate-prof.XXXXXX) && chmod 755 "$state"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  "$top/scripts/servers/dovecot.sh" stop "$state/dovecot" >/dev/null 2>&1 || true
  [ -f "$state/pg/env" ] && "$top/scripts/servers/postgresql.sh" stop "$state/pg" >/dev/null 2>&1 || true
  [ "${PROF_KEEP:-0}" = 1 ] || rm -rf "$state"
}
trap cleanup EXIT
POPGATE_TEST_DOVECOT_EXTRA_USERS=$ACCOUNTS "$top/scripts/servers/dovecot.sh" start "$state/dovecot" >/dev/null
. "$state/dovecot/env"
pop_port=$POPGATE_TEST_DOVECOT_PORT
password=$POPGATE_TEST_DOVECOT_PASSWORD
mapfile -t users < <(cut -d' ' -f1 "$POPGATE_TEST_DOVECOT_EXTRA_USERS_FILE" | head -n "$ACCOUNTS")
dlog=$state/dovecot/main/dovecot.log
db_conf="database.driver = sqlite"
if [ "$DRIVER" = postgresql ]; then
  "$top/scripts/servers/postgresql.sh" start "$state/pg" >/dev/null
  . "$state/pg/env"
  db_conf="database.driver = postgresql"
fi

setup_popgate() { # DIR
  local w=$1 u
  rm -rf "$w" && mkdir -p "$w/accounts.d" "$w/secrets"
  # each run its own secret key: an empty database for each (secrets sealed under the last key)
  [ "$DRIVER" = postgresql ] &&
    psql -q "$POPGATE_TEST_PG_CONNECT dbname=postgres" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' >/dev/null 2>&1
  {
    echo "$db_conf"
    if [ "$DRIVER" = postgresql ]; then
      echo "database.connect = $POPGATE_TEST_PG_CONNECT"
    else
      echo "database.path = $w/popgate.db"
    fi
    printf '%s\n' "secret_key_file = $w/secret.key" "header_key_file = $w/header.key" \
      "accounts_dir = $w/accounts.d" "secrets_dir = $w/secrets" "spool_dir = $w/spool" \
      "debug_log_dir = $w/debug" "reinject.port = 9"
  } > "$w/popgate.conf"
  printf '%s\n' "$password" > "$w/secrets/pop3.secret" && chmod 600 "$w/secrets/pop3.secret"
  for u in "${users[@]}"; do
    printf '%s\n' "server = 127.0.0.1" "port = $pop_port" "user = $u" "security = none" \
      "plaintext-auth = yes" "mailbox = $rcpt" "poll-interval = ${INTERVAL}s" \
      "secret_file = $w/secrets/pop3.secret" > "$w/accounts.d/$u.conf"
  done
  local ctl=("$popgatectl" --config="$w/popgate.conf")
  "${ctl[@]}" db migrate >/dev/null
  "${ctl[@]}" config apply >/dev/null
  "${ctl[@]}" filter add inbound --default=yes >/dev/null || true
  "${ctl[@]}" filter address add spam --type=deny --domains=spam.example >/dev/null || true
  "${ctl[@]}" filter attach inbound spam >/dev/null || true
  chown -R popgate:popgate "$w"
  cmd=("$popgated" --config="$w/popgate.conf" --log=stderr)
}
setup_fetchmail() { # DIR
  local w=$1 u
  rm -rf "$w" && mkdir -p "$w"
  {
    echo "set no bouncemail"
    echo "set no syslog"
    for u in "${users[@]}"; do
      echo "poll 127.0.0.1 port $pop_port protocol pop3 user \"$u\" password \"$password\" is \"$rcpt\" here" \
        "smtphost 127.0.0.1/9 smtpname \"$rcpt\" fetchall nokeep no rewrite no sslcertck sslproto ''"
    done
  } > "$w/fetchmailrc"
  chmod 600 "$w/fetchmailrc"
  cmd=(env HOME="$w" FETCHMAILHOME="$w" fetchmail -d "$INTERVAL" -N -f "$w/fetchmailrc"
       --idfile "$w/ids" --pidfile "$w/pid")
}

logins_since() { # OFFSET - Dovecot logins of the bench users after byte OFFSET of its log
  tail -c +$(($1 + 1)) "$dlog" | grep -c 'pop3-login: Info: Login: user=<bench' || true
}

# run TOOL MODE - MODE callgrind or strace; prints "polls value"
run() {
  local tool=$1 mode=$2 w=$state/$1-$2 from0 from1 n
  "setup_$tool" "$w"
  case $mode in
    callgrind) # $3: seconds to run
      local f=$w/cg.out
      # popgated drops to user popgate: the file must be its to write at exit
      : > "$f" && chown popgate "$f"
      from0=$(stat -c %s "$dlog")
      valgrind --tool=callgrind --vgdb=no --trace-children=yes --callgrind-out-file="$f" "${cmd[@]}" > "$w/log" 2>&1 &
      pid=$!
      sleep "$3"
      kill -TERM "$pid"; wait "$pid" || true; pid=""
      n=$(logins_since "$from0")
      local ir
      ir=$(awk '/^(summary|totals):/{print $2; exit}' "$f")
      if [ "$3" = "$SECONDS_" ]; then
        # the whole run (start-up included), the top functions only
        callgrind_annotate --inclusive=no "$f" > "$w/self.txt" 2>/dev/null || true
        callgrind_annotate --inclusive=yes "$f" > "$w/incl.txt" 2>/dev/null || true
        head -n 60 "$w/self.txt" > "$out/callgrind-$LABEL-$tool-$DRIVER.txt"
        head -n 90 "$w/incl.txt" > "$out/callgrind-$LABEL-$tool-$DRIVER-inclusive.txt"
        [ "${PROF_KEEP_CG:-0}" = 1 ] && cp "$f" "$out/cg-$LABEL-$tool-$DRIVER.out"
      fi
      echo "$n $ir"
      ;;
    strace)
      "${cmd[@]}" > "$w/log" 2>&1 &
      pid=$!
      sleep "$WARMUP"
      from0=$(stat -c %s "$dlog")
      timeout $((SECONDS_ - WARMUP)) strace -c -f -p "$pid" -o "$w/strace.txt" >/dev/null 2>&1 || true
      from1=$(stat -c %s "$dlog")
      n=$(logins_since "$from0")
      n=$((n - $(logins_since "$from1")))
      kill -TERM "$pid"; wait "$pid" || true; pid=""
      cp "$w/strace.txt" "$out/strace-$LABEL-$tool-$DRIVER.txt"
      echo "$n $(awk '$NF=="total"{print $(NF-2)}' "$w/strace.txt")"
      ;;
  esac
}

summary=$out/idle-$LABEL-$DRIVER.txt
{
  echo "# idle poll cost: $ACCOUNTS empty accounts, every $INTERVAL s, window $WARMUP-$SECONDS_ s; database $DRIVER"
  echo "# git $(git -C "$top" describe --always --dirty 2>/dev/null), $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$summary"
for t in $TOOLS; do
  read -r p0 ir0 < <(run "$t" callgrind "$WARMUP")
  read -r p1 ir1 < <(run "$t" callgrind "$SECONDS_")
  polls=$((p1 - p0)) ir=$((ir1 - ir0))
  line="$t: $p0 polls in $WARMUP s ($ir0 instructions), $p1 in $SECONDS_ s ($ir1): $((ir / (polls > 0 ? polls : 1))) instructions (user space) per poll"
  if [ "$STRACE" = 1 ]; then
    read -r spolls calls < <(run "$t" strace)
    line="$line; $calls system calls in $spolls polls, $((calls / (spolls > 0 ? spolls : 1))) per poll"
  fi
  echo "$line" | tee -a "$summary"
done
