#!/usr/bin/env bash
# Snapshot benchmarks: create time for a 200 MiB vs a 2 GiB root (ratio ~1: a btrfs snapshot
# does not copy), rollback time, /boot capture time. Needs root (loop devices).
#   tests/bench/snapshots.sh [BUILD_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
if [ ! -d "$build" ]; then
  cmake -S "$here" -B "$build" -G Ninja >/dev/null
fi
ninja -C "$build" -j2 bench_snapshots >/dev/null
exec "$build/tests/bench/bench_snapshots"
