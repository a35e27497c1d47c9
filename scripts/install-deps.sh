#!/bin/bash
# install-deps.sh - install what popgate needs to build, test and run, from
# Debian 12 packages only. Shared by the README's commands and .ci/run.
# Runs apt-get only when something is missing (needs root then).
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  libpoco-dev libboost-test-dev libmilter-dev libpq-dev libsqlite3-dev libssl-dev libidn2-dev
  # test servers and tools (real parts, started on loopback by scripts/test.sh)
  postgresql postgresql-client sqlite3 dovecot-pop3d postfix miltertest swaks openssl
  python3 iproute2 util-linux ca-certificates procps
  # the tools `popgatectl import` reads the state of (tests/popgatectl/import_tools_test)
  fetchmail getmail6 mpop
  # Sendmail for milter_sendmail_test: not installed (sendmail-bin conflicts with
  # postfix) but its .debs fetched below and extracted by scripts/servers/sendmail.sh;
  # what sendmail-bin needs beyond the above, and m4 for its sendmail.cf
  liblockfile1 m4
  # the Debian package check (scripts/package-test.sh)
  dpkg-dev debhelper lintian fakeroot
  # fuzzing and the ASan+UBSan build (scripts/fuzz.sh): clang++, and libFuzzer
  # with the sanitizer runtimes (libclang_rt.fuzzer is in libclang-rt-14-dev)
  clang clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# fetch_sendmail - Debian's Sendmail .debs into their cache (scripts/servers/sendmail.sh
# fetch: apt-get download, only when missing); run after the installs, as it needs the
# package lists apt-get update brings.
fetch_sendmail() {
  [ "$(id -u)" -eq 0 ] || return 0
  "$(dirname "$0")/servers/sendmail.sh" fetch
}
if [ ${#missing[@]} -eq 0 ]; then
  fetch_sendmail
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian's maintainer scripts must not start the system's own mail servers:
# the tests start private instances on loopback high ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
fetch_sendmail
