#!/bin/bash
# demo.sh - install the dependencies, build popgate and run it on its embedded
# SQLite default in ./demo (nothing outside the tree is changed but the
# packages): create the database, add an account, list it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${POPGATE_BUILD_DIR:-$top/build}
demo=$top/demo

"$top/scripts/install-deps.sh"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target popgatectl

mkdir -p "$demo"
cat > "$demo/popgate.conf" <<CONF
database.driver = sqlite
database.path = $demo/popgate.db
secret_key_file = $demo/secret.key
accounts_dir = $demo/accounts.d
CONF
ctl() { "$build/popgatectl/popgatectl" --config="$demo/popgate.conf" "$@"; }

set -x
ctl db migrate
ctl account show service-desk >/dev/null 2>&1 || \
  echo 'demo-password' | ctl account add service-desk --server=pop.company.example \
    --user=service-desk --mailbox=service-desk@company.example --password-stdin
ctl account list
ctl account show service-desk
