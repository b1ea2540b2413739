#!/usr/bin/env bash
# Start and stop the Azurite blob emulator for tests and the demo (loopback only).
#   scripts/azurite.sh start DIR [CERT.pem KEY.pem]
#       starts azurite-blob on 127.0.0.1 on a free port with its data in DIR
#       (HTTPS when a certificate and key are given), waits until it listens,
#       and prints one line "PORT PID"
#   scripts/azurite.sh stop PID
#       stops that process (by PID only) and waits for it
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/node_modules/.bin/azurite-blob
case "${1:-}" in
start)
  dir=${2:?usage: azurite.sh start DIR [CERT KEY]}
  [ -x "$bin" ] || { echo "azurite.sh: $bin missing: run scripts/setup.sh" >&2; exit 1; }
  mkdir -p "$dir"
  tls=()
  [ -n "${3:-}" ] && tls=(--cert "$3" --key "$4")
  # port 0: the kernel picks a free port and Azurite reports it. The output file
  # exists before the background start, so the poll below never races its creation.
  : >"$dir/azurite.out"
  "$bin" --blobHost 127.0.0.1 --blobPort 0 --location "$dir" --silent --disableTelemetry \
    "${tls[@]}" >"$dir/azurite.out" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    port=$(sed -n 's/.*successfully listens on https\{0,1\}:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/azurite.out" | head -n 1 || true)
    if [ -n "$port" ]; then echo "$port $pid"; exit 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "azurite.sh: azurite exited:" >&2; cat "$dir/azurite.out" >&2; exit 1; }
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  echo "azurite.sh: azurite did not start in 20 s" >&2; cat "$dir/azurite.out" >&2; exit 1
  ;;
stop)
  pid=${2:?usage: azurite.sh stop PID}
  kill "$pid" 2>/dev/null || exit 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  ;;
*)
  echo "usage: azurite.sh start DIR [CERT KEY] | stop PID" >&2; exit 2 ;;
esac
