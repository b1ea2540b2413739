#!/usr/bin/env bash
# Reflink snapshots of the file:// target on a real btrfs: a sparse image in the
# scratch directory made into btrfs, loop-mounted, and the store_reflink program
# ($1) run on a store inside it (it also checks that the reflink path was taken).
# The file system is unmounted and its loop device detached on every exit.
# Skipped (exit 77) only when the mount is impossible (not root, no loop device,
# mount refused); any failure once mounted is a failure.
. "$(dirname "$0")/lib.sh"
prog=${1:?usage: store_reflink.sh STORE_REFLINK_PROGRAM}
img=$dir/btrfs.img
mnt=$dir/mnt
cleanup() {
  local rc=$?
  if mountpoint -q "$mnt" && ! umount "$mnt"; then
    echo "FAIL: cannot unmount $mnt: detaching it lazily"
    umount -l "$mnt"
    [ "$rc" -eq 0 ] && rc=1
  fi
  # mount -o loop sets autoclear; detach by backing file whatever is still attached
  losetup -n -O NAME -j "$img" 2>/dev/null | while read -r dev; do losetup -d "$dev"; done
  mountpoint -q "$mnt" || rm -rf "$dir"
  exit "$rc"
}
trap cleanup EXIT
skip() { echo "SKIP: $*"; exit 77; }

PATH=$PATH:/usr/sbin:/sbin
[ "$(id -u)" -eq 0 ] || skip "not root: cannot loop-mount a file system"
[ -e /dev/loop-control ] || skip "no loop devices (/dev/loop-control missing)"
losetup -f >/dev/null 2>&1 || skip "no free loop device"
command -v mkfs.btrfs >/dev/null ||
  { echo "FAIL: mkfs.btrfs missing (scripts/setup.sh installs btrfs-progs)"; exit 1; }

truncate -s 256M "$img" && mkdir "$mnt" || { echo "FAIL: cannot make the image"; exit 1; }
check 0 "mkfs.btrfs on a sparse image" mkfs.btrfs -q "$img"
[ "$fails" -eq 0 ] || exit 1
mount -o loop "$img" "$mnt" 2>"$dir/mount.err" ||
  skip "cannot loop-mount btrfs: $(tr -s '\n ' ' ' <"$dir/mount.err")"
echo "ok: btrfs loop-mounted on $(findmnt -n -o SOURCE "$mnt")"

mkdir "$mnt/store"
check 0 "store operations and reflink snapshots on btrfs" "$prog" "$mnt/store"
if [ "$fails" -eq 0 ]; then  # (on failure check has shown the output)
  cat "$dir/out"
  [ -z "$(find "$mnt/store/disks" "$mnt/store/tmp" -mindepth 1)" ] ||
    { echo "FAIL: store not empty after deleting the disk"; find "$mnt/store"; fails=$((fails + 1)); }
fi
finish
