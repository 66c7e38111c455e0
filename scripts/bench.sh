#!/usr/bin/env bash
# Run every benchmark (needs root: they build network namespaces), print the markdown tables and
# write the figures to benchmarks/results/latest.json. Arguments go to python -m benchmarks, e.g.
# scripts/bench.sh --quick (CI-size). Exits 1 when a guard fails: a ratio of two figures of the one
# run (the monitor's CPU per WireGuard probe against the same probes run alone at its pace, and
# the probe-only batch against the floor timed beside it), which a slow or loaded machine moves on
# both sides; every other figure is printed, not asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m benchmarks "$@"
