#!/usr/bin/env bash
# The one supervisor of our long-running processes, without Docker: the
# services PostgreSQL, Kafka (KRaft, single node) and S3 + SNS + SQS (LocalStack, or moto
# when bootstrap fell back to it), all on 127.0.0.1, and the pipeline's jobs
# (`just deploy-local`: scheduler, producer, consumer, …). Each runs detached in
# a session of its own, with a pid file in .state/run (Postgres: pg_ctl's) and
# its output in .state/logs. Kafka has a second listener, SASL_SSL (SCRAM) on
# localhost:KAFKA_SASL_SSL_PORT, with a CA and keys of its own in .state/kafka/tls.
#
# Usage: scripts/stack.sh up|down|status|reset|env|tls [--docker]|docker-scram|kill SERVICE
#        scripts/stack.sh start NAME COMMAND [ARGS…] | stop [NAME…]
#   up      start the services not running (idempotent), wait until each is ready,
#           print the client environment; `cpctl setup` (`just up`) creates the
#           database, topics and buckets
#   down    stop the jobs, then the services; keep the data
#   status  print each job and service up/down (exit 1 if a service is down)
#   reset   down + delete all state (the Kafka CA, keystore and passwords too)
#   env     print the client environment (KEY=value lines)
#   tls     only make what Kafka's SASL_SSL listener needs, if missing (CA,
#           keystore, passwords in .state/kafka/tls); --docker: readable by the
#           apache/kafka container too (STACK=docker just up)
#   docker-scram  create the SCRAM user in the running docker compose Kafka
#   kill postgres|kafka  SIGKILL the service, no clean-up (the fault tests); `up` restarts it
#   start   start job NAME unless it runs (output: .state/logs/NAME.out); one
#           that exits 0 within a second has finished, any other exit fails
#   stop    stop the jobs named, or all: SIGTERM (they finish the work in
#           flight), SIGKILL after 30 s
# Versions and ports: stack.env (an environment variable of the same name wins).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STATE="$ROOT/.state"
LOGS="$STATE/logs"
RUN="$STATE/run"
JOBS="$RUN/jobs"
WAIT_SECONDS="${STACK_WAIT_SECONDS:-90}"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

log() { echo "stack: $*"; }
die() {
  echo "stack: ERROR: $*" >&2
  exit 1
}
# die_log MESSAGE LOGFILE: error with the end of a log file.
die_log() {
  echo "stack: ERROR: $1 (log: $2)" >&2
  if [[ -f $2 ]]; then
    echo "----- last lines of $2 -----" >&2
    tail -n 25 "$2" >&2 || true
  fi
  exit 1
}

# ------------------------------------------------------------------ processes
port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' | head -1
  fi
}
# ensure_port_free PORT WHAT: error if something that is not ours listens there.
ensure_port_free() {
  if port_open "$1"; then
    local who
    who="$(port_owner "$1")"
    die "port $1 ($2) is already in use by another process${who:+ ($who)}; stop it or change the port in stack.env"
  fi
}
pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
# pid_matches PID PATTERN: the process runs and its command line contains
# PATTERN, or, with no PATTERN (a job: any command), it leads a session of its
# own as spawn made it; so a stale pid file never gets someone else's process signalled.
pid_matches() {
  pid_alive "$1" || return 1
  if [[ -z $2 ]]; then
    [[ "$(ps -o sid= -p "$1" 2>/dev/null | tr -d ' ')" == "$1" ]]
  else
    [[ "$(ps -o args= -p "$1" 2>/dev/null)" == *"$2"* ]]
  fi
}
read_pid() { if [[ -f $1 ]]; then tr -dc '0-9' <"$1" || true; fi; }
# wait_ready READY ALIVE LOG WHAT: poll READY every 0.2 s for WAIT_SECONDS; die
# with the end of LOG if ALIVE says the process is gone (after a 2 s grace, as
# pg_ctl writes its pid file a moment after start) or if WHAT is not ready in time.
wait_ready() {
  local ready=$1 alive=$2 logf=$3 what=$4 i
  for ((i = 0; i < WAIT_SECONDS * 5; i++)); do
    "$ready" && return 0
    if ((i > 10)) && ! "$alive"; then die_log "$what exited during start-up" "$logf"; fi
    sleep 0.2
  done
  "$ready" || die_log "$what not ready after ${WAIT_SECONDS}s" "$logf"
}

# Start a long-running process detached from this shell (own session) so that
# Ctrl-C in the caller's terminal does not reach it.
spawn() {
  local logfile=$1 pidfile=$2
  shift 2
  # 8>&-: the service must not inherit (and so hold) the lock of this script
  if command -v setsid >/dev/null 2>&1; then
    nohup setsid "$@" >>"$logfile" 2>&1 </dev/null 8>&- &
  else
    nohup "$@" >>"$logfile" 2>&1 </dev/null 8>&- &
  fi
  echo $! >"$pidfile"
}

# term_pid PIDFILE PATTERN [group]: SIGTERM the process of PIDFILE if it is ours
# (with "group", its whole process group); print its pid.
term_pid() {
  local pid
  pid="$(read_pid "$1")"
  if pid_matches "$pid" "$2"; then
    if [[ ${3:-} == group ]]; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    else
      kill -TERM "$pid" 2>/dev/null || true
    fi
    echo "$pid"
  fi
}
# wait_pid_gone NAME PID PIDFILE SECONDS: wait for PID to exit (SIGKILL as a last
# resort), then end what is left of its process group and remove PIDFILE.
wait_pid_gone() {
  local name=$1 pid=$2 pidfile=$3 limit=$4 i
  for ((i = 0; i < limit * 10; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid"; then
    log "$name did not stop within ${limit}s: SIGKILL"
    if [[ $name == s3 ]]; then # thread dump into its log (see LS_MAIN)
      kill -USR1 "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  # anything left in its process group (it is a session leader)
  kill -TERM -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

# ------------------------------------------------------------------ PostgreSQL
REPO_HASH="$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
if is_root; then
  # initdb/pg_ctl refuse root: run them as postgres, with the data outside the
  # clone (every parent folder must be traversable by postgres; /root is 700).
  PG_HOME="/var/lib/crypto-pipeline/$REPO_HASH/pg"
  PG_LOG="$PG_HOME/postgres.log"
else
  PG_HOME="$STATE/pg"
  PG_LOG="$LOGS/postgres.log"
fi
PG_DATA="$PG_HOME/data"
PG_SOCK="$PG_HOME/run"
# unix socket paths are limited to ~107 bytes
if ((${#PG_SOCK} > 90)); then PG_SOCK="${TMPDIR:-/tmp}/crypto-pg-$REPO_HASH"; fi

pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_running() { [[ -f $PG_DATA/PG_VERSION ]] && pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -t 2 >/dev/null 2>&1; }

pg_prepare_dirs() {
  mkdir -p "$STATE" "$LOGS"
  if is_root; then
    id postgres >/dev/null 2>&1 || die "user 'postgres' not found (install postgresql-$POSTGRES_MAJOR)"
    if [[ -e $STATE/pg && ! -L $STATE/pg ]]; then
      die "$STATE/pg is a directory from a non-root run; run 'scripts/stack.sh reset' first"
    fi
    if [[ ! -d $PG_HOME ]]; then
      mkdir -p "$PG_HOME"
      chmod 755 /var/lib/crypto-pipeline "$(dirname "$PG_HOME")"
      chown postgres: "$PG_HOME"
      chmod 700 "$PG_HOME"
    fi
    [[ "$(readlink "$STATE/pg" 2>/dev/null)" == "$PG_HOME" ]] || ln -sfn "$PG_HOME" "$STATE/pg"
    [[ "$(readlink "$LOGS/postgres.log" 2>/dev/null)" == "$PG_LOG" ]] || ln -sfn "$PG_LOG" "$LOGS/postgres.log"
    pg mkdir -p "$PG_SOCK"
    [[ -e $PG_LOG ]] || pg touch "$PG_LOG"
  else
    mkdir -p "$PG_HOME" "$PG_SOCK"
  fi
}

pg_start() {
  [[ -x $PG_BIN/pg_ctl ]] || die "$PG_BIN/pg_ctl not found (run scripts/bootstrap.sh)"
  if pg_running; then
    PG_STARTED=0
    return
  fi
  ensure_port_free "$PG_PORT" "PostgreSQL, PG_PORT"
  pg_prepare_dirs
  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    log "postgres: initdb $PG_DATA"
    pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U "$PG_USER" -E UTF8 --locale=C >>"$LOGS/postgres-initdb.log" 2>&1 ||
      die_log "initdb failed" "$LOGS/postgres-initdb.log"
  fi
  # Loopback only, socket in our state. Durable commits, as on RDS: the consumer
  # commits Kafka offsets once Postgres says "committed", so a commit that a
  # crash could still undo (synchronous_commit=off) would lose ticks for good.
  pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -W \
    -o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on" \
    start >/dev/null 8>&- || die_log "pg_ctl start failed" "$PG_LOG"
  PG_STARTED=1
}

pg_wait_ready() {
  local t0
  t0="$(now)"
  wait_ready pg_ready pg_running "$PG_LOG" "PostgreSQL on 127.0.0.1:$PG_PORT"
  if ((PG_STARTED)); then log "postgres: started on 127.0.0.1:$PG_PORT in $(since "$t0")s"; fi
}

pg_stop() {
  if pg_running; then
    pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null || die_log "pg_ctl stop failed" "$PG_LOG"
    log "postgres: stopped"
  fi
}

# ------------------------------------------------------------------ Kafka
KAFKA_DIR="$STATE/kafka"
KAFKA_PID="$RUN/kafka.pid"
KAFKA_LOG="$LOGS/kafka.log"

kafka_running() { pid_matches "$(read_pid "$KAFKA_PID")" "$KAFKA_DIR/server.properties"; }

kafka_write_config() {
  mkdir -p "$KAFKA_DIR/data" "$LOGS" "$RUN"
  local keystore_password
  keystore_password="$(<"$KAFKA_TLS_DIR/keystore-password")"
  # mode 600: it holds the keystore's password
  (umask 077 && cat >"$KAFKA_DIR/server.properties.new") <<EOF
# generated by scripts/stack.sh from stack.env: do not edit
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://localhost:$KAFKA_SASL_SSL_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
# The second listener: TLS with the broker's certificate (DNS:localhost, so
# advertised by that name; bound to 127.0.0.1 only), no client certificates,
# then SCRAM (users: kafka-configs --alter --add-config SCRAM-SHA-512=…).
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$KAFKA_TLS_DIR/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$keystore_password
listener.name.sasl_ssl.ssl.client.auth=none
log.dirs=$KAFKA_DIR/data
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=168
EOF
  mv -f "$KAFKA_DIR/server.properties.new" "$KAFKA_DIR/server.properties"
  # Kafka 4 logs through log4j2 (log4j-core + log4j-slf4j-impl in the libs).
  # The broker logs to stdout, which spawn appends to .state/logs/kafka.log.
  cat >"$KAFKA_DIR/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = INFO
EOF
  cat >"$KAFKA_DIR/tools-log4j2.properties" <<'EOF'
status = warn
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
  # admin client of the CLI tools: fail fast instead of the 60 s default
  cat >"$KAFKA_DIR/tools-client.properties" <<'EOF'
request.timeout.ms=10000
default.api.timeout.ms=15000
EOF
}

kafka_tool() {
  timeout 60 "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.properties" -cp "$KAFKA_LIBS/*" "$@"
}
topic_cmd() {
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --command-config "$KAFKA_DIR/tools-client.properties" "$@" 2> >(grep -v 'WARNING: Due to limitations in metric names\|best to use either' >&2)
}

kafka_start() {
  [[ -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]] || die "Kafka jars missing in $KAFKA_LIBS (run scripts/bootstrap.sh)"
  kafka_tls
  if kafka_running; then
    grep -q '^listeners=.*SASL_SSL://' "$KAFKA_DIR/server.properties" ||
      die "the running Kafka (pid $(read_pid "$KAFKA_PID")) has no SASL_SSL listener (started by an older scripts/stack.sh): run scripts/stack.sh down, then up"
    KAFKA_STARTED=0
    return
  fi
  rm -f "$KAFKA_PID"
  ensure_port_free "$KAFKA_PORT" "Kafka, KAFKA_PORT"
  ensure_port_free "$KAFKA_CONTROLLER_PORT" "Kafka controller, KAFKA_CONTROLLER_PORT"
  ensure_port_free "$KAFKA_SASL_SSL_PORT" "Kafka SASL_SSL, KAFKA_SASL_SSL_PORT"
  kafka_write_config
  if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
    local cid
    [[ -s $KAFKA_DIR/cluster.id ]] ||
      head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$KAFKA_DIR/cluster.id"
    cid="$(cat "$KAFKA_DIR/cluster.id")"
    # Kafka 4: single-node dynamic quorum => --standalone (with
    # controller.quorum.bootstrap.servers, not controller.quorum.voters)
    # --cluster-id=ID, not "-t ID": a random id may start with "-" and read as a flag.
    kafka_tool kafka.tools.StorageTool format --standalone --cluster-id="$cid" \
      -c "$KAFKA_DIR/server.properties" >>"$KAFKA_LOG" 2>&1 ||
      die_log "Kafka storage format failed" "$KAFKA_LOG"
    log "kafka: storage formatted (cluster id $cid)"
  fi
  echo "===== $(date '+%F %T') starting Kafka $KAFKA_VERSION =====" >>"$KAFKA_LOG"
  spawn "$KAFKA_LOG" "$KAFKA_PID" "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties"
  KAFKA_STARTED=1
}

kafka_port_open() { port_open "$KAFKA_PORT"; }
kafka_wait_ready() {
  local t0
  t0="$(now)"
  wait_ready kafka_port_open kafka_running "$KAFKA_LOG" "Kafka on 127.0.0.1:$KAFKA_PORT"
  # a metadata request proves the broker (and its controller) serve clients
  until topic_cmd --list >/dev/null 2>>"$LOGS/kafka-tools.log"; do
    kafka_running || die_log "Kafka exited during start-up" "$KAFKA_LOG"
    (($(since "$t0" | cut -d. -f1) < WAIT_SECONDS)) ||
      die_log "Kafka answers no metadata request after ${WAIT_SECONDS}s (see also $LOGS/kafka-tools.log)" "$KAFKA_LOG"
    sleep 1
  done
  if ((KAFKA_STARTED)); then log "kafka: started on 127.0.0.1:$KAFKA_PORT in $(since "$t0")s"; fi
  kafka_wait_secure
}

# kafka_wait_secure: the SASL_SSL listener completes a TLS handshake verified
# against our CA for host name localhost, and the SCRAM user exists.
kafka_tls_ok() { tls_handshake_ok "127.0.0.1:$KAFKA_SASL_SSL_PORT"; }
kafka_wait_secure() {
  local t0
  t0="$(now)"
  # (openssl's last answer: kafka-tls.log; if the tls folder was made anew while Kafka ran: down, then up)
  wait_ready kafka_tls_ok kafka_running "$KAFKA_LOG" \
    "Kafka's SASL_SSL listener on 127.0.0.1:$KAFKA_SASL_SSL_PORT (TLS verified against $KAFKA_TLS_DIR/ca.pem for localhost)"
  kafka_scram_user
  if ((KAFKA_STARTED || SCRAM_CREATED)); then
    log "kafka: SASL_SSL on localhost:$KAFKA_SASL_SSL_PORT (TLS verified, SCRAM user $KAFKA_SCRAM_USER) in $(since "$t0")s"
  fi
}

kafka_stop_begin() { KAFKA_STOPPING="$(term_pid "$KAFKA_PID" "$KAFKA_DIR/server.properties")"; }
kafka_stop_end() {
  if [[ -n ${KAFKA_STOPPING:-} ]]; then
    wait_pid_gone kafka "$KAFKA_STOPPING" "$KAFKA_PID" 60
    log "kafka: stopped"
  fi
  rm -f "$KAFKA_PID"
}

# ------------------------------------------------------------------ Kafka: TLS and SCRAM
# What the SASL_SSL listener needs, in KAFKA_TLS_DIR (mode 700, secrets 600),
# each piece made only if missing:
#   ca.pem, ca.key      a CA of the stack's own (EC P-256, 10 years): clients trust ca.pem
#   broker.pem          the broker's certificate, by that CA: DNS:localhost, IP:127.0.0.1,
#                       serverAuth, 825 days (made again 30 days before it expires)
#   broker.p12          PKCS12 keystore (broker key, broker.pem, ca.pem); its
#                       password is keystore-password, copied into server.properties
#   scram-password      the password of SCRAM user KAFKA_SCRAM_USER
# Passwords are random hex (nothing to escape in properties, JAAS or env
# files), without a trailing newline, and only ever in files: never on the
# terminal, in a log or on a command line.
TLS_LOG="$LOGS/kafka-tls.log"

# tls_openssl ARGS…: openssl, its chatter (never a secret) into TLS_LOG.
tls_openssl() {
  openssl "$@" >>"$TLS_LOG" 2>&1 || die_log "openssl $1 failed" "$TLS_LOG"
}
# new_secret FILE: a random password (160 bits as hex) into FILE (mode 600).
new_secret() {
  (umask 077 && openssl rand -hex 20 | tr -d '\n' >"$1.new") || die "openssl rand failed"
  mv -f "$1.new" "$1"
}

# tls_cnf: the extensions of our certificates, for openssl req/x509.
tls_cnf() {
  cat >"$KAFKA_TLS_DIR/openssl.cnf" <<'EOF'
# generated by scripts/stack.sh: the extensions of the local CA and broker certificates
[req]
distinguished_name = dn
prompt = no
[dn]
CN = crypto-pipeline local CA
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[broker_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

kafka_tls() {
  local d=$KAFKA_TLS_DIR made=() old_umask
  command -v openssl >/dev/null 2>&1 || die "openssl not found (Debian: apt-get install openssl)"
  mkdir -p "$LOGS" "$(dirname "$d")"
  old_umask="$(umask)"
  umask 077
  mkdir -p "$d"
  chmod 700 "$d"
  if [[ ! -s $d/ca.pem || ! -s $d/ca.key ]]; then
    # a broker certificate of another CA is of no use
    rm -f "$d/broker.pem" "$d/broker.p12"
    tls_cnf
    tls_openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key.new"
    tls_openssl req -x509 -new -config "$d/openssl.cnf" -extensions ca_ext -key "$d/ca.key.new" \
      -subj "/CN=crypto-pipeline local CA" -days 3650 -sha256 -out "$d/ca.pem.new"
    mv -f "$d/ca.key.new" "$d/ca.key"
    mv -f "$d/ca.pem.new" "$d/ca.pem"
    chmod 644 "$d/ca.pem"
    made+=("CA (ca.pem)")
  fi
  if [[ -s $d/broker.pem ]] && ! openssl x509 -in "$d/broker.pem" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; then
    log "kafka: the broker certificate expires within 30 days: making a new one"
    rm -f "$d/broker.pem" "$d/broker.p12"
  fi
  if [[ ! -s $d/broker.pem || ! -s $d/broker.p12 || ! -s $d/keystore-password ]]; then
    [[ -s $d/keystore-password ]] || new_secret "$d/keystore-password"
    tls_cnf
    tls_openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/broker.key.new"
    tls_openssl req -new -config "$d/openssl.cnf" -key "$d/broker.key.new" -subj "/CN=localhost" -out "$d/broker.csr.new"
    tls_openssl x509 -req -in "$d/broker.csr.new" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
      -extfile "$d/openssl.cnf" -extensions broker_ext -out "$d/broker.pem.new"
    tls_openssl pkcs12 -export -in "$d/broker.pem.new" -inkey "$d/broker.key.new" -certfile "$d/ca.pem" \
      -name broker -passout "file:$d/keystore-password" -out "$d/broker.p12.new"
    # the key lives on in the keystore only
    rm -f "$d/broker.key.new" "$d/broker.csr.new"
    mv -f "$d/broker.p12.new" "$d/broker.p12"
    mv -f "$d/broker.pem.new" "$d/broker.pem"
    chmod 644 "$d/broker.pem"
    made+=("broker keystore (broker.p12, localhost and 127.0.0.1)")
  fi
  if [[ ! -s $d/scram-password ]]; then
    new_secret "$d/scram-password"
    made+=("SCRAM password of $KAFKA_SCRAM_USER (scram-password)")
  fi
  chmod 600 "$d/ca.key" "$d/broker.p12" "$d/keystore-password" "$d/scram-password"
  umask "$old_umask"
  if ((${#made[@]})); then
    log "kafka: made in $d: $(printf '%s; ' "${made[@]}" | sed 's/; $//')"
  fi
}

# tls_handshake_ok HOST:PORT: a TLS handshake there verifies against our CA
# for host name localhost (openssl's answer in TLS_LOG).
tls_handshake_ok() {
  local out rc=0
  out="$(timeout 5 openssl s_client -connect "$1" -servername localhost -CAfile "$KAFKA_TLS_DIR/ca.pem" \
    -verify_hostname localhost -verify_return_error -brief </dev/null 2>&1)" || rc=$?
  if ((rc == 0)) && [[ $out == *"Verification: OK"* ]]; then return 0; fi
  printf '%s\n' "===== $(date '+%F %T') TLS handshake with $1 (exit $rc)" "$out" >>"$TLS_LOG"
  return 1
}

# scram_alter MECHANISM PASSWORD [COMMAND…]: kafka-configs --alter of SCRAM user
# KAFKA_SCRAM_USER for one mechanism (SHA-512, SHA-256), the password through
# stdin (--add-config-file), never on a command line. One mechanism per call:
# a KRaft controller refuses two alterations of one user in a request
# (DUPLICATE_RESOURCE), so `--add-config 'SCRAM-SHA-512=[…],SCRAM-SHA-256=[…]'`
# fails. COMMAND: what runs kafka-configs (default: ConfigCommand from our jars).
scram_alter() {
  local mechanism=$1 password=$2
  shift 2
  (($#)) || set -- kafka_tool kafka.admin.ConfigCommand --command-config "$KAFKA_DIR/tools-client.properties"
  printf 'SCRAM-%s=iterations=8192,password=%s\n' "$mechanism" "$password" |
    "$@" --bootstrap-server "127.0.0.1:$KAFKA_PORT" --alter --entity-type users \
      --entity-name "$KAFKA_SCRAM_USER" --add-config-file /dev/stdin >>"$LOGS/kafka-tools.log" 2>&1
}

# kafka_scram_user: create (or set again) SCRAM user KAFKA_SCRAM_USER with the
# password of scram-password for both mechanisms (two kafka-configs at once,
# see scram_alter) over the plaintext listener, then prove it: a metadata
# request over SASL_SSL as that user. Sets SCRAM_CREATED. A marker (a hash of
# the user, the password and the log dir's directory.id, new at each storage
# format) skips it all on the next up: the credentials live in the cluster's
# metadata log.
SCRAM_MARKER="$KAFKA_TLS_DIR/scram-user.done"
scram_marker_value() {
  local dir_id
  dir_id="$(sed -n 's/^directory\.id=//p' "$KAFKA_DIR/data/meta.properties" 2>/dev/null || true)"
  printf '%s\n' "$KAFKA_SCRAM_USER" "$(<"$KAFKA_TLS_DIR/scram-password")" "$dir_id" | sha256sum | cut -c1-64
}
# scram_user_known: the marker says this user was created with this password in this log dir.
scram_user_known() {
  [[ -f $SCRAM_MARKER && -f $KAFKA_TLS_DIR/scram-password && "$(<"$SCRAM_MARKER")" == "$(scram_marker_value)" ]]
}
kafka_scram_user() {
  local d=$KAFKA_TLS_DIR password check i p512 p256 rc=0
  SCRAM_CREATED=0
  if scram_user_known; then return 0; fi
  rm -f "$SCRAM_MARKER"
  password="$(<"$d/scram-password")"
  scram_alter SHA-512 "$password" &
  p512=$!
  scram_alter SHA-256 "$password" &
  p256=$!
  wait "$p512" || rc=$?
  wait "$p256" || rc=$?
  ((rc == 0)) || die_log "could not create SCRAM user $KAFKA_SCRAM_USER (kafka-configs --alter)" "$LOGS/kafka-tools.log"
  # a client of the secured listener, as the tests are: SCRAM-SHA-512, our CA, host name checked
  check="$(umask 077 && mktemp "$d/client-check.XXXXXX")"
  cat >"$check" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_SCRAM_USER" password="$password";
ssl.truststore.type=PEM
ssl.truststore.location=$d/ca.pem
request.timeout.ms=10000
default.api.timeout.ms=15000
EOF
  for ((i = 1; ; i++)); do
    if kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "localhost:$KAFKA_SASL_SSL_PORT" \
      --command-config "$check" --list >/dev/null 2>>"$LOGS/kafka-tools.log"; then
      break
    fi
    if ((i >= 5)); then
      rm -f "$check"
      die_log "SCRAM user $KAFKA_SCRAM_USER cannot log in on localhost:$KAFKA_SASL_SSL_PORT (SASL_SSL)" "$LOGS/kafka-tools.log"
    fi
    sleep 1
  done
  rm -f "$check"
  (umask 077 && scram_marker_value | tr -d '\n' >"$SCRAM_MARKER")
  SCRAM_CREATED=1
  log "kafka: SCRAM user $KAFKA_SCRAM_USER created (SCRAM-SHA-512, SCRAM-SHA-256); it logs in on localhost:$KAFKA_SASL_SSL_PORT"
}

# tls_docker_access: the apache/kafka image runs as appuser, uid 1000, and reads
# the keystore and its password through the read-only mount of KAFKA_TLS_DIR.
tls_docker_access() {
  local uid
  uid="$(id -u)"
  if ((uid == 1000)); then
    return 0
  elif is_root; then
    # root reads them anyway; only the container's user needs to own them
    chown -R 1000 "$KAFKA_TLS_DIR"
  else
    log "WARNING: $KAFKA_TLS_DIR belongs to uid $uid (mode 700/600), but the apache/kafka container runs as uid 1000 and must read it: run 'sudo chown -R 1000 $KAFKA_TLS_DIR' (Docker Desktop maps ownership itself)"
  fi
}

# docker-scram: the SCRAM user in the docker compose stack's Kafka (running and
# healthy), with the image's kafka-configs.sh, the password through stdin; then
# the same checks as natively: user described, TLS handshake verified.
cmd_docker_scram() {
  local compose=(docker compose --env-file "$ROOT/stack.env" -f "$ROOT/docker-compose.yml") password described mechanism
  mkdir -p "$LOGS"
  password="$(<"$KAFKA_TLS_DIR/scram-password")"
  for mechanism in SHA-512 SHA-256; do
    scram_alter "$mechanism" "$password" "${compose[@]}" exec -T kafka /opt/kafka/bin/kafka-configs.sh ||
      die_log "could not create SCRAM user $KAFKA_SCRAM_USER in the kafka container" "$LOGS/kafka-tools.log"
  done
  described="$("${compose[@]}" exec -T kafka /opt/kafka/bin/kafka-configs.sh --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --describe --entity-type users --entity-name "$KAFKA_SCRAM_USER" </dev/null 2>>"$LOGS/kafka-tools.log")" || true
  [[ $described == *SCRAM-SHA-512* && $described == *SCRAM-SHA-256* ]] ||
    die_log "SCRAM user $KAFKA_SCRAM_USER not found in the kafka container" "$LOGS/kafka-tools.log"
  tls_handshake_ok "127.0.0.1:$KAFKA_SASL_SSL_PORT" ||
    die_log "the kafka container's SASL_SSL listener on 127.0.0.1:$KAFKA_SASL_SSL_PORT completes no TLS handshake verified against $KAFKA_TLS_DIR/ca.pem" "$TLS_LOG"
  log "kafka (docker): SASL_SSL on localhost:$KAFKA_SASL_SSL_PORT (TLS verified, SCRAM user $KAFKA_SCRAM_USER)"
}

# ------------------------------------------------------------------ S3 (LocalStack / moto)
LS_DIR="$STATE/localstack"
LS_PID="$RUN/localstack.pid"
LS_LOG="$LOGS/localstack.log"
S3_URL="http://127.0.0.1:$S3_PORT"

# = python -m localstack.runtime.main, plus SIGUSR1 -> thread dump into the log
# (sent before SIGKILL when a shutdown hangs, to see where)
LS_MAIN='import faulthandler, runpy, signal, sys
faulthandler.register(signal.SIGUSR1, all_threads=True)
sys.argv = ["localstack"]
runpy.run_module("localstack.runtime.main", run_name="__main__", alter_sys=True)'

s3_backend() {
  if [[ -f $LOCALSTACK_VENV/.installed ]]; then
    S3_KIND=localstack S3_PY="$LOCALSTACK_VENV/bin/python"
  elif [[ -f $MOTO_VENV/.installed ]]; then
    S3_KIND=moto S3_PY="$MOTO_VENV/bin/python"
  else
    S3_KIND=none S3_PY=false
    return 1
  fi
}
s3_running() {
  local pid
  pid="$(read_pid "$LS_PID")"
  pid_matches "$pid" "localstack.runtime.main" || pid_matches "$pid" "moto_server"
}
s3_healthy() {
  if [[ $S3_KIND == localstack ]]; then
    local health service
    health="$(curl -fsS --max-time 2 "$S3_URL/_localstack/health" 2>/dev/null)" || return 1
    for service in ${LOCALSTACK_SERVICES//,/ }; do
      grep -Eq "\"$service\": *\"(available|running)\"" <<<"$health" || return 1
    done
  else
    curl -sS --max-time 2 -o /dev/null "$S3_URL/" 2>/dev/null
  fi
}
s3_env() {
  env AWS_ENDPOINT_URL="$S3_URL" AWS_REGION="$AWS_REGION" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "$@"
}

s3_start() {
  s3_backend || die "neither LocalStack nor moto is installed (run scripts/bootstrap.sh)"
  if s3_running; then
    S3_STARTED=0
    return
  fi
  rm -f "$LS_PID"
  ensure_port_free "$S3_PORT" "S3, S3_PORT"
  mkdir -p "$LS_DIR/fs" "$LOGS" "$RUN"
  echo "===== $(date '+%F %T') starting $S3_KIND =====" >>"$LS_LOG"
  if [[ $S3_KIND == localstack ]]; then
    # OVERRIDE_IN_DOCKER=0: the sandbox has a docker marker file; GATEWAY_SERVER
    # hypercorn + GATEWAY_LISTEN: the default server binds 0.0.0.0.
    (cd "$LS_DIR" && spawn "$LS_LOG" "$LS_PID" env \
      OVERRIDE_IN_DOCKER=0 GATEWAY_SERVER=hypercorn GATEWAY_LISTEN="127.0.0.1:$S3_PORT" \
      DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 SERVICES="$LOCALSTACK_SERVICES" EAGER_SERVICE_LOADING=1 \
      FILESYSTEM_ROOT="$LS_DIR/fs" LOCALSTACK_HOST="localhost.localstack.cloud:$S3_PORT" \
      AWS_DEFAULT_REGION="$AWS_REGION" \
      "$S3_PY" -c "$LS_MAIN")
  else
    (cd "$LS_DIR" && spawn "$LS_LOG" "$LS_PID" "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT")
  fi
  S3_STARTED=1
}

s3_wait_ready() {
  local t0
  t0="$(now)"
  wait_ready s3_healthy s3_running "$LS_LOG" "$S3_KIND S3 on $S3_URL"
  if ((S3_STARTED)); then
    log "s3: $S3_KIND started on $S3_URL in $(since "$t0")s"
    if [[ -f $LS_DIR/snapshot/manifest.json ]]; then
      s3_env "$S3_PY" "$ROOT/scripts/s3_snapshot.py" load "$LS_DIR/snapshot" | sed 's/^/stack: /' ||
        log "WARNING: could not restore the S3 snapshot from $LS_DIR/snapshot"
    fi
  fi
}

s3_stop_begin() {
  S3_STOPPING=""
  local pid
  if s3_running; then
    pid="$(read_pid "$LS_PID")"
    s3_backend || true
    # LocalStack community keeps S3 in memory: save the objects for the next up
    if s3_healthy; then
      s3_env "$S3_PY" "$ROOT/scripts/s3_snapshot.py" save "$LS_DIR/snapshot" | sed 's/^/stack: /' ||
        log "WARNING: S3 snapshot failed; objects will not survive this restart"
    fi
    kill -TERM "$pid" 2>/dev/null || true
    S3_STOPPING="$pid"
  fi
}
s3_stop_end() {
  if [[ -n ${S3_STOPPING:-} ]]; then
    # its objects are already saved: a LocalStack stuck in shutdown (seen now
    # and then) gets a thread dump (SIGUSR1, into its log) and SIGKILL after 10 s
    wait_pid_gone s3 "$S3_STOPPING" "$LS_PID" 10
    log "s3: stopped"
  fi
  rm -f "$LS_PID"
}

# ------------------------------------------------------------------ jobs
# The pipeline's own processes, started by `just deploy-local`: JOBS/NAME.pid,
# output (a panic, a report on stdout) in LOGS/NAME.out; each component's
# structured log is its own file in LOGS (LOG_DIR, rotated by the job itself).
job_say() { echo "jobs: $*"; }
job_pid() { read_pid "$JOBS/$1.pid"; }
job_alive() { pid_matches "$(job_pid "$1")" ""; }
job_names() {
  local f
  for f in "$JOBS"/*.pid; do [[ -e $f ]] && basename "$f" .pid; done
  return 0
}

job_start() {
  local name=$1 pid rc=0
  shift
  [[ $name =~ ^[A-Za-z0-9_-]+$ ]] || die "a job's name is letters, digits, - and _: $name"
  (($#)) || die "start $name: no command"
  if job_alive "$name"; then
    job_say "$name already running (pid $(job_pid "$name"))"
    return
  fi
  spawn "$LOGS/$name.out" "$JOBS/$name.pid" "$@"
  pid="$(job_pid "$name")"
  sleep 1
  if ! pid_alive "$pid"; then
    # A one-shot job (history) may be done already: only a failure is an error.
    wait "$pid" || rc=$?
    rm -f "$JOBS/$name.pid"
    if ((rc == 0)); then
      job_say "$name finished"
      return
    fi
    echo "jobs: $name exited at once (exit $rc); last lines of $LOGS/$name.out:" >&2
    tail -n 20 "$LOGS/$name.out" >&2
    return 1
  fi
  job_say "$name started (pid $pid)"
}

# jobs_stop [NAME…]: SIGTERM to each job's process group (all jobs if none
# named), then wait for each; the services they use are still up meanwhile.
jobs_stop() {
  local names=("$@") name i stopping=()
  ((${#names[@]})) || mapfile -t names < <(job_names)
  for name in "${names[@]}"; do
    stopping+=("$(term_pid "$JOBS/$name.pid" "" group)")
  done
  for i in "${!names[@]}"; do
    if [[ -n ${stopping[i]} ]]; then
      wait_pid_gone "${names[i]}" "${stopping[i]}" "$JOBS/${names[i]}.pid" 30
      job_say "${names[i]} stopped"
    fi
    rm -f "$JOBS/${names[i]}.pid"
  done
}

jobs_status() {
  local name
  for name in $(job_names); do
    if job_alive "$name"; then job_say "$name: up (pid $(job_pid "$name"))"; else job_say "$name: down"; fi
  done
}

# ------------------------------------------------------------------ commands
client_env() {
  cat <<EOF
DATABASE_URL=postgres://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB
KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
KAFKA_TOPIC=$KAFKA_TOPIC
KAFKA_DLQ_TOPIC=$KAFKA_DLQ_TOPIC
KAFKA_SECURE_BROKERS=localhost:$KAFKA_SASL_SSL_PORT
KAFKA_SECURE_CA_LOCATION=$KAFKA_TLS_DIR/ca.pem
KAFKA_SECURE_USERNAME=$KAFKA_SCRAM_USER
KAFKA_SECURE_PASSWORD_FILE=$KAFKA_TLS_DIR/scram-password
AWS_ENDPOINT_URL=$S3_URL
AWS_REGION=$AWS_REGION
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
RAW_BUCKET=$RAW_BUCKET
SITE_BUCKET=$SITE_BUCKET
SITE_URL=http://$SITE_BUCKET.s3-website.localhost:$S3_PORT/
EOF
}

lock_state() {
  mkdir -p "$STATE" "$LOGS" "$RUN" "$JOBS"
  if command -v flock >/dev/null 2>&1; then
    # fd 8 is closed for every service started (see spawn), or they would hold it
    exec 8>"$RUN/stack.lock"
    flock 8
  fi
}

cmd_up() {
  local t0
  t0="$(now)"
  "$ROOT/scripts/bootstrap.sh" --quiet
  lock_state
  PG_STARTED=0 KAFKA_STARTED=0 S3_STARTED=0 SCRAM_CREATED=0
  # launch everything first (the JVM is the slow one), then wait for each
  kafka_start
  s3_start
  pg_start
  pg_wait_ready
  s3_wait_ready
  kafka_wait_ready
  if [[ $S3_KIND == moto ]]; then log "note: S3 is moto_server (no Python >= 3.12 for LocalStack): no website hosting"; fi
  log "up in $(since "$t0")s (logs: $LOGS). Client environment:"
  client_env | sed 's/^/  /'
}

cmd_down() {
  local t0
  t0="$(now)"
  lock_state
  jobs_stop
  kafka_stop_begin
  s3_stop_begin
  pg_stop
  kafka_stop_end
  s3_stop_end
  log "down in $(since "$t0")s (data kept in $STATE)"
}

cmd_status() {
  local rc=0 pid
  jobs_status
  s3_backend || true
  if pg_running && pg_ready; then
    log "postgres:   up   127.0.0.1:$PG_PORT db=$PG_DB (data $PG_DATA)"
  else
    log "postgres:   down"
    rc=1
  fi
  if kafka_running; then
    pid="$(read_pid "$KAFKA_PID")"
    if port_open "$KAFKA_PORT"; then
      log "kafka:      up   127.0.0.1:$KAFKA_PORT (pid $pid)"
      if ! tls_handshake_ok "127.0.0.1:$KAFKA_SASL_SSL_PORT"; then
        log "kafka-sasl: down localhost:$KAFKA_SASL_SSL_PORT: no TLS handshake verified against $KAFKA_TLS_DIR/ca.pem (see $TLS_LOG)"
        rc=1
      elif scram_user_known; then
        log "kafka-sasl: up   localhost:$KAFKA_SASL_SSL_PORT SASL_SSL, SCRAM user $KAFKA_SCRAM_USER (CA $KAFKA_TLS_DIR/ca.pem)"
      else
        log "kafka-sasl: up   localhost:$KAFKA_SASL_SSL_PORT SASL_SSL, but SCRAM user $KAFKA_SCRAM_USER not made yet (scripts/stack.sh up makes it)"
        rc=1
      fi
    else
      log "kafka:      starting (pid $pid, port $KAFKA_PORT not open yet)"
      rc=1
    fi
  else
    log "kafka:      down"
    rc=1
  fi
  if s3_running && s3_healthy; then
    log "s3:         up   $S3_URL ($S3_KIND, pid $(read_pid "$LS_PID"))"
  else
    log "s3:         down"
    rc=1
  fi
  return "$rc"
}

# kill SERVICE: SIGKILL, as a crash or the OOM killer would, with no clean-up;
# `up` starts it again (Postgres then replays its WAL, Kafka recovers its logs).
# For the fault tests (functions/consumer/tests/faults.rs).
cmd_kill() {
  local pid
  case "${1:-}" in
    postgres)
      pg_running || die "postgres is not running"
      pid="$(head -1 "$PG_DATA/postmaster.pid")"
      # The postmaster and every backend at once: nothing gets to flush or clean up.
      kill -KILL "$pid" $(pgrep -P "$pid") 2>/dev/null || die "cannot SIGKILL postgres (pid $pid)"
      while pid_alive "$pid"; do sleep 0.05; done
      ;;
    kafka)
      kafka_running || die "kafka is not running"
      pid="$(read_pid "$KAFKA_PID")"
      kill -KILL "$pid" || die "cannot SIGKILL kafka (pid $pid)"
      while pid_alive "$pid"; do sleep 0.05; done
      ;;
    *) die "kill: postgres or kafka, not '${1:-}'" ;;
  esac
  log "$1: killed with SIGKILL (pid $pid)"
}

cmd_reset() {
  cmd_down
  rm -rf "$STATE"
  if is_root && [[ -d /var/lib/crypto-pipeline/$REPO_HASH ]]; then
    rm -rf "/var/lib/crypto-pipeline/$REPO_HASH"
  fi
  if [[ $PG_SOCK == "${TMPDIR:-/tmp}/crypto-pg-$REPO_HASH" ]]; then rm -rf "$PG_SOCK"; fi
  log "reset: state deleted (Kafka's CA, keystore and SCRAM password included)"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  env) client_env ;;
  tls)
    lock_state
    kafka_tls
    if [[ ${2:-} == --docker ]]; then tls_docker_access; fi
    ;;
  docker-scram) cmd_docker_scram ;;
  kill)
    lock_state
    cmd_kill "${2:-}"
    ;;
  start)
    shift
    lock_state
    job_start "$@"
    ;;
  stop)
    shift
    lock_state
    jobs_stop "$@"
    ;;
  *)
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
