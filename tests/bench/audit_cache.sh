#!/usr/bin/env bash
# Benchmarks the verified-hash cache of the audit's package-hashes check on the live system,
# read-only (the state goes to a temporary directory), side by side in one run:
#   - a second audit of the unchanged system (the cache vouches for every unchanged file)
#     against `dpkg --verify` (target: <= 0.1x its wall time);
#   - the deep audit (`audit --deep`, every file read and hashed again) and the package-hashes
#     check alone (`check --checks package-hashes`, which never uses the cache) against
#     `xargs -P$(nproc) md5sum` over the same files (target: <= 1.05x);
# with peak RSS beside each (/usr/bin/time -v). Warm page cache, best of $RUNS runs.
#
#   tests/bench/audit_cache.sh [BUILD_DIR]      # default: build; run as root (reads every file)
#   RUNS=1 tests/bench/audit_cache.sh
set -uo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
runs=${RUNS:-3}
guard_bin="$build/guard/upgrade-guard"
[ -x "$guard_bin" ] || { echo "audit_cache.sh: build $guard_bin first" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "audit_cache.sh: missing /usr/bin/time (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d /var/tmp/ug-bench-cache.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
state="$work/state"
mkdir -m 0700 "$state"
guard=("$guard_bin" --state-dir "$state")

measure() {
  local name=$1; shift
  /usr/bin/time -v -o "$work/t" "$@" >"$work/$name.out" 2>/dev/null
  awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + p[i] }
              /Maximum resident set size/ { rss = $2 }
              END { printf "%.2f %d\n", w, rss }' "$work/t" >>"$work/$name"
}
best() { sort -n "$work/$1" | head -1; }

# The files the package md5sums list, as md5sum gets them (absolute, existing ones).
(cd / && cat var/lib/dpkg/info/*.md5sums | cut -c35- | sed 's|^|/|' | while IFS= read -r f; do [ -f "$f" ] && printf '%s\0' "$f"; done) >"$work/files"
nfiles=$(tr -cd '\0' <"$work/files" | wc -c)
xargs -0 -n 256 cat <"$work/files" >/dev/null 2>&1  # warm the page cache

"${guard[@]}" audit --json >"$work/first.json" 2>/dev/null  # builds the cache (a deep audit)
for ((i = 1; i <= runs; i++)); do
  measure cached "${guard[@]}" audit --json
  measure dpkg dpkg --verify
  measure deep "${guard[@]}" audit --deep --json
  measure hashes "${guard[@]}" check --checks package-hashes --json
  measure md5sum xargs -0 -P"$(nproc)" -n 256 md5sum <"$work/files"
done
note() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1]))
print(next((c.get("note","") for c in j["checks"] if c["id"]=="package-hashes"), ""))' "$1"; }
read -r cw cr < <(best cached)
read -r dw dr < <(best dpkg)
read -r ew er < <(best deep)
read -r hw hr < <(best hashes)
read -r mw mr < <(best md5sum)

echo "== verified-hash cache on $(hostname) ($nfiles files in md5sums), $(nproc) cores, best of $runs"
printf '%-44s %8s %12s\n' what wall_s peak_rss_kb
printf '%-44s %8s %12s\n' "audit, second run (cache)" "$cw" "$cr"
printf '%-44s %8s %12s\n' "dpkg --verify" "$dw" "$dr"
printf '%-44s %8s %12s\n' "audit --deep (all checks)" "$ew" "$er"
printf '%-44s %8s %12s\n' "check --checks package-hashes (no cache)" "$hw" "$hr"
printf '%-44s %8s %12s\n' "xargs -P$(nproc) md5sum" "$mw" "$mr"
echo "package-hashes note, second audit: $(note "$work/cached.out")"
echo "package-hashes note, deep audit:   $(note "$work/deep.out")"
awk -v c="$cw" -v d="$dw" -v e="$ew" -v h="$hw" -v m="$mw" 'BEGIN {
  if (d <= 0) d = 0.01; if (m <= 0) m = 0.01
  printf "second audit / dpkg --verify wall      %6.3fx  (target <= 0.1)\n", c / d
  printf "deep audit / xargs md5sum wall         %6.3fx  (target <= 1.05)\n", e / m
  printf "package-hashes alone / xargs md5sum    %6.3fx\n", h / m
}'
