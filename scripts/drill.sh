#!/usr/bin/env bash
# The DR drill: one VM through the whole life of its protection, with the
# `siterec` command on a directory target (or Azurite with --azure):
#   protect -> a workload writes while replication ships points -> a drill (test
#   failover, isolated, while replication goes on) and its cleanup -> a planned
#   failover (the source shut down, nothing lost, checked) -> commit -> the
#   failed-over VM writes -> failback with minimize downtime (checked) -> commit
#   -> reprotect (only differing blocks) -> replication verified.
# Usage: scripts/drill.sh SITEREC_BINARY [--dir DIR] [--azure] [--size MiB]
set -euo pipefail
bin=$(realpath "$1"); shift
root=$(cd "$(dirname "$0")/.." && pwd)
dir="" azure=0 size=64
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --azure) azure=1; shift ;;
    --size) size=$2; shift 2 ;;
    *) echo "usage: drill.sh SITEREC [--dir DIR] [--azure] [--size MiB]" >&2; exit 2 ;;
  esac
done
keep=1
[ -z "$dir" ] && { dir=$(mktemp -d "${TMPDIR:-/tmp}/siterec-drill-XXXXXX"); keep=0; }
mkdir -p "$dir"
dir=$(realpath "$dir")
az_pid="" wl_pid=""
cleanup() {
  [ -n "$wl_pid" ] && { kill -TERM "$wl_pid" 2>/dev/null || true; wait "$wl_pid" 2>/dev/null || true; }
  [ -n "$az_pid" ] && "$root/scripts/azurite.sh" stop "$az_pid"
  [ "$keep" -eq 0 ] && rm -rf "$dir"
  return 0
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
run() { printf '$ siterec %s\n' "$*" | sed "s|$dir|\$DIR|g"; "$bin" "$@"; }
same() {
  "$bin" disk compare "$1" "$2" >/dev/null || { echo "drill: $1 differs from $2" >&2; exit 1; }
  echo "   $(basename "$1") = $(basename "$2")"
}

ca=()
if [ "$azure" -eq 1 ]; then
  # Azurite over HTTPS with a self-signed certificate (the CLI refuses plain http)
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
  read -r port az_pid < <("$root/scripts/azurite.sh" start "$dir/azurite" "$dir/cert.pem" "$dir/key.pem")
  export SITEREC_ACCOUNT_KEY="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
  url="https://127.0.0.1:$port/devstoreaccount1/drill"
  ca=(--ca "$dir/cert.pem")
  out=() get=1
else
  url="file://$dir/target"
  out=(--disk-dir "$dir/failover") get=0
fi
st=$dir/state hv=$dir/hypervisor
mkdir -p "$hv" "$dir/target"
net=(--nic corp/app@10.1.0.4 --map corp=vnet-dr:app,db --vm-dir "$hv" --os Linux)
truncate -s "${size}M" "$dir/os.img"
truncate -s "$((size / 2))M" "$dir/data.img"
qemu-io -f raw -c "write -P 0x5a 0 4M" "$dir/os.img" >/dev/null 2>&1 ||
  head -c 4194304 /dev/urandom | dd of="$dir/os.img" conv=notrunc status=none

start_workload() {  # the VM: random 4 KiB writes through its journal
  "$bin" workload "$1" --disk "os:$2:$size" --disk "data:$3:$((size / 2))" --rate 2 $4 \
    >"$dir/wl.out" 2>"$dir/wl.err" &
  wl_pid=$!
  for _ in $(seq 1 100); do grep -q "^workload: writing" "$dir/wl.err" && return; sleep 0.1; done
  echo "drill: the workload did not start" >&2; cat "$dir/wl.err" >&2; exit 1
}

step "1. protect the VM (two disks, 30 s policy) and replicate while it writes"
run protect "$url" vm1 "$st" --disk "os:$dir/os.img:os" --disk "data:$dir/data.img" --interval 30 "${ca[@]}"
start_workload "$st/journal" "$dir/os.img" "$dir/data.img" ""
run replicate "$st" --cycles 3 --apply
run status "$st"
run points "${ca[@]}" "$url" vm1

step "2. DR drill: test failover from the latest point (isolated; replication goes on), then cleanup"
run failover "$url" vm1 --type test "${out[@]}" "${net[@]}" --test-network drill-net/sandbox "${ca[@]}"
echo "   the drill VM: $(tr -d '\n\t ' < "$hv/vm1-test.vm.json" | cut -c1-160)..."
run replicate "$st" --cycles 1
run cleanup-test "$url" vm1 --vm-dir "$hv" "${ca[@]}"

step "3. planned failover: the source is shut down first, its last writes shipped"
run failover "$url" vm1 --type planned --state-dir "$st" \
  --shutdown-cmd "kill -TERM $wl_pid; while kill -0 $wl_pid 2>/dev/null; do sleep 0.05; done" \
  "${out[@]}" "${net[@]}" "${ca[@]}"
wait "$wl_pid" 2>/dev/null || true; wl_pid=""
if [ "$get" -eq 1 ]; then
  run store "${ca[@]}" get "$url/vm1/failover-disks/os" "$dir/os-fo.vhd" >/dev/null
  run store "${ca[@]}" get "$url/vm1/failover-disks/data" "$dir/data-fo.vhd" >/dev/null
  fo_os=$dir/os-fo.vhd fo_data=$dir/data-fo.vhd
else
  fo_os=$dir/failover/os.vhd fo_data=$dir/failover/data.vhd
fi
echo "   no data lost:"; same "$fo_os" "$dir/os.img"; same "$fo_data" "$dir/data.img"
run commit "$url" vm1 "${ca[@]}"

step "4. the failed-over VM runs and writes; fail back with minimize downtime"
jr=()
if [ "$get" -eq 0 ]; then
  run workload "$dir/fo-journal" --create --disk "os:$fo_os:$size" --disk "data:$fo_data:$((size / 2))" \
    --writes 300 --seed 7
  jr=(--journal "$dir/fo-journal")
fi
run failback "$url" vm1 --mode minimize-downtime --disk "os:$dir/os.img" --disk "data:$dir/data.img" \
  "${jr[@]}" --shutdown-cmd true --vm-dir "$hv" "${ca[@]}"
[ "$get" -eq 1 ] || { echo "   back on premises:"; same "$dir/os.img" "$fo_os"; same "$dir/data.img" "$fo_data"; }
run commit "$url" vm1 --vm-dir "$hv" "${ca[@]}"

step "5. reprotect: replication again, only the blocks that differ are written"
run reprotect "$url" vm1 --state-dir "$st" "${ca[@]}"
run replicate "$st" --cycles 1
run verify "$st"
printf '\ndrill done: protected, drilled, failed over without loss, failed back, protected again\n'
