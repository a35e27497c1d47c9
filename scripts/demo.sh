#!/bin/bash
# demo.sh - install the dependencies, build popgate and run it for real on its
# embedded SQLite default: a private Dovecot serves a POP3 mailbox with three
# messages (one from a blocked domain), popgated moves them into a private
# Postfix, and the results are shown. Everything lives in ./demo; the servers
# listen on free 127.0.0.1 ports and are stopped at the end. Run as root:
# popgated leaves root for user popgate (scripts/users.sh creates it when
# missing), so popgate's files live in ./demo/state, which that user owns.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${POPGATE_BUILD_DIR:-$top/build}
demo=$top/demo

"$top/scripts/install-deps.sh"
"$top/scripts/users.sh"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target popgatectl popgated

rm -rf "$demo"
mkdir -p "$demo/state"
chmod 755 "$demo"
stop() {
  "$top/scripts/servers/postfix.sh" stop "$demo/postfix" || true
  "$top/scripts/servers/dovecot.sh" stop "$demo/dovecot" || true
}
trap stop EXIT
"$top/scripts/servers/dovecot.sh" start "$demo/dovecot"
"$top/scripts/servers/postfix.sh" start "$demo/postfix"
set -a
. "$demo/dovecot/env"
. "$demo/postfix/env"
set +a

cat > "$demo/popgate.conf" <<CONF
database.driver = sqlite
database.path = $demo/state/popgate.db
secret_key_file = $demo/state/secret.key
header_key_file = $demo/state/header.key
accounts_dir = $demo/state/accounts.d
spool_dir = $demo/state/spool
debug_log_dir = $demo/state/debug
reinject.port = $POPGATE_TEST_POSTFIX_REINJECT_PORT
CONF
ctl() { "$build/popgatectl/popgatectl" --config="$demo/popgate.conf" "$@"; }

# Three messages straight into the Dovecot mailbox.
maildir=$POPGATE_TEST_DOVECOT_MAILDIR/new
for n in 1 2 3; do
  domain=example.org
  [ "$n" = 2 ] && domain=spam.example
  printf 'From: Sender %s <sender%s@%s>\nTo: service-desk@company.example\nSubject: demo message %s\nMessage-ID: <demo%s@%s>\n\nHello from message %s.\n' \
    "$n" "$n" "$domain" "$n" "$n" "$domain" "$n" > "$maildir/demo$n.eml"
done
chown -R nobody:nogroup "$POPGATE_TEST_DOVECOT_MAILDIR"

set -x
ctl db migrate
echo "$POPGATE_TEST_DOVECOT_PASSWORD" | ctl account add service-desk --server=127.0.0.1 \
  --port="$POPGATE_TEST_DOVECOT_POP3S_PORT" --user="$POPGATE_TEST_DOVECOT_USER" \
  --tls-ca-file="$POPGATE_TEST_DOVECOT_CA" --mailbox=service-desk@popgate.test --password-stdin
ctl filter add inbound --default=yes
ctl filter address add spam --type=deny --domains=spam.example
ctl filter attach inbound spam
# What popgatectl made as root (database, secret key) for popgated, which runs as popgate.
chown -R popgate:popgate "$demo/state"
ctl account list
ctl account test service-desk --deep
"$build/plugin/popgated/popgated" --config="$demo/popgate.conf" --once --log=stderr
sleep 1
ctl log
ctl message list
ctl status
set +x
echo
echo "Delivered by Postfix into $POPGATE_TEST_POSTFIX_MAILDIR/service-desk/new:"
ls -l "$POPGATE_TEST_POSTFIX_MAILDIR/service-desk/new"
echo
echo "The first message as Postfix delivered it:"
cat "$(ls -d "$POPGATE_TEST_POSTFIX_MAILDIR"/service-desk/new/* | head -n 1)"
