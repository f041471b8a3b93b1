# crypto-pipeline tasks. `just` lists them.
#
# Ports and versions of the local services come from stack.env (the one place
# for them); a `.env` beside this file, if present, overrides any variable of
# .env.example, as does the environment.

set dotenv-load
set shell := ["bash", "-euo", "pipefail", "-c"]

pg_port := `sed -n 's/^PG_PORT=//p' stack.env`
pg_db := `sed -n 's/^PG_DB=//p' stack.env`
kafka_port := `sed -n 's/^KAFKA_PORT=//p' stack.env`
s3_port := `sed -n 's/^S3_PORT=//p' stack.env`

# What the pipeline's binaries read (see .env.example), pointed at the local stack.
export DATABASE_URL := env("DATABASE_URL", "postgres://postgres@127.0.0.1:" + pg_port + "/" + pg_db)
export KAFKA_BROKERS := env("KAFKA_BROKERS", "127.0.0.1:" + kafka_port)
export AWS_ENDPOINT_URL := env("AWS_ENDPOINT_URL", "http://127.0.0.1:" + s3_port)
export AWS_REGION := env("AWS_REGION", "us-east-1")
export AWS_ACCESS_KEY_ID := env("AWS_ACCESS_KEY_ID", "test")
export AWS_SECRET_ACCESS_KEY := env("AWS_SECRET_ACCESS_KEY", "test")
# One build directory for every clone on this machine (CI clones afresh each run).
export CARGO_TARGET_DIR := env("CARGO_TARGET_DIR", home_directory() / ".cache/crypto-pipeline/target")

cpctl := "cargo run --quiet --locked -p cpctl --"

default:
    @just --list --unsorted

# Install the tools the project needs (just, cargo-lambda, LocalStack, Kafka jars, Postgres).
bootstrap:
    scripts/bootstrap.sh

# Start Postgres, Kafka and S3 (LocalStack) on 127.0.0.1; idempotent.
up:
    scripts/stack.sh up

# Stop the local services; data is kept.
down:
    scripts/stack.sh down

# Is each local service up?
status:
    scripts/stack.sh status

# Stop the services and delete their data.
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

# Bring the stack up, apply migrations and ingest once: the pipeline, running.
deploy-local: up migrate
    #!/usr/bin/env bash
    set -uo pipefail
    if {{cpctl}} ingest; then
        echo "deploy-local: ingest done; snapshots are in ${DATABASE_URL%%\?*} (table market_snapshots)"
    else
        echo "deploy-local: ingest did not complete (the error above says why); the stack keeps running, retry with 'just ingest'"
    fi
    echo "deploy-local: stack is up; stop it with 'just down'"

# Serve the functions locally for `cargo lambda invoke` (e.g. `cargo lambda invoke ingest --data-file events/ingest.json`).
watch:
    cargo lambda watch -A 127.0.0.1 -P 9000

# Every test, against the real local services (started if needed).
test: up
    cargo build --workspace --all-targets --locked
    {{cpctl}} migrate
    scripts/lambda-smoke.sh
    cargo test --workspace --locked --no-fail-fast

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Format the code.
fmt:
    cargo fmt --all
