#!/usr/bin/env bash
# Runs every libFuzzer target for SECONDS (default 60) each on a copy of its seed
# corpus (tests/fuzz/corpus/NAME; the checked-in seeds are never modified) and
# prints the executions of each. Crashes are left in build-fuzz/crashes/: each one
# becomes a regression test in the unit suite.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}; shift || true
bash scripts/setup.sh
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Dbench=false \
    -Ddefault_library=static -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
else
  meson setup --reconfigure build-fuzz >/dev/null
fi
ninja -C build-fuzz >/dev/null
mkdir -p build-fuzz/crashes
targets=${*:-$(find build-fuzz/tests/fuzz -maxdepth 1 -type f -perm -u+x -name 'fuzz_*' | sed 's#.*/fuzz_##' | sort)}
status=0
for t in $targets; do
  work=$(mktemp -d "${TMPDIR:-/tmp}/siterec-fuzz-$t-XXXXXX")
  seeds=tests/fuzz/corpus/$t
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null || true
  log=build-fuzz/fuzz-$t.log
  [ -x "build-fuzz/tests/fuzz/fuzz_$t" ] || { echo "fuzz_$t: no such target"; status=1; continue; }
  if ! "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix=build-fuzz/crashes/"$t"- "$work" >"$log" 2>&1; then
    echo "fuzz_$t: FOUND A CRASH (see $log and build-fuzz/crashes/)"; status=1
  fi
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  [ -z "$execs" ] && execs=$(grep -oE '#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  echo "fuzz_$t: ${execs:-?} executions in ${secs}s"
  rm -rf "$work"
done
exit $status
