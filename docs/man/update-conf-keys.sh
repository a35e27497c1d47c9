#!/bin/sh
# update-conf-keys.sh - regenerate the KEYS section of popgate.conf.5 from
# `popgatectl config sample` (itself generated from the key table in
# core/config.cpp), so the man page never lists a key the program lacks.
#   docs/man/update-conf-keys.sh [POPGATECTL]     (default: build/popgatectl/popgatectl)
# Replaces the lines between ".\" BEGIN KEYS" and ".\" END KEYS". Needs root or
# popgate-admin (popgatectl checks the admin role before any command).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ctl=${1:-$here/../../build/popgatectl/popgatectl}
page=$here/popgate.conf.5
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.keys"' EXIT

"$ctl" config sample | awk '
  # roff-escape: backslashes and hyphens; a leading dot or quote is protected.
  function esc(s) { gsub(/\\/, "\\e", s); gsub(/-/, "\\-", s); if (s ~ /^[.\047]/) s = "\\&" s; return s }
  # `command` in the key table: bold, as the rest of the page writes commands.
  function bold(s) {
    while (match(s, /`[^`]+`/)) s = substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 1, RLENGTH - 2) "\\fP" substr(s, RSTART + RLENGTH)
    return s
  }
  /^$/ { text = ""; choice = ""; next }
  /^#[a-z][a-z0-9_.]* = ?/ {
    key = $0; sub(/^#/, "", key); def = key
    sub(/ =.*/, "", key); sub(/^[^=]*= ?/, "", def)
    print ".TP"
    print ".B " esc(key)
    if (text != "") print bold(esc(text))
    if (choice != "") print "One of: " esc(choice) "."
    print ".br"
    print "Default: " (def == "" ? "empty" : "\\fB" esc(def) "\\fP") "."
    text = ""; choice = ""; next
  }
  /^# One of: / { choice = $0; sub(/^# One of: /, "", choice); next }
  /^# ?/ { line = $0; sub(/^# ?/, "", line); text = (text == "" ? line : text " " line); next }
' > "$tmp.keys"
[ -s "$tmp.keys" ] || { echo "update-conf-keys.sh: no keys from $ctl config sample" >&2; exit 1; }
awk -v keys="$tmp.keys" '
  /^\.\\" BEGIN KEYS/ { print; while ((getline l < keys) > 0) print l; skip = 1; next }
  /^\.\\" END KEYS/ { skip = 0 }
  !skip { print }
' "$page" > "$tmp"
cat "$tmp" > "$page"
echo "update-conf-keys.sh: $(grep -c '^\.TP' "$tmp.keys") keys written to $page"
