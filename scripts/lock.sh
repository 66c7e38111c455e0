#!/usr/bin/env bash
# Write constraints.txt: the exact versions the Docker image installs, resolved from pyproject.toml
# for the image's Python (3.11, Linux x86-64). Run after changing dependencies in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
{
    echo "# Exact versions the Docker image installs (pip install -c constraints.txt), so that a"
    echo "# build is the same whichever day it runs. Written by scripts/lock.sh; do not edit."
    .venv/bin/uv pip compile pyproject.toml --quiet --no-header --python-version 3.11 \
        --python-platform x86_64-manylinux_2_28
} > constraints.txt.new
mv constraints.txt.new constraints.txt
