#!/usr/bin/env bash
#SBATCH --job-name=fmps
# Runs an fmps job inside a Slurm allocation, one role per task: task 0 is the scheduler, tasks
# 1..S the servers, the rest the workers. The scheduler's JSON line is this script's last line of
# stdout; its exit status is the job's.
#
#   sbatch -N 4 -n 9 launch/slurm.sh --num_servers=2 --num_workers=6 --data=/shared/day*.gz ...
#   salloc -N 4 -n 9 launch/slurm.sh --num_servers=2 --num_workers=6 ...
#
# Every flag is the job's (as for `fmps train`); the roles it asks for (`fmps roles`, --flagfile too)
# must fit the allocation: 1 + S + W tasks. Data paths must be readable on every node.
# Environment: FMPS (path of fmps on the nodes; default: build/launch/fmps under the directory the
# job was submitted from, else fmps on PATH), FMPS_PORT (scheduler port; default 9000 + job id mod 1000), FMPS_JOB_ID (default slurm-<job id>), FMPS_KEYS (the cluster key's directory on a shared file system, `fmps keygen`; srun passes it on), FMPS_IFACE_ADDR (address a
# node listens on; default its first `hostname -I` address).
set -euo pipefail

node_addr() {
  if [ -n "${FMPS_IFACE_ADDR:-}" ]; then echo "$FMPS_IFACE_ADDR"; return; fi
  local a
  a=$(hostname -I 2>/dev/null | awk '{print $1}')
  echo "${a:-127.0.0.1}"
}

# One task of the step: the role by rank. Passed to srun as text (sbatch runs a copy of this
# script that other nodes cannot read).
fmps_task() {
  local sched=$1 servers=$2
  shift 2
  # The logging flags and --metrics_port reach every role; a port P becomes P + rank, so tasks
  # sharing a node do not collide.
  local node_flags=() a
  for a in "$@"; do
    case $a in
      --log_dir=* | --v=* | --minloglevel=* | --vmodule=*) node_flags+=("$a") ;;
      --metrics_port=*)
        local p=${a#--metrics_port=}
        [ "$p" -gt 0 ] 2>/dev/null && p=$((p + SLURM_PROCID))
        node_flags+=("--metrics_port=$p") ;;
    esac
  done
  if [ "$SLURM_PROCID" = 0 ]; then
    exec "$FMPS" scheduler --host="${sched%:*}" --port="${sched##*:}" "$@"
  elif [ "$SLURM_PROCID" -le "$servers" ]; then
    exec "$FMPS" server --scheduler="$sched" --host="$(node_addr)" "${node_flags[@]}" </dev/null >/dev/null
  else
    exec "$FMPS" worker --scheduler="$sched" --host="$(node_addr)" "${node_flags[@]}" </dev/null >/dev/null
  fi
}

: "${SLURM_JOB_ID:?run this inside a Slurm allocation (sbatch or salloc)}"
if [ -z "${FMPS:-}" ]; then
  for f in "${SLURM_SUBMIT_DIR:-.}/build/launch/fmps" "$(command -v fmps || true)"; do
    if [ -n "$f" ] && [ -x "$f" ]; then FMPS=$(realpath "$f"); break; fi
  done
fi
: "${FMPS:?cannot find the fmps binary: set FMPS=/path/to/fmps}"
export FMPS

# The roles come from fmps itself, so --flagfile, defaults and bad values count as for the job.
counts=$("$FMPS" roles "$@") || { echo "fmps: the job's flags are not valid (above)" >&2; exit 2; }
read -r servers workers <<<"$counts"
tasks=$((1 + servers + workers))
if [ "${SLURM_NTASKS:-$tasks}" -lt "$tasks" ]; then
  echo "fmps: the allocation has $SLURM_NTASKS tasks; $servers servers + $workers workers + the scheduler need $tasks" >&2
  exit 2
fi
# The scheduler runs as task 0, which srun places on the allocation's first node.
first=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -1)
if [ "$first" = "$(hostname)" ] || [ "$first" = "$(hostname -s)" ]; then
  sched_host=$(node_addr)
else
  sched_host=$(srun -N1 -n1 -w "$first" bash -c "$(declare -f node_addr); node_addr")
fi
port=${FMPS_PORT:-$((9000 + SLURM_JOB_ID % 1000))}
# Every task joins the same job (the id is not a secret; srun passes the environment on).
export FMPS_JOB_ID=${FMPS_JOB_ID:-slurm-$SLURM_JOB_ID}
echo "fmps: scheduler on $first ($sched_host:$port), $servers servers, $workers workers, $FMPS" >&2
exec srun --ntasks="$tasks" --kill-on-bad-exit=1 --distribution=block \
  bash -c "$(declare -f node_addr fmps_task); fmps_task \"\$@\"" fmps-task "$sched_host:$port" "$servers" "$@"
