#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the orchestrator's `postgres` tests and print its URL.
#
#   export LIT_SNN_TEST_POSTGRES_URL="$(scripts/start_postgres.sh)"
#
# Installs the Debian package when no server binaries are found (needs root), creates a data
# folder (LIT_SNN_PG_DIR, default /tmp/lit_snn_pg), listens on 127.0.0.1 only (LIT_SNN_PG_PORT,
# default 54329) and creates the user and database lit_snn (password lit_snn). Idempotent: a
# second call reuses the running server. Stop it with: scripts/start_postgres.sh stop
set -euo pipefail
PORT="${LIT_SNN_PG_PORT:-54329}"
DATA="${LIT_SNN_PG_DIR:-/tmp/lit_snn_pg}"
NAME=lit_snn
PASSWORD=lit_snn

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
BIN="$(find_bin)"
if [ -z "$BIN" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "start_postgres.sh: no PostgreSQL server installed and not root: apt-get install postgresql" >&2
    exit 1
  fi
  echo "start_postgres.sh: installing postgresql (apt-get)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  BIN="$(find_bin)"
fi

# initdb and the server refuse to run as root: use the postgres account the package created.
if [ "$(id -u)" = 0 ]; then
  AS=(runuser -u postgres --)
else
  AS=()
fi

if [ "${1:-}" = stop ]; then
  "${AS[@]}" "$BIN/pg_ctl" -D "$DATA" -m fast stop >&2 || true
  exit 0
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
  mkdir -p "$DATA"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$DATA"
  chmod 700 "$DATA"
  # local socket: trust (for the setup below); TCP: password (scram-sha-256)
  "${AS[@]}" "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
fi

if ! "${AS[@]}" "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  "${AS[@]}" "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA" start >&2
fi

PSQL=("${AS[@]}" "$BIN/psql" -h "$DATA" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$NAME'")" != 1 ]; then
  "${PSQL[@]}" -c "CREATE ROLE $NAME LOGIN PASSWORD '$PASSWORD'" >&2
fi
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$NAME'")" != 1 ]; then
  "${PSQL[@]}" -c "CREATE DATABASE $NAME OWNER $NAME" >&2
fi
echo "postgresql://$NAME:$PASSWORD@127.0.0.1:$PORT/$NAME"
