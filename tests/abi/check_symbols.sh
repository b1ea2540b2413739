#!/usr/bin/env bash
# ABI guard: every symbol the shared library exports carries the siterec_ prefix
# and is listed in the version script; every symbol of the version script is
# exported; every SITEREC_API function declared in the public headers is in the
# version script. Usage: check_symbols.sh LIBSO MAPFILE INCLUDE_DIR
set -euo pipefail
so=$1 map=$2 inc=$3
fail=0
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}' | sed 's/@.*//' | sort -u)
# version node names appear as absolute symbols ("A"): they are not functions
mapped=$(sed -e 's#/\*.*\*/##' "$map" | grep -oE '^[[:space:]]*siterec_[A-Za-z0-9_]+;' | tr -d ' \t;' | sort -u)
declared=$(grep -h 'SITEREC_API' "$inc"/siterec/*.h | grep -v '#define' | grep -oE 'siterec_[A-Za-z0-9_]+\(' | tr -d '(' | sort -u)

bad_prefix=$(echo "$exported" | grep -v '^siterec_' || true)
if [ -n "$bad_prefix" ]; then echo "exported without siterec_ prefix:"; echo "$bad_prefix"; fail=1; fi
not_in_map=$(comm -23 <(echo "$exported") <(echo "$mapped"))
if [ -n "$not_in_map" ]; then echo "exported but not in $map:"; echo "$not_in_map"; fail=1; fi
not_exported=$(comm -13 <(echo "$exported") <(echo "$mapped"))
if [ -n "$not_exported" ]; then echo "in the version script but not exported (not implemented?):"; echo "$not_exported"; fail=1; fi
undeclared=$(comm -13 <(echo "$mapped") <(echo "$declared"))
if [ -n "$undeclared" ]; then echo "declared SITEREC_API in a header but not in the version script:"; echo "$undeclared"; fail=1; fi
grep -q 'local:' "$map" && grep -qE '^[[:space:]]*\*;' "$map" || { echo "version script must end in 'local: *;'"; fail=1; }
grep -q '^SITEREC_1.0' "$map" || { echo "version script lacks node SITEREC_1.0"; fail=1; }
# every exported symbol carries a version node
unversioned=$(nm -D --defined-only --with-symbol-versions "$so" 2>/dev/null | awk '$2 ~ /^[TDBRVW]$/ && $3 !~ /@/ {print $3}' || true)
if [ -n "$unversioned" ]; then echo "exported without a version node:"; echo "$unversioned"; fail=1; fi
n=$(echo "$exported" | wc -l)
[ $fail -eq 0 ] && echo "ok: $n exported symbols, all prefixed, versioned and in the map"
exit $fail
