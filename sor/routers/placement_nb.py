"""The Cont & Kukanov router over one parent order, compiled with Numba: `execute_parent`.

`sor.routers.placement.execute_parent` is the reference: at every decision it builds the
placement problem from the data, solves it by stochastic approximation, takes the market order
from the visible depth and rests the limit orders in the queue simulation, all in Python around
compiled inner loops. `execute_parent_compiled` runs the same loop in one compiled call per
parent order, with the same numbers in the same order, so its `ParentFill` is identical field by
field (tests compare them):

- the decision rows, the outflow samples (`_sample_windows`, the window rule of
  `sor.execution.passive.outflow_samples`), the problem's inputs and the solver
  (`sor.routers.cont_kukanov._stochastic_approximation`, the same compiled function) are the
  reference's;
- the random choice of samples comes from the same generator and seed per decision
  (`settings.seed + row`), seeded and drawn in the kernel (`sor.routers.pcg64_nb`);
- the market order takes the visible depth cheapest first with the strict fill model
  (`sor.execution.depth_nb`), the limit orders fill by `sor.execution.passive.simulate_resting`
  (read at the rows where a bid moved or a print came, `simulate_resting_at`, with the same
  fills), and the clean-up is `sor.execution.cleanup_nb`.

A parent order whose market orders take at more prices of one venue than its compiled memory
holds is run by the reference instead: the same answer, slower.
"""

from __future__ import annotations

import math
import weakref
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from sor.execution.cleanup import AfterHorizon, after_horizon
from sor.execution.cleanup_nb import AfterArrays, after_arrays, clean_up_row_loop
from sor.execution.depth_nb import empty_memory, forget_rows, level_left, take_cheapest_row
from sor.execution.engine import temporary_impact_charge
from sor.execution.passive import QUEUE_MODELS, bid_events, simulate_resting_at
from sor.routers.cont_kukanov import _stochastic_approximation
from sor.routers.pcg64_nb import bounded_draws_into, seed_state_into
from sor.routers.placement import (
    ParentFill,
    PassiveMarket,
    PlacementParams,
    PlacementSettings,
    execute_parent,
)
from sor.vocabulary import NS_PER_S

__all__ = [
    "ParentArrays",
    "execute_parent_compiled",
    "parent_arrays",
    "warm_up",
]


class ParentArrays(NamedTuple):
    """The arrays of a `PassiveMarket` as the kernel reads them (`parent_arrays`).

    Python twin: `sor.routers.placement.PassiveMarket`.
    """

    ts: np.ndarray  #: int64[T]
    ask_px: np.ndarray  #: float64[T, N]
    bid_px: np.ndarray  #: float64[T, N]
    bid_sz: np.ndarray  #: int64[T, N]
    ladder_px: np.ndarray  #: float64[T, N, L]
    ladder_sz: np.ndarray  #: int64[T, N, L]
    venues: np.ndarray  #: int64[N]
    cum_volume: np.ndarray  #: int64[T + 1], traded shares before each row (leading 0)
    starts: np.ndarray  #: int64[T + 1], `sor.execution.passive.trade_starts`
    events: np.ndarray  #: int64[E], `sor.execution.passive.BidEvents.rows`
    event_px: np.ndarray  #: float64[E, N], and the other arrays of that `BidEvents`
    event_sz: np.ndarray  #: int64[E, N]
    first_print: np.ndarray  #: int64[E]
    end_print: np.ndarray  #: int64[E]
    trade_col: np.ndarray  #: int32[M]
    trade_px: np.ndarray  #: float64[M]
    trade_sz: np.ndarray  #: int64[M]
    trade_side: np.ndarray  #: int8[M]
    cumulative_outflow: np.ndarray  #: float64[T + 1, N]
    fee: np.ndarray  #: float64[N]
    rebate: np.ndarray  #: float64[N]
    ts_origin: int  #: ts[0], the time index's start (`time_index`)
    ts_width: int  #: nanoseconds a bucket of the time index spans
    ts_rows: np.ndarray  #: int64[B + 1], the first row at or after each bucket's start


def time_index(ts: np.ndarray) -> tuple[int, int, np.ndarray]:
    """(origin, width, rows): buckets of `width` ns from `ts[0]`, about one row each, and the
    first row at or after each bucket's start, so that a search of `ts` (`_row_at`) reads only
    the rows of one bucket. `ts`: int64[T], ascending, T >= 1."""
    origin, span = int(ts[0]), int(ts[-1]) - int(ts[0])
    width = max(span // len(ts), 1)
    edges = origin + width * np.arange(span // width + 2, dtype=np.int64)
    return origin, width, np.searchsorted(ts, edges, side="left").astype(np.int64)


# Built once per market (or per data after a horizon) and dropped with it; the plain tuples are
# what the kernel takes (a call with named tuples costs more to dispatch than a parent order).
_ARRAYS: weakref.WeakKeyDictionary[PassiveMarket, tuple[ParentArrays, tuple[Any, ...]]] = (
    weakref.WeakKeyDictionary()
)
_AFTER: weakref.WeakKeyDictionary[AfterHorizon, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def parent_arrays(pm: PassiveMarket) -> ParentArrays:
    """The kernel's `ParentArrays` of `pm`, built once per market."""
    cached = _ARRAYS.get(pm)
    if cached is not None:
        return cached[0]
    snaps, costs = pm.snaps, pm.costs
    ladder_px, ladder_sz = snaps.ask_ladder()
    cum_volume = np.zeros(len(snaps) + 1, dtype=np.int64)
    np.cumsum(snaps.trade_volume, out=cum_volume[1:])
    arrays = ParentArrays(
        np.ascontiguousarray(snaps.ts, dtype=np.int64),
        np.ascontiguousarray(snaps.ask_px, dtype=np.float64),
        np.ascontiguousarray(snaps.bid_px, dtype=np.float64),
        np.ascontiguousarray(snaps.bid_sz, dtype=np.int64),
        np.ascontiguousarray(ladder_px, dtype=np.float64),
        np.ascontiguousarray(ladder_sz, dtype=np.int64),
        np.ascontiguousarray(snaps.venues, dtype=np.int64),
        cum_volume,
        np.ascontiguousarray(pm.starts, dtype=np.int64),
        *bid_events(snaps, np.ascontiguousarray(pm.starts, dtype=np.int64)),
        np.ascontiguousarray(snaps.trade_col),
        np.ascontiguousarray(snaps.trade_px, dtype=np.float64),
        np.ascontiguousarray(snaps.trade_sz, dtype=np.int64),
        np.ascontiguousarray(snaps.trade_side),
        np.ascontiguousarray(pm.cumulative_outflow, dtype=np.float64),
        np.ascontiguousarray(costs.fee, dtype=np.float64),
        np.ascontiguousarray(costs.rebate, dtype=np.float64),
        *time_index(np.ascontiguousarray(snaps.ts, dtype=np.int64)),
    )
    _ARRAYS[pm] = (arrays, tuple(arrays))
    return arrays


def _after_tuple(after: AfterHorizon) -> tuple[Any, ...]:
    """`after_arrays(after)` as a plain tuple, built once per `after`."""
    cached = _AFTER.get(after)
    if cached is None:
        cached = _AFTER[after] = tuple(after_arrays(after))
    return cached


class _Rules(NamedTuple):
    """The parent order and the router's settings, as scalars."""

    first: int
    last: int
    size: int
    lambda_over: float
    lambda_under: float
    theta: float
    horizon_ns: int
    lookback_ns: int
    max_samples: int
    model: int
    power: float
    max_participation: float  # negative: none
    charge: float


class _Fill(NamedTuple):
    """What the kernel returns; the arrays of `ParentFill` are filled in place."""

    ok: bool
    cash: float
    remaining: int
    decisions: int
    last_fill_row: int
    cleanup_taken_shares: int
    cleanup_taken_cash: float
    cleanup_impact_shares: int
    cleanup_impact_cash: float


@njit(cache=True)
def _sample_windows(
    ts: np.ndarray, decision_ts: int, horizon_ns: int, lookback_ns: int, max_samples: int
) -> tuple[int, int]:
    """(count, stride) of the outflow windows before a decision; count 0 when none fits.

    Python twin: `sor.execution.passive.outflow_samples` (its window rule).
    """
    earliest = max(ts[0], decision_ts - lookback_ns)
    span = decision_ts - horizon_ns - earliest
    if span < 0 or horizon_ns <= 0:
        return 0, 0
    count = min(max_samples, span // max(horizon_ns // 4, 1) + 1)
    stride = span // max(count - 1, 1) if count > 1 else 0
    return count, stride


@njit(cache=True)
def _row_at(a: ParentArrays, value: int) -> int:
    """The first row whose time is at or after `value`: `np.searchsorted(a.ts, value, "left")`,
    searching only the rows of the time index's bucket that holds `value`.

    Python twin: none (`numpy.searchsorted` over the whole of `a.ts`).
    """
    if value <= a.ts_origin:
        return 0
    bucket = (value - a.ts_origin) // a.ts_width
    if bucket >= a.ts_rows.shape[0] - 1:
        return int(a.ts.shape[0])
    lo, hi = a.ts_rows[bucket], a.ts_rows[bucket + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if a.ts[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return int(lo)


@njit(cache=True, nogil=True)
def _execute_parent_nb(
    arrays: tuple[Any, ...],
    rules: tuple[Any, ...],
    seed: int,
    iterations: int,
    after: tuple[Any, ...],
    market_shares: np.ndarray,
    passive_shares: np.ndarray,
    posted: np.ndarray,
) -> _Fill:
    """`_parent_nb` called with plain tuples (`ParentArrays`, `_Rules`, `AfterArrays` fields).

    Python twin: `sor.routers.placement.execute_parent`.
    """
    return _parent_nb(
        ParentArrays(*arrays),
        _Rules(*rules),
        seed,
        iterations,
        AfterArrays(*after),
        market_shares,
        passive_shares,
        posted,
    )


@njit(cache=True, nogil=True)
def _parent_nb(
    a: ParentArrays,
    rules: _Rules,
    seed: int,
    iterations: int,
    after: AfterArrays,
    market_shares: np.ndarray,
    passive_shares: np.ndarray,
    posted: np.ndarray,
) -> _Fill:
    """One parent order with the Cont & Kukanov router; the per-venue arrays filled in place.

    Python twin: `sor.routers.placement.execute_parent`.
    """
    n = a.ask_px.shape[1]
    n_level = a.ladder_px.shape[2]
    first, last, size = rules.first, rules.last, rules.size
    memory = empty_memory(n)
    seen = first - 1  # nothing is remembered before the arrival: no row before it to forget
    left = np.zeros((n, n_level), dtype=np.int64)
    bought = np.zeros(n, dtype=np.int64)
    work = np.zeros(n * n_level, dtype=np.int64)
    limits = np.zeros(n, dtype=np.int64)
    posts = np.zeros(n, dtype=np.int64)
    price = np.empty(n)
    ahead = np.empty(n)
    resting = np.empty(n)
    fills = np.empty(n)
    draws = np.empty(iterations, dtype=np.int64)
    state = np.empty(4, dtype=np.uint64)
    remaining, cash, decisions = size, 0.0, 0
    last_fill_row = -1
    row = first
    while remaining > 0 and row <= last:
        decisions += 1
        next_row = _row_at(a, a.ts[row] + rules.horizon_ns)
        next_row = max(next_row, row + 1)
        for j in range(n):
            limits[j] = 0
        # the placement problem (`_problem`): needs an ask, a bid and an outflow sample
        m = remaining
        best = -1
        top_bid = -np.inf
        k_count = 0
        for j in range(n):
            ask = a.ask_px[row, j]
            if np.isfinite(ask) and (best < 0 or ask < a.ask_px[row, best]):
                best = j
            bid = a.bid_px[row, j]
            if np.isfinite(bid) and a.bid_sz[row, j] > 0:
                posts[k_count] = j
                k_count += 1
                if bid > top_bid:
                    top_bid = bid
        count, stride = 0, 0
        if best >= 0 and k_count > 0:
            count, stride = _sample_windows(
                a.ts, a.ts[row], rules.horizon_ns, rules.lookback_ns, rules.max_samples
            )
        if count > 0:
            half_spread = max((a.ask_px[row, best] - top_bid) / 2, 0.0)
            outflows = np.empty((count, k_count))
            decision_ts = a.ts[row]
            for i in range(count):
                end = decision_ts - stride * i
                hi = _row_at(a, end)
                lo = _row_at(a, end - rules.horizon_ns)
                for k in range(k_count):
                    j = posts[k]
                    outflows[i, k] = a.cumulative_outflow[hi, j] - a.cumulative_outflow[lo, j]
            rebates = np.empty(k_count)
            queues = np.empty(k_count)
            for k in range(k_count):
                rebates[k] = a.rebate[posts[k]]
                queues[k] = float(a.bid_sz[row, posts[k]])
            shares = float(remaining)
            start = np.zeros(k_count + 1)
            start[0] = shares / 2
            for k in range(k_count):
                start[k + 1] = shares / (2 * k_count)
            x = np.empty(k_count + 1)
            seed_state_into(seed + row, state)
            bounded_draws_into(state, count, draws)
            _stochastic_approximation(
                shares,
                float(half_spread),
                float(a.fee[best]),
                rebates,
                queues,
                outflows,
                draws,
                rules.lambda_under,
                rules.lambda_over,
                rules.theta,
                start,
                x,
            )
            # `_round_placement`: limits rounded, the market order raised to cover the rest
            total_limits = 0
            for k in range(k_count):
                lim = np.rint(min(max(x[k + 1], 0.0), float(remaining)))
                limits[posts[k]] = int(lim)
                total_limits += int(lim)
            m = int(min(max(np.rint(x[0]), 0.0), float(remaining)))
            if m + total_limits < remaining:
                m = remaining - total_limits
            for k in range(k_count):
                j = posts[k]
                limits[j] = min(limits[j], remaining - m)
        if rules.max_participation >= 0:
            traded = a.cum_volume[row + 1] - a.cum_volume[first]
            allowance = int(math.floor(rules.max_participation * traded)) - (size - remaining)
            m = min(m, max(allowance, 0))
        if m > 0:
            forget_rows(a.ask_px, seen + 1, row, memory)
            seen = max(seen, row)
            for j in range(n):
                for k in range(n_level):
                    left[j, k] = level_left(
                        a.ladder_px[row, j, k], a.ladder_sz[row, j, k], True, memory, j
                    )
            spent, ok = take_cheapest_row(
                m, a.ladder_px[row], left, a.venues, a.fee, True, memory, bought, work
            )
            if not ok:
                return _Fill(False, 0.0, 0, 0, 0, 0, 0.0, 0, 0.0)
            got = 0
            for j in range(n):
                got += bought[j]
            spent *= 1.0 + rules.charge * math.sqrt(float(got))
            for j in range(n):
                market_shares[j] += bought[j]
            cash += spent
            remaining -= got
            if got > 0:
                last_fill_row = row
        end = min(next_row, last)
        any_limit = False
        for j in range(n):
            if limits[j] > 0:
                any_limit = True
        if remaining > 0 and any_limit and end > row:
            for j in range(n):
                price[j] = a.bid_px[row, j] if limits[j] > 0 else np.nan
                ahead[j] = float(a.bid_sz[row, j])
                resting[j] = float(limits[j])
                fills[j] = 0.0
            simulate_resting_at(
                a.bid_px,
                a.bid_sz,
                a.starts,
                a.trade_col,
                a.trade_px,
                a.trade_sz,
                a.trade_side,
                a.events,
                a.event_px,
                a.event_sz,
                a.first_print,
                a.end_print,
                row + 1,
                end,
                price,
                ahead,
                resting,
                float(remaining),
                rules.model,
                rules.power,
                fills,
            )
            passive_cash = 0.0
            filled = 0.0
            any_fill = False
            for j in range(n):
                posted[j] += limits[j]
                if fills[j] > 0:
                    passive_cash += fills[j] * (a.bid_px[row, j] - a.rebate[j])
                    any_fill = True
                passive_shares[j] += fills[j]
                filled += fills[j]
            cash += passive_cash
            remaining -= int(np.rint(filled))
            if any_fill:
                last_fill_row = max(last_fill_row, end)
        row = next_row
    if remaining > 0:  # the clean-up reads the memory only when shares are left
        forget_rows(a.ask_px, seen + 1, last, memory)
    traded = a.cum_volume[last + 1] - a.cum_volume[first]
    cleanup = clean_up_row_loop(
        after,
        a.fee,
        remaining,
        True,
        memory,
        rules.max_participation,
        traded,
        size - remaining,
        rules.charge,
    )
    if not cleanup.ok:
        return _Fill(False, 0.0, 0, 0, 0, 0, 0.0, 0, 0.0)
    return _Fill(
        True,
        cash,
        remaining,
        decisions,
        last_fill_row,
        cleanup.taken_shares,
        cleanup.taken_cash,
        cleanup.impact_shares,
        cleanup.impact_cash,
    )


def execute_parent_compiled(
    pm: PassiveMarket,
    first: int,
    last: int,
    size: int,
    params: PlacementParams,
    settings: PlacementSettings,
    *,
    max_participation: float | None = None,
    temporary_impact: float | None = None,
    after: AfterHorizon | None = None,
) -> ParentFill:
    """`sor.routers.placement.execute_parent`, compiled: the same `ParentFill` (module docstring).

    Args:
        pm: the market with its queue-model inputs.
        first, last: the parent order's snapshot rows (inclusive).
        size: shares to buy.
        params: lambda_over, lambda_under, theta_queue and the horizon T.
        settings: the router's fixed settings.
        max_participation: None, or the participation cap of the market orders.
        temporary_impact: None, or Y of the temporary impact on the market orders' cash.
        after: the data the clean-up may take from (None: every row after `last`).
    """
    if not params.horizon_s > 0:
        raise ValueError(f"horizon_s must be > 0, got {params.horizon_s}")
    if settings.iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {settings.iterations}")
    snaps = pm.snaps
    n = snaps.n_venues
    if after is None:
        after = after_horizon(snaps, pm.costs, last + 1, pm.impact)
    a = parent_arrays(pm)
    rules = (
        int(first),
        int(last),
        int(size),
        float(params.lambda_over),
        float(params.lambda_under),
        float(params.theta_queue),
        int(params.horizon_s * NS_PER_S),
        int(settings.lookback_s * NS_PER_S),
        int(settings.max_samples),
        QUEUE_MODELS[settings.queue_model],
        float(settings.cancel_power),
        -1.0 if max_participation is None else float(max_participation),
        temporary_impact_charge(after.impact, temporary_impact),
    )
    market_shares, passive_shares, posted = np.zeros(n), np.zeros(n), np.zeros(n)
    fill = _execute_parent_nb(
        _ARRAYS[pm][1],
        rules,
        int(settings.seed),
        settings.iterations,
        _after_tuple(after),
        market_shares,
        passive_shares,
        posted,
    )
    if not fill.ok:  # a venue's compiled memory filled up: the reference has no limit
        return execute_parent(
            pm,
            first,
            last,
            size,
            params,
            settings,
            max_participation=max_participation,
            temporary_impact=temporary_impact,
            after=after,
        )
    cleanup_cash = fill.cleanup_taken_cash + fill.cleanup_impact_cash
    volume = 0
    if fill.last_fill_row >= first:
        volume = int(a.cum_volume[fill.last_fill_row + 1] - a.cum_volume[first])
    return ParentFill(
        total_cash=float(fill.cash),
        market_shares=market_shares,
        passive_shares=passive_shares,
        cleanup_shares=int(fill.remaining),
        completed_cash=float(fill.cash) + float(cleanup_cash),
        cleanup_taken_shares=int(fill.cleanup_taken_shares),
        cleanup_impact_shares=int(fill.cleanup_impact_shares),
        market_volume=volume,
        decisions=int(fill.decisions),
        posted_shares=posted,
    )


def warm_up() -> None:
    """Compile the parent-order kernel, or load it from Numba's on-disk cache, on a tiny market.

    Runs `execute_parent_compiled` (and with it the solver, the queue simulation, the depth and
    clean-up kernels of `sor.execution.cleanup_nb`) once on six snapshots of two venues, so that
    the first real parent order pays no compilation: `sweep.driver` calls it in the driver and in
    every Ray worker before the sweep is timed (as `sor.routers.static_nb.warm_up`).
    """
    from sor.data.snapshots import Snapshots
    from sor.execution.venues import venue_costs
    from sor.routers.placement import make_passive_market

    t = 6
    snaps = Snapshots(
        ts=np.arange(t, dtype=np.int64) * NS_PER_S,
        venues=np.array([1, 2], dtype=np.int32),
        ask_px=np.tile([10.01, 10.02], (t, 1)),
        ask_sz=np.full((t, 2), 100, dtype=np.int64),
        bid_px=np.tile([10.0, 9.99], (t, 1)),
        bid_sz=np.full((t, 2), 100, dtype=np.int64),
        trade_volume=np.array([0, 50, 0, 50, 0, 0], dtype=np.int64),
        trade_row=np.array([1, 3], dtype=np.int64),
        trade_col=np.array([0, 1], dtype=np.int32),
        trade_px=np.array([10.0, 9.99]),
        trade_sz=np.array([50, 50], dtype=np.int64),
        trade_side=np.array([-1, -1], dtype=np.int8),
    )
    market = make_passive_market(snaps, venue_costs(snaps.venues))
    params = PlacementParams(lambda_over=0.01, lambda_under=0.01, theta_queue=0.01, horizon_s=1.0)
    settings = PlacementSettings(iterations=10, lookback_s=2.0, max_samples=4)
    execute_parent_compiled(market, 2, 4, 500, params, settings)
