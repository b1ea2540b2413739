#!/usr/bin/env bash
# Installs every system dependency of libsiterec on a fresh Debian 12 machine.
# Idempotent and quiet when everything is already there.
set -euo pipefail

PKGS=(
  build-essential meson ninja-build pkg-config
  libcurl4-openssl-dev libmbedtls-dev libcjson-dev libxxhash-dev libcmocka-dev
  abigail-tools valgrind qemu-utils rsync bc clang libclang-rt-14-dev
  nodejs npm nginx btrfs-progs doxygen
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# nodejs may come from a non-Debian install that already provides node/npm.
filtered=()
for p in "${missing[@]}"; do
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  filtered+=("$p")
done

if [ "${#filtered[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${filtered[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${filtered[@]}" >/dev/null
fi

# Azurite, the Azure Storage emulator the tests run against: pinned by
# package.json and package-lock.json, installed into node_modules/.
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$root/node_modules/.bin/azurite-blob" ] ||
   [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
  echo "setup: installing Azurite (npm ci)"
  (cd "$root" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
