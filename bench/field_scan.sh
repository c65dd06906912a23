#!/usr/bin/env bash
# The field scan a libffm/libsvm job runs before it starts (every input, whole): ROWS generated rows as
# libffm (the Criteo rows of `fmps gen`, column c -> field c-2, C26 left out), plain, gzip and zstd, with
# field 38 only in the last line; against `wc -l` / `zcat | wc -l` / `zstdcat | wc -l` on the same file (the bytes' limit).
# Usage: bench/field_scan.sh [ROWS=1000000] [BUILD_DIR=build]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
BUILD=${2:-build}
WORK=${BENCH_DIR:-/tmp/fmps-field-scan}
mkdir -p "$WORK"
f=$WORK/gen-$ROWS.libffm
if [ ! -s "$f" ]; then
  $BUILD/launch/fmps gen --rows="$ROWS" --seed=1 2>/dev/null | awk -F'\t' -v n="$ROWS" '{
    line = $1
    for (c = 2; c <= 39; c++) if ($c != "") line = line " " (c - 2) ":" $c ":1"
    if (NR == n) line = line " 38:late:1"
    print line }' > "$f"
fi
[ -s "$f.gz" ] || gzip -1 -c "$f" > "$f.gz"
[ -s "$f.zst" ] || zstd -q -1 -c "$f" > "$f.zst"
secs() { local s=$(date +%s.%N); "$@" > /dev/null; echo "$(date +%s.%N) - $s" | bc; }
json="["
printf "%-28s %7s %9s %8s %9s %13s\n" input fields lines MB seconds "wc-l seconds"
for spec in "$f cat" "$f.gz zcat" "$f.zst zstdcat"; do
  set -- $spec
  out=$($BUILD/bench/field_scan_bench libffm "$1")
  limit=$(secs bash -c "$2 '$1' | wc -l")
  get() { sed -n "s/^$1 //p" <<<"$out"; }
  printf "%-28s %7s %9s %8s %9s %13.3f\n" "$(basename "$1")" "$(get fields)" "$(get lines)" \
    "$(get mb)" "$(get seconds)" "$limit"
  json+="{\"input\":\"$(basename "$1")\",\"fields\":$(get fields),\"mb\":$(get mb),\"seconds\":$(get seconds),\"mb_per_s\":$(get mb_per_s),\"wc_l_seconds\":$limit},"
done
echo "${json%,}]"
