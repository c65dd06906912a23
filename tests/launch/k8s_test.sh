#!/usr/bin/env bash
# launch/k8s.sh and launch/k8s/ (Kubernetes), as far as a machine without a cluster can check them:
#   1. the manifest is consistent: a headless Service named as the pods' subdomain selecting the
#      Job's pods, an Indexed Job with completions = parallelism = 1 + S + W of its own args, the
#      container command where the Dockerfile puts k8s.sh, FMPS_HOST = the pod IP, the port;
#   2. the Dockerfile's runtime packages hold every shared library the fmps binary needs;
#   3. five "pods" -- network namespaces on a bridge, each with the hosts file kubelet and the
#      cluster DNS would give it (/etc/netns/NS/hosts) and the environment an Indexed Job sets
#      (JOB_COMPLETION_INDEX, HOSTNAME) -- run launch/k8s.sh with the manifest's own args (data
#      paths swapped for generated data), restarted on failure as restartPolicy OnFailure does:
#      the servers and workers start first and wait for the scheduler's name to resolve; mid-job a
#      worker's process is killed, then, once a checkpoint is written, the scheduler's: the
#      scheduler resumes, sends home the nodes of its earlier run, they rejoin, the job trains
#      every row, and every pod ends with exit 0;
#   4. the entrypoint's errors: an index beyond the job's pods (roles counted by `fmps roles`, from a
#      --flagfile and from the defaults), a bad role count, a scheduler name that never resolves.
# Usage: k8s_test.sh FMPS_BINARY. Part 3 needs root (exit 77 = skipped when not root, unless
# FMPS_REQUIRE_NETNS=1); parts 1, 2, 4 need python3-yaml and dpkg.
set -uo pipefail

FMPS=$(readlink -f "${1:?usage: k8s_test.sh FMPS_BINARY}")
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ENTRY=$REPO/launch/k8s.sh
MANIFEST=$REPO/launch/k8s/fmps.yaml
DOCKERFILE=$REPO/launch/k8s/Dockerfile
ROWS=200000
FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
[ -x "$FMPS" ] || { echo "no fmps binary at $1"; exit 2; }
python3 -c 'import yaml' 2>/dev/null || { echo "python3-yaml is missing (apt-get install python3-yaml)"; exit 1; }
WORK=$(mktemp -d /tmp/fmps-k8s.XXXXXX)

# --- 1. the manifest ---------------------------------------------------------------------------
# Prints the container's args, one per line, after checking the manifest.
ARGS=$(python3 - "$MANIFEST" "$DOCKERFILE" "$FMPS" <<'PY'
import re, subprocess, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dockerfile = open(sys.argv[2]).read()
errors = []
def check(ok, what):
    if not ok: errors.append(what)
svc = [d for d in docs if d["kind"] == "Service"]
job = [d for d in docs if d["kind"] == "Job"]
check(len(svc) == 1 and len(job) == 1, "want one Service and one Job")
svc, job = svc[0], job[0]
name = job["metadata"]["name"]
spec, pod = job["spec"], job["spec"]["template"]["spec"]
c = pod["containers"][0]
args = c["args"]
# The roles the args ask for, as the entrypoint counts them (`fmps roles`).
servers, workers = map(int, subprocess.check_output([sys.argv[3], "roles"] + args).split())
pods = 1 + servers + workers
check(svc["spec"].get("clusterIP") == "None", "the Service is not headless")
check(svc["metadata"]["name"] == pod.get("subdomain"), "the pods' subdomain is not the Service")
check(svc["spec"].get("selector") == {"job-name": name}, "the Service does not select the Job's pods")
check(spec.get("completionMode") == "Indexed", "the Job is not Indexed")
check(spec.get("completions") == pods and spec.get("parallelism") == pods,
      f"completions/parallelism {spec.get('completions')}/{spec.get('parallelism')}, the args need {pods}")
check(pod.get("restartPolicy") == "OnFailure", "failed pods are not restarted in place")
check(spec.get("successPolicy", {}).get("rules") == [{"succeededIndexes": "0"}],
      "the Job does not complete with its scheduler's pod (successPolicy)")
copied = re.search(r"^COPY launch/k8s.sh (\S+)", dockerfile, re.M)
check(copied and c["command"] == [copied.group(1)], f"command {c['command']} is not where the Dockerfile puts k8s.sh")
env = {e["name"]: e for e in c.get("env", [])}
check(env.get("FMPS_HOST", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP",
      "FMPS_HOST is not the pod IP")
ports = [p["containerPort"] for p in c.get("ports", [])]
check(ports == [9000] and [p["port"] for p in svc["spec"]["ports"]] == [9000],
      "the scheduler's port (k8s.sh default 9000) is not the container's and the Service's")
vols = {v["name"]: v for v in pod.get("volumes", [])}
mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
keys = vols.get("keys", {}).get("secret", {})
check(mounts.get("keys") == "/etc/fmps/keys" and keys.get("defaultMode") == 0o400,
      "the CURVE key Secret is not mounted at /etc/fmps/keys (k8s.sh's default) with mode 0400")
if errors:
    print("\n".join("manifest: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
print("\n".join(args))
PY
) || fail "launch/k8s/fmps.yaml is inconsistent (above)"
echo "manifest: $(wc -l <<<"$ARGS") args: $(tr "\n" " " <<<"$ARGS")"

# --- 2. the image's runtime libraries ------------------------------------------------------------
# debian:12-slim has libc6, libgcc-s1 and libstdc++6 (apt needs them); the rest must be installed.
packages=$(sed -n 's/^ARG RUNTIME_PACKAGES="\(.*\)"/\1/p' "$DOCKERFILE" | tr ' ' '\n')
[ -n "$packages" ] || fail "no ARG RUNTIME_PACKAGES=\"...\" in $DOCKERFILE"
for lib in $(readelf -d "$FMPS" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|x86_64|64bit/ {print $NF; exit}')
  [ -n "$path" ] || path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
  real=$(readlink -f "$path")
  pkg=$(dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || dpkg -S "/usr$real" 2>/dev/null)
  pkg=${pkg%%:*}
  case $pkg in
    libc6 | libgcc-s1 | libstdc++6) continue ;;
  esac
  grep -qx "$pkg" <<<"$packages" || fail "fmps needs $lib (package '$pkg'), which the Dockerfile does not install"
done

# --- 4. the entrypoint's errors (no root needed) ---------------------------------------------------
out=$(JOB_COMPLETION_INDEX=5 HOSTNAME=fmps-5 FMPS="$FMPS" bash "$ENTRY" --num_servers=2 --num_workers=2 2>&1)
[ $? = 2 ] && grep -q "completions and parallelism to 5" <<<"$out" ||
  fail "index 5 of a 5-pod job: '$out'"
out=$(JOB_COMPLETION_INDEX=3 HOSTNAME=fmps-3 FMPS="$FMPS" FMPS_DNS_WAIT=1 FMPS_HOST=127.0.0.1 \
  FMPS_SCHEDULER_HOST=fmps-0.nosuch.invalid bash "$ENTRY" --num_servers=2 --num_workers=2 2>&1)
[ $? = 2 ] && grep -q "fmps-0.nosuch.invalid did not resolve within 1 s" <<<"$out" ||
  fail "a scheduler name that never resolves: '$out'"
out=$(env -u JOB_COMPLETION_INDEX FMPS="$FMPS" bash "$ENTRY" 2>&1)
[ $? != 0 ] && grep -q "Indexed Job" <<<"$out" || fail "no JOB_COMPLETION_INDEX: '$out'"
# The roles are counted by fmps itself: from a --flagfile, from the defaults, and bad values refused.
printf -- '--num_servers=1\n--num_workers=1\n' > "$WORK/job.flags"
out=$(JOB_COMPLETION_INDEX=3 HOSTNAME=fmps-3 FMPS="$FMPS" bash "$ENTRY" --flagfile="$WORK/job.flags" 2>&1)
[ $? = 2 ] && grep -q "completions and parallelism to 3" <<<"$out" ||
  fail "index 3 of a 3-pod job given by --flagfile: '$out'"
out=$(JOB_COMPLETION_INDEX=5 HOSTNAME=fmps-5 FMPS="$FMPS" bash "$ENTRY" --data=x 2>&1)
[ $? = 2 ] && grep -q "completions and parallelism to 5" <<<"$out" ||
  fail "index 5 of a job of default size: '$out'"
out=$(JOB_COMPLETION_INDEX=1 HOSTNAME=fmps-1 FMPS="$FMPS" bash "$ENTRY" --num_servers=0 2>&1)
[ $? = 2 ] && grep -q "num_servers" <<<"$out" && grep -q "not valid" <<<"$out" ||
  fail "--num_servers=0: '$out'"

# --- 3. five pods ----------------------------------------------------------------------------------
[ -n "$ARGS" ] || { rm -rf "$WORK"; exit 1; }  # no job without the manifest's args
if [ "$(id -u)" != 0 ] || ! ip netns add "fmpsk8s$$-probe" 2>/dev/null; then
  rm -rf "$WORK"
  [ $FAILED = 0 ] || exit 1
  echo "SKIP part 3: needs root and network namespaces"
  [ "${FMPS_REQUIRE_NETNS:-0}" = 1 ] && exit 1
  exit 77
fi
ip netns del "fmpsk8s$$-probe"
PFX="fmpsk8s$$"
NET=10.67.0
PODS=(0 1 2 3 4)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for p in "${PODS[@]}" hub; do
    pids=$(ip netns pids "$PFX-$p" 2>/dev/null)
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    ip netns del "$PFX-$p" 2>/dev/null
    rm -rf "/etc/netns/$PFX-$p"
  done
  if [ $FAILED != 0 ]; then
    for f in "$WORK"/pod*.log; do
      [ -f "$f" ] && { echo "--- $f (last lines)"; tail -4 "$f"; }
    done
    echo "logs in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

ip netns add "$PFX-hub" && ip -n "$PFX-hub" link add br0 type bridge && ip -n "$PFX-hub" link set br0 up ||
  { echo "FAIL: bridge"; exit 1; }
for p in "${PODS[@]}"; do
  ns=$PFX-$p
  ip netns add "$ns"
  ip -n "$ns" link add eth0 type veth peer name "v$p" netns "$PFX-hub"
  ip -n "$ns" addr add "$NET.$((10 + p))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$PFX-hub" link set "v$p" master br0
  ip -n "$PFX-hub" link set "v$p" up
  # What kubelet writes into a pod's /etc/hosts; the cluster DNS answers for the others' names.
  mkdir -p "/etc/netns/$ns"
  printf '127.0.0.1\tlocalhost\n%s\tfmps-%s.fmps.default.svc.cluster.local\tfmps-%s\n' \
    "$NET.$((10 + p))" "$p" "$p" > "/etc/netns/$ns/hosts"
done

"$FMPS" gen --rows=$ROWS --seed=1 > "$WORK/train.txt" 2>/dev/null
"$FMPS" gen --rows=20000 --seed=2 > "$WORK/test.txt" 2>/dev/null
EPOCHS=30
job_args=()
while IFS= read -r a; do
  case $a in
    --data=*) a=--data=$WORK/train.txt ;;
    --test=*) a=--test=$WORK/test.txt ;;
    --model_dir=*) a=--model_dir=$WORK/model ;;
    --epochs=*) a=--epochs=$EPOCHS ;;
    --checkpoint_every=*) a=--checkpoint_every=1 ;;
  esac
  job_args+=("$a")
done <<<"$ARGS"
# A short heartbeat timeout, so that the killed worker is declared dead (and replaced) in seconds.
job_args+=(--heartbeat_timeout=3 --part_mb=1 --progress_every=0.5)

declare -A POD_PID
# A pod as Kubernetes runs it with restartPolicy OnFailure: launch/k8s.sh, started again in the
# same pod (same address and name) whenever it exits with an error.
start_pod() {  # INDEX
  local p=$1
  ip netns exec "$PFX-$p" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin JOB_COMPLETION_INDEX="$p" \
    HOSTNAME="fmps-$p" FMPS_HOST="$NET.$((10 + p))" FMPS="$FMPS" timeout -s KILL 150 \
    bash -c 'for try in 1 2 3 4 5 6; do
               bash "$0" "$@" && exit 0
               echo "kubelet: restarting the container (exit $?)" >&2; sleep 0.3
             done; exit 1' "$ENTRY" "${job_args[@]}" >> "$WORK/pod$p.out" 2>> "$WORK/pod$p.log" &
  POD_PID[$p]=$!
  PIDS+=($!)
}
wait_for() {  # SECONDS FILE PATTERN: true once PATTERN is in FILE
  for _ in $(seq $(($1 * 10))); do
    grep -q -- "$3" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
for p in 1 2 3 4; do start_pod "$p"; done
sleep 1.5
for p in 1 2 3 4; do
  kill -0 "${POD_PID[$p]}" 2>/dev/null || fail "pod $p did not wait for the scheduler's name: $(cat "$WORK/pod$p.log")"
done
# Pod 0 exists: its name resolves everywhere (appended in place: the bind-mounted file is the same).
for p in "${PODS[@]}"; do
  printf '%s\tfmps-0.fmps\n' "$NET.10" >> "/etc/netns/$PFX-$p/hosts"
done
start_pod 0

# 1. Once training is under way, worker pod 4's process dies; the pod restarts it.
wait_for 20 "$WORK/pod0.log" "rows [1-9]" || fail "no progress from the scheduler: $(tail -3 "$WORK/pod0.log")"
pkill -KILL -f -- "worker --scheduler=.* --host=$NET.14" || fail "no process of worker pod 4 to kill"
# 2. Once a checkpoint is written, the scheduler's process dies; pod 0 restarts it (--resume), and
#    the other pods, whose nodes belong to its earlier run, are sent home and restarted into it.
wait_for 30 "$WORK/pod0.log" "checkpoint [0-9]* written" || fail "no checkpoint: $(tail -3 "$WORK/pod0.log")"
grep -q '"rows"' "$WORK/pod0.out" && fail "the job ended before the scheduler could be killed: make it longer"
pkill -KILL -f -- "scheduler --host=$NET.10" || fail "no scheduler process to kill"

wait "${POD_PID[0]}"
rc=$?
json=$(tail -1 "$WORK/pod0.out")
echo "scheduler pod: exit $rc: $json"
[ $rc = 0 ] || fail "the scheduler pod exited $rc: $(tail -5 "$WORK/pod0.log")"
rows=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["rows"])' "$json" 2>/dev/null || true)
resumed=$(sed -n 's/.*"resumed_rows":\([0-9]*\).*/\1/p' <<<"$json")
[ "$rows" = $((ROWS * EPOCHS)) ] || fail "the job trained '$rows' rows, not $ROWS x $EPOCHS"
[ "${resumed:-0}" -gt 0 ] || fail "the restarted scheduler did not resume from a checkpoint ($json)"
# AUC, not logloss: many epochs of 200k rows overfit (the logloss rises), the ranking holds.
auc=$(sed -n 's/.*"test_auc":\([0-9.]*\).*/\1/p' <<<"$json")
awk -v a="$auc" 'BEGIN { exit !(a > 0.65) }' || fail "test AUC '$auc': the model did not learn"
for p in 1 2 3 4; do
  wait "${POD_PID[$p]}"
  prc=$?
  [ $prc = 0 ] || fail "pod $p exited $prc: $(tail -3 "$WORK/pod$p.log")"
done
for p in 1 2; do grep -q "fmps k8s: server (pod $p" "$WORK/pod$p.log" || fail "pod $p is not a server"; done
for p in 3 4; do grep -q "fmps k8s: worker (pod $p" "$WORK/pod$p.log" || fail "pod $p is not a worker"; done
grep -q "resuming from checkpoint" "$WORK/pod0.log" || fail "the restarted scheduler did not say it resumed"
sent_home=$(grep -c "earlier run of this scheduler: sent home" "$WORK/pod0.log")
[ "$sent_home" -ge 3 ] || fail "the restarted scheduler sent home $sent_home nodes of its earlier run, not >= 3"
for p in 1 2 3 4; do
  grep -q "kubelet: restarting" "$WORK/pod$p.log" || fail "pod $p was never restarted"
done
echo "restarts per pod: $(for p in 0 1 2 3 4; do echo -n "$p:$(grep -c "kubelet: restarting" "$WORK/pod$p.log") "; done)nodes sent home: $sent_home"
compgen -G "$WORK/model/MANIFEST-*" >/dev/null || fail "no checkpoint in --model_dir $WORK/model"
[ $FAILED = 0 ] && echo "PASS: Kubernetes entrypoint and manifest"
exit $FAILED
