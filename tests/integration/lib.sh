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

# Azurite over HTTPS on 127.0.0.1 with a self-signed certificate ($dir/cert.pem:
# give it with --ca), data in $dir/azurite: sets az_port and az_pid (the caller's
# cleanup stops it with "$root/scripts/azurite.sh" stop) and exports the
# emulator's well-known account key. Returns 1 (saying why) when it cannot.
azurite_https() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 ||
    { echo "FAIL: openssl could not make a certificate"; return 1; }
  read -r az_port az_pid < <("$root/scripts/azurite.sh" start "$dir/azurite" "$dir/cert.pem" "$dir/key.pem") || true
  [ -n "${az_port:-}" ] || { echo "FAIL: Azurite did not start (it is installed by scripts/setup.sh)"; return 1; }
  export SITEREC_ACCOUNT_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
}
