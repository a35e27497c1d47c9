#!/bin/bash
# package-test.sh - CI check of the Debian package, as root, without systemd.
# Builds popgate_*.deb from a copy of the work tree (dpkg-buildpackage, which
# also runs the ctest suites without the "server" label), runs lintian (any E:
# or W: fails), checks the file list and conffiles, installs the package next
# to the machine's Postfix and Dovecot, starts the daemons the way the units
# would (same user, same ExecStartPre/ExecStart arguments plus --log=stderr,
# because there is no syslog daemon here: each daemon's log goes to a file),
# configures a private Postfix from the shipped snippets, moves mail from a
# private Dovecot mailbox into Postfix, checks the log lines, blocks a sender
# through the milter, then checks `dpkg -r` (conffiles kept) and
# `dpkg --purge` (nothing left but the system user and groups, which Debian
# keeps on purge). Then the upgrade from the previous release: the package of
# v0.1.0 (its commit, `git archive`, built with DEB_BUILD_OPTIONS="nocheck noddebs": its
# suites ran when it was made) is installed with an account, a filter, a
# quarantined message and a local edit of popgate.conf, and upgraded to this
# one: schema migrated, the edit kept, mail still flows, nothing delivered twice.
# The old build costs about 3 minutes on 2 cores (162 s measured, load about 4;
# 38 files: without the suites, which nocheck does not build). piuparts is not
# run: it needs a debootstrap'd chroot per run (CI keeps no base tarball) and
# the package's dependencies installed into it, minutes the CI run lacks.
# Never binds a fixed port: the private servers of
# scripts/servers/ use free high ports on 127.0.0.1.
#   scripts/package-test.sh [--keep] [--head]
#     --keep  leave the temporary directory (kept anyway when something failed)
#     --head  build the last commit (git archive HEAD) plus the work tree's
#             debian/ and docs/man/, instead of the whole work tree: checks the
#             packaging while other work in progress does not compile
#     --reuse=WORKDIR  (packaging work) take the compiled tree of a kept run,
#             copy debian/ and docs/man/ over it and repackage with
#             dpkg-buildpackage -nc (make and ctest find little to redo)
# Prints "N passed, M failed" last; exits 1 on any failure. Stops what it
# started by PID. WARNING: installs and purges the package on this machine.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/scripts/lib.sh"

keep=no
tree=worktree
reuse=""
for arg in "$@"; do
  case $arg in
    --keep) keep=yes ;;
    --head) tree="head" ;;
    --reuse=*) reuse=${arg#--reuse=} ;;
    *) echo "usage: $0 [--keep] [--head] [--reuse=WORKDIR]" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "package-test.sh: must run as root" >&2; exit 2; }

passed=0
failed=0
started=$(date +%s)
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND... - one PASS/FAIL line from a command's status.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
step() { echo "== $* ($(($(date +%s) - started))s)"; }

work=$(mktemp -d /tmp/popgate-pkgtest.XXXXXX)
chmod 755 "$work" # postfix, nobody and popgate must reach the server state below
daemon_pids=""
servers=""

cleanup() {
  local pid
  for pid in $daemon_pids; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $daemon_pids; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  case " $servers " in *" postfix "*) "$here/scripts/servers/postfix.sh" stop "$work/postfix" >/dev/null 2>&1 ;; esac
  case " $servers " in *" dovecot "*) "$here/scripts/servers/dovecot.sh" stop "$work/dovecot" >/dev/null 2>&1 ;; esac
  if [ "$keep" = yes ] || [ "$failed" -gt 0 ]; then
    echo "package-test.sh: logs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

finish() {
  echo "package-test.sh: $(($(date +%s) - started))s"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

# --- tools ---------------------------------------------------------------------
step "tools"
need=""
for p in dpkg-dev debhelper lintian fakeroot postfix dovecot-pop3d swaks; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
  echo "installing:$need"
  # as scripts/install-deps.sh: /etc/postfix stays unconfigured, the tests use a private instance
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $need \
    > "$work/apt.log" 2>&1 || { tail -20 "$work/apt.log"; fail "apt-get install$need"; finish; }
fi

# A package left over from an earlier run would hide what this one does.
if dpkg-query -W -f='${Status}' popgate 2>/dev/null | grep -q 'installed\|config-files'; then
  echo "purging the popgate package left installed before this run"
  dpkg --purge popgate > "$work/prepurge.log" 2>&1 || { cat "$work/prepurge.log"; fail "purge old popgate"; finish; }
fi

# --- build ---------------------------------------------------------------------
step "build (dpkg-buildpackage -us -uc -b on a copy of the tree: $tree)"
mkdir -p "$work/src"
if [ -n "$reuse" ]; then
  [ -d "$reuse/src/debian" ] || { echo "package-test.sh: no kept build in $reuse" >&2; exit 2; }
  # in place: CMake's cache remembers the source directory's path
  rm -rf "$work/src" "$reuse"/popgate*_*
  ln -s "$(cd "$reuse/src" && pwd)" "$work/src"
  rm -rf "$work/src/debian" "$work/src/docs/man"
  (cd "$here" && tar -cf - debian docs/man) | tar -xf - -C "$work/src/"
elif [ "$tree" = head ]; then
  git -C "$here" archive --format=tar HEAD | tar -xf - -C "$work/src"
  rm -rf "$work/src/debian" "$work/src/docs/man"
  mkdir -p "$work/src/docs"
  (cd "$here" && tar -cf - debian docs/man) | tar -xf - -C "$work/src"
  rm -rf "$work/src/debian/popgate" "$work/src/debian/.debhelper" "$work/src/debian/files"
elif git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # tracked and new files, as the work tree has them; never build outputs
  (cd "$here" && git ls-files -z -co --exclude-standard) \
    | grep -zv '^build[^/]*/\|^obj-\|^debian/popgate/\|^debian/\.debhelper/' \
    | (cd "$here" && tar --null -T - -cf -) | tar -xf - -C "$work/src"
else
  tar -C "$here" --exclude='./build*' --exclude='./obj-*' --exclude=./.git -cf - . | tar -xf - -C "$work/src"
fi
jobs=$(nproc)
nc=""
[ -n "$reuse" ] && nc=-nc
if (cd "$work/src" && dpkg-buildpackage -us -uc -b $nc -j"$jobs") > "$work/build.log" 2>&1; then
  pass "dpkg-buildpackage -us -uc -b $nc ($(grep -cE 'Test +#[0-9]+:' "$work/build.log") ctest suites ran, none labelled server)"
else
  tail -40 "$work/build.log"
  fail "dpkg-buildpackage -us -uc -b (log: $work/build.log)"
  finish
fi
out=$(cd -P "$work/src/.." && pwd) # dpkg-buildpackage writes to the parent directory
deb=$(ls "$out"/popgate_*_*.deb | head -n 1)
changes=$(ls "$out"/popgate_*.changes | head -n 1)
check "ctest in the build ran no suite labelled server" \
  bash -c "! grep -E 'Test +#[0-9]+: (store_test|popgatectl_test|filter_cli_test|pop3_dovecot_test|postfix_smoke_test)' '$work/build.log'"
check "the work tree stays clean (no obj-*, no debian/popgate)" \
  bash -c "! ls -d '$here'/obj-* '$here'/debian/popgate '$here'/debian/files >/dev/null 2>&1"

# --- the previous release, for the upgrade test at the end -------------------------
# The previous release by its commit: CI clones main without tags (a tag is
# never pushed with the branch), and the commit is in main's history. The tag,
# where a clone has it, must name the same commit.
prev_tag=v0.1.0
prev_commit=3cba7d5704a854158a53600b20c18a832fc27215
prev_deb=""
step "build the previous release ($prev_tag, commit ${prev_commit:0:12}: git archive, DEB_BUILD_OPTIONS=\"nocheck noddebs\")"
tagged=$(git -C "$here" rev-parse -q --verify "refs/tags/$prev_tag^{commit}" 2>/dev/null || true)
if [ -n "$tagged" ] && [ "$tagged" != "$prev_commit" ]; then
  fail "tag $prev_tag names $tagged, not $prev_commit: fix prev_commit in $0"
elif ! git -C "$here" cat-file -e "$prev_commit^{commit}" 2>/dev/null; then
  fail "commit $prev_commit ($prev_tag) is not in this clone: a shallow clone or a copy without .git cannot run the upgrade test (git fetch --unshallow)"
elif [ "$(git -C "$here" show "$prev_commit:debian/changelog" | dpkg-parsechangelog -l - -S Version)" != "${prev_tag#v}" ]; then
  fail "commit $prev_commit: its debian/changelog is not version ${prev_tag#v}"
elif ! (mkdir -p "$work/prev/src" && git -C "$here" archive --format=tar "$prev_commit" | tar -xf - -C "$work/prev/src"); then
  fail "git archive $prev_commit ($prev_tag) failed"
else
  prev_started=$(date +%s)
  if (cd "$work/prev/src" && DEB_BUILD_OPTIONS="nocheck noddebs" dpkg-buildpackage -us -uc -b -j"$jobs") > "$work/prev-build.log" 2>&1; then
    prev_deb=$(ls "$work"/prev/popgate_*_*.deb 2>/dev/null | head -n 1)
    check "dpkg-buildpackage of $prev_tag: $(basename "${prev_deb:-none}") in $(($(date +%s) - prev_started))s" test -n "$prev_deb"
  else
    tail -30 "$work/prev-build.log"
    fail "dpkg-buildpackage of $prev_tag (log: $work/prev-build.log)"
  fi
fi

# --- lintian -------------------------------------------------------------------
step "lintian"
lintian --display-info --pedantic "$changes" > "$work/lintian.log" 2>&1
grep -v 'running with root privileges' "$work/lintian.log" | sed 's/^/  lintian: /'
if grep -q '^[EW]: ' "$work/lintian.log"; then
  fail "lintian: $(grep -c '^[EW]: ' "$work/lintian.log") error/warning tag(s)"
else
  pass "lintian: no errors, no warnings ($(grep -c '^[IPX]: ' "$work/lintian.log") info/pedantic/experimental)"
fi

# --- contents ------------------------------------------------------------------
step "dpkg -c"
dpkg -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' > "$work/contents"
milter=no
grep -qx /usr/sbin/popgate-milter "$work/contents" && milter=yes
expected="/usr/sbin/popgated /usr/sbin/popgatectl
/lib/systemd/system/popgated.service /lib/systemd/system/popgate-milter.service
/usr/lib/tmpfiles.d/popgate.conf
/etc/popgate/popgate.conf /etc/popgate/accounts.d/example.conf.sample /etc/mail/m4/popgate-milter.m4
/usr/share/man/man8/popgated.8.gz /usr/share/man/man8/popgate-milter.8.gz
/usr/share/man/man8/popgatectl.8.gz /usr/share/man/man5/popgate.conf.5.gz
/usr/share/doc/popgate/README.Debian.gz /usr/share/doc/popgate/copyright
/usr/share/doc/popgate/examples/main.cf.popgate /usr/share/doc/popgate/examples/master.cf.popgate
/usr/share/doc/popgate/mta-integration.md.gz
/var/lib/popgate /var/spool/popgate /var/log/popgate
/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/popgate/popgate-pgsql.so"
missing=""
for f in $expected; do grep -qx "$f" "$work/contents" || missing="$missing $f"; done
check "dpkg -c lists the expected files${missing:+ (missing:$missing)}" test -z "$missing"
check "dpkg -c lists /usr/sbin/popgate-milter" test "$milter" = yes
check "no headers, static libraries or test programs in the package" \
  bash -c "! grep -E '^/usr/include|\\.a\$|_test\$|/bench' '$work/contents'"
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles > "$work/conffiles" 2>/dev/null
check "conffiles: popgate.conf, the accounts.d example, the Sendmail snippet" \
  bash -c "[ \"\$(sort '$work/conffiles' | tr '\n' ' ')\" = '/etc/mail/m4/popgate-milter.m4 /etc/popgate/accounts.d/example.conf.sample /etc/popgate/popgate.conf ' ]"
# hardening-check (devscripts) is not needed: readelf shows the same.
hardened=yes
for b in popgated popgatectl popgate-milter; do
  grep -qx "/usr/sbin/$b" "$work/contents" || continue
  dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "./usr/sbin/$b" > "$work/$b.bin"
  # into files first: `readelf | grep -q` fails under pipefail when grep stops early
  readelf -h -l -d -s --wide "$work/$b.bin" > "$work/$b.readelf" 2>&1
  grep -q 'Type:.*DYN' "$work/$b.readelf" || { echo "  $b: not PIE"; hardened=no; }
  grep -q GNU_RELRO "$work/$b.readelf" || { echo "  $b: no RELRO"; hardened=no; }
  grep -q 'BIND_NOW\|FLAGS_1.*NOW' "$work/$b.readelf" || { echo "  $b: no BIND_NOW"; hardened=no; }
  grep -q __stack_chk_fail "$work/$b.readelf" || { echo "  $b: no stack protector"; hardened=no; }
done
check "binaries are PIE, full RELRO (BIND_NOW), stack-protected" test "$hardened" = yes

# --- install -------------------------------------------------------------------
step "dpkg -i"
postfix_user=no
getent passwd postfix >/dev/null && postfix_user=yes
if dpkg -i "$deb" > "$work/install.log" 2>&1 ||
  { DEBIAN_FRONTEND=noninteractive apt-get install -f -y --no-install-recommends >> "$work/install.log" 2>&1 &&
    dpkg-query -W -f='${Status}' popgate | grep -q 'install ok installed'; }; then
  pass "dpkg -i $(basename "$deb")"
else
  cat "$work/install.log"
  fail "dpkg -i $(basename "$deb")"
  finish
fi
sed 's/^/  dpkg: /' "$work/install.log" | grep -iv 'unpacking\|selecting\|preparing\|setting up\|reading database\|processing triggers' || true

# --- users, groups, file modes: the table of ARCHITECTURE.md, "Who can read what" --
check "user popgate (primary group popgate, no login shell)" \
  bash -c '[ "$(id -gn popgate)" = popgate ] && [ "$(getent passwd popgate | cut -d: -f7)" = /usr/sbin/nologin ]'
check "user popgate-milter (primary group popgate-milter, no login shell)" \
  bash -c '[ "$(id -gn popgate-milter)" = popgate-milter ] && [ "$(getent passwd popgate-milter | cut -d: -f7)" = /usr/sbin/nologin ]'
check "group popgate-admin exists" getent group popgate-admin
# member USER GROUP - USER is in GROUP (primary or supplementary).
member() { id -nG "$1" 2>/dev/null | tr ' ' '\n' | grep -qx "$2"; }
check "popgate and popgate-milter are members of popgate-db" bash -c "$(declare -f member); member popgate popgate-db && member popgate-milter popgate-db"
check "popgate-milter is not in popgate or popgate-admin (groups: $(id -nG popgate-milter))" \
  bash -c "$(declare -f member); ! member popgate-milter popgate && ! member popgate-milter popgate-admin"
# modeof PATH - "owner:group mode" as stat prints it (octal mode without leading 0s).
modeof() { stat -c '%U:%G %a' "$1" 2>/dev/null; }
# The documented table (ARCHITECTURE.md): path, owner:group, mode.
layout="/etc/popgate root:root 755
/etc/popgate/secret.key popgate:popgate-admin 640
/etc/popgate/header.key popgate:popgate-db 640
/var/lib/popgate popgate:popgate-db 2770
/var/lib/popgate/popgate.db popgate:popgate-db 660
/var/lib/popgate-milter popgate-milter:popgate-milter 750
/var/spool/popgate popgate:popgate-admin 2770
/var/log/popgate popgate:popgate-admin 2750
/var/spool/postfix/popgate popgate-milter:popgate-milter 750"
# check_layout WHEN - one PASS/FAIL line per row of the table, and who may read what.
check_layout() {
  local when=$1 path og mode
  while read -r path og mode; do
    check "$when: $path is $og $mode (got $(modeof "$path"))" test "$(modeof "$path")" = "$og $mode"
  done <<<"$layout"
  if [ "$postfix_user" = yes ]; then
    check "$when: postfix is in group popgate-milter (the socket's), not in popgate, popgate-db, popgate-admin (groups: $(id -nG postfix))" \
      bash -c "$(declare -f member); member postfix popgate-milter && ! member postfix popgate && ! member postfix popgate-db && ! member postfix popgate-admin"
  fi
  # can USER PATH / cannot USER PATH: open PATH for reading as USER with the
  # user's groups (runuser: initgroups, as systemd's User= does).
  check "$when: popgated's user reads secret.key (runuser -u popgate -- cat)" \
    bash -c 'runuser -u popgate -- cat /etc/popgate/secret.key >/dev/null'
  check "$when: the milter's user cannot read secret.key (runuser -u popgate-milter -- cat fails)" \
    bash -c '! runuser -u popgate-milter -- cat /etc/popgate/secret.key >/dev/null 2>&1'
  check "$when: the milter's user reads header.key" \
    bash -c 'runuser -u popgate-milter -- cat /etc/popgate/header.key >/dev/null'
  check "$when: the milter's user reads and writes the database (and its directory)" \
    runuser -u popgate-milter -- test -r /var/lib/popgate/popgate.db -a -w /var/lib/popgate/popgate.db -a -w /var/lib/popgate
  if [ "$postfix_user" = yes ]; then
    for f in /etc/popgate/secret.key /etc/popgate/header.key /var/lib/popgate/popgate.db; do
      check "$when: postfix cannot read $f" bash -c "! runuser -u postfix -- cat $f >/dev/null 2>&1"
    done
    check "$when: postfix may enter the socket directory" runuser -u postfix -- test -x /var/spool/postfix/popgate
  fi
  for f in /etc/popgate/secret.key /etc/popgate/header.key /var/lib/popgate/popgate.db; do
    check "$when: nobody cannot read $f" bash -c "! runuser -u nobody -- cat $f >/dev/null 2>&1"
  done
  check "$when: an admin (groups popgate-admin, popgate-db) reads both keys" \
    bash -c 'setpriv --reuid=nobody --regid=nogroup --groups=popgate-admin,popgate-db -- cat /etc/popgate/secret.key /etc/popgate/header.key >/dev/null'
}
check_layout "install"
for k in /etc/popgate/secret.key /etc/popgate/header.key; do
  check "$k: 64 hex digits" grep -qxE '[0-9a-f]{64}' "$k"
done
check "the two keys differ" bash -c '! cmp -s /etc/popgate/secret.key /etc/popgate/header.key'
check "postinst migrated the schema (popgatectl db status)" \
  bash -c "popgatectl db status > '$work/dbstatus' 2>&1 && grep -q '^status: current' '$work/dbstatus'"

# An upgrade from 0.1.0, where both daemons ran as popgate: put that layout
# back (postfix in group popgate, the socket directory popgate's, header.key
# and the database in group popgate-admin, a .pgpass in popgated's home) and
# run the postinst as dpkg does for an upgrade from 0.1.0.
step "upgrade from the 0.1.0 layout (postinst configure 0.1.0)"
if [ "$postfix_user" = yes ]; then
  deluser --quiet postfix popgate-milter || true
  adduser --quiet postfix popgate
fi
chown popgate:popgate /var/spool/postfix/popgate
chmod 0750 /var/spool/postfix/popgate
chgrp popgate-admin /etc/popgate/header.key /var/lib/popgate /var/lib/popgate/popgate.db
printf '127.0.0.1:5432:popgate:popgate:pkgtest\n' > /var/lib/popgate/.pgpass
chown popgate:popgate /var/lib/popgate/.pgpass
chmod 0600 /var/lib/popgate/.pgpass
if DPKG_MAINTSCRIPT_PACKAGE=popgate DPKG_MAINTSCRIPT_NAME=postinst \
  /var/lib/dpkg/info/popgate.postinst configure 0.1.0 > "$work/upgrade.log" 2>&1; then
  pass "postinst configure 0.1.0"
else
  cat "$work/upgrade.log"; fail "postinst configure 0.1.0"
fi
sed 's/^/  postinst: /' "$work/upgrade.log"
check_layout "upgrade"
check "upgrade: the milter got its own copy of popgated's .pgpass (popgate-milter:popgate-milter 600)" \
  bash -c "[ \"\$(stat -c '%U:%G %a' /var/lib/popgate-milter/.pgpass)\" = 'popgate-milter:popgate-milter 600' ] && cmp -s /var/lib/popgate/.pgpass /var/lib/popgate-milter/.pgpass"
rm -f /var/lib/popgate/.pgpass /var/lib/popgate-milter/.pgpass
check "both units enabled (multi-user.target.wants symlinks)" \
  test -L /etc/systemd/system/multi-user.target.wants/popgated.service -a \
  -L /etc/systemd/system/multi-user.target.wants/popgate-milter.service
if command -v systemd-analyze >/dev/null; then
  units="/lib/systemd/system/popgated.service"
  [ "$milter" = yes ] && units="$units /lib/systemd/system/popgate-milter.service"
  check "systemd-analyze verify $units" bash -c "systemd-analyze verify $units > '$work/verify.log' 2>&1 || { cat '$work/verify.log'; false; }"
fi
check "man pages: popgated(8) popgate-milter(8) popgatectl(8) popgate.conf(5)" \
  bash -c 'for p in 8/popgated 8/popgate-milter 8/popgatectl 5/popgate.conf; do [ -f /usr/share/man/man${p%%/*}/${p#*/}.${p%%/*}.gz ] || exit 1; done'
# The key table is declared once (core/config.cpp): the shipped popgate.conf and
# popgate.conf(5) must list exactly the keys `popgatectl config sample` knows.
popgatectl config sample | sed -n 's/^#\([a-z][a-z0-9_.]*\) =.*/\1/p' | sort > "$work/keys.program"
sed -n 's/^#\([a-z][a-z0-9_.]*\) =.*/\1/p' /etc/popgate/popgate.conf | sort > "$work/keys.conf"
zcat /usr/share/man/man5/popgate.conf.5.gz | sed -n '/BEGIN KEYS/,/END KEYS/s/^\.B \(.*\)/\1/p' | sed 's/\\-/-/g' | sort > "$work/keys.man"
check "/etc/popgate/popgate.conf lists the $(wc -l < "$work/keys.program") keys of popgatectl config sample" \
  bash -c "diff '$work/keys.program' '$work/keys.conf' || { echo '  (regenerate conf/popgate.conf: popgatectl config sample)'; false; }"
check "popgate.conf(5) lists the same keys" \
  bash -c "diff '$work/keys.program' '$work/keys.man' || { echo '  (run docs/man/update-conf-keys.sh)'; false; }"
check "an admin (groups popgate-admin and popgate-db) may run popgatectl" \
  setpriv --reuid=nobody --regid=nogroup --groups=popgate-admin,popgate-db -- popgatectl account list
denied() {
  local out rc
  out=$(runuser -u nobody -- popgatectl account list 2>&1)
  rc=$?
  [ "$rc" = 1 ] && grep -q 'permission denied' <<<"$out"
}
check "others may not (runuser -u nobody): exit 1, permission denied" denied

# --- private servers, configured from the shipped snippets -----------------------
step "private Dovecot and Postfix"
if "$here/scripts/servers/dovecot.sh" start "$work/dovecot" > "$work/dovecot.start.log" 2>&1; then
  servers="$servers dovecot"
else
  cat "$work/dovecot.start.log"; fail "dovecot.sh start"; finish
fi
if "$here/scripts/servers/postfix.sh" start "$work/postfix" > "$work/postfix.start.log" 2>&1; then
  servers="$servers postfix"
else
  cat "$work/postfix.start.log"; fail "postfix.sh start"; finish
fi
set -a
. "$work/dovecot/env"
. "$work/postfix/env"
set +a
pfconf=$POPGATE_TEST_POSTFIX_CONFIG_DIR
maillog=$POPGATE_TEST_POSTFIX_LOG

# master.cf.popgate: the shipped reinjection listener, on a free port instead of
# 10026 and with chroot n (the private instance has no chroot copies of /etc).
reinject_port=$(free_port)
shipped=/usr/share/doc/popgate/examples/master.cf.popgate
svc=$(grep -E '^[0-9]' "$shipped" | head -n 1)
set -- $svc
service="127.0.0.1:$reinject_port"
ok=yes
postconf -c "$pfconf" -M "$service/inet=$service $2 $3 $4 n $6 $7 $8" || ok=no
while read -r opt; do
  postconf -c "$pfconf" -P "$service/inet/$opt" || ok=no
done < <(sed -n 's/^[[:space:]]\+-o[[:space:]]\+//p' "$shipped")
# main.cf.popgate, line by line. unix:popgate/milter.sock is relative to the
# queue directory: point the private queue directory's popgate/ at the real
# socket directory, so that the shipped line works unchanged.
ln -sfn /var/spool/postfix/popgate "$work/postfix/queue/popgate"
while read -r line; do
  case $line in
    smtpd_milters*) [ "$milter" = yes ] || { echo "  (not applied without the milter: $line)"; continue; } ;;
  esac
  postconf -c "$pfconf" -e "$line" || ok=no
done < <(grep -E '^[a-z_]+ *=' /usr/share/doc/popgate/examples/main.cf.popgate)
postfix -c "$pfconf" reload > /dev/null 2>&1 || ok=no
wait_for_port "$reinject_port" 20 || ok=no
check "private Postfix configured from main.cf.popgate and master.cf.popgate (listener $service)" test "$ok" = yes

# --- popgate's configuration (what an operator edits) ----------------------------
cat >> /etc/popgate/popgate.conf <<CONF

# package-test.sh: the private Postfix's listener from master.cf.popgate
reinject.port = $reinject_port
CONF
cp "$POPGATE_TEST_DOVECOT_CA" "$work/dovecot-ca.pem"
chmod 644 "$work/dovecot-ca.pem"
ctl() { popgatectl "$@" >> "$work/popgatectl.log" 2>&1; }
ok=yes
ctl filter add inbound-default --default=yes || ok=no
ctl filter address add blocked --type=deny --domains=blocked.example || ok=no
ctl filter attach inbound-default blocked || ok=no
printf '%s\n' "$POPGATE_TEST_DOVECOT_PASSWORD" | ctl account add pkgtest --server=127.0.0.1 \
  --port="$POPGATE_TEST_DOVECOT_POP3S_PORT" --security=ssl-tls --tls-ca-file="$work/dovecot-ca.pem" \
  --user="$POPGATE_TEST_DOVECOT_USER" --mailbox="pkgtest@$POPGATE_TEST_POSTFIX_DOMAIN" \
  --deliver-to="pkgtest@$POPGATE_TEST_POSTFIX_DOMAIN" --password-stdin || ok=no
check "popgatectl: inbound filter blocking blocked.example, account pkgtest" test "$ok" = yes
[ "$ok" = yes ] || cat "$work/popgatectl.log"
check "files root created in /var/lib/popgate belong to popgate" \
  bash -c '[ -z "$(find /var/lib/popgate ! -user popgate)" ]'

# Two messages in the Dovecot mailbox: one to deliver, one the filter ignores.
msgid="<pkgtest.$$.$RANDOM@example.org>"
drop() { # drop NAME FROM MESSAGE-ID SUBJECT
  local f="$POPGATE_TEST_DOVECOT_MAILDIR/tmp/$1"
  printf 'From: <%s>\r\nTo: <pkgtest@%s>\r\nSubject: %s\r\nMessage-ID: %s\r\nDate: %s\r\n\r\nbody of %s\r\n' \
    "$2" "$POPGATE_TEST_POSTFIX_DOMAIN" "$4" "$3" "$(date -R)" "$1" > "$f"
  chown nobody:nogroup "$f"
  mv "$f" "$POPGATE_TEST_DOVECOT_MAILDIR/new/$1"
}
drop "1.pkgtest" "sender@example.org" "$msgid" "package test delivery"
drop "2.pkgtest" "spammer@blocked.example" "<blocked.$$@blocked.example>" "package test blocked"

# --- the daemons, as their units start them --------------------------------------
# unitcmd UNIT KEY - the unit's KEY= value (ExecStart=, User=...).
unitcmd() { sed -n "s/^$2=//p" "/lib/systemd/system/$1" | head -n 1; }
# asunit UNIT CMD... - what UNIT's User=, Group=, SupplementaryGroups= and
# UMask=0007 do: the user's groups (initgroups) plus the unit's supplementary
# ones, its environment, the umask; then exec, so that the PID of
# `(asunit ...) &` is the daemon's (runuser would stay as a parent process).
asunit() {
  local user group groups
  user=$(unitcmd "$1" User)
  group=$(unitcmd "$1" Group)
  groups=$(id -nG "$user" | tr ' ' ',')
  [ -n "$(unitcmd "$1" SupplementaryGroups)" ] && groups="$groups,$(unitcmd "$1" SupplementaryGroups | tr ' ' ',')"
  shift
  exec setpriv --reuid="$user" --regid="$group" --groups="$groups" --reset-env -- \
    sh -c 'umask 0007; exec "$@"' sh "$@"
}

if [ "$milter" = yes ]; then
  step "popgate-milter"
  check "popgate-milter.service: User=popgate-milter Group=popgate-milter SupplementaryGroups=popgate-db" \
    test "$(unitcmd popgate-milter.service User) $(unitcmd popgate-milter.service Group) $(unitcmd popgate-milter.service SupplementaryGroups)" = "popgate-milter popgate-milter popgate-db"
  install -d -o popgate-milter -g popgate-milter -m 0750 /run/popgate # RuntimeDirectory=popgate
  pre=$(unitcmd popgate-milter.service ExecStartPre)
  if (asunit popgate-milter.service $pre) > "$work/milter-check.log" 2>&1; then
    pass "popgate-milter ExecStartPre: $pre"
  else
    cat "$work/milter-check.log"; fail "popgate-milter ExecStartPre: $pre"
  fi
  # shellcheck disable=SC2046 # the unit's words, split as systemd splits them (no quoting there)
  (asunit popgate-milter.service $(unitcmd popgate-milter.service ExecStart) --log=stderr) > "$work/popgate-milter.log" 2>&1 &
  daemon_pids="$daemon_pids $!"
  sock=/var/spool/postfix/popgate/milter.sock
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  check "milter socket $sock is popgate-milter:popgate-milter 770 (got $(modeof "$sock"))" \
    test "$(modeof "$sock")" = "popgate-milter:popgate-milter 770"
  check "the milter runs as popgate-milter (ps)" \
    bash -c "[ \"\$(ps -o user:32= -p $!)\" = popgate-milter ]"
else
  fail "/usr/sbin/popgate-milter is missing: the milter cannot be checked"
fi

step "popgated"
check "popgated.service: User=popgate Group=popgate SupplementaryGroups=popgate-db" \
  test "$(unitcmd popgated.service User) $(unitcmd popgated.service Group) $(unitcmd popgated.service SupplementaryGroups)" = "popgate popgate popgate-db"
pre=$(unitcmd popgated.service ExecStartPre)
if (asunit popgated.service $pre) > "$work/popgated-check.log" 2>&1; then
  pass "popgated ExecStartPre: $pre"
else
  cat "$work/popgated-check.log"; fail "popgated ExecStartPre: $pre"
fi
# shellcheck disable=SC2046 # the unit's words, split as systemd splits them
(asunit popgated.service $(unitcmd popgated.service ExecStart) --log=stderr) > "$work/popgated.log" 2>&1 &
daemon_pids="$daemon_pids $!"
popgated_pid=$!
sleep 0.5
check "popgated runs as popgate (ps)" bash -c "[ \"\$(ps -o user:32= -p $popgated_pid)\" = popgate ]"
plog=$work/popgated.log
for _ in $(seq 600); do
  grep -q 'account=pkgtest poll:' "$plog" && break
  kill -0 "$popgated_pid" 2>/dev/null || break
  sleep 0.1
done
sed 's/^/  popgated: /' "$plog"
re_delivered="account=pkgtest uidl=[^ ]+ message-id=$msgid from=<sender@example.org> size=[0-9]+ status=delivered relay=127\.0\.0\.1\[$reinject_port\] queue-id=([A-Za-z0-9]+) \(250 .*\)$"
line=$(grep -E "$re_delivered" "$plog" | head -n 1)
check "popgated: account=... uidl=... message-id=... from=<...> size=N status=delivered relay=HOST[PORT] queue-id=Q (250 ...)" test -n "$line"
qid=$(sed -E "s/.*$re_delivered/\1/" <<<"$line")
check "popgated: status=ignored line for the blocked sender" \
  grep -qE 'account=pkgtest uidl=[^ ]+ message-id=<blocked\.[0-9]+@blocked\.example> from=<spammer@blocked\.example> size=[0-9]+ status=ignored \(.+\)' "$plog"
check "popgated: poll line (2 listed, 1 delivered, 1 ignored, 2 deleted)" \
  grep -qE 'account=pkgtest poll: 2 listed, 1 delivered, 1 ignored, 0 deferred, 0 failed, 2 deleted' "$plog"
# Dovecot expunges at QUIT, which popgated sends just after its poll line.
mailbox_empty() {
  for _ in $(seq 50); do
    [ -z "$(find "$POPGATE_TEST_DOVECOT_MAILDIR/new" "$POPGATE_TEST_DOVECOT_MAILDIR/cur" -type f)" ] && return 0
    sleep 0.1
  done
  return 1
}
check "the Dovecot mailbox is empty (deleted after the 250)" mailbox_empty
if [ -n "$qid" ]; then
  for _ in $(seq 100); do grep -q "$qid: .*status=sent" "$maillog" && break; sleep 0.1; done
  check "Postfix log joins by queue id: postfix/popgate/smtpd[...]: $qid: client=..." \
    grep -qE "postfix/popgate/smtpd\[[0-9]+\]: $qid: client=" "$maillog"
  check "Postfix delivered $qid (status=sent)" grep -q "$qid: .*status=sent" "$maillog"
  grep "$qid" "$maillog" | sed 's/^/  maillog: /'
fi
check "the message is in the private Postfix's maildir" \
  bash -c "grep -lq 'Subject: package test delivery' '$POPGATE_TEST_POSTFIX_MAILDIR'/pkgtest/new/* 2>/dev/null"

if [ "$milter" = yes ]; then
  step "popgate-milter blocks a sender"
  mlog=$work/popgate-milter.log
  if [ -n "$qid" ]; then
    check "popgate-milter: queue-id=$qid ... action=accept for the reinjected message" \
      grep -qE "queue-id=$qid from=<sender@example.org> (.* )?action=accept \(reinjected by popgated" "$mlog"
  fi
  swaks --server 127.0.0.1 --port "$POPGATE_TEST_POSTFIX_SMTP_PORT" --from spammer@blocked.example \
    --to "pkgtest@$POPGATE_TEST_POSTFIX_DOMAIN" --timeout 30 > "$work/swaks-blocked.log" 2>&1
  check "SMTP from spammer@blocked.example: 550 5.7.1" grep -qE '^<\*\* +550[ -]5\.7\.1' "$work/swaks-blocked.log"
  grep -E '^<\*\*' "$work/swaks-blocked.log" | sed 's/^/  swaks: /'
  for _ in $(seq 50); do grep -q 'milter-reject' "$maillog" && break; sleep 0.1; done
  check "Postfix log: NOQUEUE: milter-reject: ... 550 5.7.1" grep -qE 'milter-reject: .* 550 5\.7\.1' "$maillog"
  check "popgate-milter log: from=<spammer@blocked.example> action=reject" \
    grep -qE 'from=<spammer@blocked\.example> action=reject \(' "$mlog"
  swaks --server 127.0.0.1 --port "$POPGATE_TEST_POSTFIX_SMTP_PORT" --from friend@example.org \
    --to "pkgtest@$POPGATE_TEST_POSTFIX_DOMAIN" --timeout 30 > "$work/swaks-allowed.log" 2>&1
  check "SMTP from friend@example.org: 250 queued" grep -qE '^<- +250 .*queued' "$work/swaks-allowed.log"
  sed 's/^/  popgate-milter: /' "$mlog"
else
  fail "no sender was blocked through the milter (it is not installed)"
fi

# Both daemons wrote the database (popgated its ledger, the milter milter_seen):
# whichever created -wal and -shm, the setgid directory and SQLite (the
# database's mode for its side files) keep them the other's too.
ls -l /var/lib/popgate | sed 's/^/  ls: /'
check "after both daemons ran: every popgate.db* file is group popgate-db, mode 660" \
  bash -c '[ -z "$(find /var/lib/popgate -name "popgate.db*" \( ! -group popgate-db -o ! -perm 0660 \))" ]'
check "after both daemons ran: nothing in /var/lib/popgate is open to others" \
  bash -c '[ -z "$(find /var/lib/popgate -perm /o=rwx)" ]'

step "stop the daemons (SIGTERM, as systemctl stop)"
for pid in $daemon_pids; do kill -TERM "$pid" 2>/dev/null; done
stopped=yes
for pid in $daemon_pids; do
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && stopped=no
  wait "$pid" 2>/dev/null || stopped=no
done
daemon_pids=""
check "daemons stop on SIGTERM with exit 0" test "$stopped" = yes
check "popgated: stopped line" grep -q 'popgated stopped' "$plog"
rm -rf /run/popgate # RuntimeDirectory= is removed at stop

# --- remove, purge ---------------------------------------------------------------
step "dpkg -r"
dpkg -r popgate > "$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "dpkg -r popgate"; }
check "dpkg -r: state config-files" bash -c "dpkg-query -W -f='\${Status}' popgate | grep -q config-files"
check "dpkg -r: programs gone" test ! -e /usr/sbin/popgated -a ! -e /usr/sbin/popgatectl -a ! -e /usr/sbin/popgate-milter
check "dpkg -r: conffiles kept, with the local edit" \
  bash -c "grep -q '^reinject.port = $reinject_port' /etc/popgate/popgate.conf && [ -f /etc/mail/m4/popgate-milter.m4 ] && [ -f /etc/popgate/accounts.d/example.conf.sample ]"
check "dpkg -r: keys, database and spool kept" \
  test -f /etc/popgate/secret.key -a -f /etc/popgate/header.key -a -f /var/lib/popgate/popgate.db -a -d /var/spool/popgate

step "dpkg --purge"
dpkg --purge popgate > "$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge popgate"; }
sed 's/^/  dpkg: /' "$work/purge.log" | grep -iv 'removing\|purging\|reading database' || true
left=""
for p in /etc/popgate /var/lib/popgate /var/lib/popgate-milter /var/spool/popgate /var/log/popgate /var/spool/postfix/popgate \
  /run/popgate /etc/mail/m4/popgate-milter.m4 /usr/lib/tmpfiles.d/popgate.conf \
  /lib/systemd/system/popgated.service /lib/systemd/system/popgate-milter.service \
  /etc/systemd/system/multi-user.target.wants/popgated.service \
  /etc/systemd/system/multi-user.target.wants/popgate-milter.service; do
  [ -e "$p" ] || [ -L "$p" ] && left="$left $p"
done
check "dpkg --purge leaves nothing behind${left:+ (left:$left)}" test -z "$left"
check "dpkg --purge: no package record" bash -c "! dpkg-query -W popgate >/dev/null 2>&1 || ! dpkg-query -W -f='\${Status}' popgate | grep -q 'installed\|config-files'"
echo "kept on purge, as Debian does: users popgate and popgate-milter, groups popgate, popgate-milter, popgate-db and popgate-admin$([ "$postfix_user" = yes ] && echo ', postfix in group popgate-milter')"

# --- upgrade from the previous release ---------------------------------------------
# The machine is clean again (purged above). The old package is installed and
# used as an operator would: an account on the private Dovecot with
# keep-on-server (so a message delivered before the upgrade is still listed
# after it: a second delivery would show), a filter that quarantines a sender,
# a local edit of popgate.conf (the conffile); old popgated fetches once. Then
# dpkg -i of this package, as apt does for an upgrade that keeps local conffile
# edits (--force-confold), and the new popgated fetches again.
upgrade() {
  local version uplog=$work/upgrade-0.1.log mid1 mid2 mid3 ok
  step "upgrade: install $(basename "$prev_deb")"
  # No milter in this part (the purge took its socket): Postfix without it.
  postconf -c "$pfconf" -e 'smtpd_milters =' && postfix -c "$pfconf" reload > /dev/null 2>&1
  if ! dpkg -i "$prev_deb" > "$uplog" 2>&1; then
    cat "$uplog"; fail "dpkg -i $(basename "$prev_deb")"; return
  fi
  version=$(dpkg-query -W -f='${Version}' popgate)
  check "the previous release is installed (popgate $version)" test "$version" = "${prev_tag#v}"
  # the local edit: the private Postfix's listener, and a comment to find again
  printf '\n# package-test.sh: local edit before the upgrade\nreinject.port = %s\n' "$reinject_port" \
    >> /etc/popgate/popgate.conf
  rm -f "$POPGATE_TEST_DOVECOT_MAILDIR"/new/* "$POPGATE_TEST_DOVECOT_MAILDIR"/cur/*
  ok=yes
  ctl filter add inbound-default --default=yes || ok=no
  ctl filter address add blocked --type=deny --domains=blocked.example || ok=no
  ctl filter attach inbound-default blocked || ok=no
  printf '%s\n' "$POPGATE_TEST_DOVECOT_PASSWORD" | ctl account add pkgup --server=127.0.0.1 \
    --port="$POPGATE_TEST_DOVECOT_POP3S_PORT" --security=ssl-tls --tls-ca-file="$work/dovecot-ca.pem" \
    --user="$POPGATE_TEST_DOVECOT_USER" --mailbox="pkgup@$POPGATE_TEST_POSTFIX_DOMAIN" \
    --deliver-to="pkgup@$POPGATE_TEST_POSTFIX_DOMAIN" --keep-on-server=yes --password-stdin || ok=no
  check "upgrade: the previous popgatectl made a filter and the account pkgup (keep-on-server)" test "$ok" = yes
  mid1="<up1.$$.$RANDOM@example.org>"
  mid2="<up2.$$.$RANDOM@blocked.example>"
  mid3="<up3.$$.$RANDOM@example.org>"
  drop "1.up" "sender@example.org" "$mid1" "before the upgrade"
  drop "2.up" "spammer@blocked.example" "$mid2" "quarantined before the upgrade"
  (asunit popgated.service /usr/sbin/popgated --config=/etc/popgate/popgate.conf --once --log=stderr) \
    > "$work/popgated-0.1.log" 2>&1
  sed 's/^/  popgated 0.1: /' "$work/popgated-0.1.log"
  check "upgrade: the previous popgated delivered one message and quarantined one" \
    grep -qE 'account=pkgup poll: 2 listed, 1 delivered, 1 ignored' "$work/popgated-0.1.log"
  drop "3.up" "sender@example.org" "$mid3" "after the upgrade"
  popgatectl db status > "$work/dbstatus-0.1" 2>&1

  step "upgrade: dpkg -i $(basename "$deb") over $version"
  if DEBIAN_FRONTEND=noninteractive dpkg -i --force-confdef --force-confold "$deb" > "$uplog" 2>&1; then
    pass "dpkg -i $(basename "$deb") over popgate $version"
  else
    cat "$uplog"; fail "dpkg -i $(basename "$deb") over popgate $version"; return
  fi
  sed 's/^/  dpkg: /' "$uplog" | grep -iv 'unpacking\|selecting\|preparing\|setting up\|reading database\|processing triggers' || true
  check "upgrade: popgate $(dpkg-query -W -f='${Version}' popgate) installed" \
    test "$(dpkg-query -W -f='${Version}' popgate)" = "$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)"
  popgatectl db status > "$work/dbstatus-up" 2>&1
  sed 's/^/  db status before: /' "$work/dbstatus-0.1"
  sed 's/^/  db status after:  /' "$work/dbstatus-up"
  check "upgrade: the postinst migrated the schema (db status: current, and it was not before)" \
    bash -c "grep -q '^status: current' '$work/dbstatus-up' && ! cmp -s '$work/dbstatus-0.1' '$work/dbstatus-up'"
  check "upgrade: the local edit of popgate.conf is kept (dpkg --force-confold)" \
    grep -qx "reinject.port = $reinject_port" /etc/popgate/popgate.conf
  check "upgrade: the new package's popgate.conf is beside it as popgate.conf.dpkg-dist" \
    test -f /etc/popgate/popgate.conf.dpkg-dist
  check_layout "upgrade from $version"
  popgatectl message list --account=pkgup > "$work/messages-up" 2>&1
  sed 's/^/  message list: /' "$work/messages-up"
  check "upgrade: the quarantined message is still listed as ignored" \
    grep -qE 'ignored' "$work/messages-up"
  (asunit popgated.service /usr/sbin/popgated --config=/etc/popgate/popgate.conf --once --log=stderr) \
    > "$work/popgated-up.log" 2>&1
  sed 's/^/  popgated: /' "$work/popgated-up.log"
  check "upgrade: the new popgated delivers the new message only (1 delivered, 0 ignored)" \
    grep -qE 'account=pkgup poll: [23] listed, 1 delivered, 0 ignored, 0 deferred, 0 failed' "$work/popgated-up.log"
  for _ in $(seq 100); do
    [ "$(grep -l "Message-ID: $mid3" "$POPGATE_TEST_POSTFIX_MAILDIR"/pkgup/new/* 2>/dev/null | wc -l)" -ge 1 ] && break
    sleep 0.1
  done
  check "upgrade: mail still flows ($mid3 delivered once)" \
    test "$(grep -l "Message-ID: $mid3" "$POPGATE_TEST_POSTFIX_MAILDIR"/pkgup/new/* 2>/dev/null | wc -l)" = 1
  check "upgrade: nothing delivered twice ($mid1, kept on the server, delivered once)" \
    test "$(grep -l "Message-ID: $mid1" "$POPGATE_TEST_POSTFIX_MAILDIR"/pkgup/new/* 2>/dev/null | wc -l)" = 1
  check "upgrade: the quarantined message was not delivered" \
    test "$(grep -l "Message-ID: $mid2" "$POPGATE_TEST_POSTFIX_MAILDIR"/pkgup/new/* 2>/dev/null | wc -l)" = 0
  dpkg --purge popgate > "$work/purge-up.log" 2>&1 || { cat "$work/purge-up.log"; fail "dpkg --purge popgate after the upgrade"; }
}
if [ -n "$prev_deb" ]; then
  upgrade
else
  fail "upgrade from $prev_tag: not run (its package was not built, see above)"
fi

finish
