"""`sor run`: the whole mission in one command.

Start the embedded broker (unless --bootstrap), stream the data through Kafka, assemble the
snapshots into one Ray object, sweep, and write the report.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from sor.cli.flags import COMMON_FLAGS, STREAM_FLAGS, SWEEP_FLAGS, config_from_args
from sor.cli.output import write_json
from sor.config import Config
from sor.data.loader import load_updates, require_asks

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


def stream_snapshots(config: Config, data_path: Path, *, progress: bool = False):
    """CSV -> producer -> Kafka -> consumer -> one Ray object; returns (ref, data summary, info)."""
    from stream.broker import EmbeddedBroker
    from stream.consumer import consume_to_ray
    from stream.messages import new_stream_id
    from stream.producer import produce

    updates, summary = load_updates(
        data_path,
        **config.load_options(),
    )
    require_asks(updates.ask_px, data_path)
    kafka = config.kafka
    with ExitStack() as stack:
        bootstrap = kafka.bootstrap
        if bootstrap is None:
            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap
            log.info("embedded Kafka broker at %s", bootstrap)
        # One id for producer and consumer: on a shared topic the consumer skips older streams
        # and reads exactly this one, even while it is still being produced.
        stream_id = new_stream_id()
        produced: dict = {}
        failure: list[BaseException] = []

        def producer() -> None:
            try:
                produced["report"] = produce(
                    updates,
                    bootstrap=bootstrap,
                    topic=kafka.topic,
                    speed=config.stream.speed,
                    security=kafka.security,
                    progress=progress,
                    stream_id=stream_id,
                    clock=config.data.clock,
                    max_message_bytes=config.stream.max_message_bytes,
                    connect_timeout_s=config.stream.connect_timeout_s,
                    reconnect_timeout_s=config.stream.reconnect_timeout_s,
                    source={"path": str(data_path)},
                )
            except BaseException as exc:  # surfaced in the main thread below
                failure.append(exc)

        started = time.perf_counter()
        if config.stream.speed > 0:
            # Paced: consume while producing, as a live system would.
            thread = threading.Thread(target=producer, name="producer", daemon=True)
            thread.start()
        else:
            producer()
            thread = None
        if failure:
            raise failure[0]
        report = produced.get("report")
        ref, consumed = consume_to_ray(
            bootstrap=bootstrap,
            topic=kafka.topic,
            stream_id=stream_id,
            start_offset=getattr(report, "first_offset", None),
            idle_timeout_s=config.stream.idle_timeout_s,
            max_message_bytes=config.stream.max_message_bytes,
            security=kafka.security,
            connect_timeout_s=config.stream.connect_timeout_s,
            progress=progress,
            expected_events=getattr(report, "events", None),
        )
        if thread is not None:
            thread.join()
            if failure:
                raise failure[0]
            report = produced["report"]
        info = {
            "stream": {
                "topic": kafka.topic,
                "embedded_broker": kafka.bootstrap is None,
                "stream_id": stream_id,
                "wall_s": round(time.perf_counter() - started, 3),
                "produce": _as_dict(report),
                "consume": _as_dict(consumed),
            }
        }
    return ref, summary, info


def _as_dict(obj) -> dict:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj):
        return {k: v for k, v in asdict(obj).items() if isinstance(v, (int, float, str, bool))}
    return {}


def run(config: Config, *, progress: bool = True) -> dict:
    """The whole job on a validated config; returns the report (also written to output.out)."""
    import ray

    from sweep.driver import check_study, run_sweep
    from sweep.report import sweep_report, write_trials_csv
    from sweep.runtime import init_ray

    check_study(config)  # a bad storage URL or an unresumed study fails before any streaming
    if config.data.path and not Path(config.data.path).is_file():
        from sor.errors import DataError

        raise DataError("no such file", path=config.data.path)  # before Ray starts
    data_path = Path(config.data.path) if config.data.path else default_data()
    init_ray(config.ray.address, config.ray.num_cpus)
    ref, summary, info = stream_snapshots(config, data_path, progress=progress)
    snaps = ray.get(ref)
    result = run_sweep(ref, config, progress=progress)
    report = sweep_report(
        snaps,
        config,
        result,
        extra={
            "data": {**summary.to_dict(), "snapshots": len(snaps), "snapshot_bytes": snaps.nbytes},
            **info,
        },
    )
    write_json(report, config.output.out)
    trials = write_trials_csv(result, config.output.out)
    page = write_visual_report(snaps, config, result, report)
    log.info("results: %s, trials: %s, report: %s", config.output.out, trials, page)
    return report


def write_visual_report(snaps, config: Config, result, report: dict) -> Path:
    """PNG plots and the static HTML page beside the JSON (imported here: matplotlib is slow)."""
    from sor.evaluation.backtest import make_market
    from sor.evaluation.schedule import uses_schedule
    from sor.routers.static import RouterParams
    from sweep.html_report import write_html
    from sweep.plots import fill_paths, write_plots

    out = Path(config.output.out)
    paths = None
    if not uses_schedule(config):  # the fill path of one static-router parent order
        paths = fill_paths(make_market(snaps, config), RouterParams(**result.best_params), config)
    plots = write_plots(report, result.study, paths, out.parent, out.stem)
    return write_html(report, plots, out.with_name(f"{out.stem}_report.html"))


def cmd_run(args: argparse.Namespace) -> int:
    """`sor run`."""
    config = config_from_args(args, COMMON_FLAGS, STREAM_FLAGS, SWEEP_FLAGS)
    run(config, progress=not args.quiet and sys.stderr.isatty())
    print(f"results written to {Path(config.output.out).resolve()}")
    return 0
