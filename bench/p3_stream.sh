#!/usr/bin/env bash
# Benchmark P3 (issue 5): one streamed pass over ROWS generated rows, nothing written to disk. The generator
# feeds the trainer through pipes: with STREAMS=1 exactly `fmps gen | fmps train --data=-` (one worker reads
# stdin), with STREAMS=2 (default) two generators write into two named pipes so both workers read.
# Prints wall time, rows/s, the progress-line rates near 1e7/1e8/1e9 rows, peak RSS of every role, and a JSON line.
# Minibatches of BATCH=2000 rows, as bench/p1_fm.sh (why: there).
# Usage: [BATCH=2000] bench/p3_stream.sh [ROWS=10000000] [BUILD_DIR=build]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
FMPS=${2:-build}/launch/fmps
STREAMS=${STREAMS:-2}
BATCH=${BATCH:-2000}
WORK=$(mktemp -d /tmp/fmps-p3.XXXXXX)
trap 'rm -rf "$WORK"; kill $(jobs -p) 2>/dev/null || true' EXIT
$FMPS gen --rows=100000 --seed=99 > "$WORK/test.txt" 2>/dev/null
JOB=(--test="$WORK/test.txt" --model=fm --k=8 --num_servers=2 --num_workers=2 --epochs=1 --progress_every=10 --batch_size="$BATCH")
start=$(date +%s.%N)
if [ "$STREAMS" = 1 ]; then
  $FMPS gen --rows="$ROWS" --seed=1 2>"$WORK/gen.log" | /usr/bin/time -v $FMPS train --data=- "${JOB[@]}" \
    > "$WORK/out" 2> "$WORK/err"
else
  data=""
  for i in $(seq "$STREAMS"); do
    mkfifo "$WORK/p$i"
    n=$((ROWS / STREAMS + (i <= ROWS % STREAMS ? 1 : 0)))
    $FMPS gen --rows="$n" --seed="$i" > "$WORK/p$i" 2>>"$WORK/gen.log" &
    data+="${data:+,}$WORK/p$i"
  done
  /usr/bin/time -v $FMPS train --data="$data" "${JOB[@]}" > "$WORK/out" 2> "$WORK/err"
fi
end=$(date +%s.%N)
json=$(tail -1 "$WORK/out")
echo "rows=$ROWS streams=$STREAMS wall_s=$(echo "$end - $start" | bc)"
echo "result: $json"
# Rate around 1e7, 1e8, 1e9 rows from the progress lines ("rows N  R rows/s", R over the ~10 s since the
# previous line): the first line at or past the mark, except that the last line of the job covers only the
# few seconds since the one before it, so at the end of the run the last full interval is taken instead.
progress=$(grep -o 'rows [0-9]*  [0-9]* rows/s' "$WORK/err" || true)
for mark in 10000000 100000000 1000000000; do
  [ "$ROWS" -ge "$mark" ] || continue
  line=$(awk -v m="$mark" '{ rows[NR] = $2; line[NR] = $0 } END {
    for (i = 1; i <= NR; i++) if (rows[i] + 0 >= m) { print line[(i == NR && i > 1) ? i - 1 : i]; exit } }' <<<"$progress")
  echo "at $mark rows: $line"
done
grep "Maximum resident" "$WORK/err" | sed 's/^\s*/launcher: /'
echo "$json"
