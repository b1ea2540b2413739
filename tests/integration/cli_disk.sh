#!/usr/bin/env bash
# siterec disk info/convert/compare against qemu-img, the independent implementation:
# images made by qemu-img, converted by siterec, checked and compared by qemu-img.
cli=$1
. "$(dirname "$0")/lib.sh"

for sub in dynamic fixed; do
  img=$dir/$sub.vhdx
  # 70 MiB + 4 KiB: not a multiple of the 32 MiB block size nor of a MiB
  qemu-img create -q -f vhdx -o subformat=$sub,block_size=32M "$img" $((70 * 1048576 + 4096))
  qemu-io -f vhdx -c 'write -P 0x11 0 64k' -c 'write -P 0x22 33M 1M' -c 'write -P 0x33 70M 4k' "$img" >/dev/null
  check 0 "info $sub vhdx" "$cli" disk info "$img" --json
  need '"format":[[:space:]]*"vhdx"'; need "\"kind\":[[:space:]]*\"$sub\""
  need '"virtual_size":[[:space:]]*73404416'
  check 0 "convert $sub vhdx -> vhd" "$cli" disk convert "$img" "$dir/$sub.vhd" --format vhd
  # qemu has no consistency checks for vpc: its check exits 63 ("not supported")
  # for every VHD; anything else (2, 3: corruption or errors found) fails
  qemu-img check -q -f vpc "$dir/$sub.vhd" >"$dir/out" 2>&1; rc=$?
  if [ $rc -ne 0 ] && [ $rc -ne 63 ]; then echo "FAIL: qemu-img check exit $rc"; cat "$dir/out"; fails=$((fails + 1)); else echo "ok: qemu-img check of the VHD ($rc)"; fi
  qemu-img info -f vpc --output=json "$dir/$sub.vhd" > "$dir/info.json"
  # data part rounded up to a whole MiB: 71 MiB
  grep -q '"virtual-size": 74448896' "$dir/info.json" || { echo "FAIL: VHD size not rounded to 71 MiB"; cat "$dir/info.json"; fails=$((fails + 1)); }
  sz=$(stat -c %s "$dir/$sub.vhd")
  [ "$sz" -eq $((74448896 + 512)) ] || { echo "FAIL: VHD file is $sz bytes, not data + 512-byte footer"; fails=$((fails + 1)); }
  check 0 "qemu-img compare source vs VHD" qemu-img compare -f vhdx -F vpc "$img" "$dir/$sub.vhd"
  check 0 "siterec compare source vs VHD" "$cli" disk compare "$img" "$dir/$sub.vhd"
  check 0 "convert $sub vhdx -> raw" "$cli" disk convert "$img" "$dir/$sub.raw" --format raw
  check 0 "qemu-img compare source vs raw" qemu-img compare -f vhdx -F raw "$img" "$dir/$sub.raw"
done

# a difference is found and listed
qemu-io -f vpc -c 'write -P 0x44 1M 512' "$dir/dynamic.vhd" >/dev/null
check 1 "compare finds the change" "$cli" disk compare "$dir/dynamic.vhdx" "$dir/dynamic.vhd"
need 'differ: offset 1048576 length 512'
check 0 "info on a VHD made by siterec" "$cli" disk info "$dir/fixed.vhd"
need 'vhd fixed'

# bad input: clear errors, exit 2
head -c 100000 /dev/urandom > "$dir/junk.vhdx"; printf 'vhdxfile' | dd of="$dir/junk.vhdx" conv=notrunc status=none
check 2 "damaged vhdx" "$cli" disk info "$dir/junk.vhdx"
check 2 "missing image" "$cli" disk info "$dir/none.vhdx"
check 2 "convert to an existing file" "$cli" disk convert "$dir/fixed.vhdx" "$dir/fixed.vhd" --format vhd
check 2 "bad format name" "$cli" disk convert "$dir/fixed.vhdx" "$dir/x" --format qcow2
finish
