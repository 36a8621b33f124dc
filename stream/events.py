"""QuoteUpdates <-> snapshot events: the two ends of the stream, without Kafka.

`split_events` cuts kept quote updates into one event per distinct clock value, with the trades
`sor.data.snapshots.build_snapshots` would count there; `UpdatesBuilder` glues received events back
into `QuoteUpdates` such that `build_snapshots` gives identical arrays.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sor.data.snapshots import QuoteUpdates, trades_at_snapshots
from sor.errors import DataError

if TYPE_CHECKING:
    from stream.messages import TradeRow, UpdateRow

__all__ = ["SnapshotEvent", "UpdatesBuilder", "count_events", "split_events"]


class SnapshotEvent(NamedTuple):
    """One distinct clock value of the data and what happened at it."""

    ts: int  #: ns since the epoch
    updates: list[UpdateRow]  #: [publisher_id, ask_px|None, ask_sz, bid_px|None, bid_sz], in order
    trades: list[TradeRow]  #: [publisher_id, price|None, size, side] counted here, in order

    @property
    def trade_volume(self) -> int:
        """Shares traded at this snapshot."""
        return sum(trade[2] for trade in self.trades)


def _prices(values: np.ndarray) -> list[float | None]:
    prices = np.asarray(values, dtype=np.float64)
    if np.isinf(prices).any():
        raise DataError("quote updates hold an infinite price; a price is finite or NaN (no quote)")
    out = prices.astype(object)
    out[np.isnan(prices)] = None
    return out.tolist()


def split_events(updates: QuoteUpdates) -> Iterator[SnapshotEvent]:
    """The snapshot events of kept quote updates, in clock order (model.md §2 rule 3).

    Args:
        updates: kept updates in non-decreasing `ts` order.

    Yields:
        One `SnapshotEvent` per distinct `ts`, with the updates at that time in their order and
        the trades counted there (`sor.data.snapshots.trades_at_snapshots`; trades after the last
        snapshot belong to none and are left out).

    Raises:
        DataError: `updates.ts` is not in non-decreasing order.
    """
    ts = np.asarray(updates.ts, dtype=np.int64)
    if len(ts) > 1 and bool((ts[1:] < ts[:-1]).any()):
        raise DataError("quote updates must be in non-decreasing clock order to be streamed")
    snapshot_ts, first = np.unique(ts, return_index=True)
    trade, at = trades_at_snapshots(snapshot_ts, np.asarray(updates.trade_ts, dtype=np.int64))
    trades: list[TradeRow] = list(
        map(
            list,
            zip(
                np.asarray(updates.trade_venue)[trade].astype(np.int64).tolist(),
                _prices(np.asarray(updates.trade_px)[trade]),
                np.asarray(updates.trade_size)[trade].astype(np.int64).tolist(),
                np.asarray(updates.trade_side)[trade].astype(np.int64).tolist(),
                strict=True,
            ),
        )
    )
    trade_bounds = np.searchsorted(at, np.arange(len(snapshot_ts) + 1), side="left").tolist()
    rows: list[UpdateRow] = list(
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
        yield SnapshotEvent(
            t, rows[bounds[i] : bounds[i + 1]], trades[trade_bounds[i] : trade_bounds[i + 1]]
        )


def count_events(updates: QuoteUpdates) -> int:
    """Number of snapshot events (distinct clock values) in `updates`."""
    return len(np.unique(updates.ts))


class UpdatesBuilder:
    """Collects received events and rebuilds `QuoteUpdates` from them."""

    def __init__(self) -> None:
        self._rows: list[UpdateRow] = []  # venue updates of all events, in order
        self._event_ts: list[int] = []
        self._event_start: list[int] = []  # index in _rows of each event's first update
        self._trades: list[TradeRow] = []  # trades of all events, in order
        self._trade_event: list[int] = []  # index of the event of each trade

    def __len__(self) -> int:
        return len(self._event_ts)

    def add(self, ts: int, updates: Sequence[UpdateRow], trades: Sequence[TradeRow]) -> None:
        """Append one event: time in ns, venue updates, trades counted at it."""
        self._event_ts.append(ts)
        self._event_start.append(len(self._rows))
        self._rows.extend(updates)
        if trades:  # most events have none: the hot path does nothing more then
            self._trade_event.extend([len(self._event_ts) - 1] * len(trades))
            self._trades.extend(trades)

    def event(self, i: int) -> SnapshotEvent:
        """The i-th event added (0-based)."""
        end = self._event_start[i + 1] if i + 1 < len(self._event_start) else len(self._rows)
        rows = self._rows[self._event_start[i] : end]
        trades = self._trades[
            bisect_left(self._trade_event, i) : bisect_left(self._trade_event, i + 1)
        ]
        return SnapshotEvent(self._event_ts[i], rows, trades)

    def build(self, symbol: str) -> QuoteUpdates:
        """The `QuoteUpdates` of all events added so far, dtypes of `sor.data.snapshots`."""
        if self._rows:
            venue, ask_px, ask_sz, bid_px, bid_sz = zip(*self._rows, strict=True)
        else:
            venue = ask_px = ask_sz = bid_px = bid_sz = ()
        if self._trades:
            trade_venue, trade_px, trade_size, trade_side = zip(*self._trades, strict=True)
        else:
            trade_venue = trade_px = trade_size = trade_side = ()
        event_ts = np.array(self._event_ts, dtype=np.int64)
        rows_per_event: np.ndarray = np.diff(
            np.array([*self._event_start, len(self._rows)], dtype=np.int64)
        )
        ask_px_array = np.array(ask_px, dtype=np.float64)  # None becomes NaN
        ask_sz_array = np.array(ask_sz, dtype=np.int64)
        return QuoteUpdates(
            ts=np.repeat(event_ts, rows_per_event),
            venue=np.array(venue, dtype=np.int32),
            ask_px=ask_px_array,
            ask_sz=ask_sz_array,
            bid_px=np.array(bid_px, dtype=np.float64),
            bid_sz=np.array(bid_sz, dtype=np.int64),
            # The stream carries the top of book only so far: a ladder of one level.
            ask_depth_px=ask_px_array.reshape(-1, 1).copy(),
            ask_depth_sz=ask_sz_array.reshape(-1, 1).copy(),
            # Each trade at its snapshot's own time: build_snapshots counts it at that very
            # snapshot, so the trade prints and the volume per snapshot are reproduced exactly.
            trade_ts=event_ts[np.array(self._trade_event, dtype=np.int64)],
            trade_size=np.array(trade_size, dtype=np.int64),
            trade_venue=np.array(trade_venue, dtype=np.int32),
            trade_px=np.array(trade_px, dtype=np.float64),  # None becomes NaN
            trade_side=np.array(trade_side, dtype=np.int8),
            symbol=symbol,
        )
