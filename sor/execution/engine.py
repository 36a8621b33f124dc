"""Market-taking execution of one parent order over snapshots (model.md §4).

A strategy says, at the snapshots where it acts, how many shares to send to each venue; venue j
fills min(sent_j, available_j) at its ask and the rest is cancelled and rolls over. The engine is
shared by the router and every baseline so that they are measured by the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from sor.data.snapshots import Snapshots
from sor.execution.cleanup import (
    AfterHorizon,
    Cleanup,
    ImpactModel,
    OrderLimits,
    after_horizon,
    clean_up,
    estimate_impact,
)
from sor.execution.depth import PRICE_EPS, TakenMemory, shares_left, walk_venue
from sor.execution.venues import VenueCosts
from sor.vocabulary import FILL_MODELS

__all__ = [
    "ExecutionResult",
    "Strategy",
    "keep_cheapest",
    "next_fillable",
    "participation_allowance",
    "temporary_impact_charge",
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
    max_participation: float | None = None,
    temporary_impact: float | None = None,
    on_fill: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> ExecutionResult:
    """Run one parent order of `order_size` shares through `strategy` over all snapshots.

    At each snapshot where the strategy acts and something can fill, it sends shares to venues;
    venue j fills min(sent_j, left_j), walking its visible ask levels in price order, each at its
    own price plus the venue's fee; the rest is cancelled and rolls over (model.md §4). Shares
    unfilled at the last snapshot go to the clean-up (`sor.execution.cleanup.clean_up`).

    Compiled twin, with `sor.routers.static.Router` as the strategy: `sor.routers.static_nb._route`,
    run by `sor.routers.static_nb.run_router_nb` and, once per trial,
    `sor.routers.static_nb._run_batch`; with the baselines of `sor.evaluation.baselines` as the
    strategy: `sor.evaluation.baselines_nb._execute`, run by
    `sor.evaluation.baselines_nb.run_baseline_nb`.

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
        max_participation: None, or the most the order may have filled at any snapshot as a
            share of the market's traded volume since its arrival (`participation_allowance`);
            when it binds, the cheapest of the shares the strategy sent are kept.
        temporary_impact: None, or Y of a temporary impact charged on taken shares: the cash
            of a snapshot's fills times Y * sigma * sqrt(q / v), q the shares taken there, sigma
            and v the impact model's estimates (`temporary_impact_charge`).
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
    cum_volume = np.cumsum(snaps.trade_volume) if max_participation is not None else None
    charge = temporary_impact_charge(after.impact, temporary_impact)
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
        allowance = order_size - filled
        if cum_volume is not None and max_participation is not None:
            allowance = participation_allowance(max_participation, int(cum_volume[t]), filled)
            if allowance <= 0:
                t += 1
                continue
        left = shares_left(prices[t], sizes[t], memory, snaps.ask_px, t)
        sent = strategy.orders(t, order_size - filled, prices[t], left)
        takes = np.zeros(left.shape, dtype=np.int64)
        for j in np.flatnonzero(sent > 0):
            takes[j] = walk_venue(int(sent[j]), prices[t, j], left[j])[0]
        if takes.sum() > allowance:
            takes = keep_cheapest(takes, allowance, prices[t], left, snaps.venues)
        fill = takes.sum(axis=1)
        paid = np.zeros(n_venue)
        factor = 1.0 + charge * math.sqrt(float(fill.sum()))
        for j in np.flatnonzero(fill):
            spent = 0.0
            for k in range(len(takes[j])):
                if takes[j, k]:
                    spent += int(takes[j, k]) * float(prices[t, j, k])
                    if memory is not None:
                        memory.take(int(j), float(prices[t, j, k]), int(takes[j, k]))
            paid[j] = (spent + int(fill[j]) * float(costs.fee[j])) * factor
            cash += paid[j]
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
    limits = OrderLimits(max_participation, int(snaps.trade_volume.sum()), filled, charge)
    cleanup = clean_up(after, costs.fee, order_size - filled, memory, limits)
    return result_of(
        snaps, order_size, cash, filled, filled_by_venue, child_orders, last_fill_ts, cleanup
    )


def participation_allowance(max_participation: float, cum_volume: int, filled: int) -> int:
    """Shares an order may still fill under a participation cap: floor(cap * the market's
    traded volume since its arrival) minus what it filled.

    Compiled twin: inline in `sor.routers.static_nb._route` and
    `sor.evaluation.baselines_nb._execute`.
    """
    return int(math.floor(max_participation * cum_volume)) - filled


def temporary_impact_charge(impact: ImpactModel, y: float | None) -> float:
    """Y * sigma / sqrt(v) of the temporary impact: a snapshot's fills of q shares cost their
    cash times (1 + this * sqrt(q)); 0 without a charge (or without volume to scale it by)."""
    if not y or not impact.volume_per_s > 0:
        return 0.0
    return float(y) * impact.sigma / math.sqrt(impact.volume_per_s)


def keep_cheapest(
    takes: np.ndarray, allowance: int, prices: np.ndarray, left: np.ndarray, venues: np.ndarray
) -> np.ndarray:
    """int64[N, L]: the cheapest `allowance` shares of `takes`, by level price, then more shares
    left at the level, then the lower publisher_id (`sweep_ladder`'s order).

    Compiled twin: `sor.routers.static_nb._keep_cheapest`.
    """
    n, levels = takes.shape
    flat = takes.reshape(-1)
    chosen = np.flatnonzero(flat > 0)
    order = chosen[
        np.lexsort(
            (venues[chosen // levels], -left.reshape(-1)[chosen], prices.reshape(-1)[chosen])
        )
    ]
    before = np.cumsum(flat[order]) - flat[order]
    kept = np.zeros(n * levels, dtype=np.int64)
    kept[order] = np.clip(max(allowance, 0) - before, 0, flat[order])
    return kept.reshape(n, levels)


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

    Compiled twin: `sor.routers.static_nb._next_fillable`, and
    `sor.evaluation.baselines_nb._next_fillable` (which also counts the rows the memory has seen).

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
                # Each level at that price offers what it shows less what was taken there, as
                # `TakenMemory.left` counts it.
                match = np.abs(prices[t:end, j] - price) <= PRICE_EPS
                gone_here = np.where(match, np.minimum(visible[:, j], taken), 0).sum(axis=1)
                active = np.arange(t, end) < gone
                left[:, j] -= np.where(active, gone_here, 0)
        rows = np.flatnonzero((left > 0).any(axis=1))
        if len(rows):
            return t + int(rows[0])
        if memory:
            # The order passes these rows: what their best asks forget stays forgotten.
            memory.forget_through(snaps.ask_px, end - 1)
        t, chunk = end, chunk * 4
    return n_snap
