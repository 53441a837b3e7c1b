#!/usr/bin/env bash
# Benchmarks the scheduled audit (`upgrade-guard --root R audit`: every check, against the
# root's accepted baseline, report stored, textfile written) on a copy of the debootstrapped
# server root (scripts/test-root server), against what an administrator's nightly integrity
# job would otherwise run on the same root: `dpkg --verify` and `debsums -s` (file hashes only;
# the audit also resolves every ELF object's libraries, walks the symlinks, checks boot,
# fstab and units). Warm cache, best of $RUNS runs (round-robin, so background load hits every
# tool alike), wall seconds, peak RSS and CPU seconds (user + system) from /usr/bin/time -v.
#
#   tests/bench/audit.sh [BUILD_DIR]          # default: build; needs root (the root copy)
#   RUNS=1 tests/bench/audit.sh
#
# Targets: the audit's wall time <= 1.5x dpkg --verify's (it hashes the same files on every
# core, then resolves libraries, walks links and checks boot, fstab and units besides), peak
# RSS under 200 MB.
set -uo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
runs=${RUNS:-3}
guard_bin="$build/guard/upgrade-guard"
[ -x "$guard_bin" ] || { echo "audit.sh: build $guard_bin first (cmake --build $build)" >&2; exit 2; }
for tool in dpkg debsums /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "audit.sh: missing $tool (apt-get install debsums time)" >&2; exit 2; }
done
src=$("$here/scripts/test-root" server | tail -n 1) || { echo "audit.sh: no server root" >&2; exit 2; }

work=$(mktemp -d /var/tmp/ug-bench-audit.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
root="$work/server-root"
cp -a --reflink=auto "$src" "$root"
state="$work/state"
mkdir -m 0700 "$state"
guard=("$guard_bin" --root "$root" --state-dir "$state")

# measure NAME CMD...: one timed run; appends "wall rss_kb cpu" to $work/NAME.
measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$work/t" "$@" >/dev/null 2>&1
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + p[i] }
              /Maximum resident set size/ { rss = $2 } /User time/ { u = $2 } /System time/ { s = $2 }
              END { printf "%.2f %d %.2f\n", w, rss, u + s }' "$work/t" >>"$work/$name"
}
best() { sort -n "$work/$1" | head -1; }

# The root's current findings accepted, as an administrator would after installing.
"${guard[@]}" baseline accept >/dev/null || { echo "audit.sh: baseline accept failed" >&2; exit 1; }
(cd "$root" && cat var/lib/dpkg/info/*.md5sums | cut -c35- | xargs -d '\n' cat >/dev/null 2>&1)  # warm the cache
for ((i = 1; i <= runs; i++)); do
  measure audit "${guard[@]}" audit --prometheus "$work/upgrade-guard.prom"
  measure dpkg dpkg --root="$root" --verify
  measure debsums debsums -s --root="$root"
done
read -r aw ar ac < <(best audit)
read -r dw dr dc < <(best dpkg)
read -r bw br bc < <(best debsums)
"${guard[@]}" audit >/dev/null; code=$?

echo "== audit of the server root ($(ls "$root/var/lib/dpkg/info/" | grep -c '\.list$') packages), $(nproc) cores, best of $runs"
printf '%-32s %10s %12s %10s\n' tool wall_s peak_rss_kb cpu_s
printf '%-32s %10s %12s %10s\n' "upgrade-guard audit (all checks)" "$aw" "$ar" "$ac"
printf '%-32s %10s %12s %10s\n' "dpkg --verify (md5 only)" "$dw" "$dr" "$dc"
printf '%-32s %10s %12s %10s\n' "debsums -s (md5 only)" "$bw" "$br" "$bc"
awk -v a="$aw" -v d="$dw" -v b="$bw" -v r="$ar" 'BEGIN {
  if (a <= 0) a = 0.01
  printf "audit / dpkg --verify wall     %6.2fx  (target <= 1.5)\n", a / (d > 0 ? d : 0.01)
  printf "audit / debsums -s wall        %6.2fx\n", a / (b > 0 ? b : 0.01)
  printf "audit peak RSS                 %6.1f MB (target < 200)\n", r / 1024
}'
echo "audit exit status on the accepted root: $code (expected 0)"
