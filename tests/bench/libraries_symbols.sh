#!/usr/bin/env bash
# Benchmarks the libraries check with symbol binding on the live system, side by side in one
# run, warm cache (a warm-up run each, then the best of 3 by wall time), with peak RSS:
#   libraries (this build)         vs  scanelf -RLqn over the same directories   target: ratio <= 1.5
#   libraries (a build without symbol binding, e.g. main's), for comparison
#
#   tests/bench/libraries_symbols.sh [BUILD_DIR] [BEFORE_BINARY]
#     BEFORE_BINARY defaults to /work/main/build/guard/upgrade-guard; skipped when absent.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
guard=${1:-$src/build}/guard/upgrade-guard
before=${2:-/work/main/build/guard/upgrade-guard}
for tool in scanelf /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "libraries_symbols.sh: $tool not found (pax-utils, time)" >&2; exit 2; }
done
[ -x "$guard" ] || { echo "libraries_symbols.sh: build $guard first" >&2; exit 2; }

dirs=()
for d in /usr/bin /usr/sbin /usr/lib /usr/libexec /usr/local/bin /usr/local/lib /opt; do
  [ -d "$d" ] && dirs+=("$d")
done
work=$(mktemp -d /tmp/ug-bench-symbols.XXXXXX)
trap 'rm -rf "$work"' EXIT

# measure NAME CMD...: one warm-up, then "NAME wall_seconds peak_kb" of the fastest of 3.
measure() {
  local name=$1 wall="" kb=""
  shift
  "$@" >/dev/null 2>&1 || true
  for _ in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>&1 || true
    local w k
    read -r w k < <(tail -n 1 "$work/t")
    if [ -z "$wall" ] || awk -v a="$w" -v b="$wall" 'BEGIN { exit !(a < b) }'; then wall=$w kb=$k; fi
  done
  echo "$name $wall $kb"
}

check_argv() {  # the argv of one libraries check by binary $1
  echo "$1" check --checks libraries --json --state-dir "$work/state-$(basename "$(dirname "$(dirname "$1")")")"
}

results=()
# shellcheck disable=SC2046  # the argv words have no spaces
results+=("$(measure ours $(check_argv "$guard"))")
results+=("$(measure scanelf scanelf -RLqn "${dirs[@]}")")
if [ -x "$before" ]; then
  # shellcheck disable=SC2046
  results+=("$(measure before $(check_argv "$before"))")
else
  echo "no binary without symbol binding at $before: that row is skipped" >&2
fi

ref=$(printf '%s\n' "${results[@]}" | awk '$1 == "scanelf" { print $2 }')
printf "directories: %s\n" "${dirs[*]}"
printf "%-10s %-60s %8s %10s %8s\n" run what wall_s peak_kb ratio
for r in "${results[@]}"; do
  read -r name wall kb <<<"$r"
  case $name in
    ours) what="libraries check with symbol binding ($guard)" ;;
    before) what="libraries check without symbol binding ($before)" ;;
    *) what="scanelf -RLqn (reads every ELF's dynamic section)" ;;
  esac
  ratio=$(awk -v a="$wall" -v b="$ref" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')
  printf "%-10s %-60s %8s %10s %8s\n" "$name" "${what:0:60}" "$wall" "$kb" "$ratio"
done
ours_ratio=$(printf '%s\n' "${results[@]}" | awk -v b="$ref" '$1 == "ours" { printf "%.2f", $2 / b }')
awk -v r="$ours_ratio" 'BEGIN { exit !(r <= 1.5) }' && echo "ok: ours/scanelf = $ours_ratio <= 1.5" ||
  echo "SLOW: ours/scanelf = $ours_ratio > 1.5"
