"""Days of multi-day data: the calendar day of each row, the window on every day, fresh books.

A day is a calendar date in the window's time zone (`window.timezone`, UTC by default): for
US equities in `America/New_York` a day runs from midnight to midnight New York time, so the
overnight gap falls between days and a day's evening session stays with its morning. A window
bound given as a time of day (`14:30`) selects that time on every day of the data; a bound given
as a timestamp is an absolute instant (model.md §2 rule 1).
"""

from __future__ import annotations

import dataclasses
import re
import zoneinfo
from typing import Any

import numpy as np

from sor.data.snapshots import NO_PRICE, Snapshots
from sor.errors import DataError

__all__ = [
    "NS_PER_DAY",
    "day_labels",
    "day_segments",
    "forget_previous_days",
    "is_time_of_day",
    "time_zone",
    "wall_clock_ns",
    "window_mask",
]

#: Nanoseconds per calendar day.
NS_PER_DAY = 86_400 * 10**9

_TIME_OF_DAY = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*$")


def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone `name` (UTC, America/New_York, Europe/London, ...).

    Raises:
        DataError: no such time zone.
    """
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DataError(
            f"window.timezone {name!r} is not a time zone: expected an IANA name such as "
            "'UTC' or 'America/New_York'"
        ) from None


def wall_clock_ns(ts: np.ndarray, timezone: str = "UTC") -> np.ndarray:
    """int64[n]: each time (ns since the epoch, UTC) as the wall clock of `timezone` shows it,
    in ns since 1970-01-01 00:00 of that wall clock (daylight saving time included)."""
    ts = np.asarray(ts, dtype=np.int64)
    if timezone == "UTC" or len(ts) == 0:
        return ts
    import pandas as pd  # imported here: slow to import, and needed only with a time zone

    zone = time_zone(timezone)
    local = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC").tz_convert(zone)
    wall: np.ndarray = local.tz_localize(None).asi8
    return wall


def day_labels(ts: np.ndarray, timezone: str = "UTC") -> np.ndarray:
    """int64[n]: the calendar day of each time in `timezone`, as days since 1970-01-01."""
    return wall_clock_ns(ts, timezone) // NS_PER_DAY


def day_segments(days: np.ndarray) -> list[tuple[int, int, int]]:
    """(day, first row, stop row) of each run of equal labels in `days` (non-decreasing)."""
    if len(days) == 0:
        return []
    cuts = np.flatnonzero(days[1:] != days[:-1]) + 1
    bounds = [0, *cuts.tolist(), len(days)]
    return [(int(days[a]), a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=False)]


def is_time_of_day(bound: str | int | None) -> bool:
    """Whether a window bound is a time of day (HH:MM, HH:MM:SS or HH:MM:SS.fff)."""
    return isinstance(bound, str) and bool(_TIME_OF_DAY.match(bound))


def _time_of_day_ns(bound: str, name: str) -> int:
    """ns after midnight of a time-of-day bound (refused as `parse_time_bound` refuses it)."""
    from sor.data.loader import parse_time_bound  # here: the loader imports this module

    # Taken on 1970-01-01 UTC, the date of ns 0, a time of day is its ns after midnight.
    ns = parse_time_bound(bound.strip(), 0, name=name)
    assert ns is not None  # a time of day is never empty
    return ns


def window_mask(
    ts: np.ndarray,
    start: str | int | None,
    end: str | int | None,
    *,
    timezone: str = "UTC",
) -> np.ndarray:
    """bool[n]: which times (ns since the epoch) lie in the window, bounds inclusive.

    A bound given as a time of day selects that wall-clock time of `timezone` on every day: with
    start "14:30" and end "21:00" each day's rows from 14:30 to 21:00 are kept. A bound given as
    ns or an ISO 8601 timestamp (`sor.data.loader.parse_time_bound`) is one instant. The two can
    be mixed: start "2018-01-03T00:00:00Z" with end "21:00" keeps each day from January 3 on,
    up to 21:00.

    Raises:
        DataError: a bound is unreadable, an unknown time zone, or the start after the end.
    """
    from sor.data.loader import parse_time_bound  # here: the loader imports this module

    ts = np.asarray(ts, dtype=np.int64)
    mask = np.ones(len(ts), dtype=bool)
    daily = {n: _time_of_day_ns(b, n) for n, b in (("start", start), ("end", end))
             if isinstance(b, str) and is_time_of_day(b)}  # fmt: skip
    if "start" in daily and "end" in daily and daily["start"] > daily["end"]:
        raise DataError(
            f"window start {start!r} is after end {end!r}: a time-of-day window selects that "
            "span within every day, so it starts before it ends"
        )
    first = int(ts.min()) if len(ts) else 0
    lo = None if "start" in daily else parse_time_bound(start, first, name="start")
    hi = None if "end" in daily else parse_time_bound(end, first, name="end")
    if lo is not None and hi is not None and lo > hi:
        raise DataError(f"window start {start!r} is after end {end!r}")
    if lo is not None:
        mask &= ts >= lo
    if hi is not None:
        mask &= ts <= hi
    if daily:
        time_of_day = wall_clock_ns(ts, timezone) % NS_PER_DAY
        if "start" in daily:
            mask &= time_of_day >= daily["start"]
        if "end" in daily:
            mask &= time_of_day <= daily["end"]
    return mask


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a == b elementwise, NaN equal to NaN."""
    same: np.ndarray = a == b
    if a.dtype.kind == "f":
        same |= np.isnan(a) & np.isnan(b)
    return same


#: Rows of a day compared with the previous day's last row at first; doubled while any venue
#: still carries its quote, so a day costs about the rows until every venue has updated.
_FIRST_BLOCK = 256


def _quote_arrays(snaps: Snapshots) -> list[tuple[np.ndarray, float | int]]:
    """Each per-venue quote array (2-D, or the 3-D ask ladder) with its hidden value."""
    arrays: list[tuple[np.ndarray, float | int]] = [
        (snaps.ask_px, NO_PRICE),
        (snaps.ask_sz, 0),
        (snaps.bid_px, NO_PRICE),
        (snaps.bid_sz, 0),
    ]
    if snaps.ask_depth_px is not None and snaps.ask_depth_sz is not None:
        arrays += [(snaps.ask_depth_px, NO_PRICE), (snaps.ask_depth_sz, 0)]
    return arrays


def _carried(arrays: list[tuple[np.ndarray, float | int]], a: int, b: int) -> np.ndarray:
    """bool[m, N]: which venues still show the quote of row a - 1 (the previous day's last) on
    every row of a..a+m-1; m is where the last venue changed its quote (or b - a)."""
    blocks: list[np.ndarray] = []
    start, size = a, _FIRST_BLOCK
    before = np.ones(arrays[0][0].shape[1], dtype=bool)
    while start < b and before.any():
        stop = min(start + size, b)
        same = np.broadcast_to(before, (stop - start, len(before))).copy()
        for values, _ in arrays:
            equal = _same(values[start:stop], values[a - 1])
            same &= equal if equal.ndim == 2 else equal.all(axis=2)
        # Carried: unchanged since the previous day's last row, on every row so far today.
        carried = np.logical_and.accumulate(same, axis=0)
        blocks.append(carried)
        before = carried[-1]
        start, size = stop, size * 2
    if not blocks:
        return np.zeros((0, len(before)), dtype=bool)
    carried = np.concatenate(blocks)
    changed = ~carried.any(axis=1)
    return carried[: int(np.argmax(changed))] if changed.any() else carried


def _hidden(values: np.ndarray, hidden: float | int) -> np.ndarray:
    """Where `values` already holds the hidden value (NaN price, 0 shares)."""
    is_hidden = np.asarray(np.isnan(values) if values.dtype.kind == "f" else values == hidden)
    return is_hidden if is_hidden.ndim == 2 else np.asarray(is_hidden.all(axis=2))


def forget_previous_days(
    snaps: Snapshots, days: np.ndarray, *, in_place: bool = False
) -> Snapshots:
    """The snapshots with each day starting from an empty book: a venue's quote carried over
    from a previous day is hidden until the venue's quote changes on the new day.

    A snapshot keeps a venue's last quote until the venue updates (model.md §2), so without this
    the first minutes of a day would show the quotes of the previous evening (on real TAQ data
    some venues first quote half a minute after the open). A day of a multi-day file thus starts
    as a single-day window does, where a venue shows nothing before its first update. A venue
    that reposts exactly the quote it left the day before stays hidden until its quote changes
    (its update cannot be told from the carried quote).

    Only the rows of each day until its last venue updates are read, and the arrays are copied
    only where a carried quote is still shown, so the snapshots this returned come back as they
    are: a sweep forgets once, in the driver, and its workers' evaluations share the arrays.

    Args:
        snaps: the snapshots, in time order.
        days: int64[T], the day of each snapshot (`day_labels`), non-decreasing.
        in_place: hide the carried quotes in the arrays of `snaps` themselves where they are
            writable (snapshots the caller alone holds, as `sor run`'s driver does before
            sharing them), instead of copying them.

    Returns:
        `snaps` itself on one day, where nothing carried is shown, or with `in_place` and
        writable arrays (changed); otherwise new snapshots with the carried quotes hidden (NaN
        price, 0 shares) and every other array shared.
    """
    segments = day_segments(np.asarray(days))
    arrays = _quote_arrays(snaps)
    to_hide = []
    for _, a, b in segments[1:]:
        carried = _carried(arrays, a, b)
        rows = slice(a, a + len(carried))
        if any((carried & ~_hidden(v[rows], h)).any() for v, h in arrays):
            to_hide.append((rows, carried))
    if not to_hide:
        return snaps
    fresh: list[np.ndarray] = [
        values if in_place and values.flags.writeable else values.copy() for values, _ in arrays
    ]
    for rows, carried in to_hide:
        for values, (_, hidden) in zip(fresh, arrays, strict=True):
            values[rows][carried] = hidden
    if all(new is old for new, (old, _) in zip(fresh, arrays, strict=True)):
        return snaps
    names = ["ask_px", "ask_sz", "bid_px", "bid_sz", "ask_depth_px", "ask_depth_sz"]
    replaced: dict[str, Any] = dict(zip(names, fresh, strict=False))
    return dataclasses.replace(snaps, **replaced)
