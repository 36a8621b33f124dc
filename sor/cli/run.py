"""`sor run`: the whole mission in one command.

Start the embedded broker (unless --bootstrap), stream the data through Kafka, assemble the
snapshots into one Ray object, sweep, and write the report.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sor.cli.flags import DATA_FLAGS, EVALUATION_FLAGS, STREAM_FLAGS, SWEEP_FLAGS, config_from_args
from sor.cli.output import Outputs, claim_outputs, print_report, say, write_json
from sor.config import Config
from sor.evaluation.modes import Evaluation, prepare
from stream.pipeline import stream_snapshots

if TYPE_CHECKING:
    from sweep.driver import SweepResult

__all__ = [
    "DEFAULT_DATA",
    "cmd_run",
    "companions",
    "default_data",
    "run",
    "write_outputs",
    "write_visual_report",
]

log = logging.getLogger("sor.run")
DEFAULT_DATA = Path("runs") / "data" / "generated_mbp10_seed0.csv"


def default_data() -> Path:
    """The bundled data set: a seeded 5-venue MBP-10 day the size of l1_day.csv, made once."""
    from sor.synth.generate import generate

    if DEFAULT_DATA.exists() and not _marked_generated(DEFAULT_DATA):
        log.info("%s was made before generated data was marked; making it again", DEFAULT_DATA)
        DEFAULT_DATA.unlink()
    if not DEFAULT_DATA.exists():
        DEFAULT_DATA.parent.mkdir(parents=True, exist_ok=True)
        partial = DEFAULT_DATA.with_suffix(".partial")
        log.info("generating the default data set at %s", DEFAULT_DATA)
        generate(partial, n_events=60_000, schema="mbp-10", seed=0)
        partial.rename(DEFAULT_DATA)  # atomic: a killed run never leaves half a file behind
    return DEFAULT_DATA


def _marked_generated(path: Path) -> bool:
    """Whether the first row's symbol (the last column) carries the generated-data prefix."""
    from sor.vocabulary import GENERATED_SYMBOL_PREFIX

    with open(path, encoding="ascii", errors="replace") as f:
        f.readline()
        row = f.readline()
    return row.rstrip("\r\n").rsplit(",", 1)[-1].startswith(GENERATED_SYMBOL_PREFIX)


def run(config: Config, *, progress: bool = True, config_path: str | None = None) -> dict[str, Any]:
    """The whole job on a validated config; returns the report, written to output.out.

    The outputs are claimed before any work (`sor.cli.output.claim_outputs`): an output that
    would overwrite an input, an unwritable folder or a results file another live run is
    writing is refused at once. The report's files are written as `write_outputs` says.

    Args:
        config: the validated configuration.
        progress: show progress bars.
        config_path: the configuration file it was read from, never to be overwritten.
    """
    from sweep.driver import storage_file

    data_path = Path(config.data.path) if config.data.path else DEFAULT_DATA
    inputs = {
        "data file": data_path,
        "configuration": config_path,
        "study storage": storage_file(config.search.storage),
    }
    out = config.output.out
    with claim_outputs(out, companions=companions(out), inputs=inputs) as outputs:
        return _run(config, outputs, progress=progress)


def companions(out: str | Path) -> tuple[Path, ...]:
    """The files `sor run` writes beside the results JSON: trials CSV, plots, HTML page."""
    from sweep.plots import PLOTS
    from sweep.report import trials_csv_path

    out = Path(out)
    return (
        trials_csv_path(str(out)),
        *(out.with_name(f"{out.stem}_{name}.png") for name in PLOTS),
        out.with_name(f"{out.stem}_report.html"),
    )


def _run(config: Config, outputs: Outputs, *, progress: bool) -> dict[str, Any]:
    import ray

    from sweep.driver import check_study, run_sweep, study_lock
    from sweep.fingerprint import file_fingerprint
    from sweep.report import sweep_report
    from sweep.runtime import ray_runtime

    if config.data.path and not Path(config.data.path).is_file():
        from sor.errors import DataError

        problem = (
            "is a folder, not a data file" if Path(config.data.path).is_dir() else "no such file"
        )
        raise DataError(problem, path=config.data.path)  # before Ray starts
    with study_lock(config):
        check_study(config)  # a bad storage URL or an unresumed study fails before any data
        data_path = Path(config.data.path) if config.data.path else default_data()
        data = file_fingerprint(data_path) if config.search.storage else None
        check_study(config, data=data)  # resuming on other data fails before any streaming
        # Stopped on every way out: a local runtime's agents would otherwise outlive a driver
        # that failed or was stopped by a signal, and keep its ports open.
        with ray_runtime(config.ray.address, config.ray.num_cpus):
            ref, summary, info = stream_snapshots(config, data_path, progress=progress)
            snaps = ray.get(ref)
            result = run_sweep(ref, config, progress=progress, data=data)
            evaluation = prepare(snaps, config)
            report = sweep_report(
                evaluation,
                config,
                result,
                extra={
                    "data": {
                        **summary.to_dict(),
                        "snapshots": len(snaps),
                        "snapshot_bytes": snaps.nbytes,
                    },
                    **info,
                },
            )
            write_outputs(outputs, evaluation, config, result, report)
    log.info("results: %s, report: %s", outputs.results, outputs.companions[-1])
    return report


def write_outputs(
    outputs: Outputs,
    evaluation: Evaluation,
    config: Config,
    result: SweepResult,
    report: dict[str, Any],
) -> None:
    """Write the run's files: the old results JSON and companions removed first, then the
    trials CSV, the plots and the HTML page, and the results JSON last, each atomically.

    A results JSON on disk therefore always belongs to a complete run, with its own
    companions beside it; an interruption in between leaves no results JSON.
    """
    from sweep.report import write_trials_csv

    outputs.clear()
    write_trials_csv(result, str(outputs.results))
    write_visual_report(evaluation, config, result, report)
    write_json(report, outputs.results)


def write_visual_report(
    evaluation: Evaluation, config: Config, result: SweepResult, report: dict[str, Any]
) -> Path:
    """PNG plots and the static HTML page beside the JSON (imported here: matplotlib is slow)."""
    from sweep.html_report import write_html
    from sweep.plots import write_plots
    from sweep.report import trials_csv_path

    out = Path(config.output.out)
    paths = evaluation.fill_paths(result.best_params)
    plots = write_plots(report, result.study, paths, out.parent, out.stem)
    page = out.with_name(f"{out.stem}_report.html")
    return write_html(report, plots, page, trials_csv=trials_csv_path(str(out)).name)


def cmd_run(args: argparse.Namespace) -> int:
    """`sor run`."""
    config = config_from_args(args, DATA_FLAGS, EVALUATION_FLAGS, STREAM_FLAGS, SWEEP_FLAGS)
    report = run(config, progress=not args.quiet and sys.stderr.isatty(), config_path=args.config)
    print_report(report)
    say(f"results written to {Path(config.output.out).resolve()}")
    return 0
