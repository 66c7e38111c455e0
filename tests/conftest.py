"""Shared fixtures: key material and file writers used across test packages."""

from __future__ import annotations

import base64
import gc
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: timing goals live in benchmarks/, and a loaded CI machine must not turn
# a slow example into a failure. Properties are what these tests assert.
settings.register_profile("vpnwatch", deadline=None)
settings.load_profile("vpnwatch")


def new_key() -> str:
    """A random 32-byte key in base64, as WireGuard writes keys."""
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Put back the root logger's handlers and level after each test.

    A test that runs the CLI in this process installs a handler on the stderr pytest captured for
    it; left in place, every later test's log lines would go to that closed file.
    """
    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


@pytest.fixture(autouse=True)
def _heap_unfrozen() -> Iterator[None]:
    """Unfreeze the heap after each test: a monitor run in this process freezes it (gc.freeze),
    and what the test left would otherwise never be collected."""
    yield
    gc.unfreeze()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write
