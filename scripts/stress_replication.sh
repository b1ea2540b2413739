#!/bin/sh
# Stress the crash-resume test of the replication layer: ROUNDS kill rounds per
# target (file:// and Azurite) instead of the 25 of a normal test run.
# Usage: scripts/stress_replication.sh [BUILD_DIR] [ROUNDS]   (defaults: build, 500)
set -eu
build=${1:-build}
rounds=${2:-500}
bin="$build/tests/unit/test_replication"
[ -x "$bin" ] || { echo "stress_replication: $bin not found (build first)" >&2; exit 1; }
echo "stress_replication: $rounds crash rounds per target"
SITEREC_SOURCE_ROOT=${SITEREC_SOURCE_ROOT:-$(cd "$(dirname "$0")/.." && pwd)} \
	SITEREC_TEST_CRASH_ROUNDS=$rounds CMOCKA_TEST_ABORT=1 exec "$bin"
