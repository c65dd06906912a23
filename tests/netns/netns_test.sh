#!/usr/bin/env bash
# Network-trouble test (issue 6): real fmps processes in separate network namespaces joined by a
# bridge, first on a clean network, then with 5% random packet loss (nftables, on every node's
# link) and an added delay on every worker connection (tests/netns/delay_proxy.py, a transparent
# user-space proxy: the kernel has no netem). Asserts that the troubled job completes with the
# same rows and a test logloss within 3% of the clean job, and that nodes which cannot be reached
# are named by the scheduler (a worker whose link is down at join; a server whose link goes down
# mid-job) and the job fails in bounded time instead of hanging.
#
# Usage: netns_test.sh FMPS_BINARY. Needs root (exit 77 = skipped when not root or no namespaces).
# Knobs (environment, for manual runs): NETNS_ROWS (300000), NETNS_LOSS (5 %), NETNS_DELAY_MS (3),
# NETNS_KEEP=1 keeps the work directory with every node's log.
set -uo pipefail

FMPS=$(readlink -f "${1:?usage: netns_test.sh FMPS_BINARY}")
export FMPS_JOB_ID=netns-test  # every role started here joins this job
HERE=$(cd "$(dirname "$0")" && pwd)
ROWS=${NETNS_ROWS:-300000}
# Two passes of 300k rows. Asynchronous workers make the test logloss vary from run to run by up to
# 2.4% even on a clean network (0.4901-0.5017 over 12 local runs of this job, 2026-11-25), so the
# troubled job is held to 3%; a job that lost updates fails the equal-rows check or lands near the
# base rate (0.56).
EPOCHS=2
LOSS=${NETNS_LOSS:-5}
DELAY_MS=${NETNS_DELAY_MS:-3}
PYTHON=$(command -v /usr/bin/python3 || command -v python3)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; FAILED=1; }
[ "$(id -u)" -eq 0 ] || skip "needs root for network namespaces and nftables"
[ -x "$FMPS" ] || { echo "no fmps binary at $1"; exit 2; }
if ! command -v nft >/dev/null; then
  echo "installing nftables"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nftables >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nftables >/dev/null 2>&1; } ||
    skip "nftables is missing and could not be installed"
fi
[ -n "$PYTHON" ] || skip "python3 is missing (needed by delay_proxy.py)"

ID=$$
PFX="fmps$ID"  # every namespace is $PFX-<node>, so parallel runs never collide
HUB="$PFX-hub"
NET=10.66.0
SCHED_PORT=9100
PROXY_PORT=9199
MARK=0x6d70  # delay_proxy.py's upstream connections carry it and skip the redirect rules
declare -A IP=([sch]=$NET.1 [s1]=$NET.11 [s2]=$NET.12 [w1]=$NET.21 [w2]=$NET.22 [w3]=$NET.23)
NODES=(sch s1 s2 w1 w2 w3)
WORK=$(mktemp -d /tmp/fmps-netns.XXXXXX)
FAILED=0
PIDS=()
declare -A NODE_PID

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  # Anything else still running inside our namespaces was started by this script.
  for n in "${NODES[@]}" hub; do
    local pids
    pids=$(ip netns pids "$PFX-$n" 2>/dev/null)
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
  done
  # Deleting a namespace deletes its veth ends (and so the peers) and its nftables tables.
  for n in "${NODES[@]}" hub; do ip netns del "$PFX-$n" 2>/dev/null; done
  if [ "${NETNS_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then echo "logs in $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_ns() { local n=$1; shift; ip netns exec "$PFX-$n" "$@"; }

# --- topology: one bridge in a hub namespace, one veth pair per node --------------------------
setup_network() {
  ip netns add "$HUB" || skip "cannot create network namespaces"
  ip -n "$HUB" link add br0 type bridge || skip "no bridge support"
  ip -n "$HUB" link set br0 up
  ip -n "$HUB" link set lo up
  for n in "${NODES[@]}"; do
    ip netns add "$PFX-$n" || return 1
    ip -n "$PFX-$n" link add eth0 type veth peer name "p-$n" netns "$HUB" || return 1
    ip -n "$PFX-$n" addr add "${IP[$n]}/24" dev eth0
    ip -n "$PFX-$n" link set eth0 up
    ip -n "$PFX-$n" link set lo up
    ip -n "$HUB" link set "p-$n" master br0
    ip -n "$HUB" link set "p-$n" up
  done
  # The bridge needs a moment to forward; wait until the scheduler reaches every node.
  for n in s1 s2 w1 w2 w3; do
    local ok=0
    for _ in $(seq 50); do
      in_ns sch "$PYTHON" -c "import socket,sys; s=socket.socket(); s.settimeout(0.2)
try: s.connect(('${IP[$n]}', 1))
except ConnectionRefusedError: sys.exit(0)
except OSError: sys.exit(1)" && { ok=1; break; }
      sleep 0.1
    done
    [ $ok = 1 ] || { echo "node $n not reachable from the scheduler namespace"; return 1; }
  done
}

# 5% of the packets arriving on every node's link are dropped (so about 5% of each path's packets).
add_loss() {
  for n in "${NODES[@]}"; do
    in_ns "$n" nft -f - <<EOF || return 1
table inet fmps_loss {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "eth0" numgen random mod 100 < $LOSS counter drop
  }
}
EOF
  done
}

# Every TCP connection out of and into a worker namespace goes through the worker's delay proxy.
add_delay() {
  for n in w1 w2; do
    in_ns "$n" nft -f - <<EOF || return 1
table ip fmps_delay {
  chain output {
    type nat hook output priority -100; policy accept;
    meta mark != $MARK ip daddr $NET.0/24 ip daddr != ${IP[$n]} meta l4proto tcp counter redirect to :$PROXY_PORT
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    iifname "eth0" tcp dport != $PROXY_PORT counter redirect to :$PROXY_PORT
  }
}
EOF
    ip netns exec "$PFX-$n" "$PYTHON" "$HERE/delay_proxy.py" --port=$PROXY_PORT --delay_ms="$DELAY_MS" --mark=$((MARK)) \
      --stats="$WORK/proxy-$n.json" 2> "$WORK/proxy-$n.log" &
    PIDS+=($!)
    PROXY_PIDS+=($!)
  done
  sleep 0.5
}

remove_trouble() {
  for n in "${NODES[@]}"; do in_ns "$n" nft delete table inet fmps_loss 2>/dev/null; done
  for n in w1 w2; do in_ns "$n" nft delete table ip fmps_delay 2>/dev/null; done
}

# --- one job: scheduler, servers and workers each in its namespace ---------------------------
field() {  # a top-level field of a JSON line (nested objects hold fields of the same name)
  python3 -c 'import json, sys
try: v = json.loads(sys.argv[2]).get(sys.argv[1])
except Exception: v = None
print("" if v is None else v)' "$1" "$2"
}

# run_job NAME TIMEOUT_S "SERVERS" "WORKERS" SCHEDULER_FLAGS... : runs the scheduler and the nodes in
# their namespaces (NODE_FLAGS go to servers and workers; ON_START runs once all are started) and
# waits for the scheduler. Sets JOB_RC, JOB_JSON, JOB_SECONDS (scheduler's), NODE_PID[name].
run_job() {
  local name=$1 limit=$2 servers=$3 workers=$4; shift 4
  local sched=$NET.1:$SCHED_PORT start end n role
  start=$(date +%s.%N)
  # `ip netns exec` execs timeout, so $! is a pid that forwards TERM to fmps; KILL is the backstop.
  ip netns exec "$PFX-sch" timeout -s KILL "$limit" "$FMPS" scheduler --host=$NET.1 --port=$SCHED_PORT \
    --data="$WORK/train.txt" --test="$WORK/test.txt" "$@" \
    > "$WORK/$name-sch.out" 2> "$WORK/$name-sch.log" &
  local sched_pid=$!
  PIDS+=($sched_pid)
  NODE_PID=()
  for n in $servers $workers; do
    role=worker; [[ $n == s* ]] && role=server
    ip netns exec "$PFX-$n" timeout -s KILL "$limit" "$FMPS" $role --scheduler=$sched --host="${IP[$n]}" \
      ${NODE_FLAGS:-} > /dev/null 2> "$WORK/$name-$n.log" &
    NODE_PID[$n]=$!
    PIDS+=($!)
  done
  [ -n "${ON_START:-}" ] && $ON_START
  wait $sched_pid
  JOB_RC=$?
  end=$(date +%s.%N)
  JOB_SECONDS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  JOB_JSON=$(tail -1 "$WORK/$name-sch.out")
  echo "$name: scheduler exit $JOB_RC after $JOB_SECONDS s: $JOB_JSON"
}

# reap_node NAME SECONDS: waits up to SECONDS for node NAME of the last job to exit, then kills it;
# sets NODE_RC (the node's exit code, or "killed").
reap_node() {
  local pid=${NODE_PID[$1]} deadline=$(($(date +%s) + $2))
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null; sleep 0.2; kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    NODE_RC=killed
  else
    wait "$pid"
    NODE_RC=$?
  fi
}

# every_node_exits NAME SECONDS NODES...: fails unless each node exits 0 within SECONDS.
every_node_exits() {
  local job=$1 limit=$2; shift 2
  for n in "$@"; do
    reap_node "$n" "$limit"
    [ "$NODE_RC" = 0 ] || fail "$job job: $n exited '$NODE_RC' (see $WORK/$job-$n.log)"
  done
}

# ============================================================================================
echo "work directory $WORK, namespaces $PFX-*"
setup_network || { echo "FAIL: network setup"; exit 1; }
"$FMPS" gen --rows="$ROWS" --seed=1 > "$WORK/train.txt" 2> /dev/null || { echo "fmps gen failed"; exit 1; }
"$FMPS" gen --rows=20000 --seed=2 > "$WORK/test.txt" 2> /dev/null
JOB=(--num_servers=2 --num_workers=2 --epochs=$EPOCHS --part_mb=1 --heartbeat_timeout=15 --join_timeout=30)

# 1. clean network
run_job clean 120 "s1 s2" "w1 w2" "${JOB[@]}"
[ "$JOB_RC" = 0 ] || fail "clean job: scheduler exit $JOB_RC (see $WORK/clean-sch.log)"
every_node_exits clean 20 s1 s2 w1 w2
clean_json=$JOB_JSON clean_seconds=$JOB_SECONDS
clean_rows=$(field rows "$clean_json") clean_ll=$(field test_logloss "$clean_json")

# 2. the same job through 5% loss and the delay proxies
PROXY_PIDS=()
declare -A NODE_PID
add_loss || { echo "FAIL: nftables loss rules"; exit 1; }
add_delay || { echo "FAIL: nftables redirect rules"; exit 1; }
run_job troubled 150 "s1 s2" "w1 w2" "${JOB[@]}"
[ "$JOB_RC" = 0 ] || fail "troubled job: scheduler exit $JOB_RC (see $WORK/troubled-sch.log)"
every_node_exits troubled 30 s1 s2 w1 w2
trouble_json=$JOB_JSON trouble_seconds=$JOB_SECONDS
trouble_rows=$(field rows "$trouble_json") trouble_ll=$(field test_logloss "$trouble_json")
[ -n "$clean_rows" ] && [ "$trouble_rows" = "$clean_rows" ] ||
  fail "rows differ: clean '$clean_rows', troubled '$trouble_rows'"
[ "$clean_rows" = $((ROWS * EPOCHS)) ] || fail "clean job trained $clean_rows rows, not $ROWS x $EPOCHS epochs"
rel=$(awk -v a="$clean_ll" -v b="$trouble_ll" 'BEGIN { if (a <= 0 || b <= 0) print "nan"; else printf "%.4f", 100 * (b - a) / a }')
awk -v r="$rel" 'BEGIN { exit !(r != "nan" && r < 3 && r > -3) }' ||
  fail "test logloss clean $clean_ll vs troubled $trouble_ll ($rel %) not within 3%"

# The trouble was real: packets were dropped and the proxies carried the workers' bytes.
dropped=0
for n in "${NODES[@]}"; do
  d=$(in_ns "$n" nft list table inet fmps_loss | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
  dropped=$((dropped + ${d:-0}))
done
for pid in "${PROXY_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
proxied=$(cat "$WORK"/proxy-w*.json 2>/dev/null | "$PYTHON" -c "import json,sys
print(sum(json.loads(l)['bytes_out'] + json.loads(l)['bytes_in'] for l in sys.stdin))" 2>/dev/null)
proxy_conns=$(cat "$WORK"/proxy-w*.json 2>/dev/null | "$PYTHON" -c "import json,sys
print(sum(json.loads(l)['connections'] for l in sys.stdin))" 2>/dev/null)
[ "${dropped:-0}" -gt 0 ] || fail "no packet was dropped: the loss rules did not act"
[ "${proxied:-0}" -gt $((ROWS * 10)) ] || fail "the delay proxies carried only '${proxied:-}' bytes"
remove_trouble
echo "dropped $dropped packets; proxies carried $proxied bytes over $proxy_conns connections"

# 3. a worker that cannot reach the scheduler (link down from the start): named, bounded failure
ip -n "$PFX-w3" link set eth0 down
NODE_FLAGS=--join_timeout=10 run_job unreachable 60 "s1 s2" "w1 w3" "${JOB[@]}" --join_timeout=10
[ "$JOB_RC" != 0 ] || fail "scheduler exit 0 although a worker never registered"
awk -v t="$JOB_SECONDS" 'BEGIN { exit !(t < 30) }' || fail "scheduler took $JOB_SECONDS s to give up (join_timeout 10)"
# The nodes that came are told the job will not start; the cut-off one gives up by its own timeout.
for n in s1 s2 w1; do
  reap_node $n 15
  [ "$NODE_RC" != killed ] || fail "unreachable job: $n still ran 15 s after the scheduler gave up"
done
reap_node w3 20
[ "$NODE_RC" != killed ] && [ "$NODE_RC" != 0 ] || fail "unreachable worker w3 exited '$NODE_RC', not an error"
grep -q "no node table from the scheduler at $NET.1:$SCHED_PORT" "$WORK/unreachable-w3.log" ||
  fail "the unreachable worker's log does not name the scheduler it could not reach"
grep -q "only 2 of 2 servers and 1 of 2 workers registered" "$WORK/unreachable-sch.log" ||
  fail "the scheduler's log does not say that 1 of 2 workers registered"
grep -q "registered: WORKER pid [0-9]* at ${IP[w1]}:" "$WORK/unreachable-sch.log" ||
  fail "the scheduler's log does not name the worker that did register (w1 at ${IP[w1]})"
grep -q "registered: WORKER pid [0-9]* at ${IP[w3]}:" "$WORK/unreachable-sch.log" &&
  fail "the scheduler's log lists the unreachable worker w3 as registered"
grep -m1 "workers registered" "$WORK/unreachable-sch.log"

# 4. a server whose link goes down mid-job: declared dead by name, the job fails in bounded time
cut_s2() {
  # Wait until training runs, then cut the link of server s2 (its process keeps running).
  for _ in $(seq 100); do grep -q "rows/s" "$WORK/cut-sch.log" 2>/dev/null && break; sleep 0.1; done
  ip -n "$PFX-s2" link set eth0 down
}
ON_START=cut_s2 run_job cut 90 "s1 s2" "w1 w2" --num_servers=2 --num_workers=2 --epochs=50 --part_mb=1 \
  --heartbeat_timeout=4 --replace_timeout=6
[ "$JOB_RC" != 0 ] || fail "scheduler exit 0 although server s2 was cut off"
awk -v t="$JOB_SECONDS" 'BEGIN { exit !(t < 60) }' || fail "scheduler took $JOB_SECONDS s to give up on a cut-off server"
# The nodes that can hear it are told the job failed, and exit with that error (not 0: a supervisor
# must not count them done), naming the reason.
for n in s1 w1 w2; do
  reap_node "$n" 20
  [ "$NODE_RC" != killed ] && [ "$NODE_RC" != 0 ] || fail "cut job: $n exited '$NODE_RC', not with the job's error"
  grep -q "the scheduler ended the job: no replacement for dead server" "$WORK/cut-$n.log" ||
    fail "cut job: $n does not say why it stopped (see $WORK/cut-$n.log)"
done
reap_node s2 0  # cut off, it cannot hear the SHUTDOWN
grep -q "SERVER pid [0-9]* at ${IP[s2]}:[0-9]*) missed heartbeats .* declared dead" "$WORK/cut-sch.log" ||
  fail "the scheduler did not declare the cut-off server (s2 at ${IP[s2]}) dead by name"
grep -q "no replacement for dead server(s) .*(SERVER pid [0-9]* at ${IP[s2]}:" "$WORK/cut-sch.log" ||
  fail "the job failure does not name the cut-off server s2"
grep -q "WORKER.*declared dead" "$WORK/cut-sch.log" &&
  fail "a worker waiting on the cut-off server was declared dead with it"
grep -m2 "declared dead\|no replacement" "$WORK/cut-sch.log"

echo "RESULT clean: rows $clean_rows, test_logloss $clean_ll, $clean_seconds s;" \
  "troubled (${LOSS}% loss, ${DELAY_MS} ms each way): rows $trouble_rows, test_logloss $trouble_ll ($rel %)," \
  "$trouble_seconds s"
[ "$FAILED" = 0 ] && echo PASS
exit "$FAILED"
