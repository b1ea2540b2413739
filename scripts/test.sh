#!/usr/bin/env bash
# Runs every test suite of libsiterec and ends with one line "N passed, N failed".
#   1. installs the system dependencies (scripts/setup.sh)
#   2. build/       default build (shared + static): suites unit, integration, abi, install
#   3. build-asan/  ASan + UBSan build: suites unit, integration
#   4. build/ under valgrind memcheck: suite unit (zero errors, zero leaks)
# Counts are meson tests (each a cmocka program or a scripted check).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0
log() { printf '== %s\n' "$*"; }

# count results of one meson test run from its JSON log
count() {
  local json=$1
  [ -f "$json" ] || { failed=$((failed + 1)); return; }
  read -r p f s < <(python3 - "$json" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result")
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
)
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

configure() {  # dir, extra args...
  local dir=$1; shift
  if [ -d "$dir" ] && [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null || return 1
  else
    rm -rf "$dir"
    meson setup "$dir" "$@" >"$root/.setup-$(basename "$dir").log" 2>&1 || { cat "$root/.setup-$(basename "$dir").log"; return 1; }
  fi
  ninja -C "$dir" >"$dir/build-output.log" 2>&1 || { tail -50 "$dir/build-output.log"; return 1; }
}

run() {  # dir, logname, meson test args...
  local dir=$1 name=$2; shift 2
  rm -f "$dir/meson-logs/$name.json"
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" 2>&1 | tail -n 40
  count "$dir/meson-logs/$name.json"
}

log "default build (shared + static)"
if configure build -Ddefault_library=both; then
  run build testlog --suite unit --suite integration --suite abi --suite install
else
  echo "build failed"; failed=$((failed + 1))
fi

log "ASan + UBSan build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if configure build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false \
     -Dc_args=-fno-sanitize-recover=undefined; then
  run build-asan testlog --suite unit --suite integration
else
  echo "sanitizer build failed"; failed=$((failed + 1))
fi
unset ASAN_OPTIONS UBSAN_OPTIONS

log "valgrind memcheck of the unit suite"
if command -v valgrind >/dev/null && [ -f build/build.ninja ]; then
  run build testlog-valgrind --setup valgrind --suite unit
else
  echo "valgrind run impossible"; failed=$((failed + 1))
fi

extra=""
[ "$skipped" -gt 0 ] && extra=", $skipped skipped"
echo "$passed passed, $failed failed$extra"
[ "$failed" -eq 0 ]
