"""Writing a report: the JSON saved and printed, and a summary table of its key numbers."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from sor.redaction import redact_values

__all__ = ["summary_table", "write_json"]


def write_json(report: dict[str, Any], path: str) -> None:
    """Print the results JSON (as the task does) and save it; a summary table goes to stderr."""
    # Secrets registered for this run (sor.redaction) never reach the file or the terminal,
    # wherever in the report they were quoted.
    text = json.dumps(redact_values(report), indent=2, allow_nan=False)
    print(text)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text + "\n")
    log = logging.getLogger("sor")
    log.debug("results written to %s", path)
    for note in report.get("warnings", []):
        log.warning("note: %s", note)
    if log.isEnabledFor(logging.INFO):
        print(summary_table(report), file=sys.stderr)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def summary_table(report: dict[str, Any]) -> str:
    """The key numbers of a report as a small text table.

    A line above the table says which parent orders the savings column covers (out of sample,
    or in sample: tuned on the same data), as `sor.evaluation.backtest.savings_label` words it.
    """
    from sor.evaluation.backtest import savings_label

    rows = [
        (
            "strategy",
            "avg fill px",
            "filled",
            "unfilled",
            "clean-up",
            "particip.",
            "completed cash",
            "savings bps",
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
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    params = ", ".join(f"{k}={v:.6g}" for k, v in report["best_parameters"].items())
    return "\n".join([f"parameters: {params}", savings_label(report), *lines])
