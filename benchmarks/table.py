"""The benchmark results as markdown: one table per part, in the words of docs/benchmarks.md."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine(info: dict[str, Any]) -> str:
    return _table(["machine", ""], info.items())


def costs(rows: dict[str, Any]) -> str:
    return _table(
        ["probe", "probes (ok)", "CPU/probe", "user + sys", "floor", "floor is", "x floor", "/s"],
        (
            (
                name,
                f"{row['probes']} ({row['ok']})",
                f"{row['cpu_per_probe_us']} µs",
                f"{row['user_per_probe_us']} + {row['system_per_probe_us']} µs",
                f"{row['floor_us']} µs",
                row["floor_is"]
                + (f" (Elligator adds {row['elligator_us']} µs)" if "elligator_us" in row else ""),
                row["ratio_to_floor"],
                row["probes_per_second"],
            )
            for name, row in rows.items()
        ),
    )


def clients(result: dict[str, Any]) -> str:
    rows = []
    for case in result["cases"]:
        ours = case["vpnwatch"]
        for client in (key for key in case if key not in ("case", "vpnwatch", "agree")):
            theirs = case[client]
            rows.append(
                (
                    case["case"],
                    client,
                    f"{ours['cpu_per_check_ms']} ms / {theirs['cpu_per_check_ms']} ms",
                    f"{ours['wall_per_check_ms']} ms / {theirs['wall_per_check_ms']} ms",
                    f"{ours['verdict']} / {theirs['verdict']}",
                    "yes" if case["agree"] else "**no**",
                )
            )
    header = ["case", "real client", "CPU: vpnwatch / real", "wall: vpnwatch / real"]
    return _table([*header, "verdict: vpnwatch / real", "agree"], rows)


def scale(runs: Sequence[dict[str, Any]]) -> str:
    return _table(
        [
            "targets at interval",
            "probes (expected)",
            "CPU share",
            "at 60 s",
            "CPU/probe",
            "RSS peak (base)",
            "lateness p50 / p99 / max",
            "GC max pause",
        ],
        (
            (
                f"{run['targets']} at {run['interval']:g} s ({run['compression']:g}x)"
                + (", gc.freeze()" if run["gc_frozen"] else ""),
                f"{run['probes_in_window']} ({run['probes_expected']})",
                f"{run['cpu_share']:.0%}",
                f"{run['cpu_share'] / run['compression']:.1%}",
                f"{run['cpu_per_probe_us']} µs",
                f"{run['rss_peak_mib']:.0f} MiB ({run['rss_baseline_mib']:.0f} MiB)",
                "{p50} / {p99} / {max} ms".format(**run["lateness_ms"]),
                f"{run['gc_pause_max_ms']} ms",
            )
            for run in runs
        ),
    )


def accuracy(result: dict[str, Any]) -> str:
    rows = []
    for label, key in (
        ("alone", "alone"),
        (f"with {result['other_targets']} others", "with_others"),
    ):
        part = result[key]
        rows.append(
            (
                label,
                f"{part['samples']} ({part['failed']} failed)",
                f"{part['measured_p50_ms']} ms",
                f"{part['error_p50_ms']} ms",
                f"{part['error_p99_ms']} ms",
                f"{part['error_max_ms']} ms",
                part["other_probes_ok"],
            )
        )
    header = ["20 targets, +50 ms", "samples", "measured p50", "error p50", "error p99", "max"]
    relay = result["relay"]
    note = (
        f"The relay released datagrams late by p50 {relay['late_p50_ms']} ms, "
        f"p99 {relay['late_p99_ms']} ms, max {relay['late_max_ms']} ms "
        f"({relay['relayed']} relayed, {relay['dropped']} dropped)."
    )
    return _table([*header, "others ok"], rows) + "\n\n" + note


def render(results: dict[str, Any]) -> str:
    sections = [("Machine", machine(results["machine"]))]
    if "cost" in results:
        sections.append(("1. CPU per probe against its floor", costs(results["cost"])))
    if "clients" in results:
        sections.append(("2. Side by side with the real clients", clients(results["clients"])))
    if "scale" in results:
        sections.append(("3. Scale", scale(results["scale"])))
    if "accuracy" in results:
        sections.append(("4. Latency accuracy", accuracy(results["accuracy"])))
    if "report" in results:
        sections.append(("Report benchmark (benchmarks/report_bench.py)", results["report"]))
    return "\n\n".join(f"## {title}\n\n{body}" for title, body in sections) + "\n"
