#!/bin/bash
# siterec protect/replicate/status/verify: two processes, `siterec workload` as the
# VM writing through STATE_DIR/journal while `siterec replicate` cycles; after the
# workload stops, one more cycle and `siterec verify` finds every replica equal to
# its image (disk b is a fixed VHD the workload writes through the disk layer). A
# second VM whose OS disk is a dynamic VHDX (read only, no writer).
# The flow runs on a file:// target, then on Azurite over HTTPS (self-signed
# certificate, --ca). Also the error cases. $1: the siterec binary.
bin=$1
. "$(dirname "$0")/lib.sh"
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || { echo "FAIL: qemu-utils missing (scripts/setup.sh installs it)"; exit 1; }
root=${SITEREC_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
az_pid="" wl_pid=""
cleanup() {
  [ -n "$wl_pid" ] && { kill -TERM "$wl_pid" 2>/dev/null; wait "$wl_pid" 2>/dev/null; }
  [ -n "$az_pid" ] && "$root/scripts/azurite.sh" stop "$az_pid"
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }

# flow TAG URL [--ca FILE]: the whole scenario into URL, state and images under $dir/TAG.
flow() {
  local tag=$1 url=$2; shift 2
  local ca=("$@") d=$dir/$tag
  local st=$d/state
  mkdir -p "$d"
  # The journal holds every protected disk (the OS disk too), so the workload
  # writes all three; the excluded disk is never logged nor shipped.
  truncate -s 16M "$d/os.img"; truncate -s 8M "$d/a.img"; truncate -s 4M "$d/b.raw"
  truncate -s 4M "$d/x.img"
  qemu-io -f raw -c 'write -P 0x11 0 1M' "$d/os.img" >/dev/null
  qemu-io -f raw -c 'write -P 0x22 1M 64k' "$d/a.img" >/dev/null
  qemu-io -f raw -c 'write -P 0x55 3M 64k' "$d/b.raw" >/dev/null
  "$bin" disk convert "$d/b.raw" "$d/b.vhd" --format vhd >/dev/null || fail "$tag: fixed VHD"
  local disks=(--disk "os:$d/os.img:os" --disk "a:$d/a.img" --disk "b:$d/b.vhd:data"
               --disk "x:$d/x.img:data:exclude")

  check 0 "$tag: protect" "$bin" protect "$url" vm1 "$st" "${disks[@]}" --interval 30 "${ca[@]}"
  need "journal $st/journal disks: os a b$"
  [ -f "$st/cli-vm.json" ] || fail "$tag: no cli-vm.json"
  check 2 "$tag: protect twice" "$bin" protect "$url" vm1 "$st" "${disks[@]}" "${ca[@]}"
  need "already protected"
  check 2 "$tag: protect the same VM from another state dir" \
    "$bin" protect "$url" vm1 "$d/state2" "${disks[@]}" "${ca[@]}"
  need "already protected"
  check 0 "$tag: status before the initial replication" "$bin" status "$st"
  need "^state initial"

  "$bin" workload "$st/journal" --disk "os:$d/os.img:16" --disk "a:$d/a.img:8" --disk "b:$d/b.vhd:4" \
    --rate 4 --seed 11 >"$d/wl.out" 2>"$d/wl.err" &
  wl_pid=$!
  for _ in $(seq 1 100); do grep -q "^workload: writing" "$d/wl.err" && break; sleep 0.1; done
  grep -q "^workload: writing" "$d/wl.err" || { fail "$tag: workload did not start"; cat "$d/wl.err"; }
  sleep 0.5
  check 0 "$tag: replicate --cycles 3 while the workload writes" "$bin" replicate "$st" --cycles 3
  need "^initial: point "
  [ "$(grep -c '^cycle: point [0-9]* crash shipped [0-9]* bytes' "$dir/out")" -eq 3 ] ||
    fail "$tag: not 3 cycle lines"
  grep -q "shipped [1-9]" "$dir/out" || fail "$tag: no cycle shipped anything"
  sleep 0.3
  kill -TERM "$wl_pid"; wait "$wl_pid"; local rc=$?; wl_pid=""
  [ "$rc" -eq 0 ] || { fail "$tag: workload exit $rc"; cat "$d/wl.err"; }
  grep -q "rotations served" "$d/wl.out" || fail "$tag: no workload summary"

  check 0 "$tag: replicate --cycles 1 after the workload stopped" "$bin" replicate "$st" --cycles 1
  need "^cycle: point "
  check 0 "$tag: verify" "$bin" verify "$st"
  need "^os: equal"; need "^a: equal"; need "^b: equal"
  grep -q "^x:" "$dir/out" && fail "$tag: the excluded disk was verified"
  check 0 "$tag: status" "$bin" status "$st"
  need "^state protected$"
  local n
  n=$(sed -n 's/^points \([0-9]*\)$/\1/p' "$dir/out")
  [ "${n:-0}" -ge 4 ] || fail "$tag: $n points, expected 4 or more"
  need "^last point [0-9]* at .*, age [0-9.]* s$"
  # nothing written since the last cut: only the active logs' headers are pending
  n=$(sed -n 's/^pending bytes \([0-9]*\)$/\1/p' "$dir/out")
  [ -n "$n" ] && [ "$n" -lt 4096 ] || fail "$tag: pending bytes '$n' after the last cycle"
  # cycles ship logs; --apply brings the replicas to the newest point
  check 0 "$tag: replicate --cycles 1 --apply" "$bin" replicate "$st" --cycles 1 --apply
  need "^apply: the replicas hold point [1-9]"
  check 0 "$tag: status after apply" "$bin" status "$st"
  need "^waiting bytes 0$"
  # writes that bypassed the journal (tracking lost): resync writes what differs
  printf 'bypass' | dd of="$d/a.img" bs=1 seek=70000 conv=notrunc status=none
  check 1 "$tag: verify sees the bypassed write" "$bin" verify "$st"
  need "^a: differs at"
  check 0 "$tag: resync" "$bin" resync "$st"
  need "^resync: point [0-9]* crash shipped 65536 bytes"
  check 0 "$tag: verify after the resync" "$bin" verify "$st"
  need "^a: equal"
  check 0 "$tag: points" "$bin" points "${ca[@]}" "$url" vm1
  [ "$(grep -c ' crash ' "$dir/out")" -ge 4 ] || fail "$tag: points lists fewer than 4"
  need "vm1/disks/os@"
  local first
  first=$(awk 'NR == 2 { print $1 }' "$dir/out")
  check 1 "$tag: verify --point of the first point differs from the image" \
    "$bin" verify "$st" --point "$first"
  need "differs at"
  check 2 "$tag: verify --point of a missing point" "$bin" verify "$st" --point 999999
  check 2 "$tag: replicate --cycles with --follow" "$bin" replicate "$st" --cycles 1 --follow

  # --follow, continuous policy: cycles back to back, a point only when something
  # was written (vm2 has no writer: the initial point only); status meanwhile is
  # read from the target (the replicator holds the VM's leases).
  check 0 "$tag: protect vm2 (a dynamic VHDX OS disk)" "$bin" protect "$url" vm2 "$d/s2" \
    --disk "sys:$d/os.vhdx:os" --disk "data:$d/c.img" --interval 0 --generation 1 "${ca[@]}"
  "$bin" replicate "$d/s2" --follow >"$d/follow.out" 2>"$d/follow.err" &
  local fpid=$!
  for _ in $(seq 1 100); do grep -q '^initial:' "$d/follow.out" && break; sleep 0.1; done
  sleep 1
  check 0 "$tag: status while replicate --follow runs" "$bin" status "$d/s2"
  need "^replicator another process"; need "^state protected$"; need "^points 1$"
  check 2 "$tag: a second replicate while --follow runs" "$bin" replicate "$d/s2" --cycles 1
  need "another replicator"
  kill -TERM "$fpid"; wait "$fpid"; rc=$?
  [ "$rc" -eq 0 ] || { fail "$tag: replicate --follow exit $rc"; cat "$d/follow.err"; }
  grep -q "^initial: point 1 " "$d/follow.out" && ! grep -q "^cycle" "$d/follow.out" ||
    { fail "$tag: replicate --follow output"; cat "$d/follow.out" "$d/follow.err"; }
  check 0 "$tag: replicate --cycles 1 of vm2 with nothing written" "$bin" replicate "$d/s2" --cycles 1
  need "^cycle: nothing written, no point$"
  check 0 "$tag: verify vm2" "$bin" verify "$d/s2"
  need "^sys: equal (33554432 bytes"; need "^data: equal"
}

check 2 "usage" "$bin" protect
need "usage: siterec protect"
check 2 "bad --disk syntax" "$bin" protect "file://$dir/t" vm1 "$dir/s" --disk nocolon
need "usage: siterec protect"
check 2 "--disk without a path" "$bin" protect "file://$dir/t" vm1 "$dir/s" --disk "a:"
check 2 "bad --interval" "$bin" protect "file://$dir/t" vm1 "$dir/s" --disk "a:/dev/null:os" --interval 60
check 2 "missing image" "$bin" protect "file://$dir/t" vm1 "$dir/s" --disk "a:$dir/nope.img:os"
check 2 "replicate on a missing STATE_DIR" "$bin" replicate "$dir/missing"
need "not a state directory"
check 2 "status on a missing STATE_DIR" "$bin" status "$dir/missing"
check 2 "verify on a missing STATE_DIR" "$bin" verify "$dir/missing"
check 2 "replicate with an unknown option" "$bin" replicate "$dir/missing" --frobnicate

# The read-only VHDX OS disk and data disk of vm2, shared by both flows.
qemu-img create -q -f vhdx "$dir/os.vhdx" 32M
qemu-io -f vhdx -c 'write -P 0x11 0 1M' -c 'write -P 0x33 20M 64k' "$dir/os.vhdx" >/dev/null
truncate -s 4M "$dir/c.img"
qemu-io -f raw -c 'write -P 0x44 2M 8k' "$dir/c.img" >/dev/null
for t in file az; do mkdir -p "$dir/$t"; ln -s "$dir/os.vhdx" "$dir/$t/os.vhdx"; ln -s "$dir/c.img" "$dir/$t/c.img"; done

mkdir -p "$dir/target"
flow file "file://$dir/target"

azurite_https || { fails=$((fails + 1)); finish; exit; }
flow az "https://127.0.0.1:$az_port/devstoreaccount1/clirepl" --ca "$dir/cert.pem"
finish
