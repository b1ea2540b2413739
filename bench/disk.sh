#!/usr/bin/env bash
# Sequential read of a 2 GiB dynamic VHDX (and a dynamic VHD) through libsiterec
# against `qemu-img convert -O raw` of the same file, both written to /dev/null,
# files in the page cache, best of 3 each, in the same run. Prints the ratio.
#   bench/disk.sh BENCH_DISK_BINARY [SIZE_MIB]
set -euo pipefail
bin=$1
mib=${2:-${SITEREC_BENCH_DISK_MIB:-2048}}
dir=$(mktemp -d "${TMPDIR:-/tmp}/siterec-bench-disk-XXXXXX")
trap 'rm -rf "$dir"' EXIT
# 3/4 of the disk holds data (random, so nothing compresses or dedups), the rest
# is never written: what a real dynamic disk looks like
head -c $((mib * 3 / 4))M /dev/urandom > "$dir/data.raw"
truncate -s ${mib}M "$dir/data.raw"
qemu-img convert -f raw -O vhdx -o subformat=dynamic "$dir/data.raw" "$dir/d.vhdx"
qemu-img convert -f raw -O vpc -o subformat=dynamic,force_size=on "$dir/data.raw" "$dir/d.vhd"
rm -f "$dir/data.raw"
best() {  # command... -> best seconds of 3
  local b=999999 t s e
  for _ in 1 2 3; do
    s=$(date +%s.%N); "$@" >/dev/null 2>&1 || { echo "bench: '$*' failed" >&2; exit 1; }; e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l); b=$(echo "if ($t < $b) $t else $b" | bc -l)
  done
  printf '%.4f' "$b"
}
for f in vhdx vhd; do
  img=$dir/d.$f
  cat "$img" > /dev/null
  read -r lib bytes < <("$bin" "$img" /dev/null)
  fmt=$f; [ $f = vhd ] && fmt=vpc
  # qemu's null block driver is its /dev/null: it takes the writes and drops them
  peer=$(best qemu-img convert -n -f $fmt "$img" --target-image-opts "driver=null-co,size=$bytes")
  ratio=$(echo "$peer / $lib" | bc -l)
  gbs=$(echo "$bytes / $lib / 1000000000" | bc -l)
  printf 'disk read %s dynamic %d MiB: siterec %.3f s (%.2f GB/s), qemu-img convert %.3f s; ratio qemu/siterec = %.2f\n' \
    "$f" "$mib" "$lib" "$gbs" "$peer" "$ratio"
done
