"""Writing a report: the outputs claimed before any work, the JSON saved then printed, and a
summary table of its key numbers.

The rules every command that writes results follows (docs/reliability.md, "Outputs and
studies"):

1. Before any work, `claim_outputs` refuses an output path that is a folder or that resolves
   to an input (data file, configuration, study storage), makes sure the results' folder
   exists and takes a file in it, and locks the results (`<out>.lock`, `fcntl.flock`) so that
   a second live run writing the same results is refused, naming the first one's pid.
2. Every file is written to a temporary file in its folder and renamed into place
   (`sor.files.atomic_write`): never half a file, and a failed write leaves the old one.
3. A run with companion files (trials CSV, plots, HTML page) first removes the old results
   JSON, then every old companion, writes the new companions, and writes the results JSON
   last: a results JSON is there only once its run is complete, and the files beside it are
   its own.
4. Files first, then the terminal: the JSON is printed once it is saved, and a closed stdout
   (`sor run ... | head`) loses nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sor.errors import ConfigError
from sor.files import FileLock, OutputWriteError, lock_file, write_text
from sor.redaction import redact_text, redact_values

__all__ = [
    "Outputs",
    "claim_outputs",
    "print_report",
    "print_warnings",
    "say",
    "summary_table",
    "write_json",
]


@dataclass
class Outputs:
    """The claimed outputs of one run: the results JSON and the files written beside it."""

    results: Path
    companions: tuple[Path, ...]
    lock: FileLock

    def clear(self) -> None:
        """Remove the old results JSON, then every old companion, before writing new ones."""
        for path in (self.results, *self.companions):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise OutputWriteError(path, exc) from exc


@contextmanager
def claim_outputs(
    out: str | Path,
    *,
    companions: Sequence[Path] = (),
    inputs: Mapping[str, str | Path | None],
) -> Iterator[Outputs]:
    """Check and lock a run's outputs before any work starts; release the lock on exit.

    Args:
        out: the results JSON path (`output.out`).
        companions: the other files the run writes (trials CSV, plots, HTML page).
        inputs: {what it is: path} of every file the run reads or keeps, e.g. {"data file":
            "l1_day.csv", "configuration": "my.yaml"}; None values are skipped.

    Raises:
        ConfigError: an output is a folder or is one of the inputs, the results' folder cannot
            be created or written, or another live process holds the results' lock.
    """
    results = Path(out)
    if str(out).endswith(os.sep) or results.is_dir():
        raise ConfigError(
            f"output.out {out}: is a folder; give the results file, e.g. {results / 'results.json'}"
        )
    lock_path = results.with_name(f"{results.name}.lock")
    for path in (*companions, lock_path):
        if path.is_dir():
            raise ConfigError(f"output.out {out}: {path} (written beside it) is a folder")
    for path in (results, *companions, lock_path):
        for what, given in inputs.items():
            if given is not None and _same_file(path, Path(given)):
                raise ConfigError(
                    f"output.out {out}: writing {path} would overwrite the {what} {given}; "
                    "choose another --out"
                )
    folder = results.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        in_the_way = isinstance(exc, (FileExistsError, NotADirectoryError))
        reason = "a file is in the way of that path" if in_the_way else exc.strerror or exc
        problem = f"cannot write in the folder {folder}: {reason}"
        raise ConfigError(f"output.out {out}: {problem}") from None
    try:
        lock = lock_file(lock_path)
    except OSError as exc:
        raise ConfigError(f"output.out {out}: cannot create the lock {lock_path}: {exc}") from None
    if isinstance(lock, int):
        raise ConfigError(
            f"output.out {out}: another sor process (pid {lock or 'unknown'}) is writing these "
            f"results (lock {lock_path}); wait for it to finish or choose another --out"
        )
    try:
        yield Outputs(results, tuple(companions), lock)
    finally:
        lock.release()


def _same_file(output: Path, given: Path) -> bool:
    """Whether writing `output` would write `given`: the same path once links are resolved, or
    the same file under another name (a hard link)."""
    if os.path.realpath(output) == os.path.realpath(given):
        return True
    try:
        return os.path.samefile(output, given)
    except OSError:  # either does not exist (yet)
        return False


def say(text: str, file: Any = None) -> None:
    """Print a line to stdout (or `file`); a reader that has gone away (a closed pipe) is not
    an error: the results are on disk by then, and the rest of the output is dropped."""
    stream = sys.stdout if file is None else file
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit: point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    """Save the results JSON atomically (`sor.files.atomic_write`); returns its path."""
    # Secrets registered for this run (sor.redaction) never reach the file or the terminal,
    # wherever in the report they were quoted.
    text = json.dumps(redact_values(report), indent=2, allow_nan=False)
    written = write_text(path, text + "\n")
    logging.getLogger("sor").debug("results written to %s", path)
    return written


def print_warnings(report: dict[str, Any]) -> None:
    """With -q: only the report's warnings, one line each on stderr. They qualify the numbers
    in the results file (a router that left most of its order to the clean-up, a participation
    no desk would run at), so quiet never hides them."""
    for note in report.get("warnings", []):
        say(f"sor: warning: {redact_text(note)}", file=sys.stderr)


def print_report(report: dict[str, Any]) -> None:
    """Print the results JSON (as the task does), then, on stderr, the summary: the headline,
    the warnings one per line and the table (`summary_table`); with -q only the warnings."""
    say(json.dumps(redact_values(report), indent=2, allow_nan=False))
    log = logging.getLogger("sor")
    if log.isEnabledFor(logging.INFO):
        say(summary_table(report), file=sys.stderr)
    else:
        for note in report.get("warnings", []):
            log.warning("warning: %s", note)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def summary_table(report: dict[str, Any]) -> str:
    """The headline and key numbers of a report as text.

    First what was measured and how far to trust it, as the HTML page says it
    (`sweep.headline`): the data (and whether it is generated), the result against each
    baseline (with its 95% interval for a schedule), which parent orders the savings cover, the
    shares left to the clean-up and the warnings, one per line. Then the parameters, the line
    `sor.evaluation.backtest.savings_label` words, what the rows cover (one order, or totals
    over every order of a schedule) and the table.
    """
    from sor.evaluation.backtest import savings_label
    from sweep.headline import headline, plain

    head = headline(report)
    lines = [head.title]
    if head.data:
        lines.append(plain(head.data))
    lines.append(plain(head.verdict))
    lines += [f"  {plain(v.line)}" for v in head.verdicts]
    lines += [plain(head.orders), plain(head.cleanup)]
    if head.warnings:
        lines.append(f"warnings ({len(head.warnings)}):")
        lines += [f"  warning: {w}" for w in head.warnings]
    else:
        lines.append("warnings: none")
    params = ", ".join(f"{k}={v:.6g}" for k, v in report["best_parameters"].items())
    lines += [f"parameters: {params}", savings_label(report), plain(head.rows)]
    schedule = "schedule" in report
    per = "bps/order" if schedule else "bps"
    # With a schedule every column but the savings is over all parent orders, in and out of
    # sample: the clean-up share here is not the headline's, which is out of sample alone.
    total = " (all)" if schedule else ""
    rows = [
        (
            "strategy",
            f"avg fill px{total}",
            f"filled{total}",
            f"unfilled{total}",
            f"clean-up{total}",
            f"particip.{total}",
            f"completed cash{total}",
            f"savings {per}",
        )
    ]
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
                _percent(result.get("cleanup_share")),
                _percent(result.get("participation")),
                f"{result['completed_cash']:,.2f}",
                "" if savings is None else f"{savings:+.3f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join(lines)
