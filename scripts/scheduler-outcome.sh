#!/usr/bin/env bash
# Prints "ok" or "failed" once the scheduler's log (LOG) has the outcome of a
# cycle logged at or after Unix time SINCE, nothing before then.
# Usage: scripts/scheduler-outcome.sh LOG SINCE
set -euo pipefail
log=$1 since=$2
[[ -f $log ]] || exit 0
python3 - "$log" "$since" <<'PY'
import datetime, re, sys
log, since = sys.argv[1], int(sys.argv[2])
for line in open(log, errors="replace"):
    m = re.match(r"\s*(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", line)
    if not m:
        continue
    t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
    if t + 1 < since:
        continue
    if "cycle done" in line:
        print("ok"); break
    if "step failed" in line:
        print("failed"); break
PY
