#!/usr/bin/env bash
# Stop the PostgreSQL that scripts/postgres-up.sh started (its own cluster only). Idempotent;
# the data directory is kept (the next postgres-up.sh reuses it).
set -uo pipefail
PGDIR="${SKYDASK_PG_DIR:-/var/lib/postgresql/skydask-test}"
version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)
PG_CTL="/usr/lib/postgresql/$version/bin/pg_ctl"
if [ -n "$version" ] && [ -x "$PG_CTL" ] && [ -s "$PGDIR/PG_VERSION" ]; then
    if [ "$(id -un)" = "postgres" ]; then
        "$PG_CTL" -D "$PGDIR" status >/dev/null 2>&1 && "$PG_CTL" -D "$PGDIR" -m fast -w stop >/dev/null
    else
        runuser -u postgres -- "$PG_CTL" -D "$PGDIR" status >/dev/null 2>&1 \
            && runuser -u postgres -- "$PG_CTL" -D "$PGDIR" -m fast -w stop >/dev/null
    fi
fi
exit 0
