#!/usr/bin/env bash
# Set up the environment and run every test: lint, types, unit tests and doctests, and the
# cluster tests against a real single-node SLURM on localhost (started here when we are root,
# as in CI; elsewhere those tests skip unless SKYDASK_REQUIRE_SLURM=1).
# This is the README's test command and what .ci/run executes on a clean clone.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh || exit 1

started_slurm=0
if [ "$(id -u)" = "0" ] && [ "${SKYDASK_NO_SLURM:-0}" != "1" ]; then
    if ! pgrep -x slurmctld >/dev/null; then started_slurm=1; fi
    bash scripts/slurm-up.sh || exit 1
    export SKYDASK_REQUIRE_SLURM=1
    bash scripts/install-browser.sh || exit 1
    export SKYDASK_REQUIRE_BROWSER=1
fi
started_postgres=0
if [ "$(id -u)" = "0" ] && [ "${SKYDASK_NO_POSTGRES:-0}" != "1" ]; then
    if ! pg_isready -q -h 127.0.0.1 -p 55432 2>/dev/null; then started_postgres=1; fi
    bash scripts/postgres-up.sh || exit 1
    export SKYDASK_REQUIRE_POSTGRES=1
fi
cleanup() {
    if [ "$started_slurm" = "1" ]; then bash scripts/slurm-down.sh; fi
    if [ "$started_postgres" = "1" ]; then bash scripts/postgres-down.sh; fi
}
trap cleanup EXIT

status=0
echo "== ruff"; .venv/bin/ruff check src tests benchmarks || status=1
.venv/bin/ruff format --check src tests benchmarks || status=1
echo "== mypy"; .venv/bin/mypy || status=1
echo "== pytest"
.venv/bin/pytest "$@"
rc=$?
# pytest exits 5 when it collected no tests: that is not a failure of the code
if [ "$rc" -eq 5 ]; then rc=0; fi
if [ "$rc" -ne 0 ]; then status=$rc; fi
exit $status
