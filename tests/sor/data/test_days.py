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
