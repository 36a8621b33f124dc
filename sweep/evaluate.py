"""What a Ray worker runs: its warm-up, and the router over the shared snapshots for a batch of
parameter sets.

A worker imports this module, not the driver's (`sweep.driver` imports Optuna).
"""

from __future__ import annotations

import os
import resource
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sor.config import Config
from sor.data.snapshots import Snapshots
from sor.evaluation.backtest import FillRecord
from sor.evaluation.modes import Evaluation, prepare
from sor.vocabulary import ALLOCATOR_PARAMS

__all__ = [
    "WARM_UP_GATE_S",
    "BestRun",
    "best_fill_paths_shared",
    "best_report_shared",
    "evaluate_batch",
    "evaluate_shared",
    "rerun_best",
    "warm_up_kernels",
    "warm_up_params",
    "warm_up_worker",
]


def evaluate_batch(
    snaps: Snapshots | Evaluation, config: dict[str, Any], batch: list[dict[str, float]]
) -> list[dict[str, Any]]:
    """Evaluate each parameter set of `batch` on `snaps`; a failing trial does not sink the others.

    Args:
        snaps: the snapshots, or the evaluation prepared from them and this config.
        config: `Config.model_dump()`.
        batch: parameter sets {lambda_over, lambda_under, theta_queue[, horizon_s]}.

    Returns:
        One dict per parameter set: {"ok": True, "value": the evaluation's objective (completed
        cash of the one order, or the mean in-sample shortfall in bps over parent orders),
        "result": ...} or {"ok": False, "error": ...}, each with the worker's node id and pid.
    """
    if isinstance(snaps, Evaluation):
        evaluation = snaps
    else:
        evaluation = prepare(snaps, Config.model_validate(config))
    where = _where()
    outcomes = []
    for params in batch:
        try:
            outcome = evaluation.evaluate(params)
            outcomes.append({"ok": True, "value": outcome.value, "result": outcome.result, **where})
        except Exception as exc:  # a trial that raises is recorded as failed, with its error
            outcomes.append(
                {
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(limit=5),
                    **where,
                }
            )
    return outcomes


# The evaluations this worker process has prepared, by (object id, evaluation config): a sweep
# sends many batches over one snapshot object, and preparing an evaluation (ask levels, kernel
# inputs, baselines) costs far more than a fast trial. Bounded: a worker serves one sweep at a
# time.
_EVALUATIONS: OrderedDict[tuple[str, str], Evaluation] = OrderedDict()
_EVALUATIONS_KEPT = 2


def evaluate_shared(
    snaps_ref: list[Any], config: dict[str, Any], batch: list[dict[str, float]]
) -> list[dict[str, Any]]:
    """`evaluate_batch` for a Ray task, over the shared object `snaps_ref[0]`.

    The reference comes wrapped in a list so that Ray passes the reference, not the object: the
    worker fetches it (zero-copy on the same node) only when it has no evaluation for it yet.
    """
    return evaluate_batch(_shared_evaluation(snaps_ref, config), config, batch)


def _shared_evaluation(snaps_ref: list[Any], config: dict[str, Any]) -> Evaluation:
    """This worker's evaluation over the shared object `snaps_ref[0]`, prepared once and kept."""
    import ray

    ref = snaps_ref[0]
    key = (
        ref.hex(),
        repr([config[k] for k in ("order", "venues", "router", "schedule", "baselines", "search")]),
    )
    evaluation = _EVALUATIONS.get(key)
    if evaluation is None:
        evaluation = prepare(ray.get(ref), Config.model_validate(config))
        _EVALUATIONS[key] = evaluation
        while len(_EVALUATIONS) > _EVALUATIONS_KEPT:
            _EVALUATIONS.popitem(last=False)
    return evaluation


@dataclass(frozen=True)
class BestRun:
    """The best parameters run once more, for the report.

    Attributes:
        value: the objective's value; the sweep's best value when the evaluation is
            deterministic (`sweep.report.sweep_report` checks it).
        objective: the objective's name.
        report: the results JSON's sections at the parameters (`Evaluation.report`).
        fill_paths: each strategy's fills, for the plots (`Evaluation.fill_paths`); None where
            the mode has no single path, or where they were not asked for.
    """

    value: float
    objective: str
    report: dict[str, Any]
    fill_paths: dict[str, list[FillRecord]] | None = None


def rerun_best(
    evaluation: Evaluation, params: dict[str, float], *, fill_paths: bool = True
) -> BestRun:
    """Run `params` once more on `evaluation`: its value, its report and (`fill_paths`) its
    fill paths."""
    return BestRun(
        value=evaluation.evaluate(params).value,
        objective=evaluation.objective,
        report=evaluation.report(params),
        fill_paths=evaluation.fill_paths(params) if fill_paths else None,
    )


def best_report_shared(
    snaps_ref: list[Any], config: dict[str, Any], params: dict[str, float]
) -> BestRun:
    """`rerun_best` without the fill paths, as a Ray task on a worker's kept evaluation.

    The worker that swept has the evaluation prepared and its kernels loaded: the driver then
    needs neither (a second or more of its time while Ray starts, and for a month of data the
    memory of a second evaluation).
    """
    return rerun_best(_shared_evaluation(snaps_ref, config), params, fill_paths=False)


def best_fill_paths_shared(
    snaps_ref: list[Any], config: dict[str, Any], params: dict[str, float]
) -> dict[str, list[FillRecord]] | None:
    """`Evaluation.fill_paths` at `params`, as a Ray task beside `best_report_shared`."""
    return _shared_evaluation(snaps_ref, config).fill_paths(params)


def _where() -> dict[str, Any]:
    try:
        import ray

        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    except Exception:  # outside Ray
        node = "local"
    # Peak resident memory of this worker process so far (KiB on Linux):
    # bench/sweep_throughput.py checks that it does not grow with the number of workers
    # (no per-trial data copies).
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"node": node, "pid": os.getpid(), "peak_rss_kib": peak_kib}


def warm_up_kernels(allocator: str) -> None:
    """Compile, or load from Numba's cache, the kernels a trial of `allocator` runs."""
    if allocator == "cont_kukanov":
        from sor.routers.placement_nb import warm_up

        warm_up()
    from sor.evaluation.baselines_nb import warm_up as warm_up_baselines
    from sor.routers.static_nb import warm_up as warm_up_static

    warm_up_static()  # the static router
    warm_up_baselines()  # the baselines' kernel, which every worker's prepare runs


#: Longest a warm-up task waits for the other workers' warm-up tasks to start (seconds).
WARM_UP_GATE_S = 30.0


def warm_up_worker(
    snaps_ref: list[Any], config: dict[str, Any], gate: str | None, workers: int
) -> int:
    """One worker's warm-up (`sweep.driver.warm_up_workers`); returns its pid."""
    warm_up_kernels(config["router"]["allocator"])
    # One trial on the shared evaluation itself: the kernels' specializations for the arrays a
    # worker reads (read-only views of the object store, the data's own ladders) are compiled
    # or loaded here, not in the first timed trial.
    evaluate_shared(snaps_ref, config, [warm_up_params(config)])
    if gate is not None and os.path.isdir(gate):
        Path(gate, str(os.getpid())).touch()
        deadline = time.monotonic() + WARM_UP_GATE_S
        while len(os.listdir(gate)) < workers and time.monotonic() < deadline:
            time.sleep(0.01)
    return os.getpid()


def warm_up_params(config: dict[str, Any]) -> dict[str, float]:
    """The parameters of a worker's warm-up trial: the configuration's `params` of its
    allocator (`Config.model_dump()` form)."""
    names = ALLOCATOR_PARAMS[config["router"]["allocator"]]
    return {name: float(config["params"][name]) for name in names}
