"""Router and baselines over one snapshot set, and the results JSON (model.md §4-§6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sor.config import Config, OrderConfig
from sor.data.snapshots import Snapshots
from sor.evaluation.baselines import BestAsk, Twap, Vwap, savings_bps
from sor.execution.engine import ExecutionResult, Strategy, ask_levels, execute
from sor.execution.venues import VenueCosts, venue_costs
from sor.routers.static import Router, RouterParams


@dataclass(frozen=True, eq=False)
class Market:
    """Snapshots with what every evaluation over them shares: fees and the ask-level ids."""

    snaps: Snapshots
    costs: VenueCosts
    levels: np.ndarray  #: `ask_levels(snaps)`, for the strict fill model


def make_market(snaps: Snapshots, config: Config) -> Market:
    """Attach the configured venue costs and the precomputed ask levels to `snaps`."""
    overrides = {
        pid: {k: v for k, v in o.model_dump().items() if v is not None}
        for pid, o in config.venues.overrides.items()
    }
    costs = venue_costs(
        snaps.venues, fee=config.venues.fee, rebate=config.venues.rebate, overrides=overrides
    )
    return Market(snaps=snaps, costs=costs, levels=ask_levels(snaps))


def make_router(market: Market, params: RouterParams, order: OrderConfig) -> Router:
    """The router at `params` with the configured execution rules."""
    return Router(
        market.snaps,
        market.costs,
        params,
        step=order.step,
        cap=order.cap,
        cost_basis=order.cost_basis,
        child_sizing=order.child_sizing,
    )


def make_baselines(market: Market, config: Config) -> list[Strategy]:
    """best_ask, twap and vwap (model.md §5) for the configured parent order."""
    snaps, size = market.snaps, config.order.size
    return [BestAsk(snaps), Twap(snaps, size, config.baselines.twap_bucket_s), Vwap(snaps, size)]


def run_strategy(
    market: Market,
    strategy: Strategy,
    order: OrderConfig,
    on_fill: Callable[[int, np.ndarray], None] | None = None,
) -> ExecutionResult:
    """Execute the configured parent order with `strategy` (see `sor.execution.engine.execute`)."""
    return execute(
        market.snaps,
        market.costs,
        strategy,
        order.size,
        fill_model=order.fill_model,
        levels=market.levels,
        on_fill=on_fill,
    )


def evaluate(market: Market, params: RouterParams, order: OrderConfig) -> ExecutionResult:
    """Execute the parent order with the router at `params`: what one sweep trial computes.

    Runs the compiled kernel (`sor.routers.static_nb`), which gives exactly `evaluate_reference`'s
    result (tests compare them field by field) a few hundred times faster.
    """
    from sor.routers.static_nb import evaluate_compiled

    return evaluate_compiled(market, params, order)


def evaluate_reference(market: Market, params: RouterParams, order: OrderConfig) -> ExecutionResult:
    """`evaluate` in plain Python: the router strategy through the shared engine `execute`."""
    return run_strategy(market, make_router(market, params, order), order)


def run_baselines(market: Market, config: Config) -> dict[str, ExecutionResult]:
    """Execute the parent order with best_ask, twap and vwap (model.md §5)."""
    return {s.name: run_strategy(market, s, config.order) for s in make_baselines(market, config)}


def completed_avg_px(result: ExecutionResult, order_size: int) -> float:
    """Dollars per share of the whole parent order, the clean-up of unfilled shares included."""
    return result.completed_cash / order_size


def build_report(
    params: RouterParams,
    optimized: ExecutionResult,
    baselines: dict[str, ExecutionResult],
    order_size: int,
) -> dict:
    """The model.md §6 JSON: best parameters, optimized result, baselines, savings in bps.

    Savings compare the completed average price (total cost of the whole order, unfilled shares
    bought by a clean-up order at the window's end, divided by the order size): an average over
    filled shares alone would reward a strategy for leaving the expensive part unfilled. When
    every strategy fills completely the two are the same number.
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
    }


def result_warnings(report: dict) -> list[str]:
    """Plain-language cautions about numbers in a report that are easy to misread.

    Looks at the report's own keys: shares left to the clean-up order, data without trade rows
    (VWAP then follows displayed size; no passive fill can happen), and a sweep whose trials all
    scored the same (the parameters then changed nothing and the best ones are arbitrary).
    """
    notes = []
    for name, result in {"optimized": report["optimized"], **report["baselines"]}.items():
        unfilled, filled = result.get("unfilled_shares", 0), result.get("filled_shares", 0)
        if unfilled and unfilled * 2 > unfilled + filled:
            notes.append(
                f"{name}: {unfilled:,} of {unfilled + filled:,} shares were not filled in the "
                "window and are priced by the clean-up order at the last snapshot's best ask"
            )
    if report.get("data", {}).get("trade_rows") == 0:
        notes.append(
            "the data has no trade rows: VWAP follows displayed ask size instead of traded "
            "volume, and limit orders cannot fill passively"
        )
    sweep = report.get("sweep", {})
    if sweep.get("distinct_values") == 1 and sweep.get("trials_complete", 0) > 1:
        notes.append(
            "every trial scored the same: the parameters did not change the result on this data "
            "(e.g. one venue, or cap: displayed), so best_parameters are arbitrary"
        )
    return notes
