#!/usr/bin/env bash
# Benchmarks the symlinks and libraries checks against the classic tools over the same
# directories, warm cache (one warm-up run each, then the best of 3), with peak RSS:
#   symlinks   vs  find <paths> -xdev -xtype l      target: ratio <= 1.5
#   libraries  vs  scanelf -RL -n <paths>           target: ratio <= 1.0
# on the live system and on a copy of the debootstrapped server root (scripts/test-root).
#
#   tests/bench/checks_fs.sh [BUILD_DIR]     (needs root for the root copy; pax-utils for scanelf)
#
# Times `upgrade-guard check --root R --checks ID` of the built binary.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
guard=$build/guard/upgrade-guard
command -v scanelf >/dev/null || { echo "checks_fs.sh: scanelf not found: apt-get install pax-utils" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "checks_fs.sh: /usr/bin/time not found: apt-get install time" >&2; exit 2; }

[ -x "$guard" ] || { echo "checks_fs.sh: build $guard first (cmake --build $build)" >&2; exit 2; }

symlink_paths=(/usr/bin /usr/sbin /usr/lib /usr/libexec /etc /boot /usr/local/bin /opt)
library_paths=(/usr/bin /usr/sbin /usr/lib /usr/libexec /usr/local/bin /opt /usr/local/lib)

tmp=$(mktemp -d /tmp/ug-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# best_of CMD...: prints "seconds kilobytes" of the fastest of 3 runs after a warm-up run.
best_of() {
  "$@" >/dev/null 2>&1 || true
  local best="" rss=""
  for _ in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$tmp/time" "$@" >/dev/null 2>&1 || true
    read -r s kb < <(tail -n 1 "$tmp/time")
    if [ -z "$best" ] || awk -v a="$s" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$s; rss=$kb; fi
  done
  echo "$best $rss"
}

ours() {  # ours ROOT CHECK: the argv that runs our check
  echo "$guard" check --root "$1" --checks "$2"
}

existing() {  # existing ROOT PATH...: the host paths of those that exist in ROOT
  local root=$1; shift
  for p in "$@"; do
    local h=${root%/}$p
    [ -d "$h" ] && echo "$h"
  done
  return 0
}

row() {  # row TARGET CHECK TOOL OURS REF LIMIT
  read -r os orss <<<"$4"
  read -r rs rrss <<<"$5"
  local ratio
  ratio=$(awk -v a="$os" -v b="$rs" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')
  local ok
  ok=$(awk -v r="$ratio" -v l="$6" 'BEGIN { print (r <= l) ? "ok" : "SLOW" }')
  printf "%-8s %-10s %-24s %8s %8s %6s %5s %10s %10s\n" "$1" "$2" "$3" "$os" "$rs" "$ratio" "$ok" "$orss" "$rrss"
}

bench_root() {  # bench_root NAME ROOT
  local name=$1 root=$2
  mapfile -t sp < <(existing "$root" "${symlink_paths[@]}")
  mapfile -t lp < <(existing "$root" "${library_paths[@]}")
  local o r
  # shellcheck disable=SC2046  # the argv words have no spaces
  o=$(best_of $(ours "$root" symlinks))
  r=$(best_of find "${sp[@]}" -xdev -xtype l)
  row "$name" symlinks "find -xtype l" "$o" "$r" 1.5
  # shellcheck disable=SC2046
  o=$(best_of $(ours "$root" libraries))
  r=$(best_of scanelf -RL -n "${lp[@]}")
  row "$name" libraries "scanelf -RL -n" "$o" "$r" 1.0
}

printf "runner: %s check\n" "$guard"
printf "%-8s %-10s %-24s %8s %8s %6s %5s %10s %10s\n" root check reference ours_s ref_s ratio ok ours_kb ref_kb
bench_root live /
if [ "$(id -u)" = 0 ]; then
  server=$("$src/scripts/test-root" server)
  cp -a --reflink=auto "$server" "$tmp/server"
  bench_root server "$tmp/server"
else
  echo "server root skipped: copying it needs root" >&2
fi
