#!/usr/bin/env bash
# Benchmarks the whole check (`upgrade-guard check`: every check id, including the
# configuration, symbol-binding, content and validator checks) on the live system against
# `dpkg --verify`, the integrity check an administrator would otherwise run, side by side in one
# run: warm cache, best of $RUNS runs (round-robin, so background load hits both alike), wall
# seconds, peak RSS and CPU seconds from /usr/bin/time -v. Read-only on the host: the guard's
# state goes to a temp directory.
#
#   tests/bench/full_check.sh [BUILD_DIR]     # default: build
#   RUNS=1 tests/bench/full_check.sh
#
# Target: the full check's wall time <= 0.7x dpkg --verify's.
set -uo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
runs=${RUNS:-3}
guard_bin="$build/guard/upgrade-guard"
[ -x "$guard_bin" ] || { echo "full_check.sh: build $guard_bin first (cmake --build $build)" >&2; exit 2; }
for tool in dpkg /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "full_check.sh: missing $tool (apt-get install time)" >&2; exit 2; }
done

work=$(mktemp -d /var/tmp/ug-bench-full.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
mkdir -m 0700 "$work/state"

# measure NAME CMD...: one timed run; appends "wall rss_kb cpu" to $work/NAME.
measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$work/t" "$@" >/dev/null 2>&1
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + p[i] }
              /Maximum resident set size/ { rss = $2 } /User time/ { u = $2 } /System time/ { s = $2 }
              END { printf "%.2f %d %.2f\n", w, rss, u + s }' "$work/t" >>"$work/$name"
}
best() { sort -n "$work/$1" | head -1; }

cat /var/lib/dpkg/info/*.md5sums 2>/dev/null | cut -c35- | sed 's|^|/|' | xargs -d '\n' cat >/dev/null 2>&1  # warm the cache
for ((i = 1; i <= runs; i++)); do
  measure guard "$guard_bin" --state-dir "$work/state" check
  measure dpkg dpkg --verify
done
read -r gw gr gc < <(best guard)
read -r dw dr dc < <(best dpkg)
"$guard_bin" --state-dir "$work/state" check --json >"$work/report.json" 2>/dev/null

echo "== full check of the live system ($(dpkg-query -W | wc -l) packages), $(nproc) cores, best of $runs"
printf '%-28s %10s %12s %10s\n' tool wall_s peak_rss_kb cpu_s
printf '%-28s %10s %12s %10s\n' "upgrade-guard check" "$gw" "$gr" "$gc"
printf '%-28s %10s %12s %10s\n' "dpkg --verify" "$dw" "$dr" "$dc"
awk -v g="$gw" -v d="$dw" 'BEGIN { r = (d > 0) ? g / d : 0; printf "ratio check/dpkg-verify wall: %.2fx (target <= 0.70x) %s\n", r, (r <= 0.70) ? "OK" : "OVER" }'
# Per check, from the report: what each costs inside the parallel run.
python3 - "$work/report.json" <<'PY' 2>/dev/null || true
import json, sys
r = json.load(open(sys.argv[1]))
print("per check (ms, items, status):")
for c in r.get("checks", []):
    print(f"  {c.get('id',''):<16} {c.get('duration_ms', c.get('duration', '')):>8} {c.get('items',''):>8}  {c.get('status','')}")
PY
