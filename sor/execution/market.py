"""A market: snapshots with what every execution over them shares (fees, what comes after)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sor.data.snapshots import Snapshots
from sor.execution.cleanup import AfterHorizon, after_horizon, estimate_impact
from sor.execution.engine import ExecutionResult, Strategy, execute
from sor.execution.rules import OrderRules
from sor.execution.venues import VenueCosts

__all__ = ["Market", "build_market", "run_strategy"]


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


def run_strategy(
    market: Market,
    strategy: Strategy,
    order: OrderRules,
    on_fill: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> ExecutionResult:
    """Execute the parent order `order` with `strategy` over `market` (`execute` with the
    market's costs and the data after it, and the order's rules)."""
    return execute(
        market.snaps,
        market.costs,
        strategy,
        order.size,
        fill_model=order.fill_model,
        after=market.after,
        max_participation=order.max_participation,
        temporary_impact=order.temporary_impact,
        on_fill=on_fill,
    )
