#!/usr/bin/env bash
# `just deploy-local`: the whole pipeline here. The local stack and its setup
# (`just up`), then, as jobs of scripts/stack.sh (`just down` stops them):
# `cargo lambda watch`, the consumer, the live feed (or, offline, the
# producer of simulated ticks), the scheduler, the
# first-run history and the dashboard's file server. Waits for the outcome of
# the scheduler's first cycle, which the scheduler writes to a status file.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
local_stack_env
cd "$ROOT"
CPCTL="${CARGO_TARGET_DIR:?}/debug/cpctl" # the built binary: signals must reach it, not cargo
STATUS_FILE="$ROOT/.state/run/scheduler.status"
job() { scripts/stack.sh start "$@"; }

start=$SECONDS
just up
# Every component logs to its own rotated file there (ingest.log, transform.log, …).
export LOG_DIR="$ROOT/.state/logs"
site="${SITE_OUTPUT:-.state/site}"
echo "deploy-local: building the functions and cpctl"
cargo build --quiet --locked -p cpctl -p ingest -p transform -p notify -p consumer -p site-gen -p feed
[[ $site == s3://* ]] || mkdir -p "$site"
if [[ $site == s3://* ]]; then
  bucket="${site#s3://}"
  url="http://${bucket%%/*}.s3-website.localhost:$S3_PORT/"
else
  url="http://127.0.0.1:$DASHBOARD_PORT/"
fi
# Alert messages link to the coin's page here (unless DASHBOARD_URL says otherwise).
[[ $DASHBOARD_URL != "http://127.0.0.1:$DASHBOARD_PORT/" ]] || export DASHBOARD_URL="$url"
job lambda cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_PORT"
job consumer "$CPCTL" consume
# The ticks: the exchanges' live trades when one answers (`cpctl feed --probe`),
# otherwise the simulator; DEPLOY_TICKS=live|simulated decides instead of asking.
ticks="${DEPLOY_TICKS:-auto}"
case $ticks in
  auto)
    if probe="$("$CPCTL" feed --probe 2>&1)"; then ticks=live; else ticks=simulated; fi
    echo "deploy-local: exchanges: $(echo "$probe" | grep -E '^(binance|coinbase):' | paste -sd ';' - | sed 's/;/; /g')"
    ;;
  live | simulated) ;;
  *) echo "deploy-local: DEPLOY_TICKS=$ticks: expected auto, live or simulated" >&2; exit 1 ;;
esac
if [[ $ticks == live ]]; then
  job feed "$CPCTL" feed
  ticks_said="live trades from the exchanges in ${FEED_BAR_SECS:-5}-second bars (feed.log)"
else
  # The walk continues the stored prices (first ingest, or the history job below) once there are some.
  job producer "$CPCTL" produce --wait-for-prices 60
  ticks_said="simulated ticks every $PRODUCER_INTERVAL_SECS s (producer.log; no exchange answered, or DEPLOY_TICKS=simulated)"
fi
echo "deploy-local: stream: $ticks_said"
rm -f "$STATUS_FILE"
job scheduler "$CPCTL" schedule --status-file "$STATUS_FILE"
# History in the background, beside the first cycle: a backfill when CoinGecko
# answers, otherwise the shipped candles as a sample the dashboard labels.
job history "$CPCTL" history
if [[ $site != s3://* ]]; then
  job dashboard python3 -m http.server "$DASHBOARD_PORT" --bind 127.0.0.1 --directory "$site"
fi

# The first cycle starts at once; wait for its outcome (ingest retries for up to a minute).
outcome="" step=""
for _ in $(seq 1 180); do
  if [[ -s $STATUS_FILE ]]; then
    read -r outcome step <"$STATUS_FILE" || true
    break
  fi
  sleep 1
done
case $outcome in
  succeeded) echo "deploy-local: first cycle done (ingest, transform, notify, site-gen) $((SECONDS - start)) s after the command" ;;
  failed)
    echo "deploy-local: the first cycle failed at $step (see .state/logs/scheduler.log and the step's log); it runs again on the next tick (${SCHEDULE_EVERY_SECS:+every $SCHEDULE_EVERY_SECS s, SCHEDULE_EVERY_SECS, not }$INGEST_SCHEDULE)"
    # A dashboard all the same: it shows what the stream brought and the failed run.
    "$CPCTL" site >/dev/null || true
    ;;
  *) echo "deploy-local: the first cycle is still running; see .state/logs/scheduler.log" ;;
esac
echo "deploy-local: dashboard at $url"
echo "deploy-local: schedule $INGEST_SCHEDULE; stream: $ticks_said; functions for 'cargo lambda invoke' on 127.0.0.1:$LAMBDA_PORT"
# Where alerts go: the channel names only (webhook URLs are secrets).
hooks="$(tr ',' '\n' <<<"${ALERT_WEBHOOKS:-}" | sed -n 's/^ *\([a-z0-9_-]*\)=\([a-z]*\):.*/\1 (\2)/p' | paste -sd ',' - | sed 's/,/, /g')"
echo "deploy-local: alerts: rules ${ALERT_RULES_FILE:-from ALERT_THRESHOLD_PCT/ALERT_WINDOW_HOURS}; SNS topic ${ALERT_SNS_TOPIC:-none}; webhooks: ${hooks:-none (set ALERT_WEBHOOKS in .env, see README, Alerts)}"
echo "deploy-local: logs in .state/logs (ingest.log, $([[ $ticks == live ]] && echo feed.log || echo producer.log), consumer.log, transform.log, notify.log, site.log, scheduler.log)"
echo "deploy-local: stop everything with 'just down' (data is kept)"
