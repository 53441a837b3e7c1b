#!/usr/bin/env bash
# Runs one libFuzzer target for a while; the ctest test `fuzz_NAME` and scripts/fuzz call it.
#   run.sh BINARY NAME MAX_LEN SECONDS BUILD_DIR SEED_DIR...
# UG_FUZZ_SECONDS in the environment overrides SECONDS. New inputs go to
# BUILD_DIR/fuzz-corpus/NAME (kept between runs), a crashing, hanging or memory-hungry input to
# BUILD_DIR/fuzz-artifacts/NAME/, the log to BUILD_DIR/fuzz-logs/NAME.log and a one-line summary
# to BUILD_DIR/fuzz-logs/NAME.summary. Exit status: 0 clean, 1 the target failed.
set -uo pipefail

binary=$1 name=$2 max_len=$3 seconds=${UG_FUZZ_SECONDS:-$4} build=$5
shift 5
corpus=$build/fuzz-corpus/$name
artifacts=$build/fuzz-artifacts/$name
logs=$build/fuzz-logs
mkdir -p "$corpus" "$artifacts" "$logs"
log=$logs/$name.log
seeds=()
for d in "$@"; do [ -d "$d" ] && seeds+=("$d"); done

# -timeout: an input taking 10 s (UG_FUZZ_TIMEOUT) is a hang. It counts wall-clock time: a
# fuzzer starved by other work reports inputs that take milliseconds alone. -rss_limit_mb/-malloc_limit_mb: an input needing
# 1 GiB is an OOM (the parsers are bounded far below that for inputs of MAX_LEN bytes).
# The outer timeout only catches a fuzzer that does not stop by itself. UBSan prints the stack.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
timeout --kill-after=30 $((seconds + 120)) "$binary" \
  -max_total_time="$seconds" -max_len="$max_len" -timeout="${UG_FUZZ_TIMEOUT:-10}" -rss_limit_mb=1024 -malloc_limit_mb=1024 \
  -artifact_prefix="$artifacts/" -print_final_stats=1 -detect_leaks=1 \
  "$corpus" "${seeds[@]}" >"$log" 2>&1
rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
summary="$name: ${execs:-?} executions in ${seconds}s, ${cov:-cov: ? ft: ?}, corpus $(find "$corpus" -type f | wc -l) files"
if [ $rc -ne 0 ]; then
  input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  summary="$summary, FAILED (exit $rc): input ${input:-not written}"
  echo "--- the end of $log:"
  tail -n 60 "$log"
  echo "---"
  echo "fuzz_$name: the crashing input is kept in $artifacts/ (${input:-no file written})"
  echo "reproduce: $binary $input"
fi
echo "$summary" | tee "$logs/$name.summary"
[ $rc -eq 0 ]
