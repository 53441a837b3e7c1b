#!/usr/bin/env bash
# The guard's overhead on a real small upgrade: the pending bookworm updates of the cached
# minbase root (scripts/test-root minbase), installed by `apt-get -y upgrade` (1) chrooted,
# unguarded, and (2) through `upgrade-guard --root R run --`, each time on a fresh btrfs
# snapshot of the same prepared root (package lists updated, the .debs already downloaded,
# so the network is not measured). Alternating, best of $RUNS each. Also the post-checks'
# time (from the run's recorded phases) as a fraction of a full `upgrade-guard check` of the
# upgraded root, and the time of each phase.
# Targets: guarded / unguarded <= 1.3x; post-checks / full check <= 10%.
#
#   tests/bench/run_overhead.sh [BUILD_DIR]        # needs root (loop device, btrfs, chroot)
#   RUNS=3 VARIANT=server tests/bench/run_overhead.sh   # the server root (openssh, systemd, a kernel)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
runs=${RUNS:-2}
ug="$build/guard/upgrade-guard"
[ -x "$ug" ] || { echo "build $ug first (cmake --build $build)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run_overhead: needs root (loop device, btrfs, chroot)" >&2; exit 2; }
for tool in mkfs.btrfs btrfs losetup unshare python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

variant=${VARIANT:-minbase}
src=$("$here/scripts/test-root" "$variant" | tail -1)
work=$(mktemp -d /var/tmp/ug-bench-run.XXXXXX)
top="$work/top"
loopdev=""
cleanup() {
  set +e
  if mountpoint -q "$top"; then umount "$top"; fi
  if [ -n "$loopdev" ]; then losetup -d "$loopdev"; fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT INT TERM

truncate -s 6G "$work/image"
mkfs.btrfs -q "$work/image"
loopdev=$(losetup --find --show "$work/image")
mkdir -p "$top"
mount "$loopdev" "$top"
btrfs subvolume create "$top/base" >/dev/null
cp -a --reflink=auto "$src/." "$top/base/"
echo "UUID=$(blkid -s UUID -o value "$loopdev") / btrfs subvol=@,defaults 0 0" >"$top/base/etc/fstab"

# in_root ROOT CMD...: chrooted with /proc, /sys and a private /dev, in a private mount
# namespace (as the guard runs its command; a private /dev because a host /dev/null that is
# not world-writable breaks apt's gpgv, which runs as _apt).
in_root() {
  local r=$1; shift
  unshare -m --propagation private sh -c 'r=$1; shift; mount -t proc proc "$r/proc" && mount --rbind /sys "$r/sys" &&
    mount -t tmpfs -o mode=0755 tmpfs "$r/dev" &&
    for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
      mknod -m 666 "$r/dev/${n%%:*}" c $(echo "${n#*:}" | tr : " ") || exit 1; done &&
    mkdir "$r/dev/pts" && mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts" &&
    ln -s pts/ptmx "$r/dev/ptmx" && exec chroot "$r" "$@"' sh "$r" "$@"
}
export DEBIAN_FRONTEND=noninteractive
in_root "$top/base" apt-get -q update >/dev/null
in_root "$top/base" apt-get -qq -y -d upgrade >/dev/null
pending=$(in_root "$top/base" apt-get -s upgrade | grep -c '^Inst ' || true)
debs_mb=$(du -sm "$top/base/var/cache/apt/archives" | cut -f1)
[ "$pending" -gt 0 ] || { echo "run_overhead: the minbase root has no pending updates to measure" >&2; exit 2; }

now() { date +%s.%N; }
: >"$work/plain"; : >"$work/guarded"
for ((i = 1; i <= runs; i++)); do
  btrfs subvolume snapshot "$top/base" "$top/plain" >/dev/null
  t0=$(now); in_root "$top/plain" apt-get -qq -y upgrade >/dev/null 2>&1; t1=$(now)
  echo "$t1 - $t0" | bc >>"$work/plain"
  btrfs subvolume delete "$top/plain" >/dev/null

  btrfs subvolume snapshot "$top/base" "$top/@" >/dev/null
  rm -rf "$work/state" "$work/log"
  t0=$(now)
  rc=0; "$ug" --root "$top/@" --state-dir "$work/state" --log-dir "$work/log" run -- apt-get -qq -y upgrade \
    >/dev/null 2>"$work/guard.err" || rc=$?
  t1=$(now)
  [ "$rc" -eq 0 ] || { echo "the guarded upgrade exited $rc:" >&2; cat "$work/guard.err" >&2; exit 1; }
  echo "$t1 - $t0" | bc >>"$work/guarded"
  "$ug" --state-dir "$work/state" history --json --run 1 >"$work/history.json"
  t0=$(now); "$ug" --root "$top/@" --state-dir "$work/state" check >/dev/null || true; t1=$(now)
  echo "$t1 - $t0" | bc >>"$work/full"
  python3 - "$work/history.json" >>"$work/phases" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
p = h["phases"]
print(" ".join(f'{a["phase"]}={(b["at_unix_ms"] - a["at_unix_ms"]) / 1000:.2f}' for a, b in zip(p, p[1:])))
PY
  [ -n "${KEEP_HISTORY:-}" ] && "$ug" --state-dir "$work/state" history --run 1 >"$KEEP_HISTORY" 2>&1
  for s in "$top"/@upgrade-guard/*; do [ -d "$s" ] && btrfs subvolume delete "$s" >/dev/null; done
  btrfs subvolume delete "$top/@" >/dev/null
done

best() { sort -n "$work/$1" | head -1; }
plain=$(best plain); guarded=$(best guarded); full=$(best full)
post=$(tail -1 "$work/phases" | tr ' ' '\n' | sed -n 's/^post-checks=//p')
echo
echo "== apt-get -y upgrade of $pending pending bookworm updates ($debs_mb MB of .debs), $variant root on btrfs, $(nproc) cores, best of $runs"
printf '%-34s %8.2f s\n' "unguarded (chroot apt-get)" "$plain"
printf '%-34s %8.2f s\n' "guarded (upgrade-guard run)" "$guarded"
printf '%-34s %8.2f s\n' "full check of the upgraded root" "$full"
echo "phases of the last guarded run:  $(tail -1 "$work/phases")"
awk -v g="$guarded" -v p="$plain" -v post="$post" -v f="$full" 'BEGIN {
  printf "ratio guarded / unguarded          %6.2fx  (target <= 1.3)\n", g / p
  printf "post-checks / full check           %6.1f%%  (target <= 10%%)\n", 100 * post / f
}'
