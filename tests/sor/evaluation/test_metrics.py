"""Statistics of overlapping parent orders: HAC errors, block bootstrap intervals, days.

The reference numbers below were computed once with statsmodels 0.15.0 (`OLS(x, ones).fit(
cov_type="HAC", cov_kwds={"maxlags": L, "use_correction": True})`, `cov_nw_panel` with
`use_correction="hac"`, `cov_cluster`) and arch 8.0.0 (`CircularBlockBootstrap(4, x, seed=0)
.apply(np.mean, 2000)`, percentiles 2.5 and 97.5), which are not dependencies of the project.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sor.evaluation.metrics import (
    DAY_BOOTSTRAP_MIN_DAYS,
    block_length,
    circular_block_bootstrap_means,
    circular_block_indices,
    day_clustered_std_error,
    newey_west_std_error,
    summarize,
)


def overlapping_orders() -> np.ndarray:
    """48 parent orders of 60 s every 30 s: each sees two consecutive 30 s shocks, so neighbours
    share one, plus the morning's slow drift: positively autocorrelated, by construction."""
    t = np.arange(49)
    shocks = ((t * 37) % 11 - 5) / 5.0
    return np.round(shocks[:-1] + shocks[1:] + np.sin(2 * np.pi * np.arange(48) / 24), 4)


def direct_newey_west(x: np.ndarray, lag: int, days: np.ndarray) -> float:
    """The Bartlett-weighted quadratic form, pair by pair: the definition, not the algorithm."""
    n, e = len(x), x - x.mean()
    total = 0.0
    for i in range(n):
        for j in range(n):
            k = abs(i - j)
            if k <= lag and days[i] == days[j]:
                total += (1 - k / (lag + 1)) * e[i] * e[j]
    return math.sqrt(total / (n - 1) / n)


def test_block_length_covers_the_overlap_and_grows_with_the_sample():
    assert block_length(48, overlap=2) == 4  # 2 x ceil(60 s / 30 s)
    assert block_length(48, overlap=3) == 6
    assert block_length(1000, overlap=2) == 10  # ceil(1000 ** (1/3))
    assert block_length(27, overlap=1) == 3  # 27 ** (1/3) is 3.0000000000000004 in floats
    assert block_length(6, overlap=2) == 3  # at least two blocks
    assert block_length(3, overlap=2) == 1


def test_block_bootstrap_interval_is_wider_than_the_iid_one_on_overlapping_orders():
    x = overlapping_orders()
    lag1 = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert lag1 > 0.3  # the series is what it claims to be
    s = summarize(x, overlap=2, resamples=2000, seed=0)
    assert s["block_length"] == 4 and s["ci95_method"] == "circular_block_bootstrap"
    iid = circular_block_bootstrap_means(x, 1, 2000, np.random.default_rng(0))  # the old method
    iid_low, iid_high = np.percentile(iid, [2.5, 97.5])
    assert [iid_low, iid_high] == pytest.approx([-0.30818208333333336, 0.25846265624999987])
    low, high = s["ci95"]
    assert high - low > 1.4 * (iid_high - iid_low)
    # arch's CircularBlockBootstrap draws the same way: same seed, same interval
    assert [low, high] == pytest.approx([-0.45501307291666665, 0.41580859375], rel=1e-12)
    assert summarize(x, overlap=2, resamples=2000, seed=0) == s  # seeded
    assert summarize(x, overlap=2, resamples=2000, seed=1)["ci95"] != s["ci95"]


def test_newey_west_error_matches_a_direct_computation_and_statsmodels():
    x = overlapping_orders()
    one_day = np.zeros(48, dtype=int)
    two_days = np.array([0] * 20 + [1] * 28)
    for lag in (0, 1, 3, 7):
        for days in (one_day, two_days):
            assert newey_west_std_error(x, lag, days) == pytest.approx(
                direct_newey_west(x, lag, days), rel=1e-12
            ), (lag, days[-1])
    assert newey_west_std_error(x, 0) == pytest.approx(x.std(ddof=1) / math.sqrt(48), rel=1e-12)
    assert newey_west_std_error(x, 3) == pytest.approx(0.22426902175762978, rel=1e-12)
    assert newey_west_std_error(x, 3, two_days) == pytest.approx(0.22297982184672668, rel=1e-12)
    s = summarize(x, overlap=2)
    assert s["std_error_method"] == "newey_west" and s["hac_lag"] == 3
    assert s["std_error"] == pytest.approx(0.22426902175762978, rel=1e-12)
    assert s["std_error"] > 1.4 * x.std(ddof=1) / math.sqrt(48)  # wider than iid's


def test_blocks_never_cross_a_day():
    days = np.array([0] * 9 + [1] * 7)
    idx = circular_block_indices(16, 4, 500, np.random.default_rng(3), days)
    assert idx.shape == (500, 16)
    blocks = idx.reshape(500, 4, 4)  # every day holds a whole block: 4 blocks of 4
    block_days = days[blocks]
    assert (block_days == block_days[:, :, :1]).all()
    # each block runs on through its own day, wrapping to the day's first order
    start = np.where(days[blocks] == 0, 0, 9)
    size = np.where(days[blocks] == 0, 9, 7)
    following = start[:, :, :-1] + (blocks[:, :, :-1] - start[:, :, :-1] + 1) % size[:, :, :-1]
    assert (blocks[:, :, 1:] == following).all()
    assert ((blocks[:, :, 1:] == 0) & (blocks[:, :, :-1] == 8)).any()  # wrapped within day 0
    # the same draws with no day boundary do cross it: the check has teeth
    crossing = days[circular_block_indices(16, 4, 500, np.random.default_rng(3)).reshape(500, 4, 4)]
    assert (crossing.min(axis=2) != crossing.max(axis=2)).any()


def test_a_day_shorter_than_a_block_is_one_block():
    days = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    idx = circular_block_indices(10, 4, 200, np.random.default_rng(0), days)
    assert idx.shape == (200, 10)
    assert set(np.unique(idx)) == set(range(10))

    # day 0's only block is the whole day, [0, 1] or [1, 0], and no block from day 1 reaches
    # into it: orders 0 and 1 come in pairs (one may be cut off at the resample's end)
    def unpaired(indices: np.ndarray) -> np.ndarray:
        return np.abs((indices == 0).sum(axis=1) - (indices == 1).sum(axis=1))

    assert unpaired(idx).max() <= 1
    assert (unpaired(circular_block_indices(10, 4, 200, np.random.default_rng(0))) > 1).any()


def test_summaries_count_days_and_use_them():
    x = overlapping_orders()
    days = np.array([19_936] * 20 + [19_937] * 28)
    s = summarize(x, overlap=2, days=days)
    assert s["days"] == 2 and s["n"] == 48
    assert s["std_error"] == pytest.approx(newey_west_std_error(x, 3, days), rel=1e-12)
    assert s["std_error"] != summarize(x, overlap=2)["std_error"]
    assert s["ci95"] != summarize(x, overlap=2)["ci95"]
    with pytest.raises(ValueError, match="non-decreasing"):
        summarize(x, days=days[::-1])


def test_many_days_are_resampled_whole_and_the_error_is_clustered_by_day():
    x = overlapping_orders()
    days = np.repeat(np.arange(24), 2)
    assert DAY_BOOTSTRAP_MIN_DAYS <= 24
    s = summarize(x, overlap=2, days=days, resamples=4000)
    assert s["days"] == 24
    assert s["std_error_method"] == "day_clustered" and s["ci95_method"] == "day_bootstrap"
    assert s["hac_lag"] is None and s["block_length"] is None
    assert s["std_error"] == pytest.approx(0.18020841054702227, rel=1e-12)  # statsmodels
    assert day_clustered_std_error(x, days) == s["std_error"]
    low, high = s["ci95"]
    assert low < s["mean"] < high
    # a normal interval from the clustered error is close to the day bootstrap's
    assert high - low == pytest.approx(2 * 1.96 * s["std_error"], rel=0.15)
    fewer = summarize(x[:38], overlap=2, days=days[:38])  # 19 days: blocks within days
    assert fewer["days"] == 19 and fewer["ci95_method"] == "circular_block_bootstrap"


def test_short_series_say_what_they_cannot():
    empty = summarize(np.array([]))
    assert empty["n"] == 0 and empty["days"] == 0 and empty["mean"] is None
    one = summarize(np.array([2.5]))
    assert one["mean"] == 2.5 and one["std_error"] is None and one["ci95"] is None
    assert one["block_length"] is None and one["std_error_method"] == "newey_west"
    two = summarize(np.array([1.0, 3.0]), overlap=2)
    assert two["block_length"] == 1 and two["hac_lag"] == 0
    assert two["std_error"] == pytest.approx(1.0)
