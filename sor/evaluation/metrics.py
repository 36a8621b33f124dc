"""Summary statistics of per-parent-order numbers that respect the orders' overlap and days.

Parent orders of a schedule overlap (one arrives every `interval_s`, each lasts `horizon_s`), so
neighbouring shortfalls share market moves and are not independent: an iid bootstrap or the
textbook s / sqrt(n) understates the uncertainty of their mean. `summarize` therefore gives

- a Newey-West (HAC, Bartlett kernel) standard error with lag `block_length - 1`, and
- a percentile interval from a seeded circular block bootstrap with blocks of `block_length`
  consecutive orders,

where, with m = `overlap` (ceil(horizon_s / interval_s): the orders whose arrivals fall within
one horizon, itself included),

    block_length = max(2 m, ceil(n ** (1/3))), at most n // 2 (at least 1).

Why: orders up to m - 1 apart share part of their horizon (and m apart can share a snapshot), so
their shortfalls are correlated. The Bartlett kernel weighs the autocovariance at lag k by
1 - k / block_length, which is also the weight a block bootstrap with blocks of that length
implicitly gives it (Kuensch 1989); with 2 m every overlapping lag keeps at least half its weight.
The n ** (1/3) floor is the usual growth rate of the block length (Hall, Horowitz & Jing 1995),
so that dependence beyond the overlap (the same morning's drift) is caught as the sample grows.
The cap keeps at least two blocks, so a short series still has an interval with some width.

Days: blocks never cross a day (a calendar date of `window.timezone`, `ParentOrder.day`). Each day
is its own circle (a block that runs off the end of a day wraps to that day's first order, as the
circular block bootstrap does over the whole series), a day shorter than a block is one block, and
the resample draws blocks from every day at random; the HAC error sums autocovariances within days
only. With `DAY_BOOTSTRAP_MIN_DAYS` days or more, whole days are resampled instead (a cluster
bootstrap) and the standard error is clustered by day, which covers every correlation within a day.

Hand-written in numpy (statsmodels and arch are not dependencies of the project); tests check
the standard error against a direct computation and against numbers statsmodels gives.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "DAY_BOOTSTRAP_MIN_DAYS",
    "block_length",
    "circular_block_bootstrap_means",
    "circular_block_indices",
    "day_bootstrap_means",
    "day_clustered_std_error",
    "newey_west_std_error",
    "summarize",
]

#: From this many days on, whole days are resampled (and the standard error clustered by day).
DAY_BOOTSTRAP_MIN_DAYS = 20

_CHUNK = 1 << 22  # resampled orders held at once by the block bootstrap


def block_length(n: int, overlap: int) -> int:
    """Orders per bootstrap block: max(2 overlap, ceil(n ** (1/3))), at most n // 2, at least 1.

    Args:
        n: orders in the series.
        overlap: orders whose arrivals fall within one horizon, itself included (1: none overlap).
    """
    rule = max(2 * max(overlap, 1), math.ceil(round(math.pow(n, 1 / 3), 9)))
    return max(1, min(rule, n // 2))


def _segments(days: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of equal consecutive day labels."""
    if len(days) == 0:
        return []
    cuts = np.flatnonzero(days[1:] != days[:-1]) + 1
    bounds = [0, *cuts.tolist(), len(days)]
    return list(zip(bounds[:-1], bounds[1:], strict=False))


def newey_west_std_error(values: np.ndarray, lag: int, days: np.ndarray | None = None) -> float:
    """Newey-West (Bartlett kernel) standard error of the mean of `values`.

    var = n / (n - 1) * (g_0 + 2 sum_{k=1..lag} (1 - k / (lag + 1)) g_k) / n, with
    g_k = sum_t e_t e_{t-k} / n over pairs on the same day, e = values - mean. The n / (n - 1)
    factor makes lag 0 the textbook s / sqrt(n) (statsmodels' `use_correction`).

    Args:
        values: the series, in time order (at least two values).
        lag: the largest lag counted.
        days: a day label per value (runs of equal labels); None: one day.
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    e = x - x.mean()
    segments = _segments(days) if days is not None else [(0, n)]
    total = float(e @ e)
    for k in range(1, lag + 1):
        weight = 1.0 - k / (lag + 1)
        cross = sum(float(e[a + k : b] @ e[a : b - k]) for a, b in segments if b - a > k)
        total += 2.0 * weight * cross
    return math.sqrt(max(total, 0.0) / (n - 1) / n)


def day_clustered_std_error(values: np.ndarray, days: np.ndarray) -> float:
    """Standard error of the mean clustered by day: G / (G - 1) * sum_g S_g^2 / n^2.

    S_g is day g's sum of deviations from the mean; G days (at least two).
    """
    x = np.asarray(values, dtype=np.float64)
    e = x - x.mean()
    sums = np.array([e[a:b].sum() for a, b in _segments(days)])
    g = len(sums)
    return math.sqrt(g / (g - 1) * float(sums @ sums)) / len(x)


def _blocks(n: int, block: int, days: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, int]:
    """Every block: rows[p, :] the orders of the block starting at order p (valid where True).

    Also how many blocks a resample draws: enough for n orders even if every one is shortest.
    """
    segments = _segments(days) if days is not None else [(0, n)]
    rows = np.zeros((n, block), dtype=np.int64)
    valid = np.zeros((n, block), dtype=bool)
    for a, b in segments:
        size = min(block, b - a)
        rows[a:b, :size] = a + (np.arange(b - a)[:, None] + np.arange(size)[None, :]) % (b - a)
        valid[a:b, :size] = True
    count = -(-n // min(min(block, b - a) for a, b in segments))
    return rows, valid, count


def _join(starts: np.ndarray, rows: np.ndarray, valid: np.ndarray, n: int) -> np.ndarray:
    """The first n orders of the blocks starting at `starts` (one resample per row)."""
    taken = valid[starts].reshape(len(starts), -1)
    keep = taken & (np.cumsum(taken, axis=1) <= n)
    joined: np.ndarray = rows[starts].reshape(len(starts), -1)[keep].reshape(len(starts), n)
    return joined


def circular_block_indices(
    n: int,
    block: int,
    resamples: int,
    rng: np.random.Generator,
    days: np.ndarray | None = None,
) -> np.ndarray:
    """The orders of `resamples` circular block bootstrap resamples of n orders, within days.

    A block starts at any order (uniformly) and takes the next `block` orders of its day,
    wrapping to the day's first order; a day shorter than `block` gives its whole day. Blocks
    are joined until they hold n orders (the last one cut short).

    Args:
        n: orders in the series.
        block: orders per block.
        resamples: how many resamples.
        rng: draws the block starts.
        days: a day label per order (runs of equal labels); None: one day.

    Returns:
        int64[resamples, n]: order indices.
    """
    rows, valid, count = _blocks(n, block, days)
    return _join(rng.integers(0, n, size=(resamples, count)), rows, valid, n)


def circular_block_bootstrap_means(
    values: np.ndarray,
    block: int,
    resamples: int,
    rng: np.random.Generator,
    days: np.ndarray | None = None,
) -> np.ndarray:
    """Means of the resamples of `circular_block_indices` (same arguments, same draws).

    Returns:
        float64[resamples].
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    rows, valid, count = _blocks(n, block, days)
    starts = rng.integers(0, n, size=(resamples, count))
    means = np.empty(resamples)
    chunk = max(1, _CHUNK // (count * block))  # resamples at a time, to bound memory
    for i in range(0, resamples, chunk):
        means[i : i + chunk] = x[_join(starts[i : i + chunk], rows, valid, n)].mean(axis=1)
    return means


def day_bootstrap_means(
    values: np.ndarray, days: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Means of `resamples` resamples of whole days (drawn with replacement, as many as there are).

    Returns:
        float64[resamples]: each the mean over every order of the drawn days.
    """
    x = np.asarray(values, dtype=np.float64)
    segments = _segments(days)
    sums = np.array([x[a:b].sum() for a, b in segments])
    counts = np.array([b - a for a, b in segments], dtype=np.float64)
    drawn = rng.integers(0, len(segments), size=(resamples, len(segments)))
    means: np.ndarray = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    return means


def summarize(
    values: np.ndarray,
    *,
    overlap: int = 1,
    days: np.ndarray | None = None,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, object]:
    """Mean, HAC standard error and block-bootstrap 95% interval of the mean of `values`.

    Args:
        values: one number per parent order (e.g. savings in bps), in arrival order.
        overlap: orders whose arrivals fall within one horizon (ceil(horizon_s / interval_s));
            1 when the orders do not overlap.
        days: a day label per value (e.g. `ParentOrder.day`, days since the epoch), non-decreasing;
            None: all on one day.
        resamples: bootstrap resamples (seeded, so the interval is reproducible).
        seed: seeds the resampling.

    Returns:
        {"n", "days", "mean", "std_error", "std_error_method", "hac_lag", "ci95",
        "ci95_method", "block_length"}: `std_error_method` "newey_west" with `hac_lag`, and
        `ci95_method` "circular_block_bootstrap" with `block_length` orders; from
        `DAY_BOOTSTRAP_MIN_DAYS` days on "day_clustered" and "day_bootstrap" (both None: whole
        days are the blocks). None where `values` is too short to say (no mean without values;
        no error, interval, lag or block with fewer than two).
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    labels = np.zeros(n, dtype=np.int64) if days is None else np.asarray(days)
    if len(labels) != n:
        raise ValueError(f"days has {len(labels)} labels for {n} values")
    if n > 1 and np.any(labels[1:] < labels[:-1]):
        raise ValueError("days must be non-decreasing (values in arrival order)")
    n_days = len(_segments(labels))
    by_day = n_days >= DAY_BOOTSTRAP_MIN_DAYS
    summary: dict[str, object] = {
        "n": n,
        "days": n_days,
        "mean": float(x.mean()) if n else None,
        "std_error": None,
        "std_error_method": "day_clustered" if by_day else "newey_west",
        "hac_lag": None,
        "ci95": None,
        "ci95_method": "day_bootstrap" if by_day else "circular_block_bootstrap",
        "block_length": None,
    }
    if n < 2:
        return summary
    rng = np.random.default_rng(seed)
    if by_day:
        std_error = day_clustered_std_error(x, labels)
        means = day_bootstrap_means(x, labels, resamples, rng)
    else:
        block = block_length(n, overlap)
        std_error = newey_west_std_error(x, block - 1, labels)
        means = circular_block_bootstrap_means(x, block, resamples, rng, labels)
        summary.update(hac_lag=block - 1, block_length=block)
    low, high = np.percentile(means, [2.5, 97.5])
    summary.update(std_error=std_error, ci95=[float(low), float(high)])
    return summary
