#!/usr/bin/env bash
# Fault-injection benchmark (issue 6): the same job clean, with a worker SIGKILLed mid-epoch, with a server
# SIGKILLed and restarted from the last checkpoint (--restart_failed), and with the scheduler SIGKILLed and the
# job resumed (--resume). Prints one line per run (rows, test logloss vs clean, seconds) and a JSON summary.
# The kill comes 3 s into the job: ROWS must keep the job running well past that (at ~1M rows/s, 1M rows
# finished first and nothing was killed mid-job), hence 4M by default.
# Usage: bench/faults.sh [ROWS=4000000] [BUILD_DIR=build]
set -uo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-4000000}
FMPS=${2:-build}/launch/fmps
WORK=${BENCH_DIR:-/tmp/fmps-faults}
mkdir -p "$WORK"
train=$WORK/train-$ROWS.txt test=$WORK/test.txt
[ -s "$train" ] || $FMPS gen --rows="$ROWS" --seed=1 > "$train" 2>/dev/null
[ -s "$test" ] || $FMPS gen --rows=100000 --seed=2 > "$test" 2>/dev/null
JOB=(--data="$train" --test="$test" --epochs=2 --part_mb=2 --heartbeat_timeout=3 --checkpoint_every=2)
field() {  # a top-level field of a JSON line (nested objects hold fields of the same name)
  python3 -c 'import json, sys
try: v = json.loads(sys.argv[2]).get(sys.argv[1])
except Exception: v = None
print("" if v is None else v)' "$1" "$2"
}

run() {  # name, seconds before the kill (0: none), pkill pattern, extra flags...
  local name=$1 delay=$2 pattern=$3; shift 3
  rm -rf "$WORK/model-$name"
  local start=$(date +%s.%N)
  $FMPS train "${JOB[@]}" --model_dir="$WORK/model-$name" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  local pid=$!
  if [ "$delay" != 0 ]; then sleep "$delay"; pkill -9 -n -f "$pattern"; fi
  wait $pid
  local rc=$?
  if [ "$name" = scheduler ]; then  # the launcher stops the rest; resume from the newest checkpoint
    $FMPS train "${JOB[@]}" --model_dir="$WORK/model-$name" --resume > "$WORK/$name.out" 2>> "$WORK/$name.err"
    rc=$?
  fi
  local end=$(date +%s.%N)
  local json=$(tail -1 "$WORK/$name.out")
  echo "$name|$rc|$(field rows "$json")|$(field test_logloss "$json")|$(field test_auc "$json")|$(echo "$end - $start" | bc)"
}

results=()
results+=("$(run clean 0 x)")
results+=("$(run worker 3 'fmps worker' --restart_failed=1)")
results+=("$(run server 3 'fmps server' --restart_failed=1)")
results+=("$(run scheduler 3 'fmps scheduler')")
clean_ll=$(cut -d'|' -f4 <<<"${results[0]}")
# Every run must train exactly ROWS x 2 epochs (each part once per epoch, resumed rows included)
# and reach the clean run's test logloss within 1%.
want_rows=$((ROWS * 2))
failed=0
printf "%-10s %4s %10s %12s %8s %9s %8s  %s\n" fault exit rows test_ll vs_clean auc seconds check
for r in "${results[@]}"; do
  IFS='|' read -r name rc rows ll auc secs <<<"$r"
  rel=$(python3 -c "print('%+.2f%%' % (100*($ll-$clean_ll)/$clean_ll))" 2>/dev/null || echo "?")
  check=ok
  [ "$rc" = 0 ] || check="FAIL(exit)"
  [ "$rows" = "$want_rows" ] || check="FAIL(rows $rows != $want_rows)"
  python3 -c "import sys; sys.exit(0 if abs($ll-$clean_ll) <= 0.01*$clean_ll else 1)" 2>/dev/null ||
    check="FAIL(logloss)"
  [ "$check" = ok ] || failed=1
  printf "%-10s %4s %10s %12s %8s %9s %8.1f  %s\n" "$name" "$rc" "$rows" "$ll" "$rel" "$auc" "$secs" "$check"
done
grep -h "declared dead\|replaces\|resuming\|restarted as" "$WORK"/{worker,server,scheduler}.err | sed 's/^[^]]*] /  /'
printf '{"clean_logloss":%s,"runs":[%s]}\n' "$clean_ll" "$(printf '"%s",' "${results[@]}" | sed 's/,$//')"
exit $failed
