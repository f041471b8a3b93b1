#!/usr/bin/env bash
# Idempotent installer of the tools this project needs beyond git, Rust,
# Python (pyenv), Java, Maven and Debian's PostgreSQL:
#   just, cargo-lambda, LocalStack (or moto as a fallback), Kafka jars,
#   PostgreSQL $POSTGRES_MAJOR server and a few Debian packages when missing.
# Tools live outside the clone in ${CRYPTO_TOOLS_DIR:-$HOME/.cache/crypto-pipeline},
# so every clone on the machine reuses them. Each step is skipped quickly when
# its marker file (holding the version) is present.
#
# Usage: scripts/bootstrap.sh [--quiet]   (--quiet: print only steps that did work)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUIET=0
[[ ${1:-} == --quiet || ${1:-} == -q ]] && QUIET=1

say() { echo "bootstrap: $*"; }
ok() { ((QUIET)) || say "$*"; }
die() { echo "bootstrap: ERROR: $*" >&2; exit 1; }

T_START="$(now)"
mkdir -p "$TOOLS_DIR" "$TOOLS_BIN"

# One bootstrap at a time per tools dir (CI and a developer may overlap).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS_DIR/.lock"
  flock 9
fi

marker_is() { [[ -f $1 && "$(cat "$1")" == "$2" ]]; }

# Where symlinks for just / cargo-lambda go besides $TOOLS_BIN.
if is_root; then LINK_DIR=/usr/local/bin; else LINK_DIR="$HOME/.local/bin"; fi

# link NAME TARGET: $TOOLS_BIN/NAME -> TARGET, and LINK_DIR/NAME -> $TOOLS_BIN/NAME
# unless LINK_DIR/NAME is something that is not a symlink (someone else's binary).
link_tool() {
  local name=$1 target=$2 dest
  [[ $target == "$TOOLS_BIN/$name" ]] || ln -sfn "$target" "$TOOLS_BIN/$name"
  mkdir -p "$LINK_DIR" 2>/dev/null || true
  dest="$LINK_DIR/$name"
  if [[ -e $dest && ! -L $dest ]]; then
    ok "note: $dest exists and is not ours; use $TOOLS_BIN/$name (put $TOOLS_BIN first on PATH)"
  elif [[ "$(readlink "$dest" 2>/dev/null)" != "$TOOLS_BIN/$name" ]]; then
    ln -sfn "$TOOLS_BIN/$name" "$dest" 2>/dev/null ||
      ok "note: cannot write $dest; add $TOOLS_BIN to PATH"
  fi
}

# ---------------------------------------------------------------- Debian packages
# command -> Debian package, installed only when the command is missing.
declare -A APT_FOR=(
  [curl]=curl
  [cc]=gcc
  [make]=make
  # The local Kafka's SASL_SSL listener: its CA and broker certificate (scripts/stack.sh).
  [openssl]=openssl
  # OpenSSL built into librdkafka (rdkafka's ssl-vendored) needs perl to configure.
  [perl]=perl
  [pgrep]=procps
  # scripts/lambda-build.sh inspects the Lambda binary.
  [file]=file
  [readelf]=binutils
  [java]=openjdk-17-jre-headless
  [mvn]=maven
  [node]=nodejs
  [npm]=npm
  # Browser tests of the dashboard drive Debian's Chromium (playwright-core, no browser download).
  [chromium]=chromium
)
APT_UPDATED=0
apt_install() {
  # Update the lists only when a package has no install candidate.
  local p need_update=0
  for p in "$@"; do
    if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then need_update=1; fi
  done
  if ((need_update && !APT_UPDATED)); then
    apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
for cmd in "${!APT_FOR[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${APT_FOR[$cmd]}")
done
if ((${#missing[@]})); then
  if is_root && command -v apt-get >/dev/null 2>&1; then
    say "apt-get install ${missing[*]}"
    apt_install "${missing[@]}"
    ok "debian packages ok (installed ${missing[*]})"
  else
    die "missing tools; please install (Debian/Ubuntu names): ${missing[*]}"
  fi
else
  ok "debian packages ok"
fi

# ---------------------------------------------------------------- PostgreSQL server
if [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]]; then
  ok "postgresql $POSTGRES_MAJOR ok ($PG_BIN)"
elif is_root && command -v apt-get >/dev/null 2>&1; then
  say "apt-get install postgresql-$POSTGRES_MAJOR"
  apt_install "postgresql-$POSTGRES_MAJOR"
  [[ -x $PG_BIN/initdb ]] || die "postgresql-$POSTGRES_MAJOR installed but $PG_BIN/initdb is missing"
  say "postgresql $POSTGRES_MAJOR ok (installed)"
else
  die "PostgreSQL $POSTGRES_MAJOR server not found in $PG_BIN; install it, e.g. 'sudo apt-get install postgresql-$POSTGRES_MAJOR'"
fi

# ---------------------------------------------------------------- dashboard front-end packages
# playwright-core, which drives Chromium in the browser tests, pinned by
# site-gen/web/package-lock.json (the build needs no npm: uPlot is vendored in
# site-gen/vendor/uplot); node_modules is per clone, npm's cache is shared.
WEB_DIR="$ROOT/site-gen/web"
if [[ $WEB_DIR/node_modules/.package-lock.json -nt $WEB_DIR/package-lock.json ]]; then
  ok "npm packages ok (site-gen/web/node_modules)"
else
  t="$(now)"
  (cd "$WEB_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
    die "npm ci in site-gen/web failed"
  say "npm packages installed in $(since "$t")s (playwright-core for the browser tests)"
fi

# ---------------------------------------------------------------- just, cargo-lambda
# pip_tool NAME VERSION PACKAGE: the binary NAME of the pip package PACKAGE==VERSION,
# in the venv $TOOLS_DIR/NAME-VERSION, linked by link_tool.
pip_tool() {
  local name=$1 version=$2 venv="$TOOLS_DIR/$1-$2" t py
  if ! marker_is "$venv/.installed" "$version" || [[ ! -x $venv/bin/$name ]]; then
    t="$(now)"
    py="$(find_python3 8)" || die "no python3 (>= 3.8) with venv found"
    pip_venv "$venv" "$py" "$3==$version"
    echo "$version" >"$venv/.installed"
    link_tool "$name" "$venv/bin/$name"
    say "$name $version installed in $(since "$t")s -> $TOOLS_BIN/$name, $LINK_DIR/$name"
  else
    link_tool "$name" "$venv/bin/$name"
    ok "$name $version ok ($TOOLS_BIN/$name, $LINK_DIR/$name)"
  fi
}
pip_tool just "$JUST_VERSION" rust-just
pip_tool cargo-lambda "$CARGO_LAMBDA_VERSION" cargo-lambda
CL_VENV="$TOOLS_DIR/cargo-lambda-$CARGO_LAMBDA_VERSION"
# cargo-lambda cross-compiles with zig; the pip package ships it as the ziglang
# module of its venv, which cargo-lambda finds only as `zig` on PATH.
if ! command -v zig >/dev/null 2>&1 || [[ "$(command -v zig)" == "$TOOLS_BIN/zig" || "$(readlink "$(command -v zig)")" == "$TOOLS_BIN/zig" ]]; then
  ZIG_WRAPPER="#!/bin/sh
exec \"$CL_VENV/bin/python\" -m ziglang \"\$@\"
"
  if [[ "$(cat "$TOOLS_BIN/zig" 2>/dev/null)" != "$ZIG_WRAPPER" ]]; then
    printf '%s' "$ZIG_WRAPPER" >"$TOOLS_BIN/zig"
    chmod +x "$TOOLS_BIN/zig"
  fi
  link_tool zig "$TOOLS_BIN/zig"
fi

# ---------------------------------------------------------------- LocalStack (or moto)
LS_SPEC="localstack-core[runtime]==$LOCALSTACK_VERSION cbor2<6 pyopenssl==25.1.0 cryptography>=45,<46 service_identity boto3"
if marker_is "$LOCALSTACK_VENV/.installed" "$LS_SPEC" && [[ -x $LOCALSTACK_VENV/bin/python ]]; then
  ok "localstack $LOCALSTACK_VERSION ok ($LOCALSTACK_VENV)"
elif [[ -z ${CRYPTO_FORCE_MOTO:-} ]] && PY312="$(find_python312)"; then
  t="$(now)"
  # shellcheck disable=SC2086 # the spec is a list of words without spaces
  pip_venv "$LOCALSTACK_VENV" "$PY312" $LS_SPEC
  echo "$LS_SPEC" >"$LOCALSTACK_VENV/.installed"
  say "localstack $LOCALSTACK_VERSION installed in $(since "$t")s (python $("$PY312" -c 'import platform; print(platform.python_version())')) -> $LOCALSTACK_VENV"
else
  MOTO_SPEC="moto[server]==$MOTO_VERSION boto3"
  if marker_is "$MOTO_VENV/.installed" "$MOTO_SPEC" && [[ -x $MOTO_VENV/bin/moto_server ]]; then
    ok "moto $MOTO_VERSION ok ($MOTO_VENV) -- FALLBACK: no Python >= 3.12 for LocalStack; S3 website hosting is not served"
  else
    t="$(now)"
    if [[ -n ${CRYPTO_FORCE_MOTO:-} ]]; then
      say "CRYPTO_FORCE_MOTO set: FALLING BACK to moto_server for S3 (no S3 website hosting)"
    else
      say "no Python >= 3.12 found (pyenv or python3.12/python3.13 on PATH): FALLING BACK to moto_server for S3 (no S3 website hosting)"
    fi
    PY="$(find_python3 8)" || die "no python3 (>= 3.8) with venv found"
    # shellcheck disable=SC2086
    pip_venv "$MOTO_VENV" "$PY" $MOTO_SPEC
    echo "$MOTO_SPEC" >"$MOTO_VENV/.installed"
    say "moto $MOTO_VERSION installed in $(since "$t")s -> $MOTO_VENV"
  fi
fi

# ---------------------------------------------------------------- Kafka jars
POM="$ROOT/kafka/pom.xml"
KAFKA_MARK="$KAFKA_VERSION $(sha256sum "$POM" | cut -c1-16)"
if marker_is "$KAFKA_HOME/.installed" "$KAFKA_MARK" && compgen -G "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
  ok "kafka $KAFKA_VERSION ok ($KAFKA_LIBS)"
else
  t="$(now)"
  command -v mvn >/dev/null 2>&1 || die "maven (mvn) is needed to fetch the Kafka jars"
  tmp="$KAFKA_HOME.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp/libs"
  if ! mvn -q -B -Dstyle.color=never -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/libs" >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    die "mvn could not resolve the Kafka $KAFKA_VERSION jars (output above)"
  fi
  rm -f "$tmp/mvn.log"
  echo "$KAFKA_MARK" >"$tmp/.installed"
  rm -rf "$KAFKA_HOME"
  mv "$tmp" "$KAFKA_HOME"
  say "kafka $KAFKA_VERSION installed in $(since "$t")s ($(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars) -> $KAFKA_LIBS"
fi

case ":$PATH:" in
  *":$LINK_DIR:"* | *":$TOOLS_BIN:"*) ;;
  *) say "note: add $LINK_DIR (or $TOOLS_BIN) to PATH for just / cargo-lambda" ;;
esac
ok "done in $(since "$T_START")s (tools in $TOOLS_DIR)"
