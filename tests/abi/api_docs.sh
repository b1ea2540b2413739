#!/usr/bin/env bash
# The API reference builds from the headers without one warning (doc/Doxyfile):
# every public function, struct, member and enum value is documented.
# Usage: api_docs.sh SOURCE_ROOT BUILD_DIR
set -uo pipefail
src=$1 out=$2/api-docs
command -v doxygen >/dev/null || { echo "FAIL: doxygen missing (scripts/setup.sh installs it)"; exit 1; }
rm -rf "$out"
mkdir -p "$out"
log=$( { cat "$src/doc/Doxyfile"; echo "INPUT = $src/include/siterec"; echo "OUTPUT_DIRECTORY = $out"; } |
       doxygen - 2>&1 >/dev/null )
if [ -n "$log" ]; then
  echo "FAIL: doxygen warnings:"; echo "$log"; exit 1
fi
[ -f "$out/html/index.html" ] || { echo "FAIL: no html/index.html"; exit 1; }
echo "ok: API reference in $out/html ($(ls "$out/html" | wc -l) files), no warning"
