#!/usr/bin/env bash
# Benchmark P3 (issue 5): one streamed pass over ROWS generated rows, nothing written to disk. The generator
# feeds the trainer through pipes: with STREAMS=1 exactly `fmps gen | fmps train --data=-` (one worker reads
# stdin), with STREAMS=2 (default) two generators write into two named pipes so both workers read.
# Prints wall time, rows/s, the progress-line rates near 1e7/1e8/1e9 rows, peak RSS of every role, and a JSON line.
# Minibatches of BATCH=2000 rows, as bench/p1_fm.sh (why: there).
# P3_FLAGS adds flags to the training job (e.g. the bounded-memory ones: --min_count, --evict_after).
# Usage: [BATCH=2000] [P3_FLAGS=...] bench/p3_stream.sh [ROWS=10000000] [BUILD_DIR=build]
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
read -r -a extra <<<"${P3_FLAGS:-}"
JOB+=("${extra[@]}")
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
# Rate around 1e7, 1e8, 1e9 rows from the progress lines ("T s  epoch 1  rows N  R rows/s", R over the
# ~10 s since the previous line). Two figures per mark: R of the first line at or past the mark (at the end
# of the run the last full interval: the job's last line covers only the seconds since the one before it),
# and the mean rate over the last tenth of the rows up to the mark (from the last line before 0.9 x mark to
# the first at or past it; from the start for 1e7), which one slow or fast interval moves less.
progress=$(grep -o '[0-9.]* s  epoch [0-9]*  rows [0-9]*  [0-9]* rows/s' "$WORK/err" || true)
cp "$WORK/err" "${P3_LOG:-/tmp/fmps-p3-last.log}"
for mark in 10000000 100000000 1000000000; do
  [ "$ROWS" -ge "$mark" ] || continue
  awk -v m="$mark" '{ t[NR] = $1; rows[NR] = $6; rate[NR] = $7 } END {
    for (i = 1; i <= NR; i++) if (rows[i] + 0 >= m) break
    if (i > NR) exit
    j = (i == NR && i > 1) ? i - 1 : i
    s = 0; t0 = 0; r0 = 0
    for (k = 1; k < i; k++) if (rows[k] + 0 < 0.9 * m && m > 10000000) { t0 = t[k]; r0 = rows[k] }
    printf "at %d rows: rows %d  %d rows/s; over rows %d..%d: %.0f rows/s\n", m, rows[j], rate[j], r0,
           rows[i], (rows[i] - r0) / (t[i] - t0) }' <<<"$progress"
done
echo "progress lines: ${P3_LOG:-/tmp/fmps-p3-last.log}"
grep "Maximum resident" "$WORK/err" | sed 's/^\s*/launcher: /'
echo "$json"
