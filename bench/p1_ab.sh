#!/usr/bin/env bash
# The P1 job (FM k=8, ROWS generated rows, one epoch, scheduler + 2 servers + 2 workers over
# ZeroMQ TCP) with two fmps binaries in alternating runs, back to back on this machine: how a change
# is judged "within noise" (the machine's speed drifts by several percent over minutes, so each
# pair runs close together). Prints every run, then each binary's median rows/s and CPU seconds
# and the ratio B/A.
# Usage: bench/p1_ab.sh BINARY_A BINARY_B [PAIRS=5] [ROWS=2000000] [extra train flags...]
set -euo pipefail
A=$1 B=$2 PAIRS=${3:-5} ROWS=${4:-2000000}
shift $(( $# < 4 ? $# : 4 ))
WORK=${BENCH_DIR:-/tmp/fmps-bench}
mkdir -p "$WORK"
train=$WORK/train-$ROWS.txt test=$WORK/test-$((ROWS / 10)).txt
[ -s "$train" ] || "$B" gen --rows="$ROWS" --seed=1 > "$train" 2>/dev/null
[ -s "$test" ] || "$B" gen --rows=$((ROWS / 10)) --seed=2 > "$test" 2>/dev/null
run() {  # BINARY -> "rows_per_s cpu_s test_logloss"
  local TIMEFORMAT="%U %S" t out
  t=$( { time "$1" train --data="$train" --test="$test" --model=fm --k=8 --num_servers=2 \
          --num_workers=2 --epochs=1 --batch_size=2000 "${@:2}" >"$WORK/ab.out" 2>"$WORK/ab.log"; } 2>&1 )
  out=$(tail -1 "$WORK/ab.out")
  python3 -c '
import json, sys
j = json.loads(sys.argv[1]); u, s = map(float, sys.argv[2].split())
print("%.0f %.2f %.4f" % (j["rows_per_s"], u + s, j["test_logloss"]))' "$out" "$t"
}
a_runs=() b_runs=()
for ((i = 1; i <= PAIRS; i++)); do
  a_runs+=("$(run "$A" "$@")"); echo "pair $i A: ${a_runs[-1]}  (rows/s, CPU s, test logloss)"
  b_runs+=("$(run "$B" "$@")"); echo "pair $i B: ${b_runs[-1]}"
done
python3 - "${#a_runs[@]}" "${a_runs[@]}" "${b_runs[@]}" <<'PY'
import statistics, sys
n = int(sys.argv[1]); a = [list(map(float, x.split())) for x in sys.argv[2:2 + n]]
b = [list(map(float, x.split())) for x in sys.argv[2 + n:]]
med = lambda rows, i: statistics.median(r[i] for r in rows)
print("A median: %.0f rows/s, %.2f CPU s, test logloss %.4f" % (med(a, 0), med(a, 1), med(a, 2)))
print("B median: %.0f rows/s, %.2f CPU s, test logloss %.4f" % (med(b, 0), med(b, 1), med(b, 2)))
print("B/A: rows/s x%.3f, CPU s x%.3f" % (med(b, 0) / med(a, 0), med(b, 1) / med(a, 1)))
PY
