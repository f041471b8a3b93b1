#!/usr/bin/env bash
# The pipeline's own long-running jobs (producer, consumer poller, …) as
# background processes with pid files in .state/run/jobs. A job's structured
# log is its component's file in .state/logs (LOG_DIR, e.g. producer.log,
# rotated by the job itself); what it prints outside that (a panic, a report on
# stdout) goes to .state/logs/NAME.out.
#
# Usage: scripts/jobs.sh start NAME COMMAND [ARGS…]   start unless running
#        scripts/jobs.sh stop [NAME…]                  SIGTERM (all jobs if none named), wait
#        scripts/jobs.sh status                        one line per job
# Jobs finish their work in flight on SIGTERM; after 30 s they are killed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
RUN="$ROOT/.state/run/jobs"
LOGS="$ROOT/.state/logs"
mkdir -p "$RUN" "$LOGS"

pid_of() { [[ -f $RUN/$1.pid ]] && tr -dc '0-9' <"$RUN/$1.pid" || true; }
alive() { local pid; pid="$(pid_of "$1")"; [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; }

start() {
  local name=$1
  shift
  if alive "$name"; then
    echo "jobs: $name already running (pid $(pid_of "$name"))"
    return
  fi
  # A new session, so stopping the job reaches every process it started.
  setsid "$@" >>"$LOGS/$name.out" 2>&1 </dev/null &
  local pid=$! rc=0
  echo "$pid" >"$RUN/$name.pid"
  sleep 1
  if ! alive "$name"; then
    # A one-shot job (history) may be done already: only a failure is an error.
    wait "$pid" || rc=$?
    rm -f "$RUN/$name.pid"
    if ((rc == 0)); then
      echo "jobs: $name finished"
      return
    fi
    echo "jobs: $name exited at once (exit $rc); last lines of $LOGS/$name.out:" >&2
    tail -n 20 "$LOGS/$name.out" >&2
    return 1
  fi
  echo "jobs: $name started (pid $(pid_of "$name"))"
}

stop() {
  local names=("$@") name pid
  if ((${#names[@]} == 0)); then
    for f in "$RUN"/*.pid; do [[ -e $f ]] && names+=("$(basename "$f" .pid)"); done
  fi
  for name in "${names[@]}"; do
    if alive "$name"; then
      pid="$(pid_of "$name")"
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "jobs: $name did not stop within 30 s; killing it" >&2
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      fi
      echo "jobs: $name stopped"
    fi
    rm -f "$RUN/$name.pid"
  done
}

status() {
  local f name
  for f in "$RUN"/*.pid; do
    [[ -e $f ]] || continue
    name="$(basename "$f" .pid)"
    if alive "$name"; then echo "jobs: $name: up (pid $(pid_of "$name"))"; else echo "jobs: $name: down"; fi
  done
}

cmd=${1:-status}
shift || true
case $cmd in
  start) start "$@" ;;
  stop) stop "$@" ;;
  status) status ;;
  *) echo "usage: $0 start NAME CMD…|stop [NAME…]|status" >&2; exit 2 ;;
esac
