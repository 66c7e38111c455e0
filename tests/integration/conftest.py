"""What the lab modules share: the namespace a module's servers run in, made once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vpnwatch.lab.netns import Namespace


@pytest.fixture(scope="module")
def namespace() -> Iterator[Namespace]:
    """A lab namespace for this module's servers, removed when its last test is done."""
    with Namespace() as namespace:
        yield namespace
