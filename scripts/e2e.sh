#!/usr/bin/env bash
# End to end, as a user runs it: `just deploy-local` from nothing (services
# stopped; a database, topics, bucket and dashboard folder that do not exist
# yet), ingest against a fake CoinGecko that is down at first (the failed cycle
# must be retried on the next tick), ticks produced and consumed, transform,
# site; every table filled; the dashboard in headless Chromium; the consumer
# killed (SIGKILL) mid-stream and restarted with no tick lost or doubled; then
# `just down` must leave no process behind. Short intervals: a tick every
# E2E_TICK_SECS (10) s, a simulated tick every second.
#
# Called by `just test` last (it stops and restarts the local services).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
DATA_DIR="${CRYPTO_DATA_DIR:-$ROOT/../shared/data}"
FAKE_PORT="${FAKE_COINGECKO_PORT:-9011}"
CPCTL="${CARGO_TARGET_DIR:?}/debug/cpctl"
LOGS="$ROOT/.state/logs"
say() { echo "e2e: $*"; }
fail() { echo "e2e: FAILED: $*" >&2; exit 1; }

id="e2e$(date +%s)"
admin_url="$DATABASE_URL"
export DATABASE_URL="${admin_url%/*}/$id"
export KAFKA_TOPIC="$id" KAFKA_DLQ_TOPIC="$id-dlq" KAFKA_CONSUMER_GROUP="$id" RAW_BUCKET="$id"
work="$(mktemp -d)"
export SITE_OUTPUT="$work/site"
export COINGECKO_BASE_URL="http://127.0.0.1:$FAKE_PORT" COINGECKO_MAX_RETRIES=1 COINGECKO_RETRY_BASE_MS=200
export SCHEDULE_EVERY_SECS="${E2E_TICK_SECS:-10}" PRODUCER_INTERVAL_SECS=1 TRANSFORM_WATERMARK_LAG_SECS=0
export DASHBOARD_PORT="${E2E_DASHBOARD_PORT:-8089}" LAMBDA_PORT="${E2E_LAMBDA_PORT:-9089}"
fake_pid=""
cleanup() {
  if [[ -n $fake_pid ]]; then kill "$fake_pid" 2>/dev/null || true; fi
  scripts/jobs.sh stop >/dev/null 2>&1 || true
  # The scratch database, topics and bucket go; the services stay up, as before the test.
  scripts/stack.sh up >/dev/null 2>&1 || true
  drop_scratch "$admin_url" "$id" "$CPCTL" "$KAFKA_TOPIC" "$KAFKA_DLQ_TOPIC"
  rm -rf "$work"
}
trap cleanup EXIT
q() { psql -At "$DATABASE_URL" -c "$1"; }

# CoinGecko's /coins/markets for our five coins, from a real response; served later.
mkdir -p "$work/fake/coins"
coins_markets_fixture "$DATA_DIR" "$work/fake/coins/markets"

say "just down: from nothing"
just down >/dev/null
t0=$SECONDS
just deploy-local | while IFS= read -r line; do printf '[%3ds] %s\n' $((SECONDS - t0)) "$line"; done | tee "$work/deploy.out"
say "deploy-local returned after $((SECONDS - t0)) s"
grep -q "first cycle failed" "$work/deploy.out" || fail "the first cycle should fail: CoinGecko is down"
grep -q "dashboard at http://127.0.0.1:$DASHBOARD_PORT/" "$work/deploy.out" || fail "no dashboard URL printed"
[[ "$(q "SELECT count(*) FROM pipeline_runs WHERE function = 'ingest' AND status = 'failed'")" -ge 1 ]] ||
  fail "the failed ingest is not recorded"

say "replay three volatile days of real candles (2024-04-12..14) through Kafka"
for f in BTCUSDT ETHUSDT SOLUSDT XRPUSDT BNBUSDT; do
  { head -n 1 "$DATA_DIR/binance_1h/${f}_1h.csv"; grep -E '^2024-04-1[234] ' "$DATA_DIR/binance_1h/${f}_1h.csv"; } >"$work/${f}_1h.csv"
done
"$CPCTL" replay "$work"/*_1h.csv >/dev/null

say "CoinGecko comes back; the next tick must run the whole chain"
python3 -m http.server "$FAKE_PORT" --bind 127.0.0.1 --directory "$work/fake" >"$LOGS/e2e-fake-coingecko.out" 2>&1 &
fake_pid=$!
for _ in $(seq 1 90); do
  [[ "$(q "SELECT count(*) FROM pipeline_runs WHERE function = 'site-gen' AND status = 'succeeded'
          AND started_at > (SELECT min(started_at) FROM pipeline_runs WHERE function = 'ingest' AND status = 'succeeded')")" -ge 1 ]] && break
  sleep 1
done
say "first full cycle $((SECONDS - t0)) s after the command"
# Cleaning dropped nothing from clean data: data_quality may rightly be empty.
say "data_quality: $(q "SELECT count(*) FROM data_quality") rows"
for t in market_snapshots price_ticks price_hourly daily_volume daily_ranking price_alerts transform_watermarks pipeline_runs; do
  n="$(q "SELECT count(*) FROM $t")"
  say "$t: $n rows"
  [[ $n -gt 0 ]] || fail "$t is empty after a full cycle"
done
for f in ingest consumer transform site-gen; do
  [[ "$(q "SELECT count(*) FROM pipeline_runs WHERE function = '$f' AND status = 'succeeded'")" -ge 1 ]] ||
    fail "no successful $f run recorded"
done
for f in ingest producer consumer transform site scheduler; do
  [[ -s $LOGS/$f.log ]] || fail "no log file $LOGS/$f.log"
done
grep -q "No data yet" "$SITE_OUTPUT/index.html" && fail "the dashboard still says no data"
grep -q "Bitcoin" "$SITE_OUTPUT/index.html" || fail "the dashboard lacks Bitcoin"

say "the dashboard in headless Chromium"
node site-gen/web/check-pages.mjs --base "http://127.0.0.1:$DASHBOARD_PORT/" --out "$ROOT/.state/artefacts/e2e" \
  index.html coins/bitcoin.html >"$work/browser.json"
python3 - "$work/browser.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for r in report["results"]:
    where = f'{r["page"]} ({r["viewport"]})'
    assert r["status"] == 200, where
    assert not r["errors"], (where, r["errors"])
    assert not r["shown"]["noData"], where
    drawn = [c for c in r["charts"] if c["width"] > 0 and c["height"] > 0]
    if r["page"] == "index.html":
        # A price per coin and the latest alerts.
        assert r["shown"]["prices"] >= 5 and r["shown"]["rows"] >= 1, (where, r["shown"])
    else:
        assert sum(c["tag"] == "canvas" for c in drawn) >= 3, (where, r["charts"])
print(f'e2e: browser ok: {len(report["results"])} page views, no console errors, charts drawn')
PY

say "kill -9 the consumer mid-stream, start it again"
pid="$(cat .state/run/jobs/consumer.pid)"
kill -KILL -- "-$pid"
sleep 3
LOG_DIR="$LOGS" scripts/jobs.sh start consumer "$CPCTL" consume
sleep 3
scripts/jobs.sh stop producer
published="$("$CPCTL" topic records "$KAFKA_TOPIC")"
for _ in $(seq 1 60); do
  [[ "$(q "SELECT count(*) FROM price_ticks")" -ge $published ]] && break
  sleep 1
done
stored="$(q "SELECT count(*) FROM price_ticks")"
distinct="$(q "SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM price_ticks")"
dead="$("$CPCTL" topic records "$KAFKA_DLQ_TOPIC")"
say "published $published ticks; stored $stored rows from $distinct distinct offsets; $dead dead letters"
[[ $stored -eq $published && $distinct -eq $published && $dead -eq 0 ]] ||
  fail "ticks lost or doubled across the consumer kill"

say "just down: nothing of ours may keep running"
just down >/dev/null
sleep 1
leftovers="$(pgrep -af "$CPCTL|cargo-lambda|cargo lambda watch|http.server $DASHBOARD_PORT|kafka.Kafka|localstack.runtime|$ROOT/.state" || true)"
[[ -z $leftovers ]] || fail "processes left after just down: $leftovers"
[[ -z "$(ls .state/run/jobs 2>/dev/null)" ]] || fail "job pid files left after just down"
for port in "$PG_PORT" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$S3_PORT" "$DASHBOARD_PORT" "$LAMBDA_PORT"; do
  if port_open "$port"; then fail "something still listens on 127.0.0.1:$port"; fi
done
say "ok"
