#!/usr/bin/env bash
# The main job: build libsiterec and run the DR drill (scripts/drill.sh): a VM
# protected, replicated while it writes, drilled (test failover and cleanup),
# failed over without loss, failed back with minimize downtime and protected
# again, each step checked. Options go to the drill: --dir DIR (keep the files),
# --azure (Azurite instead of a directory target), --size MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -f build/build.ninja ]; then
  meson setup build -Ddefault_library=both >/dev/null
fi
ninja -C build >/dev/null
exec bash scripts/drill.sh build/examples/siterec/siterec "$@"
