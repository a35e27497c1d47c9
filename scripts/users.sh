#!/bin/bash
# users.sh - the system users and groups the Debian package creates
# (debian/popgate.postinst), for running popgate from a build tree as root:
# started as root, popgated switches to user popgate and popgate-milter to user
# popgate-milter, and each refuses to start (exit 78) when its user is missing.
#   popgate         popgated; primary group popgate, member of popgate-db
#   popgate-milter  popgate-milter; primary group popgate-milter, member of popgate-db
#   popgate-db      the database and header.key; popgate-admin: the admins
# Creates only what is missing (idempotent, as the postinst); never changes or
# removes an existing user. Uses useradd and groupadd (package passwd), which
# every Debian system has. As root only.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "users.sh: must run as root" >&2; exit 2; }

for g in popgate popgate-milter popgate-db popgate-admin; do
  getent group "$g" >/dev/null || groupadd --system "$g"
done
# systemuser USER GECOS - a system user with its own primary group, no login, no home made.
systemuser() {
  getent passwd "$1" >/dev/null ||
    useradd --system --gid "$1" --no-create-home --home-dir "/var/lib/$1" \
      --shell /usr/sbin/nologin --comment "$2" "$1"
}
systemuser popgate "popgate POP3 fetcher"
systemuser popgate-milter "popgate milter"
for u in popgate popgate-milter; do
  id -nG "$u" | tr ' ' '\n' | grep -qx popgate-db || usermod -a -G popgate-db "$u"
done
