#!/usr/bin/env bash
# The Python side of `just bench`: a venv pinned by scripts/bench/requirements.txt
# (pandas for the reference transforms, confluent-kafka and psycopg for the
# reference consumer), made on first use under the tools folder and shared by
# every clone. Runs its Python with the arguments given, or with --which prints
# the interpreter's path.
#
# Usage: scripts/bench/venv.sh --which
#        scripts/bench/venv.sh SCRIPT.py [ARGS…]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
req="$ROOT/scripts/bench/requirements.txt"
venv="$TOOLS_DIR/bench-python-$(sha256sum "$req" | cut -c1-12)"
if [[ ! -x $venv/bin/python || ! -f $venv/.installed ]]; then
  # numpy 2.3 needs Python 3.11 or later.
  py="$(find_python3 11)" || { echo "bench: no Python >= 3.11 with venv for the Python references" >&2; exit 1; }
  echo "bench: making the Python venv $venv" >&2
  pip_venv "$venv" "$py" -r "$req" >&2
  touch "$venv/.installed"
fi
if [[ ${1:-} == --which ]]; then
  echo "$venv/bin/python"
else
  exec "$venv/bin/python" "$@"
fi
