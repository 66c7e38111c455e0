#!/usr/bin/env bash
# Prove the minimum versions pyproject.toml declares: install the lowest version every direct
# dependency allows (uv's --resolution lowest-direct) into a venv of its own, and run the unit
# tests there. Needs .venv (scripts/setup.sh) for uv; quick (a few seconds to install).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-lowest
rm -rf "$venv"
.venv/bin/uv venv -q --python .venv/bin/python "$venv"
VIRTUAL_ENV="$PWD/$venv" .venv/bin/uv pip install -q --resolution lowest-direct -e '.[dev]'
echo "lowest-versions: $(VIRTUAL_ENV="$PWD/$venv" .venv/bin/uv pip freeze | grep -iE '^(aiohttp|bcrypt|cryptography|dnspython|orjson|prometheus-client|pydantic|pynacl|pyyaml|siphash24|pytest|pytest-asyncio|hypothesis)==' | tr '\n' ' ')"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" tests/unit tests/importers tests/protocols "$@"
