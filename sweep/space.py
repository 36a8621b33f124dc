"""The search space and sampler of a sweep, from the validated config (Optuna objects)."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution

from sor.config import Distribution, SearchConfig
from sor.vocabulary import ALLOCATOR_PARAMS, Allocator

__all__ = [
    "AskTellGridSampler",
    "IndexedRandomSampler",
    "distributions",
    "grid_points",
    "grid_size",
    "is_abandoned",
    "make_sampler",
    "to_optuna",
]


def to_optuna(dist: Distribution) -> BaseDistribution:
    """One parameter's config distribution as an Optuna distribution."""
    if dist.value is not None:
        return FloatDistribution(dist.value, dist.value)
    if dist.choices is not None:
        return CategoricalDistribution(sorted(set(dist.choices)))
    # `Distribution._consistent`: with neither `value` nor `choices`, `low` and `high` are set
    assert dist.low is not None and dist.high is not None
    return FloatDistribution(dist.low, dist.high, log=dist.log, step=dist.step)


def distributions(
    search: SearchConfig, allocator: Allocator = "static"
) -> dict[str, BaseDistribution]:
    """{parameter name: Optuna distribution} for the parameters `allocator` uses.

    lambda_over, lambda_under and theta_queue always; horizon_s (T) for "cont_kukanov" only.
    A parameter fixed to one value (`{value: x}`; by default lambda_over with the static
    allocator, `sor.config.Config._complete_space`) is a single-valued distribution: every trial
    gets that value, so it is in each trial's parameters and in `best_parameters` but never
    varies.
    """
    return {name: to_optuna(search.space[name]) for name in ALLOCATOR_PARAMS[allocator]}


def grid_size(search: SearchConfig, allocator: Allocator = "static") -> int | None:
    """Number of points of the finite grid, or None where a parameter is continuous."""
    grids = [search.space[name].grid() for name in ALLOCATOR_PARAMS[allocator]]
    if any(g is None for g in grids):
        return None
    return math.prod(len(g) for g in grids if g is not None)


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler for ask-and-tell use.

    GridSampler.after_trial calls `study.stop()` once the grid is exhausted, which raises outside
    `study.optimize`; the driver stops at the grid size itself, so that call is skipped.
    """

    def after_trial(  # noqa: D102
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


def is_abandoned(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial a dead driver asked but never told: closed as FAIL without an "error" attribute."""
    return trial.state == optuna.trial.TrialState.FAIL and "error" not in trial.user_attrs


class IndexedRandomSampler(optuna.samplers.BaseSampler):
    """Uniform random sampling in which the k-th trial's parameters depend only on (seed, k).

    Optuna's RandomSampler draws from one generator seeded once, so a resumed sweep would start
    that sequence again and repeat earlier trials. Here k counts the study's trials minus the
    abandoned ones before it, so a sweep killed and resumed proposes exactly the trials of an
    uninterrupted run.
    """

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._inner = optuna.samplers.RandomSampler(seed=seed)

    def infer_relative_search_space(  # noqa: D102
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(  # noqa: D102
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        return {}

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Seed this trial's draws from (seed, index of the trial among live trials)."""
        earlier = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
        index = trial.number - sum(is_abandoned(t) for t in earlier if t.number < trial.number)
        seed = int(np.random.SeedSequence([self._seed, index]).generate_state(1)[0])
        self._inner = optuna.samplers.RandomSampler(seed=seed)

    def sample_independent(  # noqa: D102
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._inner.sample_independent(study, trial, param_name, param_distribution)


def make_sampler(
    search: SearchConfig, allocator: Allocator = "static"
) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded."""
    seed = search.seed
    if search.sampler == "grid":
        grid = {name: search.space[name].grid() for name in ALLOCATOR_PARAMS[allocator]}
        return AskTellGridSampler(grid, seed=seed)  # type: ignore[arg-type]
    if search.sampler == "random":
        return IndexedRandomSampler(seed=seed)
    if search.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if search.sampler == "qmc":
        with warnings.catch_warnings():  # "experimental" since Optuna 3.0; we pin its use here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)


def grid_points(search: SearchConfig, allocator: Allocator = "static") -> list[dict[str, float]]:
    """Every point of a finite grid, in a fixed order (for tests and reports)."""
    names = ALLOCATOR_PARAMS[allocator]
    grids = [search.space[name].grid() or [] for name in names]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grids)]
