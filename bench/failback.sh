#!/usr/bin/env bash
# Failback of a disk with 1% of its 4 KiB blocks changed on the failed-over side:
# minimize downtime against full download of the same pair (the peer), in one
# run. Prints the downtime phases, the bytes written to the on-premises disk and
# the ratios. No timing is asserted; non-zero exit only when a step failed or the
# disks did not end equal.
#
# Usage: bench/failback.sh [path/to/bench_failback]
# Environment: FAILBACK_SIZE_MIB (default 2048), FAILBACK_PERCENT (default 1),
#              TMPDIR (where the disks go, default /tmp).
set -euo pipefail
bin=${1:-build/bench/bench_failback}
[ -x "$bin" ] || { echo "failback.sh: $bin not found (build it first)" >&2; exit 2; }
exec "$bin" "${FAILBACK_SIZE_MIB:-2048}" "${FAILBACK_PERCENT:-1}" "${TMPDIR:-/tmp}"
