"""The sweep: Optuna proposes, Ray workers evaluate over the one shared snapshot object.

Ask-and-tell: the driver owns the study; each round it asks `trials_per_round` trials, splits
them into one batch per worker, and tells the results back in the order they were asked, so a
seeded sweep proposes the same trials whatever the number of workers.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from sor.config import Config
from sor.errors import ConfigError
from sweep.space import distributions, grid_size, is_abandoned, make_sampler

__all__ = [
    "BATCHES_PER_WORKER",
    "ROUNDS_IN_FLIGHT",
    "SweepResult",
    "check_study",
    "open_storage",
    "open_study",
    "run_sweep",
]

log = logging.getLogger("sor.sweep")
BATCHES_PER_WORKER = 2
ROUNDS_IN_FLIGHT = 2


@dataclass
class SweepResult:
    """What the sweep found and how it went."""

    best_params: dict[str, float]
    best_value: float
    trials_complete: int
    trials_failed: int
    trials_run_now: int
    wall_s: float
    workers: int
    nodes: list[str] = field(default_factory=list)
    study: Any = None  #: the optuna.Study

    @property
    def trials_per_s(self) -> float:
        """Trials evaluated by this run per second of wall time."""
        return self.trials_run_now / self.wall_s if self.wall_s > 0 else 0.0


def open_storage(url: str | None) -> Any:
    """An Optuna storage: None in memory, a `.log`/`.jsonl` path a journal file, else a URL."""
    if url is None:
        return None
    if url.endswith((".log", ".jsonl")) and "://" not in url:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(url))
    return url


def open_study(config: Config) -> optuna.Study:
    """Create the study, or load it from storage to resume it."""
    search = config.search
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(
            study_name=search.study_name,
            storage=open_storage(search.storage),
            sampler=make_sampler(search, config.router.allocator),
            direction="minimize",
            load_if_exists=True,
        )
    except (ValueError, ImportError) as exc:  # bad URL or a missing database driver
        raise ConfigError(f"search.storage {search.storage!r}: {exc}") from exc
    except Exception as exc:  # the database itself: a missing directory, a locked file, ...
        if not type(exc).__module__.startswith("sqlalchemy"):
            raise
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ConfigError(f"search.storage {search.storage!r}: cannot open it: {reason}") from None


def check_study(config: Config) -> optuna.Study:
    """Open the configured study and refuse to mix runs: a stored study that already has trials
    continues only with `search.resume`. Cheap: `sor run` calls it before streaming any data."""
    search = config.search
    study = open_study(config)
    if study.trials and not search.resume:
        raise ConfigError(
            f"study {search.study_name!r} in {search.storage} already has {len(study.trials)} "
            "trials: pass --resume to continue it, or choose another --study-name"
        )
    return study


def _chunks(items: list, n: int) -> list[list]:
    size = -(-len(items) // n)
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_sweep(snaps_ref: Any, config: Config, *, progress: bool = True) -> SweepResult:
    """Run the configured number of trials; resumes a stored study with the same name.

    Args:
        snaps_ref: Ray object reference of the `Snapshots` (put once; workers read it zero-copy).
        config: the validated configuration.
        progress: show a progress bar.

    Returns:
        The best parameters and the sweep's statistics.
    """
    import ray

    from sor.evaluation.baselines_nb import warm_up as warm_up_baselines
    from sor.routers.static_nb import warm_up
    from sweep.evaluate import evaluate_shared
    from sweep.runtime import worker_count

    search = config.search
    study = check_study(config)
    dists = distributions(search, config.router.allocator)
    target = search.trials
    grid = grid_size(search, config.router.allocator) if search.sampler == "grid" else None
    if grid is not None and grid < target:
        log.info("the grid has %d points: running %d trials, not %d", grid, grid, target)
        target = grid

    warm_up()  # compile once here; workers then load Numba's cache instead of compiling
    warm_up_baselines()  # the same for the baselines' kernel, which every worker's prepare runs
    remote = ray.remote(max_retries=2, retry_exceptions=False)(evaluate_shared)
    config_dict = config.model_dump()
    workers = worker_count()
    _requeue_abandoned(study)
    finished = _finished(study)
    nodes: set[str] = set()
    run_now = 0
    started = time.perf_counter()
    bar = tqdm(
        total=target,
        initial=min(finished, target),
        disable=not progress,
        desc="sweep",
        unit="trial",
    )
    in_flight: deque[tuple[list, list]] = deque()
    asked = finished
    while finished < target:
        # Keep ROUNDS_IN_FLIGHT rounds evaluating, so workers never wait for the driver's tells
        # and asks. Round k+2 is asked once round k is told, whatever the number of workers, so
        # a seeded sweep stays deterministic.
        while len(in_flight) < ROUNDS_IN_FLIGHT and asked < target:
            size = min(search.trials_per_round, target - asked)
            trials = [study.ask(dists) for _ in range(size)]
            params = [{name: float(t.params[name]) for name in dists} for t in trials]
            # A few batches per worker, so that a slow batch does not leave the others idle.
            batches = _chunks(params, min(len(params), BATCHES_PER_WORKER * workers))
            in_flight.append(
                (trials, [remote.remote([snaps_ref], config_dict, b) for b in batches])
            )
            asked += size
        trials, refs = in_flight.popleft()
        try:
            outcomes = [o for batch in ray.get(refs) for o in batch]
        except ray.exceptions.RayError as exc:  # a worker died beyond its retries
            outcomes = [{"ok": False, "error": f"{type(exc).__name__}: {exc}"}] * len(trials)
        for trial, outcome in zip(trials, outcomes, strict=True):
            nodes.update(_tell(study, trial, outcome))
        finished += len(trials)
        run_now += len(trials)
        bar.update(len(trials))
        elapsed = time.perf_counter() - started
        best = _best_value(study)
        bar.set_postfix(
            best=f"{best:,.2f}" if best is not None else "-", rate=f"{run_now / elapsed:.1f}/s"
        )
    bar.close()
    wall = time.perf_counter() - started
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    failed = sum(t.state == TrialState.FAIL and not is_abandoned(t) for t in study.trials)
    if not complete:
        raise RuntimeError(f"no trial of study {search.study_name!r} completed ({failed} failed)")
    best_trial = study.best_trial
    best_value = best_trial.value
    assert best_value is not None  # the best trial is a complete one
    return SweepResult(
        best_params={name: float(best_trial.params[name]) for name in dists},
        best_value=float(best_value),
        trials_complete=len(complete),
        trials_failed=failed,
        trials_run_now=run_now,
        wall_s=wall,
        workers=workers,
        nodes=sorted(nodes),
        study=study,
    )


def _tell(study: optuna.Study, trial: optuna.trial.Trial, outcome: dict) -> set[str]:
    """Record one outcome: the value, or FAIL with the error. Returns the node it ran on."""
    for key in ("node", "pid", "peak_rss_kib"):
        if key in outcome:
            trial.set_user_attr(key, outcome[key])
    if outcome["ok"]:
        trial.set_user_attr("filled_shares", outcome["result"]["filled_shares"])
        trial.set_user_attr("avg_fill_px", outcome["result"]["avg_fill_px"])
        study.tell(trial, outcome["value"])
        return {outcome["node"]}
    trial.set_user_attr("error", outcome["error"][:2000])
    log.warning("trial %d failed: %s", trial.number, outcome["error"])
    study.tell(trial, state=TrialState.FAIL)
    return set()


def _finished(study: optuna.Study) -> int:
    """Trials that count towards the target: complete, or failed with an error of their own."""
    return sum(t.state.is_finished() and not is_abandoned(t) for t in study.trials)


def _requeue_abandoned(study: optuna.Study) -> None:
    """Trials asked by a driver that died before telling them: close them and ask them again.

    They are told FAIL without an "error" attribute (so they count neither as failed nor as
    finished) and their parameters are enqueued, so the next asks evaluate them: none is lost.
    """
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if running:
        log.info(
            "re-queueing %d trials abandoned by a previous driver (%d-%d)",
            len(running),
            running[0].number,
            running[-1].number,
        )
    for trial in running:
        study.enqueue_trial(trial.params, skip_if_exists=False)
        study.tell(trial.number, state=TrialState.FAIL)


def _best_value(study: optuna.Study) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:
        return None
