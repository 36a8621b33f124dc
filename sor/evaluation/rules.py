"""The configuration as the evaluation takes it: small frozen rules, built once per run.

The numeric core never reads the pydantic `Config`: `evaluation_rules` picks out what an
evaluation needs (the parent order, venue costs, baselines, router and schedule settings) into
frozen dataclasses, which are cheap to pass to Ray workers and cannot change under a trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sor.config import Config
from sor.execution.rules import OrderRules
from sor.execution.venues import VenueRules
from sor.routers.placement import PlacementSettings
from sor.vocabulary import Allocator

__all__ = ["EvaluationRules", "ScheduleRules", "evaluation_rules"]


@dataclass(frozen=True)
class ScheduleRules:
    """Parent orders over the window and the walk-forward split (docs/cont-kukanov-router.md).

    Attributes:
        enabled: many parent orders (True) or the task's one order over the window (False).
        interval_s: seconds between arrivals.
        horizon_s: seconds each parent order has to complete.
        twap_bucket_s: TWAP bucket of each parent order, seconds.
        train_fraction: share of the window, by time, the sweep tunes on (without train_days).
        train_days: or whole days: the sweep tunes on the parent orders of the first
            train_days days that have any, the later days are out of sample; None: by time.
        bootstrap_samples: resamples for the 95% intervals.
    """

    enabled: bool = False
    interval_s: float = 30.0
    horizon_s: float = 60.0
    twap_bucket_s: float = 10.0
    train_fraction: float = 0.5
    train_days: int | None = None
    bootstrap_samples: int = 2000


@dataclass(frozen=True)
class EvaluationRules:
    """Everything an evaluation reads from the configuration.

    Attributes:
        order: the parent order and the static router's execution rules.
        venues: fees and rebates.
        twap_bucket_s: TWAP bucket of the one parent order, seconds.
        allocator: which router decides.
        placement: fixed settings of the Cont & Kukanov router.
        schedule: parent orders and walk-forward.
        seed: seed of the bootstrap intervals.
        timezone: the time zone whose calendar dates are the days of the data
            (`sor.data.days.day_labels`).
    """

    order: OrderRules = field(default_factory=OrderRules)
    venues: VenueRules = field(default_factory=VenueRules)
    twap_bucket_s: float = 60.0
    allocator: Allocator = "static"
    placement: PlacementSettings = field(default_factory=PlacementSettings)
    schedule: ScheduleRules = field(default_factory=ScheduleRules)
    seed: int = 0
    timezone: str = "UTC"


def evaluation_rules(config: Config) -> EvaluationRules:
    """The `EvaluationRules` a validated configuration sets."""
    router = config.router
    return EvaluationRules(
        order=OrderRules(**config.order.model_dump()),
        venues=VenueRules(
            fee=config.venues.fee,
            rebate=config.venues.rebate,
            overrides={
                pid: {k: v for k, v in o.model_dump().items() if v is not None}
                for pid, o in config.venues.overrides.items()
            },
        ),
        twap_bucket_s=config.baselines.twap_bucket_s,
        allocator=config.router.allocator,
        placement=PlacementSettings(
            iterations=router.iterations,
            lookback_s=router.lookback_s,
            max_samples=router.max_samples,
            queue_model=router.queue_model,
            cancel_power=router.cancel_power,
            seed=config.search.seed,
        ),
        schedule=ScheduleRules(**config.schedule.model_dump()),
        seed=config.search.seed,
        timezone=config.window.timezone,
    )
