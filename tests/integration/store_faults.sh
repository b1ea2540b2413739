#!/usr/bin/env bash
# Azure backend under injected faults: Azurite behind faultproxy.py, the
# store_faults program ($1) for three seeds, then checks on what the proxy saw.
. "$(dirname "$0")/lib.sh"
prog=${1:?usage: store_faults.sh STORE_FAULTS_PROGRAM}
here=$(cd "$(dirname "$0")" && pwd)
root=${SITEREC_SOURCE_ROOT:-$(cd "$here/../.." && pwd)}
az_pid="" px_pid=""
cleanup() {
  [ -n "$px_pid" ] && { kill "$px_pid" 2>/dev/null; wait "$px_pid" 2>/dev/null; }
  [ -n "$az_pid" ] && "$root/scripts/azurite.sh" stop "$az_pid"
  rm -rf "$dir"
}
trap cleanup EXIT

read -r az_port az_pid < <("$root/scripts/azurite.sh" start "$dir/az") || true
[ -n "${az_port:-}" ] || { echo "FAIL: Azurite did not start (it is installed by scripts/setup.sh)"; exit 1; }

for seed in 11 22 33; do
  python3 "$here/faultproxy.py" "$az_port" "$seed" "$dir/proxy.log" >"$dir/proxy.out" 2>"$dir/proxy.err" &
  px_pid=$!
  port=""
  for _ in $(seq 1 100); do
    port=$(head -n 1 "$dir/proxy.out" 2>/dev/null)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "FAIL: proxy did not start"; cat "$dir/proxy.err"; exit 1; }
  check 0 "seed $seed through the fault proxy" "$prog" \
    "http://127.0.0.1:$port/devstoreaccount1/faults$seed" "$seed"
  grep -h "all match" "$dir/out"
  kill "$px_pid"; wait "$px_pid"; rc=$?
  px_pid=""
  [ "$rc" -eq 0 ] || { echo "FAIL: proxy exit $rc on SIGTERM"; cat "$dir/proxy.err"; fails=$((fails + 1)); }
done

check 0 "what the proxy recorded" python3 - "$dir/proxy.log" <<'PY'
import collections, json, re, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
bad = []
faults = collections.Counter(r["fault"] for r in reqs if r["fault"])
pages = [r for r in reqs if r["page"]]
for r in reqs:
    if r["body_len"] is not None and r["body_len"] > 4194304:
        bad.append(f"body of {r['body_len']} bytes: {r['method']} {r['target']}")
    if r["page"]:
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", r["range"] or "")
        if not m or int(m[1]) % 512 or (int(m[2]) + 1) % 512:
            bad.append(f"unaligned Put Page range {r['range']}")
        elif r["body_len"] not in (-1, 0) and int(m[2]) + 1 - int(m[1]) != r["body_len"]:
            bad.append(f"range {r['range']} but body of {r['body_len']} bytes")
    if r["md5"] is not None and r["md5_ok"] is False:
        bad.append(f"Content-MD5 mismatch on {r['method']} {r['target']} {r['range']}")
    if r["page"] and r["body_len"] and r["body_len"] > 0 and r["md5"] is None:
        bad.append(f"Put Page without Content-MD5 at {r['range']}")
# every failed attempt was retried (a stall only delays), and a Retry-After: 1 waited for
by_id = {(r["id"], r["attempt"]): r for r in reqs}
retries = 0
for r in reqs:
    if not r["fault"] or r["fault"] == "stall":
        continue
    retries += 1
    nxt = by_id.get((r["id"], r["attempt"] + 1))
    if nxt is None:
        bad.append(f"no retry after {r['fault']} on {r['method']} {r['target']} {r['range']}")
    elif r["fault"] == "503ra1" and nxt["t"] - r["t"] < 0.95:
        bad.append(f"Retry-After: 1 not honoured: retry after {nxt['t'] - r['t']:.3f} s")
# the Put Page held back for 2 s (Retry-After) on disk "backoff" does not hold
# the writer: the requests queued after it arrive before its retry. A writer
# that slept through the back-off would let in only the ones already in flight
# (fewer than max_inflight = 8).
held = [r for r in pages if r["fault"] == "503ra2"]
if len(held) != 3:
    bad.append(f"expected 3 held-back requests (one per seed), saw {len(held)}")
for r in held:
    nxt = by_id.get((r["id"], r["attempt"] + 1))
    if nxt is None:
        continue
    disk = r["target"].split("?")[0]
    others = sum(1 for o in pages if o["id"] != r["id"] and o["target"].split("?")[0] == disk
                 and r["t"] <= o["t"] <= nxt["t"])
    print(f"during a 2 s back-off: {others} other Put Pages arrived, retry after {nxt['t'] - r['t']:.2f} s")
    if others < 16:
        bad.append(f"a back-off stalled the writer: only {others} other Put Pages during it")
    if nxt["t"] - r["t"] < 1.95:
        bad.append(f"Retry-After: 2 not honoured: retry after {nxt['t'] - r['t']:.3f} s")
print(f"requests {len(reqs)} (Put Page {len(pages)}), retries {retries}, "
      f"faults {sum(faults.values())}: {dict(sorted(faults.items()))}")
if sum(faults.values()) < 30:
    bad.append("fewer than 30 faults injected")
if len(faults) < 6:
    bad.append(f"not every kind of fault was injected: {sorted(faults)}")
for b in bad[:20]:
    print("BAD:", b)
sys.exit(1 if bad else 0)
PY
[ "$fails" -eq 0 ] && cat "$dir/out"
finish
