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
from sor.cli.output import write_json
from sor.config import Config
from sor.evaluation.modes import Evaluation, prepare
from stream.pipeline import stream_snapshots

if TYPE_CHECKING:
    from sweep.driver import SweepResult

__all__ = ["DEFAULT_DATA", "cmd_run", "default_data", "run", "write_visual_report"]

log = logging.getLogger("sor.run")
DEFAULT_DATA = Path("runs") / "data" / "generated_mbp10_seed0.csv"


def default_data() -> Path:
    """The bundled data set: a seeded 5-venue MBP-10 day the size of l1_day.csv, made once."""
    from sor.synth.generate import generate

    if not DEFAULT_DATA.exists():
        DEFAULT_DATA.parent.mkdir(parents=True, exist_ok=True)
        partial = DEFAULT_DATA.with_suffix(".partial")
        log.info("generating the default data set at %s", DEFAULT_DATA)
        generate(partial, n_events=60_000, schema="mbp-10", seed=0)
        partial.rename(DEFAULT_DATA)  # atomic: a killed run never leaves half a file behind
    return DEFAULT_DATA


def run(config: Config, *, progress: bool = True) -> dict[str, Any]:
    """The whole job on a validated config; returns the report (also written to output.out)."""
    import ray

    from sweep.driver import check_study, run_sweep
    from sweep.report import sweep_report, write_trials_csv
    from sweep.runtime import ray_runtime

    check_study(config)  # a bad storage URL or an unresumed study fails before any streaming
    if config.data.path and not Path(config.data.path).is_file():
        from sor.errors import DataError

        problem = (
            "is a folder, not a data file" if Path(config.data.path).is_dir() else "no such file"
        )
        raise DataError(problem, path=config.data.path)  # before Ray starts
    data_path = Path(config.data.path) if config.data.path else default_data()
    # Stopped on every way out: a local runtime's agents would otherwise outlive a driver that
    # failed or was stopped by a signal, and keep its ports open.
    with ray_runtime(config.ray.address, config.ray.num_cpus):
        ref, summary, info = stream_snapshots(config, data_path, progress=progress)
        snaps = ray.get(ref)
        result = run_sweep(ref, config, progress=progress)
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
        write_json(report, config.output.out)
        trials = write_trials_csv(result, config.output.out)
        page = write_visual_report(evaluation, config, result, report)
    log.info("results: %s, trials: %s, report: %s", config.output.out, trials, page)
    return report


def write_visual_report(
    evaluation: Evaluation, config: Config, result: SweepResult, report: dict[str, Any]
) -> Path:
    """PNG plots and the static HTML page beside the JSON (imported here: matplotlib is slow)."""
    from sweep.html_report import write_html
    from sweep.plots import write_plots

    out = Path(config.output.out)
    paths = evaluation.fill_paths(result.best_params)
    plots = write_plots(report, result.study, paths, out.parent, out.stem)
    return write_html(report, plots, out.with_name(f"{out.stem}_report.html"))


def cmd_run(args: argparse.Namespace) -> int:
    """`sor run`."""
    config = config_from_args(args, DATA_FLAGS, EVALUATION_FLAGS, STREAM_FLAGS, SWEEP_FLAGS)
    run(config, progress=not args.quiet and sys.stderr.isatty())
    print(f"results written to {Path(config.output.out).resolve()}")
    return 0
