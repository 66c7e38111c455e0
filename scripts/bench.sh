#!/usr/bin/env bash
# Run every benchmark (needs root: they build network namespaces), print the markdown tables and
# write the figures to benchmarks/results/latest.json. Arguments go to python -m benchmarks, e.g.
# scripts/bench.sh --quick.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m benchmarks "$@"
