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
from sor.redaction import redact_url
from sweep.evaluate import BestRun, best_fill_paths_shared, best_report_shared, warm_up_worker
from sweep.fingerprint import config_changes, config_fingerprint, same_data, snapshots_fingerprint
from sweep.space import distributions, grid_size, is_abandoned, make_sampler
from sweep.storage import beside_storage, study_lock

__all__ = [
    "BATCHES_PER_WORKER",
    "ROUNDS_IN_FLIGHT",
    "SweepResult",
    "check_study",
    "open_storage",
    "open_study",
    "rerun_best_on_workers",
    "run_sweep",
    "warm_up_workers",
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
    warm_up_s: float = 0.0  #: seconds the workers spent loading kernels and data

    @property
    def trials_per_s(self) -> float:
        """Trials evaluated by this run per second of wall time, the warm-up excluded."""
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
    """Create the study, or load it from storage to resume it.

    Creating a new SQLite database from two processes at once races on its tables ("table ...
    already exists"), so opening is serialized by a lock file beside the storage's file.
    """
    with beside_storage(config, "open.lock", wait=True):
        return _open_study(config)


def _open_study(config: Config) -> optuna.Study:
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
        raise ConfigError(f"search.storage {redact_url(search.storage)!r}: {exc}") from exc
    except Exception as exc:  # the database itself: a missing directory, a locked file, ...
        if not type(exc).__module__.startswith("sqlalchemy"):
            raise
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ConfigError(
            f"search.storage {redact_url(search.storage)!r}: cannot open it: {reason}"
        ) from None


#: User attributes of a study holding what its trials were measured on (`sweep.fingerprint`).
FINGERPRINT_CONFIG = "sor_objective_config"
FINGERPRINT_DATA = "sor_data_file"
FINGERPRINT_SNAPSHOTS = "sor_snapshots"


def check_study(
    config: Config,
    *,
    data: dict[str, Any] | None = None,
    snapshots: dict[str, Any] | None = None,
) -> optuna.Study:
    """Open the configured study and refuse to mix runs, then record what this run measures on.

    A stored study that already has trials continues only with `search.resume`, and only on
    the same data and objective settings: the fingerprints stored in its user attributes
    (`sweep.fingerprint`) must equal this run's. Cheap: `sor run` calls it before streaming.

    Args:
        config: the validated configuration.
        data: `file_fingerprint` of the data file, where the run reads one.
        snapshots: `snapshots_fingerprint` of the snapshots, once they are built.

    Raises:
        ConfigError: the study has trials and no --resume was given, or its trials were
            measured on other data or other settings (the message names which).
    """
    search = config.search
    with beside_storage(config, "open.lock", wait=True):  # check and record as one step
        study = _open_study(config)
        if search.storage is None:
            return study
        now = {
            FINGERPRINT_CONFIG: config_fingerprint(config),
            FINGERPRINT_DATA: data,
            FINGERPRINT_SNAPSHOTS: snapshots,
        }
        stored = study.user_attrs
        if study.trials:
            if not search.resume:
                raise ConfigError(
                    f"study {search.study_name!r} in {redact_url(search.storage)} already has "
                    f"{len(study.trials)} trials: pass --resume to continue it, or choose "
                    "another --study-name"
                )
            _refuse_other_experiment(config, stored, now)
        for key, value in now.items():
            # A study without trials holds nothing to mix: this run's fingerprints replace any.
            if value is not None and (stored.get(key) != value or not study.trials):
                study.set_user_attr(key, value)
    return study


def _refuse_other_experiment(config: Config, stored: dict[str, Any], now: dict[str, Any]) -> None:
    """Raise if the stored fingerprints differ from this run's; those missing on either side
    (a study made before they were stored, a library call without a data file) are skipped."""
    search = config.search
    storage = redact_url(search.storage)
    where = f"cannot resume study {search.study_name!r} in {storage}: its trials were"
    for key, what in ((FINGERPRINT_DATA, "file"), (FINGERPRINT_SNAPSHOTS, "snapshots")):
        before, after = stored.get(key), now[key]
        if before is not None and after is not None and not same_data(before, after):
            raise ConfigError(
                f"{where} measured on other data ({_describe(before, what)}; this run: "
                f"{_describe(after, what)}): choose another --study-name for this data"
            )
    before = stored.get(FINGERPRINT_CONFIG)
    if before is not None:
        changes = config_changes(before, now[FINGERPRINT_CONFIG])
        if changes:
            raise ConfigError(
                f"{where} measured with other settings: {'; '.join(changes)}: resume with the "
                "stored settings, or choose another --study-name"
            )


def _describe(fingerprint: dict[str, Any], what: str) -> str:
    count = (
        f"{fingerprint.get('bytes')} bytes"
        if what == "file"
        else f"{fingerprint.get('snapshots')} snapshots"
    )
    name = f"{fingerprint['file']}, " if "file" in fingerprint else ""
    return f"{name}{count}, blake2b {str(fingerprint.get('blake2b'))[:12]}"


def _chunks(items: list, n: int) -> list[list]:
    size = -(-len(items) // n)
    return [items[i : i + size] for i in range(0, len(items), size)]


def run_sweep(
    snaps_ref: Any,
    config: Config,
    *,
    progress: bool = True,
    data: dict[str, Any] | None = None,
    snapshots: dict[str, Any] | None = None,
) -> SweepResult:
    """Run the configured number of trials; resumes a stored study with the same name.

    A stored study is held by this driver while it runs (`study_lock`) and resumed only on
    the same snapshots and objective settings (`check_study`).

    Args:
        snaps_ref: Ray object reference of the `Snapshots` (put once; workers read it zero-copy).
        config: the validated configuration.
        progress: show a progress bar.
        data: `sweep.fingerprint.file_fingerprint` of the data file the snapshots come from.
        snapshots: `sweep.fingerprint.snapshots_fingerprint` of the snapshots as they were
            built, where the caller shares them already prepared
            (`sor.evaluation.modes.each_day_from_an_empty_book`); None: computed from
            `snaps_ref` when the study is stored.

    Returns:
        The best parameters and the sweep's statistics.
    """
    with study_lock(config):
        return _run_sweep(snaps_ref, config, progress=progress, data=data, snapshots=snapshots)


def _run_sweep(
    snaps_ref: Any,
    config: Config,
    *,
    progress: bool,
    data: dict[str, Any] | None,
    snapshots: dict[str, Any] | None,
) -> SweepResult:
    import ray

    from sweep.evaluate import evaluate_shared
    from sweep.runtime import worker_count

    search = config.search
    if snapshots is None and search.storage:
        snapshots = snapshots_fingerprint(ray.get(snaps_ref))
    study = check_study(config, data=data, snapshots=snapshots)
    dists = distributions(search, config.router.allocator)
    target = search.trials
    grid = grid_size(search, config.router.allocator) if search.sampler == "grid" else None
    if grid is not None and grid < target:
        log.info("the grid has %d points: running %d trials, not %d", grid, grid, target)
        target = grid

    config_dict = config.model_dump()
    workers = worker_count()
    _requeue_abandoned(study)
    finished = _finished(study)
    warm_started = time.perf_counter()
    if finished < target:
        warm_up_workers(snaps_ref, config_dict, workers, local=_one_node())
    warm_up_s = time.perf_counter() - warm_started
    log.info(
        "sweeping %d trials on %d workers (warm-up %.2f s)", target - finished, workers, warm_up_s
    )
    # SPREAD: batches go to every node of a cluster; with the default policy a node keeps the
    # batches of short trials to its own warm worker and the others idle.
    remote = ray.remote(max_retries=2, retry_exceptions=False, scheduling_strategy="SPREAD")(
        evaluate_shared
    )
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
        warm_up_s=warm_up_s,
    )


def warm_up_workers(snaps_ref: Any, config: dict[str, Any], workers: int, *, local: bool) -> None:
    """Warm every Ray worker up before the sweep is timed: kernels loaded, evaluation prepared.

    One task per worker (`sweep.evaluate.warm_up_worker`) loads the kernels, prepares the
    evaluation over the shared snapshots (`sweep.evaluate.evaluate_shared`), which the worker
    then keeps for its trials, and runs one untimed trial on it at `warm_up_params`. On a local
    runtime the tasks wait for each other at a gate (a folder each marks with its pid): without
    it Ray may hand a second warm-up task to a worker that finished its first, and leave another
    worker to warm up on the clock.

    Args:
        snaps_ref: the Ray reference of the snapshots.
        config: `Config.model_dump()`.
        workers: the number of worker processes to warm up.
        local: the runtime runs on this machine (the gate folder is visible to its workers).
    """
    import shutil
    import tempfile

    import ray

    gate = tempfile.mkdtemp(prefix="sor-warm-up-") if local and workers > 1 else None
    try:
        # SPREAD: on a cluster, one task per node first (Ray would otherwise queue them all on
        # the driver's node, where the snapshots are, and leave the other nodes cold).
        task = ray.remote(max_retries=2, retry_exceptions=False, scheduling_strategy="SPREAD")(
            warm_up_worker
        )
        ray.get([task.remote([snaps_ref], config, gate, workers) for _ in range(workers)])
    finally:
        if gate is not None:
            shutil.rmtree(gate, ignore_errors=True)


def rerun_best_on_workers(snaps_ref: Any, config: Config, params: dict[str, float]) -> BestRun:
    """Run the best parameters once more on the sweep's workers, for the report.

    The report's numbers and the fill paths of its plots are two tasks, run side by side on
    workers that keep the evaluation prepared and the kernels loaded from the sweep
    (`sweep.evaluate.best_report_shared`, `best_fill_paths_shared`).
    """
    import dataclasses

    import ray

    config_dict = config.model_dump()
    tasks = [
        ray.remote(max_retries=2, retry_exceptions=False, scheduling_strategy="SPREAD")(f)
        for f in (best_report_shared, best_fill_paths_shared)
    ]
    best, paths = ray.get([task.remote([snaps_ref], config_dict, params) for task in tasks])
    return dataclasses.replace(best, fill_paths=paths)


def _one_node() -> bool:
    """The Ray runtime has one live node: every worker is a process of one machine."""
    import ray

    return sum(bool(node.get("Alive")) for node in ray.nodes()) == 1


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
