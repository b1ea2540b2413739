#!/bin/bash
# siterec plan run / resume / status: 10 VMs protected with `siterec protect`
# and replicated once on a file:// target, a plan of 3 groups with a script and
# a manual action: a test run pauses at the manual action (exit 3), status says
# so, run refuses to start another and says paused (exit 3), resume finishes
# it; every test VM's description file is there; a cleanup run removes them.
# $1: the siterec binary.
bin=$1
. "$(dirname "$0")/lib.sh"
fail() { echo "FAIL: $1"; fails=$((fails + 1)); }

tgt=$dir/target out=$dir/disks hv=$dir/hv
mkdir -p "$tgt" "$out" "$hv"
url=file://$tgt
machines=()
for i in $(seq 0 9); do
  vm=vm$i
  truncate -s 1M "$dir/$vm.img"
  check 0 "protect $vm" "$bin" protect "$url" "$vm" "$dir/$vm-state" --disk "os:$dir/$vm.img:os" --interval 30
  check 0 "replicate $vm" "$bin" replicate "$dir/$vm-state" --cycles 1
  machines+=("{\"vm\":\"$vm\",\"disk_dir\":\"$out/$vm\",\"state_dir\":\"$dir/$vm-state\"}")
done
join() { local IFS=,; echo "$*"; }
cat >"$dir/plan.json" <<JSON
{"format":"siterec-plan","version":1,"name":"it-plan",
 "defaults":{"os":"Linux","format":"raw","point":"latest",
             "nics":[{"network":"corp","subnet":"back"}],
             "networks":[{"source":"corp","target":"vnet-dr","subnets":["front","back"]}]},
 "groups":[
  {"name":"db","machines":[$(join "${machines[@]:0:3}")],
   "after":[{"type":"script","name":"db-ready","command":"echo checked \$SITEREC_PLAN_OP \$SITEREC_PLAN_GROUP; echo \$SITEREC_PLAN_OP >> '$dir/script.log'"}]},
  {"name":"app","machines":[$(join "${machines[@]:3:3}")],
   "after":[{"type":"manual","name":"smoke-test","text":"Log in to the app and check it","ops":["test"]}]},
  {"name":"web","machines":[$(join "${machines[@]:6:4}")]}]}
JSON
common=(--url "$url" --state "$dir/plan-state.json" --vm-dir "$hv" --parallel 4)

check 3 "plan run --op test pauses at the manual action" "$bin" plan run "$dir/plan.json" --op test "${common[@]}"
need "group 1 db: test"; need "vm0: done, point"; need "action db-ready: done"; need "| checked test db"
need "paused at smoke-test: Log in to the app and check it"; need "siterec plan resume"
check 0 "plan status" "$bin" plan status "$dir/plan.json" "${common[@]}"
need "test paused"; need "6 of 10 machines done"
check 0 "plan status --json" "$bin" plan status "$dir/plan.json" "${common[@]}" --json
need '"state":"paused"'; need '"paused_at":"smoke-test"'
check 3 "plan run of a paused run says so" "$bin" plan run "$dir/plan.json" --op test "${common[@]}"
need "is paused at smoke-test"
check 0 "plan resume finishes it" "$bin" plan resume "$dir/plan.json" "${common[@]}"
need "group 3 web: test"; need "vm9: done"; need "test done: 10 of 10 machines done, 0 failed, 3 groups"
for i in $(seq 0 9); do
  [ -f "$hv/vm$i-test.vm.json" ] || fail "no description of the test VM vm$i-test"
  grep -Eq '"isolated":[[:space:]]*true' "$hv/vm$i-test.vm.json" 2>/dev/null || fail "vm$i-test not isolated"
done
[ "$(cat "$dir/script.log")" = "test" ] || fail "the script ran $(wc -l <"$dir/script.log") times"

check 0 "plan run --op cleanup (no pause: the manual action is for tests)" \
  "$bin" plan run "$dir/plan.json" --op cleanup "${common[@]}" --json
need '"state":"done"'; need '"done":10'
for i in $(seq 0 9); do
  [ -e "$hv/vm$i-test.vm.json" ] && fail "the test VM vm$i-test is still there"
done
check 0 "replication goes on after the drill" "$bin" replicate "$dir/vm0-state" --cycles 1

# bad input: a clear error, exit 2
echo '{"format":"siterec-plan","version":1,"name":"x","groups":[{"name":"g","machines":[{"vm":"vm0","nmae":"y"}]}]}' \
  >"$dir/bad.json"
check 2 "a bad plan is refused" "$bin" plan run "$dir/bad.json" --op test --url "$url" --state "$dir/bad-state.json"
need 'groups\[0\].machines\[0\]: unknown field "nmae"'
check 2 "a bad op is refused" "$bin" plan run "$dir/plan.json" --op drill "${common[@]}"
finish
