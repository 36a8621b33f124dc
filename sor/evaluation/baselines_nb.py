"""The baselines' executions compiled with Numba: Best-Ask, TWAP and VWAP in one kernel.

`sor.evaluation.backtest.run_baselines` executes every baseline once per parent order; in
Python (`sor.execution.engine.execute` with the strategies of `sor.evaluation.baselines`) that
costs most of a schedule's evaluation, in numpy's fixed costs on arrays of a few numbers. This
module runs the same loop over the snapshot arrays in one compiled call per execution, the
clean-up after the horizon included, and gives the same `ExecutionResult`, float sums included.

Same answers, by construction:

- The loop is `execute`'s: the strategy's next action and the next snapshot where something
  can fill, searched in turn until they meet (`_next_fillable`, which forgets the strict
  model's memory row by row, as `sor.execution.depth.TakenMemory.forget_through` does over
  the same rows); the participation allowance, `keep_cheapest` when it binds
  (`sor.routers.static_nb._keep_cheapest`), the walk of each venue's levels in price order, the
  temporary impact factor, and the cash summed level by level, then venue by venue in column
  order, then times the factor, as there.
- The strategies are inline: `sor.evaluation.baselines.BestAsk` (all remaining shares to the
  venue with the lowest best ask among those with shares left; ties: more shares left, then
  the lower publisher_id, as its lexsort) and the schedules of
  `sor.evaluation.baselines.Twap` and `Vwap` (the shortfall against the `due` array the Python
  strategy computed, cheapest first across venues and levels:
  `sor.execution.depth_nb._sweep_into`).
- The clean-up is `sor.execution.cleanup_nb.clean_up_row_loop` on the memory the loop left,
  forgotten through the horizon's last row, under the same `OrderLimits`.

A run that needs more remembered prices at one venue than `sor.execution.depth_nb.MEMORY_SLOTS`
is answered by the Python engine instead (same answer, slower).
"""

from __future__ import annotations

import math
import weakref
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from sor.data.snapshots import Snapshots
from sor.evaluation.baselines import BASELINES, BestAsk, Twap, Vwap
from sor.execution.cleanup import Cleanup
from sor.execution.cleanup_nb import AfterArrays, after_arrays, clean_up_row_loop
from sor.execution.depth_nb import Memory, _sweep_into, empty_memory, forget_row, level_left, take
from sor.execution.engine import ExecutionResult, Strategy, result_of, temporary_impact_charge
from sor.execution.market import Market, build_market, run_strategy
from sor.execution.rules import OrderRules
from sor.execution.venues import venue_costs
from sor.routers.static_nb import _keep_cheapest
from sor.vocabulary import FILL_MODELS

__all__ = ["compiled_baseline", "execute_baseline", "warm_up"]

#: `Totals.status` codes.
_OK = 0
_MEMORY_FULL = 1  # more prices taken at one venue than `MEMORY_SLOTS`, none forgotten

#: Strategy codes of the kernel.
_BEST_ASK = 0
_SCHEDULE = 1


class BaselineMarket(NamedTuple):
    """The snapshot arrays of one parent order's horizon as the kernel reads them.

    Python twin: none (`sor.execution.market.Market`'s snapshots and costs, as arrays).

    Attributes:
        ask_px: float64[T, N], best ask per venue, dollars per share (NaN: no ask).
        ladder_px: float64[T, N, L], every visible ask level (`Snapshots.ask_ladder`).
        ladder_sz: int64[T, N, L], shares shown at each level.
        fee: float64[N], taker fee per venue column, dollars per share.
        cum_volume: int64[T], the market's traded shares from the first snapshot through each.
        venues: int64[N], publisher_ids (the tie rules).
    """

    ask_px: np.ndarray
    ladder_px: np.ndarray
    ladder_sz: np.ndarray
    fee: np.ndarray
    cum_volume: np.ndarray
    venues: np.ndarray


class Rules(NamedTuple):
    """The parent order's execution rules as the kernel takes them.

    Python twin: none (the arguments of `sor.execution.engine.execute`).

    Attributes:
        order_size: shares to buy.
        strict: fill model "strict" (True) or "naive".
        max_participation: the participation cap, or a negative number for none.
        impact_charge: `sor.execution.engine.temporary_impact_charge` (0: none).
    """

    order_size: int
    strict: bool
    max_participation: float
    impact_charge: float


class Totals(NamedTuple):
    """What one parent order through a baseline did, clean-up included (`_execute`).

    Python twin: none (the totals `sor.execution.engine.execute` passes to `result_of`).

    Attributes:
        status: `_OK` or `_MEMORY_FULL`.
        cash: dollars paid within the horizon, fees included.
        filled: shares bought within the horizon.
        child_orders: snapshots where something filled.
        last_fill_t: snapshot index of the last fill, -1 when nothing filled.
        cleanup_taken_shares, cleanup_taken_cash, cleanup_impact_shares, cleanup_impact_cash:
            the clean-up's `sor.execution.cleanup.Cleanup`.
    """

    status: int
    cash: float
    filled: int
    child_orders: int
    last_fill_t: int
    cleanup_taken_shares: int
    cleanup_taken_cash: float
    cleanup_impact_shares: int
    cleanup_impact_cash: float


@njit(cache=True)
def _forget_through(ask_px: np.ndarray, row: int, seen: int, memory: Memory) -> int:
    """Forget what the best asks of rows seen + 1 .. row rise above; returns the new last row
    seen (rows already seen are not seen again).

    Python twin: none: `sor.execution.depth_nb.forget_row` over the rows not seen yet, which
    `TakenMemory.forget_through` counts by itself.
    """
    while seen < row:
        seen += 1
        forget_row(ask_px, seen, memory)
    return seen


@njit(cache=True)
def _next_fillable(
    market: BaselineMarket, strict: bool, memory: Memory, t: int, seen: int
) -> tuple[int, int]:
    """First snapshot from t where some venue has shares left, else T; and the last row the
    memory has seen (forgotten through the row returned, or T - 1).

    Python twin: `sor.execution.engine.next_fillable`.
    """
    n_snap, n_venue, n_level = market.ladder_sz.shape
    if strict:
        seen = _forget_through(market.ask_px, min(t, n_snap) - 1, seen, memory)
    while t < n_snap:
        if strict:
            seen = _forget_through(market.ask_px, t, seen, memory)
        for j in range(n_venue):
            for k in range(n_level):
                if (
                    level_left(
                        market.ladder_px[t, j, k], market.ladder_sz[t, j, k], strict, memory, j
                    )
                    > 0
                ):
                    return t, seen
        t += 1
    return n_snap, seen


@njit(cache=True)
def _sorts_before(a: float, b: float) -> bool:
    """numpy's sort order of floats: a before b (NaN last, NaNs equal).

    Python twin: none (the order `np.lexsort` sorts floats in).
    """
    return a < b or (np.isnan(b) and not np.isnan(a))


@njit(cache=True)
def _best_ask_venue(ask: np.ndarray, available: np.ndarray, venues: np.ndarray) -> int:
    """The venue column Best-Ask sends to: the lowest best ask among venues with shares left,
    then more shares left, then the lower publisher_id; -1 when none has shares left.

    Python twin: `sor.evaluation.baselines.BestAsk.orders`.
    """
    best = -1
    for j in range(available.shape[0]):
        if available[j] <= 0:
            continue
        if best < 0:
            best = j
            continue
        if (
            _sorts_before(ask[j], ask[best])
            or not _sorts_before(ask[best], ask[j])
            and (
                available[j] > available[best]
                or (available[j] == available[best] and venues[j] < venues[best])
            )
        ):
            best = j
    return best


@njit(cache=True)
def _execute(
    market: BaselineMarket,
    after: AfterArrays,
    kind: int,
    due: np.ndarray,
    rules: Rules,
    filled_by_venue: np.ndarray,
    memory: Memory,
) -> Totals:
    """One parent order through a baseline over all snapshots, then its clean-up.

    Python twin: `sor.execution.engine.execute` with `sor.evaluation.baselines.BestAsk`
    (kind `_BEST_ASK`) or the schedules `sor.evaluation.baselines.Twap` and
    `sor.evaluation.baselines.Vwap` (kind `_SCHEDULE`, whose `next_action` and `orders` are
    inline), `sor.execution.engine.participation_allowance` inline too.

    Args:
        market: the `BaselineMarket`.
        after: the data after the horizon, for the clean-up.
        kind: `_BEST_ASK` or `_SCHEDULE`.
        due: int64[T], the schedule's shares due by each snapshot (unused by Best-Ask).
        rules: the `Rules`.
        filled_by_venue: int64[N], zeroed and filled with shares per venue column.
        memory: an empty `Memory` for N venues (strict fill model).

    Returns:
        The `Totals`.
    """
    ladder_px, ladder_sz, fee = market.ladder_px, market.ladder_sz, market.fee
    order_size, strict = rules.order_size, rules.strict
    n_snap, n_venue, n_level = ladder_sz.shape
    available = np.zeros(n_venue, dtype=np.int64)
    left = np.zeros((n_venue, n_level), dtype=np.int64)
    takes = np.zeros((n_venue, n_level), dtype=np.int64)
    sent = np.zeros(n_venue, dtype=np.int64)
    work = np.zeros(n_venue * n_level, dtype=np.int64)
    for j in range(n_venue):
        filled_by_venue[j] = 0
    cash = 0.0
    filled = 0
    child_orders = 0
    last_fill_t = -1
    first_due = 0  # the schedule's searchsorted(due, filled, "right"), which only moves forward
    seen = -1
    t = 0
    while filled < order_size:
        # strategy.next_action and next_fillable in turn, as execute.
        if kind == _SCHEDULE:
            while first_due < due.shape[0] and due[first_due] <= filled:
                first_due += 1
            t = max(t, first_due)
        fillable, seen = _next_fillable(market, strict, memory, t, seen)
        while fillable != t and t < n_snap:
            t = fillable if kind == _BEST_ASK else max(fillable, first_due)
            fillable, seen = _next_fillable(market, strict, memory, t, seen)
        if t >= n_snap:
            break
        allowance = order_size - filled
        if rules.max_participation >= 0:
            allowance = int(math.floor(rules.max_participation * market.cum_volume[t])) - filled
            if allowance <= 0:
                t += 1
                continue
        for j in range(n_venue):
            shown = 0
            for k in range(n_level):
                left[j, k] = level_left(ladder_px[t, j, k], ladder_sz[t, j, k], strict, memory, j)
                shown += left[j, k]
            available[j] = shown
            sent[j] = 0
        # strategy.orders
        if kind == _BEST_ASK:
            best = _best_ask_venue(market.ask_px[t], available, market.venues)
            if best >= 0:
                sent[best] = order_size - filled
        else:
            done = due[due.shape[0] - 1] - (order_size - filled)
            _sweep_into(sent, due[t] - done, ladder_px[t], left, market.venues, work)
        # Fills, as execute: each venue walks its levels in price order (`walk_venue`); a cap
        # that binds keeps the cheapest shares (`keep_cheapest`).
        total = 0
        for j in range(n_venue):
            need = sent[j] if sent[j] > 0 else 0
            for k in range(n_level):
                q = min(need, left[j, k]) if left[j, k] > 0 else 0
                takes[j, k] = q
                need -= q
                total += q
        if total > allowance:
            total = _keep_cheapest(takes, allowance, ladder_px[t], left, market.venues)
        factor = 1.0 + rules.impact_charge * math.sqrt(float(total))
        any_fill = False
        for j in range(n_venue):
            got = 0
            spent = 0.0
            for k in range(n_level):
                q = takes[j, k]
                if q > 0:
                    spent += q * ladder_px[t, j, k]
                    got += q
                    if strict and not take(memory, j, ladder_px[t, j, k], q):
                        return Totals(
                            _MEMORY_FULL, cash, filled, child_orders, last_fill_t, 0, 0.0, 0, 0.0
                        )
            if got == 0:
                continue
            cash += (spent + got * fee[j]) * factor
            filled += got
            filled_by_venue[j] += got
            any_fill = True
        if any_fill:
            child_orders += 1
            last_fill_t = t
        t += 1
    if strict:
        seen = _forget_through(market.ask_px, n_snap - 1, seen, memory)
    traded = market.cum_volume[n_snap - 1] if n_snap > 0 else 0
    cleanup = clean_up_row_loop(
        after,
        fee,
        order_size - filled,
        strict,
        memory,
        rules.max_participation,
        traded,
        filled,
        rules.impact_charge,
    )
    status = _OK if cleanup.ok else _MEMORY_FULL
    return Totals(
        status,
        cash,
        filled,
        child_orders,
        last_fill_t,
        cleanup.taken_shares,
        cleanup.taken_cash,
        cleanup.impact_shares,
        cleanup.impact_cash,
    )


@njit(cache=True, nogil=True)
def run_baseline_nb(
    market: tuple[np.ndarray, ...],
    after: tuple[Any, ...],
    kind: int,
    due: np.ndarray,
    rules: tuple[int, bool, float, float],
) -> tuple[tuple[Any, ...], np.ndarray]:
    """One baseline's execution of a parent order, clean-up included: `_execute` with a memory
    of its own.

    Python twin: `sor.execution.engine.execute` with `sor.evaluation.baselines.BestAsk`,
    `sor.evaluation.baselines.Twap` or `sor.evaluation.baselines.Vwap`.

    Args:
        market, after, rules: the fields of `BaselineMarket`, `AfterArrays` and `Rules` as
            plain tuples (Numba boxes NamedTuples through Python at the call).
        kind: `_BEST_ASK` or `_SCHEDULE`.
        due: int64[T], the schedule's shares due by each snapshot (any int64 array for
            Best-Ask).

    Returns:
        (totals, shares_by_venue): the fields of `Totals` as a plain tuple and int64[N] shares
        per venue column.
    """
    m, a, r = BaselineMarket(*market), AfterArrays(*after), Rules(*rules)
    n_venue = m.ask_px.shape[1]
    by_venue = np.zeros(n_venue, dtype=np.int64)
    memory = empty_memory(n_venue)
    totals = _execute(m, a, kind, due, r, by_venue, memory)
    return totals[:], by_venue


# What the three baselines of one parent order share: the kernel's input arrays. Dropped with
# the market.
_PREPARED: weakref.WeakKeyDictionary[Market, tuple[tuple[np.ndarray, ...], tuple[Any, ...]]] = (
    weakref.WeakKeyDictionary()
)


def _arrays(market: Market) -> tuple[tuple[np.ndarray, ...], tuple[Any, ...]]:
    """The fields of the kernel's `BaselineMarket` and `AfterArrays` of `market`, cached."""
    cached = _PREPARED.get(market)
    if cached is None:
        snaps = market.snaps
        ladder_px, ladder_sz = snaps.ask_ladder()
        arrays = BaselineMarket(
            ask_px=np.ascontiguousarray(snaps.ask_px, dtype=np.float64),
            ladder_px=np.ascontiguousarray(ladder_px, dtype=np.float64),
            ladder_sz=np.ascontiguousarray(ladder_sz, dtype=np.int64),
            fee=np.ascontiguousarray(market.costs.fee, dtype=np.float64),
            cum_volume=np.cumsum(snaps.trade_volume, dtype=np.int64),
            venues=np.ascontiguousarray(snaps.venues, dtype=np.int64),
        )
        cached = tuple(arrays), tuple(after_arrays(market.after))
        _PREPARED[market] = cached
    return cached


_NO_SCHEDULE = np.zeros(1, dtype=np.int64)


def compiled_baseline(strategy: Strategy) -> tuple[int, np.ndarray] | None:
    """(kind, due) of a strategy the kernel runs, or None for any other strategy."""
    # Exact types: a subclass may decide otherwise than the kernel's inline strategies.
    if type(strategy) is BestAsk:
        return _BEST_ASK, _NO_SCHEDULE
    if isinstance(strategy, (Twap, Vwap)) and type(strategy) in (Twap, Vwap):
        return _SCHEDULE, np.ascontiguousarray(strategy.due, dtype=np.int64)
    return None


def execute_baseline(market: Market, strategy: Strategy, order: OrderRules) -> ExecutionResult:
    """`sor.execution.market.run_strategy` for a baseline, compiled: the same `ExecutionResult`.

    Best-Ask, TWAP and VWAP (`sor.evaluation.baselines`) run in the kernel (module docstring);
    any other strategy, and a run that fills a venue's compiled memory, run in Python.

    Args:
        market: the parent order's snapshots, costs and the data after its horizon.
        strategy: the baseline, built for this market and order (`Baseline.for_order`).
        order: the parent order's size and rules (fill model, participation cap, temporary
            impact).

    Returns:
        The execution result, equal field by field to the Python engine's.
    """
    compiled = compiled_baseline(strategy)
    if compiled is None or len(market.snaps) == 0:
        return run_strategy(market, strategy, order)
    if order.fill_model not in FILL_MODELS:
        raise ValueError(f"fill_model must be one of {FILL_MODELS}, but got {order.fill_model!r}.")
    kind, due = compiled
    arrays, after = _arrays(market)
    cap = order.max_participation
    rules = (
        int(order.size),
        order.fill_model == "strict",
        -1.0 if cap is None else float(cap),
        temporary_impact_charge(market.after.impact, order.temporary_impact),
    )
    raw, by_venue = run_baseline_nb(arrays, after, kind, due, rules)
    totals = Totals(*raw)
    if totals.status == _MEMORY_FULL:
        return run_strategy(market, strategy, order)
    snaps = market.snaps
    last_fill_ts = int(snaps.ts[totals.last_fill_t]) if totals.last_fill_t >= 0 else 0
    cleanup = Cleanup(
        int(totals.cleanup_taken_shares),
        float(totals.cleanup_taken_cash),
        int(totals.cleanup_impact_shares),
        float(totals.cleanup_impact_cash),
    )
    return result_of(
        snaps,
        order.size,
        totals.cash,
        totals.filled,
        by_venue,
        totals.child_orders,
        last_fill_ts,
        cleanup,
    )


def warm_up() -> None:
    """Compile the kernel, or load it from Numba's on-disk cache, on a two-snapshot market.

    The first call in a fresh checkout compiles for several seconds and writes the cache beside
    this file; calling this before work goes out to Ray workers lets them load that cache
    instead of all compiling at once (as `sor.routers.static_nb.warm_up` does for the router).
    """
    snaps = Snapshots(
        ts=np.array([0, 10**9], dtype=np.int64),
        venues=np.array([1, 2], dtype=np.int32),
        ask_px=np.array([[10.0, 10.01], [10.0, 10.01]]),
        ask_sz=np.array([[100, 100], [100, 100]], dtype=np.int64),
        bid_px=np.array([[9.99, 9.98], [9.99, 9.98]]),
        bid_sz=np.array([[100, 100], [100, 100]], dtype=np.int64),
        trade_volume=np.zeros(2, dtype=np.int64),
    )
    market = build_market(snaps, venue_costs(snaps.venues))
    for baseline in BASELINES:
        execute_baseline(market, baseline.for_order(snaps, 100, 1.0), OrderRules(size=100))
