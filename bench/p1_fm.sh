#!/usr/bin/env bash
# Benchmarks P1 and P2 (issues 3 and 5): FM k=8 on ROWS generated rows (+ ROWS/10 test rows), one epoch,
#   P1: the full local cluster (scheduler, 2 servers, 2 workers as processes over ZeroMQ TCP),
#   P2: the same job with every role a thread of one process (in-process transport),
# and xLearn FM on the same rows in the same run (../shared/peers/run-peer.sh), 1 epoch and its
# default 10. Prints one figure per line, the ratios, and a JSON line at the end.
# Usage: bench/p1_fm.sh [ROWS=2000000] [BUILD_DIR=build]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-2000000}
BUILD=${2:-build}
FMPS=$BUILD/launch/fmps
PEERS=${PEERS_DIR:-$(cd .. && pwd)/shared/peers}
WORK=${BENCH_DIR:-/tmp/fmps-bench}
mkdir -p "$WORK"
TEST_ROWS=$((ROWS / 10))
train=$WORK/train-$ROWS.txt test=$WORK/test-$TEST_ROWS.txt
[ -s "$train" ] || $FMPS gen --rows="$ROWS" --seed=1 > "$train" 2> "$WORK/gen.log"
[ -s "$test" ] || $FMPS gen --rows="$TEST_ROWS" --seed=2 > "$test" 2>> "$WORK/gen.log"
grep -h "oracle" "$WORK/gen.log" | tail -1 | sed 's/^/gen: /' || true

field() { sed -n "s/.*\"$1\":\([-0-9.e]*\).*/\1/p" <<<"$2"; }
peer_field() { sed -n "s/.* $1=\([-0-9.e]*\).*/\1/p" <<<"$2"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
p1=$($FMPS train --data="$train" --test="$test" --model=fm --k=8 --num_servers=2 --num_workers=2 --epochs=1 2>"$WORK/p1.log" | tail -1)
echo "P1 full stack (2 servers, 2 workers, ZeroMQ TCP): $p1"
p2=$($FMPS train --data="$train" --test="$test" --model=fm --k=8 --num_servers=2 --num_workers=2 --epochs=1 --inprocess 2>"$WORK/p2.log" | tail -1)
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
python3 - "$ours" "$inproc" "$(field test_logloss "$p1")" "$(field peak_rss_mb "$p1")" \
  "$(peer_field rows_per_s "$x1")" "$(peer_field pass_rows_per_s "$x1")" "$(peer_field logloss "$x1")" \
  "$(peer_field rows_per_s "$x10")" "$(peer_field pass_rows_per_s "$x10")" "$(peer_field logloss "$x10")" <<'PY'
import json, sys
def num(s):
    try: return float(s)
    except ValueError: return None
ours, inproc, ll, rss, x1, x1p, x1l, x10, x10p, x10l = map(num, sys.argv[1:])
out = {"rows_per_s": ours, "inprocess_rows_per_s": inproc, "test_logloss": ll, "peak_rss_mb": rss,
       "full_over_inprocess": ours / inproc if inproc else None}
for name, e2e, per_pass, loss in (("xlearn_1epoch", x1, x1p, x1l), ("xlearn_10epochs", x10, x10p, x10l)):
    if e2e:
        out[name] = {"rows_per_s": e2e, "pass_rows_per_s": per_pass, "logloss": loss,
                     "ours_over_end_to_end": ours / e2e, "ours_over_pass": ours / per_pass if per_pass else None}
print("full stack / in-process: %.2f" % out["full_over_inprocess"])
for name in ("xlearn_1epoch", "xlearn_10epochs"):
    if name in out:
        o = out[name]
        print("%s: ours/end-to-end %.2f, ours/per-pass %.2f, logloss ours %.4f vs %.4f" %
              (name, o["ours_over_end_to_end"], o["ours_over_pass"], ll, o["logloss"]))
print(json.dumps(out))
PY
