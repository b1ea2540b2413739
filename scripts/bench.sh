#!/usr/bin/env bash
# Runs the benchmarks in bench/: each measures libsiterec and a peer in the same
# run and prints the ratio. Usage: scripts/bench.sh [tracker|dlog|hashscan|disk|failback|upload|rpo]...
# (upload and rpo are not in the default set: upload moves 1 GiB through Azurite
# several times; rpo runs 4 VMs against Azurite for 2 x 300 s, or
# SITEREC_BENCH_RPO_SECONDS each)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
[ -f build/build.ninja ] || meson setup build -Ddefault_library=both >/dev/null
ninja -C build >/dev/null
which=${*:-tracker dlog hashscan disk failback}
for b in $which; do
  echo "== bench $b"
  case $b in
    hashscan) bash bench/hashscan.sh build/bench/bench_hashscan ;;
    disk) bash bench/disk.sh build/bench/bench_disk ;;
    failback) bash bench/failback.sh build/bench/bench_failback ;;
    upload) bash bench/upload.sh build/bench/bench_upload ;;
    rpo) bash bench/rpo.sh build/examples/siterec/siterec ;;
    *) "build/bench/bench_$b" ;;
  esac
done
