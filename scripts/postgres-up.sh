#!/usr/bin/env bash
# Start a local PostgreSQL for the checker tests (idempotent), as scripts/slurm-up.sh does SLURM.
#
# Installs Debian's postgresql if missing (apt-get, no recommends), makes a cluster of our own
# under $SKYDASK_PG_DIR (default /var/lib/postgresql/skydask-test; never the system's cluster)
# with initdb, starts it with pg_ctl (there is no systemd here) listening on 127.0.0.1 only, on
# port $SKYDASK_PG_PORT (default 55432, away from the usual 5432 so it cannot meet another
# server), and creates the role "skydask" (password "skydask", CREATEDB: each test makes and
# drops its own database) and the database "skydask_test". The server runs as the "postgres"
# user, because PostgreSQL refuses to run as root. Prints the URL the tests use:
#   postgresql://skydask:skydask@127.0.0.1:55432/skydask_test  (SKYDASK_TEST_POSTGRES_URL)
set -euo pipefail

PGDIR="${SKYDASK_PG_DIR:-/var/lib/postgresql/skydask-test}"
PORT="${SKYDASK_PG_PORT:-55432}"

pg_bin() {
    local version
    version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)
    [ -n "$version" ] && [ -x "/usr/lib/postgresql/$version/bin/pg_ctl" ] && echo "/usr/lib/postgresql/$version/bin"
}

if [ -z "$(pg_bin)" ]; then
    if [ "$(id -u)" != "0" ]; then
        echo "postgres-up: PostgreSQL is not installed and we are not root; its tests will skip" >&2
        exit 1
    fi
    echo "postgres-up: installing postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql postgresql-client >/dev/null
fi
BIN=$(pg_bin)
if ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
as_pg() {
    if [ "$(id -un)" = "postgres" ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

mkdir -p "$PGDIR"
chown postgres:postgres "$PGDIR"
chmod 0700 "$PGDIR"
if [ ! -s "$PGDIR/PG_VERSION" ]; then
    echo "postgres-up: initdb $PGDIR"
    as_pg "$BIN/initdb" -D "$PGDIR" --username=postgres --auth-local=peer \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
fi

SOCKDIR="$PGDIR/socket"
mkdir -p "$SOCKDIR"
chown postgres:postgres "$SOCKDIR"
if ! as_pg "$BIN/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; then
    echo "postgres-up: starting PostgreSQL on 127.0.0.1:$PORT"
    as_pg "$BIN/pg_ctl" -D "$PGDIR" -l "$PGDIR/server.log" -w -t 60 start \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $SOCKDIR -c max_connections=200" \
        >/dev/null
fi

psql_pg() { as_pg "$BIN/psql" -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
for _ in $(seq 1 30); do
    if psql_pg -c "select 1" >/dev/null 2>&1; then break; fi
    sleep 1
done
if [ "$(psql_pg -c "select 1 from pg_roles where rolname = 'skydask'")" != "1" ]; then
    psql_pg -c "create role skydask login createdb password 'skydask'"
fi
if [ "$(psql_pg -c "select 1 from pg_database where datname = 'skydask_test'")" != "1" ]; then
    psql_pg -c "create database skydask_test owner skydask"
fi
echo "postgres-up: postgresql://skydask:skydask@127.0.0.1:$PORT/skydask_test"
