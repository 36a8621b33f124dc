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
from sor.execution.venues import VenueCosts
from sor.vocabulary import FILL_MODELS

__all__ = [
    "ExecutionResult",
    "Strategy",
    "ask_levels",
    "cleanup_price",
    "execute",
    "result_of",
    "sweep_cheapest",
]


class Strategy(Protocol):
    """Decides child orders; the engine fills them."""

    name: str

    def next_action(self, t: int, filled: int) -> int:
        """First snapshot index >= t at which to act given the shares filled; len(snaps): never."""
        ...

    def orders(self, t: int, remaining: int, available: np.ndarray) -> np.ndarray:
        """Shares to send to each venue column at snapshot t (int64[N]).

        Args:
            t: snapshot index.
            remaining: shares of the parent order still to buy.
            available: int64[N], shares each venue would fill now at its ask (0 where no ask).
        """
        ...


@dataclass
class ExecutionResult:
    """Outcome of one parent order for one strategy (model.md §4).

    Attributes:
        total_cash: dollars paid for filled shares, fees included.
        filled_shares: shares bought.
        unfilled_shares: shares still to buy at the end of the window.
        avg_fill_px: total_cash / filled_shares (NaN when nothing filled).
        completed_cash: total_cash plus a clean-up market order for the unfilled shares at the last
            snapshot's best ask plus that venue's fee: what the sweep minimizes.
        shares_by_venue: publisher_id -> shares filled there.
        child_orders: snapshots at which shares were sent.
        last_fill_ts: ns of the last fill (0 when none).
    """

    total_cash: float
    filled_shares: int
    unfilled_shares: int
    avg_fill_px: float
    completed_cash: float
    shares_by_venue: dict[int, int]
    child_orders: int
    last_fill_ts: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        out = asdict(self)
        out["shares_by_venue"] = {str(k): v for k, v in self.shares_by_venue.items()}
        if not np.isfinite(self.avg_fill_px):
            out["avg_fill_px"] = None
        return out


def ask_levels(snaps: Snapshots) -> np.ndarray:
    """int64[T, N]: a number that changes exactly when venue j's ask price changes.

    Used by the strict fill model: what an order took at a price level stays taken until the
    venue's ask price moves.
    """
    px = np.nan_to_num(snaps.ask_px, nan=-1.0)
    changed = np.zeros(px.shape, dtype=np.int64)
    changed[1:] = px[1:] != px[:-1]
    return np.cumsum(changed, axis=0)


def cleanup_price(snaps: Snapshots, costs: VenueCosts, last: int | None = None) -> float:
    """Dollars per share of a clean-up market order at the last snapshot that shows an ask.

    Args:
        snaps: the snapshots.
        costs: fees per venue.
        last: look at rows up to this one (inclusive) only; None: all rows.
    """
    asks = snaps.ask_px if last is None else snaps.ask_px[: last + 1]
    with_ask = np.flatnonzero(np.isfinite(asks).any(axis=1))
    if len(with_ask) == 0:
        return float("nan")
    row = with_ask[-1]
    j = int(np.nanargmin(snaps.ask_px[row]))
    return float(snaps.ask_px[row, j] + costs.fee[j])


def execute(
    snaps: Snapshots,
    costs: VenueCosts,
    strategy: Strategy,
    order_size: int,
    *,
    fill_model: str = "strict",
    levels: np.ndarray | None = None,
    on_fill: Callable[[int, np.ndarray], None] | None = None,
) -> ExecutionResult:
    """Run one parent order of `order_size` shares through `strategy` over all snapshots.

    Compiled twin, with `sor.routers.static.Router` as the strategy: `sor.routers.static_nb._route`,
    run by `sor.routers.static_nb.run_router_nb` and, once per trial,
    `sor.routers.static_nb._run_batch`.

    Args:
        snaps: the snapshots; the order arrives at the first.
        costs: fees per venue column.
        strategy: decides the child orders.
        order_size: shares to buy.
        fill_model: "strict" (shares taken at a price level stay taken until the ask moves) or
            "naive" (every snapshot shows its full displayed size again, the task's replay).
        levels: precomputed `ask_levels(snaps)`, to share across many runs.
        on_fill: called as on_fill(t, shares filled per venue column) at each snapshot t where
            something filled (fills are at ask_px[t] plus the venue's fee); for plots.

    Returns:
        The execution result.
    """
    if fill_model not in FILL_MODELS:
        raise ValueError(f"fill_model must be one of {FILL_MODELS}, but got {fill_model!r}.")
    n_snap, n_venue = snaps.ask_sz.shape
    strict = fill_model == "strict"
    if strict and levels is None:
        levels = ask_levels(snaps)
    taken = np.zeros(n_venue, dtype=np.int64)
    taken_level = np.full(n_venue, -1, dtype=np.int64)
    filled_by_venue = np.zeros(n_venue, dtype=np.int64)
    cash = 0.0
    filled = 0
    child_orders = 0
    last_fill_ts = 0
    t = 0
    while filled < order_size:
        # Both searches only move forward; stop where the strategy acts and something can fill.
        t = strategy.next_action(t, filled)
        fillable = _next_fillable(snaps.ask_sz, levels, taken, taken_level, t, strict)
        while fillable != t and t < n_snap:
            t = strategy.next_action(fillable, filled)
            fillable = _next_fillable(snaps.ask_sz, levels, taken, taken_level, t, strict)
        if t >= n_snap:
            break
        available = snaps.ask_sz[t].copy()
        if strict:
            assert levels is not None  # computed above for the strict model
            same_level = levels[t] == taken_level
            available[same_level] = np.maximum(available[same_level] - taken[same_level], 0)
        sent = strategy.orders(t, order_size - filled, available)
        fill = np.minimum(sent, available)
        if fill.any():
            child_orders += 1
            j = np.flatnonzero(fill)
            cash += float(np.dot(fill[j], snaps.ask_px[t, j] + costs.fee[j]))
            filled += int(fill.sum())
            filled_by_venue += fill
            last_fill_ts = int(snaps.ts[t])
            if on_fill is not None:
                on_fill(t, fill.copy())
            if strict:
                assert levels is not None
                reset = levels[t, j] != taken_level[j]
                taken[j] = np.where(reset, 0, taken[j]) + fill[j]
                taken_level[j] = levels[t, j]
        t += 1
    if filled > order_size:
        raise AssertionError(f"{strategy.name} overfilled: {filled} > {order_size}")
    return result_of(
        snaps, costs, order_size, cash, filled, filled_by_venue, child_orders, last_fill_ts
    )


def result_of(
    snaps: Snapshots,
    costs: VenueCosts,
    order_size: int,
    cash: float,
    filled: int,
    by_venue: np.ndarray,
    child_orders: int,
    last_fill_ts: int,
    cleanup: float | None = None,
) -> ExecutionResult:
    """The `ExecutionResult` of a parent order from its totals (the engine's and the kernel's).

    Args:
        snaps, costs: the market, for venue ids and the clean-up price.
        order_size: shares of the parent order.
        cash, filled: dollars paid and shares bought.
        by_venue: shares bought per venue column.
        child_orders, last_fill_ts: as in `ExecutionResult`.
        cleanup: the clean-up price per share if already known (`cleanup_price` otherwise).
    """
    cash, filled = float(cash), int(filled)
    unfilled = order_size - filled
    cleanup_cash = 0.0
    if unfilled:
        if cleanup is None:
            cleanup = cleanup_price(snaps, costs)
        cleanup_cash = unfilled * cleanup
    return ExecutionResult(
        total_cash=cash,
        filled_shares=filled,
        unfilled_shares=unfilled,
        avg_fill_px=cash / filled if filled else float("nan"),
        completed_cash=cash + cleanup_cash,
        shares_by_venue={
            int(v): int(s)
            for v, s in zip(snaps.venues.tolist(), np.asarray(by_venue).tolist(), strict=True)
            if s
        },
        child_orders=int(child_orders),
        last_fill_ts=int(last_fill_ts),
    )


def _next_fillable(
    ask_sz: np.ndarray,
    levels: np.ndarray | None,
    taken: np.ndarray,
    taken_level: np.ndarray,
    t: int,
    strict: bool,
) -> int:
    """First snapshot from t on where some venue has shares available, else len(ask_sz).

    Compiled twin: `sor.routers.static_nb._next_fillable`.

    Where nothing is available nothing can fill, whatever a strategy sends, so the engine skips
    those snapshots without asking the strategy: exact, and it makes waiting cheap (with the
    strict model an order that took a level sees nothing there until the ask moves).
    """
    n_snap = len(ask_sz)
    chunk = 64
    while t < n_snap:
        end = min(t + chunk, n_snap)
        sizes = ask_sz[t:end]
        if strict:
            assert levels is not None  # the strict model always passes its levels
            sizes = np.where(levels[t:end] == taken_level, sizes - taken, sizes)
        rows = np.flatnonzero((sizes > 0).any(axis=1))
        if len(rows):
            return t + int(rows[0])
        t, chunk = end, chunk * 4
    return n_snap


def sweep_cheapest(
    need: int, ask_px: np.ndarray, available: np.ndarray, venues: np.ndarray
) -> np.ndarray:
    """Send `need` shares to the cheapest asks first (model.md §5).

    Ties: the larger displayed size first, then the lower publisher_id.

    Returns:
        int64[N] shares per venue, summing to min(need, available.sum()).
    """
    sent = np.zeros(len(available), dtype=np.int64)
    quoted = np.flatnonzero(available > 0)
    if need <= 0 or len(quoted) == 0:
        return sent
    order = quoted[np.lexsort((venues[quoted], -available[quoted], ask_px[quoted]))]
    cumulative = np.cumsum(available[order])
    before = cumulative - available[order]
    sent[order] = np.clip(need - before, 0, available[order])
    return sent
