#!/bin/bash
# siterec points: two recovery points made through the API by make_points on a
# file:// target, listed as a table and as JSON; a VM without points; usage errors.
# $1: the siterec binary, $2: the make_points helper.
bin=$1 mk=$2
. "$(dirname "$0")/lib.sh"
url="file://$dir/target"

check 0 "make two points" "$mk" "$url" vm1
cp "$dir/out" "$dir/made"
[ "$(wc -l <"$dir/made")" -eq 4 ] || { echo "FAIL: make_points printed:"; cat "$dir/made"; fails=$((fails + 1)); }

check 0 "points table" "$bin" points "$url" vm1
need "^41 .*2023-11-14T22:13:20.123Z.*crash"
need "^42 .*2023-11-14T22:13:21.123Z.*app"
while read -r id disk snap; do need "^$id .* $disk@$snap"; done <"$dir/made"

check 0 "points --json" "$bin" points "$url" vm1 --json
cp "$dir/out" "$dir/points.json"
check 0 "JSON has both points and their fields" python3 -c '
import json, sys
pts = json.load(open(sys.argv[1]))
made = [l.split() for l in open(sys.argv[2])]
assert [p["id"] for p in pts] == [41, 42], pts
assert [p["kind"] for p in pts] == ["crash", "app"], pts
assert [p["time"] for p in pts] == ["2023-11-14T22:13:20.123Z", "2023-11-14T22:13:21.123Z"], pts
assert [p["time_ms"] for p in pts] == [1700000000123, 1700000001123], pts
for p in pts:
    assert set(p) == {"id", "time", "time_ms", "kind", "disks"}, p
    got = [[str(p["id"]), d["disk"], d["snapshot"]] for d in p["disks"]]
    assert got == [m for m in made if m[0] == str(p["id"])], (got, made)
assert [d["changed_extents"] for d in pts[0]["disks"]] == [1, 1], pts
assert [d["changed_extents"] for d in pts[1]["disks"]] == [None, None], pts
' "$dir/points.json" "$dir/made"

check 0 "a VM without points" "$bin" points "$url" nosuchvm
need "nosuchvm: no recovery points"
check 0 "a VM without points, JSON" "$bin" points "$url" nosuchvm --json
cp "$dir/out" "$dir/empty.json"
check 0 "empty JSON array" python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == []' "$dir/empty.json"

check 2 "points without a VM" "$bin" points "$url"
need "usage: siterec points"
check 2 "points with an unknown option" "$bin" points "$url" vm1 --frobnicate
check 2 "points with an invalid VM id" "$bin" points "$url" "../x"
check 2 "points on a missing target" "$bin" points "file://$dir/missing" vm1
finish
