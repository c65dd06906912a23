#!/usr/bin/env bash
# launch/slurm.sh on a real Slurm: a private slurmctld + slurmd (and munged, if none runs) on this
# machine, one node, ports picked here. Checks that
#   1. `sbatch -W launch/slurm.sh ...` trains every row and prints the scheduler's JSON line;
#   2. an allocation too small for the roles fails with a message saying so;
#   3. the roles a --flagfile asks for size the job (the script asks `fmps roles`).
# Usage: slurm_test.sh FMPS_BINARY CRITEO_DIR. Needs root. Exits 77 (skipped) when Slurm is not
# installed or we are not root, unless FMPS_REQUIRE_SLURM=1 (scripts/test.sh sets it).
set -euo pipefail
FMPS=$(realpath "$1")
DATA=$(realpath "$2")
SCRIPT=$(realpath "$(dirname "$0")/../../launch/slurm.sh")
skip() {
  echo "skipped: $*"
  [ "${FMPS_REQUIRE_SLURM:-0}" = 1 ] && exit 1
  exit 77
}
for b in slurmctld slurmd sbatch munged; do
  command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || skip "$b is not installed (apt-get install slurmctld slurmd slurm-client munge)"
done
[ "$(id -u)" = 0 ] || skip "slurmd needs root"
T=$(mktemp -d /tmp/fmps-slurm.XXXXXX)
chmod 755 "$T"
STARTED_MUNGE=0
stop() {  # PIDFILE: TERM, then KILL if it is still there after 5 s
  [ -f "$1" ] || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  scancel --user="$(id -un)" 2>/dev/null || true
  stop "$T/slurmd.pid"
  stop "$T/slurmctld.pid"
  if [ "$STARTED_MUNGE" = 1 ]; then pkill -x munged 2>/dev/null || true; fi
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$T"/*.log "$T"/*.err "$T"/*.out; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done; exit 1; }

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1 || fail "munged did not start"
  STARTED_MUNGE=1
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
H=$(hostname -s)
mkdir -p "$T/state" "$T/spool"
cat > "$T/slurm.conf" <<CONF
ClusterName=fmpstest
SlurmctldHost=$H(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$H NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
CONF
export SLURM_CONF=$T/slurm.conf
# Daemons get no stdio of ours: ctest reads our output through a pipe until every writer is gone.
/usr/sbin/slurmctld -f "$SLURM_CONF" </dev/null >/dev/null 2>&1 || fail "slurmctld did not start"
/usr/sbin/slurmd -f "$SLURM_CONF" </dev/null >/dev/null 2>&1 || fail "slurmd did not start"
for _ in $(seq 100); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 0.2; done
sinfo -h -o %t | grep -q idle || fail "the node did not come up: $(sinfo 2>&1)"

# 1. A whole job: 5 tasks (scheduler, 2 servers, 2 workers) overcommitted on this node's cores.
FMPS=$FMPS sbatch -W -O -n 5 --chdir="$T" --output="$T/job.out" --error="$T/job.err" --export=ALL \
  "$SCRIPT" --num_servers=2 --num_workers=2 --data="$DATA/train.txt" --test="$DATA/test.txt" \
  --format=criteo --epochs=1 > "$T/sbatch.log" || fail "sbatch job failed"
rows=$(tail -1 "$T/job.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])') ||
  fail "no JSON line on the job's stdout"
want=$(wc -l < "$DATA/train.txt")
[ "$rows" = "$want" ] || fail "trained $rows rows, want $want"
grep -q "fmps: scheduler on $H" "$T/job.err" || fail "the script did not say where the scheduler runs"
echo "ok 1: $rows rows in a Slurm job of 5 tasks"

# 2. Too few tasks for the roles.
if FMPS=$FMPS sbatch -W -O -n 3 --chdir="$T" --output="$T/small.out" --error="$T/small.err" \
     --export=ALL "$SCRIPT" --num_servers=2 --num_workers=2 --data="$DATA/train.txt" > /dev/null 2>&1; then
  fail "a 3-task allocation for 5 roles succeeded"
fi
grep -q "need 5" "$T/small.err" || fail "no clear message for a too-small allocation"
echo "ok 2: a too-small allocation is refused with a message"

# 3. One server and one worker given by a flagfile fit 3 tasks.
printf -- '--num_servers=1\n--num_workers=1\n' > "$T/job.flags"
FMPS=$FMPS sbatch -W -O -n 3 --chdir="$T" --output="$T/ff.out" --error="$T/ff.err" --export=ALL \
  "$SCRIPT" --flagfile="$T/job.flags" --data="$DATA/train.txt" --format=criteo --epochs=1 \
  > /dev/null || fail "a 3-task job sized by --flagfile failed: $(tail -3 "$T/ff.err")"
rows=$(tail -1 "$T/ff.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"])') ||
  fail "no JSON line on the flagfile job's stdout"
[ "$rows" = "$want" ] || fail "the flagfile job trained $rows rows, want $want"
echo "ok 3: $rows rows in a job of 3 tasks sized by --flagfile"
echo PASS
