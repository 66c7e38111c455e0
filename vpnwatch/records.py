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
