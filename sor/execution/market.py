"""A market: snapshots with what every execution over them shares (fees, what comes after)."""

from __future__ import annotations

from dataclasses import dataclass

from sor.data.snapshots import Snapshots
from sor.execution.cleanup import AfterHorizon, after_horizon, estimate_impact
from sor.execution.venues import VenueCosts

__all__ = ["Market", "build_market"]


@dataclass(frozen=True, eq=False)
class Market:
    """The snapshots of a parent order's horizon, their venue costs, and the data after them.

    Attributes:
        snaps: the snapshots of the horizon.
        costs: fee and rebate of each venue column.
        after: the data after the horizon, which the clean-up of unfilled shares takes from
            (`sor.execution.cleanup`).
    """

    snaps: Snapshots
    costs: VenueCosts
    after: AfterHorizon


def build_market(snaps: Snapshots, costs: VenueCosts, after: AfterHorizon | None = None) -> Market:
    """The `Market` of `snaps` with `costs`; with `after` None nothing comes after `snaps`, and
    the clean-up is priced by the impact model estimated from `snaps`."""
    if after is None:
        after = after_horizon(snaps, costs, len(snaps), estimate_impact(snaps))
    return Market(snaps=snaps, costs=costs, after=after)
