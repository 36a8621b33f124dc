"""Command line: `sor backtest | generate | broker | produce | run`.

A thin shell: parses arguments into the one `Config`, calls the packages, turns user errors into
one line on stderr and exit code 2 (1 for other failures).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sor.errors import SorError

EPILOG_BACKTEST = """examples:
  sor backtest --data l1_day.csv --lambda-over 0.4 --lambda-under 0.6 --theta-queue 0.3
  sor backtest --data taq.csv.gz --config configs/default.yaml --set order.cap=displayed
"""
EPILOG_RUN = """examples:
  sor run                                   # embedded broker, generated data, local Ray
  sor run --data l1_day.csv --start 13:36:32 --end 13:45:14 --trials 500
  sor run --bootstrap kafka1:9092 --ray-address ray://head:10001 --config my.yaml
"""

# Flags shared by the commands that read a config: flag -> dotted config key.
COMMON_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--data": (
        "data.path",
        {"help": "Databento MBP-1/MBP-10 CSV (plain or .gz) or DBN (.dbn, .dbn.zst)"},
    ),
    "--symbol": ("data.symbol", {"help": "instrument to use where the file holds several"}),
    "--start": ("window.start", {"help": "window start: ISO 8601, ns, or UTC time of day"}),
    "--end": ("window.end", {"help": "window end (inclusive)"}),
    "--out": ("output.out", {"help": "results JSON path (default results.json)"}),
    "--allocator": (
        "router.allocator",
        {"help": "static (model.md §3 split) or cont_kukanov (market + queue-aware limits)"},
    ),
    "--schedule": (
        "schedule.enabled",
        {
            "action": "store_const",
            "const": True,
            "help": "many parent orders (schedule.*) with a walk-forward split",
        },
    ),
}
STREAM_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--bootstrap": (
        "kafka.bootstrap",
        {"help": "Kafka bootstrap servers HOST:PORT[,...]; default: start the embedded broker"},
    ),
    "--topic": ("kafka.topic", {"help": "topic (default mock_l1_stream)"}),
    "--speed": (
        "stream.speed",
        {"type": float, "help": "pacing: 0 as fast as possible, 1 real time"},
    ),
}
SWEEP_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--trials": ("search.trials", {"type": int, "help": "number of Optuna trials"}),
    "--sampler": ("search.sampler", {"help": "grid, random, tpe, cmaes or qmc"}),
    "--seed": ("search.seed", {"type": int, "help": "sampler seed"}),
    "--storage": (
        "search.storage",
        {"help": "Optuna storage URL (sqlite:///sweep.db) or journal file"},
    ),
    "--study-name": ("search.study_name", {"help": "Optuna study name"}),
    "--resume": (
        "search.resume",
        {"action": "store_const", "const": True, "help": "continue the stored study"},
    ),
    "--ray-address": (
        "ray.address",
        {"help": "existing Ray cluster (default: $RAY_ADDRESS or local)"},
    ),
    "--num-cpus": ("ray.num_cpus", {"type": int, "help": "CPUs for a local Ray runtime"}),
}
PARAM_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--lambda-over": ("params.lambda_over", {"type": float, "help": "overfill penalty, $/share"}),
    "--lambda-under": (
        "params.lambda_under",
        {"type": float, "help": "underfill penalty, $/share"},
    ),
    "--theta-queue": ("params.theta_queue", {"type": float, "help": "queue-risk penalty, $/share"}),
    "--horizon-s": (
        "params.horizon_s",
        {"type": float, "help": "decision horizon T of the cont_kukanov router, seconds"},
    ),
}


def _add_flags(parser: argparse.ArgumentParser, *groups: dict) -> None:
    parser.add_argument("--config", help="YAML configuration (see configs/default.yaml)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config key, e.g. --set order.cap=displayed",
    )
    for group in groups:
        for flag, (key, kwargs) in group.items():
            if "action" not in kwargs:
                kwargs = {"metavar": key.rsplit(".", 1)[-1].upper(), **kwargs}
            parser.add_argument(flag, dest=key.replace(".", "__"), **kwargs)


def config_from_args(args: argparse.Namespace, *groups: dict):
    """Build the validated `Config` from --config, the dedicated flags and --set overrides."""
    from sor.config import load_config, parse_override

    overrides: dict[str, Any] = {}
    for group in groups:
        for key, _ in group.values():
            overrides[key] = getattr(args, key.replace(".", "__"))
    for text in args.set:
        key, value = parse_override(text)
        overrides[key] = value
    return load_config(args.config, overrides)


def _print_json(data: dict) -> None:
    print(json.dumps(data, indent=2))


def cmd_backtest(args: argparse.Namespace) -> int:
    """Router at fixed parameters and all baselines, straight from the CSV."""
    from sor.config import ALLOCATOR_PARAMS
    from sor.data.loader import load_snapshots, require_asks
    from sor.evaluation.backtest import (
        build_report,
        evaluate,
        make_market,
        result_warnings,
        run_baselines,
    )
    from sor.evaluation.schedule import make_schedule_market, schedule_report, uses_schedule
    from sor.routers.static import RouterParams

    config = config_from_args(args, COMMON_FLAGS, PARAM_FLAGS)
    if config.data.path is None:
        raise SorError("sor backtest needs --data PATH (or data.path in the config)")
    snaps, summary = load_snapshots(
        config.data.path,
        **config.load_options(),
    )
    require_asks(snaps.ask_px, config.data.path)
    if uses_schedule(config):
        names = ALLOCATOR_PARAMS[config.router.allocator]
        params = {k: v for k, v in config.params.model_dump().items() if k in names}
        report = schedule_report(make_schedule_market(snaps, config), params, config)
    else:
        market = make_market(snaps, config)
        static = RouterParams(
            **{k: getattr(config.params, k) for k in RouterParams.__annotations__}
        )
        report = build_report(
            static,
            evaluate(market, static, config.order),
            run_baselines(market, config),
            config.order.size,
        )
    report["data"] = {**summary.to_dict(), "snapshots": len(snaps), "snapshot_bytes": snaps.nbytes}
    report["warnings"] = result_warnings(report)
    report["config"] = config.redacted()
    write_json(report, config.output.out)
    return 0


def write_json(report: dict, path: str) -> None:
    """Print the results JSON (as the task does) and save it; a summary table goes to stderr."""
    text = json.dumps(report, indent=2, allow_nan=False)
    print(text)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text + "\n")
    log = logging.getLogger("sor")
    log.debug("results written to %s", path)
    for note in report.get("warnings", []):
        log.warning("note: %s", note)
    if log.isEnabledFor(logging.INFO):
        print(summary_table(report), file=sys.stderr)


def summary_table(report: dict) -> str:
    """The key numbers of a report as a small text table."""
    rows = [("strategy", "avg fill px", "filled", "unfilled", "completed cash", "savings bps")]
    strategies = {"optimized": report["optimized"], **report["baselines"]}
    for name, result in strategies.items():
        savings = report["savings_vs_baselines_bps"].get(name)
        px = result["avg_fill_px"]
        rows.append(
            (
                name,
                "-" if px is None else f"{px:.6f}",
                f"{result['filled_shares']:,}",
                f"{result['unfilled_shares']:,}",
                f"{result['completed_cash']:,.2f}",
                "" if savings is None else f"{savings:+.3f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    params = ", ".join(f"{k}={v:.6g}" for k, v in report["best_parameters"].items())
    return "\n".join([f"parameters: {params}", *lines])


def cmd_generate(args: argparse.Namespace) -> int:
    """Write a seeded multi-venue Databento-style CSV."""
    from sor.synth.generate import generate

    if args.rows < 1:
        raise SorError(f"--rows must be at least 1, but got {args.rows}")
    parent = Path(args.path).resolve().parent
    if not parent.is_dir():
        raise SorError(f"{args.path}: directory {parent} does not exist")
    try:
        summary = generate(
            args.path, n_events=args.rows, schema=args.schema, style=args.style, seed=args.seed
        )
    except OSError as exc:
        raise SorError(f"{args.path}: cannot write ({exc.strerror or exc})") from None
    print(summary)
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    """`sor broker` (imported on use: Kafka clients are slow to import)."""
    from sor.cli.stream_commands import cmd_broker as run

    return run(args)


def cmd_produce(args: argparse.Namespace) -> int:
    """`sor produce`."""
    from sor.cli.stream_commands import cmd_produce as run

    return run(args)


def cmd_run(args: argparse.Namespace) -> int:
    """`sor run` (imported on use: Ray and Optuna are slow to import)."""
    from sor.cli.run import cmd_run as run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="sor",
        description="Smart order router research: stream, sweep, benchmark.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="errors only, no progress")
    # The same flags after the subcommand; SUPPRESS keeps them from resetting the main ones.
    verbosity = argparse.ArgumentParser(add_help=False)
    verbosity.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
    verbosity.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[verbosity], formatter_class=raw, **kwargs)

    p = add_parser(
        "backtest",
        help="router at given parameters vs baselines, from a CSV",
        epilog=EPILOG_BACKTEST,
    )
    _add_flags(p, COMMON_FLAGS, PARAM_FLAGS)
    p.set_defaults(func=cmd_backtest)

    p = add_parser(
        "generate",
        help="write a seeded multi-venue MBP CSV",
        epilog="example:\n  sor generate data.csv --rows 60000 --schema mbp-10\n",
    )
    p.add_argument("path", help="CSV file to write")
    p.add_argument("--rows", type=int, default=60_000, help="book events (rows) to write")
    p.add_argument("--schema", choices=["mbp-1", "mbp-10"], default="mbp-10", help="columns")
    p.add_argument(
        "--style",
        choices=["pretty", "raw"],
        default="pretty",
        help="pretty: ISO times and decimal prices; raw: integer ns and 1e-9 prices",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same file)")
    p.set_defaults(func=cmd_generate)

    p = add_parser(
        "broker",
        help="run the embedded Kafka broker until Ctrl-C",
        epilog="example:\n  sor broker --port 9092\n",
    )
    p.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    p.set_defaults(func=cmd_broker)

    p = add_parser(
        "produce",
        help="stream a CSV's snapshot events to Kafka",
        epilog="example:\n  sor produce --data l1_day.csv --bootstrap 127.0.0.1:9092 --speed 1\n",
    )
    _add_flags(p, COMMON_FLAGS, STREAM_FLAGS)
    p.set_defaults(func=cmd_produce)

    p = add_parser(
        "run", help="the whole job: broker, produce, consume, sweep, report", epilog=EPILOG_RUN
    )
    _add_flags(p, COMMON_FLAGS, STREAM_FLAGS, SWEEP_FLAGS)
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sor` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    # kafka-python logs every connection at INFO and event-loop timing at WARNING; -vv shows it.
    logging.getLogger("kafka").setLevel(logging.DEBUG if args.verbose > 1 else logging.ERROR)
    try:
        return int(args.func(args) or 0)
    except SorError as exc:
        print(f"sor: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sor: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
