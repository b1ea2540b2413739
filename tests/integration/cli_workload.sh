#!/bin/bash
# siterec workload: a simulated VM writing through the journal into two raw images
# while another process (journal_rotate) requests rotations; afterwards replaying
# every disk's logs in sequence order with `siterec log apply` onto a zeroed file
# must give the disk's image exactly. Also: a second writer is refused (busy), a
# rotation with no writer is done by the requester, a reopened journal (no
# --create) goes on appending until SIGTERM, and bad arguments are usage errors.
# $1: the siterec binary, $2: the journal_rotate helper.
bin=$1 rot=$2
. "$(dirname "$0")/lib.sh"
wl_pid=""
cleanup() {
  [ -n "$wl_pid" ] && { kill -TERM "$wl_pid" 2>/dev/null; wait "$wl_pid" 2>/dev/null; }
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }

j=$dir/journal
disks=(--disk "a:$dir/a.img:8" --disk "b:$dir/b.img:4")

check 2 "no arguments" "$bin" workload
need "usage: siterec workload"
check 2 "no --disk" "$bin" workload "$j"
check 2 "--disk without a size" "$bin" workload "$j" --disk "a:$dir/a.img"
check 2 "--seconds with --writes" "$bin" workload "$j" "${disks[@]}" --seconds 1 --writes 5
check 2 "--block not a multiple of 4" "$bin" workload "$j" "${disks[@]}" --block 6
check 2 "unknown option" "$bin" workload "$j" "${disks[@]}" --frobnicate 1
check 2 "no journal without --create" "$bin" workload "$j" "${disks[@]}" --writes 1
[ -e "$j" ] && fail "a journal was created without --create"

# Wait (up to 10 s) until the workload logging to $1 says it holds the journal.
wait_writer() {
  for _ in $(seq 1 100); do
    grep -q "^workload: writing" "$1" && return 0
    sleep 0.1
  done
  fail "no writer holds $j"
}

"$bin" workload "$j" "${disks[@]}" --rate 2 --seconds 4 --seed 7 --create >"$dir/wl.out" 2>"$dir/wl.err" &
wl_pid=$!
wait_writer "$dir/wl.err"
check 2 "a second writer is refused" "$bin" workload "$j" "${disks[@]}" --writes 1
need "another process is the journal's writer"
need "busy"
seqs=()
for i in 1 2 3 4 5; do
  sleep 0.4
  check 0 "rotation $i while the workload runs" "$rot" "$j" a:8 b:4
  seqs+=("$(head -n1 "$dir/out")")
done
wait "$wl_pid"; rc=$?; wl_pid=""
[ "$rc" -eq 0 ] || { fail "workload exit $rc"; cat "$dir/wl.err"; }
cat "$dir/wl.out"
grep -q ", 5 rotations served" "$dir/wl.out" || fail "summary does not show 5 rotations served"
[ "${seqs[*]}" = "1 2 3 4 5" ] || fail "sealed sequences '${seqs[*]}', expected 1 2 3 4 5"
writes=$(sed -n 's/^workload: \([0-9]*\) writes.*/\1/p' "$dir/wl.out")
# 2 MB/s for 4 s of 4 KiB writes: about 1950 (bucket starts with one block)
[ "${writes:-0}" -ge 1500 ] && [ "${writes:-0}" -le 2100 ] || fail "$writes writes at 2 MB/s for 4 s"

# With no writer, the requester rotates itself.
check 0 "rotation without a writer" "$rot" "$j" a:8 b:4
need "^6$"

# Reopened without --create: appending goes on until SIGTERM.
"$bin" workload "$j" "${disks[@]}" --rate 1 >"$dir/wl2.out" 2>"$dir/wl2.err" &
wl_pid=$!
wait_writer "$dir/wl2.err"
sleep 0.5
check 0 "rotation of the reopened journal" "$rot" "$j" a:8 b:4
need "^7$"
sleep 0.5
kill -TERM "$wl_pid"
wait "$wl_pid"; rc=$?; wl_pid=""
[ "$rc" -eq 0 ] || { fail "workload after SIGTERM: exit $rc"; cat "$dir/wl2.err"; }
grep -q ", 1 rotations served" "$dir/wl2.out" || { fail "second run summary"; cat "$dir/wl2.out"; }

# Replay: sealed 1..7 and the active 8 of each disk onto zeroes equals the image.
for d in a:8 b:4; do
  id=${d%%:*} mib=${d#*:}
  logs=("$j/$id"/*.dlog)
  [ "${#logs[@]}" -eq 8 ] || fail "disk $id has ${#logs[@]} logs, expected 8"
  rm -f "$dir/replica.img"
  truncate -s "${mib}M" "$dir/replica.img"
  for log in "${logs[@]}"; do
    if [ "$log" = "${logs[-1]}" ]; then
      check 0 "active log of $id verifies" "$bin" log verify "$log"; need "open"
    else
      "$bin" log verify "$log" | grep -q "sealed" || fail "$log is not sealed"
    fi
    "$bin" log apply "$log" "$dir/replica.img" >"$dir/out" 2>&1 || { fail "apply $log"; cat "$dir/out"; }
  done
  check 0 "replayed logs of $id equal its image" cmp "$dir/replica.img" "$dir/$id.img"
done
finish
