#!/usr/bin/env bash
# postgres.sh: a throwaway, loopback-only PostgreSQL server for octrix-http's
# storage tests.
#
#   scripts/postgres.sh start    install if missing, initdb afresh, start, create the test database
#   scripts/postgres.sh stop     stop the server this script started (by its data directory)
#   scripts/postgres.sh status   say whether it runs
#
# `start` writes the URL the tests read to target/postgres.env:
#   OCTRIX_TEST_DATABASE_URL=postgres://octrix:PASSWORD@127.0.0.1:PORT/octrix_test
# (source it, or run scripts/test-storage, which does). The role `octrix` may
# create databases: the tests give each test case a database of its own.
#
# The cluster's default collation is ICU `en-US` when the server supports it
# (PostgreSQL 15+), so that tests catch any ordering that silently depends on
# the database's collation instead of the schema's explicit `COLLATE "C"`.
#
# Running as root, the server runs as the `postgres` user (PostgreSQL refuses
# to run as root) in a directory it owns.
#
# Settings (environment, all optional):
#   OCTRIX_PG_DIR      data, socket, log       (default: target/pg)
#   OCTRIX_PG_ENV      the env file written    (default: target/postgres.env)
#   PG_PORT=15432      first port tried; the next free one up to +20 is used
#   NO_INSTALL=1       fail instead of installing a missing PostgreSQL
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_DIR=${OCTRIX_PG_DIR:-$ROOT/target/pg}
ENV_FILE=${OCTRIX_PG_ENV:-$ROOT/target/postgres.env}
HOST=127.0.0.1
FIRST_PORT=${PG_PORT:-15432}
DATA="$PG_DIR/data"
SOCKETS="$PG_DIR/run"
LOG="$PG_DIR/postgres.log"
DB_NAME=octrix_test
DB_USER=octrix

say() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# The OS user the server runs as.
server_user() { if is_root; then echo postgres; else id -un; fi; }

# Runs a command as the server's OS user.
as_server() {
  if is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# The directory of the newest installed PostgreSQL's binaries (Debian keeps
# them out of PATH, under /usr/lib/postgresql/VERSION/bin).
pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ] && [ -x "$dir/pg_ctl" ]; then
    echo "$dir"
  elif command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
  fi
}

install_postgres() {
  [ -z "$(pg_bin)" ] || return 0
  [ "${NO_INSTALL:-0}" != 1 ] || die "PostgreSQL is not installed (NO_INSTALL=1)"
  local sudo=""
  if ! is_root; then sudo=sudo; fi
  say "installing postgresql with apt"
  # Without systemd the package's maintainer scripts must not try to start the
  # default cluster: a policy-rc.d that exits 101 forbids it. Create it only
  # where missing, and remove only ours.
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
      postgresql >/dev/null || rc=$?
  fi
  if [ "$own_policy" = 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" = 0 ] || die "apt-get failed with status $rc"
  [ -n "$(pg_bin)" ] || die "postgresql installed, but pg_ctl was not found"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Whether the server of our data directory runs.
running() {
  local bin
  bin=$(pg_bin)
  [ -n "$bin" ] && [ -f "$DATA/postmaster.pid" ] &&
    as_server "$bin/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

stop_server() {
  if running; then
    as_server "$(pg_bin)/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null
    say "stopped the server of $DATA"
  fi
  rm -f "$ENV_FILE"
}

initialise() {
  local bin=$1 password=$2
  rm -rf "$DATA" "$SOCKETS"
  mkdir -p "$DATA" "$SOCKETS"
  if is_root && ! runuser -u postgres -- test -x "$PG_DIR/.."; then
    die "user postgres cannot reach $PG_DIR (every parent directory needs o+x)"
  fi
  : >"$LOG"
  # The password file is read by initdb and removed at once.
  local pwfile="$PG_DIR/.pwfile"
  (umask 077 && printf '%s\n' "$password" >"$pwfile")
  if is_root; then chown -R postgres:postgres "$PG_DIR"; fi
  chmod 700 "$DATA"
  local locale_args=(--locale=C.UTF-8)
  if "$bin/initdb" --help 2>/dev/null | grep -q -- '--locale-provider'; then
    locale_args+=(--locale-provider=icu --icu-locale=en-US)
  fi
  local rc=0
  as_server "$bin/initdb" -D "$DATA" -U "$(server_user)" -E UTF8 "${locale_args[@]}" \
    --auth-local=peer --auth-host=scram-sha-256 --pwfile="$pwfile" \
    >"$PG_DIR/initdb.log" 2>&1 || rc=$?
  rm -f "$pwfile"
  if [ "$rc" != 0 ]; then
    cat "$PG_DIR/initdb.log" >&2
    die "initdb failed with status $rc"
  fi
}

# Starts the server on the first free port from FIRST_PORT; prints the port.
launch() {
  local bin=$1 port
  for port in $(seq "$FIRST_PORT" $((FIRST_PORT + 20))); do
    if port_open "$port"; then continue; fi
    : >"$LOG"
    if as_server "$bin/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 -o \
      "-c listen_addresses=$HOST -p $port -k $SOCKETS -c max_connections=200" >/dev/null 2>&1; then
      echo "$port"
      return 0
    fi
    # Another process may have taken the port between the check and the bind.
    if grep -q 'could not bind\|Address already in use' "$LOG"; then
      say "port $port was taken, trying the next one"
      continue
    fi
    tail -n 20 "$LOG" >&2 || true
    die "the server did not start (log above)"
  done
  die "no free port in $FIRST_PORT..$((FIRST_PORT + 20))"
}

start() {
  if running; then die "already running ($DATA): run '$0 stop' first"; fi
  install_postgres
  local bin password port
  bin=$(pg_bin)
  password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  mkdir -p "$PG_DIR"
  initialise "$bin" "$password"
  port=$(launch "$bin")
  as_server "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKETS" -p "$port" -d postgres <<EOF
CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$password';
CREATE DATABASE $DB_NAME OWNER $DB_USER;
EOF
  mkdir -p "$(dirname "$ENV_FILE")"
  (umask 077 && printf 'OCTRIX_TEST_DATABASE_URL=postgres://%s:%s@%s:%s/%s\n' \
    "$DB_USER" "$password" "$HOST" "$port" "$DB_NAME" >"$ENV_FILE")
  say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') ready on $HOST:$port; URL in $ENV_FILE"
}

status() {
  if running; then
    echo "postgres: running ($DATA)"
  else
    echo "postgres: stopped"
    return 1
  fi
}

case ${1:-} in
  start) start ;;
  stop) stop_server ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
