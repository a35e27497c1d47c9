#!/bin/bash
# fuzz.sh [SECONDS [TARGET...]] - build the libFuzzer targets of tests/fuzz
# (clang, ASan+UBSan, in build-fuzz/ or $POPGATE_FUZZ_BUILD_DIR) and run each
# for SECONDS (default 60), $POPGATE_FUZZ_JOBS at a time (default: the number
# of cores), every target by default. Exits 1 on any finding (a crash, a
# broken invariant, a sanitizer report, a leak, an input slower than 10 s or
# memory over 2 GiB) and prints the path of the input that caused it.
# The seeds of tests/fuzz/corpus/<target>/ are read, never written: what the
# fuzzer learns goes to build-fuzz/fuzz-corpus/<target>/ and is kept between
# runs; findings go to build-fuzz/fuzz-findings/<target>/, logs to fuzz-logs/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${POPGATE_FUZZ_BUILD_DIR:-$top/build-fuzz}
seconds=${1:-60}
shift || true
jobs=${POPGATE_FUZZ_JOBS:-$(nproc)}

case $seconds in
  '' | *[!0-9]*) echo "usage: fuzz.sh [SECONDS [TARGET...]]" >&2; exit 2 ;;
esac

# -max_len per target: above the limit the parser enforces, so that the limit
# itself is exercised (a From field over 64 KiB, a UIDL line over 64 KiB), and
# no larger, because libFuzzer's mutations slow down with the input size.
declare -A max_len=(
  [pop3_reader]=70000      # kMaxUidlLine 64 KiB (kMaxDataLine 1 MiB is left to pop3_client_test)
  [message_rewriter]=140000 # kMaxField 64 KiB, twice
  [screen]=140000
  [address]=20000          # kMaxFromField 16 KiB
  [idn]=1024
  [popgate_id]=4096
  [filter_compiler]=4096
  [config]=70000           # kMaxKeyValueLine 64 KiB
  [accounts]=8192
  [recipients]=20000       # kMaxEnvelopeField 4 KiB, kMaxEnvelopeFields 64
  [import_fetchmail]=70000  # kImportMaxLine 64 KiB
  [import_getmail]=70000
  [import_mpop]=70000
  [received]=10000         # kMaxReceivedField 8 KiB
)

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in "$top"/tests/fuzz/*_fuzzer.cpp; do
    t=$(basename "$f" _fuzzer.cpp)
    targets+=("$t")
  done
fi
for t in "${targets[@]}"; do
  [ -n "${max_len[$t]:-}" ] || { echo "fuzz.sh: unknown target '$t' (no max_len)" >&2; exit 2; }
done

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$top" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DPOPGATE_FUZZ=ON -DPOPGATE_WERROR=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzzers

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/fuzz/lsan.supp:print_suppressions=0}

# run_target T - one libFuzzer run; its exit code is the verdict.
run_target() {
  local t=$1
  local work=$build/fuzz-corpus/$t findings=$build/fuzz-findings/$t log=$build/fuzz-logs/$t.log
  mkdir -p "$work" "$findings" "$(dirname "$log")"
  local dict=()
  [ -f "$top/tests/fuzz/$t.dict" ] && dict=(-dict="$top/tests/fuzz/$t.dict")
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len="${max_len[$t]}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" \
    "$work" "$top/tests/fuzz/corpus/$t" >"$log" 2>&1
}

echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, $jobs at a time"
declare -A pids=()
failed=0
report() { # report T RC - one line per target, the finding's path when there is one
  local t=$1 rc=$2 log=$build/fuzz-logs/$1.log
  local runs cov
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE).*cov:' "$log" | tail -n 1 |
        grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz.sh: %-17s ok       %10s runs  %s\n' "$t" "${runs:-?}" "${cov:-}"
    return 0
  fi
  failed=1
  local artifact
  artifact=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | sed 's/Test unit written to //' || true)
  printf 'fuzz.sh: %-17s FINDING  (exit %s)\n' "$t" "$rc"
  grep -E 'invariant broken|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' -A 1 "$log" |
    head -n 6 | sed 's/^/    /' || true
  echo "    input: ${artifact:-(none written; see the log)}"
  echo "    log:   $log"
  echo "    again: $build/tests/fuzz/fuzz_$t ${artifact:-INPUT}"
}

for t in "${targets[@]}"; do
  while [ "${#pids[@]}" -ge "$jobs" ]; do
    rc=0
    wait -n -p done_pid "${!pids[@]}" || rc=$?
    report "${pids[$done_pid]}" "$rc"
    unset "pids[$done_pid]"
  done
  run_target "$t" &
  pids[$!]=$t
done
while [ "${#pids[@]}" -gt 0 ]; do
  rc=0
  wait -n -p done_pid "${!pids[@]}" || rc=$?
  report "${pids[$done_pid]}" "$rc"
  unset "pids[$done_pid]"
done

if [ "$failed" -ne 0 ]; then
  echo "fuzz.sh: FAILED: a finding becomes a corpus file and a unit test (CONTRIBUTING.md)" >&2
  exit 1
fi
echo "fuzz.sh: no finding"
