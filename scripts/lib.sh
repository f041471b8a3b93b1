# shellcheck shell=bash disable=SC2034  # variables are used by the scripts sourcing this
# Shared helpers of the scripts in scripts/ and of the justfile's recipes (sourced, not run).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# load_env_file FILE [--override]: the one reader of the project's KEY=VALUE
# files (stack.env, schedule.env, .env), for every script and, through the
# justfile's shell, every recipe. One KEY=value per line; blank lines and lines
# starting with # are skipped. A value in one pair of double or single quotes
# loses them, and a value with spaces needs them (INGEST_SCHEDULE="rate(10 minutes)"),
# as docker compose --env-file reads it; nothing else is interpreted (no $,
# escapes or trailing comments). Variables are exported; one already set wins
# unless --override.
load_env_file() {
  local file=$1 override=${2:-} line key val n=0
  [[ -f $file ]] || { echo "missing $file" >&2; exit 1; }
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    line="${line%$'\r'}"
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    if [[ ! $line =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
      echo "$file:$n: not a KEY=value line: $line" >&2
      exit 1
    fi
    key="${BASH_REMATCH[1]}" val="${BASH_REMATCH[2]}"
    if [[ $val =~ ^\"(.*)\"$ || $val =~ ^\'(.*)\'$ ]]; then
      val="${BASH_REMATCH[1]}"
    elif [[ $val =~ [[:space:]] ]]; then
      echo "$file:$n: $key=$val has spaces: put the value in double quotes ($key=\"$val\")" >&2
      exit 1
    fi
    if [[ $override == --override || -z ${!key+x} ]]; then
      printf -v "$key" '%s' "$val"
      export "${key?}"
    fi
  done <"$file"
}

# The environment wins, then your .env (overrides of .env.example), then the
# local stack's ports and versions and the schedule.
if [[ -f $ROOT/.env ]]; then load_env_file "$ROOT/.env"; fi
load_env_file "$ROOT/stack.env"
load_env_file "$ROOT/schedule.env"

# The local broker's TLS material and SCRAM password (scripts/stack.sh makes
# them at first start; the docker stack mounts the same folder): inside this
# clone's state, wherever the clone is.
KAFKA_TLS_DIR="$ROOT/.state/kafka/tls"

# local_stack_env: what the pipeline's binaries read (see .env.example), unless
# set, pointed at the local stack: every recipe of the justfile runs with it.
# KAFKA_SECURE_* are not the pipeline's: they tell the tests where the broker's
# second listener is (SASL_SSL, SCRAM user KAFKA_SCRAM_USER, CA of the stack's
# own); the pipeline keeps the plaintext KAFKA_BROKERS unless told otherwise.
local_stack_env() {
  export DATABASE_URL="${DATABASE_URL:-postgres://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB}"
  export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}"
  export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:$S3_PORT}"
  export AWS_REGION="${AWS_REGION:-us-east-1}"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
  export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  # Alert messages link to the coin's page on the dashboard `just deploy-local` serves.
  export DASHBOARD_URL="${DASHBOARD_URL:-http://127.0.0.1:$DASHBOARD_PORT/}"
  # The shipped alert rules (the rule `default` from ALERT_THRESHOLD_PCT and ALERT_WINDOW_HOURS).
  export ALERT_RULES_FILE="${ALERT_RULES_FILE:-$ROOT/alerts.toml}"
  export KAFKA_SECURE_BROKERS="${KAFKA_SECURE_BROKERS:-localhost:$KAFKA_SASL_SSL_PORT}"
  export KAFKA_SECURE_CA_LOCATION="${KAFKA_SECURE_CA_LOCATION:-$KAFKA_TLS_DIR/ca.pem}"
  export KAFKA_SECURE_USERNAME="${KAFKA_SECURE_USERNAME:-$KAFKA_SCRAM_USER}"
  export KAFKA_SECURE_PASSWORD_FILE="${KAFKA_SECURE_PASSWORD_FILE:-$KAFKA_TLS_DIR/scram-password}"
}

TOOLS_DIR="${CRYPTO_TOOLS_DIR:-$HOME/.cache/crypto-pipeline}"
TOOLS_BIN="$TOOLS_DIR/bin"
KAFKA_HOME="$TOOLS_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
LOCALSTACK_VENV="$TOOLS_DIR/localstack-$LOCALSTACK_VERSION"
MOTO_VENV="$TOOLS_DIR/moto-$MOTO_VERSION"
PG_BIN="/usr/lib/postgresql/$POSTGRES_MAJOR/bin"

is_root() { [[ $(id -u) -eq 0 ]]; }

# Seconds since the epoch with a fraction, and a duration since $1.
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# first_python MINOR CANDIDATE...: print the executable of the first candidate
# that runs and is a Python >= 3.MINOR with venv, or nothing.
first_python() {
  local minor=$1 c
  shift
  for c in "$@"; do
    # pyenv shims exist on PATH even when they cannot run: actually run them
    if "$c" -c "import sys, venv; sys.exit(0 if sys.version_info >= (3, $minor) else 1)" >/dev/null 2>&1; then
      "$c" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

# Print the path of a Python >= 3.12 (pyenv versions first, then PATH), or nothing.
find_python312() {
  local c cands=() root
  if command -v pyenv >/dev/null 2>&1; then
    root="$(pyenv root 2>/dev/null || true)"
  fi
  root="${root:-${PYENV_ROOT:-$HOME/.pyenv}}"
  if [[ -d $root/versions ]]; then
    # CPython 3.12+ installed by pyenv, newest first (3.13.x before 3.12.x)
    while IFS= read -r c; do cands+=("$c/bin/python"); done < <(
      for c in "$root"/versions/3.1[2-9].*; do
        [[ ${c##*/} =~ ^3\.1[2-9]\.[0-9]+$ ]] && echo "$c"
      done | sort -rV
    )
  fi
  cands+=(python3.13 python3.12 python3)
  first_python 12 "${cands[@]}"
}

# find_python3 MINOR: any Python >= 3.MINOR with venv (3.8 is enough for the
# pip-shipped binaries just and cargo-lambda), a 3.12+ first.
find_python3() { find_python312 || first_python "$1" python3; }

# new_venv DIR PYTHON: (re)create a venv with an up-to-date pip.
new_venv() {
  rm -rf "$1"
  "$2" -m venv "$1"
  "$1/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
}

# pip_venv DIR PYTHON PACKAGES...: (re)create a venv and install packages into it.
pip_venv() {
  local dir=$1
  new_venv "$dir" "$2"
  shift 2
  "$dir/bin/python" -m pip install -q "$@"
}

# port_open PORT: something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# drop_scratch ADMIN_URL NAME CPCTL [TOPIC…]: removes what a scratch run made
# (scripts/lambda-smoke.sh, scripts/e2e.sh): database NAME, bucket NAME and its
# objects, and the topics named. Best effort: cleanup never fails the caller.
drop_scratch() {
  local admin_url=$1 name=$2 cpctl=$3 topic key
  shift 3
  # from the server's maintenance database: the one of admin_url need not exist
  psql -q "${admin_url%/*}/postgres" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 || true
  for topic in "$@"; do "$cpctl" topic delete "$topic" >/dev/null 2>&1 || true; done
  for key in $(curl -s "$AWS_ENDPOINT_URL/$name?list-type=2" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g'); do
    curl -s -X DELETE "$AWS_ENDPOINT_URL/$name/$key" >/dev/null || true
  done
  curl -s -X DELETE "$AWS_ENDPOINT_URL/$name" >/dev/null || true
}
