"""`sor run`: the whole mission in one command.

Start the embedded broker (unless --bootstrap), stream the data through Kafka while Ray starts,
put the snapshots into Ray's object store once, sweep, and write the report. With
--consume-only, sweep a stream another process produced (`sor produce`) instead.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sor.cli.flags import (
    DATA_FLAGS,
    EVALUATION_FLAGS,
    STREAM_FLAGS,
    SWEEP_FLAGS,
    config_from_args,
    warn_unknown_venue_overrides,
)
from sor.cli.output import Outputs, claim_outputs, print_report, print_warnings, say, write_json
from sor.config import Config
from sor.errors import ConfigError
from stream.signing import StreamKey

if TYPE_CHECKING:
    from sor.data.snapshots import Snapshots
    from sor.evaluation.backtest import FillRecord
    from sweep.driver import SweepResult

__all__ = [
    "DEFAULT_DATA",
    "RayStart",
    "cmd_run",
    "companions",
    "default_data",
    "run",
    "start_ray",
    "stop_ray",
    "write_outputs",
    "write_visual_report",
]

log = logging.getLogger("sor.run")
DEFAULT_DATA = Path("runs") / "data" / "generated_taq2018_seed0.csv"


def default_data() -> Path:
    """The bundled data set, made once: one seeded session of the `taq-2018` profile.

    Eleven venues, MBP-1 quotes and trade prints, calibrated to a real NYSE TAQ day with its
    adverse selection (docs/model.md §8): `sor.synth.profiles.write` with the profile's
    session rows (92,219) and seed 0. Its symbol, like every generated file's, says it is
    generated (`SYNTH-XXX`).
    """
    if DEFAULT_DATA.exists() and not _marked_generated(DEFAULT_DATA):
        log.info("%s was made before generated data was marked; making it again", DEFAULT_DATA)
        DEFAULT_DATA.unlink()
    if not DEFAULT_DATA.exists():
        DEFAULT_DATA.parent.mkdir(parents=True, exist_ok=True)
        partial = DEFAULT_DATA.with_suffix(".partial")
        log.info("generating the default data set at %s", DEFAULT_DATA)
        from sor.synth.profiles import PROFILES, write

        profile = PROFILES["taq-2018"]
        assert profile is not None
        write(partial, profile=profile, rows=profile.session_rows(), seed=0)
        partial.rename(DEFAULT_DATA)  # atomic: a killed run never leaves half a file behind
    return DEFAULT_DATA


def _marked_generated(path: Path) -> bool:
    """Whether the first row's symbol (the last column) carries the generated-data prefix."""
    from sor.vocabulary import GENERATED_SYMBOL_PREFIX

    with open(path, encoding="ascii", errors="replace") as f:
        f.readline()
        row = f.readline()
    return row.rstrip("\r\n").rsplit(",", 1)[-1].startswith(GENERATED_SYMBOL_PREFIX)


def run(
    config: Config,
    *,
    progress: bool = True,
    config_path: str | None = None,
    consume_only: bool = False,
    stream_id: str | None = None,
) -> dict[str, Any]:
    """The whole job on a validated config; returns the report, written to output.out.

    The outputs are claimed before any work (`sor.cli.output.claim_outputs`): an output that
    would overwrite an input, an unwritable folder or a results file another live run is
    writing is refused at once. The report's files are written as `write_outputs` says.

    Args:
        config: the validated configuration.
        progress: show progress bars.
        config_path: the configuration file it was read from, never to be overwritten.
        consume_only: sweep a stream another process produced on `kafka.topic`
            (`stream.pipeline.consume_stream`) instead of streaming a file.
        stream_id: with `consume_only`, the stream to read (None: the first on the topic
            signed with the key).
    """
    from sweep.storage import storage_file

    data_path = Path(config.data.path) if config.data.path else DEFAULT_DATA
    inputs = {
        "data file": None if consume_only else data_path,
        "configuration": config_path,
        "study storage": storage_file(config.search.storage),
    }
    out = config.output.out
    with claim_outputs(out, companions=companions(out), inputs=inputs) as outputs:
        return _run(
            config, outputs, progress=progress, consume_only=consume_only, stream_id=stream_id
        )


def companions(out: str | Path) -> tuple[Path, ...]:
    """The files `sor run` writes beside the results JSON: trials CSV, plots, HTML page."""
    from sweep.output_names import PLOTS, trials_csv_path

    out = Path(out)
    return (
        trials_csv_path(str(out)),
        *(out.with_name(f"{out.stem}_{name}.png") for name in PLOTS),
        out.with_name(f"{out.stem}_report.html"),
    )


def _run(
    config: Config, outputs: Outputs, *, progress: bool, consume_only: bool, stream_id: str | None
) -> dict[str, Any]:
    from sweep.storage import study_lock

    timings: dict[str, float] = {}
    started = time.perf_counter()
    key = None
    if consume_only:
        key = _check_consume_only(config)
    elif config.data.path and not Path(config.data.path).is_file():
        from sor.errors import DataError

        problem = (
            "is a folder, not a data file" if Path(config.data.path).is_dir() else "no such file"
        )
        raise DataError(problem, path=config.data.path)  # before Ray starts
    with study_lock(config):
        data_path = None if consume_only else Path(config.data.path or default_data())
        data = _check_stored_study(config, data_path)
        if config.kafka.bootstrap is not None:
            from stream.pipeline import check_broker

            check_broker(config.kafka.bootstrap)  # a broker that is not there fails before Ray
        # Ray takes seconds to start, and is the run's critical path: it starts before anything
        # slow is imported (Optuna, the stream, the evaluation), and while the data is streamed.
        ray_start = start_ray(config.ray.address, config.ray.num_cpus)
        try:
            ray_start.wait_imported()
            from stream.pipeline import consume_stream, stream_snapshots
            from sweep.driver import rerun_best_on_workers, run_sweep

            if data_path is None:
                snaps, data_section, info = consume_stream(
                    config, key=key, stream_id=stream_id, progress=progress
                )
            else:
                snaps, summary, info = stream_snapshots(config, data_path, progress=progress)
                data_section = summary.to_dict()
            warn_unknown_venue_overrides(config, snaps.venues)
            readied = time.perf_counter()
            snapshots = _snapshots_fingerprint(snaps) if config.search.storage else None
            snaps = _each_day_from_an_empty_book(snaps, config)
            _ready_driver()
            timings["driver_ready"] = time.perf_counter() - readied
            waited = time.perf_counter()
            timings["ray_start"] = ray_start.wait()
            timings["ray_wait"] = time.perf_counter() - waited
            import ray

            ref = ray.put(snaps)
            result = run_sweep(ref, config, progress=progress, data=data, snapshots=snapshots)
            reported = time.perf_counter()
            best = rerun_best_on_workers(ref, config, result.best_params)
            del ref
        except BaseException:
            # A failed or interrupted run stops the runtime it started before it leaves: its
            # agents would otherwise outlive the driver and keep their ports open.
            ray_start.stop()
            raise
    ray_start.stop_soon()  # meanwhile the report is made, in this process
    log.info("sweep done in %.2f s; writing the report while Ray stops", result.wall_s)
    timings.update(info.pop("timings"))
    timings["sweep_warm_up"] = result.warm_up_s
    timings["sweep"] = result.wall_s
    from sweep.report import sweep_report

    report = sweep_report(
        best,
        config,
        result,
        extra={
            "data": {**data_section, "snapshots": len(snaps), "snapshot_bytes": snaps.nbytes},
            **info,
        },
    )

    def finish_timings(report: dict[str, Any]) -> None:
        now = time.perf_counter()
        timings["report"] = now - reported
        timings["total"] = now - started
        report["timings"] = {
            **{k: round(v, 3) for k, v in timings.items()},
            "trials_per_s": round(result.trials_per_s, 3),
        }

    write_outputs(outputs, best.fill_paths, config, result, report, before_json=finish_timings)
    log.info("results: %s, report: %s", outputs.results, outputs.companions[-1])
    return report


def _check_stored_study(config: Config, data_path: Path | None) -> dict[str, Any] | None:
    """With a stored study (search.storage), refuse before anything starts a bad storage URL,
    a study with trials and no --resume, or one measured on other data; returns the data
    file's fingerprint recorded in it. An in-memory study holds nothing to check (None)."""
    if config.search.storage is None:
        return None
    from sweep.driver import check_study
    from sweep.fingerprint import file_fingerprint

    data = file_fingerprint(data_path) if data_path is not None else None
    check_study(config, data=data)
    return data


def _ready_driver() -> None:
    """Import the report's modules (matplotlib takes a second) while Ray may still be starting.

    The driver itself evaluates nothing: the sweep's workers re-run the best parameters for the
    report (`sweep.driver.rerun_best_on_workers`).
    """
    import sweep.html_report  # noqa: F401  (imported for the report; slow: matplotlib)
    import sweep.plots  # noqa: F401
    import sweep.report  # noqa: F401


def _snapshots_fingerprint(snaps: Snapshots) -> dict[str, Any]:
    from sweep.fingerprint import snapshots_fingerprint

    return snapshots_fingerprint(snaps)


def _each_day_from_an_empty_book(snaps: Snapshots, config: Config) -> Snapshots:
    """Forget the previous days' quotes once, here, in the arrays this process built and alone
    holds (no copy of a month's arrays), so that no worker copies them either."""
    from sor.evaluation.modes import each_day_from_an_empty_book

    return each_day_from_an_empty_book(snaps, config, in_place=True)


def _check_consume_only(config: Config) -> StreamKey:
    """Before anything starts: --consume-only needs a broker and the stream's key, and reads
    the stream as it was produced (no file, no window). Returns the key."""
    from sor.errors import StreamError

    if config.data.path:
        raise ConfigError(
            f"data.path {config.data.path}: --consume-only reads the stream on the topic, not a "
            "file; drop --data (give it to `sor produce`)"
        )
    if config.window.start is not None or config.window.end is not None:
        raise ConfigError(
            "window.start/window.end: --consume-only sweeps the stream as it was produced; set "
            "the window when producing it (`sor produce --start ... --end ...`)"
        )
    if config.kafka.bootstrap is None:
        raise StreamError(
            "--consume-only reads a stream another process produced: give its broker with "
            "--bootstrap HOST:PORT (the embedded broker starts empty)"
        )
    return StreamKey.from_env(config.stream.key_env)


class RayStart:
    """`ray.init` in a background thread, so that Ray starts while the data is streamed.

    The thread stays alive (idle) after `ray.init` returns: Ray starts its GCS and raylet with
    the parent-death signal set (`PR_SET_PDEATHSIG`), which the kernel sends when the *thread*
    that started them ends, so a thread that returned would take the runtime down with it.
    Signals stay with the main thread: Ctrl-C interrupts the main thread's work as before.
    """

    def __init__(self, address: str | None, num_cpus: int | None) -> None:
        self._args = (address, num_cpus)
        self._done = threading.Event()
        self._imported = threading.Event()
        self._error: BaseException | None = None
        self._seconds = 0.0
        self._owned = False
        self._stopping: threading.Thread | None = None
        self._thread = threading.Thread(target=self._start, name="ray-start", daemon=True)

    def start(self) -> RayStart:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def _start(self) -> None:
        started = time.perf_counter()
        try:
            try:
                import ray

                from sweep.runtime import init_ray
            finally:
                self._imported.set()
            if logging.getLogger().getEffectiveLevel() >= logging.ERROR:  # -q: errors only
                # Ray sets its own logger's level when imported (e.g. for its token notice).
                logging.getLogger("ray").setLevel(logging.ERROR)
            started = time.perf_counter()
            self._owned = not ray.is_initialized()
            init_ray(*self._args)
        except BaseException as exc:  # raised in the main thread by wait()
            self._error = exc
        self._seconds = time.perf_counter() - started
        self._done.set()
        threading.Event().wait()  # never set: see the class docstring

    def settle(self, timeout_s: float) -> None:
        """Wait at most `timeout_s` for `ray.init` to return (or fail), raising nothing.

        A run that fails while Ray starts waits here before its processes are killed: the start
        would otherwise go on spawning Ray's processes after the kill, and one spawned in that
        moment outlives the run (`sor.cli.main`).
        """
        self._done.wait(timeout_s)

    def wait_imported(self) -> None:
        """Wait until Ray is imported and `ray.init` is called (or the import failed).

        Importing is CPU work under the GIL: the main thread importing the stream's and the
        sweep's modules meanwhile would halve the pace of Ray's import, and so start the
        runtime, the run's critical path, half a second later; the driver has time to spare
        while Ray starts.
        """
        while not self._imported.wait(0.1):  # in short waits, so that Ctrl-C is not held up
            pass

    @property
    def done(self) -> bool:
        """`ray.init` has returned (or failed)."""
        return self._done.is_set()

    def wait(self) -> float:
        """Wait for `ray.init`; returns the seconds it took, or raises what it raised."""
        while not self._done.wait(0.1):  # in short waits, so that Ctrl-C is not held up
            pass
        if threading.current_thread() is threading.main_thread():
            # Ray's core worker installs its own SIGTERM handler, which prints a C++ stack
            # trace: give the signals back to the Python handlers (sor.cli.main's).
            for signum in (signal.SIGINT, signal.SIGTERM):
                handler = signal.getsignal(signum)
                if handler is not None:
                    signal.signal(signum, handler)
        if self._error is not None:
            raise self._error
        return self._seconds

    def stop_soon(self) -> None:
        """Shut Ray down in the background (the sweep is over; the report needs no Ray).

        Only a runtime this object initialised is shut down: one the caller had initialised
        before is left as it was. `stop` waits for it.
        """
        if self._stopping is None and self.done and self._owned and self._error is None:
            import ray

            self._stopping = threading.Thread(target=ray.shutdown, name="ray-stop", daemon=True)
            self._stopping.start()

    @property
    def stopping(self) -> bool:
        """A stop this object started (`stop_soon`) is still under way."""
        return self._stopping is not None and self._stopping.is_alive()

    def stop(self) -> None:
        """Shut Ray down (if this object initialised it) and wait until it is down."""
        self.stop_soon()
        if self._stopping is not None:
            while self._stopping.is_alive():
                self._stopping.join(0.1)  # in short waits, so that Ctrl-C is not held up


#: The `RayStart` of this process's run, if any: `sor.cli.main` stops Ray before exiting.
RAY: RayStart | None = None


def start_ray(address: str | None, num_cpus: int | None) -> RayStart:
    """Start Ray in the background (`RayStart`); `stop_ray` stops what this started."""
    global RAY
    logging.getLogger("ray._private.worker").addFilter(_NotMainThreadNote())
    RAY = RayStart(address, num_cpus).start()
    return RAY


class _NotMainThreadNote(logging.Filter):
    # ray.init from another thread says it cannot set its SIGTERM handler; sor.cli.main handles
    # SIGTERM itself.
    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def stop_ray() -> bool:
    """Start stopping the Ray runtime this process's run started, if not started already;
    returns whether the stop is still under way (False without a runtime to stop).

    `ray.shutdown()` asks each of its processes in turn to stop, and takes a second or more; a
    run starts it in the background when its sweep ends (`RayStart.stop_soon`), and the caller
    kills what is left rather than wait. A start still under way is waited for first.
    """
    if RAY is None:
        return False
    RAY.wait()
    RAY.stop_soon()
    return RAY.stopping


def write_outputs(
    outputs: Outputs,
    fill_paths: dict[str, list[FillRecord]] | None,
    config: Config,
    result: SweepResult,
    report: dict[str, Any],
    *,
    before_json: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Write the run's files: the old results JSON and companions removed first, then the
    trials CSV, the plots and the HTML page, and the results JSON last, each atomically.

    A results JSON on disk therefore always belongs to a complete run, with its own
    companions beside it; an interruption in between leaves no results JSON. `before_json`
    may complete the report (e.g. with the time the files took) just before it is written.
    `fill_paths` are the best parameters' and the baselines' fills for the plot
    (`Evaluation.fill_paths`), or None.
    """
    from sweep.report import write_trials_csv

    outputs.clear()
    write_trials_csv(result, str(outputs.results))
    write_visual_report(fill_paths, config, result, report)
    if before_json is not None:
        before_json(report)
    write_json(report, outputs.results)


def write_visual_report(
    fill_paths: dict[str, list[FillRecord]] | None,
    config: Config,
    result: SweepResult,
    report: dict[str, Any],
) -> Path:
    """PNG plots and the static HTML page beside the JSON (imported here: matplotlib is slow)."""
    from sweep.html_report import write_html
    from sweep.output_names import trials_csv_path
    from sweep.plots import write_plots

    out = Path(config.output.out)
    plots = write_plots(report, result.study, fill_paths, out.parent, out.stem)
    page = out.with_name(f"{out.stem}_report.html")
    return write_html(report, plots, page, trials_csv=trials_csv_path(str(out)).name)


def cmd_run(args: argparse.Namespace) -> int:
    """`sor run`: with -q nothing is printed but errors; the results files are written."""
    config = config_from_args(args, DATA_FLAGS, EVALUATION_FLAGS, STREAM_FLAGS, SWEEP_FLAGS)
    if args.stream_id is not None and not args.consume_only:
        raise ConfigError("--stream-id selects the stream --consume-only reads: add --consume-only")
    report = run(
        config,
        progress=not args.quiet and sys.stderr.isatty(),
        config_path=args.config,
        consume_only=args.consume_only,
        stream_id=args.stream_id,
    )
    if args.quiet:
        print_warnings(report)
    else:
        print_report(report)
        say(f"results written to {Path(config.output.out).resolve()}")
    return 0
