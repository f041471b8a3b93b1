# crypto-pipeline tasks. `just` lists them.
#
# Every recipe runs in the environment every script has (scripts/lib.sh): a
# variable already set wins, then `.env` (your overrides of .env.example), then
# stack.env (ports and versions of the local services, the one place for them)
# and schedule.env (the schedule), all read by one function, load_env_file;
# then what the pipeline's binaries read, pointed at the local stack
# (local_stack_env: DATABASE_URL, KAFKA_BROKERS, AWS_ENDPOINT_URL, …).
# Each line runs as `bash -euo pipefail -c 'source scripts/lib.sh && … && eval "$1"' just LINE`.

set shell := ["bash", "-euo", "pipefail", "-c", 'source scripts/lib.sh && local_stack_env && eval "$1"', "just"]

# One build directory for every clone on this machine (CI clones afresh each run).
export CARGO_TARGET_DIR := env("CARGO_TARGET_DIR", home_directory() / ".cache/crypto-pipeline/target")

cpctl := "cargo run --quiet --locked -p cpctl --"
# The built binary, for benchmarks.
cpctl_bin := CARGO_TARGET_DIR / "debug/cpctl"

default:
    @just --list --unsorted

# Install the tools the project needs (just, cargo-lambda, LocalStack, Kafka jars, Postgres).
bootstrap:
    scripts/bootstrap.sh

# Start Postgres, Kafka (plaintext, and SASL_SSL with SCRAM) and S3 (LocalStack; STACK=docker: docker-compose.yml) on 127.0.0.1, then create the database, topics and buckets; idempotent.
up:
    @if [[ ${STACK:-native} == docker ]]; then scripts/stack.sh tls --docker && docker compose --env-file stack.env up -d --wait && scripts/stack.sh docker-scram; else scripts/stack.sh up; fi
    @{{cpctl}} setup

# Create what the pipeline needs (database and migrations, topics, buckets) if missing; `just up` runs it.
setup:
    {{cpctl}} setup

# Stop the pipeline's jobs and the local services; data is kept.
down:
    @if [[ ${STACK:-native} == docker ]]; then scripts/stack.sh stop && docker compose --env-file stack.env stop; else scripts/stack.sh down; fi

# Is each local service and job up?
status:
    @scripts/stack.sh status

# Stop the jobs and services and delete their data.
reset:
    scripts/stack.sh reset

# Apply the SQL migrations in migrations/.
migrate:
    {{cpctl}} migrate

# Run one ingest of CoinGecko /coins/markets now.
ingest:
    {{cpctl}} ingest

# Fetch history, e.g. `just backfill --from 2026-01-01 --coins bitcoin`; resumable.
backfill *ARGS:
    {{cpctl}} backfill {{ARGS}}

# History once: the last 364 days from CoinGecko, or offline the shipped candles as a labelled sample; then transform and site.
history:
    {{cpctl}} history

# Publish the exchanges' live trades (Binance, Coinbase) as FEED_BAR_SECS bars to Kafka, in the foreground (`just feed --probe`: can it?).
feed *ARGS:
    {{cpctl}} feed {{ARGS}}

# Publish simulated ticks every PRODUCER_INTERVAL_SECS (5) to Kafka, in the foreground.
produce *ARGS:
    {{cpctl}} produce {{ARGS}}

# Publish the shipped hourly candles of data/binance_1h through Kafka (e.g. `just replay --speed 3600`).
replay *ARGS:
    {{cpctl}} replay {{ARGS}}

# Transform what arrived since the last run (`just transform --full` rebuilds everything), send the new alerts, then render the dashboard.
transform *ARGS:
    {{cpctl}} transform {{ARGS}}
    {{cpctl}} notify
    {{cpctl}} site

# Send the alert notifications waiting in the outbox (SNS topic ALERT_SNS_TOPIC, webhooks ALERT_WEBHOOKS in .env).
notify:
    {{cpctl}} notify

# Render the dashboard from the transformed tables into SITE_OUTPUT (.state/site, or s3://BUCKET).
site:
    {{cpctl}} site

# Serve the dashboard folder on 127.0.0.1 (DASHBOARD_PORT, 8080) until Ctrl-C.
serve PORT="":
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/lib.sh && local_stack_env
    port="{{PORT}}"
    port="${port:-$DASHBOARD_PORT}"
    dir="${SITE_OUTPUT:-.state/site}"
    if [[ $dir == s3://* ]]; then
        echo "serve: SITE_OUTPUT is $dir; its website is http://${dir#s3://}.s3-website.localhost:$S3_PORT/ on the local stack"
        exit 1
    fi
    [[ -f $dir/index.html ]] || {{cpctl}} site
    echo "serve: dashboard at http://127.0.0.1:$port/ (Ctrl-C stops)"
    exec python3 -m http.server "$port" --bind 127.0.0.1 --directory "$dir"

# Load the shipped hourly candles of data/binance_1h straight into Postgres as replayed ticks (no Kafka).
load-history *ARGS:
    {{cpctl}} load-history {{ARGS}}

# Run the consumer (local event-source poller → consumer function → Postgres), in the foreground.
consume:
    {{cpctl}} consume

# Run the whole pipeline here: stack, setup, `cargo lambda watch`, consumer, live feed (offline: simulated ticks), schedule, dashboard.
deploy-local:
    @scripts/deploy-local.sh

# Deploy the AWS SAM stack (template.yaml) to LocalStack with Lambda (needs Docker; see docs/aws.md).
deploy-localstack:
    scripts/iac.sh deploy-localstack

# Deploy to AWS (`just deploy-aws --guided` the first time; see docs/aws.md).
deploy-aws *ARGS:
    scripts/iac.sh deploy {{ARGS}}

# Validate template.yaml offline (sam validate + cfn-lint), as CI does.
validate-iac:
    scripts/iac.sh validate

# Serve the functions locally for `cargo lambda invoke` (e.g. `cargo lambda invoke ingest --data-file events/ingest.json`).
watch:
    cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_PORT"

# Every test, against the real local services (started if needed); last, the end-to-end run of deploy-local.
test: up
    cargo build --workspace --all-targets --locked
    scripts/lambda-smoke.sh
    cargo test --workspace --locked --no-fail-fast
    scripts/e2e.sh

# Build a function as AWS runs it (cargo lambda build --release, provided.al2023) and check the binary; CI builds the consumer.
lambda-build FUNCTION="consumer":
    scripts/lambda-build.sh {{FUNCTION}}

# Formatting and lints, as CI checks them.
lint:
    # The clone stands on its own: no code, test or script may read data from outside it (docs may say so).
    ! git grep -nI -e '\.\./shared' -- . ':!justfile' ':!.ci/run' ':!*.md'
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Benchmarks, printing figures: streaming throughput, COPY for scale, latency; transform and site generation times;
# the alerts' delivery rate and latency; the live feed's aggregation rate and reconnect time.
# The same build as the tests and deploy-local (dev, Polars optimised; see README, "Builds"), so no second
# build of everything; on durable settings (synchronous_commit=on, as the stack runs).
bench *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    source scripts/lib.sh && local_stack_env
    cargo build --quiet --locked -p cpctl
    reference="$(mktemp)"
    trap 'rm -f "$reference"' EXIT
    # The Python references (pandas transforms, confluent-kafka consumer) in their own venv.
    python="$(scripts/bench/venv.sh --which)"
    # pandas first, on an idle machine, like our own runs.
    scripts/bench/venv.sh scripts/bench/reference_transforms.py --json >"$reference"
    {{cpctl_bin}} bench-consume --reference-consumer scripts/bench/reference_consumer.py --python "$python" {{ARGS}}
    # The throughput run again over the broker's SASL_SSL listener (TLS, SCRAM-SHA-512), beside plaintext.
    KAFKA_BROKERS="$KAFKA_SECURE_BROKERS" KAFKA_SECURITY_PROTOCOL=sasl_ssl KAFKA_SASL_MECHANISM=SCRAM-SHA-512 \
      KAFKA_SASL_USERNAME="$KAFKA_SECURE_USERNAME" KAFKA_SASL_PASSWORD="$(<"$KAFKA_SECURE_PASSWORD_FILE")" \
      KAFKA_SSL_CA_LOCATION="$KAFKA_SECURE_CA_LOCATION" {{cpctl_bin}} bench-consume --throughput-only {{ARGS}}
    {{cpctl_bin}} bench-transform --reference "$reference"
    # Alerts: the notify step's delivery rate to a local webhook, and a stored crossing's time to the message.
    {{cpctl_bin}} bench-notify
    # The live feed against the fake exchange: trades/s aggregated (in process, then over a websocket), reconnect time.
    cargo run --quiet --locked --example feed_bench -p exchanges
