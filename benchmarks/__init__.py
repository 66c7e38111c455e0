"""vpnwatch's benchmarks: what a probe costs, how far the monitor scales, how exactly it measures.

Run them all with ``scripts/bench.sh`` (``python -m benchmarks``, as root); docs/benchmarks.md
explains each part and quotes the figures with the machine they came from.
"""
