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
                + (f" (Elligator adds {row['elligator_us']} µs)" if "elligator_us" in row else "")
                + (
                    f" (the link's share {row['link_floor_us']} µs)"
                    if "link_floor_us" in row
                    else ""
                )
                + (
                    f" (the handshake's machine alone, no I/O: {row['machine_alone_us']} µs)"
                    if "machine_alone_us" in row
                    else ""
                ),
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
    if "scale_failed" in results:
        sections.append(("3. Scale: FAILED", "```\n" + results["scale_failed"] + "\n```"))
    if "accuracy" in results:
        sections.append(("4. Latency accuracy", accuracy(results["accuracy"])))
    if "monitor" in results:
        sections.append(("5. In the monitor: `vpnwatch run`, scraped", monitor(results["monitor"])))
    if "startup" in results:
        sections.append(("6. Command start-up", startup(results["startup"])))
    if "report" in results:
        sections.append(("Report benchmark (benchmarks/report_bench.py)", results["report"]))
    return "\n\n".join(f"## {title}\n\n{body}" for title, body in sections) + "\n"


def _lateness(row: dict[str, Any]) -> str:
    late = row["lateness_ms"]
    within = late["within_100ms"]
    share = "?" if within is None else f"{within:.2%}"
    return f"{late['p50']} / {late['p99']} ms ({share} ≤ 100 ms)"


def _outcome(row: dict[str, Any]) -> str:
    if row["status"] == "ok":
        return f"{row['probes']} ({row['probes_expected']}) all ok"
    failures = ", ".join(f"{name} {count}" for name, count in row["failures"].items())
    return f"**{row['probes']} ({row['probes_expected']}): {row['ok']} ok, {failures}, " + (
        f"{row['local_errors']} local errors**"
    )


def _scrape(row: dict[str, Any]) -> str:
    return f"{row['scrape_cpu_ms']} ms ({row['scrape_kib']} KiB gzip)"


def monitor_memory(rows: Sequence[dict[str, Any]]) -> str:
    return _table(
        ["run", "targets at interval", "start (s)", "RSS (peak)", "RSS/target", "marginal"],
        (
            (
                f"{row['fleet']}, {row['kind']}",
                f"{row['targets']} at {row['interval']:g} s",
                row["seconds_to_serve"],
                f"{row['rss_mib']:.0f} MiB ({row['rss_peak_mib']:.0f} MiB)",
                f"{row['rss_per_target_kib']} KiB",
                f"{row['marginal_kib_per_target']} KiB" if "marginal_kib_per_target" in row else "",
            )
            for row in rows
        ),
    )


def monitor_protocols(rows: dict[str, Any]) -> str:
    return _table(
        [
            "protocol: targets at interval",
            "probes (expected)",
            "monitor CPU/probe",
            "without scrapes",
            "probe-only",
            "floor",
            "monitor ÷ floor",
            "monitor over probe-only",
            "RSS/target",
            "lateness p50 / p99",
            "one scrape: CPU (size)",
        ],
        (
            (
                f"{name}: {row['targets']} at {row['interval']:g} s",
                _outcome(row),
                f"{row['cpu_per_probe_us']} µs",
                f"{row['cpu_per_probe_without_scrapes_us']} µs",
                f"{row.get('probe_only_us', '?')} µs",
                f"{row.get('floor_us', '?')} µs",
                row.get("x_floor", "?"),
                f"{row.get('overhead_over_probe_only_pct', '?')} %",
                f"{row['rss_per_target_kib']} KiB ({row['rss_mib']:.0f} MiB)",
                _lateness(row),
                _scrape(row),
            )
            for name, row in rows.items()
        ),
    )


def monitor_runs(rows: Sequence[dict[str, Any]]) -> str:
    return _table(
        [
            "run",
            "targets at interval (≈ at 60 s)",
            "processes",
            "probes (expected)",
            "CPU share",
            "CPU/probe",
            "RSS (per target)",
            "lateness p50 / p99",
            "one scrape: CPU (size)",
            "holds",
        ],
        (
            (
                f"{row['fleet']}, {row['kind']}",
                f"{row['targets']} at {row['interval']:g} s (≈ {row['equivalent_at_60s']})",
                row["processes"],
                _outcome(row),
                f"{row['cpu_share']:.0%}",
                f"{row['cpu_per_probe_us']} µs",
                f"{row['rss_mib']:.0f} MiB ({row['rss_per_target_kib']} KiB)",
                _lateness(row),
                _scrape(row),
                "-" if "holds" not in row else "yes" if row["holds"] else "**no**",
            )
            for row in rows
        ),
    )


def monitor(results: dict[str, Any]) -> str:
    """Part 5: the in-monitor figures, the scale search, memory and the CI guards."""
    parts = [monitor_protocols(results["protocols"])]
    if "paced_probe_only_us" in (wireguard := results["protocols"].get("wireguard", {})):
        parts.append(
            f"WireGuard's probes alone at the fleet's pace ({wireguard['paced_probes']} probes, "
            f"{wireguard['paced_ok']} ok, started {wireguard['paced_group']} at a time as the "
            f"scheduler groups them): {wireguard['paced_probe_only_us']} µs a probe. The monitor "
            f"over them: {wireguard['overhead_over_paced_pct']} % with scrapes, "
            f"{wireguard['overhead_without_scrapes_over_paced_pct']} % without."
        )
    if "scale" in results:
        scale = results["scale"]
        runs = [*scale["runs"], scale["sharded"]]
        parts.append(
            monitor_runs(runs)
            + "\n\nLargest fleet one process holds at 60 s (p99 lateness < 100 ms, all ok): "
            + (
                f"≈ {scale['largest_held_at_60s']} targets."
                if scale["largest_held_at_60s"]
                else "none of the fleets searched."
            )
        )
    if "memory" in results:
        parts.append(monitor_memory(results["memory"]))
    parts.append(
        "\n".join(
            f"- guard: {guard['guard']}: {guard['value']} — "
            + ("passed" if guard["passed"] else "**FAILED**")
            for guard in results["guards"]
        )
    )
    parts.append(f"Measured {results['finished_utc']}, {results['seconds']} s.")
    return "\n\n".join(parts)


def startup(rows: dict[str, Any]) -> str:
    return _table(
        ["command", "CPU (user + sys), median", "runs", "goal"],
        (
            (
                f"`{name}`" if name.startswith("vpnwatch") else name,
                f"{row['cpu_s']:.3f} s",
                row["runs"],
                f"≤ {row['goal_s']:g} s" if row["goal_s"] is not None else "",
            )
            for name, row in rows.items()
        ),
    )
