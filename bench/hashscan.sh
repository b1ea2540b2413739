#!/usr/bin/env bash
# Hash scan of a cached image pair with 1% random 4 KiB changes: libsiterec
# against rsync (delta transfer, 4 KiB blocks) and qemu-img compare, on the same
# files in the same run. Prints the timings and one ratio line. No timing is
# asserted; the exit status is non-zero only when something failed or the
# library found fewer changed blocks than were made.
#
# Usage: bench/hashscan.sh [path/to/bench_hashscan]
# Environment: HASHSCAN_SIZE_MIB (default 2048), HASHSCAN_REPS (best of, default 5;
#              the machine may be shared and noisy), HASHSCAN_RSYNC_REPS (default 3:
#              each rsync run takes seconds plus an untimed copy), HASHSCAN_PERCENT
#              (default 1), HASHSCAN_SEED, HASHSCAN_THREADS (0 = library default),
#              TMPDIR (where the images go, default /tmp).
set -euo pipefail

bin=${1:-build/bench/bench_hashscan}
size_mib=${HASHSCAN_SIZE_MIB:-2048}
reps=${HASHSCAN_REPS:-5}
rsync_reps=${HASHSCAN_RSYNC_REPS:-3}
pct=${HASHSCAN_PERCENT:-1}
seed=${HASHSCAN_SEED:-20240601}
threads=${HASHSCAN_THREADS:-0}
[ -x "$bin" ] || { echo "hashscan.sh: $bin not found (build it first)" >&2; exit 2; }

if [ $((size_mib % 1024)) -eq 0 ]; then label="$((size_mib / 1024)) GiB"; else label="$size_mib MiB"; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/siterec-hashscan.XXXXXX")
trap 'rm -rf "$work"' EXIT
A=$work/A B=$work/B

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }'; }
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# The pair: A random, B = A with pct% of its 4 KiB blocks rewritten.
made=$("$bin" make "$work" $((size_mib * 1048576)) "$pct" "$seed")
nblocks=$(field changed_blocks "$made")
nruns=$(field changed_runs "$made")
# qemu-img compare stops at the first difference, so it is timed on an identical
# pair, where it must read both files to the end: the work a comparison of a
# changed pair has to do to find every change.
cp "$A" "$work/A.same"

nthreads=$threads
[ "$nthreads" -ne 0 ] || nthreads=$(( $(nproc) < 8 ? $(nproc) : 8 ))
echo "hashscan: $label pair, $pct% random 4 KiB blocks changed ($nblocks blocks in $nruns runs), page cache warm, best of $reps (rsync $rsync_reps), $(nproc) CPUs"

# libsiterec: map of B (scan_fd with UPDATE) + scan of A against it, counting the
# changed extents; and the steady state, a scan of A against a saved map of B.
# The machine's speed drifts (shared host), so each rep runs the library and
# qemu-img back to back, after re-reading the files: both best-of values come
# from the same moments.
have_qemu=$(command -v qemu-img || true)
t_lib= t_saved= t_qemu= lib=
for _ in $(seq "$reps"); do
	cat "$A" "$B" "$work/A.same" >/dev/null
	out=$("$bin" run "$A" "$B" "$nblocks" 1 "$threads")
	if [ -z "$t_lib" ] || awk -v a="$(field pair_s "$out")" -v b="$t_lib" 'BEGIN { exit !(a < b) }'; then
		lib=$out
	fi
	t_lib=$(min "$t_lib" "$(field pair_s "$out")")
	t_saved=$(min "$t_saved" "$(field saved_map_s "$out")")
	if [ -n "$have_qemu" ]; then
		t0=$(now)
		qemu-img compare -q -f raw -F raw "$A" "$work/A.same"
		t1=$(now)
		t_qemu=$(min "$t_qemu" "$(elapsed "$t0" "$t1")")
	fi
done
echo "  siterec (threads: $nthreads): map of B $(field build_s "$lib") s + scan of A $(field scan_s "$lib") s = $t_lib s; found $(field changed_runs "$lib") runs, $(field changed_blocks "$lib") blocks"
echo "  siterec scan of A against a saved map of B (load + scan): $t_saved s"
if [ -n "$have_qemu" ]; then
	echo "  qemu-img compare -f raw -F raw (identical pair, full read of both): $t_qemu s"
else
	echo "  qemu-img: not installed, skipped"
fi
rm -f "$work/A.same"

t_rsync=
if command -v rsync >/dev/null; then
	for i in $(seq "$rsync_reps"); do
		# not timed; the copy is in the page cache afterwards. Backdated, or rsync's
		# quick check (same size and mtime) could skip the file on a fast machine.
		cp "$B" "$work/B.copy"
		touch -d @1000000000 "$work/B.copy"
		cat "$A" >/dev/null
		t0=$(now)
		rsync --no-whole-file --inplace -B 4096 "$A" "$work/B.copy"
		t1=$(now)
		t_rsync=$(min "$t_rsync" "$(elapsed "$t0" "$t1")")
		[ "$i" -ne 1 ] || cmp -s "$A" "$work/B.copy" || { echo "rsync did not reproduce A" >&2; exit 1; }
	done
	echo "  rsync --no-whole-file --inplace -B 4096 A B.copy (delta transfer updating B.copy to A): $t_rsync s"
else
	echo "  rsync: not installed, skipped"
fi

line="hashscan pair $label: siterec $t_lib s"
[ -z "$t_rsync" ] || line+=", rsync $t_rsync s (ratio Y/X = $(ratio "$t_rsync" "$t_lib"), goal >= 10)"
[ -z "$t_qemu" ] || line+=", qemu-img compare $t_qemu s (ratio Z/X = $(ratio "$t_qemu" "$t_lib"), goal >= 1.2)"
echo "$line"
line="hashscan saved map $label: siterec $t_saved s"
[ -z "$t_rsync" ] || line+=", rsync ratio $(ratio "$t_rsync" "$t_saved")"
[ -z "$t_qemu" ] || line+=", qemu-img compare ratio $(ratio "$t_qemu" "$t_saved")"
echo "$line"
