"""The clean-up of a parent order, compiled with Numba: `sor.execution.cleanup.clean_up`.

The same rules (docs/model.md §4): the depth after the horizon, cheapest first at every row,
by the strict fill model, held to the strategy's participation cap and temporary impact; what
the data cannot supply priced by the square-root law. Kernels call `clean_up_row_loop` with
the `sor.execution.depth_nb.Memory` their order left; Python callers use `clean_up_compiled`.
Tests compare it with the reference field by field.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from sor.execution.cleanup import AfterHorizon, Cleanup, OrderLimits, clean_up
from sor.execution.depth import TakenMemory
from sor.execution.depth_nb import Memory, empty_memory, forget_row, level_left, take_cheapest_row

__all__ = ["AfterArrays", "CleanupTotals", "after_arrays", "clean_up_compiled", "clean_up_row_loop"]


class AfterArrays(NamedTuple):
    """`sor.execution.cleanup.AfterHorizon` as the kernels read it.

    Python twin: `sor.execution.cleanup.AfterHorizon`.

    Attributes:
        prices: float64[R, N, L], the ask levels of the rows after the horizon.
        sizes: int64[R, N, L], shares at those levels.
        best_ask: float64[R, N], each venue's best ask in those rows.
        venues: int64[N] publisher_ids.
        trade_volume: int64[R], the market's traded shares at those rows.
        end_price: the best ask plus its fee at the data's last snapshot showing an ask.
        impact_y, impact_sigma, impact_volume_per_s: the square-root law's inputs.
    """

    prices: np.ndarray
    sizes: np.ndarray
    best_ask: np.ndarray
    venues: np.ndarray
    trade_volume: np.ndarray
    end_price: float
    impact_y: float
    impact_sigma: float
    impact_volume_per_s: float


class CleanupTotals(NamedTuple):
    """What a compiled clean-up bought: `sor.execution.cleanup.Cleanup` and a status.

    Python twin: `sor.execution.cleanup.Cleanup`.

    Attributes:
        taken_shares, taken_cash, impact_shares, impact_cash: as in `Cleanup`.
        ok: False when a venue's `Memory` was full (the caller runs the reference instead).
    """

    taken_shares: int
    taken_cash: float
    impact_shares: int
    impact_cash: float
    ok: bool


def after_arrays(after: AfterHorizon) -> AfterArrays:
    """The `AfterArrays` of `after`, contiguous and typed as the kernels need them."""
    return AfterArrays(
        np.ascontiguousarray(after.prices, dtype=np.float64),
        np.ascontiguousarray(after.sizes, dtype=np.int64),
        np.ascontiguousarray(after.best_ask, dtype=np.float64),
        np.ascontiguousarray(after.venues, dtype=np.int64),
        np.ascontiguousarray(after.trade_volume, dtype=np.int64),
        float(after.end_price),
        float(after.impact.y),
        float(after.impact.sigma),
        float(after.impact.volume_per_s),
    )


@njit(cache=True)
def _impact_fraction(after: AfterArrays, shares: float) -> float:
    """Python twin: `sor.execution.cleanup.ImpactModel.fraction`."""
    if shares <= 0:
        return 0.0
    if not after.impact_volume_per_s > 0:
        return math.inf
    fraction: float = (
        after.impact_y * after.impact_sigma * math.sqrt(shares / after.impact_volume_per_s)
    )
    return fraction


@njit(cache=True)
def clean_up_row_loop(
    after: AfterArrays,
    fees: np.ndarray,
    shares: int,
    strict: bool,
    memory: Memory,
    max_participation: float,
    traded: int,
    filled: int,
    impact_charge: float,
) -> CleanupTotals:
    """Buy `shares` left at the end of a horizon: the depth after it, then the impact model.

    Python twin: `sor.execution.cleanup.clean_up`.

    Args:
        after: the data after the horizon.
        fees: float64[N], dollars per share taken at each venue column.
        shares: shares left unfilled.
        strict: the strict fill model (`memory` holds what the strategy took, forgotten
            through the horizon's last row); False: naive, `memory` unused.
        memory: updated in place.
        max_participation: the cap, or a negative number for none.
        traded, filled, impact_charge: as in `sor.execution.cleanup.OrderLimits`.
    """
    if shares <= 0:
        return CleanupTotals(0, 0.0, 0, 0.0, True)
    prices, sizes = after.prices, after.sizes
    n_rows, n_venue, n_level = prices.shape
    left = np.zeros((n_venue, n_level), dtype=np.int64)
    bought = np.zeros(n_venue, dtype=np.int64)
    work = np.zeros(n_venue * n_level, dtype=np.int64)
    need, cash = shares, 0.0
    for t in range(n_rows):
        if need <= 0:
            break
        if strict:
            forget_row(after.best_ask, t, memory)
        allowed = need
        if max_participation >= 0:
            traded += after.trade_volume[t]
            done = filled + shares - need
            allowed = min(need, int(math.floor(max_participation * traded)) - done)
            if allowed <= 0:
                continue
        for j in range(n_venue):
            for k in range(n_level):
                left[j, k] = level_left(prices[t, j, k], sizes[t, j, k], strict, memory, j)
        spent, ok = take_cheapest_row(
            allowed, prices[t], left, after.venues, fees, strict, memory, bought, work
        )
        if not ok:
            return CleanupTotals(shares - need, cash, need, 0.0, False)
        got = 0
        for j in range(n_venue):
            got += bought[j]
        if impact_charge:
            spent *= 1.0 + impact_charge * math.sqrt(float(got))
        cash += spent
        need -= got
    impact_cash = 0.0
    if need > 0:
        impact_cash = need * after.end_price * (1.0 + _impact_fraction(after, need))
    return CleanupTotals(shares - need, cash, need, impact_cash, True)


def clean_up_compiled(
    after: AfterHorizon,
    fees: np.ndarray,
    shares: int,
    memory: Memory | None,
    limits: OrderLimits | None = None,
) -> Cleanup:
    """`sor.execution.cleanup.clean_up` compiled, from the `Memory` a kernel left.

    Args:
        after: the data after the horizon.
        fees: float64[N], dollars per share taken at each venue column.
        shares: shares left unfilled.
        memory: what the strategy took, forgotten through the horizon's last row (strict fill
            model; not changed here); None: the naive model.
        limits: the cap and the charge the strategy ran under (None: neither).

    Returns:
        The clean-up's shares and cash, equal to the reference's.
    """
    limits = limits or OrderLimits()
    n_venue = len(after.venues)
    strict = memory is not None
    work = empty_memory(n_venue) if memory is None else Memory(*(a.copy() for a in memory))
    cap = -1.0 if limits.max_participation is None else float(limits.max_participation)
    totals = clean_up_row_loop(
        after_arrays(after),
        np.ascontiguousarray(fees, dtype=np.float64),
        int(shares),
        strict,
        work,
        cap,
        int(limits.traded),
        int(limits.filled),
        float(limits.impact_charge),
    )
    if not totals.ok:  # a venue's memory filled up: the reference has no limit
        taken = TakenMemory.from_arrays(*memory) if memory is not None else None
        if taken is not None:
            taken.rebase()
        return clean_up(after, fees, shares, taken, limits)
    return Cleanup(
        int(totals.taken_shares),
        float(totals.taken_cash),
        int(totals.impact_shares),
        float(totals.impact_cash),
    )
