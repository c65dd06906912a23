#!/usr/bin/env bash
# The P1 job with CURVE off and on (--keys: every connection encrypted and authenticated), in
# alternating runs back to back (bench/p1_ab.sh), so the ratio on/off is measured, not guessed.
# Usage: bench/p1_curve.sh [PAIRS=5] [ROWS=2000000] [BUILD_DIR=build]
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${1:-5} ROWS=${2:-2000000} BUILD=${3:-build}
FMPS=$(readlink -f "$BUILD/launch/fmps")
WORK=${BENCH_DIR:-/tmp/fmps-bench}
mkdir -p "$WORK"
keys=$WORK/curve-keys
[ -f "$keys/cluster.key" ] || "$FMPS" keygen --out="$keys" >/dev/null
# The same binary; "B" adds --keys to train (p1_ab.sh calls B for gen as well).
wrapper=$WORK/fmps-with-keys
printf '#!/usr/bin/env bash\nif [ "$1" = train ]; then exec %q "$@" --keys=%q; fi\nexec %q "$@"\n' \
  "$FMPS" "$keys" "$FMPS" > "$wrapper"
chmod +x "$wrapper"
echo "A: CURVE off, B: CURVE on (--keys=$keys)"
bash bench/p1_ab.sh "$FMPS" "$wrapper" "$PAIRS" "$ROWS"
