"""Target models: one per protocol, and the union the configuration is validated against."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from vpnwatch.targets.base import TargetBase
from vpnwatch.targets.wireguard import WireGuardTarget

#: Any target; the ``protocol`` field selects the model.
Target = Annotated[WireGuardTarget, Field(discriminator="protocol")]

__all__ = ["Target", "TargetBase", "WireGuardTarget"]
