#!/usr/bin/env bash
# The main job: build libsiterec and run the DR drill demo.
# Until the failover layers exist, the demo is the local data path:
# tracked writes -> delta logs -> replica, verified (examples/siterec/demo.c).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -f build/build.ninja ]; then
  meson setup build -Ddefault_library=both >/dev/null
fi
ninja -C build >/dev/null
exec build/examples/siterec/siterec demo "$@"
