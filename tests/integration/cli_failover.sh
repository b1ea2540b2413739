#!/bin/bash
# siterec failover / cleanup-test / change-point / commit / cancel / resume /
# failover-status: a VM protected with `siterec protect`, written by `siterec
# workload`, replicated by `siterec replicate`; then a drill (test failover and
# cleanup, replication going on), an unplanned failover to an older point, a
# change of point and a cancel (replication goes on), and a planned failover
# whose shutdown command stops the workload: its disks equal the source images.
# On a file:// target (disk files), then on Azurite over HTTPS (blobs, an ARM
# template). $1: the siterec binary.
bin=$1
. "$(dirname "$0")/lib.sh"
root=${SITEREC_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
az_pid="" wl_pid=""
cleanup() {
  [ -n "$wl_pid" ] && { kill -TERM "$wl_pid" 2>/dev/null; wait "$wl_pid" 2>/dev/null; }
  [ -n "$az_pid" ] && "$root/scripts/azurite.sh" stop "$az_pid"
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }

start_workload() {  # DIR STATE
  "$bin" workload "$2/journal" --disk "os:$1/os.img:8" --disk "a:$1/a.img:4" --rate 2 --seed "$RANDOM" \
    >"$1/wl.out" 2>"$1/wl.err" &
  wl_pid=$!
  for _ in $(seq 1 100); do grep -q "^workload: writing" "$1/wl.err" && break; sleep 0.1; done
  grep -q "^workload: writing" "$1/wl.err" || { fail "workload did not start"; cat "$1/wl.err"; }
}

stop_workload() {
  kill -TERM "$wl_pid"; wait "$wl_pid"; wl_pid=""
}

# same_disk A B TAG: disk compare of a failover disk with an image (or a blob fetched first).
same_disk() {
  "$bin" disk compare "$1" "$2" >"$dir/cmp" 2>&1 || { fail "$3: $1 differs from $2"; cat "$dir/cmp"; }
}

flow() {
  local tag=$1 url=$2; shift 2
  local ca=("$@") d=$dir/$tag
  local st=$d/state out=$d/out hv=$d/hv
  mkdir -p "$d" "$hv"
  truncate -s 8M "$d/os.img"; truncate -s 4M "$d/a.img"
  local net=(--nic corp/back@10.0.0.5 --map corp=vnet-dr:front,back --vm-dir "$hv" --os Linux)
  local files=()
  [ "$tag" = file ] && files=(--disk-dir "$out")
  check 0 "$tag: protect" "$bin" protect "$url" vm1 "$st" --disk "os:$d/os.img:os" --disk "a:$d/a.img" \
    --interval 30 "${ca[@]}"
  start_workload "$d" "$st"
  check 0 "$tag: replicate" "$bin" replicate "$st" --cycles 2
  stop_workload
  check 0 "$tag: replicate after the workload" "$bin" replicate "$st" --cycles 1
  local p_old
  p_old=$(sed -n 's/^cycle: point \([0-9]*\) .*/\1/p' "$dir/out" | tail -1)
  cp "$d/os.img" "$d/os.old"; cp "$d/a.img" "$d/a.old"

  # the drill
  check 0 "$tag: test failover" "$bin" failover "$url" vm1 --type test "${files[@]}" "${net[@]}" \
    --test-network drill/sn1 --json "${ca[@]}"
  need '"phase":"failed-over"'; need '"vm_name":"vm1-test"'; need "\"point\":$p_old,"
  grep -Eq '"isolated":[[:space:]]*true' "$hv/vm1-test.vm.json" || fail "$tag: drill VM not isolated"
  grep -Eq '"network":[[:space:]]*"drill"' "$hv/vm1-test.vm.json" || fail "$tag: drill VM not on the test network"
  if [ "$tag" = file ]; then
    same_disk "$out/os-test.vhd" "$d/os.img" "$tag drill"
    same_disk "$out/a-test.vhd" "$d/a.img" "$tag drill"
  else
    check 0 "$tag: fetch the drill disk" "$bin" store "${ca[@]}" get "$url/vm1/test-disks/a" "$d/a-test.vhd"
    same_disk "$d/a-test.vhd" "$d/a.img" "$tag drill"
    grep -Eq '"hyperVGeneration":[[:space:]]*"V1"' "$hv/vm1-test.arm.json" || fail "$tag: no ARM template"
  fi
  check 2 "$tag: a second drill is refused" "$bin" failover "$url" vm1 --type test "${files[@]}" "${net[@]}" "${ca[@]}"
  need "test failover already"
  start_workload "$d" "$st"
  check 0 "$tag: replication goes on during the drill" "$bin" replicate "$st" --cycles 1
  stop_workload
  check 0 "$tag: cleanup-test" "$bin" cleanup-test "$url" vm1 --vm-dir "$hv" "${ca[@]}"
  [ -e "$hv/vm1-test.vm.json" ] && fail "$tag: the drill VM is still there"
  [ -e "$out/os-test.vhd" ] && fail "$tag: the drill disk is still there"
  check 0 "$tag: replicate" "$bin" replicate "$st" --cycles 1

  # unplanned to the older point, change to the latest, cancel
  check 0 "$tag: unplanned failover to point $p_old" "$bin" failover "$url" vm1 --type unplanned \
    --point "$p_old" "${files[@]}" "${net[@]}" "${ca[@]}"
  need "failover failed-over: 1 machine (vm1), point $p_old"
  grep -Eq '"subnet":[[:space:]]*"back"' "$hv/vm1.vm.json" || fail "$tag: the subnet of the same name was not kept"
  if [ "$tag" = file ]; then
    same_disk "$out/a.vhd" "$d/a.old" "$tag unplanned"
  else
    check 0 "$tag: fetch the failover disk" "$bin" store "${ca[@]}" get "$url/vm1/failover-disks/a" "$d/a-fo.vhd"
    same_disk "$d/a-fo.vhd" "$d/a.old" "$tag unplanned"
  fi
  check 2 "$tag: replicate is refused after the failover" "$bin" replicate "$st" --cycles 1
  need "failed over"
  check 0 "$tag: change-point latest" "$bin" change-point "$url" vm1 --point latest "${net[@]}" "${ca[@]}"
  [ "$tag" = file ] && same_disk "$out/a.vhd" "$d/a.img" "$tag changed point"
  check 0 "$tag: failover-status" "$bin" failover-status "$url" vm1 --json "${ca[@]}"
  need '"phase":"failed-over"'
  check 0 "$tag: cancel" "$bin" cancel "$url" vm1 --vm-dir "$hv" "${ca[@]}"
  [ -e "$hv/vm1.vm.json" ] && fail "$tag: the VM is still there after cancel"
  check 0 "$tag: replicate after the cancel" "$bin" replicate "$st" --cycles 1

  # planned: the shutdown command stops the workload; nothing is lost
  start_workload "$d" "$st"
  check 0 "$tag: planned failover" "$bin" failover "$url" vm1 --type planned --state-dir "$st" \
    --shutdown-cmd "kill -TERM $wl_pid; while kill -0 $wl_pid 2>/dev/null; do sleep 0.05; done" \
    "${files[@]}" "${net[@]}" "${ca[@]}"
  need "shutting down VM vm1"; need "downtime [0-9.]* s"
  wait "$wl_pid" 2>/dev/null; wl_pid=""
  if [ "$tag" = file ]; then
    same_disk "$out/os.vhd" "$d/os.img" "$tag planned"
    same_disk "$out/a.vhd" "$d/a.img" "$tag planned"
  else
    check 0 "$tag: fetch the planned disk" "$bin" store "${ca[@]}" get "$url/vm1/failover-disks/os" "$d/os-fo.vhd"
    same_disk "$d/os-fo.vhd" "$d/os.img" "$tag planned"
  fi
  check 0 "$tag: resume with nothing to do" "$bin" resume "$url" vm1 "${ca[@]}"
  need "0 operation(s) resumed"
  check 0 "$tag: commit" "$bin" commit "$url" vm1 "${ca[@]}"
  need "failover committed"
  check 0 "$tag: points after the commit" "$bin" points "${ca[@]}" "$url" vm1 --json
  [ "$(grep -o '"id"' "$dir/out" | wc -l)" -eq 1 ] || fail "$tag: more than one point after the commit"
  check 2 "$tag: cancel after the commit" "$bin" cancel "$url" vm1 "${ca[@]}"

  # failback, then reprotect: replication again, only differing blocks written
  local back=(--disk "os:$d/os.img" --disk "a:$d/a.img") fo_os=$out/os.vhd fo_a=$out/a.vhd jr=()
  if [ "$tag" = file ]; then
    # the failed-over VM writes its disks through its own journal
    check 0 "$tag: workload on the failed-over side" "$bin" workload "$d/fojournal" --create \
      --disk "os:$out/os.vhd:8" --disk "a:$out/a.vhd:4" --writes 300 --seed 5
    jr=(--journal "$d/fojournal")
  else
    back=(--to "os:$d/os-back.vhd" --to "a:$d/a-back.raw")
    check 0 "$tag: fetch the failed-over disks" "$bin" store "${ca[@]}" get "$url/vm1/failover-disks/os" "$d/os-fo.vhd"
    check 0 "$tag: fetch the failed-over disks" "$bin" store "${ca[@]}" get "$url/vm1/failover-disks/a" "$d/a-fo.vhd"
    fo_os=$d/os-fo.vhd fo_a=$d/a-fo.vhd
  fi
  local mode=minimize-downtime
  [ "$tag" = az ] && mode=full
  check 2 "$tag: failback without its disks" "$bin" failback "$url" vm1 --mode "$mode" --shutdown-cmd true "${ca[@]}"
  check 0 "$tag: failback $mode" "$bin" failback "$url" vm1 --mode "$mode" "${back[@]}" "${jr[@]}" \
    --shutdown-cmd true --vm-dir "$hv" "${ca[@]}"
  need "failback done (not committed): 1 machine (vm1)"; need "downtime [0-9.]* s"
  [ -e "$hv/vm1.vm.json" ] || fail "$tag: no on-premises VM description"
  grep -Eq '"generation":[[:space:]]*2' "$hv/vm1.vm.json" || fail "$tag: the on-premises VM is not generation 2"
  if [ "$tag" = file ]; then
    same_disk "$d/os.img" "$fo_os" "$tag failback"; same_disk "$d/a.img" "$fo_a" "$tag failback"
  else
    same_disk "$d/os-back.vhd" "$fo_os" "$tag failback"; same_disk "$d/a-back.raw" "$fo_a" "$tag failback"
  fi
  check 0 "$tag: commit the failback" "$bin" commit "$url" vm1 --vm-dir "$hv" "${ca[@]}"
  need "failback committed"
  local to=()
  [ "$tag" = az ] && to=("${back[@]}")
  check 0 "$tag: reprotect" "$bin" reprotect "$url" vm1 --state-dir "$st" "${to[@]}" "${ca[@]}"
  need "reprotected: resync point [0-9]*, [0-9]* differing bytes written"
  check 0 "$tag: replicate after the reprotect" "$bin" replicate "$st" --cycles 1
  check 0 "$tag: verify after the reprotect" "$bin" verify "$st"
  need "^os: equal"; need "^a: equal"
}

check 2 "usage" "$bin" failover
check 2 "no type" "$bin" failover "file://$dir/x" vm1
check 2 "bad point" "$bin" change-point "file://$dir/x" vm1 --point yesterday

mkdir -p "$dir/target"
flow file "file://$dir/target"

azurite_https || { fails=$((fails + 1)); finish; exit; }
flow az "https://127.0.0.1:$az_port/devstoreaccount1/clifo" --ca "$dir/cert.pem"
finish
