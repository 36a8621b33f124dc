"""The names of the files a sweep's report writes beside its results JSON.

Kept apart from the modules that write them (`sweep.plots` imports matplotlib, `sweep.report`
the evaluation), so that `sor run` can claim its outputs before anything slow is imported.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PLOTS", "trials_csv_path"]

#: Plot names, in the order the HTML report shows them; also the suffix of each PNG file.
PLOTS = (
    "fill_path",
    "venue_shares",
    "savings_distribution",
    "per_day_savings",
    "optimization_history",
    "param_importances",
)


def trials_csv_path(out: str) -> Path:
    """The trials table beside the JSON: results.json -> results_trials.csv."""
    path = Path(out)
    return path.with_name(f"{path.stem}_trials.csv")
