#!/usr/bin/env bash
# Reader throughput (issue 5): each reader alone over the same generated Criteo rows, plain, gzip and zstd,
# against the machine's limit for the bytes (`wc -l` on the same file, and `zcat`/`zstdcat | wc -l` for the
# compressed ones), plus Frappe (libfm) and Avazu. Prints one line per input and a JSON line.
# Usage: bench/readers.sh [ROWS=1000000] [BUILD_DIR=build]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
BUILD=${2:-build}
WORK=${BENCH_DIR:-/tmp/fmps-readers}
SHARED=${SHARED_DIR:-$(cd .. && pwd)/shared}
mkdir -p "$WORK"
f=$WORK/criteo-$ROWS.txt
[ -s "$f" ] || $BUILD/launch/fmps gen --rows="$ROWS" --seed=1 > "$f" 2>/dev/null
[ -s "$f.gz" ] || gzip -1 -c "$f" > "$f.gz"
[ -s "$f.zst" ] || zstd -q -1 -c "$f" > "$f.zst"
frappe=$WORK/frappe-x20.libfm avazu=$WORK/avazu-x100.csv
if [ ! -s "$frappe" ]; then for i in $(seq 20); do cat "$SHARED/data/frappe/frappe.validation.libfm"; done > "$frappe"; fi
if [ ! -s "$avazu" ]; then
  head -1 "$SHARED/data/avazu-8k/train.csv" > "$avazu"
  for i in $(seq 100); do tail -n +2 "$SHARED/data/avazu-8k/train.csv"; done >> "$avazu"
fi
secs() { local s=$(date +%s.%N); "$@" > /dev/null; echo "$(date +%s.%N) - $s" | bc; }
json="["
printf "%-22s %10s %10s %9s %12s\n" input rows/s MB/s seconds "wc-l seconds"
for spec in "$f criteo cat" "$f.gz criteo zcat" "$f.zst criteo zstdcat" "$frappe libsvm cat" "$avazu avazu cat"; do
  set -- $spec
  out=$($BUILD/bench/reader_bench "$1" "$2" | tail -1)
  limit=$(secs bash -c "$3 '$1' | wc -l")
  rps=$(sed -n 's/.*"rows_per_s":\([0-9.e+]*\).*/\1/p' <<<"$out")
  mbs=$(sed -n 's/.*"mb_per_s":\([0-9.e+]*\).*/\1/p' <<<"$out")
  sec=$(sed -n 's/.*"seconds":\([0-9.e+]*\).*/\1/p' <<<"$out")
  printf "%-22s %10.0f %10.1f %9.3f %12.3f\n" "$(basename "$1") ($2)" "$rps" "$mbs" "$sec" "$limit"
  json+="{\"input\":\"$(basename "$1")\",\"rows_per_s\":$rps,\"mb_per_s\":$mbs,\"seconds\":$sec,\"wc_seconds\":$limit},"
done
echo "${json%,}]"
