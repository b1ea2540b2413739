#!/usr/bin/env bash
# Runs the benchmarks in bench/: each measures libsiterec and a peer in the same
# run and prints the ratio. Usage: scripts/bench.sh [tracker|dlog|hashscan|disk|upload]...
# (upload is not in the default set: it moves 1 GiB through Azurite several times)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -f build/build.ninja ] || meson setup build -Ddefault_library=both >/dev/null
ninja -C build >/dev/null
which=${*:-tracker dlog hashscan disk}
for b in $which; do
  echo "== bench $b"
  case $b in
    hashscan) bash bench/hashscan.sh build/bench/bench_hashscan ;;
    disk) bash bench/disk.sh build/bench/bench_disk ;;
    upload) bash bench/upload.sh build/bench/bench_upload ;;
    *) "build/bench/bench_$b" ;;
  esac
done
