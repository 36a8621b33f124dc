"""Summary statistics of per-parent-order numbers: mean, standard error, bootstrap interval."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["summarize"]


def summarize(values: np.ndarray, *, resamples: int = 2000, seed: int = 0) -> dict[str, object]:
    """Mean, standard error and a percentile-bootstrap 95% interval of the mean of `values`.

    Args:
        values: one number per parent order (e.g. savings in bps).
        resamples: bootstrap resamples (seeded, so the interval is reproducible).
        seed: seeds the resampling.

    Returns:
        {"n", "mean", "std_error", "ci95": [low, high]}; None where `values` is too short to say
        (no mean without values; no error or interval with fewer than two).
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "std_error": None, "ci95": None}
    mean = float(x.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "std_error": None, "ci95": None}
    std_error = float(x.std(ddof=1) / math.sqrt(n))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"n": n, "mean": mean, "std_error": std_error, "ci95": [float(low), float(high)]}
