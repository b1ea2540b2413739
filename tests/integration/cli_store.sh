#!/bin/bash
# siterec store put/ls/snapshot/get/rm on a file:// target, with images made and
# checked by qemu-img/qemu-io; a put killed with SIGKILL and resumed; then put/get
# on Azurite over HTTPS (fixed VHD shape by default, --raw). $1: the siterec binary.
bin=$1
. "$(dirname "$0")/lib.sh"
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || { echo "FAIL: qemu-utils missing (scripts/setup.sh installs it)"; exit 1; }
root=${SITEREC_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
az_pid="" put_pid=""
cleanup() {
  [ -n "$put_pid" ] && { kill -9 "$put_pid" 2>/dev/null; wait "$put_pid" 2>/dev/null; }
  [ -n "$az_pid" ] && "$root/scripts/azurite.sh" stop "$az_pid"
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }

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
check 0 "put --resume of a finished upload" "$bin" store put --resume "$img" "$url/disk1"
need "already complete"
check 0 "store ls shows the snapshot" "$bin" store ls "$url"
need "disk0@$snap"

check 0 "store get base" "$bin" store get "$url/disk1" "$dir/got1.raw"
check 0 "base equals the changed image" qemu-img compare -q -f vhdx -F raw "$img" "$dir/got1.raw"
check 0 "store get snapshot" "$bin" store get "$url/disk0@$snap" "$dir/got0.raw"
check 1 "snapshot differs from the changed image" qemu-img compare -q -f vhdx -F raw "$img" "$dir/got0.raw"
qemu-io -f vhdx -c 'write -P 0x5a 1M 64k' "$img" >/dev/null
check 0 "snapshot equals the original image" qemu-img compare -q -f vhdx -F raw "$img" "$dir/got0.raw"

check 2 "put onto an existing name fails" "$bin" store put "$img" "$url/disk0"
check 1 "put with an unknown option" "$bin" store put --frobnicate "$img" "$url/disk2"

# A put killed with SIGKILL mid-way, then resumed: a 1 GiB raw image, half of it
# data (8 MiB extents every 16 MiB), checkpoints every 16 MiB read.
big=$dir/big.raw
qemu-img create -q -f raw "$big" 1G
writes=()
for i in $(seq 0 63); do writes+=(-c "write -P $((i + 1)) $((i * 16))M 8M"); done
qemu-io -f raw "${writes[@]}" "$big" >/dev/null
"$bin" store put --checkpoint 16 "$big" "$url/big" 2>"$dir/put.err" &
put_pid=$!
for _ in $(seq 1 1000); do
  mib=$(tr '\r' '\n' <"$dir/put.err" | sed -n 's|^\([0-9]*\) / .*|\1|p' | tail -n 1)
  [ "${mib:-0}" -ge 256 ] && break
  kill -0 "$put_pid" 2>/dev/null || break
  sleep 0.02
done
kill -9 "$put_pid" 2>/dev/null
wait "$put_pid" 2>/dev/null; rc=$?
put_pid=""
[ "$rc" -eq 137 ] || fail "put not killed mid-way (exit $rc, reached ${mib:-0} MiB)"
check 0 "the killed put left its record" "$bin" store ls "$url"
need "big.upload"
check 2 "put again without --resume is refused" "$bin" store put "$big" "$url/big"
need "already exists"
check 0 "put --resume" "$bin" store put --resume --checkpoint 16 "$big" "$url/big"
need "resumed at [1-9]"
check 0 "store get of the resumed disk" "$bin" store get "$url/big" "$dir/big.got"
check 0 "the resumed disk equals the image" cmp "$big" "$dir/big.got"
touch "$big"
check 2 "put --resume of a changed image conflicts" "$bin" store put --resume "$big" "$url/big"
need "another upload"
check 0 "store rm of the resumed disk" "$bin" store rm "$url/big"
rm -f "$big" "$dir/big.got"
check 2 "get of a missing disk fails" "$bin" store get "$url/nope" "$dir/x.raw"
check 2 "http without ALLOW_HTTP refused" "$bin" store ls "http://127.0.0.1:1/devstoreaccount1/c"
check 2 "invalid Azure container name refused" "$bin" store ls "https://acct.blob.core.windows.net/c"
check 1 "usage" "$bin" store frobnicate
check 0 "store rm" "$bin" store rm "$url/disk0"
check 0 "store rm second" "$bin" store rm "$url/disk1"
check 0 "store ls empty" "$bin" store ls "$url"
[ -s "$dir/out" ] && { echo "FAIL: target not empty"; cat "$dir/out"; fails=$((fails + 1)); }
check 2 "rm of a missing disk fails" "$bin" store rm "$url/disk0"

# Azurite over HTTPS with a self-signed certificate (its own CA, given with --ca):
# Azure disks are fixed VHDs, data rounded up to a MiB then the 512-byte footer.
azurite_https || { fails=$((fails + 1)); finish; exit; }
az="https://127.0.0.1:$az_port/devstoreaccount1/clistore"
odd=$dir/odd.vhdx    # 40 MiB + 512 bytes: the VHD rounds the data part up to 41 MiB
qemu-img create -q -f vhdx "$odd" 41943552
qemu-io -f vhdx -c 'write -P 0x3c 40M 512' -c 'write -P 0x11 0 1M' "$odd" >/dev/null
check 0 "azure put (VHD by default)" "$bin" store --ca "$dir/cert.pem" put "$odd" "$az/vm1"
check 0 "azure put --raw" "$bin" store --ca "$dir/cert.pem" put --raw "$odd" "$az/vm1raw"
check 0 "azure ls" "$bin" store --ca "$dir/cert.pem" ls "$az"
need "$((41 * 1048576 + 512))  vm1\$"
need "41943552  vm1raw\$"
check 0 "azure get" "$bin" store --ca "$dir/cert.pem" get "$az/vm1" "$dir/vm1.vhd"
[ "$(stat -c %s "$dir/vm1.vhd")" -eq $((41 * 1048576 + 512)) ] || fail "downloaded VHD has the wrong size"
check 0 "the download is a fixed VHD" "$bin" disk info "$dir/vm1.vhd" --json
need '"format":[[:space:]]*"vhd"'
need '"kind":[[:space:]]*"fixed"'
need "\"virtual_size\":[[:space:]]*$((41 * 1048576))\b"
check 0 "qemu reads the same data from it" qemu-img compare -q -f vhdx -F vpc "$odd" "$dir/vm1.vhd"
check 0 "azure put --resume of the finished upload" "$bin" store --ca "$dir/cert.pem" put --resume "$odd" "$az/vm1"
need "already complete"
check 0 "azure rm" "$bin" store --ca "$dir/cert.pem" rm "$az/vm1"
check 0 "azure rm raw" "$bin" store --ca "$dir/cert.pem" rm "$az/vm1raw"
check 0 "azure ls empty" "$bin" store --ca "$dir/cert.pem" ls "$az"
[ -s "$dir/out" ] && { fail "container not empty"; cat "$dir/out"; }
finish
