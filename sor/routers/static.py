"""The smart order router: the static Cont & Kukanov split at every snapshot (model.md §3-§4)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sor.data.snapshots import Snapshots, reference_mid
from sor.execution.market import Market
from sor.execution.rules import OrderRules
from sor.execution.venues import VenueCosts
from sor.routers.allocator import allocate_arrays
from sor.vocabulary import CAPS, CHILD_SIZINGS, COST_BASES

__all__ = ["Router", "RouterParams", "make_router", "reference_mid"]


@dataclass(frozen=True)
class RouterParams:
    """The three penalties the sweep tunes, in dollars per share (model.md §3)."""

    lambda_over: float
    lambda_under: float
    theta_queue: float


class Router:
    """Splits the remaining order with the allocator at every snapshot.

    Compiled twin: with `sor.execution.engine.execute`, `sor.routers.static_nb._route`, run by
    `sor.routers.static_nb.run_router_nb` and, once per trial, `sor.routers.static_nb._run_batch`.

    Args:
        snaps: the snapshots.
        costs: fees and rebates per venue column.
        params: the penalties.
        step: lot size of the allocator's grid, shares.
        cap: "displayed" or "order" (model.md §3).
        cost_basis: "mid" (prices measured from the mid) or "cash" (raw prices, the task's).
        child_sizing: "available" (default: the child is what can fill now, with cap displayed)
            or "all_or_none" (the task's loop: all remaining shares or nothing).
    """

    name = "optimized"

    def __init__(
        self,
        snaps: Snapshots,
        costs: VenueCosts,
        params: RouterParams,
        *,
        step: int = 100,
        cap: str = "displayed",
        cost_basis: str = "mid",
        child_sizing: str = "available",
    ) -> None:
        for value, allowed, key in (
            (cap, CAPS, "cap"),
            (cost_basis, COST_BASES, "cost_basis"),
            (child_sizing, CHILD_SIZINGS, "child_sizing"),
        ):
            if value not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, but got {value!r}.")
        self._snaps, self._costs, self.params = snaps, costs, params
        self._step, self._cap, self._child_sizing = step, cap, child_sizing
        reference = reference_mid(snaps) if cost_basis == "mid" else np.zeros(len(snaps))
        self._price = snaps.ask_px - reference[:, None]  # what the allocator sees as the ask

    def next_action(self, t: int, filled: int) -> int:
        """Acts at every snapshot."""
        return t

    def orders(self, t: int, remaining: int, prices: np.ndarray, left: np.ndarray) -> np.ndarray:
        """The allocator's split of this snapshot's child order.

        The allocator sees each venue's shares left over all its visible levels at its best
        ask (docs/model.md §3); the engine fills them level by level at their own prices.

        Compiled twin: inline in `sor.routers.static_nb._route`.
        """
        available = left.sum(axis=1)
        sent = np.zeros(len(available), dtype=np.int64)
        if self._cap == "order":
            venues = np.flatnonzero(np.isfinite(self._price[t]))
        else:
            venues = np.flatnonzero(available > 0)
        if len(venues) == 0:
            return sent
        literal = self._child_sizing == "all_or_none"
        child = remaining
        if not literal and self._cap == "displayed":
            child = min(remaining, int(available[venues].sum()))
        if child <= 0:
            return sent
        p = self.params
        split, _ = allocate_arrays(
            child,
            self._price[t, venues],
            available[venues],
            self._costs.fee[venues],
            self._costs.rebate[venues],
            p.lambda_over,
            p.lambda_under,
            p.theta_queue,
            step=self._step,
            cap=self._cap,
            include_cap=not literal,
        )
        if split is not None:
            sent[venues] = split
        return sent


def make_router(market: Market, params: RouterParams, order: OrderRules) -> Router:
    """The router over `market` at `params` with `order`'s rules (step, cap, cost basis, child
    sizing)."""
    return Router(
        market.snaps,
        market.costs,
        params,
        step=order.step,
        cap=order.cap,
        cost_basis=order.cost_basis,
        child_sizing=order.child_sizing,
    )
