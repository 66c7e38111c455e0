#!/usr/bin/env bash
# Start the lab's real VPN servers and monitor them: the main job on an embedded default.
# Needs root. Stop it with Ctrl-C; the lab is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/vpnwatch demo "$@"
