"""QuoteUpdates <-> snapshot events: the two ends of the stream, without Kafka.

`split_events` cuts kept quote updates into one event per distinct clock value, with the trade
volume `sor.snapshots.build_snapshots` would count there; `UpdatesBuilder` glues received events
back into `QuoteUpdates` such that `build_snapshots` gives identical arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from sor.errors import DataError
from sor.snapshots import QuoteUpdates


class SnapshotEvent(NamedTuple):
    """One distinct clock value of the data and what happened at it."""

    ts: int  #: ns since the epoch
    updates: list[list]  #: [publisher_id, ask_px|None, ask_sz, bid_px|None, bid_sz], in order
    trade_volume: int  #: shares traded at this snapshot


def _prices(values: np.ndarray) -> list:
    prices = np.asarray(values, dtype=np.float64)
    if np.isinf(prices).any():
        raise DataError("quote updates hold an infinite price; a price is finite or NaN (no quote)")
    out = prices.astype(object)
    out[np.isnan(prices)] = None
    return out.tolist()


def trade_volume_per_snapshot(snapshot_ts: np.ndarray, updates: QuoteUpdates) -> np.ndarray:
    """Shares traded at each snapshot, as `build_snapshots` counts them.

    Trades are counted at the first snapshot at or after their time; trades after the last
    snapshot are not counted.

    Args:
        snapshot_ts: int64[T], distinct snapshot times in ns, increasing.
        updates: the updates whose `trade_ts` (ns) and `trade_size` (shares) are counted.

    Returns:
        int64[T], shares per snapshot.
    """
    volume = np.zeros(len(snapshot_ts), dtype=np.int64)
    if len(updates.trade_ts):
        at = np.searchsorted(snapshot_ts, updates.trade_ts, side="left")
        inside = at < len(snapshot_ts)
        np.add.at(volume, at[inside], updates.trade_size[inside].astype(np.int64))
    return volume


def split_events(updates: QuoteUpdates) -> Iterator[SnapshotEvent]:
    """The snapshot events of kept quote updates, in clock order (model.md §2 rule 3).

    Args:
        updates: kept updates in non-decreasing `ts` order.

    Yields:
        One `SnapshotEvent` per distinct `ts`, with the updates at that time in their order.

    Raises:
        DataError: `updates.ts` is not in non-decreasing order.
    """
    ts = np.asarray(updates.ts, dtype=np.int64)
    if len(ts) > 1 and bool((ts[1:] < ts[:-1]).any()):
        raise DataError("quote updates must be in non-decreasing clock order to be streamed")
    snapshot_ts, first = np.unique(ts, return_index=True)
    volume = trade_volume_per_snapshot(snapshot_ts, updates).tolist()
    rows = list(
        map(
            list,
            zip(
                np.asarray(updates.venue).astype(np.int64).tolist(),
                _prices(updates.ask_px),
                np.asarray(updates.ask_sz).astype(np.int64).tolist(),
                _prices(updates.bid_px),
                np.asarray(updates.bid_sz).astype(np.int64).tolist(),
                strict=True,
            ),
        )
    )
    bounds = [*first.tolist(), len(rows)]
    for i, t in enumerate(snapshot_ts.tolist()):
        yield SnapshotEvent(t, rows[bounds[i] : bounds[i + 1]], volume[i])


def count_events(updates: QuoteUpdates) -> int:
    """Number of snapshot events (distinct clock values) in `updates`."""
    return len(np.unique(updates.ts))


class UpdatesBuilder:
    """Collects received events and rebuilds `QuoteUpdates` from them."""

    def __init__(self) -> None:
        self._rows: list[list] = []  # venue updates of all events, in order
        self._event_ts: list[int] = []
        self._event_start: list[int] = []  # index in _rows of each event's first update
        self._event_volume: list[int] = []

    def __len__(self) -> int:
        return len(self._event_ts)

    def add(self, ts: int, updates: list[list], trade_volume: int) -> None:
        """Append one event: time in ns, venue updates, shares traded at it."""
        self._event_ts.append(ts)
        self._event_start.append(len(self._rows))
        self._event_volume.append(trade_volume)
        self._rows.extend(updates)

    def event(self, i: int) -> SnapshotEvent:
        """The i-th event added (0-based)."""
        end = self._event_start[i + 1] if i + 1 < len(self._event_start) else len(self._rows)
        rows = self._rows[self._event_start[i] : end]
        return SnapshotEvent(self._event_ts[i], rows, self._event_volume[i])

    def build(self, symbol: str) -> QuoteUpdates:
        """The `QuoteUpdates` of everything added so far, with the dtypes of `sor.snapshots`."""
        if self._rows:
            venue, ask_px, ask_sz, bid_px, bid_sz = zip(*self._rows, strict=True)
        else:
            venue = ask_px = ask_sz = bid_px = bid_sz = ()
        # One pseudo trade per snapshot with volume, at the snapshot's own time: build_snapshots
        # counts it at that very snapshot, so the per-snapshot volume is reproduced exactly.
        event_ts = np.array(self._event_ts, dtype=np.int64)
        volume = np.array(self._event_volume, dtype=np.int64)
        traded = volume > 0
        rows_per_event = np.diff(np.append(self._event_start, len(self._rows)))
        return QuoteUpdates(
            ts=np.repeat(event_ts, rows_per_event),
            venue=np.array(venue, dtype=np.int32),
            ask_px=np.array(ask_px, dtype=np.float64),  # None becomes NaN
            ask_sz=np.array(ask_sz, dtype=np.int64),
            bid_px=np.array(bid_px, dtype=np.float64),
            bid_sz=np.array(bid_sz, dtype=np.int64),
            trade_ts=event_ts[traded],
            trade_size=volume[traded],
            symbol=symbol,
        )
