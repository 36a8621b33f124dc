"""Many parent orders: a schedule over the window, each order scored by implementation shortfall.

One parent order on one morning is a sample of one. Here a parent order of `order.size` shares
arrives every `interval_s` seconds of the window and must be done within `horizon_s`; each is
executed on its own (no memory of what the other orders took) by the router and by every
baseline, and scored by implementation shortfall against the arrival mid:

    shortfall_bps = (completed_cash / size - arrival_mid) / arrival_mid * 1e4

(positive: paid above the mid). Shares still unfilled at the horizon are bought by the clean-up:
the visible depth of the data after the horizon first, the rest priced by the square-root impact
model (`sor.execution.cleanup`, model.md §4's completed cost). Savings of the router against a
baseline are the baseline's shortfall minus the router's, per parent order.

Multi-day data: the days are the calendar dates of `window.timezone` (`sor.data.days`). The
schedule restarts at each day's first snapshot, an order's horizon ends by its day's last
snapshot, and its clean-up takes only from its own day's data, priced by an impact model of that
day: no parent order reaches across a day or the overnight gap between two.

Walk-forward: orders arriving in the first `train_fraction` of the window are in-sample (the
sweep tunes on them); the rest are out-of-sample (reported, never tuned on). With
`schedule.train_days: k` the split is by whole days instead: the orders of the first k days
with parent orders are in-sample, those of every later day out-of-sample.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, ClassVar, Protocol

import numpy as np

from sor.data.days import NS_PER_DAY, day_labels, day_segments
from sor.data.snapshots import Snapshots
from sor.errors import ConfigError
from sor.evaluation.backtest import SINGLE_ORDER_NOTE, evaluate, make_market, run_baselines
from sor.evaluation.baselines import savings_bps
from sor.evaluation.metrics import summarize
from sor.evaluation.rules import EvaluationRules
from sor.execution.cleanup import ImpactModel, after_horizon, end_price, estimate_impact
from sor.execution.engine import ExecutionResult
from sor.execution.market import Market
from sor.routers.placement import (
    PassiveMarket,
    PlacementParams,
    make_passive_market,
)
from sor.routers.placement_nb import execute_parent_compiled
from sor.routers.static import RouterParams, reference_mid
from sor.vocabulary import ALLOCATOR_PARAMS, NS_PER_S, Allocator

__all__ = [
    "NS_PER_DAY",
    "ROUTERS",
    "ContKukanovParentRouter",
    "ParentOrder",
    "ParentOrderRouter",
    "RouterRun",
    "ScheduleMarket",
    "StaticParentRouter",
    "day_label",
    "make_schedule_market",
    "objective",
    "overlap_orders",
    "parent_orders",
    "per_day",
    "run_router",
    "schedule_report",
    "shortfall_bps",
    "single_order",
    "slice_rows",
]


@dataclass(frozen=True)
class ParentOrder:
    """One parent order of the schedule.

    Attributes:
        first: snapshot row of its arrival (the first snapshot at or after the arrival time).
        last: last snapshot row of its horizon (inclusive).
        arrival_ns: arrival time, ns since the epoch.
        arrival_mid: the mid-price at arrival (`sor.routers.static.reference_mid`), dollars.
        in_sample: True when its whole horizon lies in the training part of the window.
        day: its calendar day (`sor.data.days.day_labels`), days since 1970-01-01.
    """

    first: int
    last: int
    arrival_ns: int
    arrival_mid: float
    in_sample: bool
    day: int = 0


def parent_orders(
    snaps: Snapshots,
    mid: np.ndarray,
    *,
    interval_s: float,
    horizon_s: float,
    train_fraction: float,
    days: np.ndarray | None = None,
    train_days: int | None = None,
) -> list[ParentOrder]:
    """The schedule: an order every `interval_s` from each day's first snapshot, each with a
    full horizon within its day.

    An order is scheduled only where its whole horizon lies inside its day's data, and only
    where the arrival snapshot shows a mid-price (an ask somewhere). Orders whose horizon ends by
    the walk-forward split are in-sample, orders arriving at or after it out-of-sample; an order
    whose horizon straddles the split is not scheduled. With `train_days` the split is by whole
    days: the orders of the first `train_days` days with orders are in-sample.

    Args:
        snaps: the snapshots.
        mid: float64[T], `reference_mid(snaps)`.
        interval_s: seconds between arrivals.
        horizon_s: seconds each order has to complete.
        train_fraction: share of the window (by time) before the walk-forward split, in [0, 1];
            unused with `train_days`.
        days: int64[T], the day of each snapshot (`sor.data.days.day_labels`); None: one day.
        train_days: days in sample, at least 1 and fewer than the days with orders; None: split
            by `train_fraction`.

    Returns:
        The parent orders in arrival order.

    Raises:
        ConfigError: `train_days` leaves no day out of sample.
    """
    ts = snaps.ts
    labels = np.zeros(len(ts), dtype=np.int64) if days is None else np.asarray(days)
    start, end = int(ts[0]), int(ts[-1])
    interval, horizon = int(interval_s * NS_PER_S), int(horizon_s * NS_PER_S)
    split = start + train_fraction * (end - start)
    orders = []
    for day, a, b in day_segments(labels):
        arrival, day_end = int(ts[a]), int(ts[b - 1])
        while arrival + horizon <= day_end:
            first = int(np.searchsorted(ts, arrival, side="left"))
            last = int(np.searchsorted(ts, arrival + horizon, side="right")) - 1
            # In sample: the whole horizon before the split; out of sample: arriving after it.
            # An order straddling the split is left out, so no row is both tuned on and
            # reported on.
            in_sample = arrival + horizon <= split
            usable = train_days is not None or in_sample or arrival >= split
            if last > first and math.isfinite(mid[first]) and usable:
                orders.append(ParentOrder(first, last, arrival, float(mid[first]), in_sample, day))
            arrival += interval
    if train_days is None:
        return orders
    order_days = sorted({o.day for o in orders})
    if train_days >= len(order_days):
        raise ConfigError(
            f"schedule.train_days: {train_days} leaves no day out of sample: the parent orders "
            f"fall on {_days_text(order_days)}; set it below {len(order_days)}"
            if len(order_days) > 1
            else f"schedule.train_days: the parent orders fall on {_days_text(order_days)}, "
            "so no whole day is left out of sample: give data of more days or use "
            "schedule.train_fraction"
        )
    training = set(order_days[:train_days])
    return [dataclasses.replace(o, in_sample=o.day in training) for o in orders]


def _days_text(days: list[int]) -> str:
    """'2 days (2018-01-02, 2018-01-03)', '30 days (2018-01-02 to 2018-02-13)' or '1 day (...)'."""
    if len(days) <= 5:
        listed = ", ".join(day_label(d) for d in days)
    else:
        listed = f"{day_label(days[0])} to {day_label(days[-1])}"
    return f"{len(days)} day{'s' if len(days) != 1 else ''} ({listed})"


def slice_rows(
    snaps: Snapshots, first: int, last: int, *, trades_in_row_order: bool = False
) -> Snapshots:
    """The snapshots of rows first..last (inclusive), trade prints with them, rows renumbered;
    the ask ladders (`ask_depth_px`, `ask_depth_sz`) of those rows too, where there are any.

    Args:
        snaps: the snapshots.
        first: the first row kept.
        last: the last row kept.
        trades_in_row_order: `snaps.trade_row` is non-decreasing (as `Snapshots` built from
            data have it): the trades are found by bisection, not by a pass over them all, and
            every array but the renumbered `trade_row` is a view.
    """
    rows = slice(first, last + 1)
    values: dict[str, Any] = {}
    per_trade = [
        f.name
        for f in fields(snaps)
        if f.name.startswith("trade_") and f.name not in ("trade_volume",)
    ]
    keep: slice | np.ndarray
    if trades_in_row_order:
        lo = int(np.searchsorted(snaps.trade_row, first, side="left"))
        hi = int(np.searchsorted(snaps.trade_row, last, side="right"))
        keep = slice(lo, hi)
    else:
        keep = (snaps.trade_row >= first) & (snaps.trade_row <= last)
    for f in fields(snaps):
        value = getattr(snaps, f.name)
        if f.name in ("venues", "symbol") or value is None:  # no depth arrays: none
            values[f.name] = value
        elif f.name in per_trade:
            values[f.name] = value[keep] - first if f.name == "trade_row" else value[keep]
        else:
            values[f.name] = value[rows]
    return Snapshots(**values)


def shortfall_bps(completed_cash: float, size: int, arrival_mid: float) -> float:
    """Implementation shortfall of a buy in basis points of the arrival mid (positive: cost)."""
    return (completed_cash / size - arrival_mid) / arrival_mid * 1e4


@dataclass(frozen=True, eq=False)
class ScheduleMarket:
    """Everything a trial over a parent-order schedule shares, built once per worker.

    Attributes:
        market: the whole window with venue costs.
        passive: the same with the queue-model inputs of the Cont & Kukanov router.
        orders: the parent orders.
        parents: one `Market` per parent order, its rows only (static router and baselines).
        baselines: {name: float64[P]}: each baseline's shortfall per parent order, bps.
        baseline_fills: {name: [ExecutionResult]}: each baseline's result per parent order.
        day_impact: {day: the impact model estimated from that whole day}, the model of the
            out-of-sample orders' clean-ups on that day.
    """

    market: Market
    passive: PassiveMarket
    orders: list[ParentOrder]
    parents: list[Market]
    baselines: dict[str, np.ndarray]
    baseline_fills: dict[str, list[ExecutionResult]]
    day_impact: dict[int, ImpactModel] = field(default_factory=dict)


def single_order(snaps: Snapshots, mid: np.ndarray) -> list[ParentOrder]:
    """The task's one parent order over the whole window, in-sample (no walk-forward)."""
    return [ParentOrder(0, len(snaps) - 1, int(snaps.ts[0]), float(mid[0]), in_sample=True)]


def _split_row(snaps: Snapshots, train_fraction: float) -> int:
    """The last row at or before the walk-forward split (`parent_orders`' split time)."""
    start, end = int(snaps.ts[0]), int(snaps.ts[-1])
    split = start + train_fraction * (end - start)
    return max(int(np.searchsorted(snaps.ts, split, side="right")) - 1, 0)


def make_schedule_market(snaps: Snapshots, rules: EvaluationRules) -> ScheduleMarket:
    """Build the schedule (or the single order when `schedule.enabled` is false) over `snaps`."""
    market = make_market(snaps, rules)
    mid = reference_mid(snaps)
    sched = rules.schedule
    days = day_labels(snaps.ts, rules.timezone)
    if sched.enabled:
        orders = parent_orders(
            snaps,
            mid,
            interval_s=sched.interval_s,
            horizon_s=sched.horizon_s,
            train_fraction=sched.train_fraction,
            days=days,
            train_days=sched.train_days,
        )
        if not orders:
            span = (int(snaps.ts[-1]) - int(snaps.ts[0])) / NS_PER_S
            raise ConfigError(
                f"schedule.horizon_s: no parent order fits: the window spans {span:.1f} s, "
                f"each order needs {sched.horizon_s} s"
            )
        baseline_rules = dataclasses.replace(rules, twap_bucket_s=sched.twap_bucket_s)
        day_rows = {day: (a, b - 1) for day, a, b in day_segments(days)}
    else:
        orders = [dataclasses.replace(o, day=int(days[0])) for o in single_order(snaps, mid)]
        baseline_rules = rules
        day_rows = {int(days[0]): (0, len(snaps) - 1)}
    # Each parent order's clean-up takes from the data after its horizon on its own day, priced
    # beyond it by an impact model estimated from that day; for an order the sweep tunes on,
    # both stop at the walk-forward split, so nothing after the split reaches the objective.
    split_last = (
        _split_row(snaps, sched.train_fraction)
        if sched.enabled and sched.train_days is None
        else None
    )
    scopes: dict[tuple[int, int], tuple[Snapshots, ImpactModel, float]] = {
        (0, len(snaps) - 1): (snaps, market.after.impact, market.after.end_price)
    }

    ordered = bool((snaps.trade_row[1:] >= snaps.trade_row[:-1]).all())

    def scope(first: int, last: int) -> tuple[Snapshots, ImpactModel, float]:
        if (first, last) not in scopes:
            rows = slice_rows(snaps, first, last, trades_in_row_order=ordered)
            scopes[first, last] = (rows, estimate_impact(rows), end_price(rows, market.costs))
        return scopes[first, last]

    parents = []
    for order in orders:
        first, last = day_rows[order.day]
        if order.in_sample and split_last is not None:
            last = min(last, split_last)
        rows, impact, last_price = scope(first, last)
        after = after_horizon(rows, market.costs, order.last + 1 - first, impact, last_price)
        parents.append(
            Market(
                snaps=slice_rows(snaps, order.first, order.last, trades_in_row_order=ordered),
                costs=market.costs,
                after=after,
            )
        )
    baselines: dict[str, list[ExecutionResult]] = {}
    for parent in parents:
        for name, result in run_baselines(parent, baseline_rules).items():
            baselines.setdefault(name, []).append(result)
    size = rules.order.size
    shortfalls = {
        name: np.array(
            [
                shortfall_bps(r.completed_cash, size, o.arrival_mid)
                for r, o in zip(results, orders, strict=True)
            ]
        )
        for name, results in baselines.items()
    }
    return ScheduleMarket(
        market=market,
        passive=make_passive_market(snaps, market.costs, market.after.impact),
        orders=orders,
        parents=parents,
        baselines=shortfalls,
        baseline_fills=baselines,
        day_impact={day: scope(a, b)[1] for day, (a, b) in day_rows.items()},
    )


@dataclass
class RouterRun:
    """The router's results over a schedule: per parent order shortfall and fills."""

    shortfall: np.ndarray  #: float64[P], bps
    completed_cash: np.ndarray  #: float64[P]
    total_cash: np.ndarray  #: float64[P]
    filled: np.ndarray  #: float64[P], shares filled before any clean-up
    market_shares: np.ndarray  #: float64[N], summed over parent orders
    passive_shares: np.ndarray  #: float64[N]
    posted_shares: np.ndarray  #: float64[N]
    cleanup_taken: np.ndarray  #: float64[P], unfilled shares the clean-up took from the data
    cleanup_impact: np.ndarray  #: float64[P], unfilled shares priced by the impact model
    market_volume: np.ndarray  #: float64[P], market volume while each order was active


@dataclass
class _PerOrder:
    """What `_router_run` collects, one entry per parent order."""

    completed: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    filled: list[float] = field(default_factory=list)
    cleanup_taken: list[float] = field(default_factory=list)
    cleanup_impact: list[float] = field(default_factory=list)
    market_volume: list[float] = field(default_factory=list)

    def add(
        self,
        completed: float,
        total: float,
        filled: float,
        taken: float,
        impact: float,
        volume: float,
    ) -> None:
        self.completed.append(completed)
        self.total.append(total)
        self.filled.append(filled)
        self.cleanup_taken.append(taken)
        self.cleanup_impact.append(impact)
        self.market_volume.append(volume)


class ParentOrderRouter(Protocol):
    """A router that executes each parent order of a schedule (an entry of `ROUTERS`)."""

    #: The parameters it takes, a key of `sor.vocabulary.ALLOCATOR_PARAMS`.
    allocator: ClassVar[Allocator]

    def run(
        self, sm: ScheduleMarket, params: Mapping[str, float], rules: EvaluationRules
    ) -> RouterRun:
        """Execute every parent order of `sm` at `params`."""
        ...


class StaticParentRouter:
    """The static split at every snapshot of each parent order (compiled kernel)."""

    allocator: ClassVar[Allocator] = "static"

    def run(
        self, sm: ScheduleMarket, params: Mapping[str, float], rules: EvaluationRules
    ) -> RouterRun:
        """Execute every parent order with the static router (`evaluate`, compiled)."""
        n = sm.market.snaps.n_venues
        router = RouterParams(**{k: params[k] for k in ALLOCATOR_PARAMS[self.allocator]})
        venues = sm.market.snaps.venues.tolist()
        per_order = _PerOrder()
        market_shares = np.zeros(n)
        for part in sm.parents:
            r = evaluate(part, router, rules.order)
            per_order.add(
                r.completed_cash,
                r.total_cash,
                r.filled_shares,
                r.cleanup_taken_shares,
                r.cleanup_impact_shares,
                r.market_volume,
            )
            for pid, shares in r.shares_by_venue.items():
                market_shares[venues.index(int(pid))] += shares
        return _router_run(sm, rules, per_order, market_shares, np.zeros(n), np.zeros(n))


class ContKukanovParentRouter:
    """A market order and queue-aware limit orders every T seconds (`execute_parent`, compiled:
    `sor.routers.placement_nb.execute_parent_compiled`)."""

    allocator: ClassVar[Allocator] = "cont_kukanov"

    def run(
        self, sm: ScheduleMarket, params: Mapping[str, float], rules: EvaluationRules
    ) -> RouterRun:
        """Execute every parent order with the Cont & Kukanov router."""
        n = sm.market.snaps.n_venues
        size = rules.order.size
        placement = PlacementParams(**{k: params[k] for k in ALLOCATOR_PARAMS[self.allocator]})
        per_order = _PerOrder()
        market_shares, passive, posted = np.zeros(n), np.zeros(n), np.zeros(n)
        for order, parent in zip(sm.orders, sm.parents, strict=True):
            fill = execute_parent_compiled(
                sm.passive,
                order.first,
                order.last,
                size,
                placement,
                rules.placement,
                max_participation=rules.order.max_participation,
                temporary_impact=rules.order.temporary_impact,
                after=parent.after,
            )
            per_order.add(
                fill.completed_cash,
                fill.total_cash,
                size - fill.cleanup_shares,
                fill.cleanup_taken_shares,
                fill.cleanup_impact_shares,
                fill.market_volume,
            )
            market_shares += fill.market_shares
            passive += fill.passive_shares
            posted += fill.posted_shares
        return _router_run(sm, rules, per_order, market_shares, passive, posted)


#: The router of each `router.allocator`: a new allocator is one class here.
ROUTERS: dict[Allocator, ParentOrderRouter] = {
    router.allocator: router for router in (StaticParentRouter(), ContKukanovParentRouter())
}


def _router_run(
    sm: ScheduleMarket,
    rules: EvaluationRules,
    per_order: _PerOrder,
    market_shares: np.ndarray,
    passive: np.ndarray,
    posted: np.ndarray,
) -> RouterRun:
    completed_arr = np.array(per_order.completed)
    mids = np.array([o.arrival_mid for o in sm.orders])
    shortfall = (completed_arr / rules.order.size - mids) / mids * 1e4
    return RouterRun(
        shortfall=shortfall,
        completed_cash=completed_arr,
        total_cash=np.array(per_order.total),
        filled=np.array(per_order.filled, dtype=np.float64),
        market_shares=market_shares,
        passive_shares=passive,
        posted_shares=posted,
        cleanup_taken=np.array(per_order.cleanup_taken, dtype=np.float64),
        cleanup_impact=np.array(per_order.cleanup_impact, dtype=np.float64),
        market_volume=np.array(per_order.market_volume, dtype=np.float64),
    )


def run_router(
    sm: ScheduleMarket, params: Mapping[str, float], rules: EvaluationRules
) -> RouterRun:
    """Execute every parent order of the schedule with the configured router at `params`."""
    return ROUTERS[rules.allocator].run(sm, params, rules)


def objective(sm: ScheduleMarket, run: RouterRun) -> float:
    """What the sweep minimizes: the router's mean shortfall (bps) over in-sample parent orders."""
    in_sample = np.array([o.in_sample for o in sm.orders])
    if not in_sample.any():
        raise ConfigError(
            "schedule.train_fraction: no parent order arrives in the training part of the window"
        )
    return float(run.shortfall[in_sample].mean())


def _totals(
    total: float,
    completed: float,
    filled: float,
    size_all: int,
    by_venue: dict[str, int],
    cleanup: tuple[float, float, float],
) -> dict[str, Any]:
    """Totals over every parent order; `cleanup` is (taken shares, impact shares, market
    volume while active), each summed over the orders."""
    filled_int = int(round(filled))
    unfilled = int(size_all - filled_int)
    taken, impact, volume = cleanup
    return {
        "total_cash": float(total),
        "filled_shares": filled_int,
        "unfilled_shares": unfilled,
        "avg_fill_px": float(total / filled) if filled > 0 else None,
        "completed_cash": float(completed),
        "shares_by_venue": by_venue,
        "cleanup_taken_shares": int(round(taken)),
        "cleanup_impact_shares": int(round(impact)),
        "cleanup_share": unfilled / size_all if size_all else 0.0,
        "market_volume": int(round(volume)),
        "participation": filled / volume if volume > 0 else None,
    }


def _baseline_totals(results: list[ExecutionResult], size_all: int) -> dict[str, Any]:
    by_venue: dict[str, int] = {}
    for r in results:
        for pid, shares in r.shares_by_venue.items():
            by_venue[str(pid)] = by_venue.get(str(pid), 0) + int(shares)
    return _totals(
        sum(r.total_cash for r in results),
        sum(r.completed_cash for r in results),
        sum(r.filled_shares for r in results),
        size_all,
        by_venue,
        (
            sum(r.cleanup_taken_shares for r in results),
            sum(r.cleanup_impact_shares for r in results),
            sum(r.market_volume for r in results),
        ),
    )


def overlap_orders(rules: EvaluationRules) -> int:
    """Orders whose arrivals fall within one horizon, itself included: ceil(horizon / interval).

    1 without a schedule (one order) or when the orders do not overlap.
    """
    sched = rules.schedule
    if not sched.enabled:
        return 1
    return max(1, math.ceil(sched.horizon_s / sched.interval_s - 1e-9))


def day_label(day: int) -> str:
    """A day (days since 1970-01-01, `ParentOrder.day`) as its ISO date: 2018-01-02."""
    return datetime.fromtimestamp(day * 86_400, tz=timezone.utc).date().isoformat()


def _part(
    sm: ScheduleMarket, run: RouterRun, mask: np.ndarray, rules: EvaluationRules
) -> dict[str, Any]:
    """Shortfalls and savings over the orders in `mask`: mean, HAC error, block-bootstrap 95%.

    The statistics respect the orders' overlap and never join orders of different days
    (`ParentOrder.day`; `sor.evaluation.metrics.summarize`).
    """
    days = np.array([o.day for o in sm.orders], dtype=np.int64)[mask]
    labels, counts = np.unique(days, return_counts=True)
    overlap = overlap_orders(rules)

    def stats(values: np.ndarray) -> dict[str, object]:
        return summarize(
            values,
            overlap=overlap,
            days=days,
            resamples=rules.schedule.bootstrap_samples,
            seed=rules.seed,
        )

    return {
        "parent_orders": int(mask.sum()),
        "parent_orders_by_day": {
            day_label(int(d)): int(c) for d, c in zip(labels, counts, strict=True)
        },
        "router_shortfall_bps": stats(run.shortfall[mask]),
        "baseline_shortfall_bps": {
            name: stats(values[mask]) for name, values in sm.baselines.items()
        },
        "savings_bps": {
            name: stats(values[mask] - run.shortfall[mask]) for name, values in sm.baselines.items()
        },
        "cleanup_share": _cleanup_shares(sm, run, mask, rules.order.size),
    }


def _cleanup_shares(
    sm: ScheduleMarket, run: RouterRun, mask: np.ndarray, size: int
) -> dict[str, float | None]:
    """Share of the orders in `mask` left to the clean-up, per strategy ("optimized": the
    router); None without orders."""
    n = int(mask.sum())
    if n == 0:
        return {"optimized": None, **{name: None for name in sm.baseline_fills}}
    total = float(size * n)
    shares: dict[str, float | None] = {
        "optimized": float(size * n - run.filled[mask].sum()) / total
    }
    for name, results in sm.baseline_fills.items():
        left = sum(r.unfilled_shares for r, keep in zip(results, mask, strict=True) if keep)
        shares[name] = left / total
    return shares


def _measured_on(rules: EvaluationRules, parts: dict[str, Any]) -> tuple[str, str]:
    """Which orders `savings_vs_baselines_bps` is measured on, and a sentence saying so."""
    if not rules.schedule.enabled:
        return "in_sample", SINGLE_ORDER_NOTE
    n_out = parts["out_of_sample"]["parent_orders"]
    k = rules.schedule.train_days
    if n_out and k is not None:
        n_days = len(parts["out_of_sample"]["parent_orders_by_day"])
        return "out_of_sample", (
            f"mean over the {n_out} parent order{'s' if n_out != 1 else ''} of the {n_days} "
            f"day{'s' if n_days != 1 else ''} after the first {k} day{'s' if k != 1 else ''} "
            "(schedule.train_days), which the sweep never tunes on"
        )
    if n_out:
        return "out_of_sample", (
            f"mean over the {n_out} parent order{'s' if n_out != 1 else ''} arriving after the "
            "walk-forward split, which the sweep never tunes on"
        )
    n_in = parts["in_sample"]["parent_orders"]
    return "in_sample", (
        f"no parent order arrives after the walk-forward split: mean over the {n_in} in-sample "
        f"parent order{'s' if n_in != 1 else ''}, the same ones the sweep tunes on"
    )


def per_day(sm: ScheduleMarket, run: RouterRun) -> list[dict[str, Any]]:
    """Each day's parent orders, mean shortfall per strategy and mean savings, in bps.

    Returns:
        One entry per day with parent orders, in date order: {"day": ISO date, "sample":
        "in_sample", "out_of_sample" or "both" (a time split inside the day), "parent_orders",
        "in_sample_orders", "shortfall_bps": {"optimized" (the router) and each baseline: mean},
        "savings_bps": {baseline: mean of its shortfall minus the router's},
        "cleanup_impact_model": the day's impact model}. The means weighted by `parent_orders`
        are the means over every order.
    """
    days = np.array([o.day for o in sm.orders], dtype=np.int64)
    in_sample = np.array([o.in_sample for o in sm.orders], dtype=bool)
    entries = []
    for day in np.unique(days).tolist():
        mask = days == day
        n, n_in = int(mask.sum()), int(in_sample[mask].sum())
        router = run.shortfall[mask]
        entry: dict[str, Any] = {
            "day": day_label(day),
            "sample": "in_sample" if n_in == n else "out_of_sample" if n_in == 0 else "both",
            "parent_orders": n,
            "in_sample_orders": n_in,
            "shortfall_bps": {
                "optimized": float(router.mean()),
                **{name: float(values[mask].mean()) for name, values in sm.baselines.items()},
            },
            "savings_bps": {
                name: float((values[mask] - router).mean()) for name, values in sm.baselines.items()
            },
        }
        if day in sm.day_impact:
            entry["cleanup_impact_model"] = sm.day_impact[day].to_dict()
        entries.append(entry)
    return entries


def schedule_report(
    sm: ScheduleMarket, params: Mapping[str, float], rules: EvaluationRules
) -> dict[str, Any]:
    """The results JSON for a schedule (or the C&K router's single order) at `params`.

    The model.md §6 keys hold totals over every parent order; `savings_vs_baselines_bps` holds
    the mean savings per parent order out of sample (in sample where no order is out of sample;
    for the single order, model.md §5's formula on the completed average prices), and
    `savings_basis` says which, `measured_on` ("in_sample" or "out_of_sample") and
    `measured_on_note` in words. `in_sample` and `out_of_sample` give their orders per UTC day
    and the router's and each baseline's shortfall and the savings with Newey-West standard
    errors and circular-block-bootstrap 95% intervals (`sor.evaluation.metrics.summarize`);
    `fills` where the router's shares went, passive or taken, per venue; `per_day` each day's
    orders, mean shortfalls and savings (`per_day`).
    """
    run = run_router(sm, params, rules)
    size = rules.order.size
    size_all = size * len(sm.orders)
    venues = [str(v) for v in sm.market.snaps.venues.tolist()]
    filled_by_venue = run.market_shares + run.passive_shares
    optimized = _totals(
        run.total_cash.sum(),
        run.completed_cash.sum(),
        run.filled.sum(),
        size_all,
        {v: int(round(s)) for v, s in zip(venues, filled_by_venue, strict=True) if s > 0},
        (run.cleanup_taken.sum(), run.cleanup_impact.sum(), run.market_volume.sum()),
    )
    baselines = {
        name: _baseline_totals(results, size_all) for name, results in sm.baseline_fills.items()
    }
    in_sample = np.array([o.in_sample for o in sm.orders])
    parts = {
        "in_sample": _part(sm, run, in_sample, rules),
        "out_of_sample": _part(sm, run, ~in_sample, rules),
    }
    measured_on, measured_on_note = _measured_on(rules, parts)
    if not rules.schedule.enabled:
        opt_px = optimized["completed_cash"] / size
        savings = {
            name: savings_bps(b["completed_cash"] / size, opt_px) for name, b in baselines.items()
        }
        basis = "completed_avg_px"
    else:
        key = "out_of_sample" if (~in_sample).any() else "in_sample"
        savings = {name: s["mean"] for name, s in parts[key]["savings_bps"].items()}
        basis = f"mean_shortfall_{key}"
    filled_total = float(filled_by_venue.sum())
    report = {
        "best_parameters": {k: float(v) for k, v in params.items()},
        "optimized": optimized,
        "baselines": baselines,
        "savings_vs_baselines_bps": savings,
        "savings_basis": basis,
        "measured_on": measured_on,
        "measured_on_note": measured_on_note,
        "allocator": rules.allocator,
        **parts,
        "per_day": per_day(sm, run),
        "fills": {
            "passive_share": run.passive_shares.sum() / filled_total if filled_total else None,
            "per_venue": {
                v: {
                    "taken": int(round(m)),
                    "passive": int(round(p)),
                    "posted": int(round(q)),
                }
                for v, m, p, q in zip(
                    venues, run.market_shares, run.passive_shares, run.posted_shares, strict=True
                )
            },
        },
    }
    if rules.schedule.enabled:
        first, last = sm.orders[0], sm.orders[-1]
        report["schedule"] = {
            "parent_orders": len(sm.orders),
            "interval_s": rules.schedule.interval_s,
            "horizon_s": rules.schedule.horizon_s,
            "train_fraction": rules.schedule.train_fraction,
            "train_days": rules.schedule.train_days,
            "timezone": rules.timezone,
            "days": sorted({day_label(o.day) for o in sm.orders}),
            "overlap_orders": overlap_orders(rules),
            "first_arrival_ns": first.arrival_ns,
            "last_arrival_ns": last.arrival_ns,
            "shortfall_bps": {
                "router": run.shortfall.tolist(),
                **{name: values.tolist() for name, values in sm.baselines.items()},
            },
            "in_sample": in_sample.tolist(),
        }
    return report
