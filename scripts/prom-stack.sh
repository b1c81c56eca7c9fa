#!/usr/bin/env bash
# prom-stack.sh: a loopback-only Prometheus + Alertmanager + node-exporter for
# octrix-prom's integration tests.
#
#   scripts/prom-stack.sh start    install if missing, start, wait until ready
#   scripts/prom-stack.sh stop     stop what `start` started (by the recorded pids)
#   scripts/prom-stack.sh status   say what is running
#
# `start` writes the URLs the tests read to target/prom-stack.env:
#   OCTRIX_TEST_PROMETHEUS_URL, OCTRIX_TEST_ALERTMANAGER_URL,
#   OCTRIX_TEST_NODE_EXPORTER_URL, OCTRIX_TEST_WEBHOOK_LISTEN,
#   OCTRIX_TEST_WEBHOOK_TOKEN, OCTRIX_TEST_METRICS_LISTEN
# (source it, or let the tests find it there).
#
# Settings (environment, all optional):
#   OCTRIX_STACK_DIR   configs, data, logs and pids   (default: target/prom-stack)
#   OCTRIX_STACK_ENV   the env file written by start  (default: target/prom-stack.env)
#   PROM_PORT=19090 AM_PORT=19093 NODE_PORT=19100 WEBHOOK_PORT=19095 METRICS_PORT=19096
#     The webhook and metrics ports are not opened by this script: Alertmanager
#     delivers to the first and Prometheus scrapes the second (job "octrix"),
#     and the tests listen on them while they run.
#   READY_TIMEOUT=60   seconds to wait for each readiness check
#   NO_INSTALL=1       fail instead of installing missing packages
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${OCTRIX_STACK_DIR:-$ROOT/target/prom-stack}
ENV_FILE=${OCTRIX_STACK_ENV:-$ROOT/target/prom-stack.env}
HOST=127.0.0.1
PROM_PORT=${PROM_PORT:-19090}
AM_PORT=${AM_PORT:-19093}
NODE_PORT=${NODE_PORT:-19100}
WEBHOOK_PORT=${WEBHOOK_PORT:-19095}
METRICS_PORT=${METRICS_PORT:-19096}
# Alertmanager sends it as `Authorization: Bearer ...` with every delivery
# (octrix serve's webhook token; a loopback-only test value).
WEBHOOK_TOKEN=${WEBHOOK_TOKEN:-octrix-test-webhook-token}
READY_TIMEOUT=${READY_TIMEOUT:-60}
COMPONENTS="prometheus alertmanager node-exporter"

say() { printf 'prom-stack: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

binary_of() {
  case $1 in
    prometheus) echo prometheus ;;
    alertmanager) echo prometheus-alertmanager ;;
    node-exporter) echo prometheus-node-exporter ;;
  esac
}

# A pid is ours while it lives (not a zombie) and runs the expected binary.
running() {
  local pid=$1 name=$2 state exe
  [ -r "/proc/$pid/status" ] || return 1
  state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ "$state" != Z ] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
  [ "$(basename "${exe% (deleted)}")" = "$(binary_of "$name")" ]
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

install_packages() {
  local missing="" b
  for b in prometheus promtool prometheus-alertmanager amtool prometheus-node-exporter curl; do
    command -v "$b" >/dev/null 2>&1 || missing="$missing $b"
  done
  [ -n "$missing" ] || return 0
  [ "${NO_INSTALL:-0}" != 1 ] || die "missing:$missing (NO_INSTALL=1)"
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  say "installing prometheus, alertmanager and node-exporter (missing:$missing)"
  # Without systemd the packages' maintainer scripts must not try to start the
  # services (which would also take the default ports): a policy-rc.d that
  # exits 101 forbids it. Create it only where missing, remove only ours.
  local own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local rc=0
  $sudo apt-get update -qq || rc=$?
  if [ "$rc" = 0 ]; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      prometheus prometheus-alertmanager prometheus-node-exporter curl >/dev/null || rc=$?
  fi
  if [ "$own_policy" = 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" = 0 ] || die "apt-get failed with status $rc"
}

write_configs() {
  mkdir -p "$STACK_DIR"/{logs,run,prometheus-data,alertmanager-data}
  cat >"$STACK_DIR/stack-rules.yml" <<'EOF'
# Rules of the test stack itself; Octrix's own rules are loaded beside them.
groups:
  - name: octrix-stack-probe
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - alert: OctrixStackProbe
        expr: vector(1)
        labels:
          severity: info
          service: octrix-stack-probe
        annotations:
          summary: Always firing, so that the rules and alerts APIs have content.
EOF
  cat >"$STACK_DIR/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $STACK_DIR/stack-rules.yml
  - $ROOT/docs/prometheus/octrix-rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['$HOST:$AM_PORT']
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['$HOST:$PROM_PORT']
  - job_name: node
    static_configs:
      - targets: ['$HOST:$NODE_PORT']
  - job_name: octrix
    static_configs:
      - targets: ['$HOST:$METRICS_PORT']
EOF
  cat >"$STACK_DIR/alertmanager.yml" <<EOF
route:
  receiver: octrix-test
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: octrix-test
    webhook_configs:
      - url: http://$HOST:$WEBHOOK_PORT/alerts
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: $WEBHOOK_TOKEN
EOF
  promtool check config "$STACK_DIR/prometheus.yml" >"$STACK_DIR/logs/check.log" 2>&1 ||
    { cat "$STACK_DIR/logs/check.log" >&2; die "prometheus.yml is invalid"; }
  amtool check-config "$STACK_DIR/alertmanager.yml" >>"$STACK_DIR/logs/check.log" 2>&1 ||
    { cat "$STACK_DIR/logs/check.log" >&2; die "alertmanager.yml is invalid"; }
}

launch() { # name args...
  local name=$1
  shift
  nohup "$@" >"$STACK_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STACK_DIR/run/$name.pid"
}

wait_ready() { # name url
  local name=$1 url=$2 pid deadline=$((SECONDS + READY_TIMEOUT))
  pid=$(cat "$STACK_DIR/run/$name.pid")
  until curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; do
    if ! running "$pid" "$name"; then
      tail -n 20 "$STACK_DIR/logs/$name.log" >&2 || true
      stop_all
      die "$name exited during start-up (log above)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      stop_all
      die "$name not ready at $url after ${READY_TIMEOUT}s"
    fi
    sleep 0.2
  done
}

stop_all() {
  local name pidfile pid deadline
  # Prometheus first, so that it does not complain about a vanished Alertmanager.
  for name in $COMPONENTS; do
    pidfile="$STACK_DIR/run/$name.pid"
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if running "$pid" "$name"; then
      kill -TERM "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 15))
      while running "$pid" "$name" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
      if running "$pid" "$name"; then kill -KILL "$pid" 2>/dev/null || true; fi
      say "stopped $name (pid $pid)"
    fi
    rm -f "$pidfile"
  done
  # A process may linger as a zombie for a moment: wait for its port to close.
  local port
  for port in $PROM_PORT $AM_PORT $NODE_PORT; do
    deadline=$((SECONDS + 10))
    while port_open "$port" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  done
  rm -f "$ENV_FILE"
}

start() {
  local name pidfile port
  for name in $COMPONENTS; do
    pidfile="$STACK_DIR/run/$name.pid"
    if [ -f "$pidfile" ] && running "$(cat "$pidfile")" "$name"; then
      die "$name is already running (pid $(cat "$pidfile")): run '$0 stop' first"
    fi
  done
  for port in $PROM_PORT $AM_PORT $NODE_PORT $WEBHOOK_PORT $METRICS_PORT; do
    if port_open "$port"; then die "port $HOST:$port is in use"; fi
  done
  install_packages
  # Start fresh, removing only what this script creates.
  rm -rf "$STACK_DIR"/{logs,run,prometheus-data,alertmanager-data}
  rm -f "$STACK_DIR"/{prometheus.yml,alertmanager.yml,stack-rules.yml}
  write_configs

  launch node-exporter prometheus-node-exporter \
    --web.listen-address="$HOST:$NODE_PORT" --no-collector.systemd
  # --cluster.listen-address= turns off HA gossip, which would bind 0.0.0.0:9094.
  launch alertmanager prometheus-alertmanager \
    --config.file="$STACK_DIR/alertmanager.yml" \
    --storage.path="$STACK_DIR/alertmanager-data" \
    --web.listen-address="$HOST:$AM_PORT" \
    --web.external-url="http://$HOST:$AM_PORT" \
    --cluster.listen-address=
  # Alerts that fire before Prometheus has discovered the Alertmanager (~5 s)
  # are otherwise re-sent only after the default resend delay of 1 minute.
  launch prometheus prometheus \
    --config.file="$STACK_DIR/prometheus.yml" \
    --storage.tsdb.path="$STACK_DIR/prometheus-data" \
    --storage.tsdb.retention.time=1d \
    --web.listen-address="$HOST:$PROM_PORT" \
    --web.external-url="http://$HOST:$PROM_PORT" \
    --rules.alert.resend-delay=1s

  wait_ready node-exporter "http://$HOST:$NODE_PORT/metrics"
  wait_ready alertmanager "http://$HOST:$AM_PORT/-/ready"
  wait_ready prometheus "http://$HOST:$PROM_PORT/-/ready"

  # Prometheus applies discovered targets in batches every 5 s: wait until both
  # targets have been scraped and node-exporter has two samples for rate().
  local deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS --max-time 2 "http://$HOST:$PROM_PORT/api/v1/query" \
    --data-urlencode 'query=count(count_over_time(node_cpu_seconds_total[1m]) >= 3) > 0 and on() count(up{job=~"prometheus|node"} == 1) >= 2' \
    2>/dev/null | grep -q '"result":\[{'; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      stop_all
      die "scrape targets not up after ${READY_TIMEOUT}s"
    fi
    sleep 0.5
  done

  mkdir -p "$(dirname "$ENV_FILE")"
  cat >"$ENV_FILE" <<EOF
OCTRIX_TEST_PROMETHEUS_URL=http://$HOST:$PROM_PORT
OCTRIX_TEST_ALERTMANAGER_URL=http://$HOST:$AM_PORT
OCTRIX_TEST_NODE_EXPORTER_URL=http://$HOST:$NODE_PORT
OCTRIX_TEST_WEBHOOK_LISTEN=$HOST:$WEBHOOK_PORT
OCTRIX_TEST_WEBHOOK_TOKEN=$WEBHOOK_TOKEN
OCTRIX_TEST_METRICS_LISTEN=$HOST:$METRICS_PORT
EOF
  say "ready; environment in $ENV_FILE:"
  cat "$ENV_FILE" >&2
}

status() {
  local name pidfile rc=0
  for name in $COMPONENTS; do
    pidfile="$STACK_DIR/run/$name.pid"
    if [ -f "$pidfile" ] && running "$(cat "$pidfile")" "$name"; then
      echo "$name: running (pid $(cat "$pidfile"))"
    else
      echo "$name: stopped"
      rc=1
    fi
  done
  return $rc
}

case ${1:-} in
  start) start ;;
  stop) stop_all ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
