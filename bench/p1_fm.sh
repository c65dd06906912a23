#!/usr/bin/env bash
# Benchmarks P1 and P2 (issues 3 and 5): FM k=8 on ROWS generated rows (+ ROWS/10 test rows), one epoch,
#   P1: the full local cluster (scheduler, 2 servers, 2 workers as processes over ZeroMQ TCP),
#   P2: the same job with every role a thread of one process (in-process transport),
# and xLearn FM on the same rows in the same run (../shared/peers/run-peer.sh), 1 epoch and its
# default 10. Prints one figure per line, the ratios, and a JSON line at the end.
# Also the P1 job over EPOCHS=3 epochs: epochs after the first replay the minibatches the workers
# kept in their part caches, so their rate is the update loop alone, which is what xLearn's
# pass_rows_per_s measures (its per-epoch time, with the text parsed before the first).
# RUNS > 1 runs P1 and P2 alternately that many times and keeps each one's best run (on a shared
# machine the other load only ever slows a run down); every run's rate and CPU seconds (user +
# sys of all its processes, which the other load barely moves) are printed and kept in the JSON.
# Minibatches of BATCH=2000 rows (the default --batch_size is 1000, which small data sets need): on 2M
# rows 2000 gives the same test logloss as 1000 (0.4726 vs 0.4730) at +10-17% rows/s, 4000 and
# more cost logloss (0.481 at 4000). docs/performance-log.md has both.
# Usage: [BATCH=2000] bench/p1_fm.sh [ROWS=2000000] [BUILD_DIR=build] [RUNS=1]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-2000000}
BUILD=${2:-build}
RUNS=${3:-1}
BATCH=${BATCH:-2000}
FMPS=$BUILD/launch/fmps
PEERS=${PEERS_DIR:-$(cd .. && pwd)/shared/peers}
WORK=${BENCH_DIR:-/tmp/fmps-bench}
mkdir -p "$WORK"
TEST_ROWS=$((ROWS / 10))
train=$WORK/train-$ROWS.txt test=$WORK/test-$TEST_ROWS.txt
[ -s "$train" ] || $FMPS gen --rows="$ROWS" --seed=1 > "$train" 2> "$WORK/gen.log"
[ -s "$test" ] || $FMPS gen --rows="$TEST_ROWS" --seed=2 > "$test" 2>> "$WORK/gen.log"
grep -h "oracle" "$WORK/gen.log" | tail -1 | sed 's/^/gen: /' || true

field() {  # a top-level field of a JSON line (nested objects hold fields of the same name)
  python3 -c 'import json, sys
try: v = json.loads(sys.argv[2]).get(sys.argv[1])
except Exception: v = None
print("" if v is None else v)' "$1" "$2"
}
peer_field() { sed -n "s/.* $1=\([-0-9.e]*\).*/\1/p" <<<"$2"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
# One job: prints the JSON line with "cpu_s" (user + sys of the job's processes) added.
run_job() {
  local log=$1 out
  shift
  local TIMEFORMAT="%U %S" t
  t=$( { time $FMPS train --data="$train" --test="$test" --model=fm --k=8 --num_servers=2 \
           --num_workers=2 --epochs=1 --batch_size="$BATCH" "$@" 2>"$log" >"$log.out"; } 2>&1 )
  out=$(tail -1 "$log.out")
  python3 -c 'import sys; u, s = map(float, sys.argv[2].split()); print(sys.argv[1][:-1] + ", \"cpu_s\": %.2f}" % (u + s))' "$out" "$t"
}
best() {  # the JSON line with the highest rows_per_s among the arguments
  for j in "$@"; do echo "$(field rows_per_s "$j") $j"; done | sort -g -r | head -1 | cut -d' ' -f2-
}
EPOCHS=${EPOCHS:-3}
p1_runs=() p2_runs=() pc_runs=()
for ((r = 1; r <= RUNS; r++)); do
  pc_runs+=("$(run_job "$WORK/pc.log" --epochs="$EPOCHS")")
  echo "P1 over $EPOCHS epochs run $r: epochs $(sed -n 's/.*"epoch_rows_per_s":\[\([^]]*\)\].*/\1/p' <<<"${pc_runs[-1]}") rows/s, replayed $(field replayed_rows "${pc_runs[-1]}") rows, test logloss $(field test_logloss "${pc_runs[-1]}"), peak RSS $(field peak_rss_mb "${pc_runs[-1]}") MB"
  p1_runs+=("$(run_job "$WORK/p1.log")")
  echo "P1 run $r: $(field rows_per_s "${p1_runs[-1]}") rows/s, $(field cpu_s "${p1_runs[-1]}") CPU s"
  p2_runs+=("$(run_job "$WORK/p2.log" --inprocess)")
  echo "P2 run $r: $(field rows_per_s "${p2_runs[-1]}") rows/s, $(field cpu_s "${p2_runs[-1]}") CPU s"
done
p1=$(best "${p1_runs[@]}")
p2=$(best "${p2_runs[@]}")
echo "P1 full stack (2 servers, 2 workers, ZeroMQ TCP): $p1"
echo "P2 in-process transport:                       $p2"

x1="" x10=""
if [ -x "$PEERS/run-peer.sh" ]; then
  [ -s "$WORK/train-$ROWS.ffm" ] || "$PEERS/to-libffm.sh" criteo "$train" > "$WORK/train-$ROWS.ffm" 2>/dev/null
  [ -s "$WORK/test-$TEST_ROWS.ffm" ] || "$PEERS/to-libffm.sh" criteo "$test" > "$WORK/test-$TEST_ROWS.ffm" 2>/dev/null
  x1=$("$PEERS/run-peer.sh" xlearn-fm "$WORK/train-$ROWS.ffm" "$WORK/test-$TEST_ROWS.ffm" 8 1 2>/dev/null | tail -1)
  echo "xLearn FM, 1 epoch:   $x1"
  x10=$("$PEERS/run-peer.sh" xlearn-fm "$WORK/train-$ROWS.ffm" "$WORK/test-$TEST_ROWS.ffm" 8 10 2>/dev/null | tail -1)
  echo "xLearn FM, 10 epochs: $x10"
fi

ours=$(field rows_per_s "$p1")
inproc=$(field rows_per_s "$p2")
p1_all=$(for j in "${p1_runs[@]}"; do echo -n "$(field rows_per_s "$j"):$(field cpu_s "$j") "; done)
p2_all=$(for j in "${p2_runs[@]}"; do echo -n "$(field rows_per_s "$j"):$(field cpu_s "$j") "; done)
pc_all=$(printf '%s\n' "${pc_runs[@]}")
python3 - "$ours" "$inproc" "$(field test_logloss "$p1")" "$(field peak_rss_mb "$p1")" \
  "$(peer_field rows_per_s "$x1")" "$(peer_field pass_rows_per_s "$x1")" "$(peer_field logloss "$x1")" \
  "$(peer_field rows_per_s "$x10")" "$(peer_field pass_rows_per_s "$x10")" "$(peer_field logloss "$x10")" \
  "$p1_all" "$p2_all" "$pc_all" <<'PY'
import json, sys
def num(s):
    try: return float(s)
    except ValueError: return None
ours, inproc, ll, rss, x1, x1p, x1l, x10, x10p, x10l = map(num, sys.argv[1:11])
runs = [[[float(v) for v in r.split(":")] for r in a.split()] for a in sys.argv[11:13]]
out = {"rows_per_s": ours, "inprocess_rows_per_s": inproc, "test_logloss": ll, "peak_rss_mb": rss,
       "full_over_inprocess": ours / inproc if inproc else None,
       "runs": {"full": [{"rows_per_s": r, "cpu_s": c} for r, c in runs[0]],
                "inprocess": [{"rows_per_s": r, "cpu_s": c} for r, c in runs[1]]}}
# The P1 job over several epochs: the replayed epochs' rate (best run), against xLearn's pass.
cached = [json.loads(l) for l in sys.argv[13].splitlines() if l.strip()]
if cached:
    best_run = max(cached, key=lambda j: max(j["epoch_rows_per_s"][1:] or [0]))
    later = best_run["epoch_rows_per_s"][1:]
    out["epochs"] = {"epoch_rows_per_s": [j["epoch_rows_per_s"] for j in cached],
                     "replayed_rows": [j["replayed_rows"] for j in cached],
                     "test_logloss": [j["test_logloss"] for j in cached],
                     "peak_rss_mb": [j["peak_rss_mb"] for j in cached],
                     "replayed_pass_rows_per_s": sum(later) / len(later) if later else None}
if runs[0] and runs[1]:  # the work the network path adds, as the other load cannot hide it
    out["inprocess_cpu_over_full"] = min(c for _, c in runs[1]) / min(c for _, c in runs[0])
for name, e2e, per_pass, loss in (("xlearn_1epoch", x1, x1p, x1l), ("xlearn_10epochs", x10, x10p, x10l)):
    if e2e:
        out[name] = {"rows_per_s": e2e, "pass_rows_per_s": per_pass, "logloss": loss,
                     "ours_over_end_to_end": ours / e2e, "ours_over_pass": ours / per_pass if per_pass else None}
print("full stack / in-process: %.2f" % out["full_over_inprocess"])
if "inprocess_cpu_over_full" in out:
    print("CPU seconds, in-process / full stack: %.2f" % out["inprocess_cpu_over_full"])
for name in ("xlearn_1epoch", "xlearn_10epochs"):
    if name in out:
        o = out[name]
        print("%s: ours/end-to-end %.2f, ours/per-pass %.2f, logloss ours %.4f vs %.4f" %
              (name, o["ours_over_end_to_end"], o["ours_over_pass"], ll, o["logloss"]))
        replayed = out.get("epochs", {}).get("replayed_pass_rows_per_s")
        if replayed and o["pass_rows_per_s"]:
            o["replayed_pass_over_pass"] = replayed / o["pass_rows_per_s"]
            print("%s: our replayed epochs (%.0f rows/s, best run's mean) / its per-pass %.2f" %
                  (name, replayed, o["replayed_pass_over_pass"]))
print(json.dumps(out))
PY
