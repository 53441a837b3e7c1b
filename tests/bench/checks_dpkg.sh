#!/usr/bin/env bash
# Benchmarks the package-files + package-hashes checks against the tools an administrator
# would otherwise use, over every installed package of (1) the live system and (2) a copy of
# the debootstrapped server root (scripts/test-root server). Warm cache, best of $RUNS runs
# (round-robin, so background load hits every tool alike), peak RSS and CPU seconds (user +
# system: what the work costs, whatever else the machine is doing) from /usr/bin/time.
#
#   tests/bench/checks_dpkg.sh [BUILD_DIR]        # default: build
#   RUNS=3 TARGETS="live server" SCOPE_PACKAGE=libc6 tests/bench/checks_dpkg.sh
#   SKIP="debsums" TARGETS=live tests/bench/checks_dpkg.sh   # debsums takes minutes on a big system
#
# Compared: upgrade-guard (`check --checks package-files,package-hashes`), `dpkg --verify` (md5 only), `debsums -s`, and
# `xargs -P$(nproc) md5sum` over the same md5sums file list (the hashing bound). Also the
# scoped check for a one-package change as a fraction of the full check.
# Targets: guard <= 1.15x xargs md5sum, >= 1.5x faster than dpkg --verify, >= 3x faster than
# debsums, scoped <= 5% of full.
set -uo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
runs=${RUNS:-3}
targets=${TARGETS:-live server}
scope_pkg=${SCOPE_PACKAGE:-libc6}
skip=" ${SKIP:-} "
nproc=$(nproc)

guard_bin="$build/guard/upgrade-guard"
[ -x "$guard_bin" ] || { echo "build $guard_bin first (cmake --build $build)" >&2; exit 2; }
guard=("$guard_bin" check); via="upgrade-guard check"
for tool in dpkg debsums md5sum xargs /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install debsums time)" >&2; exit 2; }
done

work=$(mktemp -d /var/tmp/ug-bench-dpkg.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT

# measure NAME CMD...: one timed run; appends "seconds rss_kb" to $work/NAME.
measure() {
  local name=$1; shift
  local tool=${name#*.}; tool=${tool%.r}
  if [[ "$skip" == *" $tool "* ]]; then echo "0 0 0 0" >>"$work/$name"; return; fi
  /usr/bin/time -f "%e %M %U %S" -o "$work/t" "$@" >/dev/null 2>&1
  cat "$work/t" | tail -1 >>"$work/$name"
}
# The fastest run: "seconds rss_kb cpu_seconds" (cpu = user + system).
best() { sort -n "$work/$1" | head -1 | awk '{printf "%s %s %.2f", $1, $2, $3 + $4}'; }

run_target() {
  local label=$1 root=$2
  local list="$work/$label.files"
  (cd "$root" && cat var/lib/dpkg/info/*.md5sums | cut -c35- >"$list")
  local nfiles bytes
  nfiles=$(wc -l <"$list")
  # Warm the cache once: every tool then reads from memory.
  (cd "$root" && xargs -a "$list" -d '\n' cat >/dev/null 2>&1)
  bytes=$(cd "$root" && xargs -a "$list" -d '\n' stat -L -c %s 2>/dev/null | awk '{s+=$1} END {printf "%.0f", s}')
  local droot=() sroot=()
  if [ "$root" != / ]; then droot=(--root="$root"); sroot=(--root="$root"); fi
  # The status from "before" a one-package upgrade: the same file with $scope_pkg's version
  # changed, so `check --scope changed --packages-from` looks at that package only.
  awk -v p="$scope_pkg" '/^Package: / {cur = $2} /^Version: / && cur == p {print "Version: 0~bench"; next} {print}' \
    "$root/var/lib/dpkg/status" >"$work/$label.status.before"
  rm -f "$work/$label".*.r
  for ((i = 1; i <= runs; i++)); do
    measure "$label.guard.r" "${guard[@]}" --root "$root" --checks package-files,package-hashes
    measure "$label.scoped.r" "${guard[@]}" --root "$root" --checks package-files,package-hashes \
      --scope changed --packages-from "$work/$label.status.before"
    measure "$label.xargs.r" sh -c 'cd "$1" && xargs -a "$2" -d "\n" -P"$3" -n 512 md5sum' sh "$root" "$list" "$nproc"
    measure "$label.dpkg.r" dpkg "${droot[@]}" --verify
    measure "$label.debsums.r" debsums -s "${sroot[@]}"
  done
  local g s x d b
  g=$(best "$label.guard.r"); s=$(best "$label.scoped.r"); x=$(best "$label.xargs.r")
  d=$(best "$label.dpkg.r"); b=$(best "$label.debsums.r")
  echo
  echo "== $label ($root): $nfiles files, $((bytes / 1000000)) MB, $nproc cores, best of $runs, via $via"
  printf '%-28s %10s %12s %10s\n' tool seconds peak_rss_kb cpu_s
  printf '%-28s %10s %12s %10s\n' "upgrade-guard (full)" $g
  printf '%-28s %10s %12s %10s\n' "upgrade-guard ($scope_pkg only)" $s
  printf '%-28s %10s %12s %10s\n' "xargs -P$nproc md5sum" $x
  printf '%-28s %10s %12s %10s\n' "dpkg --verify" $d
  printf '%-28s %10s %12s %10s\n' "debsums -s" $b
  awk -v g="${g%% *}" -v s="${s%% *}" -v x="${x%% *}" -v d="${d%% *}" -v b="${b%% *}" 'BEGIN {
    if (g <= 0) g = 0.01
    printf "ratio guard / xargs md5sum   %6.2fx  (target <= 1.15)\n", g / (x > 0 ? x : 0.01)
    printf "speed-up vs dpkg --verify    %6.2fx  (target >= 1.5)\n", d / g
    printf "speed-up vs debsums -s       %6.2fx  (target >= 3)\n", b / g
    printf "scoped / full                %6.1f%%  (target <= 5%%)\n", 100 * s / g
  }'
}

for t in $targets; do
  case "$t" in
    live) run_target live / ;;
    server)
      src=$("$here/scripts/test-root" server) || { echo "no server root" >&2; continue; }
      cp -a --reflink=auto "$src" "$work/server-root"
      run_target server "$work/server-root"
      ;;
    *) echo "unknown target $t (live or server)" >&2 ;;
  esac
done
