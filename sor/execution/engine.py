"""Market-taking execution of one parent order over snapshots (model.md §4).

A strategy says, at the snapshots where it acts, how many shares to send to each venue; venue j
fills min(sent_j, available_j) at its ask and the rest is cancelled and rolls over. The engine is
shared by the router and every baseline so that they are measured by the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from sor.data.snapshots import Snapshots
from sor.execution.cleanup import AfterHorizon, Cleanup, after_horizon, clean_up, estimate_impact
from sor.execution.depth import PRICE_EPS, TakenMemory, walk_venue
from sor.execution.venues import VenueCosts
from sor.vocabulary import FILL_MODELS

__all__ = [
    "ExecutionResult",
    "Strategy",
    "next_fillable",
    "shares_left",
    "execute",
    "result_of",
]


class Strategy(Protocol):
    """Decides child orders; the engine fills them."""

    name: str

    def next_action(self, t: int, filled: int) -> int:
        """First snapshot index >= t at which to act given the shares filled; len(snaps): never."""
        ...

    def orders(self, t: int, remaining: int, prices: np.ndarray, left: np.ndarray) -> np.ndarray:
        """Shares to send to each venue column at snapshot t (int64[N]).

        Args:
            t: snapshot index.
            remaining: shares of the parent order still to buy.
            prices: float64[N, L], each venue's visible ask levels (NaN where empty).
            left: int64[N, L], shares the order can still take at each level; a venue fills
                up to `left[j].sum()`, cheapest level first.
        """
        ...


@dataclass
class ExecutionResult:
    """Outcome of one parent order for one strategy (model.md §4).

    Attributes:
        total_cash: dollars paid for the shares filled within the horizon, fees included.
        filled_shares: shares bought within the horizon.
        unfilled_shares: shares still to buy at the end of the horizon (left to the clean-up).
        avg_fill_px: total_cash / filled_shares (NaN when nothing filled).
        completed_cash: total_cash plus the clean-up of the unfilled shares
            (`sor.execution.cleanup`): what the sweep minimizes.
        shares_by_venue: publisher_id -> shares filled there within the horizon.
        child_orders: snapshots at which shares filled.
        last_fill_ts: ns of the last fill (0 when none).
        cleanup_taken_shares: unfilled shares the clean-up took from the depth after the horizon.
        cleanup_impact_shares: unfilled shares the data could not supply, priced by the impact
            model.
        cleanup_cash: dollars the clean-up paid for all unfilled shares.
        market_volume: shares the market traded (trade prints) from the order's arrival through
            its last fill (0 without fills or without trades in the data).
    """

    total_cash: float
    filled_shares: int
    unfilled_shares: int
    avg_fill_px: float
    completed_cash: float
    shares_by_venue: dict[int, int]
    child_orders: int
    last_fill_ts: int
    cleanup_taken_shares: int = 0
    cleanup_impact_shares: int = 0
    cleanup_cash: float = 0.0
    market_volume: int = 0

    @property
    def cleanup_share(self) -> float:
        """Share of the parent order left to the clean-up."""
        total = self.filled_shares + self.unfilled_shares
        return self.unfilled_shares / total if total else 0.0

    @property
    def participation(self) -> float | None:
        """Filled shares over the market's traded volume while the order was active (None
        without traded volume)."""
        return self.filled_shares / self.market_volume if self.market_volume else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None), with `cleanup_share` and `participation`."""
        out = asdict(self)
        out["cleanup_share"] = self.cleanup_share
        out["participation"] = self.participation
        out["shares_by_venue"] = {str(k): v for k, v in self.shares_by_venue.items()}
        if not np.isfinite(self.avg_fill_px):
            out["avg_fill_px"] = None
        return out


def execute(
    snaps: Snapshots,
    costs: VenueCosts,
    strategy: Strategy,
    order_size: int,
    *,
    fill_model: str = "strict",
    after: AfterHorizon | None = None,
    on_fill: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> ExecutionResult:
    """Run one parent order of `order_size` shares through `strategy` over all snapshots.

    At each snapshot where the strategy acts and something can fill, it sends shares to venues;
    venue j fills min(sent_j, left_j), walking its visible ask levels in price order, each at its
    own price plus the venue's fee; the rest is cancelled and rolls over (model.md §4). Shares
    unfilled at the last snapshot go to the clean-up (`sor.execution.cleanup.clean_up`).

    Compiled twin, with `sor.routers.static.Router` as the strategy: `sor.routers.static_nb._route`,
    run by `sor.routers.static_nb.run_router_nb` and, once per trial,
    `sor.routers.static_nb._run_batch`.

    Args:
        snaps: the snapshots of the horizon; the order arrives at the first.
        costs: fees per venue column.
        strategy: decides the child orders.
        order_size: shares to buy.
        fill_model: "strict" (what the order took at a venue and price stays taken until the
            venue's best ask rises above that price: `sor.execution.depth.TakenMemory`) or
            "naive" (every snapshot shows its full displayed size again, the task's replay).
        after: the data after the horizon for the clean-up; None: nothing after `snaps` (the
            clean-up is priced by the impact model estimated from `snaps`).
        on_fill: called as on_fill(t, shares filled per venue column, dollars paid per venue
            column with fees) at each snapshot t where something filled; for plots.

    Returns:
        The execution result.
    """
    if fill_model not in FILL_MODELS:
        raise ValueError(f"fill_model must be one of {FILL_MODELS}, but got {fill_model!r}.")
    if after is None:
        after = after_horizon(snaps, costs, len(snaps), estimate_impact(snaps))
    n_snap, n_venue = snaps.ask_sz.shape
    prices, sizes = snaps.ask_ladder()
    memory = TakenMemory(n_venue) if fill_model == "strict" else None
    filled_by_venue = np.zeros(n_venue, dtype=np.int64)
    cash = 0.0
    filled = 0
    child_orders = 0
    last_fill_ts = 0
    t = 0
    while filled < order_size:
        # Both searches only move forward; stop where the strategy acts and something can fill.
        t = strategy.next_action(t, filled)
        fillable = next_fillable(snaps, memory, t)
        while fillable != t and t < n_snap:
            t = strategy.next_action(fillable, filled)
            fillable = next_fillable(snaps, memory, t)
        if t >= n_snap:
            break
        left = shares_left(prices[t], sizes[t], memory, snaps.ask_px, t)
        sent = strategy.orders(t, order_size - filled, prices[t], left)
        fill = np.zeros(n_venue, dtype=np.int64)
        paid = np.zeros(n_venue)
        for j in np.flatnonzero(sent > 0):
            taken, spent = walk_venue(int(sent[j]), prices[t, j], left[j])
            got = int(taken.sum())
            if got == 0:
                continue
            fill[j] = got
            paid[j] = spent + got * float(costs.fee[j])
            cash += paid[j]
            if memory is not None:
                for k in np.flatnonzero(taken):
                    memory.take(int(j), float(prices[t, j, k]), int(taken[k]))
        if fill.any():
            child_orders += 1
            filled += int(fill.sum())
            filled_by_venue += fill
            last_fill_ts = int(snaps.ts[t])
            if on_fill is not None:
                on_fill(t, fill.copy(), paid)
        t += 1
    if filled > order_size:
        raise AssertionError(f"{strategy.name} overfilled: {filled} > {order_size}")
    if memory is not None:
        memory.forget_through(snaps.ask_px, n_snap - 1)
        memory.rebase()
    cleanup = clean_up(after, costs.fee, order_size - filled, memory)
    return result_of(
        snaps, order_size, cash, filled, filled_by_venue, child_orders, last_fill_ts, cleanup
    )


def shares_left(
    prices: np.ndarray,
    sizes: np.ndarray,
    memory: TakenMemory | None,
    best_ask: np.ndarray,
    t: int,
) -> np.ndarray:
    """int64[N, L]: shares an order can still take at each venue's levels at snapshot t.

    Args:
        prices, sizes: float64[N, L] and int64[N, L], the ask levels at t.
        memory: what the order took (strict fill model; forgotten here through row t), or None.
        best_ask: float64[T, N], each venue's best ask, for the memory's forgetting.
        t: the snapshot row.
    """
    if memory is None:
        return np.where(np.isfinite(prices) & (sizes > 0), sizes, 0).astype(np.int64)
    memory.forget_through(best_ask, t)
    return np.stack([memory.left(j, prices[j], sizes[j]) for j in range(len(prices))])


def result_of(
    snaps: Snapshots,
    order_size: int,
    cash: float,
    filled: int,
    by_venue: np.ndarray,
    child_orders: int,
    last_fill_ts: int,
    cleanup: Cleanup,
) -> ExecutionResult:
    """The `ExecutionResult` of a parent order from its totals (the engine's and the kernel's).

    Args:
        snaps: the snapshots, for the venue ids.
        order_size: shares of the parent order.
        cash, filled: dollars paid and shares bought within the horizon.
        by_venue: shares bought per venue column.
        child_orders, last_fill_ts: as in `ExecutionResult`.
        cleanup: what the clean-up of the unfilled shares bought and paid.
    """
    cash, filled = float(cash), int(filled)
    volume = 0
    if filled:
        through = int(np.searchsorted(snaps.ts, last_fill_ts, side="right"))
        volume = int(snaps.trade_volume[:through].sum())
    return ExecutionResult(
        total_cash=cash,
        filled_shares=filled,
        unfilled_shares=order_size - filled,
        avg_fill_px=cash / filled if filled else float("nan"),
        completed_cash=cash + cleanup.cash,
        shares_by_venue={
            int(v): int(s)
            for v, s in zip(snaps.venues.tolist(), np.asarray(by_venue).tolist(), strict=True)
            if s
        },
        child_orders=int(child_orders),
        last_fill_ts=int(last_fill_ts),
        cleanup_taken_shares=cleanup.taken_shares,
        cleanup_impact_shares=cleanup.impact_shares,
        cleanup_cash=cleanup.cash,
        market_volume=volume,
    )


def next_fillable(snaps: Snapshots, memory: TakenMemory | None, t: int) -> int:
    """First snapshot from t on where some venue has shares left to take, else len(snaps).

    Compiled twin: `sor.routers.static_nb._next_fillable`.

    Where nothing is left nothing can fill, whatever a strategy sends, so the engine skips
    those snapshots without asking the strategy: exact, and it makes waiting cheap (with the
    strict model an order that took a level sees nothing there until it is replenished at a new
    price or the price it took at is forgotten).
    """
    n_snap = len(snaps)
    prices, sizes = snaps.ask_ladder()
    if memory:
        memory.forget_through(snaps.ask_px, t - 1)
    chunk = 64
    while t < n_snap:
        end = min(t + chunk, n_snap)
        visible = np.where(np.isfinite(prices[t:end]) & (sizes[t:end] > 0), sizes[t:end], 0)
        left = visible.sum(axis=2)  # [R, N]
        if memory:
            forget = memory.first_forget_rows(snaps.ask_px, t, end)
            for (j, price, taken), gone in zip(memory.entries(), forget, strict=True):
                at_price = np.where(
                    np.abs(prices[t:end, j] - price) <= PRICE_EPS, visible[:, j], 0
                ).sum(axis=1)
                active = np.arange(t, end) < gone
                left[:, j] -= np.where(active, np.minimum(at_price, taken), 0)
        rows = np.flatnonzero((left > 0).any(axis=1))
        if len(rows):
            return t + int(rows[0])
        t, chunk = end, chunk * 4
    return n_snap
