"""Search space, samplers and report helpers that need no Ray."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from sor.config import load_config
from sweep.report import redact_url, trials_csv_path
from sweep.space import IndexedRandomSampler, distributions, grid_points, grid_size, make_sampler


def test_distributions_follow_the_config():
    search = load_config(
        None,
        {
            "search.space": {
                "lambda_over": {"value": 0.01},
                "lambda_under": {"low": 0.001, "high": 0.1, "log": True},
                "theta_queue": {"choices": [0.02, 0.0, 0.02]},
            }
        },
    ).search
    dists = distributions(search)
    assert dists["lambda_over"] == FloatDistribution(0.01, 0.01)
    assert dists["lambda_under"] == FloatDistribution(0.001, 0.1, log=True)
    assert dists["theta_queue"] == CategoricalDistribution([0.0, 0.02])
    assert grid_size(search) is None


def test_grid_points_enumerate_the_product():
    search = load_config(
        None,
        {
            "search.sampler": "grid",
            "search.space": {
                "lambda_over": {"value": 0.0},
                "lambda_under": {"low": 0.0, "high": 0.02, "step": 0.01},
                "theta_queue": {"choices": [0.0, 0.5]},
            },
        },
    ).search
    points = grid_points(search)
    assert grid_size(search) == len(points) == 6
    assert {p["lambda_under"] for p in points} == {0.0, 0.01, 0.02}


@pytest.mark.parametrize("sampler", ["grid", "random", "tpe", "cmaes", "qmc"])
def test_every_sampler_proposes_inside_the_space(sampler):
    space = {
        "lambda_over": {"low": 0.0, "high": 0.1, "step": 0.05},
        "lambda_under": {"choices": [0.01, 0.02]},
        "theta_queue": {"value": 0.03},
    }
    search = load_config(None, {"search.sampler": sampler, "search.space": space}).search
    study = optuna.create_study(sampler=make_sampler(search))
    dists = distributions(search)
    for _ in range(6):
        trial = study.ask(dists)
        assert trial.params["lambda_over"] in (0.0, 0.05, 0.1)
        assert trial.params["lambda_under"] in (0.01, 0.02)
        assert trial.params["theta_queue"] == 0.03
        study.tell(trial, sum(trial.params.values()))


def test_indexed_random_sampler_depends_only_on_seed_and_index():
    dists = {"x": FloatDistribution(0.0, 1.0)}

    def draws(seed, n):
        study = optuna.create_study(sampler=IndexedRandomSampler(seed))
        out = []
        for _ in range(n):
            trial = study.ask(dists)
            out.append(trial.params["x"])
            study.tell(trial, 0.0)
        return out

    assert draws(1, 5) == draws(1, 5)
    assert draws(1, 5)[:3] == draws(1, 3)
    assert draws(1, 5) != draws(2, 5)


def test_storage_passwords_are_masked():
    assert redact_url("postgresql://quant:s3cret@db:5432/optuna") == (
        "postgresql://quant:***@db:5432/optuna"
    )
    assert redact_url("sqlite:///sweep.db") == "sqlite:///sweep.db"
    assert redact_url(None) is None


def test_trials_csv_sits_beside_the_json():
    assert str(trials_csv_path("out/run1.json")) == "out/run1_trials.csv"


def _ask_tell(search, allocator, n=12, sampler=None, study=None):
    """Trials as the driver asks them (`study.ask(distributions(...))`); returns their params."""
    study = study or optuna.create_study(sampler=sampler or make_sampler(search, allocator))
    dists = distributions(search, allocator)
    out = []
    for _ in range(n):
        trial = study.ask(dists)
        out.append(dict(trial.params))
        study.tell(trial, sum(v for k, v in trial.params.items() if k != "lambda_over"))
    return out


@pytest.mark.parametrize("sampler", ["grid", "random", "tpe", "cmaes", "qmc"])
def test_the_static_default_space_never_varies_lambda_over(sampler):
    overrides = {"search.sampler": sampler}
    if sampler == "grid":
        overrides["search.space"] = {
            "lambda_under": {"low": 0.0, "high": 0.1, "step": 0.05},
            "theta_queue": {"choices": [0.0, 0.05]},
        }
    config = load_config(None, overrides)
    search = config.search
    dists = distributions(search, "static")
    assert dists["lambda_over"].single() and not dists["lambda_under"].single()
    trials = _ask_tell(search, "static", n=6 if sampler == "grid" else 12)
    assert {t["lambda_over"] for t in trials} == {config.params.lambda_over}
    assert len({t["lambda_under"] for t in trials}) > 1
    if sampler == "grid":
        assert grid_size(search, "static") == 6  # lambda_over adds no grid points
        assert {p["lambda_over"] for p in grid_points(search, "static")} == {
            config.params.lambda_over
        }


def test_lambda_over_is_searched_with_cont_kukanov_or_when_the_user_space_sets_it():
    ck = load_config(None, {"router.allocator": "cont_kukanov", "search.sampler": "random"})
    assert len({t["lambda_over"] for t in _ask_tell(ck.search, "cont_kukanov")}) > 1
    user = load_config(
        None, {"search.sampler": "random", "search.space.lambda_over": {"low": 0.0, "high": 0.1}}
    )
    assert len({t["lambda_over"] for t in _ask_tell(user.search, "static")}) > 1


def test_a_stored_study_that_searched_lambda_over_resumes_with_it_fixed(tmp_path):
    """A study stored before lambda_over was fixed for the static allocator resumes: the new
    trials take the fixed value, the stored ones keep theirs, and nothing is refused."""
    from sweep.driver import open_study

    storage = {"search.storage": str(tmp_path / "sweep.log"), "search.sampler": "random"}
    old = load_config(None, {**storage, "search.space.lambda_over": {"low": 0.0, "high": 0.1}})
    before = _ask_tell(old.search, "static", n=4, study=open_study(old))
    new = load_config(None, {**storage, "search.resume": True})
    study = open_study(new)
    after = _ask_tell(new.search, "static", n=4, study=study)
    assert len({t["lambda_over"] for t in before}) > 1
    assert {t["lambda_over"] for t in after} == {new.params.lambda_over}
    assert len(study.trials) == 8 and all(t.value is not None for t in study.trials)
    assert set(study.best_trial.params) == {"lambda_over", "lambda_under", "theta_queue"}
