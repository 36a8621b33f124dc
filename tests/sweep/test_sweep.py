"""Optuna trials evaluated by Ray workers over one shared snapshot object."""

from __future__ import annotations

import pytest

from sor.config import load_config
from sor.evaluation.backtest import evaluate, make_market
from sor.evaluation.rules import evaluation_rules
from sor.routers.static import RouterParams
from sweep import driver
from sweep.driver import run_sweep
from sweep.evaluate import evaluate_batch
from sweep.space import grid_points

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def small_config(**overrides):
    base = {
        "order.size": 2000,
        "search.trials": 12,
        "search.sampler": "random",
        "search.trials_per_round": 6,
    }
    base.update(overrides)
    return load_config(None, base)


def test_best_is_the_least_cost_trial_and_matches_a_direct_evaluation(local_ray, small_snaps):
    config = small_config()
    ref = local_ray.put(small_snaps)
    result = run_sweep(ref, config, progress=False)
    values = [t.value for t in result.study.trials]
    assert len(values) == 12 and result.trials_complete == 12 and result.trials_failed == 0
    assert result.best_value == min(values)
    # the static default space fixes lambda_over (model.md §3); the best still lists it
    assert {t.params["lambda_over"] for t in result.study.trials} == {config.params.lambda_over}
    assert len({t.params["lambda_under"] for t in result.study.trials}) == 12
    assert set(result.best_params) == {"lambda_over", "lambda_under", "theta_queue"}
    direct = evaluate(
        make_market(small_snaps, evaluation_rules(config)),
        RouterParams(**result.best_params),
        config.order,
    )
    assert direct.completed_cash == pytest.approx(result.best_value, rel=1e-12)


def test_same_seed_same_trials_whatever_the_number_of_workers(local_ray, small_snaps, monkeypatch):
    config = small_config(**{"search.sampler": "tpe", "search.trials": 10})
    ref = local_ray.put(small_snaps)
    runs = []
    for workers in (1, 2):
        monkeypatch.setattr("sweep.runtime.worker_count", lambda w=workers: w)
        result = run_sweep(ref, config, progress=False)
        runs.append([(t.params, t.value) for t in result.study.trials])
    assert runs[0] == runs[1]
    other = run_sweep(
        ref,
        small_config(**{"search.sampler": "tpe", "search.trials": 10, "search.seed": 1}),
        progress=False,
    )
    assert [t.params for t in other.study.trials] != [p for p, _ in runs[0]]


def test_user_yaml_space_grid_sampler_and_fixed_parameter(local_ray, small_snaps, tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "order: {size: 2000}\n"
        "search:\n  sampler: grid\n  trials: 100\n  space:\n"
        "    lambda_over: {value: 0.01}\n"
        "    lambda_under: {low: 0.0, high: 0.04, step: 0.02}\n"
        "    theta_queue: {choices: [0.0, 0.05]}\n"
    )
    config = load_config(path)
    result = run_sweep(local_ray.put(small_snaps), config, progress=False)
    seen = sorted((t.params["lambda_under"], t.params["theta_queue"]) for t in result.study.trials)
    expected = sorted((p["lambda_under"], p["theta_queue"]) for p in grid_points(config.search))
    assert seen == expected and len(seen) == 6  # the grid, each point once, not 100 trials
    assert {t.params["lambda_over"] for t in result.study.trials} == {0.01}


def test_a_failing_trial_is_recorded_with_its_error(small_snaps):
    config = small_config()
    outcomes = evaluate_batch(
        small_snaps,
        config.model_dump(),
        [
            {"lambda_over": 0.0, "lambda_under": 0.01, "theta_queue": 0.0},
            {"lambda_over": 0.0, "lambda_under": float("nan"), "theta_queue": 0.0},
        ],
    )
    assert outcomes[0]["ok"] and outcomes[0]["value"] > 0
    assert not outcomes[1]["ok"] and "ValueError" in outcomes[1]["error"]


def test_chunks_cover_every_trial_once():
    items = list(range(7))
    for n in (1, 2, 3, 7):
        chunks = driver._chunks(items, n)
        assert len(chunks) <= n and [x for c in chunks for x in c] == items


@pytest.mark.parametrize("allocator", ["static", "cont_kukanov"])
def test_a_workers_warm_up_trial_is_at_the_configured_parameters(allocator):
    from sweep.evaluate import warm_up_params

    config = load_config(None, {"router.allocator": allocator, "params.theta_queue": 0.125})
    params = warm_up_params(config.model_dump())
    assert params["theta_queue"] == 0.125
    from sor.vocabulary import ALLOCATOR_PARAMS

    assert set(params) == set(ALLOCATOR_PARAMS[allocator])
    assert ("horizon_s" in params) == (allocator == "cont_kukanov")


def test_a_worker_imports_neither_optuna_nor_the_report(local_ray, small_snaps):
    # Every import a worker need not do is paid by each worker before its first trial (Optuna
    # about 0.3 s, matplotlib about a second): the functions the sweep ships to its workers
    # live where neither is imported.
    import sys

    run_sweep(local_ray.put(small_snaps), small_config(), progress=False)
    unwanted = ("optuna", "matplotlib", "sweep.driver", "sweep.report")

    def imported() -> list[str]:  # nested: shipped by value, importing nothing of this module
        return sorted(name for name in unwanted if name in sys.modules)

    task = local_ray.remote(imported)
    assert local_ray.get([task.remote() for _ in range(8)]) == [[]] * 8


def same(a, b) -> bool:
    """Equal field by field, arrays element by element (NaN equal to NaN)."""
    import numpy as np

    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return bool(a == b)


def test_the_best_rerun_on_the_workers_equals_one_in_the_driver(local_ray, small_snaps):
    # `sor run` re-runs the best parameters for the report on the sweep's workers, which keep
    # the evaluation prepared; the driver's own evaluation must give the same, field by field.
    import dataclasses

    from sor.evaluation.modes import prepare
    from sweep.driver import rerun_best_on_workers
    from sweep.evaluate import rerun_best
    from sweep.report import sweep_report

    config = small_config()
    ref = local_ray.put(small_snaps)
    result = run_sweep(ref, config, progress=False)
    baseline_names = ["best_ask", "twap", "vwap"]
    on_workers = rerun_best_on_workers(ref, config, result.best_params)
    here = rerun_best(prepare(small_snaps, config), result.best_params)
    assert on_workers.fill_paths  # one parent order: a fill path per strategy, in one order
    assert list(on_workers.fill_paths) == list(here.fill_paths) == ["optimized", *baseline_names]
    assert same(dataclasses.asdict(on_workers), dataclasses.asdict(here))
    assert sweep_report(on_workers, config, result) == sweep_report(small_snaps, config, result)
    changed = dataclasses.replace(on_workers, value=on_workers.value + 1.0)
    with pytest.raises(RuntimeError, match="not deterministic"):
        sweep_report(changed, config, result)
