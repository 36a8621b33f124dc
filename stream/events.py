"""QuoteUpdates <-> snapshot events: the two ends of the stream, without Kafka.

`split_events` cuts kept quote updates into one event per distinct clock value, with the trades
`sor.data.snapshots.build_snapshots` would count there; `UpdatesBuilder` glues received events back
into `QuoteUpdates` such that `build_snapshots` gives identical arrays.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sor.data.csvfile import MAX_PRICE, MAX_PUBLISHER_ID, TS_MAX, TS_MIN
from sor.data.snapshots import QuoteUpdates, ladder_breaks, trades_at_snapshots
from sor.errors import DataError
from sor.vocabulary import MAX_SIZE

if TYPE_CHECKING:
    from stream.messages import TradeRow, UpdateRow

__all__ = [
    "Problem",
    "SnapshotEvent",
    "UpdatesBuilder",
    "check_updates",
    "count_events",
    "split_events",
    "updates_problem",
]


class SnapshotEvent(NamedTuple):
    """One distinct clock value of the data and what happened at it."""

    ts: int  #: ns since the epoch
    updates: list[UpdateRow]  #: `stream.messages.UpdateRow`s, in order
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


def split_events(updates: QuoteUpdates) -> Iterator[SnapshotEvent]:
    """The snapshot events of kept quote updates, in clock order (model.md §2 rule 3).

    With more than one ask level, each update row carries the prices and sizes of the levels
    shown beyond level 0 (`stream.messages` describes the rows).

    Args:
        updates: kept updates in non-decreasing `ts` order.

    Yields:
        One `SnapshotEvent` per distinct `ts`, with the updates at that time in their order and
        the trades counted there (`sor.data.snapshots.trades_at_snapshots`; trades after the last
        snapshot belong to none and are left out).

    Raises:
        DataError: `updates.ts` is not in non-decreasing order, or a value is one a consumer
            would refuse (`check_updates`).
    """
    ts = np.asarray(updates.ts, dtype=np.int64)
    if len(ts) > 1 and bool((ts[1:] < ts[:-1]).any()):
        raise DataError("quote updates must be in non-decreasing clock order to be streamed")
    check_updates(updates)
    depth_px, depth_sz = _ladders(updates)
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
    columns = [
        np.asarray(updates.venue).astype(np.int64).tolist(),
        _prices(updates.ask_px),
        np.asarray(updates.ask_sz).astype(np.int64).tolist(),
        _prices(updates.bid_px),
        np.asarray(updates.bid_sz).astype(np.int64).tolist(),
    ]
    if depth_px.shape[1] > 1:
        # The levels shown beyond level 0: empty levels come last, so the first `shown`.
        shown = (depth_sz[:, 1:] > 0).sum(axis=1).tolist()
        columns.append(
            [levels[:n] for levels, n in zip(depth_px[:, 1:].tolist(), shown, strict=True)]
        )
        columns.append(
            [levels[:n] for levels, n in zip(depth_sz[:, 1:].tolist(), shown, strict=True)]
        )
    rows: list[UpdateRow] = list(map(list, zip(*columns, strict=True)))
    bounds = [*first.tolist(), len(rows)]
    for i, t in enumerate(snapshot_ts.tolist()):
        yield SnapshotEvent(
            t, rows[bounds[i] : bounds[i + 1]], trades[trade_bounds[i] : trade_bounds[i + 1]]
        )


def count_events(updates: QuoteUpdates) -> int:
    """Number of snapshot events (distinct clock values) in `updates`."""
    return len(np.unique(updates.ts))


class UpdatesBuilder:
    """Collects received events and rebuilds `QuoteUpdates` from them.

    Args:
        levels: ask levels L of the stream (its start message's `levels`); with L > 1 every
            update row carries the levels shown beyond level 0.
    """

    def __init__(self, levels: int = 1) -> None:
        self.levels = levels
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

    def event_of(self, problem: Problem) -> int:
        """The index of the event (0-based) holding the update or trade `problem` names, in
        the `QuoteUpdates` `build` gave."""
        if problem.table == "trade":
            return self._trade_event[problem.row]
        return bisect_right(self._event_start, problem.row) - 1

    def build(self, symbol: str) -> QuoteUpdates:
        """The `QuoteUpdates` of all events added so far, dtypes of `sor.data.snapshots`."""
        depth: list[tuple[list[float], ...]] = []  # per update: prices, then sizes beyond level 0
        if self._rows:
            venue, ask_px, ask_sz, bid_px, bid_sz, *depth = zip(*self._rows, strict=True)
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
        depth_px, depth_sz = self._ladders(ask_px_array, ask_sz_array, depth)
        return QuoteUpdates(
            ts=np.repeat(event_ts, rows_per_event),
            venue=np.array(venue, dtype=np.int32),
            ask_px=ask_px_array,
            ask_sz=ask_sz_array,
            bid_px=np.array(bid_px, dtype=np.float64),
            bid_sz=np.array(bid_sz, dtype=np.int64),
            ask_depth_px=depth_px,
            ask_depth_sz=depth_sz,
            # Each trade at its snapshot's own time: build_snapshots counts it at that very
            # snapshot, so the trade prints and the volume per snapshot are reproduced exactly.
            trade_ts=event_ts[np.array(self._trade_event, dtype=np.int64)],
            trade_size=np.array(trade_size, dtype=np.int64),
            trade_venue=np.array(trade_venue, dtype=np.int32),
            trade_px=np.array(trade_px, dtype=np.float64),  # None becomes NaN
            trade_side=np.array(trade_side, dtype=np.int8),
            symbol=symbol,
        )

    def _ladders(
        self, ask_px: np.ndarray, ask_sz: np.ndarray, depth: list[tuple[list[float], ...]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The [U, L] ask ladders: level 0 the best ask, then the levels each update shows."""
        n = len(ask_px)
        px = np.full((n, self.levels), np.nan)
        sz = np.zeros((n, self.levels), dtype=np.int64)
        px[:, 0], sz[:, 0] = ask_px, ask_sz
        if not depth:
            return px, sz
        prices, sizes = depth
        counts = np.fromiter(map(len, prices), dtype=np.int64, count=n)
        if n and int(counts.max()) > self.levels - 1:
            raise ValueError(f"an update shows more than the stream's {self.levels} ask levels")
        total = int(counts.sum())
        row = np.repeat(np.arange(n), counts)
        level = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        px[row, level] = np.fromiter(chain.from_iterable(prices), dtype=np.float64, count=total)
        sz[row, level] = np.fromiter(chain.from_iterable(sizes), dtype=np.int64, count=total)
        return px, sz
