"""Results of a sweep: best parameters re-run, baselines, savings, statistics (model.md §6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sor.config import Config
from sor.data.snapshots import Snapshots
from sor.evaluation.backtest import result_warnings
from sor.evaluation.modes import Evaluation, prepare
from sor.files import atomic_write
from sor.redaction import redact_url
from sweep.driver import SweepResult
from sweep.evaluate import BestRun, rerun_best
from sweep.output_names import trials_csv_path
from sweep.space import is_abandoned

__all__ = [
    "redact_url",
    "sweep_report",
    "sweep_warnings",
    "trials_csv_path",
    "write_trials_csv",
]


def sweep_report(
    snaps: Snapshots | Evaluation | BestRun,
    config: Config,
    sweep: SweepResult,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Re-run the best parameters once, run the baselines on the same snapshots, and report.

    The re-run must reproduce the sweep's best value: a mismatch means the evaluation is not
    deterministic and the report would be wrong, so it raises instead.

    Args:
        snaps: the snapshots, the evaluation already prepared from them and `config`, or the
            best parameters already re-run on it (`sweep.driver.rerun_best_on_workers`).
        config: the validated configuration.
        sweep: the sweep's result.
        extra: sections to add to the report (data, stream).
    """
    if isinstance(snaps, BestRun):
        best = snaps
    else:
        evaluation = snaps if isinstance(snaps, Evaluation) else prepare(snaps, config)
        best = rerun_best(evaluation, sweep.best_params, fill_paths=False)
    rerun = best.value
    report = dict(best.report)
    objective_name = best.objective
    if abs(rerun - sweep.best_value) > 1e-6 * max(1.0, abs(sweep.best_value)):
        raise RuntimeError(
            f"re-running the best parameters gave {rerun}, the sweep saw "
            f"{sweep.best_value}: the evaluation is not deterministic"
        )
    report["sweep"] = {
        "trials": sweep.trials_complete + sweep.trials_failed,
        "trials_complete": sweep.trials_complete,
        "trials_failed": sweep.trials_failed,
        "trials_run_now": sweep.trials_run_now,
        "objective": objective_name,
        "best_value": sweep.best_value,
        **({"best_completed_cash": sweep.best_value} if objective_name == "completed_cash" else {}),
        "sampler": config.search.sampler,
        "seed": config.search.seed,
        "study_name": config.search.study_name,
        "storage": redact_url(config.search.storage),
        "wall_s": round(sweep.wall_s, 3),
        "trials_per_s": round(sweep.trials_per_s, 3),
        "workers": sweep.workers,
        "nodes": len(sweep.nodes),
    }
    complete = [t.value for t in sweep.study.trials if t.value is not None]
    report["sweep"]["distinct_values"] = len({round(v, 9) for v in complete})
    report["sweep"]["trials_at_best"] = sum(
        round(v, 9) == round(sweep.best_value, 9) for v in complete
    )
    report.update(extra or {})
    report["warnings"] = result_warnings(report) + sweep_warnings(report["sweep"])
    report["config"] = config.redacted()
    return report


#: A sweep with at most this many distinct objective values (or one per `FEW_VALUES_PER`
#: complete trials, whichever is more) and at least `FEW_VALUES_MIN_TRIALS` trials is warned.
FEW_VALUES = 5
FEW_VALUES_PER = 20
FEW_VALUES_MIN_TRIALS = 20


def sweep_warnings(sweep: dict[str, Any]) -> list[str]:
    """Cautions about the sweep itself: its trials produced only a handful of distinct objective
    values, so the search space barely changes the result on this data and the best parameters
    are one of many ties. (A single value is `result_warnings`' "every trial scored the same".)

    Args:
        sweep: the report's "sweep" section, with `trials_complete`, `distinct_values` and
            `trials_at_best`.
    """
    n = sweep.get("trials_complete", 0)
    distinct = sweep.get("distinct_values", 0)
    if n < FEW_VALUES_MIN_TRIALS or not 1 < distinct <= max(FEW_VALUES, n // FEW_VALUES_PER):
        return []
    at_best = sweep.get("trials_at_best")
    ties = f"; {at_best:,} of them tie for the best value" if at_best else ""
    return [
        f"the {n:,} complete trials produced only {distinct} distinct objective values{ties}: "
        "most parameter sets give the same result on this data, so best_parameters is one of "
        "many ties and more trials will not help; widen the search space (search.space), "
        "search other settings (e.g. router.allocator: cont_kukanov, order.cap), or use data "
        "where the split matters (more venues, deeper books, a larger order.size)"
    ]


def write_trials_csv(sweep: SweepResult, out: str) -> Path:
    """Write the study's trials (parameters, value, state, worker, abandoned) beside the JSON,
    atomically (`sor.files.atomic_write`).

    `abandoned` marks trials a killed driver left unfinished: closed as FAIL and asked again.
    """
    path = trials_csv_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = sweep.study.trials_dataframe()
    if len(table):
        # Trials a killed driver asked but never told show as FAIL in Optuna; they were asked
        # again (and count neither as failed nor as run), so say so in the table.
        abandoned = {t.number: is_abandoned(t) for t in sweep.study.trials}
        table["abandoned"] = [abandoned[n] for n in table["number"]]
    with atomic_write(path) as f:
        table.to_csv(f, index=False)
    return path
