#!/usr/bin/env bash
# End to end, as a user runs it, twice from nothing (services stopped; a
# database, topics, bucket and dashboard folder that do not exist yet):
#
# 1. Offline: CoinGecko is down. The first cycle fails and is retried on the
#    next tick; meanwhile the history job loads the shipped candles as a
#    labelled sample, so within HISTORY_DEADLINE_SECS of the command every coin
#    page has its charts and the overview its 7-day sparklines, under the
#    "sample history" banner. Real candles are replayed through Kafka; then
#    CoinGecko comes back and the next tick runs the whole chain; every table
#    is filled; the dashboard is checked in headless Chromium; the consumer is
#    killed (SIGKILL) mid-stream and restarted with no tick lost or doubled;
#    `cpctl history`, now online, replaces the sample with real history.
# 2. Online: CoinGecko is up from the start. The first cycle succeeds and the
#    backfill fills market_history; the coin pages have charts within the same
#    deadline, with no sample banner. CoinGecko says bitcoin moved +7.5 % in
#    24 h: the alert reaches a webhook set in the environment (as in .env) and
#    the SNS topic exactly once, though every later cycle sees the move again
#    (the cool-down); the time from CoinGecko's update to the message is printed.
# Each part ends with `just down`, which must leave no process behind.
# Short intervals: a cycle every E2E_TICK_SECS (10) s, a simulated tick every second.
#
# Called by `just test` last (it stops and restarts the local services).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
local_stack_env
cd "$ROOT"
FAKE_PORT="${FAKE_COINGECKO_PORT:-9011}"
CPCTL="${CARGO_TARGET_DIR:?}/debug/cpctl"
LOGS="$ROOT/.state/logs"
# What the README promises: charts within this long of `just deploy-local`.
HISTORY_DEADLINE_SECS="${HISTORY_DEADLINE_SECS:-60}"
say() { echo "e2e: $*"; }
fail() { echo "e2e: FAILED: $*" >&2; exit 1; }

admin_url="$DATABASE_URL"
work="$(mktemp -d)"
export COINGECKO_BASE_URL="http://127.0.0.1:$FAKE_PORT" COINGECKO_MAX_RETRIES=1 COINGECKO_RETRY_BASE_MS=200
# No exchange answers here (nothing outside does, and port 1 refuses): deploy-local
# must run the simulator instead of the live feed, and say so.
export FEED_BINANCE_REST_URL="http://127.0.0.1:1" FEED_COINBASE_REST_URL="http://127.0.0.1:1"
export SCHEDULE_EVERY_SECS="${E2E_TICK_SECS:-10}" PRODUCER_INTERVAL_SECS=1 TRANSFORM_WATERMARK_LAG_SECS=0
export DASHBOARD_PORT="${E2E_DASHBOARD_PORT:-8089}" LAMBDA_PORT="${E2E_LAMBDA_PORT:-9089}"
fake_pid=""
receiver_pid=""
ids=()
cleanup() {
  stop_fake
  [[ -z $receiver_pid ]] || kill "$receiver_pid" 2>/dev/null || true
  scripts/stack.sh stop >/dev/null 2>&1 || true
  # The scratch databases, topics and buckets go; the services stay up, as before the test.
  scripts/stack.sh up >/dev/null 2>&1 || true
  for id in "${ids[@]}"; do drop_scratch "$admin_url" "$id" "$CPCTL" "$id" "$id-dlq"; done
  rm -rf "$work"
}
trap cleanup EXIT
q() { psql -At "$DATABASE_URL" -c "$1"; }

start_fake() { # [--live --move ID=PCT]: see scripts/fake_coingecko.py
  python3 scripts/fake_coingecko.py --port "$FAKE_PORT" "$@" >>"$LOGS/e2e-fake-coingecko.out" 2>&1 &
  fake_pid=$!
  for _ in $(seq 1 50); do port_open "$FAKE_PORT" && return; sleep 0.1; done
  fail "the fake CoinGecko did not start"
}
stop_fake() {
  if [[ -n $fake_pid ]]; then kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; fi
  fake_pid=""
}

# scratch NAME: a run of its own (database, topics, bucket, dashboard folder).
scratch() {
  local id
  id="$1$(date +%s)"
  ids+=("$id")
  export DATABASE_URL="${admin_url%/*}/$id"
  export KAFKA_TOPIC="$id" KAFKA_DLQ_TOPIC="$id-dlq" KAFKA_CONSUMER_GROUP="$id" RAW_BUCKET="$id"
  export SITE_OUTPUT="$work/$id/site"
}

# deploy NAME: `just deploy-local` from stopped services, its output timed and kept in $work/NAME.out.
deploy() {
  say "just down: from nothing"
  just down >/dev/null
  t0=$SECONDS
  just deploy-local | while IFS= read -r line; do printf '[%3ds] %s\n' $((SECONDS - t0)) "$line"; done | tee "$work/$1.out"
  say "deploy-local returned after $((SECONDS - t0)) s"
  grep -q "dashboard at http://127.0.0.1:$DASHBOARD_PORT/" "$work/$1.out" || fail "no dashboard URL printed"
}

# wait_for_history: every coin has at least a week of hourly rows, and the
# dashboard (overview sparklines, every coin page's chart data) shows them,
# within HISTORY_DEADLINE_SECS of the command.
wait_for_history() {
  local ok=""
  while ((SECONDS - t0 <= HISTORY_DEADLINE_SECS)); do
    if [[ "$(q "SELECT count(*) FROM (SELECT coin_id FROM price_hourly GROUP BY coin_id
                HAVING max(hour) - min(hour) >= interval '7 days') c")" -eq 5 ]] &&
      python3 scripts/check_site_history.py "$SITE_OUTPUT" >/dev/null 2>&1; then
      ok=1
      break
    fi
    sleep 1
  done
  [[ -n $ok ]] || { python3 scripts/check_site_history.py "$SITE_OUTPUT" || true; fail "no history on the dashboard within $HISTORY_DEADLINE_SECS s"; }
  say "history on the dashboard $((SECONDS - t0)) s after the command: $(python3 scripts/check_site_history.py "$SITE_OUTPUT")"
}

# down_clean: `just down` must leave nothing of ours running.
down_clean() {
  say "just down: nothing of ours may keep running"
  just down >/dev/null
  sleep 1
  leftovers="$(pgrep -af "$CPCTL|cargo-lambda|cargo lambda watch|http.server $DASHBOARD_PORT|kafka.Kafka|localstack.runtime|$ROOT/.state" || true)"
  [[ -z $leftovers ]] || fail "processes left after just down: $leftovers"
  [[ -z "$(ls .state/run/jobs 2>/dev/null)" ]] || fail "job pid files left after just down"
  for port in "$PG_PORT" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$S3_PORT" "$DASHBOARD_PORT" "$LAMBDA_PORT"; do
    if port_open "$port"; then fail "something still listens on 127.0.0.1:$port"; fi
  done
}

# ---------------------------------------------------------------- 1. offline first run
say "part 1: CoinGecko unreachable"
scratch e2eoff
deploy offline
grep -q "first cycle failed" "$work/offline.out" || fail "the first cycle should fail: CoinGecko is down"
grep -q "stream: simulated ticks" "$work/offline.out" || fail "with no exchange answering, deploy-local must say it runs the simulator"
[[ "$(q "SELECT count(*) FROM pipeline_runs WHERE function = 'ingest' AND status = 'failed'")" -ge 1 ]] ||
  fail "the failed ingest is not recorded"
wait_for_history
[[ "$(q "SELECT count(*) FROM sample_history")" -eq 5 ]] || fail "the sample history is not recorded for five coins"
[[ "$(q "SELECT count(*) FROM market_history")" -eq 0 ]] || fail "market_history filled while CoinGecko was down"
grep -q 'id="sample-banner"' "$SITE_OUTPUT/index.html" || fail "the overview does not label the sample history"
grep -q 'id="sample-banner"' "$SITE_OUTPUT/coins/solana.html" || fail "a coin page does not label the sample history"

say "replay three days of real candles (2020-10-23..25) through Kafka"
for f in BTCUSDT ETHUSDT SOLUSDT XRPUSDT BNBUSDT; do
  gzip -dc "data/binance_1h/${f}_1h.csv.gz" | awk 'NR == 1 || /^2020-10-2[345] /' >"$work/${f}_1h.csv"
done
"$CPCTL" replay "$work"/*_1h.csv >/dev/null

say "CoinGecko comes back; the next tick must run the whole chain"
start_fake
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
for f in ingest consumer transform site-gen history; do
  [[ "$(q "SELECT count(*) FROM pipeline_runs WHERE function = '$f' AND status = 'succeeded'")" -ge 1 ]] ||
    fail "no successful $f run recorded"
done
for f in ingest producer consumer transform site scheduler history; do
  [[ -s $LOGS/$f.log ]] || fail "no log file $LOGS/$f.log"
done
# The simulated stream continues the sample's last prices: no jump, so no alert
# where the two meet (the producer waits for stored prices before its walk).
junction="$(q "SELECT count(*) FROM price_alerts WHERE at > (SELECT max(event_time) FROM price_ticks WHERE source = 'sample')")"
[[ $junction -eq 0 ]] || fail "$junction alerts where the simulated stream meets the sample history"
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
LOG_DIR="$LOGS" scripts/stack.sh start consumer "$CPCTL" consume
sleep 3
scripts/stack.sh stop producer
published="$("$CPCTL" topic records "$KAFKA_TOPIC")"
# Rows that came through Kafka carry their offset; the sample history does not.
streamed="SELECT count(*) FROM price_ticks WHERE kafka_offset IS NOT NULL"
for _ in $(seq 1 60); do
  [[ "$(q "$streamed")" -ge $published ]] && break
  sleep 1
done
stored="$(q "$streamed")"
distinct="$(q "SELECT count(DISTINCT (kafka_partition, kafka_offset)) FROM price_ticks WHERE kafka_offset IS NOT NULL")"
dead="$("$CPCTL" topic records "$KAFKA_DLQ_TOPIC")"
say "published $published ticks; stored $stored rows from $distinct distinct offsets; $dead dead letters"
[[ $stored -eq $published && $distinct -eq $published && $dead -eq 0 ]] ||
  fail "ticks lost or doubled across the consumer kill"

say "online again: cpctl history replaces the sample with real history"
LOG_DIR="$LOGS" "$CPCTL" history >"$work/history.json"
say "history: $(cat "$work/history.json")"
[[ "$(q "SELECT count(*) FROM price_ticks WHERE source = 'sample'") $(q "SELECT count(*) FROM sample_history")" == "0 0" ]] ||
  fail "the sample history is still there after a backfill"
[[ "$(q "SELECT count(DISTINCT coin_id) FROM market_history")" -eq 5 ]] || fail "the backfill did not fill market_history"
grep -q 'id="sample-banner"' "$SITE_OUTPUT/index.html" && fail "the overview still shows the sample banner"
stop_fake
down_clean

# ---------------------------------------------------------------- 2. online first run
say "part 2: CoinGecko answers from the start, bitcoin +7.5 % in 24 h; a webhook in the environment"
scratch e2eon
RECEIVER_PORT="${E2E_WEBHOOK_PORT:-9013}"
python3 scripts/webhook_receiver.py --port "$RECEIVER_PORT" --log "$work/hooks.jsonl" >>"$LOGS/e2e-webhook.out" 2>&1 &
receiver_pid=$!
export ALERT_WEBHOOKS="e2e=json:http://127.0.0.1:$RECEIVER_PORT/hook"
# Production's watermark lag (30 s): the alert's latency is measured on the settings users run.
export TRANSFORM_WATERMARK_LAG_SECS=30
start_fake --live --move bitcoin=7.5
deploy online
grep -q "webhooks: e2e (json)" "$work/online.out" || fail "deploy-local does not say where alerts go"
grep -q "first cycle done" "$work/online.out" || fail "the first cycle should succeed: CoinGecko is up"
wait_for_history
[[ "$(q "SELECT count(DISTINCT coin_id) FROM market_history")" -eq 5 ]] || fail "the backfill did not fill market_history"
[[ "$(q "SELECT count(*) FROM sample_history")" -eq 0 ]] || fail "a sample was loaded although CoinGecko answered"
[[ "$(q "SELECT count(*) FROM pipeline_runs WHERE function = 'backfill' AND status = 'succeeded'")" -ge 1 ]] ||
  fail "no successful backfill run recorded"
grep -q 'id="sample-banner"' "$SITE_OUTPUT/index.html" && fail "the dashboard labels real history as a sample"
say "the alert reaches the webhook and SNS once"
for _ in $(seq 1 60); do
  [[ -s $work/hooks.jsonl ]] && break
  sleep 1
done
# More cycles: each ingests bitcoin's move again, within the rule's cool-down. Then
# the scheduler stops, and a last notify settles what its last transform queued.
sleep $((3 * SCHEDULE_EVERY_SECS))
scripts/stack.sh stop scheduler >/dev/null
LOG_DIR="$LOGS" "$CPCTL" notify >/dev/null
python3 - "$work/hooks.jsonl" <<'PY'
import json, sys
from datetime import datetime
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 1, f"{len(lines)} messages: {lines}"
body = lines[0]["body"]
assert body["coin"]["id"] == "bitcoin" and body["change_pct"] == 7.5 and body["window"] == "24 h", body
assert body["dashboard_url"].endswith("/coins/bitcoin.html"), body
at = datetime.fromisoformat(body["at"].replace("Z", "+00:00")).timestamp()
print(f"e2e: alert latency: CoinGecko's update of bitcoin at {body['at']} -> the webhook's message "
      f"{lines[0]['received'] - at:.1f} s later (ingest, transform, notify of one cycle; at whole seconds)")
PY
q "SELECT channel, state, count(*) FROM alert_outbox GROUP BY 1, 2 ORDER BY 1, 2" | sed 's/^/e2e: outbox: /'
[[ "$(q "SELECT count(*) FROM alert_outbox WHERE state = 'sent' AND channel IN ('sns', 'webhook:e2e')")" -eq 2 ]] ||
  fail "the alert was not sent once to SNS and once to the webhook"
[[ "$(q "SELECT count(*) FROM alert_outbox WHERE state = 'suppressed' AND channel = 'webhook:e2e'")" -ge 1 ]] ||
  fail "later cycles' alerts are not recorded as suppressed"
[[ "$(q "SELECT count(*) FROM alert_outbox WHERE state IN ('failed', 'pending')")" -eq 0 ]] ||
  fail "a notification failed or is left pending"
grep -q "webhook:e2e: sent" "$SITE_OUTPUT/alerts.html" || fail "the alerts page does not show the delivery"
stop_fake
down_clean
say "ok"
