"""Taking visible depth: what is left at each venue's ask levels, and the cheapest-first sweep.

A market order takes the visible ask levels of a venue in price order, each at its own price
(docs/model.md §4). Replaying history, an order must not take the same displayed shares twice:
under the strict fill model, `TakenMemory` remembers what the order took at each venue and
price, keyed by price (not by level number, which shifts as better prices arrive), and subtracts
it from what the data shows at that price later. The memory of a price is forgotten only when
the venue's best ask rises above it: then nobody offers at that price any more, so the level the
order took from is gone. A level that flickers away and back, or that is pushed beyond the
visible levels and returns, is the same queue and hands out nothing new.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PRICE_EPS",
    "TakenMemory",
    "shares_left",
    "sweep_ladder",
    "take_cheapest",
    "walk_venue",
]

#: Prices are equal when they differ by less than this (dollars): decimal prices read as floats.
PRICE_EPS = 1e-9


class TakenMemory:
    """Shares one parent order has taken per venue column and price (strict fill model).

    Compiled twin: `sor.execution.depth_nb.Memory`.

    Args:
        n_venues: venue columns of the snapshots.
    """

    def __init__(self, n_venues: int) -> None:
        self._taken: list[dict[float, int]] = [{} for _ in range(n_venues)]
        self._seen = -1  # the last snapshot row whose best asks `forget_through` has seen

    @classmethod
    def from_arrays(cls, px: np.ndarray, sz: np.ndarray, n: np.ndarray) -> TakenMemory:
        """The memory a compiled kernel left (`sor.execution.depth_nb.Memory`): entry i < n[j]
        of venue column j is (px[j, i], sz[j, i]), in the order first taken."""
        memory = cls(len(n))
        for j in range(len(n)):
            for i in range(int(n[j])):
                memory._taken[j][float(px[j, i])] = int(sz[j, i])
        return memory

    def __bool__(self) -> bool:
        return any(self._taken)

    def entries(self) -> list[tuple[int, float, int]]:
        """(venue column, price, shares taken) of every remembered price, for tests and kernels."""
        return [(j, p, s) for j, taken in enumerate(self._taken) for p, s in taken.items()]

    def forget_through(self, best_ask: np.ndarray, row: int) -> None:
        """Forget each price a venue's best ask rose above in rows after the last seen, to `row`.

        Args:
            best_ask: float64[T, N], each venue's best ask (NaN while it shows none).
            row: the snapshot row the order is at now (inclusive).

        Compiled twin: `sor.execution.depth_nb.forget_row`, one row at a time, and
        `sor.execution.depth_nb.forget_rows`, a range of rows.
        """
        start, self._seen = self._seen + 1, max(self._seen, row)
        if row < start:
            return
        for j, taken in enumerate(self._taken):
            if not taken:
                continue
            column = best_ask[start : row + 1, j]
            column = column[np.isfinite(column)]
            if len(column) == 0:
                continue
            high = float(column.max())
            for price in [p for p in taken if high > p + PRICE_EPS]:
                del taken[price]

    def rebase(self) -> None:
        """Count rows from 0 again: the order moves on to other rows (its clean-up's)."""
        self._seen = -1

    def first_forget_rows(self, best_ask: np.ndarray, first: int, end: int) -> list[int]:
        """For each remembered entry (in `entries` order), the first row in [first, end) whose
        best ask at its venue is above its price, or `end` when none is."""
        rows = []
        for j, price, _ in self.entries():
            above = np.flatnonzero(best_ask[first:end, j] > price + PRICE_EPS)
            rows.append(first + int(above[0]) if len(above) else end)
        return rows

    def left(self, j: int, prices: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """int64[L]: shares left at venue column j's levels after what this order took there.

        Compiled twin: `sor.execution.depth_nb.level_left`, one level at a time.
        """
        out = np.where(np.isfinite(prices) & (sizes > 0), sizes, 0).astype(np.int64)
        taken = self._taken[j]
        if taken:
            for k in range(len(prices)):
                if out[k] > 0:
                    out[k] = max(out[k] - self.taken_at(j, float(prices[k])), 0)
        return out

    def taken_at(self, j: int, price: float) -> int:
        """Shares this order took at venue column j at `price` (0 when none are remembered).

        Compiled twin: `sor.execution.depth_nb.taken_at`.
        """
        for p, shares in self._taken[j].items():
            if abs(p - price) <= PRICE_EPS:
                return shares
        return 0

    def take(self, j: int, price: float, shares: int) -> None:
        """Remember `shares` more taken at venue column j at `price`.

        Compiled twin: `sor.execution.depth_nb.take`.
        """
        taken = self._taken[j]
        for p in taken:
            if abs(p - price) <= PRICE_EPS:
                taken[p] += shares
                return
        taken[price] = shares


def walk_venue(shares: int, prices: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, float]:
    """Take up to `shares` from one venue's levels in price order.

    Args:
        shares: shares to take.
        prices: float64[L], the venue's ask levels (ascending; NaN where empty).
        left: int64[L], shares left at each level.

    Returns:
        (taken int64[L] per level, dollars paid before fees).
    """
    taken = np.zeros(len(prices), dtype=np.int64)
    need, cash = int(shares), 0.0
    for k in range(len(prices)):
        if need <= 0:
            break
        if left[k] > 0:
            q = min(need, int(left[k]))
            taken[k] = q
            cash += q * float(prices[k])
            need -= q
    return taken, cash


def sweep_ladder(need: int, prices: np.ndarray, left: np.ndarray, venues: np.ndarray) -> np.ndarray:
    """Send `need` shares to the cheapest visible asks first, across venues and levels.

    Ties at one price: the level with more shares left first, then the lower publisher_id.

    Compiled twin: `sor.execution.depth_nb._sweep_into`.

    Args:
        need: shares to buy.
        prices: float64[N, L], ask levels per venue column.
        left: int64[N, L], shares left at each level.
        venues: int[N] publisher_ids.

    Returns:
        int64[N] shares per venue column, summing to min(need, left.sum()); each venue's shares
        are its cheapest levels' (what `walk_venue` takes).
    """
    n, levels = left.shape
    sent = np.zeros(n, dtype=np.int64)
    if need <= 0:
        return sent
    flat_left = left.reshape(-1)
    quoted = np.flatnonzero(flat_left > 0)
    if len(quoted) == 0:
        return sent
    flat_px = prices.reshape(-1)[quoted]
    venue_of = quoted // levels
    order = quoted[np.lexsort((venues[venue_of], -flat_left[quoted], flat_px))]
    cumulative = np.cumsum(flat_left[order])
    before = cumulative - flat_left[order]
    shares = np.clip(need - before, 0, flat_left[order])
    np.add.at(sent, order // levels, shares)
    return sent


def take_cheapest(
    need: int,
    prices: np.ndarray,
    left: np.ndarray,
    venues: np.ndarray,
    fees: np.ndarray,
    memory: TakenMemory | None,
) -> tuple[np.ndarray, float]:
    """A marketable order for `need` shares at one snapshot: `sweep_ladder`, then each venue's
    `walk_venue`, what it took remembered (strict fill model; None: naive).

    Compiled twin: `sor.execution.depth_nb.take_cheapest_row`.

    Args:
        need: shares to buy.
        prices, left: float64[N, L] and int64[N, L], the ask levels and the shares left there.
        venues: int[N] publisher_ids.
        fees: float64[N], dollars per share taken at each venue column.
        memory: what the order took so far, or None.

    Returns:
        (int64[N] shares bought per venue column, dollars paid with fees).
    """
    sent = sweep_ladder(need, prices, left, venues)
    bought = np.zeros(len(sent), dtype=np.int64)
    cash = 0.0
    for j in np.flatnonzero(sent):
        taken, spent = walk_venue(int(sent[j]), prices[j], left[j])
        got = int(taken.sum())
        bought[j] = got
        cash += spent + got * float(fees[j])
        if memory is not None:
            for k in np.flatnonzero(taken):
                memory.take(int(j), float(prices[j, k]), int(taken[k]))
    return bought, cash


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
