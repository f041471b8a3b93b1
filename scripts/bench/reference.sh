#!/usr/bin/env bash
# The pandas reference of `just bench`: the five transforms as the original
# Python project would compute them (scripts/bench/reference_transforms.py), on
# the same shipped candles, in a venv of its own (pinned by requirements.txt,
# made on first use under the tools folder, shared by every clone). Prints the
# script's JSON report on stdout.
#
# Usage: scripts/bench/reference.sh [ARGS…]   (ARGS go to reference_transforms.py)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
req="$ROOT/scripts/bench/requirements.txt"
venv="$TOOLS_DIR/bench-pandas-$(sha256sum "$req" | cut -c1-12)"
if [[ ! -x $venv/bin/python || ! -f $venv/.installed ]]; then
  # numpy 2.3 needs Python 3.11 or later.
  py="$(find_python3 11)" || { echo "bench: no Python >= 3.11 with venv for the pandas reference" >&2; exit 1; }
  echo "bench: making the pandas venv $venv" >&2
  pip_venv "$venv" "$py" -r "$req" >&2
  touch "$venv/.installed"
fi
exec "$venv/bin/python" "$ROOT/scripts/bench/reference_transforms.py" --json "$@"
