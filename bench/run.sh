#!/usr/bin/env bash
# `make bench`: ivr's benchmarks (not part of `make test`).
#   bench/run.sh                 all five: ingest, latency, scale, ledger, reconcile (about 35 min on 2 cores)
#   bench/run.sh ingest scale    only those
# ledger starts a throwaway PostgreSQL cluster of its own (tests/pg.py), so it
# needs PostgreSQL installed; `bench/run.sh ingest latency scale` leaves it out.
# reconcile generates a month of 1.5M calls (queue_log and ledger, about 1.5 GB in a
# temporary folder) and runs `ivr ledger reconcile` over it.
# They run in their own venv, .venv-bench, with panoramisk 1.4 (the ingest
# comparison) installed there only: it is never a dependency of ivr.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-bench
PYTHON=${PYTHON:-python3}

if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q -e . panoramisk==1.4
    touch "$VENV/.installed"
fi

benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(ingest latency scale ledger reconcile)
status=0
for bench in "${benches[@]}"; do
    if [ ! -f "bench/$bench.py" ]; then
        echo "bench/run.sh: no benchmark named $bench (ingest, latency, scale, ledger, reconcile)" >&2
        exit 2
    fi
    echo "== bench/$bench.py"
    "$VENV/bin/python" "bench/$bench.py" || status=$?
    echo
done
exit $status
