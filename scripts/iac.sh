#!/usr/bin/env bash
# Infrastructure as code: the AWS SAM template (template.yaml) of the pipeline.
#
#   scripts/iac.sh validate           offline checks, for CI: the schedule comes from
#                                     schedule.env, `sam validate` (the SAM transform)
#                                     and `sam validate --lint` (cfn-lint); no AWS access
#   scripts/iac.sh deploy-localstack  sam build (cargo lambda) + sam deploy to a LocalStack
#                                     running in Docker with Lambda (docs/aws.md)
#   scripts/iac.sh deploy [--guided] [SAM DEPLOY OPTIONS...]
#                                     sam build + sam deploy to AWS; the first time (no
#                                     parameters in samconfig.toml yet) it runs --guided
#   scripts/iac.sh sam ARGS...        the pinned SAM CLI, e.g. `scripts/iac.sh sam logs`
#
# The SAM CLI (with cfn-lint) is installed once, version pinned, in a venv under
# ${CRYPTO_TOOLS_DIR:-$HOME/.cache/crypto-pipeline}/sam; a marker file holding the
# versions makes later runs skip the install.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SAM_CLI_VERSION=1.170.0
CFN_LINT_VERSION=1.58.0 # what sam validate --lint runs (a dependency of aws-sam-cli, pinned too)
SAM_SPEC="aws-sam-cli==$SAM_CLI_VERSION cfn-lint==$CFN_LINT_VERSION"
SAM_VENV="$TOOLS_DIR/sam"
SAM="$SAM_VENV/bin/sam"
SAM_PY="$SAM_VENV/bin/python"
IAC_PY="$ROOT/scripts/iac.py" # the Python half, run with the SAM CLI's venv

TEMPLATE="$ROOT/template.yaml"
SAMCONFIG="$ROOT/samconfig.toml"
STACK_NAME="${STACK_NAME:-crypto-pipeline}"

say() { echo "iac: $*"; }
die() {
  echo "iac: ERROR: $*" >&2
  exit 1
}

# No usage data leaves the machine; no instance-metadata probing for credentials.
export SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true

# ---------------------------------------------------------------- the SAM CLI
sam_installed() { [[ -x $SAM && -f $SAM_VENV/.installed && "$(cat "$SAM_VENV/.installed")" == "$SAM_SPEC" ]]; }

ensure_sam() {
  sam_installed && return 0
  mkdir -p "$TOOLS_DIR"
  # One install at a time (CI and a developer may overlap); re-check once we hold the lock.
  if command -v flock >/dev/null 2>&1; then
    exec 8>"$TOOLS_DIR/.sam.lock"
    flock 8
    sam_installed && return 0
  fi
  local py t log
  # Python >= 3.10 (aws-sam-cli's floor): pyenv's 3.12+ first, then python3.
  py="$(find_python3 10)" || die "aws-sam-cli needs Python >= 3.10 with venv (pyenv 3.12/3.13, or python3)"
  t="$(now)"
  say "installing $SAM_SPEC into $SAM_VENV (python $("$py" -c 'import platform; print(platform.python_version())'))"
  new_venv "$SAM_VENV" "$py"
  log="$(mktemp)"
  # shellcheck disable=SC2086 # the spec is a list of words without spaces
  if ! "$SAM_PY" -m pip install -q $SAM_SPEC >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    rm -rf "$SAM_VENV"
    die "pip could not install $SAM_SPEC (output above)"
  fi
  rm -f "$log"
  echo "$SAM_SPEC" >"$SAM_VENV/.installed"
  say "installed in $(since "$t")s: $("$SAM" --version), cfn-lint $("$SAM_VENV/bin/cfn-lint" --version | awk '{print $NF}')"
}

# ---------------------------------------------------------------- schedule.env
# cargo_env: cargo and the shared build directory of the justfile and CI.
cargo_env() {
  export PATH="$TOOLS_BIN:$HOME/.cargo/bin:$PATH"
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crypto-pipeline/target}"
}

# read_schedule: INGEST_SCHEDULE from schedule.env, which alone decides AWS's
# schedule (an INGEST_SCHEDULE in the environment or .env is the local
# scheduler's business), checked by the one parser of the EventBridge grammar:
# `cpctl schedule --check` (built if needed).
read_schedule() {
  load_env_file "$ROOT/schedule.env" --override
  [[ -n ${INGEST_SCHEDULE:-} ]] || die "schedule.env does not set INGEST_SCHEDULE"
  [[ -n ${FEED_SCHEDULE:-} ]] || die "schedule.env does not set FEED_SCHEDULE"
  cargo_env
  command -v cargo >/dev/null 2>&1 || die "checking the schedule needs cargo on PATH (rustup)"
  say "checking INGEST_SCHEDULE=\"$INGEST_SCHEDULE\" and FEED_SCHEDULE=\"$FEED_SCHEDULE\" with cpctl (built first if needed)"
  (cd "$ROOT" && cargo build --quiet --locked -p cpctl) || die "cannot build cpctl, which checks the schedule"
  local name
  for name in INGEST_SCHEDULE FEED_SCHEDULE; do
    "$CARGO_TARGET_DIR/debug/cpctl" schedule --check --schedule "${!name}" >/dev/null ||
      die "schedule.env: $name is not a schedule EventBridge takes (above)"
  done
}

# ---------------------------------------------------------------- parameters
# overrides KEY=VALUE...: the deploy's parameter overrides, NUL-separated (see iac.py).
CONFIG_ENV=default
overrides() { "$SAM_PY" "$IAC_PY" overrides "$SAMCONFIG" "$CONFIG_ENV" "$@"; }

# Does samconfig.toml hold saved parameters for $CONFIG_ENV (a deploy happened before)?
has_saved_parameters() { "$SAM_PY" "$IAC_PY" has-saved-parameters "$SAMCONFIG" "$CONFIG_ENV"; }

# ---------------------------------------------------------------- build
# sam build runs `cargo lambda build --release --<arch> --bin <name>` per function
# (BuildMethod rust-cargolambda, a SAM beta feature: --beta-features).
build() {
  cargo_env
  local missing=() tool
  for tool in cargo cargo-lambda zig; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  ((${#missing[@]} == 0)) || die "sam build needs ${missing[*]} on PATH: run scripts/bootstrap.sh (cargo: rustup)"
  (cd "$ROOT" && "$SAM" build --beta-features --config-env "$CONFIG_ENV" --template-file "$TEMPLATE" "$@")
}

# deploy_built ARGS...: sam deploy of what build made, with the $CONFIG_ENV settings.
deploy_built() {
  (cd "$ROOT" && "$SAM" deploy --config-env "$CONFIG_ENV" --template-file .aws-sam/build/template.yaml "$@")
}

# ---------------------------------------------------------------- validate
cmd_validate() {
  local t0 out rc=0
  t0="$(now)"
  ensure_sam
  read_schedule

  # The schedule's one definition is schedule.env: the template must take it as
  # the parameter IngestSchedule, with no default of its own, and use it.
  "$SAM_PY" "$IAC_PY" check-template "$TEMPLATE" "IngestSchedule=$INGEST_SCHEDULE" "FeedSchedule=$FEED_SCHEDULE" || exit 1
  say "schedules: INGEST_SCHEDULE=\"$INGEST_SCHEDULE\", FEED_SCHEDULE=\"$FEED_SCHEDULE\" (schedule.env) -> parameters IngestSchedule, FeedSchedule (no defaults in template.yaml)"

  # Offline: dummy credentials and a proxy that refuses every connection, so
  # nothing reaches AWS (nor a LocalStack named in .env). `sam validate` runs
  # the SAM transform (as CloudFormation will); it asks IAM only to turn a bare
  # customer-managed policy name into an ARN, which this template never uses.
  # `--lint` runs cfn-lint, which needs no AWS at all.
  local offline=(env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_S3
    -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
    HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 NO_PROXY= no_proxy=)
  cd "$ROOT"
  echo "+ sam validate --template template.yaml --region us-east-1"
  out="$("${offline[@]}" "$SAM" validate --template template.yaml --region us-east-1 2>&1)" || rc=$?
  printf '%s\n' "$out"
  if ((rc)); then
    if [[ $out == *"Loading policies from IAM"* ]]; then
      die "sam validate wanted IAM to resolve a policy name: name policies by ARN (arn:\${AWS::Partition}:iam::aws:policy/...) or use a SAM policy template"
    fi
    die "sam validate: template.yaml is not a valid SAM template (above)"
  fi
  echo "+ sam validate --lint --template template.yaml --region us-east-1"
  out="$("${offline[@]}" "$SAM" validate --lint --template template.yaml --region us-east-1 2>&1)" || rc=$?
  printf '%s\n' "$out"
  ((rc == 0)) || die "sam validate --lint: cfn-lint found problems in template.yaml (above)"
  say "template.yaml valid (SAM CLI $SAM_CLI_VERSION, cfn-lint $CFN_LINT_VERSION) in $(since "$t0")s"
}

# ---------------------------------------------------------------- LocalStack
cmd_deploy_localstack() {
  local endpoint="${LOCALSTACK_ENDPOINT:-http://127.0.0.1:${S3_PORT:-4566}}"
  local health
  CONFIG_ENV=localstack
  read_schedule
  ensure_sam

  # Fail early: LocalStack must answer, with the services the stack uses.
  health="$(curl -fsS --max-time 5 "$endpoint/_localstack/health" 2>/dev/null)" ||
    die "LocalStack is not reachable at $endpoint (set LOCALSTACK_ENDPOINT). Start LocalStack in Docker with Lambda first: see docs/aws.md"
  "$SAM_PY" "$IAC_PY" check-localstack "$endpoint" "$health" || exit 1

  # What the functions, in LocalStack's Lambda containers, connect to: the host's
  # Postgres and Kafka, as seen from a container (host.docker.internal; on Linux,
  # run LocalStack with --add-host=host.docker.internal:host-gateway).
  local db_url="${LOCALSTACK_DATABASE_URL:-postgres://${PG_USER:-postgres}@host.docker.internal:${PG_PORT:-55432}/${PG_DB:-crypto}}"
  local kafka="${LOCALSTACK_KAFKA_BOOTSTRAP:-host.docker.internal:${KAFKA_PORT:-19092}}"
  local trigger="${LOCALSTACK_KAFKA_TRIGGER:-self-managed}"
  local arch
  case "$(uname -m)" in
    aarch64 | arm64) arch=arm64 ;;
    *) arch=x86_64 ;;
  esac
  arch="${LOCALSTACK_ARCHITECTURE:-$arch}" # the host's: no emulation in LocalStack's containers

  export AWS_ENDPOINT_URL="$endpoint" AWS_REGION="${AWS_REGION:-us-east-1}"
  export AWS_DEFAULT_REGION="$AWS_REGION"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN

  # The artifact bucket (samconfig.toml [localstack]) and the database secret.
  local secret_arn
  secret_arn="$("$SAM_PY" "$IAC_PY" localstack-resources "$db_url")" ||
    die "could not create the artifact bucket or the database secret in LocalStack"
  say "database secret $secret_arn (value: the DATABASE_URL for the functions, from LOCALSTACK_DATABASE_URL)"
  say "Kafka for the consumer: $kafka (LOCALSTACK_KAFKA_BOOTSTRAP), trigger: $trigger (LOCALSTACK_KAFKA_TRIGGER=self-managed|none)"
  say "note: Postgres and Kafka must accept connections from LocalStack's containers, and Kafka must"
  say "      advertise a listener they can reach (the local stack's Kafka advertises 127.0.0.1 only)"

  local params=()
  mapfile -d '' params < <(overrides "IngestSchedule=$INGEST_SCHEDULE" "FeedSchedule=$FEED_SCHEDULE" "Architecture=$arch" \
    "DatabaseSecretArn=$secret_arn" "KafkaBootstrapServers=$kafka" "KafkaTrigger=$trigger")
  ((${#params[@]})) || die "could not assemble the parameter overrides"
  # The same overrides for the build: Architecture decides the cargo lambda target.
  build --parameter-overrides "${params[@]}"
  deploy_built --stack-name "$STACK_NAME" --no-confirm-changeset --parameter-overrides "${params[@]}"
  "$SAM_PY" "$IAC_PY" stack-outputs "$STACK_NAME"
  say "deployed to LocalStack. The schedule starts the chain; to start it now (asynchronously:"
  say "destinations only follow asynchronous invocations):"
  say "  AWS_ENDPOINT_URL=$endpoint AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=$AWS_REGION \\"
  say "  scripts/iac.sh sam remote invoke IngestFunction --stack-name $STACK_NAME --event-file events/ingest.json --parameter InvocationType=Event"
}

# ---------------------------------------------------------------- AWS
cmd_deploy() {
  local guided=0 args=() a
  for a in "$@"; do
    case "$a" in
      --guided | -g) guided=1 ;;
      --parameter-overrides | --parameter-overrides=*)
        die "parameters live in samconfig.toml (parameter_overrides of [default.deploy.parameters], written by the guided deploy); scripts/iac.sh adds IngestSchedule and FeedSchedule from schedule.env" ;;
      *) args+=("$a") ;;
    esac
  done
  CONFIG_ENV=default
  read_schedule
  ensure_sam

  # The local stack's settings (.env, `just`) must not send this to LocalStack.
  if [[ -n ${AWS_ENDPOINT_URL:-}${AWS_ENDPOINT_URL_S3:-} ]]; then
    say "ignoring AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-}${AWS_ENDPOINT_URL_S3:+ AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL_S3} (the local stack's): deploying to AWS"
    unset AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
  fi
  [[ ${AWS_ACCESS_KEY_ID:-} != test ]] ||
    die "AWS_ACCESS_KEY_ID=test is LocalStack's; use your AWS credentials (e.g. AWS_PROFILE=... or aws sso login)"

  if ! has_saved_parameters; then
    say "no saved parameters in samconfig.toml yet: first deploy, guided"
    guided=1
  fi
  if ((guided)) && [[ ! -t 0 ]]; then
    die "sam deploy --guided asks questions: run it once in a terminal, or write parameter_overrides into [default.deploy.parameters] of samconfig.toml (docs/aws.md)"
  fi

  local params=() built_arch arch
  mapfile -d '' params < <(overrides "IngestSchedule=$INGEST_SCHEDULE" "FeedSchedule=$FEED_SCHEDULE")
  ((${#params[@]})) || die "could not assemble the parameter overrides"
  # The saved overrides go to the build too: Architecture decides the cargo lambda target.
  build --parameter-overrides "${params[@]}"
  if ((!guided)); then
    deploy_built --parameter-overrides "${params[@]}" "${args[@]}"
    return
  fi
  built_arch="$(saved_architecture)"
  deploy_built --guided --parameter-overrides "${params[@]}" "${args[@]}"

  # A guided run may have chosen another Architecture than the one just built:
  # build again for it and deploy once more (no questions this time).
  arch="$(saved_architecture)"
  if [[ $arch != "$built_arch" ]]; then
    say "Architecture is now $arch (was $built_arch when building): rebuilding and deploying again"
    mapfile -d '' params < <(overrides "IngestSchedule=$INGEST_SCHEDULE" "FeedSchedule=$FEED_SCHEDULE")
    build --parameter-overrides "${params[@]}"
    deploy_built --parameter-overrides "${params[@]}" "${args[@]}"
  fi
}

# The Architecture saved in samconfig.toml for $CONFIG_ENV, else the template's default.
saved_architecture() {
  local kv
  while IFS= read -r -d '' kv; do
    if [[ $kv == Architecture=* ]]; then
      kv="${kv#Architecture=\"}"
      echo "${kv%\"}"
      return 0
    fi
  done < <(overrides 2>/dev/null)
  echo arm64
}

# ---------------------------------------------------------------- main
usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

case "${1:-}" in
  validate) shift; cmd_validate "$@" ;;
  deploy-localstack) shift; cmd_deploy_localstack "$@" ;;
  deploy) shift; cmd_deploy "$@" ;;
  sam) shift; ensure_sam; exec "$SAM" "$@" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
