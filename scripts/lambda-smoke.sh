#!/usr/bin/env bash
# The Lambda path end to end, without AWS: `cargo lambda watch` serves the
# functions, `cargo lambda invoke` sends them the sample events in events/.
#   ingest   ← events/ingest.json (an EventBridge scheduled event);
#              scripts/fake_coingecko.py stands in for CoinGecko with the real
#              /coins/markets body shipped in data/coingecko
#   consumer ← events/consumer.json (a Kafka event: two ticks, one poison record)
#   transform ← events/transform.json (incremental: the 5 snapshots and 2 ticks above;
#              the fake CoinGecko says ethereum moved −6 % in 24 h: one alert)
#   notify   ← events/notify.json (the transform's success destination record):
#              the alert to the stack's SNS topic and to a webhook receiver
#              (scripts/webhook_receiver.py) in Slack's format
#   feed     ← events/feed.json (an EventBridge scheduled event for 00:10 UTC);
#              the fake exchange (crates/testkit, bin fake-exchange) stands in
#              for Binance's klines and Coinbase's candles; twice, the second
#              publishing nothing
# It runs on a database, bucket and dead-letter topic of its own, removed at
# the end, so the pipeline's own data is never touched. Run by `just test`
# (needs the stack up and cpctl built).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
local_stack_env
cd "$ROOT"
WATCH_PORT="${LAMBDA_WATCH_PORT:-9009}"
FAKE_PORT="${FAKE_COINGECKO_PORT:-9010}"
EXCHANGE_PORT="${FAKE_EXCHANGE_PORT:-9012}"
RECEIVER_PORT="${WEBHOOK_RECEIVER_PORT:-9014}"
LOG_DIR="$ROOT/.state/logs"
CPCTL="${CARGO_TARGET_DIR:?}/debug/cpctl"
mkdir -p "$LOG_DIR"

id="smoke$(date +%s)$$"
admin_url="$DATABASE_URL"
export DATABASE_URL="${admin_url%/*}/$id"
export RAW_BUCKET="$id"
export KAFKA_DLQ_TOPIC="$id-dlq"
# The feed function publishes here, not to the pipeline's topic.
export KAFKA_TOPIC="$id-prices"
export TRANSFORM_WATERMARK_LAG_SECS=0
work="$(mktemp -d)"
export SITE_OUTPUT="$work/site"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  drop_scratch "$admin_url" "$id" "$CPCTL" "$KAFKA_DLQ_TOPIC" "$KAFKA_TOPIC"
  rm -rf "$work"
}
trap cleanup EXIT

# Its database, bucket and dead-letter topic, as every deployment gets them.
RUST_LOG=warn "$CPCTL" setup >/dev/null

setsid python3 scripts/fake_coingecko.py --port "$FAKE_PORT" --live --move ethereum=-6 >"$LOG_DIR/fake-coingecko.log" 2>&1 &
pids+=($!)
setsid python3 scripts/webhook_receiver.py --port "$RECEIVER_PORT" --log "$work/hooks.jsonl" >"$LOG_DIR/webhook-receiver.log" 2>&1 &
pids+=($!)

setsid "${CARGO_TARGET_DIR:?}/debug/fake-exchange" "$EXCHANGE_PORT" >"$LOG_DIR/fake-exchange.log" 2>&1 &
pids+=($!)

export COINGECKO_BASE_URL="http://127.0.0.1:$FAKE_PORT"
export ALERT_WEBHOOKS="smoke=slack:http://127.0.0.1:$RECEIVER_PORT/hook"
export FEED_BINANCE_REST_URL="http://127.0.0.1:$EXCHANGE_PORT" FEED_COINBASE_REST_URL="http://127.0.0.1:$EXCHANGE_PORT"
setsid cargo lambda watch -A 127.0.0.1 -P "$WATCH_PORT" >"$LOG_DIR/lambda-watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do
  port_open "$WATCH_PORT" && break
  sleep 1
done

invoke() { # FUNCTION EVENT_FILE: prints the response; the first call compiles the function
  cargo lambda invoke "$1" -A 127.0.0.1 -P "$WATCH_PORT" --data-file "$2" 2>&1 || {
    echo "lambda-smoke: invoke $1 failed" >&2
    tail -n 30 "$LOG_DIR/lambda-watch.log" >&2
    return 1
  }
}

ingest="$(invoke ingest events/ingest.json)"
echo "lambda-smoke: ingest response: $ingest"
consumer="$(invoke consumer events/consumer.json)"
echo "lambda-smoke: consumer response: $consumer"
transform="$(invoke transform events/transform.json)"
echo "lambda-smoke: transform response: $transform"
notify="$(invoke notify events/notify.json)"
echo "lambda-smoke: notify response: $notify"
python3 - "$notify" "$work/hooks.jsonl" <<'PY'
import json, sys
notify = json.loads(sys.argv[1])
assert notify["sent"] == 2 and notify["failed"] == 0, notify
assert notify["channels"]["sns"]["sent"] == 1 and notify["channels"]["webhook:smoke"]["sent"] == 1, notify
hooks = [json.loads(l) for l in open(sys.argv[2])]
assert len(hooks) == 1 and "Ethereum" in hooks[0]["body"]["text"] and "-6.00 %" in hooks[0]["body"]["text"], hooks
PY
site="$(invoke site-gen events/site-gen.json)"
echo "lambda-smoke: site-gen response: $site"
grep -q "Bitcoin" "$SITE_OUTPUT/index.html" || { echo "lambda-smoke: the dashboard lacks Bitcoin" >&2; exit 1; }
python3 - "$ingest" "$consumer" "$transform" "$site" <<'PY'
import json, sys
ingest, consumer, transform, site = (json.loads(a) for a in sys.argv[1:5])
assert site["files"] >= 10 and site["published"]["uploaded"] == site["files"], site
assert transform["hourly_rows"] == 7 and transform["observations"] == 7, transform
assert ingest["rows_in"] == 5 and ingest["rows_out"] == 5, ingest
assert ingest["raw_key"].startswith("coingecko/coins_markets/dt="), ingest
assert consumer["records"] == 3 and consumer["stored"] == 2 and consumer["dead_lettered"] == 1, consumer
PY
rows="$(psql -At "$DATABASE_URL" -c "SELECT (SELECT count(*) FROM market_snapshots) || ' ' || (SELECT count(*) FROM price_ticks)")"
[[ $rows == "5 2" ]] || { echo "lambda-smoke: expected 5 snapshots and 2 ticks, found $rows" >&2; exit 1; }

feed="$(invoke feed events/feed.json)"
echo "lambda-smoke: feed response: $(echo "$feed" | head -c 300)…"
again="$(invoke feed events/feed.json)"
published="$("$CPCTL" topic records "$KAFKA_TOPIC")"
python3 - "$feed" "$again" "$published" <<'PY'
import json, sys
feed, again, published = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
# The first run publishes the last closed minute, 00:09, of every market: 5 on Binance, 4 on Coinbase (no BNB).
assert feed["at"].startswith("2026-01-01T00:10:00"), feed
assert len(feed["markets"]) == 9 and all(m["error"] is None for m in feed["markets"]), feed
assert feed["published"] >= 1 and published == feed["published"], (feed["published"], published)
assert again["published"] == 0, again
PY
cursors="$(psql -At "$DATABASE_URL" -c "SELECT count(*) FROM feed_cursors WHERE fetched_to = '2026-01-01T00:10:00Z'")"
[[ $cursors == 9 ]] || { echo "lambda-smoke: expected 9 feed cursors at 00:10, found $cursors" >&2; exit 1; }
echo "lambda-smoke: ok (ingest stored 5 snapshots, consumer stored 2 ticks and dead-lettered 1, transform made 7 hourly rows and queued ethereum's alert, notify sent it to SNS and the webhook, site-gen published the dashboard, feed published $published candles once)"
