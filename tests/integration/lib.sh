# Sourced by the integration scripts: a scratch directory removed on exit, and
# check/need helpers that count failures instead of stopping at the first.
set -uo pipefail
dir=$(mktemp -d "${TMPDIR:-/tmp}/siterec-it-XXXXXX")
trap 'rm -rf "$dir"' EXIT
fails=0
check() {  # expected-exit description command...
  local want=$1 what=$2; shift 2
  "$@" >"$dir/out" 2>&1; local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"; cat "$dir/out"; fails=$((fails + 1))
  else
    echo "ok: $what"
  fi
}
need() { grep -q -- "$1" "$dir/out" || { echo "FAIL: output lacks '$1'"; cat "$dir/out"; fails=$((fails + 1)); }; }
finish() { echo "$fails failures"; [ "$fails" -eq 0 ]; }
