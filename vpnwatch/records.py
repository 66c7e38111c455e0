"""Results as JSON-ready records: one shape for ``check --json`` and ``/api/targets``."""

from __future__ import annotations

from typing import Any

from vpnwatch.result import LocalError, Result
from vpnwatch.targets.base import TargetBase


def result_record(target: TargetBase, result: Result) -> dict[str, Any]:
    """Everything a person or a script needs about one probe, and nothing secret."""
    return {
        "target": target.name,
        "protocol": target.protocol,
        "endpoint": target.endpoint,
        "transport": target.transport,
        "ok": result.ok,
        "failure": result.failure.value if result.failure else None,
        "stage": result.stage,
        "stages": {stage: round(at, 6) for stage, at in result.stages},
        "duration_seconds": round(result.duration, 6),
        "detail": result.detail,
        "certificate_not_after": result.certificate_not_after,
        **({"tunnel": tunnel_record(result)} if result.tunnel is not None else {}),
    }


def tunnel_record(result: Result) -> dict[str, Any]:
    """What a tunnel test measured, and why it is degraded (rounded: these are measurements)."""
    quality = result.tunnel
    assert quality is not None

    def rounded(value: float | None, digits: int = 6) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "degraded": [reason.value for reason in result.degraded],
        "echoes_sent": quality.train_sent,
        "echoes_received": quality.train_received,
        "loss": rounded(quality.loss),
        "rtt_median_seconds": rounded(quality.rtt_median),
        "jitter_seconds": rounded(quality.jitter),
        "goodput_bytes_per_second": rounded(quality.goodput, 1),
        "held_seconds": rounded(quality.held_seconds, 3),
        "held_bytes": quality.held_bytes,
        "cut": quality.cut,
    }


def error_record(target: TargetBase, error: LocalError) -> dict[str, Any]:
    """A probe this host could not carry out: no verdict, so no ``failure`` and no ``stage``."""
    return {
        "target": target.name,
        "protocol": target.protocol,
        "endpoint": target.endpoint,
        "transport": target.transport,
        "ok": False,
        "failure": None,
        "error": error.reason.value,
        "detail": error.detail,
    }
