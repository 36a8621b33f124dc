"""Command line: `sor backtest | generate | broker | produce | run`.

A thin shell: parses arguments into the one `Config`, calls the packages, turns user errors into
one line on stderr and exit code 2 (1 for other failures).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from sor.cli.backtest import cmd_backtest
from sor.cli.flags import (
    DATA_FLAGS,
    EVALUATION_FLAGS,
    PARAM_FLAGS,
    STREAM_FLAGS,
    SWEEP_FLAGS,
    add_flags,
)
from sor.cli.generate import cmd_generate
from sor.errors import SorError
from sor.files import OutputWriteError
from sor.redaction import install_log_filter, redact_text

__all__ = ["build_parser", "main", "setup_logging"]

EPILOG_BACKTEST = """examples:
  sor backtest --data l1_day.csv --lambda-over 0.4 --lambda-under 0.6 --theta-queue 0.3
  sor backtest --data taq.csv.gz --config configs/default.yaml --set order.cap=displayed
"""
EPILOG_RUN = """examples:
  sor run                                   # embedded broker, generated data, local Ray
  sor run --data l1_day.csv --start 13:36:32 --end 13:45:14 --trials 500
  sor run --bootstrap kafka1:9092 --ray-address ray://head:10001 --config my.yaml
"""


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
    add_flags(p, DATA_FLAGS, EVALUATION_FLAGS, PARAM_FLAGS)
    p.set_defaults(func=cmd_backtest)

    p = add_parser(
        "generate",
        help="write a seeded multi-venue MBP CSV",
        epilog=(
            "examples:\n  sor generate data.csv --rows 60000 --schema mbp-10\n"
            "  sor generate taq.csv.gz --profile taq-2018 --rows 2000000 --days 20\n"
        ),
    )
    p.add_argument("path", help="CSV file to write")
    p.add_argument("--rows", type=int, default=60_000, help="book events (rows) to write, in all")
    p.add_argument(
        "--schema",
        choices=["mbp-1", "mbp-10"],
        default=None,
        help="columns (default: the profile's; legacy: mbp-10)",
    )
    p.add_argument(
        "--profile",
        choices=["legacy", "taq-2018", "xnas-aapl"],
        default="legacy",
        help="market: legacy (the bundled demo data) or one calibrated to a real file",
    )
    p.add_argument(
        "--days", type=int, default=1, help="trading days, one session each (consecutive dates)"
    )
    p.add_argument(
        "--style",
        choices=["pretty", "raw"],
        default="pretty",
        help="pretty: ISO times and decimal prices; raw: integer ns and 1e-9 prices",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same file)")
    p.add_argument("--force", action="store_true", help="overwrite PATH if it exists")
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
    add_flags(p, DATA_FLAGS, STREAM_FLAGS)
    p.set_defaults(func=cmd_produce)

    p = add_parser(
        "run", help="the whole job: broker, produce, consume, sweep, report", epilog=EPILOG_RUN
    )
    add_flags(p, DATA_FLAGS, EVALUATION_FLAGS, STREAM_FLAGS, SWEEP_FLAGS)
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sor` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except SorError as exc:
        print(f"sor: error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except OutputWriteError as exc:  # a full disk, a folder gone read-only: not the input's fault
        print(f"sor: error: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sor: interrupted", file=sys.stderr)
        return 130
    except Exception:
        # A bug or a library's own error: the traceback, with the run's secrets masked (a
        # database driver's message may quote the URL it was given).
        print(redact_text(traceback.format_exc()), file=sys.stderr, end="")
        return 1


def setup_logging(verbose: int, quiet: bool) -> None:
    """Log to stderr at the level the flags ask, through the secret-redacting filter.

    The filter sits on the root logger's handlers, so it sees every logger's records (kafka-python
    logs the SASL exchange and the raw bytes sent at -vv); the secrets it masks are registered
    when the configuration is read (`sor.cli.flags.config_from_args`).
    """
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    install_log_filter()
    # kafka-python logs every connection at INFO and event-loop timing at WARNING; -vv shows it.
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose > 1 else logging.ERROR)


if __name__ == "__main__":
    sys.exit(main())
