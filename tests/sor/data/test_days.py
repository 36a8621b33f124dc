"""Days of multi-day data: calendar days in a time zone, the window on every day, fresh books."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sor.data.days import (
    day_labels,
    day_segments,
    forget_previous_days,
    is_time_of_day,
    window_mask,
)
from sor.data.snapshots import Snapshots
from sor.errors import DataError


def ns(text: str) -> int:
    return int(pd.Timestamp(text).value)


def test_days_are_the_calendar_dates_of_the_time_zone():
    # 19:57 New York time on January 2 is 00:57 UTC on January 3
    ts = np.array([ns("2018-01-02T14:30:00Z"), ns("2018-01-03T00:57:00Z"), ns("2018-01-03T09:04Z")])
    jan_2 = (ns("2018-01-02T00:00:00Z")) // (86_400 * 10**9)
    assert day_labels(ts).tolist() == [jan_2, jan_2 + 1, jan_2 + 1]
    assert day_labels(ts, "America/New_York").tolist() == [jan_2, jan_2, jan_2 + 1]
    assert day_segments(day_labels(ts, "America/New_York")) == [(jan_2, 0, 2), (jan_2 + 1, 2, 3)]


def test_a_time_of_day_window_selects_that_span_on_every_day():
    times = ["14:29:59", "14:30:00", "17:00:00", "21:00:00", "21:00:00.001"]
    ts = np.array([ns(f"2018-01-0{d}T{t}Z") for d in (2, 3) for t in times])
    inside = [False, True, True, True, False]
    assert window_mask(ts, "14:30", "21:00").tolist() == inside * 2
    # one bound as a time of day, the other an instant
    assert window_mask(ts, "2018-01-03T00:00:00Z", "21:00").tolist() == [False] * 5 + [
        True,
        True,
        True,
        True,
        False,
    ]
    # instants only: one span, as before
    assert window_mask(ts, "2018-01-02T17:00:00Z", ns("2018-01-03T14:30:00Z")).tolist() == [
        False,
        False,
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_a_time_of_day_window_follows_the_time_zone_through_daylight_saving():
    # 09:30 New York time is 14:30 UTC in winter and 13:30 UTC in summer
    ts = np.array([ns("2018-01-02T14:30:00Z"), ns("2018-07-02T13:30:00Z"), ns("2018-07-02T14:29Z")])
    assert window_mask(ts, "09:30", "09:31", timezone="America/New_York").tolist() == [
        True,
        True,
        False,
    ]


def test_window_refusals_name_the_bound():
    ts = np.array([ns("2018-01-02T14:30:00Z")])
    with pytest.raises(DataError, match="window start '21:00' is after end '14:30': a time-of-day"):
        window_mask(ts, "21:00", "14:30")
    with pytest.raises(DataError, match="window end '24:00' is not a time of day"):
        window_mask(ts, "14:30", "24:00")
    with pytest.raises(DataError, match="window.timezone 'Mars/Base' is not a time zone"):
        window_mask(ts, "14:30", "21:00", timezone="Mars/Base")
    assert is_time_of_day("9:30") and is_time_of_day("09:30:00.5")
    assert not is_time_of_day("2018-01-02T09:30:00Z") and not is_time_of_day(None)


def snapshots(ask_px: list[list[float]], days: int = 2) -> Snapshots:
    px = np.array(ask_px, dtype=np.float64)
    sz = np.where(np.isnan(px), 0, 100).astype(np.int64)
    t = len(px)
    return Snapshots(
        ts=np.arange(t, dtype=np.int64),
        venues=np.arange(px.shape[1], dtype=np.int32),
        ask_px=px,
        ask_sz=sz,
        bid_px=px - 0.01,
        bid_sz=sz,
        trade_volume=np.zeros(t, dtype=np.int64),
        ask_depth_px=px[:, :, None].copy(),
        ask_depth_sz=sz[:, :, None].copy(),
    )


def test_each_day_starts_from_an_empty_book():
    nan = np.nan
    snaps = snapshots(
        [
            [10.00, 10.01, nan],  # day 1
            [10.00, 10.02, 10.05],
            [10.00, 10.02, 10.05],  # day 2: nobody has quoted yet
            [10.50, 10.02, 10.05],  # venue 0 quotes
            [10.50, 10.03, 10.05],  # venue 1 quotes; venue 2 never does
            [10.50, 10.03, 10.05],
        ]
    )
    days = np.array([1, 1, 2, 2, 2, 2])
    fresh = forget_previous_days(snaps, days)
    assert np.array_equal(
        fresh.ask_px,
        [
            [10.00, 10.01, nan],
            [10.00, 10.02, 10.05],
            [nan, nan, nan],
            [10.50, nan, nan],
            [10.50, 10.03, nan],
            [10.50, 10.03, nan],
        ],
        equal_nan=True,
    )
    hidden = np.isnan(fresh.ask_px)
    assert (fresh.ask_sz[hidden] == 0).all() and np.isnan(fresh.bid_px[hidden]).all()
    assert (fresh.bid_sz[hidden] == 0).all()
    assert np.array_equal(fresh.ask_depth_px[:, :, 0], fresh.ask_px, equal_nan=True)
    assert np.array_equal(fresh.ask_depth_sz[:, :, 0], fresh.ask_sz)
    assert snaps.ask_px[2, 0] == 10.00  # the input is left as it was
    # one day: the very same snapshots
    assert forget_previous_days(snaps, np.ones(6, dtype=np.int64)) is snaps


def _forget_reference(snaps: Snapshots, days: np.ndarray) -> dict[str, np.ndarray]:
    """Every row of every day compared with the previous day's last row, whole arrays copied."""
    names = ["ask_px", "ask_sz", "bid_px", "bid_sz", "ask_depth_px", "ask_depth_sz"]
    out = {name: getattr(snaps, name).copy() for name in names}
    for _, a, b in day_segments(days)[1:]:
        same = np.ones((b - a, snaps.n_venues), dtype=bool)
        for name in names:
            values = getattr(snaps, name)
            equal = (values[a:b] == values[a - 1]) | (
                np.isnan(values[a:b]) & np.isnan(values[a - 1])
            )
            same &= equal if equal.ndim == 2 else equal.all(axis=2)
        carried = np.logical_and.accumulate(same, axis=0)
        for name in names:
            out[name][a:b][carried] = np.nan if out[name].dtype.kind == "f" else 0
    return out


def _random_days(seed: int, rows: int, venues: int, n_days: int) -> tuple[Snapshots, np.ndarray]:
    """Quotes that change rarely (some venues silent for thousands of rows, some never quote)."""
    rng = np.random.default_rng(seed)
    px = np.round(10 + rng.integers(0, 3, size=(rows, venues)) * 0.01, 2)
    sz = rng.integers(1, 3, size=(rows, venues)) * 100
    changes = rng.random((rows, venues)) < rng.choice([0.5, 0.01, 0.0005], size=venues)
    changes[0] = True
    index = np.maximum.accumulate(np.where(changes, np.arange(rows)[:, None], 0), axis=0)
    px, sz = np.take_along_axis(px, index, 0), np.take_along_axis(sz, index, 0)
    silent = rng.random(venues) < 0.2
    px[:, silent], sz[:, silent] = np.nan, 0
    days = np.sort(rng.integers(0, n_days, size=rows))
    snaps = Snapshots(
        ts=np.arange(rows, dtype=np.int64),
        venues=np.arange(venues, dtype=np.int32),
        ask_px=px + 0.01,
        ask_sz=sz,
        bid_px=px,
        bid_sz=sz.copy(),
        trade_volume=np.zeros(rows, dtype=np.int64),
        ask_depth_px=np.stack([px + 0.01, px + 0.02], axis=2),
        ask_depth_sz=np.stack([sz, sz], axis=2),
    )
    return snaps, days


@pytest.mark.parametrize("seed", range(12))
def test_forgetting_reads_only_each_days_prefix_and_equals_the_whole_array_rule(seed):
    snaps, days = _random_days(seed, rows=6_000, venues=5, n_days=1 + seed % 4)
    fresh = forget_previous_days(snaps, days)
    for name, expected in _forget_reference(snaps, days).items():
        assert np.array_equal(getattr(fresh, name), expected, equal_nan=True), name


@pytest.mark.parametrize("seed", range(6))
def test_forgotten_snapshots_come_back_as_they_are(seed):
    snaps, days = _random_days(seed, rows=4_000, venues=4, n_days=3)
    fresh = forget_previous_days(snaps, days)
    for values in (fresh.ask_px, fresh.ask_sz, fresh.bid_px, fresh.bid_sz):
        values.flags.writeable = False  # as a Ray worker sees the shared arrays
    assert forget_previous_days(fresh, days) is fresh


@pytest.mark.parametrize("seed", range(6))
def test_forgetting_in_place_writes_into_writable_arrays_only(seed):
    snaps, days = _random_days(seed, rows=4_000, venues=4, n_days=3)
    copied = forget_previous_days(snaps, days)
    snaps.bid_sz.flags.writeable = False  # one array shared read-only: that one is copied
    kept = snaps.bid_sz
    fresh = forget_previous_days(snaps, days, in_place=True)
    for name in ("ask_px", "ask_sz", "bid_px", "bid_sz", "ask_depth_px", "ask_depth_sz"):
        assert np.array_equal(getattr(fresh, name), getattr(copied, name), equal_nan=True), name
    assert fresh.ask_px is snaps.ask_px and fresh.ask_depth_sz is snaps.ask_depth_sz
    changed = not np.array_equal(kept, copied.bid_sz)
    assert (fresh.bid_sz is not kept) == changed and np.array_equal(kept, snaps.bid_sz)
