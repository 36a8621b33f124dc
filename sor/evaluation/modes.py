"""How a trial is scored: one evaluation interface, chosen once from the configuration.

An evaluation is prepared once from the snapshots and the configuration (the markets, the
baselines, everything a trial shares), then evaluates many parameter sets and builds the report
of one. `prepare` picks the first mode in `EVALUATIONS` that applies; a new evaluation mode is
one more class there, and a new allocator one more entry of `sor.evaluation.schedule.ROUTERS`.

Example:
    >>> evaluation = prepare(snaps, config)  # doctest: +SKIP
    >>> evaluation.evaluate({"lambda_over": 0.4, "lambda_under": 0.6, "theta_queue": 0.3})
    TrialOutcome(value=..., result={...})
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from sor.config import Config
from sor.data.days import day_labels, forget_previous_days
from sor.data.snapshots import Snapshots
from sor.evaluation.backtest import (
    FillRecord,
    build_report,
    evaluate,
    fill_paths,
    make_market,
    mid_moves_bps,
    run_baselines,
)
from sor.evaluation.rules import EvaluationRules, evaluation_rules
from sor.evaluation.schedule import (
    make_schedule_market,
    objective,
    run_router,
    schedule_report,
)
from sor.execution.venues import venue_economics
from sor.routers.static import RouterParams
from sor.vocabulary import ALLOCATOR_PARAMS

__all__ = [
    "EVALUATIONS",
    "Evaluation",
    "ParentOrders",
    "SingleOrder",
    "TrialOutcome",
    "each_day_from_an_empty_book",
    "prepare",
]


@dataclass(frozen=True)
class TrialOutcome:
    """What one trial gives the sweep.

    Attributes:
        value: what the sweep minimizes (`Evaluation.objective` names it).
        result: JSON-ready details; at least `filled_shares` and `avg_fill_px`.
    """

    value: float
    result: dict[str, Any]


class Evaluation(abc.ABC):
    """One way of scoring a router over snapshots: prepared once, evaluated many times.

    Args:
        snaps: the snapshots.
        rules: the configuration's evaluation rules (`sor.evaluation.rules.evaluation_rules`).
    """

    #: Name of `TrialOutcome.value` in the results JSON.
    objective: ClassVar[str]

    def __init__(self, snaps: Snapshots, rules: EvaluationRules) -> None:
        self.snaps = snaps
        self.rules = rules

    @classmethod
    @abc.abstractmethod
    def applies(cls, rules: EvaluationRules) -> bool:
        """Whether this mode scores runs with these rules."""

    @property
    def params(self) -> tuple[str, ...]:
        """The parameter names a trial sets for the configured allocator."""
        return ALLOCATOR_PARAMS[self.rules.allocator]

    @abc.abstractmethod
    def evaluate(self, params: Mapping[str, float]) -> TrialOutcome:
        """Score the router at `params` (what one sweep trial computes)."""

    @abc.abstractmethod
    def report(self, params: Mapping[str, float]) -> dict[str, Any]:
        """The results JSON (without the sweep, data and config sections) at `params`."""

    def fill_paths(self, params: Mapping[str, float]) -> dict[str, list[FillRecord]] | None:
        """Each strategy's fills at `params`, for plots; None where the mode has no single path.

        Returns:
            {strategy name: fill records in time order} ("optimized" is the router), or None
            (many parent orders: no one fill path to show).
        """
        return None


class SingleOrder(Evaluation):
    """The task's evaluation: the static router over one parent order, by its completed cash."""

    objective = "completed_cash"

    def __init__(self, snaps: Snapshots, rules: EvaluationRules) -> None:
        super().__init__(snaps, rules)
        self.market = make_market(snaps, rules)

    @classmethod
    def applies(cls, rules: EvaluationRules) -> bool:
        """The static router over the whole window."""
        return rules.allocator == "static" and not rules.schedule.enabled

    def _router_params(self, params: Mapping[str, float]) -> RouterParams:
        return RouterParams(**{k: params[k] for k in self.params})

    def evaluate(self, params: Mapping[str, float]) -> TrialOutcome:
        """Completed cash of the parent order with the router at `params` (compiled kernel)."""
        executed = evaluate(self.market, self._router_params(params), self.rules.order)
        return TrialOutcome(executed.completed_cash, executed.to_dict())

    def report(self, params: Mapping[str, float]) -> dict[str, Any]:
        """Router and baselines over the one order, savings on completed average prices."""
        router = self._router_params(params)
        optimized = evaluate(self.market, router, self.rules.order)
        baselines = run_baselines(self.market, self.rules)
        report = build_report(router, optimized, baselines, self.rules.order.size)
        report["mid_move_bps"] = mid_moves_bps(
            self.market.snaps, {"optimized": optimized, **baselines}
        )
        report["cleanup_impact_model"] = self.market.after.impact.to_dict()
        report["venue_economics"] = venue_economics(self.snaps.venues, self.market.costs)
        return report

    def fill_paths(self, params: Mapping[str, float]) -> dict[str, list[FillRecord]]:
        """The router's (Python reference) and each baseline's fills at `params`."""
        return fill_paths(self.market, self._router_params(params), self.rules)


class ParentOrders(Evaluation):
    """Parent orders scored by implementation shortfall: a schedule, or the C&K router.

    The value is the router's mean shortfall over the in-sample parent orders, in bps.
    """

    objective = "mean_in_sample_shortfall_bps"

    def __init__(self, snaps: Snapshots, rules: EvaluationRules) -> None:
        super().__init__(snaps, rules)
        self.schedule = make_schedule_market(snaps, rules)

    @classmethod
    def applies(cls, rules: EvaluationRules) -> bool:
        """A schedule of parent orders, or the Cont & Kukanov router (even on one order)."""
        return rules.schedule.enabled or rules.allocator == "cont_kukanov"

    def evaluate(self, params: Mapping[str, float]) -> TrialOutcome:
        """Mean in-sample shortfall of the router at `params`, bps."""
        run = run_router(self.schedule, params, self.rules)
        filled = float(run.filled.sum())
        result = {
            "filled_shares": int(round(filled)),
            "avg_fill_px": float(run.total_cash.sum() / filled) if filled else None,
        }
        return TrialOutcome(objective(self.schedule, run), result)

    def report(self, params: Mapping[str, float]) -> dict[str, Any]:
        """Totals over every parent order and the walk-forward statistics."""
        report = schedule_report(self.schedule, params, self.rules)
        report["cleanup_impact_model"] = self.schedule.passive.impact.to_dict()
        report["venue_economics"] = venue_economics(self.snaps.venues, self.schedule.market.costs)
        return report


#: The evaluation modes, most specific first: `prepare` takes the first that applies.
EVALUATIONS: tuple[type[Evaluation], ...] = (ParentOrders, SingleOrder)


def prepare(snaps: Snapshots, config: Config | EvaluationRules) -> Evaluation:
    """The evaluation the configuration asks for, prepared over `snaps`.

    Args:
        snaps: the snapshots.
        config: the validated configuration, or its evaluation rules.

    Returns:
        The first mode of `EVALUATIONS` that applies, built once for many trials. On data of
        several days (`window.timezone`'s dates) each day starts from an empty book
        (`sor.data.days.forget_previous_days`).
    """
    rules = evaluation_rules(config) if isinstance(config, Config) else config
    snaps = each_day_from_an_empty_book(snaps, rules)
    for mode in EVALUATIONS:
        if mode.applies(rules):
            return mode(snaps, rules)
    raise AssertionError(f"no evaluation mode applies to {rules}")  # SingleOrder's complement


def each_day_from_an_empty_book(
    snaps: Snapshots, config: Config | EvaluationRules, *, in_place: bool = False
) -> Snapshots:
    """`snaps` with the quotes carried over from a previous day hidden, as `prepare` reads them
    (`sor.data.days.forget_previous_days`, days in `window.timezone`; `in_place` as there).

    A sweep calls it once in the driver before sharing the snapshots: each worker's `prepare`
    then finds nothing to hide and shares the arrays instead of copying them.
    """
    rules = evaluation_rules(config) if isinstance(config, Config) else config
    return forget_previous_days(snaps, day_labels(snaps.ts, rules.timezone), in_place=in_place)
