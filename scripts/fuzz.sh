#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan/UBSan) and runs each for DURATION seconds on a
# scratch copy of its seed corpus, two at a time. Prints per harness: runs, coverage, crashes.
# Exits non-zero when any harness crashed, timed out or broke an invariant; the inputs that did
# are kept under $FUZZ_OUT/artifacts.
#
# Usage: scripts/fuzz.sh [DURATION=60] [HARNESS...]
#   env: FUZZ_BUILD_DIR (default /tmp/build-fuzz), FUZZ_OUT (default: a new temp dir),
#        FUZZ_JOBS (harnesses run at once, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION=${1:-60}
shift || true
ALL=(reader_criteo reader_avazu reader_libffm reader_libsvm gzip_source zstd_source kv_messages store checkpoint live_socket)
HARNESSES=("${ALL[@]}")
if [ $# -gt 0 ]; then HARNESSES=("$@"); fi
BUILD=${FUZZ_BUILD_DIR:-/tmp/build-fuzz}
OUT=${FUZZ_OUT:-$(mktemp -d /tmp/fmps-fuzz.XXXXXX)}
JOBS=${FUZZ_JOBS:-2}
mkdir -p "$OUT"

if ! command -v clang++-14 >/dev/null || [ -z "$(ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ]; then
  FMPS_FUZZ=1 bash scripts/deps.sh
fi

CC=clang-14 CXX=clang++-14 bash scripts/cmake_configure.sh "$BUILD" -DCMAKE_BUILD_TYPE=Release -DFMPS_FUZZ=ON
targets=()
for h in "${HARNESSES[@]}"; do targets+=("fuzz_$h"); done
make -C "$BUILD" -j2 "${targets[@]}" >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }

mkdir -p "$OUT/artifacts"
# Smaller ASan quarantine: the readers allocate a 4 MiB buffer per part, and a large quarantine
# only adds page faults and RSS here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local h=$1 corpus="$OUT/corpus/$1"
  rm -rf "$corpus"
  mkdir -p "$corpus"
  cp "$ROOT/fuzz/corpus/$h/"* "$corpus/"
  set +e
  "$BUILD/fuzz/fuzz_$h" -max_total_time="$DURATION" -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$OUT/artifacts/$h-" "$corpus" >"$OUT/$h.log" 2>&1
  echo $? >"$OUT/$h.rc"
  set -e
}

running=0
for h in "${HARNESSES[@]}"; do
  run_one "$h" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-14s %10s %8s %8s %s\n' harness runs cov crashes log
for h in "${HARNESSES[@]}"; do
  log="$OUT/$h.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  rc=$(cat "$OUT/$h.rc")
  crashes=$(ls "$OUT/artifacts" | grep -c "^$h-" || true)
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
  [ "$crashes" -ne 0 ] && failed=1
  printf '%-14s %10s %8s %8s %s\n' "$h" "${runs:-?}" "${cov:-?}" "$crashes" "$log"
done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: crash or invariant failure; inputs in $OUT/artifacts:" >&2
  ls "$OUT/artifacts" >&2
  exit 1
fi
echo "fuzz: no crashes (${DURATION}s per harness); scratch in $OUT"
