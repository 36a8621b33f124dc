"""A market: snapshots with what every execution over them shares (fees, ask-level ids)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sor.data.snapshots import Snapshots
from sor.execution.engine import ask_levels
from sor.execution.venues import VenueCosts

__all__ = ["Market", "build_market"]


@dataclass(frozen=True, eq=False)
class Market:
    """Snapshots with their venue costs and the ask-level ids the strict fill model needs.

    Attributes:
        snaps: the snapshots.
        costs: fee and rebate of each venue column.
        levels: int64[T, N], `sor.execution.engine.ask_levels(snaps)`.
    """

    snaps: Snapshots
    costs: VenueCosts
    levels: np.ndarray


def build_market(snaps: Snapshots, costs: VenueCosts) -> Market:
    """The `Market` of `snaps` with `costs`, its ask levels computed once."""
    return Market(snaps=snaps, costs=costs, levels=ask_levels(snaps))
