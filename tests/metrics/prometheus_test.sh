#!/usr/bin/env bash
# A real Prometheus (Debian's package, run as a plain process: no systemd) scrapes every role of a
# local cluster (`fmps train --metrics_port=P`) and answers through its HTTP API: the scheduler's
# fmps_train_rows_total equals the job's rows, and every role was scraped. Skipped (77) when
# prometheus is not installed, unless FMPS_REQUIRE_PROMETHEUS=1 (scripts/test.sh installs it with
# FMPS_TEST=1 and sets it).
# usage: prometheus_test.sh FMPS_BINARY DATA_DIR
set -euo pipefail
FMPS=$1
DATA=$2
PROMETHEUS=$(command -v prometheus || true)
if [ -z "$PROMETHEUS" ]; then
  echo "prometheus is not installed (FMPS_TEST=1 bash scripts/deps.sh installs it)"
  [ "${FMPS_REQUIRE_PROMETHEUS:-0}" = 1 ] && exit 1
  exit 77
fi
DIR=$(mktemp -d)
PROM_PID=""
cleanup() {
  [ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT

# Five consecutive free ports for the roles (scheduler, 2 servers, 2 workers) and one for Prometheus.
read -r BASE PROM_PORT < <(python3 - <<'PY'
import socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
s = socket.socket(); s.bind(("127.0.0.1", 0)); prom = s.getsockname()[1]; s.close()
for base in range(21000, 60000, 7):
    if all(free(base + i) for i in range(5)) and not base <= prom < base + 5:
        print(base, prom); break
PY
)
TARGETS=$(python3 -c "print(', '.join(\"'127.0.0.1:%d'\" % ($BASE + i) for i in range(5)))")
cat > "$DIR/prometheus.yml" <<YML
global:
  scrape_interval: 500ms
  scrape_timeout: 500ms
scrape_configs:
  - job_name: fmps
    static_configs:
      - targets: [$TARGETS]
YML
"$PROMETHEUS" --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$DIR/prometheus.log" 2>&1 &
PROM_PID=$!
API="http://127.0.0.1:$PROM_PORT"
python3 - "$API" <<'PY' || { cat "$DIR/prometheus.log"; exit 1; }
import sys, time, urllib.request
for _ in range(300):
    try:
        if urllib.request.urlopen(sys.argv[1] + "/-/ready", timeout=2).status == 200:
            sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("prometheus did not become ready")
PY

# Prometheus scrapes (finding nobody) before the job starts, so the roles are scraped from their start.
python3 - "$API" <<'PY'
import json, sys, time, urllib.parse, urllib.request
q = urllib.parse.urlencode({"query": 'count(up{job="fmps"})'})
for _ in range(600):
    r = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/query?" + q, timeout=5))["data"]["result"]
    if r and r[0]["value"][1] == "5":
        sys.exit(0)
    time.sleep(0.1)
sys.exit("prometheus did not start scraping")
PY
# The job: long enough (seconds) for every role to be scraped; the scheduler keeps /metrics up for 5 s after it so the
# final figures are scraped.
"$FMPS" train --data="$DATA/train.txt" --epochs=300 --num_servers=2 --num_workers=2 \
  --metrics_port="$BASE" --metrics_linger=5 >"$DIR/train.out" 2>"$DIR/train.err" ||
  { cat "$DIR/train.err"; exit 1; }
grep "metrics (/metrics, /healthz) on" "$DIR/train.err"
ROWS=$(tail -n 1 "$DIR/train.out" | python3 -c "import json,sys; print(json.load(sys.stdin)['rows'])")
echo "job rows: $ROWS"

python3 - "$API" "$ROWS" "$BASE" <<'PY'
import json, sys, urllib.parse, urllib.request
api, rows, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def query(q):
    url = api + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    answer = json.load(urllib.request.urlopen(url, timeout=10))
    print("GET /api/v1/query?query=" + q + " ->", json.dumps(answer["data"]["result"]))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]
r = query('max_over_time(fmps_train_rows_total{job="fmps"}[10m])')
assert len(r) == 1 and r[0]["metric"]["instance"] == "127.0.0.1:%d" % base, r
assert int(float(r[0]["value"][1])) == rows, (r, rows)
# Every role was scraped at least once, and the workers' rows are at most the job's.
up = query('max_over_time(up{job="fmps"}[10m]) == 1')
assert len(up) == 5, up
w = query('sum(max_over_time(fmps_worker_train_rows_total[10m]))')
assert 0 < float(w[0]["value"][1]) <= rows, w
print("prometheus: fmps_train_rows_total =", rows, "as the job reported; 5 roles scraped")
PY
