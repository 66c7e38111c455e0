from __future__ import annotations

from collections import Counter

import pytest

from vpnwatch.shard import Shard, owner

NAMES = [f"provider-{i}/198.18.{i % 250}.{i // 250}:51820" for i in range(6000)]


def test_shards_partition_the_fleet_evenly():
    shares = Counter(owner(name, 4) for name in NAMES)
    assert set(shares) == {1, 2, 3, 4}
    assert all(abs(count - 1500) < 150 for count in shares.values()), shares
    selected = [Shard(k, 4).select(NAMES, str) for k in range(1, 5)]
    assert sorted(name for share in selected for name in share) == sorted(
        NAMES
    )  # no overlap, nothing dropped


def test_adding_a_monitor_moves_only_its_share():
    moved = sum(owner(name, 4) != owner(name, 5) for name in NAMES)
    assert moved / len(NAMES) < 0.25  # ideal: 1/5 move to the new shard, none between old ones
    assert all(owner(name, 5) == 5 for name in NAMES if owner(name, 4) != owner(name, 5))


@pytest.mark.parametrize("text", ["0/3", "4/3", "1-3", "a/b", "3"])
def test_bad_shard_specs(text):
    with pytest.raises(ValueError, match="shard"):
        Shard.parse(text)
