#!/usr/bin/env bash
# Recovery point objective of the replication layer, measured end to end with the
# CLI: 4 VMs, each a 256 MiB raw data disk plus a 16 MiB OS disk, each with a
# `siterec workload` writing random 4 KiB blocks at 10 MB/s through the journal (the
# journal holds both disks; the workload picks one of the two at random per write)
# and a `siterec replicate --follow` shipping to ONE Azurite (HTTPS, self-signed
# certificate given with --ca). After every VM's initial replication,
# `siterec status` is sampled once a second for each VM over DURATION seconds; the
# age of its newest recovery point (now - cut time) is the RPO at that instant.
# Prints the largest age seen across VMs, first with the 30 s policy (goal <= 35 s),
# then in continuous mode (interval 0, goal <= 5 s), and each VM's achieved rate.
# The 30 s policy runs with checkpoints every CHECKPOINT seconds (default 2; 0:
# none): the cycle at the tick then has only the writes since the last one to ship.
#   bench/rpo.sh [SITEREC_BINARY [DURATION [CHECKPOINT]]]   (DURATION: seconds, default 300)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/examples/siterec/siterec}
dur=${2:-${SITEREC_BENCH_RPO_SECONDS:-300}}
ckpt=${3:-2}
nvm=4 rate=10 data_mib=256 os_mib=16
command -v openssl >/dev/null || { echo "rpo.sh: openssl missing" >&2; exit 1; }
[ -x "$bin" ] || { echo "rpo.sh: $bin missing (build first)" >&2; exit 1; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/siterec-bench-rpo-XXXXXX")
azpid=
pids=()
stop_pids() {  # TERM each started process by its PID, then wait for it
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_pids
  [ -n "$azpid" ] && bash "$root/scripts/azurite.sh" stop "$azpid"
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
read -r port azpid < <(bash "$root/scripts/azurite.sh" start "$dir/azurite" "$dir/cert.pem" "$dir/key.pem")
export SITEREC_ACCOUNT_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# run_mode INTERVAL LABEL GOAL CHECKPOINT
run_mode() {
  local iv=$1 label=$2 goal=$3 ck=$4 m=$dir/m$1 i
  local url=https://127.0.0.1:$port/devstoreaccount1/rpo$1
  mkdir -p "$m"
  for i in $(seq 1 $nvm); do
    truncate -s ${os_mib}M "$m/os$i.img"; truncate -s ${data_mib}M "$m/data$i.img"
    "$bin" protect "$url" "vm$i" "$m/s$i" --disk "os:$m/os$i.img:os" --disk "data:$m/data$i.img" \
      --interval "$iv" --checkpoint "$ck" --ca "$dir/cert.pem" >"$m/protect$i.out"
  done
  for i in $(seq 1 $nvm); do
    "$bin" replicate "$m/s$i" --follow >"$m/repl$i.out" 2>"$m/repl$i.err" &
    pids+=($!)
  done
  # the window starts once every VM has its initial point
  local t0=$SECONDS
  for i in $(seq 1 $nvm); do
    until grep -q '^initial:' "$m/repl$i.out"; do
      if [ $((SECONDS - t0)) -gt 600 ] || ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
        echo "rpo.sh: vm$i: no initial replication" >&2; cat "$m/repl$i.err" >&2; exit 1
      fi
      sleep 0.2
    done
  done
  # the workloads start once every VM is protected (see doc/benchmarks.md)
  for i in $(seq 1 $nvm); do
    "$bin" workload "$m/s$i/journal" --disk "os:$m/os$i.img:$os_mib" \
      --disk "data:$m/data$i.img:$data_mib" --rate $rate --seed "$i" \
      >"$m/wl$i.out" 2>"$m/wl$i.err" &
    pids+=($!)
  done
  sleep 1
  echo "$label: initial replication of $nvm VMs done in $((SECONDS - t0)) s; sampling for $dur s" >&2
  : >"$m/ages"
  local end=$((SECONDS + dur)) next
  next=$(date +%s.%N)
  while [ $SECONDS -lt $end ]; do
    local spids=()
    for i in $(seq 1 $nvm); do
      { "$bin" status "$m/s$i" 2>>"$m/status.err" |
          sed -n "s/^last point [0-9]* at .*, age \([0-9.]*\) s$/vm$i \1/p" >>"$m/ages"; } &
      spids+=($!)
    done
    wait "${spids[@]}" || true
    next=$(echo "$next + 1" | bc -l)
    local left
    left=$(echo "$next - $(date +%s.%N)" | bc -l)
    [ "$(echo "$left > 0" | bc -l)" = 1 ] && sleep "$left"
  done
  # stop the workloads first (their summaries), then the replicators
  local p
  for p in "${pids[@]:$nvm}"; do kill -TERM "$p"; done
  for p in "${pids[@]:$nvm}"; do wait "$p" || true; done
  stop_pids
  local n max per
  n=$(wc -l <"$m/ages")
  max=$(awk 'BEGIN { m = -1 } $2 > m { m = $2 } END { print m }' "$m/ages")
  per=$(awk '{ if (!($1 in m) || $2 > m[$1]) m[$1] = $2 } END { for (v in m) print v " " m[v] " s" }' "$m/ages" |
        sort | paste -sd, - | sed 's/,/, /g')
  echo "rpo $label: max $max s over $dur s ($nvm VMs x $rate MB/s, Azurite, checkpoint ${ck} s) goal <= $goal"
  echo "  samples $n; max per VM: $per"
  for i in $(seq 1 $nvm); do
    echo "  vm$i $(sed -n 's/^workload: .* in \([0-9.]*\) s, \([0-9.]*\) MB\/s.*/\2 MB\/s achieved over \1 s/p' "$m/wl$i.out");" \
      "points $(grep -c '^cycle: point' "$m/repl$i.out") after the initial," \
      "batches applied $(grep -c '^applied:' "$m/repl$i.out")," \
      "retries $(grep -c 'retry in' "$m/repl$i.err")"
  done
  [ -s "$m/status.err" ] && { echo "  status errors:"; sort "$m/status.err" | uniq -c | head -n 5; }
  return 0
}

run_mode 30 30s-policy 35 "$ckpt"
run_mode 0 continuous 5 0
