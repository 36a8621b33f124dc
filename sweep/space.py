"""The search space and sampler of a sweep, from the validated config (Optuna objects)."""

from __future__ import annotations

import itertools
import math

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from sor.config import PARAM_NAMES, Distribution, SearchConfig


def to_optuna(dist: Distribution) -> BaseDistribution:
    """One parameter's config distribution as an Optuna distribution."""
    if dist.value is not None:
        return FloatDistribution(dist.value, dist.value)
    if dist.choices is not None:
        return CategoricalDistribution(sorted(set(dist.choices)))
    return FloatDistribution(dist.low, dist.high, log=dist.log, step=dist.step)


def distributions(search: SearchConfig) -> dict[str, BaseDistribution]:
    """{parameter name: Optuna distribution} for lambda_over, lambda_under, theta_queue."""
    return {name: to_optuna(search.space[name]) for name in PARAM_NAMES}


def grid_size(search: SearchConfig) -> int | None:
    """Number of points of the finite grid, or None where a parameter is continuous."""
    grids = [search.space[name].grid() for name in PARAM_NAMES]
    if any(g is None for g in grids):
        return None
    return math.prod(len(g) for g in grids)  # type: ignore[arg-type]


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler for ask-and-tell use.

    GridSampler.after_trial calls `study.stop()` once the grid is exhausted, which raises outside
    `study.optimize`; the driver stops at the grid size itself, so that call is skipped.
    """

    def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
        return None


def make_sampler(search: SearchConfig) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded."""
    seed = search.seed
    if search.sampler == "grid":
        grid = {name: search.space[name].grid() for name in PARAM_NAMES}
        return AskTellGridSampler(grid, seed=seed)  # type: ignore[arg-type]
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if search.sampler == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)


def grid_points(search: SearchConfig) -> list[dict[str, float]]:
    """Every point of a finite grid, in a fixed order (for tests and reports)."""
    grids = [search.space[name].grid() or [] for name in PARAM_NAMES]
    return [dict(zip(PARAM_NAMES, values)) for values in itertools.product(*grids)]
