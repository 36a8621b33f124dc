"""One parent order over the window: the router and the baselines, and the results JSON.

The task's evaluation (docs/model.md, output): the static router splits the order at every
snapshot, Best-Ask, TWAP and VWAP buy the same order by their own rules, all through the same
execution engine, and the report compares their completed costs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from sor.data.snapshots import Snapshots, reference_mid
from sor.evaluation.baselines import BASELINES, savings_bps
from sor.evaluation.baselines_nb import execute_baseline
from sor.evaluation.rules import EvaluationRules
from sor.execution.engine import ExecutionResult, Strategy
from sor.execution.market import Market, build_market, run_strategy
from sor.execution.rules import OrderRules
from sor.routers.static import RouterParams, make_router
from sor.routers.static_nb import evaluate_compiled

__all__ = [
    "MIN_OUT_OF_SAMPLE_ORDERS",
    "SINGLE_ORDER_NOTE",
    "FillRecord",
    "build_report",
    "completed_avg_px",
    "evaluate",
    "evaluate_reference",
    "fill_paths",
    "make_baselines",
    "make_market",
    "make_router",
    "result_warnings",
    "run_baselines",
    "run_baselines_reference",
    "savings_label",
    "run_strategy",
]


def make_market(snaps: Snapshots, rules: EvaluationRules) -> Market:
    """`snaps` with the configured venue costs; nothing comes after them (one parent order over
    the whole window: its clean-up is priced by the impact model estimated from `snaps`)."""
    return build_market(snaps, rules.venues.costs(snaps.venues))


def make_baselines(market: Market, rules: EvaluationRules) -> list[Strategy]:
    """best_ask, twap and vwap (model.md §5) for the configured parent order."""
    return [b.for_order(market.snaps, rules.order.size, rules.twap_bucket_s) for b in BASELINES]


def evaluate(market: Market, params: RouterParams, order: OrderRules) -> ExecutionResult:
    """Execute the parent order with the router at `params`: what one sweep trial computes.

    Runs the compiled kernel (`sor.routers.static_nb`), which gives exactly `evaluate_reference`'s
    result (tests compare them field by field) a few hundred times faster.
    """
    return evaluate_compiled(market, params, order)


def evaluate_reference(market: Market, params: RouterParams, order: OrderRules) -> ExecutionResult:
    """`evaluate` in plain Python: the router strategy through the shared engine `execute`."""
    return run_strategy(market, make_router(market, params, order), order)


class FillRecord(NamedTuple):
    """What filled at one snapshot for one strategy (what `execute(on_fill=...)` reports).

    Attributes:
        ts: snapshot time, ns since the epoch.
        shares: int64[N], shares filled at each venue column at this snapshot.
        price: float64[N], average dollars per share paid at each venue column (its levels
            taken plus fee); NaN where nothing filled.
        cash: float64[N], dollars paid at each venue column, fees included.
    """

    ts: int
    shares: np.ndarray
    price: np.ndarray
    cash: np.ndarray


def fill_paths(
    market: Market, params: RouterParams, rules: EvaluationRules
) -> dict[str, list[FillRecord]]:
    """Execute the router at `params` and every baseline, recording each fill.

    Args:
        market: the snapshots with their venue costs.
        params: the router's penalties (the sweep's best parameters).
        rules: the evaluation rules (order, baselines).

    Returns:
        {strategy name: fill records in time order}; "optimized" is the router.
    """
    snaps = market.snaps
    paths: dict[str, list[FillRecord]] = {}
    strategies = [make_router(market, params, rules.order), *make_baselines(market, rules)]
    for strategy in strategies:
        records: list[FillRecord] = []

        def record(
            t: int, fill: np.ndarray, cash: np.ndarray, records: list[FillRecord] = records
        ) -> None:
            with np.errstate(invalid="ignore", divide="ignore"):
                price = np.where(fill > 0, cash / fill, np.nan)
            records.append(FillRecord(int(snaps.ts[t]), fill, price, cash))

        run_strategy(market, strategy, rules.order, on_fill=record)
        paths[strategy.name] = records
    return paths


def run_baselines(market: Market, rules: EvaluationRules) -> dict[str, ExecutionResult]:
    """Execute the parent order with best_ask, twap and vwap (model.md §5).

    Runs the compiled kernel (`sor.evaluation.baselines_nb`), which gives exactly
    `run_baselines_reference`'s results (tests compare them field by field).
    """
    return {s.name: execute_baseline(market, s, rules.order) for s in make_baselines(market, rules)}


def run_baselines_reference(market: Market, rules: EvaluationRules) -> dict[str, ExecutionResult]:
    """`run_baselines` in plain Python: each baseline through the shared engine `execute`."""
    return {s.name: run_strategy(market, s, rules.order) for s in make_baselines(market, rules)}


def completed_avg_px(result: ExecutionResult, order_size: int) -> float:
    """Dollars per share of the whole parent order, the clean-up of unfilled shares included."""
    return result.completed_cash / order_size


#: `measured_on_note` of a run with one parent order (no schedule).
SINGLE_ORDER_NOTE = (
    "one parent order over the whole window: the savings are measured on the same data the "
    "sweep tunes the parameters on"
)

#: Fewer parent orders out of sample than this gets a warning (`result_warnings`).
MIN_OUT_OF_SAMPLE_ORDERS = 30


def build_report(
    params: RouterParams,
    optimized: ExecutionResult,
    baselines: dict[str, ExecutionResult],
    order_size: int,
) -> dict[str, Any]:
    """The model.md §6 JSON: best parameters, optimized result, baselines, savings in bps.

    Savings compare the completed average price (total cost of the whole order, unfilled shares
    bought by the clean-up after the window, divided by the order size): an average over
    filled shares alone would reward a strategy for leaving the expensive part unfilled. When
    every strategy fills completely the two are the same number. One order is the data a sweep
    tunes on, so `measured_on` is "in_sample".
    """
    optimized_px = completed_avg_px(optimized, order_size)
    return {
        "best_parameters": {
            "lambda_over": params.lambda_over,
            "lambda_under": params.lambda_under,
            "theta_queue": params.theta_queue,
        },
        "optimized": optimized.to_dict(),
        "baselines": {name: result.to_dict() for name, result in baselines.items()},
        "savings_vs_baselines_bps": {
            name: savings_bps(completed_avg_px(result, order_size), optimized_px)
            for name, result in baselines.items()
        },
        "savings_basis": "completed_avg_px",
        "measured_on": "in_sample",
        "measured_on_note": SINGLE_ORDER_NOTE,
    }


def mid_moves_bps(snaps: Snapshots, results: dict[str, ExecutionResult]) -> dict[str, float]:
    """How far the market's mid moved, in bps of the mid at the order's arrival (the first
    snapshot), by each strategy's last fill: {strategy: move}, strategies without a fill left out.

    One parent order over a long window compares a router that buys at once with baselines
    that spread their buying over the window: the move of the price in between is part of the
    savings against them and says nothing about routing (`result_warnings`).
    """
    mid = reference_mid(snaps)
    finite = np.flatnonzero(np.isfinite(mid))
    if len(finite) == 0:
        return {}
    arrival = float(mid[finite[0]])
    moves = {}
    for name, result in results.items():
        if result.last_fill_ts <= 0:
            continue
        row = int(np.searchsorted(snaps.ts, result.last_fill_ts, side="right")) - 1
        seen = finite[finite <= row]
        if len(seen):
            moves[name] = (float(mid[seen[-1]]) - arrival) / arrival * 1e4
    return moves


#: A strategy leaving more than this share of its order to the clean-up gets a warning.
MATERIAL_CLEANUP_SHARE = 0.2
#: A strategy buying more than this share of the market's traded volume while it was active
#: gets a warning: the depth it took would not have stayed there at that size.
MATERIAL_PARTICIPATION = 0.25


def result_warnings(report: dict[str, Any]) -> list[str]:
    """Plain-language cautions about numbers in a report that are easy to misread.

    Looks at the report's own keys: shares left to the clean-up order, a participation in the
    market's volume no desk would run at (unless capped), savings against a baseline that are
    mostly the mid's move between the router's last fill and the baseline's (`mid_move_bps`,
    one parent order), rows repeated in a file without a sequence column (kept, so a resent
    trade counts twice), data without trade rows
    (VWAP then follows displayed size; no passive fill can happen), savings measured on few or
    no out-of-sample parent orders (or, after a sweep, on the one order it tuned on), and a
    sweep whose trials all scored the same (the parameters then changed nothing and the best
    ones are arbitrary).
    """
    notes = []
    for name, result in {"optimized": report["optimized"], **report["baselines"]}.items():
        unfilled, filled = result.get("unfilled_shares", 0), result.get("filled_shares", 0)
        if unfilled and unfilled > MATERIAL_CLEANUP_SHARE * (unfilled + filled):
            taken = result.get("cleanup_taken_shares", 0)
            impact = result.get("cleanup_impact_shares", 0)
            notes.append(
                f"{name} left {unfilled / (unfilled + filled):.0%} of its shares "
                f"({unfilled:,} of {unfilled + filled:,}) to the clean-up: {taken:,} were "
                f"bought from the data after the horizon and {impact:,} priced by the "
                "square-root impact model, so its cost and the savings against it rest on "
                "that clean-up"
            )
        participation = result.get("participation")
        if participation is not None and participation > MATERIAL_PARTICIPATION:
            notes.append(
                f"{name} bought {participation:.0%} of the market's traded volume while it was "
                "active: at that size the displayed depth it took would not have stayed there, "
                "so its prices are optimistic; cap it with order.max_participation (e.g. 0.2) "
                "and charge order.temporary_impact for numbers a desk can trust"
            )
    moves = report.get("mid_move_bps", {})
    for name, saved in report.get("savings_vs_baselines_bps", {}).items():
        move = moves.get(name, 0.0) - moves.get("optimized", 0.0)
        if abs(saved) >= 1.0 and move * saved > 0 and abs(move) >= abs(saved) / 2:
            notes.append(
                f"the mid moved {move:+.1f} bps between the router's last fill and {name}'s: "
                f"much of the {saved:+.1f} bps against {name} is that move of the market, not "
                "routing (a schedule of shorter parent orders, schedule.enabled, measures "
                "routing)"
            )
    repeated = report.get("data", {}).get("repeated_rows_kept", 0)
    if repeated:
        notes.append(
            f"{repeated:,} {'row' if repeated == 1 else 'rows'} of the data "
            f"{'repeats' if repeated == 1 else 'repeat'} an earlier row in every column read, "
            "kept: without a sequence column a resent row cannot be told from a second "
            "identical event, so a repeated trade counts twice in the traded volume (VWAP, "
            "participation); give the file's sequence column to drop resent rows"
        )
    if report.get("data", {}).get("trade_rows") == 0:
        notes.append(
            "the data has no trade rows: VWAP follows displayed ask size instead of traded "
            "volume, and limit orders cannot fill passively"
        )
    sweep = report.get("sweep", {})
    notes.extend(_sample_warnings(report))
    if sweep.get("distinct_values") == 1 and sweep.get("trials_complete", 0) > 1:
        notes.append(
            "every trial scored the same: the parameters did not change the result on this data "
            "(e.g. one venue, or cap: displayed), so best_parameters are arbitrary"
        )
    return notes


def _orders(n: int) -> str:
    return f"{n} parent order{'' if n == 1 else 's'}"


def _sample_warnings(report: dict[str, Any]) -> list[str]:
    """Savings measured on few out-of-sample orders, on none, or on the one tuned order."""
    if "schedule" in report:
        n_out = report["out_of_sample"]["parent_orders"]
        if n_out == 0:
            n_in = report["in_sample"]["parent_orders"]
            return [
                "no parent order is out of sample: the savings are the mean over the "
                f"{_orders(n_in)} the parameters are tuned on, which flatters the router "
                "(raise the data's length or lower schedule.train_fraction)"
            ]
        if n_out < MIN_OUT_OF_SAMPLE_ORDERS:
            return [
                f"only {_orders(n_out)} out of sample: the interval is wide and the mean is a "
                f"small sample (fewer than {MIN_OUT_OF_SAMPLE_ORDERS})"
            ]
        return []
    if report.get("measured_on") == "in_sample" and "sweep" in report:
        return [
            "one parent order (no schedule): the savings are measured on the data the "
            "parameters were tuned on, so they say nothing about new data (schedule.enabled "
            "scores parent orders out of sample)"
        ]
    return []


def savings_label(report: dict[str, Any]) -> str:
    """Which parent orders `savings_vs_baselines_bps` covers, in words, for tables and pages.

    E.g. "savings: out of sample, 40 parent orders" or "savings: in sample, 1 parent order
    (tuned on the same data)".
    """
    measured_on = report.get("measured_on")
    if measured_on is None:  # a report written before the label existed
        basis = str(report.get("savings_basis", ""))
        measured_on = "out_of_sample" if basis.endswith("out_of_sample") else "in_sample"
    n = report.get(measured_on, {}).get("parent_orders", 1)
    if measured_on == "out_of_sample":
        return f"savings: out of sample, {_orders(n)}"
    return f"savings: in sample, {_orders(n)} (tuned on the same data)"
