#!/usr/bin/env bash
# Stop what scripts/slurm-up.sh started (by pid file; no systemd here). Idempotent.
set -uo pipefail
scancel --user="$(id -un)" >/dev/null 2>&1 || true
for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
done
pkill -x munged 2>/dev/null || true
exit 0
