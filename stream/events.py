"""QuoteUpdates <-> snapshot events: the two ends of the stream, without Kafka.

`event_columns` cuts kept quote updates into one event per distinct clock value, with the
trades `sor.data.snapshots.build_snapshots` would count there, as the columns an event message
carries (`stream.messages.EventColumns`); `UpdatesBuilder` glues received columns back into
`QuoteUpdates` such that `build_snapshots` gives identical arrays. `check_updates` holds the
CSV loader's rules on values, which the producer applies before it sends anything.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from sor.data.csvfile import MAX_PRICE, MAX_PUBLISHER_ID, TS_MAX, TS_MIN
from sor.data.snapshots import QuoteUpdates, ladder_breaks, trades_at_snapshots
from sor.errors import DataError
from sor.vocabulary import MAX_SIZE
from stream.messages import EventColumns, EventRow, columns_of_rows, cut, event_rows

__all__ = [
    "COMPACT_BLOCKS",
    "Problem",
    "UpdatesBuilder",
    "check_updates",
    "count_events",
    "event_columns",
    "split_events",
    "updates_problem",
]


class Problem(NamedTuple):
    """The first value of `QuoteUpdates` that the CSV loader would never give."""

    table: str  #: "update" (a quote update row) or "trade" (a trade row)
    row: int  #: its index in that table
    what: str  #: what is wrong, for a message

    def __str__(self) -> str:
        return f"{'quote update' if self.table == 'update' else 'trade'} {self.row}: {self.what}"


def _first(bad: Any) -> int | None:
    rows = np.flatnonzero(bad)
    return int(rows[0]) if len(rows) else None


def _ladders(updates: QuoteUpdates) -> tuple[np.ndarray, np.ndarray]:
    """The ask ladders of `updates`, float64 and int64 [U, L]."""
    return (
        np.asarray(updates.ask_depth_px, dtype=np.float64),
        np.asarray(updates.ask_depth_sz, dtype=np.int64),
    )


def updates_problem(updates: QuoteUpdates) -> Problem | None:
    """The first value of `updates` the CSV loader would never give (model.md §1), or None.

    The loader's rules on what it keeps: times within its years, publisher ids in
    [0, `MAX_PUBLISHER_ID`], prices NaN (no quote) or in (0, `MAX_PRICE`] dollars, sizes in
    [0, `MAX_SIZE`] shares, a side or ask level shown with both a price and a size or with
    neither, level 0 of the ask ladder the best ask, ladders in the order
    `sor.data.snapshots.ladder_breaks` checks, no crossed quote (bid above ask at one venue),
    and trade prints with a venue, a price NaN or in bounds, a size in bounds and a side of
    -1, 0 or 1. The producer checks its updates with it before sending, and the consumer the
    updates it rebuilt before handing them on.
    """
    px, sz = _ladders(updates)
    ask_px = np.asarray(updates.ask_px, dtype=np.float64)
    ask_sz = np.asarray(updates.ask_sz, dtype=np.int64)
    bid_px = np.asarray(updates.bid_px, dtype=np.float64)
    bid_sz = np.asarray(updates.bid_sz, dtype=np.int64)
    ts = np.asarray(updates.ts, dtype=np.int64)
    venue = np.asarray(updates.venue, dtype=np.int64)
    price_rule = f"outside (0, {MAX_PRICE}] dollars; an empty side's price is NaN"
    checks: list[tuple[Any, str]] = [
        ((ts < TS_MIN) | (ts >= TS_MAX), "a time outside the years 2000-2099"),
        (
            (venue < 0) | (venue > MAX_PUBLISHER_ID),
            f"a publisher_id outside [0, {MAX_PUBLISHER_ID}]",
        ),
        (np.isinf(px).any(axis=1) | np.isinf(ask_px) | np.isinf(bid_px), "an infinite price"),
        (((px <= 0) | (px > MAX_PRICE)).any(axis=1), f"an ask price {price_rule}"),
        ((bid_px <= 0) | (bid_px > MAX_PRICE), f"a bid price {price_rule}"),
        (((sz < 0) | (sz > MAX_SIZE)).any(axis=1), f"an ask size outside [0, {MAX_SIZE}] shares"),
        ((bid_sz < 0) | (bid_sz > MAX_SIZE), f"a bid size outside [0, {MAX_SIZE}] shares"),
        (
            ~(_same(px[:, 0], ask_px) & (sz[:, 0] == ask_sz)),
            "level 0 of the ask ladder is not ask_px / ask_sz",
        ),
        (
            (np.isnan(px) != (sz == 0)).any(axis=1) | (np.isnan(bid_px) != (bid_sz == 0)),
            "a price with no size, or a size with no price: an empty side or level is NaN and 0",
        ),
    ]
    for bad, what in checks:
        row = _first(bad)
        if row is not None:
            return Problem("update", row, what)
    breaks = ladder_breaks(px, sz)
    row = _first(breaks.any(axis=1))
    if row is not None:
        level = int(np.argmax(breaks[row]))
        return Problem(
            "update",
            row,
            f"an ask ladder broken at level {level}: the levels shown follow a shown level 0 "
            "in non-decreasing price order",
        )
    row = _first(bid_px > ask_px)
    if row is not None:
        return Problem("update", row, "a crossed quote: the bid above the ask at the same venue")
    trade_px = np.asarray(updates.trade_px, dtype=np.float64)
    trade_sz = np.asarray(updates.trade_size, dtype=np.int64)
    trade_venue = np.asarray(updates.trade_venue, dtype=np.int64)
    trade_side = np.asarray(updates.trade_side, dtype=np.int64)
    trade_checks: list[tuple[Any, str]] = [
        (
            (trade_venue < 0) | (trade_venue > MAX_PUBLISHER_ID),
            f"a publisher_id outside [0, {MAX_PUBLISHER_ID}]",
        ),
        (
            np.isinf(trade_px) | (trade_px <= 0) | (trade_px > MAX_PRICE),
            f"a price outside (0, {MAX_PRICE}] dollars; a trade without a price has NaN",
        ),
        ((trade_sz < 0) | (trade_sz > MAX_SIZE), f"a size outside [0, {MAX_SIZE}] shares"),
        ((trade_side < -1) | (trade_side > 1), "a side other than -1, 0 or 1"),
    ]
    for bad, what in trade_checks:
        row = _first(bad)
        if row is not None:
            return Problem("trade", row, what)
    return None


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise equality with NaN equal to NaN."""
    return (a == b) | (np.isnan(a) & np.isnan(b))


def check_updates(updates: QuoteUpdates) -> None:
    """Refuse quote updates the CSV loader would never give (`updates_problem`).

    Raises:
        DataError: naming the first update or trade at fault and the rule it breaks.
    """
    problem = updates_problem(updates)
    if problem is not None:
        raise DataError(f"quote updates hold values a consumer refuses: {problem}")


def event_columns(updates: QuoteUpdates) -> EventColumns:
    """The snapshot events of kept quote updates as columns in the wire's dtypes (model.md §2
    rule 3): one event per distinct `ts`, its venue updates in order, and the trades
    `sor.data.snapshots.build_snapshots` counts there (`trades_at_snapshots`; trades after the
    last snapshot belong to none and are left out). No per-event Python object is made.

    Args:
        updates: kept updates in non-decreasing `ts` order.

    Raises:
        DataError: `updates.ts` is not in non-decreasing order, or a value is one a consumer
            would refuse (`check_updates`).
    """
    ts = np.asarray(updates.ts, dtype=np.int64)
    if len(ts) > 1 and bool((ts[1:] < ts[:-1]).any()):
        raise DataError("quote updates must be in non-decreasing clock order to be streamed")
    check_updates(updates)
    starts = np.ones(len(ts), dtype=bool)
    starts[1:] = ts[1:] != ts[:-1]
    first = np.flatnonzero(starts)
    snapshot_ts = ts[first]
    n_updates = np.diff(np.append(first, len(ts)))
    trade, at = trades_at_snapshots(snapshot_ts, np.asarray(updates.trade_ts, dtype=np.int64))
    depth_px, depth_sz = _ladders(updates)

    def wire(values: Any, dtype: str) -> np.ndarray:
        # Checked above (`check_updates`): every value fits the wire's dtype exactly.
        return np.ascontiguousarray(values, dtype=dtype)

    return EventColumns(
        ts=wire(snapshot_ts, "<i8"),
        ask_px=wire(updates.ask_px, "<f8"),
        bid_px=wire(updates.bid_px, "<f8"),
        depth_px=wire(depth_px[:, 1:], "<f8"),
        trade_px=wire(np.asarray(updates.trade_px, dtype=np.float64)[trade], "<f8"),
        n_updates=wire(n_updates, "<u4"),
        n_trades=wire(np.bincount(at, minlength=len(snapshot_ts)), "<u4"),
        ask_sz=wire(updates.ask_sz, "<u4"),
        bid_sz=wire(updates.bid_sz, "<u4"),
        depth_sz=wire(depth_sz[:, 1:], "<u4"),
        trade_sz=wire(np.asarray(updates.trade_size)[trade], "<u4"),
        venue=wire(updates.venue, "<u2"),
        trade_venue=wire(np.asarray(updates.trade_venue)[trade], "<u2"),
        trade_side=wire(np.asarray(updates.trade_side)[trade], "i1"),
    )


def split_events(updates: QuoteUpdates) -> Iterator[EventRow]:
    """The snapshot events of kept quote updates as rows, in clock order: `event_columns`
    read back as `stream.messages.EventRow`s (the readable form, for tests and examples).

    Raises:
        DataError: as `event_columns`.
    """
    yield from event_rows(event_columns(updates))


def count_events(updates: QuoteUpdates) -> int:
    """Number of snapshot events (distinct clock values) in `updates`."""
    ts = np.asarray(updates.ts)
    return int(len(ts) and 1 + np.count_nonzero(ts[1:] != ts[:-1]))


#: `UpdatesBuilder` joins runs of this many blocks of fewer events than this.
COMPACT_BLOCKS = 256


class UpdatesBuilder:
    """Collects received events, as columns, and rebuilds `QuoteUpdates` from them.

    Keeps each block of events given to `add` as it is (views of the messages' bytes) until
    `build` joins them; runs of small blocks (one event a message) are joined as they come,
    `COMPACT_BLOCKS` at a time, so that a stream of millions of one-event messages keeps
    arrays, not millions of small views and the messages under them.

    Args:
        levels: ask levels L of the stream (its start message's `levels`); every block added
            carries levels 1..L-1.
    """

    def __init__(self, levels: int = 1) -> None:
        self.levels = levels
        self._blocks: list[EventColumns] = []
        self._first: list[int] = []  # index of each block's first event
        self._events = 0
        self._small = 0  # small blocks at the end, not joined yet

    def __len__(self) -> int:
        return self._events

    def add(self, events: EventColumns) -> None:
        """Append consecutive events.

        Raises:
            ValueError: the events carry another number of ask levels than the stream.
        """
        if events.levels != self.levels:
            raise ValueError(f"events of {events.levels} ask level(s) in a stream of {self.levels}")
        self._blocks.append(events)
        self._first.append(self._events)
        self._events += len(events.ts)
        if len(events.ts) < COMPACT_BLOCKS:
            self._small += 1
            if self._small >= COMPACT_BLOCKS:
                self._compact()
        else:
            self._small = 0

    def _compact(self) -> None:
        """Join the run of small blocks at the end into one block (copies)."""
        k = len(self._blocks) - self._small
        tail = self._blocks[k:]
        joined = EventColumns(*(np.concatenate(parts) for parts in zip(*tail, strict=True)))
        self._blocks[k:] = [joined]
        self._first[k + 1 :] = []
        self._small = 0

    def pieces(self, i: int, j: int) -> Iterator[tuple[int, EventColumns]]:
        """Events i..j-1 (0-based) as they were added: (index of the piece's first event,
        its columns) for each block they span, in order."""
        block = bisect_right(self._first, i) - 1
        while i < j and block < len(self._blocks):
            first, events = self._first[block], self._blocks[block]
            end = min(j, first + len(events.ts))
            yield i, cut(events, i - first, end - first)
            i, block = end, block + 1

    def build(self, symbol: str) -> QuoteUpdates:
        """The `QuoteUpdates` of all events added so far, dtypes of `sor.data.snapshots`."""
        blocks = self._blocks or [columns_of_rows([], self.levels)]

        def joined(field: int) -> np.ndarray:
            parts = [block[field] for block in blocks]
            return parts[0] if len(parts) == 1 else np.concatenate(parts)

        all_events = EventColumns(*map(joined, range(len(EventColumns._fields))))
        ts, ask_px, bid_px, depth_px, trade_px = all_events[:5]
        n_updates, n_trades, ask_sz, bid_sz, depth_sz, trade_sz = all_events[5:11]
        venue, trade_venue, trade_side = all_events[11:]
        n = len(venue)
        px = np.empty((n, self.levels), dtype=np.float64)
        sz = np.empty((n, self.levels), dtype=np.int64)
        px[:, 0], px[:, 1:] = ask_px, depth_px
        sz[:, 0], sz[:, 1:] = ask_sz, depth_sz
        return QuoteUpdates(
            ts=np.repeat(ts.astype(np.int64), n_updates.astype(np.int64)),
            venue=venue.astype(np.int32),
            ask_px=ask_px.astype(np.float64),  # a copy: never a view of a message
            ask_sz=ask_sz.astype(np.int64),
            bid_px=bid_px.astype(np.float64),
            bid_sz=bid_sz.astype(np.int64),
            ask_depth_px=px,
            ask_depth_sz=sz,
            # Each trade at its snapshot's own time: build_snapshots counts it at that very
            # snapshot, so the trade prints and the volume per snapshot are reproduced exactly.
            trade_ts=np.repeat(ts.astype(np.int64), n_trades.astype(np.int64)),
            trade_size=trade_sz.astype(np.int64),
            trade_venue=trade_venue.astype(np.int32),
            trade_px=trade_px.astype(np.float64),
            trade_side=trade_side.astype(np.int8),
            symbol=symbol,
        )
