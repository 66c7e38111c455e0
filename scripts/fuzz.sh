#!/usr/bin/env bash
# The long fuzz run: every parser property in tests/hardening under the `long` hypothesis profile
# (random, 70,000 examples per property: over a million inputs in all), the protocol and the file
# parsers in two processes side by side. Prints the inputs fed to each parser and the totals.
#
#   scripts/fuzz.sh                  # the long run (about half an hour on two cores)
#   scripts/fuzz.sh --examples 5000  # a shorter one
#
# Any failure is printed by hypothesis with the smallest input it found and a @reproduce_failure
# blob; add that input as a regression test (tests/hardening/test_regressions.py).
set -euo pipefail
cd "$(dirname "$0")/.."

export VPNWATCH_FUZZ_PROFILE=long
if [[ "${1:-}" == "--examples" ]]; then
    export VPNWATCH_FUZZ_EXAMPLES="$2"
    shift 2
fi
python=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

started=$(date +%s)
status=0
for suite in protocols importers report anyconnect; do
    VPNWATCH_FUZZ_STATS="$work/$suite.json" "$python" -m pytest -q -p no:cacheprovider \
        "tests/hardening/test_fuzz_$suite.py" "$@" >"$work/$suite.log" 2>&1 &
done
for job in $(jobs -p); do
    wait "$job" || status=1
done
elapsed=$(($(date +%s) - started))

cat "$work"/*.log
"$python" - "$elapsed" "$work"/*.json <<'EOF'
import json, os, platform, sys

elapsed = int(sys.argv[1])
counts = {}
for path in sys.argv[2:]:
    with open(path) as file:
        counts.update(json.load(file))
total = sum(counts.values())
for parser, inputs in sorted(counts.items()):
    print(f"{parser:32} {inputs:>12,}")
print(f"{'total':32} {total:>12,} inputs in {elapsed // 60} min {elapsed % 60} s")
cpu = next(
    (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
    platform.processor(),
)
print(f"machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}")
EOF
exit "$status"
