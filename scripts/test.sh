#!/usr/bin/env bash
# Run the whole test suite, lab tests included (needs root: they build network namespaces).
# Arguments go to pytest, e.g. scripts/test.sh -k wireguard.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
