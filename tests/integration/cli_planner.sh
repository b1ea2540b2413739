#!/usr/bin/env bash
# siterec planner on a generated churn profile: 3 VMs over 6 hours at 60 s
# (vm-a steady, vm-b over the churn limits, vm-c with a disk too big); the
# table, --json (parsed), --html (an SVG chart), options, and bad input.
cli=$1
. "$(dirname "$0")/lib.sh"

GiB=1073741824
awk -v g=$GiB 'BEGIN {
  print "timestamp,vm,disk,disk_size_bytes,bytes_written"
  t0 = 1700000000
  for (k = 0; k < 360; k++) {
    t = t0 + 60 * k
    # vm-a: 2 MB/s on os, 1 MB/s on data, a burst every hour on data
    printf "%d,vm-a,os,%.0f,%.0f\n", t, 127 * g, 120000000
    printf "%d,vm-a,data,%.0f,%.0f\n", t, 512 * g, (k % 60 == 0 ? 600000000 : 60000000)
    # vm-b: 30 MB/s on one disk: over the 20 MB/s limits per disk and per VM
    printf "%d,vm-b,sql,%.0f,%.0f\n", t, 256 * g, 1800000000
    # vm-c: idle, a 5000 GiB disk (over 4095 GiB)
    printf "%d,vm-c,os,%.0f,%.0f\n", t, 64 * g, 6000000
    printf "%d,vm-c,archive,%.0f,%.0f\n", t, 5000 * g, 0
  }
}' >"$dir/churn.csv"
rows=$(wc -l <"$dir/churn.csv")
[ "$rows" -eq 1801 ] || { echo "FAIL: generated $rows lines"; fails=$((fails + 1)); }

check 0 "table" "$cli" planner --csv "$dir/churn.csv"
need "^VM "
need "^vm-a  *yes"
need "^vm-b  *no:disk-churn,vm-churn"
need "^vm-c  *no:disk-size"
need "^TOTAL "
# vm-a: p95 of 3 MB/s (the hourly burst is above it), 3.9 MB/s planned = 31.2 Mbps
grep -E '^vm-a +yes +3\.000 +31\.20 +31\.20' "$dir/out" >/dev/null ||
  { echo "FAIL: vm-a figures"; cat "$dir/out"; fails=$((fails + 1)); }

check 0 "json" "$cli" planner --csv "$dir/churn.csv" --json --bandwidth 50 --retention 48
cp "$dir/out" "$dir/report.json"
python3 - "$dir/report.json" <<'PY' || { echo "FAIL: JSON report"; cat "$dir/report.json"; fails=$((fails + 1)); }
import json, sys
d = json.load(open(sys.argv[1]))
assert d["parameters"]["bandwidth_mbps"] == 50, d["parameters"]
assert d["parameters"]["retention_s"] == 48 * 3600
assert d["parameters"]["interval_s"] == 60 and d["profile"]["intervals"] == 360
vms = {v["name"]: v for v in d["vms"]}
assert list(vms) == ["vm-a", "vm-b", "vm-c"]
assert vms["vm-a"]["fits"] and vms["vm-a"]["failed_limits"] == []
assert vms["vm-b"]["failed_limits"] == ["disk_churn", "vm_churn"]
assert vms["vm-c"]["failed_limits"] == ["disk_size"]
assert abs(vms["vm-a"]["bandwidth_mbps"]["rpo_15_min"]["p100"] - 31.2) < 1e-6
assert vms["vm-a"]["copy_frequency_s"] == 30
assert vms["vm-b"]["copy_frequency_s"] == 0   # 312 Mbps needed, 50 available
assert d["totals"]["vm_count"] == 3 and not d["totals"]["fits"]
assert d["totals"]["replica_storage_bytes"] == (127 + 512 + 256 + 64 + 5000) * 1073741824
print("json ok")
PY

check 0 "html" "$cli" planner --csv "$dir/churn.csv" --html "$dir/report.html"
need "^vm-a"
grep -q "<svg" "$dir/report.html" || { echo "FAIL: no <svg> in the HTML report"; fails=$((fails + 1)); }
grep -q "</html>" "$dir/report.html" || { echo "FAIL: HTML report not complete"; fails=$((fails + 1)); }
if grep -qi "<script" "$dir/report.html"; then echo "FAIL: script in the HTML report"; fails=$((fails + 1)); fi

# bad input: exit 2 naming the line
{ head -3 "$dir/churn.csv"; echo "1700000000,vm-x,os,not-a-number,1"; } >"$dir/bad.csv"
check 2 "malformed row" "$cli" planner --csv "$dir/bad.csv"
need "bad.csv:4:"
check 2 "missing file" "$cli" planner --csv "$dir/none.csv"
check 2 "no --csv" "$cli" planner --json
check 2 "bad bandwidth" "$cli" planner --csv "$dir/churn.csv" --bandwidth -3
check 2 "bad retention" "$cli" planner --csv "$dir/churn.csv" --retention x
check 2 "unknown option" "$cli" planner --csv "$dir/churn.csv" --frobnicate
finish
