#!/usr/bin/env bash
# The Lambda path end to end, without AWS: `cargo lambda watch` serves the ingest
# function, `cargo lambda invoke` sends it the sample EventBridge event, and a
# static file server stands in for CoinGecko with a real /coins/markets body.
# Run by `just test` after the cargo tests; needs the stack up and migrated.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
DATA_DIR="${CRYPTO_DATA_DIR:-$ROOT/../shared/data}"
WATCH_PORT="${LAMBDA_WATCH_PORT:-9009}"
FAKE_PORT="${FAKE_COINGECKO_PORT:-9010}"
LOG_DIR="$ROOT/.state/logs"
mkdir -p "$LOG_DIR"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# CoinGecko stand-in: http.server ignores the query string, so the file
# coins/markets answers GET /coins/markets?ids=... with the five default coins.
mkdir -p "$work/coins"
python3 - "$DATA_DIR/coingecko/dashbrd_coins_markets.json" "$work/coins/markets" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))
keep = {"bitcoin", "ethereum", "solana", "ripple", "binancecoin"}
json.dump([i for i in items if i["id"] in keep], open(sys.argv[2], "w"))
PY
setsid python3 -m http.server "$FAKE_PORT" --bind 127.0.0.1 --directory "$work" >"$LOG_DIR/fake-coingecko.log" 2>&1 &
pids+=($!)

export COINGECKO_BASE_URL="http://127.0.0.1:$FAKE_PORT"
setsid cargo lambda watch -A 127.0.0.1 -P "$WATCH_PORT" >"$LOG_DIR/lambda-watch.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 120); do
  (exec 3<>"/dev/tcp/127.0.0.1/$WATCH_PORT") 2>/dev/null && break
  sleep 1
done

# The first invoke compiles the function (quick: the tests built it already).
out="$(cargo lambda invoke ingest -A 127.0.0.1 -P "$WATCH_PORT" --data-file events/ingest.json 2>&1)" || {
  echo "lambda-smoke: invoke failed: $out" >&2
  tail -n 30 "$LOG_DIR/lambda-watch.log" >&2
  exit 1
}
echo "lambda-smoke: response: $out"
python3 - "$out" <<'PY'
import json, sys
report = json.loads(sys.argv[1])
assert report["rows_in"] == 5, report
assert report["raw_key"].startswith("coingecko/coins_markets/dt="), report
print("lambda-smoke: ok, cargo lambda invoke ingest stored", report["rows_in"], "snapshots")
PY
