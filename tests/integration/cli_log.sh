#!/usr/bin/env bash
# siterec log verify/info/apply/coalesce on logs made by the demo, including
# damaged ones: exit codes and messages, never a crash.
cli=$1
. "$(dirname "$0")/lib.sh"

check 0 "demo run keeps its files" "$cli" demo --dir "$dir/d" --size 16 --writes 200
check 0 "verify sealed log" "$cli" log verify "$dir/d/cycle-1.sdl"
check 0 "info lists records" "$cli" log info "$dir/d/journal-1.sdl" --records
grep -q '^seq ' "$dir/out" || { echo "FAIL: no records listed"; fails=$((fails + 1)); }
grep -q 'sealed' "$dir/out" || { echo "FAIL: journal-1 not reported sealed"; fails=$((fails + 1)); }

# torn tail: cut a log in the middle of its last data record
sz=$(stat -c %s "$dir/d/journal-2.sdl")
cp "$dir/d/journal-2.sdl" "$dir/torn.sdl"
truncate -s $((sz - 200)) "$dir/torn.sdl"
check 1 "verify reports a torn tail" "$cli" log verify "$dir/torn.sdl"
grep -q 'torn' "$dir/out" || { echo "FAIL: no 'torn' in output"; fails=$((fails + 1)); }

# bit flip in the middle of a sealed log
cp "$dir/d/journal-1.sdl" "$dir/flip.sdl"
sz=$(stat -c %s "$dir/flip.sdl")
printf '\xff' | dd of="$dir/flip.sdl" bs=1 seek=$((sz / 2)) conv=notrunc status=none
check 2 "verify rejects a damaged sealed log" "$cli" log verify "$dir/flip.sdl"
grep -qi 'corrupt\|damaged\|checksum' "$dir/out" || { echo "FAIL: unclear message"; cat "$dir/out"; fails=$((fails + 1)); }

# apply: damaged log changes nothing; good logs rebuild the replica from the initial copy
truncate -s 16M "$dir/img"
check 2 "apply refuses a damaged log" "$cli" log apply "$dir/flip.sdl" "$dir/img"
cp "$dir/img" "$dir/img.before"
check 2 "apply refuses a torn log" "$cli" log apply "$dir/torn.sdl" "$dir/img"
cmp -s "$dir/img" "$dir/img.before" || { echo "FAIL: a refused torn log changed the image"; fails=$((fails + 1)); }
check 0 "apply --allow-torn takes the whole records" "$cli" log apply "$dir/torn.sdl" "$dir/img.before" --allow-torn
cmp -s "$dir/img" <(head -c 16777216 /dev/zero) || { echo "FAIL: damaged log changed the image"; fails=$((fails + 1)); }
check 0 "apply initial" "$cli" log apply "$dir/d/initial.sdl" "$dir/img"
check 0 "coalesce journals" "$cli" log coalesce "$dir/c.sdl" "$dir/d/journal-2.sdl" "$dir/d/journal-1.sdl"
check 0 "apply coalesced" "$cli" log apply "$dir/c.sdl" "$dir/img"
check 0 "apply coalesced twice (idempotent)" "$cli" log apply "$dir/c.sdl" "$dir/img"
check 0 "apply tracked cycle" "$cli" log apply "$dir/d/cycle-2.sdl" "$dir/img"
cmp "$dir/img" "$dir/d/source.img" || { echo "FAIL: rebuilt replica differs from source"; fails=$((fails + 1)); }

# encrypted logs need the key
check 0 "encrypted demo" "$cli" demo --dir "$dir/e" --size 8 --writes 50 --encrypt --keep
check 2 "encrypted log without key" "$cli" log verify "$dir/e/cycle-1.sdl"
SITEREC_LOG_KEY=$(printf '%064d' 0) check 2 "encrypted log with wrong key" "$cli" log verify "$dir/e/cycle-1.sdl"
check 2 "missing file" "$cli" log verify "$dir/nope.sdl"
check 2 "unknown subcommand" "$cli" log frobnicate
finish
