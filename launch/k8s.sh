#!/usr/bin/env bash
# Runs one role of an fmps job as a pod of a Kubernetes Indexed Job (launch/k8s/fmps.yaml): the
# pod's completion index picks the role, as a Slurm task's rank does in launch/slurm.sh: index 0 is
# the scheduler, 1..S the servers, the rest the workers. The scheduler's JSON line is the last line
# of pod 0's log; its exit status is the job's.
#
#   (container args) --num_servers=2 --num_workers=4 --data=/data/day*.gz --model_dir=/data/model ...
#
# Every flag is the job's (as for `fmps train`), read by the scheduler; servers and workers get
# theirs from it when they join. The Job's completions must be 1 + S + W.
# Environment (Kubernetes sets the first two):
#   JOB_COMPLETION_INDEX  the pod's index (required)
#   HOSTNAME              the pod's hostname, <job name>-<index> in an Indexed Job
#   FMPS_HOST             address this pod listens on and tells its peers (the manifest passes the pod
#                         IP through the downward API); default: the first `hostname -i` address
#   FMPS_SCHEDULER_HOST   DNS name of the scheduler's pod; default <job name>-0.$FMPS_SERVICE, the
#                         name the headless Service gives pod 0 (the pods' `subdomain`)
#   FMPS_SERVICE          the headless Service (default fmps)
#   FMPS_PORT             the scheduler's port (default 9000)
#   FMPS_JOB_ID           the job's id, the same for every pod (default the Job's name)
#   FMPS_KEYS             directory of the cluster's CURVE key (default /etc/fmps/keys when it holds
#                         cluster.key: the manifest mounts the Secret fmps-keys there)
#   FMPS_DNS_WAIT         seconds to wait for the scheduler's name to resolve (default 300): pods
#                         start in any order and a name exists only once its pod does
#   FMPS                  the fmps binary (default: fmps on PATH, else build/launch/fmps of this repo)
set -euo pipefail

die() {
  echo "fmps k8s: $*" >&2
  exit 2
}

index=${JOB_COMPLETION_INDEX:?run this as a pod of an Indexed Job (JOB_COMPLETION_INDEX is unset)}
[[ $index =~ ^[0-9]+$ ]] || die "JOB_COMPLETION_INDEX=$index is not an index"
if [ -z "${FMPS:-}" ]; then
  FMPS=$(command -v fmps || true)
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  [ -n "$FMPS" ] || FMPS="$here/../build/launch/fmps"
fi
[ -x "$FMPS" ] || die "cannot run the fmps binary '$FMPS': set FMPS=/path/to/fmps"

# The roles come from fmps itself, so --flagfile, defaults and bad values count as for the job.
counts=$("$FMPS" roles "$@") || die "the job's flags are not valid (above)"
read -r servers workers <<<"$counts"
tasks=$((1 + servers + workers))
if [ "$index" -ge "$tasks" ]; then
  die "pod index $index, but $servers servers + $workers workers + the scheduler are $tasks pods: set the Job's completions and parallelism to $tasks"
fi

port=${FMPS_PORT:-9000}
host=${FMPS_HOST:-$(hostname -i 2>/dev/null | awk '{print $1}')}
[ -n "$host" ] || die "no address for this pod: set FMPS_HOST (the manifest passes status.podIP)"
pod=${HOSTNAME:-$(hostname)}
job=${pod%-"$index"}
[ "$job" != "$pod" ] || [ -n "${FMPS_SCHEDULER_HOST:-}" ] ||
  die "hostname '$pod' is not <job>-$index: set FMPS_SCHEDULER_HOST"
sched_name=${FMPS_SCHEDULER_HOST:-$job-0.${FMPS_SERVICE:-fmps}}
# Every pod of the job, and a scheduler pod restarted in place, share the job's id (not a secret).
export FMPS_JOB_ID=${FMPS_JOB_ID:-$job}
# The key is read from the mounted Secret by every role, never passed on a command line.
if [ -z "${FMPS_KEYS:-}" ] && [ -f /etc/fmps/keys/cluster.key ]; then export FMPS_KEYS=/etc/fmps/keys; fi

if [ "$index" = 0 ]; then
  echo "fmps k8s: scheduler ($sched_name, $host:$port) for $servers servers and $workers workers" >&2
  exec "$FMPS" scheduler --host="$host" --port="$port" "$@"
fi

# The scheduler's name resolves once its pod exists and the Service lists it; its address is
# looked up here once (a restarted scheduler pod restarts the others: they lose it and fail).
wait_s=${FMPS_DNS_WAIT:-300}
deadline=$((SECONDS + wait_s))
until sched_addr=$(getent hosts "$sched_name" | awk '{print $1; exit}') && [ -n "$sched_addr" ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "the scheduler's name $sched_name did not resolve within $wait_s s"
  sleep 0.5
done
if [ "$index" -le "$servers" ]; then
  role=server
else
  role=worker
fi
echo "fmps k8s: $role (pod $index, $host), scheduler $sched_name = $sched_addr:$port" >&2
# The logging flags and --metrics_port (each pod has its own address) reach every role.
node_flags=()
for a in "$@"; do
  case $a in
    --log_dir=* | --v=* | --minloglevel=* | --vmodule=* | --metrics_port=*) node_flags+=("$a") ;;
  esac
done
exec "$FMPS" "$role" --scheduler="$sched_addr:$port" --host="$host" "${node_flags[@]}"
