"""The incident rules on hand-made series: the bulk of what the report decides."""

from __future__ import annotations

import itertools
import math
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpnwatch.report.dataset import (
    Dataset,
    ProbeSeries,
    SeriesKey,
    add_into,
    compact,
    counter_increments,
)
from vpnwatch.report.incidents import (
    Rules,
    analyse,
    bad_runs,
    incident_spans,
    merge_runs,
    roll_up,
    success_ratios,
)
from vpnwatch.report.query import Grid

NAN = math.nan
STEP = 300.0


def series(
    site: str,
    protocol: str,
    target: str,
    failed: list[float],
    *,
    control: bool = False,
    probes: float = 10.0,
    kind: tuple[str, str] = ("timeout", "handshake"),
) -> ProbeSeries:
    """``failed[i]`` failures out of ``probes`` in interval i (NaN: no data)."""
    counts = array("d", [NAN if math.isnan(f) else probes for f in failed])
    failures = array("d", failed)
    successes = array("d", [NAN if math.isnan(f) else probes - f for f in failed])
    return ProbeSeries(
        key=SeriesKey(site, protocol, target),
        control=control,
        probes=counts,
        failures=failures,
        failure_kinds={kind: array("d", failures)},
        latency_sum=array("d", [s * 0.1 for s in successes]),
        latency_count=successes,
    )


def dataset(*members: ProbeSeries, start: float = 0.0) -> Dataset:
    grid = Grid(start=start, step=STEP, intervals=len(members[0].probes))
    return Dataset(grid, members, (), "0" * 64)


def test_counter_increments_count_each_probe_once_and_survive_resets() -> None:
    values = array("d", [5, 7, 7, 2, NAN, 4, 6])
    increments = counter_increments(values)
    assert increments[:3].tolist() == [2.0, 0.0, 2.0]  # 7 -> 2 is a reset: 2 new probes
    assert math.isnan(increments[3]) and math.isnan(increments[4])  # no value at index 4
    assert increments[5] == 2.0


def test_an_absent_counter_is_zero_while_its_target_is_scraped() -> None:
    failures = array("d", [NAN, NAN, 1, 3])
    probes = array("d", [10, 11, 12, 13])
    assert counter_increments(failures, probes).tolist() == [0.0, 1.0, 2.0]
    assert math.isnan(counter_increments(failures)[1])


def test_success_ratio_is_nan_without_probes() -> None:
    ratios = success_ratios(array("d", [10, 0, NAN, 4]), array("d", [4, 0, NAN, 4]))
    assert ratios[0] == 0.6
    assert math.isnan(ratios[1]) and math.isnan(ratios[2])
    assert ratios[3] == 0.0


def test_bad_runs_are_maximal_and_half_open() -> None:
    ratios = [1.0, 0.2, 0.0, 0.5, NAN, 0.1, 0.1]
    assert bad_runs(ratios, 0.5) == [(1, 3), (5, 7)]
    assert bad_runs(ratios, 0.6) == [(1, 4), (5, 7)]


def test_flaps_merge_across_gaps_up_to_the_merge_gap() -> None:
    assert merge_runs([(0, 2), (4, 5), (8, 9)], max_gap=2) == [(0, 5), (8, 9)]
    assert merge_runs([(0, 2), (4, 5), (8, 9)], max_gap=3) == [(0, 9)]


@given(st.lists(st.sampled_from([0.0, 1.0, NAN]), max_size=60), st.integers(0, 5))
def test_merged_runs_are_ordered_disjoint_and_cover_every_bad_interval(
    ratios: list[float], gap: int
) -> None:
    runs = bad_runs(ratios, 0.5)
    merged = merge_runs(runs, gap)
    for (_, end), (start, _) in itertools.pairwise(merged):
        assert start - end > gap
    covered = {i for start, end in merged for i in range(start, end)}
    assert {i for i, ratio in enumerate(ratios) if ratio < 0.5} <= covered
    assert all(ratios[start] < 0.5 and ratios[end - 1] < 0.5 for start, end in merged)


def test_rules_round_durations_to_steps() -> None:
    rules = Rules(threshold=0.5, merge_gap=600, min_duration=300)
    assert rules.merge_intervals(300) == 2
    assert rules.min_intervals(300) == 1
    assert rules.min_intervals(60) == 5
    assert Rules(merge_gap=0).merge_intervals(300) == 0


def test_blips_shorter_than_the_minimum_are_dropped() -> None:
    blip = series("s", "obfs4", "a", [0, 10, 0, 0, 10, 10, 0])
    assert incident_spans(blip, Rules(merge_gap=0, min_duration=600), STEP) == [(4, 6)]


def test_offline_when_the_sites_controls_fail_too() -> None:
    analysis = analyse(
        dataset(
            series("s", "wireguard", "wg", [0, 10, 10, 0, 10, 10, 10, 10, 0]),
            series("s", "tcp", "ctl", [0, 10, 10, 0, 0, 0, 0, 0, 0], control=True),
        ),
        Rules(merge_gap=0, min_duration=0),
    )
    verdicts = {(i.scope, i.start, i.end): i.verdict for i in analysis.incidents}
    assert verdicts == {
        ("site", 300.0, 900.0): "offline",
        ("protocol", 300.0, 900.0): "offline",
        ("target", 300.0, 900.0): "offline",
        ("protocol", 1200.0, 2400.0): "failing",
        ("target", 1200.0, 2400.0): "failing",
    }


def test_verdict_unknown_without_controls() -> None:
    analysis = analyse(dataset(series("s", "openvpn", "o", [0, 10, 10, 0])), Rules())
    assert {i.verdict for i in analysis.incidents} == {"unknown"}
    assert all(i.control_success is None for i in analysis.incidents)


def test_one_broken_server_is_a_target_incident_not_a_protocol_incident() -> None:
    analysis = analyse(
        dataset(
            series("s", "wireguard", "a", [0, 0, 0, 0]),
            series("s", "wireguard", "b", [0, 10, 10, 0]),
        ),
        Rules(),
    )
    assert [(i.scope, i.targets) for i in analysis.incidents] == [("target", ("b",))]


def test_protocol_incident_lists_the_failing_targets_and_dominant_classes() -> None:
    analysis = analyse(
        dataset(
            series("s", "openvpn", "a", [0, 10, 10, 0], kind=("reset", "tls")),
            series("s", "openvpn", "b", [0, 8, 9, 0], kind=("timeout", "reset")),
            series("s", "openvpn", "c", [0, 0, 0, 0]),
        ),
        Rules(),
    )
    protocol = next(i for i in analysis.incidents if i.scope == "protocol")
    assert protocol.targets == ("a", "b")
    assert protocol.failure_classes == (("reset", 20), ("timeout", 17))
    assert protocol.stages == (("tls", 20), ("reset", 17))
    assert protocol.probes == 60 and protocol.failures == 37
    assert protocol.latency_before == pytest.approx(0.1)
    assert protocol.latency_during == pytest.approx(0.1)


def test_roll_up_keeps_gaps_where_no_member_has_data() -> None:
    total = roll_up(
        SeriesKey("s", "obfs4", "*"),
        [series("s", "obfs4", "a", [1, NAN, NAN]), series("s", "obfs4", "b", [2, 3, NAN])],
        control=False,
    )
    assert total.probes[:2].tolist() == [20.0, 10.0]
    assert math.isnan(total.probes[2])
    assert total.failure_kinds["timeout", "handshake"][:2].tolist() == [3.0, 3.0]


def _reference_increments(values: list[float], present: list[float] | None) -> list[float]:
    """counter_increments as first written, one interval at a time."""
    if present is not None:
        values = [
            0.0 if math.isnan(v) and not math.isnan(p) else v
            for v, p in zip(values, present, strict=True)
        ]
    return [
        now - before if now >= before else (now if now < before else NAN)
        for before, now in itertools.pairwise(values)
    ]


_COUNTS = st.lists(st.one_of(st.integers(0, 50).map(float), st.just(NAN)), min_size=1, max_size=30)


@given(_COUNTS, st.one_of(st.none(), _COUNTS))
def test_counter_increments_equal_the_interval_by_interval_definition(
    values: list[float], present: list[float] | None
) -> None:
    if present is not None:
        present = (present * len(values))[: len(values)]
    fast = counter_increments(array("d", values), None if present is None else array("d", present))
    assert fast.tobytes() == array("d", _reference_increments(values, present)).tobytes()


@given(_COUNTS, _COUNTS)
def test_add_into_treats_nan_as_no_data(total: list[float], part: list[float]) -> None:
    part = (part * len(total))[: len(total)]
    summed = array("d", total)
    add_into(summed, array("d", part))
    expected = [
        t if math.isnan(p) else (p if math.isnan(t) else t + p)
        for t, p in zip(total, part, strict=True)
    ]
    assert summed.tobytes() == array("d", expected).tobytes()


def test_compact_narrows_only_what_float32_holds_exactly() -> None:
    counts = array("d", [0.0, 3.0, NAN, 2.0**24])
    assert compact(counts).typecode == "f"
    assert compact(counts).tobytes() == array("f", counts).tobytes()
    for wide in ([0.1], [2.0**24 + 1], [1e300]):
        assert compact(array("d", wide)).typecode == "d"


def test_degraded_periods_come_from_tunnel_tests_beside_the_incidents() -> None:
    """Handshakes all succeed; one tunnel test every other interval, degraded from interval 4
    to 9 (with empty intervals between): one degraded period, and no incident."""
    healthy = series("karachi-1", "wireguard", "wg-a", [0.0] * 14)
    tests = [1.0 if index % 2 == 0 else 0.0 for index in range(14)]
    bad = [1.0 if 4 <= index < 10 and index % 2 == 0 else 0.0 for index in range(14)]
    healthy.tunnel_tests, healthy.tunnel_bad = array("d", tests), array("d", bad)
    untested = series("karachi-1", "wireguard", "wg-b", [0.0] * 14)
    analysis = analyse(dataset(healthy, untested), Rules(min_duration=2 * STEP))
    assert analysis.incidents == ()
    (period,) = analysis.degraded
    assert (period.targets, period.verdict, period.scope) == (("wg-a",), "degraded", "target")
    assert (period.start, period.end) == (4 * STEP, 9 * STEP)
    assert (period.probes, period.failures) == (3, 3)
