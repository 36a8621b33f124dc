"""Command line: `sor backtest | generate | broker | produce | run`.

A thin shell: parses arguments into the one `Config`, calls the packages, turns user errors into
one line on stderr and exit code 2 (1 for other failures).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

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
from sor.cli.pages import avoid_huge_page_stalls
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
  sor run --bootstrap kafka1:9092 --topic l1 --consume-only   # sweep what `sor produce` sent
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
    add_flags(p, DATA_FLAGS, EVALUATION_FLAGS, PARAM_FLAGS, required=["--data"])
    p.set_defaults(func=cmd_backtest)

    p = add_parser(
        "generate",
        help="write a seeded multi-venue MBP CSV",
        epilog=(
            "examples:\n"
            "  sor generate day.csv --rows 92219  # one taq-2018 session, as the bundled data\n"
            "  sor generate demo.csv --profile legacy --rows 60000 --schema mbp-10\n"
            "  sor generate taq.csv.gz --profile taq-2018 --rows 2000000 --days 20\n"
        ),
    )
    p.add_argument("path", help="CSV file to write")
    p.add_argument(
        "--rows",
        type=int,
        default=60_000,
        help="rows to write, in all (a taq-2018 session at its real pace holds 92,219)",
    )
    p.add_argument(
        "--schema",
        choices=["mbp-1", "mbp-10"],
        default=None,
        help="columns (default: the profile's: taq-2018 mbp-1, xnas-aapl and legacy mbp-10)",
    )
    p.add_argument(
        "--profile",
        choices=["legacy", "taq-2018", "xnas-aapl"],
        default="taq-2018",  # sor.synth.profiles.DEFAULT_PROFILE, not imported: numba is slow
        help=(
            "market (default: taq-2018, 11 venues calibrated to a real NYSE TAQ day, the bundled"
            " data's); xnas-aapl: one venue, MBP-10; legacy: 5 venues without adverse selection"
        ),
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
    add_flags(p, DATA_FLAGS, STREAM_FLAGS, required=["--data"])
    p.set_defaults(func=cmd_produce)

    p = add_parser(
        "run", help="the whole job: broker, produce, consume, sweep, report", epilog=EPILOG_RUN
    )
    add_flags(p, DATA_FLAGS, EVALUATION_FLAGS, STREAM_FLAGS, SWEEP_FLAGS)
    p.add_argument(
        "--consume-only",
        "--no-produce",
        action="store_true",
        help="sweep a stream another process produced on --topic (`sor produce`), signed with "
        "the key in the variable stream.key_env names; needs --bootstrap, no --data",
    )
    p.add_argument(
        "--stream-id",
        metavar="ID",
        help="with --consume-only: the stream to read (`sor produce` prints it); default: the "
        "first on the topic signed with the key",
    )
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sor` console script; returns the exit code.

    Called without `argv` (as the console script and `python -m sor` do), it is the process's
    entry: Ctrl-C (SIGINT) and SIGTERM then print one line and end the process at once with
    exit code 130 (143), whatever it was doing, and a run that started Ray stops it and leaves
    with `os._exit` once its files are written, rather than wait for the interpreter to tear
    down Ray's and the report's modules (seconds).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    entry = argv is None
    if entry:
        avoid_huge_page_stalls()
    _configure_output(args, entry=entry)
    previous = _install_signal_handlers() if entry else None
    try:
        try:
            code = _call(args, entry=entry)
        except (KeyboardInterrupt, _Terminated):  # a signal while an error was being reported
            code = 128 + (_said[0] if _said else signal.SIGINT)
        if _said:
            # Announced, so it ends as a signal, even where the KeyboardInterrupt was lost on
            # the way (dropped by a callback, turned into another error) and the command went on.
            code = 128 + _said[0]
        if entry:
            _leave(code)  # does not return when this run started Ray
        return code
    finally:
        if previous is not None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _configure_output(args: argparse.Namespace, *, entry: bool = False) -> None:
    """Logging on stderr (`setup_logging`); with -q Python's warnings are silenced too.

    As the process's entry (`entry`), Python's warnings (the loader's notes about data it kept
    or repaired) are logged as one line each (`_log_warning`) instead of Python's two lines
    naming the library's file and source line.
    """
    setup_logging(args.verbose, args.quiet)
    if args.quiet:
        warnings.simplefilter("ignore")
    if entry:
        warnings.showwarning = _log_warning


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """`warnings.showwarning` for the command line: the message alone, as a log line."""
    logging.getLogger("sor").warning("warning: %s", message)


def setup_logging(verbose: int, quiet: bool) -> None:
    """Log to stderr through the secret-redacting filter: -q errors only, -v more, -vv every
    library's debug lines too.

    The filter sits on the root logger's handlers, so it sees every logger's records (kafka-python
    logs the SASL exchange and the raw bytes sent at -vv); the secrets it masks are registered
    when the configuration is read (`sor.cli.flags.config_from_args`).
    """
    level = logging.ERROR if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    install_log_filter()
    # kafka-python logs every connection at INFO and event-loop timing at WARNING; -vv shows it.
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose > 1 else logging.ERROR)


def _call(args: argparse.Namespace, *, entry: bool) -> int:
    """Run the subcommand; user errors become one line on stderr and exit code 2."""
    try:
        return int(args.func(args) or 0)
    except SorError as exc:
        _error(exc)
        return 2
    except OutputWriteError as exc:  # a full disk, a folder gone read-only: not the input's fault
        _error(exc)
        return 1
    except KeyboardInterrupt:
        _interrupted(signal.SIGINT, silence=entry)
        return 130
    except _Terminated:
        return 128 + signal.SIGTERM
    except Exception:
        # A bug or a library's own error: the traceback, with the run's secrets masked (a
        # database driver's message may quote the URL it was given).
        print(redact_text(traceback.format_exc()), file=sys.stderr, end="")
        return 1


def _error(exc: Exception) -> None:
    # One line, as promised: a message of several lines (a list of invalid keys) is joined.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    head, rest = (lines[0], lines[1:]) if lines else ("", [])
    if rest:
        head = f"{head} {'; '.join(rest)}"
    print(f"sor: error: {redact_text(head)}", file=sys.stderr, flush=True)


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every `with` block cleans up on the way out."""


_said: list[int] = []  # the signal already announced, if any


#: After a signal, the longest the command may take to wind down before the process ends anyway.
WIND_DOWN_S = 5.0


def _interrupted(signum: int, *, silence: bool = True) -> None:
    """Say once that the command was stopped, then silence everything else it might print.

    What the command prints while it winds down (reconnecting clients, a Ray runtime losing its
    processes, tracebacks of threads cut short) says nothing the user needs: the one line is the
    whole message, and the exit code tells how it ended. `silence` (the process's entry only)
    also points stdout and stderr at /dev/null (an interrupted command prints no results) and
    ends the process after `WIND_DOWN_S` seconds if the command has not wound down by then.
    """
    if _said:
        return
    _said.append(signum)
    what = "interrupted" if signum == signal.SIGINT else "terminated"
    # A progress bar (a paced `sor produce`) leaves its line open: the one line starts its own.
    start = "\n" if _progress_bar_shown() else ""
    with contextlib.suppress(OSError, ValueError):
        print(f"{start}sor: {what}", file=sys.stderr, flush=True)
    if not silence:
        return
    threading.Thread(target=_watchdog, name="wind-down", daemon=True).start()
    logging.disable(logging.CRITICAL)
    for stream in (sys.stdout, sys.stderr):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


def _progress_bar_shown() -> bool:
    """Whether a tqdm progress bar is on the screen (tqdm keeps its live bars in `_instances`)."""
    tqdm = getattr(sys.modules.get("tqdm"), "tqdm", None)
    try:
        return any(not bar.disable for bar in list(getattr(tqdm, "_instances", ())))
    except Exception:  # a bar being closed in another thread; the line is cosmetic
        return False


def _watchdog() -> None:
    time.sleep(WIND_DOWN_S)
    _force_exit()


def _force_exit() -> NoReturn:
    """End the process now with the signal's code, killing every process it started."""
    code = 128 + (_said[0] if _said else signal.SIGINT)
    try:
        _kill_descendants()
    finally:
        os._exit(code)


def _kill_descendants() -> None:
    """SIGKILL every process this one started, and theirs (Linux; elsewhere nothing).

    After Ctrl-C nothing they hold is needed: the embedded broker's topics are in memory, the
    local Ray runtime's objects are this run's, the study is in memory or already committed.
    A runtime this process joined (ray.address) runs elsewhere and is not among them.

    They are all stopped (SIGSTOP) before any is killed: a process killed while its child is
    being started would orphan that child, which the kernel hands to init, out of this tree
    (a Ray runtime cut short while it starts does this with its agents). A stopped process
    starts nothing, so once a pass finds no new descendant the tree is complete. The killing
    is then left to a forked child, and the caller exits at once: a stopped process closes no
    socket, so nothing in this process (Ray's threads notice a raylet's death and end the
    process with their own exit code) sees its runtime die before the exit.
    """
    frozen: set[int] = set()
    for _ in range(50):
        found = _descendants(os.getpid()) - frozen
        if not found:
            break
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
        frozen |= found
    if not frozen:
        return
    parent = os.getpid()
    try:
        killer = os.fork()
    except OSError:
        killer = -1  # no fork: they are killed here
    if killer > 0:
        return
    for pid in frozen:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if os.getpid() != parent:  # the forked killer
        os._exit(0)


def _descendants(root: int) -> set[int]:
    """The pids of `root`'s children, theirs, and so on, read from /proc (empty elsewhere)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    # pid (comm) state ppid ...: comm may hold spaces and parentheses
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents[int(entry)] = ppid
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


#: Packages whose Python code runs as a callback from native code: Numba's compiled kernels
#: call `numba.core.serialize` to box the arrays they return, llvmlite's JIT calls back through
#: ctypes while Numba compiles. An exception raised there does not reach the command as itself
#: (ctypes drops it and the command goes on; a kernel turns it into a SystemError, or crashes).
_CALLED_FROM_NATIVE_CODE = ("numba", "llvmlite")


def _in_native_callback(frame: FrameType | None) -> bool:
    """Whether the main thread was stopped in code of `_CALLED_FROM_NATIVE_CODE`."""
    while frame is not None:
        module = frame.f_globals.get("__name__")
        if isinstance(module, str) and module.split(".", 1)[0] in _CALLED_FROM_NATIVE_CODE:
            return True
        frame = frame.f_back
    return False


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _said:
        _force_exit()  # a second Ctrl-C: no more waiting for the clean-up
    _interrupted(signum)
    if _in_native_callback(frame):
        _force_exit()  # an exception raised here would not stop the command
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise _Terminated


def _install_signal_handlers() -> dict[int, Any]:
    """SIGINT and SIGTERM -> `_on_signal` in the main thread; returns the previous handlers.

    A shell starts background jobs with SIGINT ignored; `kill -INT` must still stop sor.
    """
    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, _on_signal)
    _watch_signals()
    return previous


def _watch_signals() -> None:
    """Bound the wind-down even when the main thread cannot run its handler.

    Python runs `_on_signal` in the main thread between bytecodes; a main thread blocked in a
    library's native code (Ray's client retrying a GCS that the same signal stopped, for a
    minute) would run it only then. The interpreter's low-level handler also writes the
    signal's number to a wakeup pipe at once, from whichever thread it lands on: a thread
    reading it ends the process `WIND_DOWN_S` after the signal with the signal's code, unless
    the main thread has ended it by then.
    """
    try:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except (OSError, ValueError):  # not the main thread, or no pipes: the handler alone
        return
    threading.Thread(
        target=_deadline, args=(read_end,), name="signal-deadline", daemon=True
    ).start()


def _deadline(read_end: int) -> None:
    stopping = (signal.SIGINT, signal.SIGTERM)
    while True:
        signums = os.read(read_end, 16)
        if not signums:
            return
        first = next((n for n in signums if n in stopping), None)
        if first is not None:  # other signals a library handles in Python are not ours
            break
    time.sleep(WIND_DOWN_S)
    if not _said:
        _said.append(first)
    _force_exit()


#: Longest a failed run waits for a Ray start under way before killing what it started.
RAY_SETTLE_S = 30.0


def _leave(code: int) -> None:
    """If this run started Ray, end the process with `code` now: flush, stop Ray, `os._exit`.

    A run that succeeded has started Ray's graceful stop when its sweep ended; whatever of it is
    still under way when the results are written is killed instead of waited for. After a
    signal, or on one while Ray stops, every process this one started is killed at once
    (`_kill_descendants`) and the code is 130 (143).
    Everything else this process owns is released by then: the broker is stopped and the
    outputs' locks are dropped by the `with` blocks the command has left. Without Ray, returns.
    """
    run = sys.modules.get("sor.cli.run")
    if run is None or run.RAY is None:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if _said or code != 0:
        # Nothing of the run is needed any more: no graceful stop. A failed run (its error is
        # already printed) first lets a Ray start under way finish, so that no process of it is
        # spawned after the kill; after a signal nothing is waited for.
        if not _said:
            with contextlib.suppress(BaseException):  # a signal meanwhile: kill at once
                run.RAY.settle(RAY_SETTLE_S)
        with contextlib.suppress(Exception):
            _kill_descendants()
        os._exit(128 + _said[0] if _said else code)
    try:
        if run.stop_ray():
            # The results are written and nothing of the runtime is needed: the prompt does not
            # wait for Ray's graceful stop (a second or more) to end; what is left is killed.
            _kill_descendants()
    except (KeyboardInterrupt, _Terminated):
        _force_exit()
    except Exception:  # Ray failing to stop must not change what the run reports
        logging.getLogger("sor").debug("stopping Ray failed", exc_info=True)
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
