#!/usr/bin/env bash
# Builds the SiteRec PowerShell module (and its tests) with the .NET SDK into OUT,
# a directory under the meson build directory; with --test, also runs the xunit
# tests (PowerShell hosted in-process). Nothing is written into the source tree:
# intermediate files go to OUT/artifacts (dotnet --artifacts-path).
#
#   bindings/powershell/build.sh OUT [--test]
#
# OUT/module/SiteRec/ then holds SiteRec.psd1 and SiteRec.dll (Import-Module it).
# NuGet packages are restored once (versions pinned by packages.lock.json, checked
# with --locked-mode) and again only when a project or lock file changes, so later
# builds work offline. A failed restore fails loudly: it is not a skip.
# The tests read SITEREC_LIBRARY (libsiterec.so.1) and SITEREC_SOURCE_ROOT.
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 OUT [--test]" >&2; exit 2; }
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
run_tests=0
[ "${2:-}" = "--test" ] && run_tests=1

if ! command -v dotnet >/dev/null 2>&1; then
  echo "FAIL: dotnet not found: the PowerShell binding needs the .NET SDK 10 (net10.0)" >&2
  exit 1
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 \
       DOTNET_CLI_USE_MSBUILD_SERVER=0 MSBUILDDISABLENODEREUSE=1
art=$out/artifacts
tests=$src/tests/SiteRec.Tests/SiteRec.Tests.csproj
t0=$(date +%s)

# Restore once; again only when an input changed.
stamp=$art/restore.stamp
need_restore=1
if [ -f "$stamp" ]; then
  need_restore=0
  for f in "$src"/Directory.Build.props "$src"/NuGet.Config "$src"/src/SiteRec/SiteRec.csproj \
           "$src"/src/SiteRec/packages.lock.json "$tests" "$src"/tests/SiteRec.Tests/packages.lock.json; do
    [ "$f" -nt "$stamp" ] && need_restore=1
  done
fi
if [ $need_restore = 1 ]; then
  echo "powershell: restoring NuGet packages (pinned by packages.lock.json)"
  if ! dotnet restore "$tests" --locked-mode --configfile "$src/NuGet.Config" --artifacts-path "$art" >"$out/restore.log" 2>&1; then
    cat "$out/restore.log" >&2
    echo "FAIL: NuGet restore failed (nuget.org unreachable and the packages not in ~/.nuget/packages?); see $out/restore.log" >&2
    exit 1
  fi
  mkdir -p "$art" && touch "$stamp"
fi

echo "powershell: building (Release)"
if ! dotnet build "$tests" -c Release --no-restore --artifacts-path "$art" -nologo -v quiet >"$out/build.log" 2>&1; then
  cat "$out/build.log" >&2
  echo "FAIL: dotnet build failed; see $out/build.log" >&2
  exit 1
fi
mod=$out/module/SiteRec
mkdir -p "$mod"
cp "$art/bin/SiteRec/release/SiteRec.dll" "$src/SiteRec.psd1" "$mod/"
echo "powershell: module in $mod ($(( $(date +%s) - t0 )) s)"

if [ $run_tests = 1 ]; then
  : "${SITEREC_LIBRARY:?set SITEREC_LIBRARY to the libsiterec.so.1 to test}"
  export SITEREC_SOURCE_ROOT=${SITEREC_SOURCE_ROOT:-$(cd "$src/../.." && pwd)}
  dotnet test "$tests" -c Release --no-build --no-restore --artifacts-path "$art" \
    --results-directory "$out/test-results" --logger "console;verbosity=normal"
  echo "powershell: tests done ($(( $(date +%s) - t0 )) s in all)"
fi
