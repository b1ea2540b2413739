#!/bin/bash
# siterec store put/ls/snapshot/get/rm on a file:// target, with images made and
# checked by qemu-img/qemu-io. $1: the siterec binary.
bin=$1
. "$(dirname "$0")/lib.sh"
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || { echo "FAIL: qemu-utils missing (scripts/setup.sh installs it)"; exit 1; }

mkdir -p "$dir/target"
url="file://$dir/target"
img=$dir/src.vhdx
qemu-img create -q -f vhdx "$img" 64M
qemu-io -f vhdx -c 'write -P 0x5a 1M 64k' "$img" >/dev/null

check 0 "store put" "$bin" store put "$img" "$url/disk0"
check 0 "store ls" "$bin" store ls "$url"
need "disk0"
check 0 "store snapshot" "$bin" store snapshot "$url/disk0"
snap=$(head -n1 "$dir/out")
[ -n "$snap" ] || { echo "FAIL: no snapshot id printed"; fails=$((fails + 1)); }

# change the source and send it again as a second disk: the snapshot keeps the old data
qemu-io -f vhdx -c 'write -P 0xa5 1M 64k' "$img" >/dev/null
check 0 "store put second disk" "$bin" store put "$img" "$url/disk1"
check 0 "store ls shows the snapshot" "$bin" store ls "$url"
need "disk0@$snap"

check 0 "store get base" "$bin" store get "$url/disk1" "$dir/got1.raw"
check 0 "base equals the changed image" qemu-img compare -q -f vhdx -F raw "$img" "$dir/got1.raw"
check 0 "store get snapshot" "$bin" store get "$url/disk0@$snap" "$dir/got0.raw"
check 1 "snapshot differs from the changed image" qemu-img compare -q -f vhdx -F raw "$img" "$dir/got0.raw"
qemu-io -f vhdx -c 'write -P 0x5a 1M 64k' "$img" >/dev/null
check 0 "snapshot equals the original image" qemu-img compare -q -f vhdx -F raw "$img" "$dir/got0.raw"

check 2 "put onto an existing name fails" "$bin" store put "$img" "$url/disk0"
check 2 "get of a missing disk fails" "$bin" store get "$url/nope" "$dir/x.raw"
check 2 "http without ALLOW_HTTP refused" "$bin" store ls "http://127.0.0.1:1/devstoreaccount1/c"
check 2 "invalid Azure container name refused" "$bin" store ls "https://acct.blob.core.windows.net/c"
check 1 "usage" "$bin" store frobnicate
check 0 "store rm" "$bin" store rm "$url/disk0"
check 0 "store rm second" "$bin" store rm "$url/disk1"
check 0 "store ls empty" "$bin" store ls "$url"
[ -s "$dir/out" ] && { echo "FAIL: target not empty"; cat "$dir/out"; fails=$((fails + 1)); }
check 2 "rm of a missing disk fails" "$bin" store rm "$url/disk0"
finish
