"""Taking visible depth, compiled with Numba: `sor.execution.depth` for the kernels.

The same strict fill model as `sor.execution.depth.TakenMemory`, held in fixed arrays
(`Memory`) so that compiled loops (the static router's kernel, the clean-up, the baselines and
the Cont & Kukanov router) can share it without Python objects, and the same cheapest-first
sweep across venues and levels. Every function names its Python twin; tests compare the two
field by field.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from sor.execution.depth import PRICE_EPS

__all__ = [
    "MEMORY_SLOTS",
    "Memory",
    "empty_memory",
    "forget_row",
    "forget_rows",
    "level_left",
    "take",
    "take_cheapest_row",
    "taken_at",
]

#: Prices one venue's `Memory` can hold at once. The reference has no limit: a run that needs
#: more (a long fall in price, each level taken) is run by the reference instead, same answer.
MEMORY_SLOTS = 256
_PRICE_EPS = PRICE_EPS


class Memory(NamedTuple):
    """What the order took per venue and price: `sor.execution.depth.TakenMemory` as arrays.

    Entry i < n[j] of venue column j is (px[j, i], sz[j, i]), in the order first taken.

    Python twin: `sor.execution.depth.TakenMemory`.

    Attributes:
        px: float64[N, K], the prices taken at.
        sz: int64[N, K], shares taken at each.
        n: int64[N], entries in use per venue column.
    """

    px: np.ndarray
    sz: np.ndarray
    n: np.ndarray


@njit(cache=True)
def empty_memory(n_venues: int) -> Memory:
    """A `Memory` for `n_venues` venue columns with nothing taken.

    Python twin: none (a new `sor.execution.depth.TakenMemory` is empty).
    """
    slots = MEMORY_SLOTS
    return Memory(
        np.zeros((n_venues, slots)),
        np.zeros((n_venues, slots), dtype=np.int64),
        np.zeros(n_venues, dtype=np.int64),
    )


@njit(cache=True)
def forget_row(ask_px: np.ndarray, t: int, memory: Memory) -> None:
    """Drop the prices venue j's best ask at row t is above, for every venue.

    Python twin: `sor.execution.depth.TakenMemory.forget_through`, one row at a time.
    """
    px, sz, count = memory.px, memory.sz, memory.n
    for j in range(count.shape[0]):
        n = count[j]
        if n == 0:
            continue
        ask = ask_px[t, j]
        if not np.isfinite(ask):
            continue
        kept = 0
        for i in range(n):
            if not ask > px[j, i] + _PRICE_EPS:
                px[j, kept] = px[j, i]
                sz[j, kept] = sz[j, i]
                kept += 1
        count[j] = kept


@njit(cache=True)
def forget_rows(ask_px: np.ndarray, first: int, last: int, memory: Memory) -> None:
    """`forget_row` for rows first..last (inclusive), in one call.

    Venue by venue: a price is dropped at the first row whose finite best ask is above it, and
    a venue's rows are read only while it remembers a price, and only compared with the lowest
    one (an ask above any remembered price is above the lowest), so a row that drops nothing
    costs one comparison. The same entries, in the same order, as `forget_row` row by row.

    Python twin: `sor.execution.depth.TakenMemory.forget_through`.
    """
    px, sz, count = memory.px, memory.sz, memory.n
    for j in range(count.shape[0]):
        n = count[j]
        if n == 0:
            continue
        lowest = px[j, 0]
        for i in range(1, n):
            lowest = min(lowest, px[j, i])
        for t in range(first, last + 1):
            ask = ask_px[t, j]
            if not (np.isfinite(ask) and ask > lowest + _PRICE_EPS):
                continue
            kept = 0
            for i in range(n):
                if not ask > px[j, i] + _PRICE_EPS:
                    px[j, kept] = px[j, i]
                    sz[j, kept] = sz[j, i]
                    if kept == 0 or px[j, i] < lowest:
                        lowest = px[j, i]
                    kept += 1
            n = kept
            if n == 0:
                break
        count[j] = n


@njit(cache=True)
def taken_at(memory: Memory, j: int, price: float) -> int:
    """Shares taken at venue column j at `price`.

    Python twin: `sor.execution.depth.TakenMemory.taken_at`.
    """
    for i in range(memory.n[j]):
        if abs(memory.px[j, i] - price) <= _PRICE_EPS:
            return int(memory.sz[j, i])
    return 0


@njit(cache=True)
def take(memory: Memory, j: int, price: float, shares: int) -> bool:
    """Remember `shares` more taken at venue column j at `price`; False when the venue's memory
    is full.

    Python twin: `sor.execution.depth.TakenMemory.take`.
    """
    for i in range(memory.n[j]):
        if abs(memory.px[j, i] - price) <= _PRICE_EPS:
            memory.sz[j, i] += shares
            return True
    i = memory.n[j]
    if i >= memory.px.shape[1]:
        return False
    memory.px[j, i] = price
    memory.sz[j, i] = shares
    memory.n[j] = i + 1
    return True


@njit(cache=True)
def level_left(price: float, shown: int, strict: bool, memory: Memory, j: int) -> int:
    """Shares an order can still take at one ask level of venue column j showing `shown` at
    `price` (the naive model: the shown size).

    Python twin: `sor.execution.depth.TakenMemory.left`, one level at a time.
    """
    if not np.isfinite(price) or shown <= 0:
        return 0
    if strict:
        shown = max(shown - taken_at(memory, j, price), 0)
    return int(shown)


@njit(cache=True)
def _sweep_into(
    sent: np.ndarray,
    need: int,
    prices: np.ndarray,
    left: np.ndarray,
    venues: np.ndarray,
    order: np.ndarray,
) -> None:
    """`need` shares to the cheapest levels first across venues (`sent`, int64[N], zeroed here).

    Python twin: `sor.execution.depth.sweep_ladder` (the same order: price, then more shares
    left at the level, then the lower publisher_id, then the column-major position, as its
    stable lexsort).
    """
    n_venue, n_level = left.shape
    for j in range(n_venue):
        sent[j] = 0
    if need <= 0:
        return
    m = 0
    for j in range(n_venue):
        for k in range(n_level):
            if left[j, k] > 0:
                # insertion sort: keys (price, -left, venue), stable
                pos = m
                p, q, v = prices[j, k], left[j, k], venues[j]
                while pos > 0:
                    o = order[pos - 1]
                    oj, ok = o // n_level, o % n_level
                    op, oq, ov = prices[oj, ok], left[oj, ok], venues[oj]
                    if op < p or (op == p and (oq > q or (oq == q and ov <= v))):
                        break
                    order[pos] = o
                    pos -= 1
                order[pos] = j * n_level + k
                m += 1
    before = 0
    for i in range(m):
        o = order[i]
        j, k = o // n_level, o % n_level
        q = left[j, k]
        share = min(max(need - before, 0), q)
        sent[j] += share
        before += q


@njit(cache=True)
def take_cheapest_row(
    need: int,
    prices: np.ndarray,
    left: np.ndarray,
    venues: np.ndarray,
    fees: np.ndarray,
    strict: bool,
    memory: Memory,
    bought: np.ndarray,
    work: np.ndarray,
) -> tuple[float, bool]:
    """A marketable order for `need` shares at one snapshot, cheapest first across venues and
    levels, each venue walking its levels in price order; what it took remembered (strict).

    Python twin: `sor.execution.depth.take_cheapest`.

    Args:
        need: shares to buy.
        prices, left: float64[N, L] and int64[N, L], the ask levels and the shares left there.
        venues: int64[N] publisher_ids.
        fees: float64[N], dollars per share taken at each venue column.
        strict: remember what was taken in `memory`.
        memory: what the order took so far.
        bought: int64[N], filled with the shares bought per venue column.
        work: int64[N * L], scratch space.

    Returns:
        (dollars paid with fees, False when a venue's memory is full).
    """
    n_venue, n_level = left.shape
    _sweep_into(bought, need, prices, left, venues, work)
    cash = 0.0
    for j in range(n_venue):
        want = bought[j]
        if want <= 0:
            continue
        spent = 0.0
        got = 0
        for k in range(n_level):
            if want <= 0:
                break
            if left[j, k] > 0:
                q = min(want, left[j, k])
                spent += q * prices[j, k]
                got += q
                want -= q
                if strict and not take(memory, j, prices[j, k], q):
                    return cash, False
        bought[j] = got
        cash += spent + got * fees[j]
    return cash, True
