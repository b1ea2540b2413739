#!/usr/bin/env bash
# ABI guard: compare the built library with the baseline in tests/abi/ using
# libabigail. New functions are fine; any change to what the baseline has fails,
# including a layout change of a public struct (abidiff rates those as plain
# "ABI change", status 4, not as "incompatible", so status 4 fails here too).
# A deliberate, compatible change (a field appended to a versioned options struct)
# is recorded by updating the baseline, with its reason in CHANGELOG.md.
# Usage: check_abidiff.sh LIBSO BASELINE INCLUDE_DIR [--update]
# Updating the baseline is a deliberate act: write the reason in CHANGELOG.md.
set -uo pipefail
so=$1 base=$2 inc=$3
if [ "${4:-}" = "--update" ]; then
  abidw --headers-dir "$inc/siterec" --no-corpus-path --out-file "$base" "$so" && echo "baseline written: $base"
  exit $?
fi
if [ ! -f "$base" ]; then echo "no baseline $base"; exit 1; fi
out=$(abidiff --headers-dir2 "$inc/siterec" --no-added-syms "$base" "$so" 2>&1); rc=$?
# abidiff exit status is a bit field: 1 error, 2 usage error, 4 ABI change, 8 incompatible change
# (--no-added-syms: added functions are not reported, so any report is a change)
if [ $rc -ne 0 ]; then
  echo "abidiff reports a change of the ABI against the baseline (status $rc):"; echo "$out"; exit 1
fi
echo "ok: ABI compatible with $(basename "$base")"
exit 0
