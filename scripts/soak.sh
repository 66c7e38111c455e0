#!/usr/bin/env bash
# The soak: the real monitor on many lab targets at a 1 s interval while the lab's servers stop and
# start and a censor drops, rejects and resets; fds, tasks, threads and RSS sampled every phase.
# Needs root (it builds a lab namespace). Exit status 1 if anything grew or a target went unprobed.
#
#   scripts/soak.sh --hours 24                 # the day-long run
#   scripts/soak.sh --minutes 25 --json s.json # a shorter one, samples kept
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m tests.hardening.soak "$@"
