"""The one record layout of the project: kept quote updates and the snapshot arrays built from them.

Both the CSV loader (`sor.data.loader`) and the Kafka consumer (`stream.consumer`) produce
`QuoteUpdates`; `build_snapshots` turns them into `Snapshots` (model.md §2), which is all the
backtest ever sees.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields

import numpy as np

__all__ = [
    "BUY",
    "NO_PRICE",
    "NO_SIDE",
    "SELL",
    "QuoteUpdates",
    "Snapshots",
    "build_snapshots",
    "distinct_venues",
    "ladder_breaks",
    "reference_mid",
    "trades_at_snapshots",
    "venue_columns",
]

NO_PRICE = np.nan  #: price of an absent side
BUY, SELL, NO_SIDE = 1, -1, 0  #: trade_side values: buy aggressor (Databento 'B'), 'A', 'N'


@dataclass(frozen=True, eq=False)
class QuoteUpdates:
    """Venue book updates kept by model.md §2 rules 1-3, in clock order.

    Attributes:
        ts: int64[U], clock time of each update in ns since the epoch, non-decreasing.
        venue: int32[U], publisher_id of the venue that updated.
        ask_px: float64[U], best ask in dollars; NaN where the ask side is empty.
        ask_sz: int64[U], shares at the best ask; 0 where the ask side is empty.
        bid_px: float64[U], best bid in dollars; NaN where the bid side is empty.
        bid_sz: int64[U], shares at the best bid; 0 where the bid side is empty.
        ask_depth_px: float64[U, L], the venue's whole visible ask ladder at each update in
            dollars, level 0 (the best ask, equal to `ask_px`) first; L = 10 for an MBP-10
            file, 1 for MBP-1. NaN at an empty level. Among the levels that are not empty,
            prices are non-decreasing, and an empty level is followed only by empty levels
            (`ladder_breaks` finds where these rules are broken).
        ask_depth_sz: int64[U, L], shares at each of those levels (level 0 equal to `ask_sz`);
            0 at an empty level.
        trade_ts: int64[M], clock time of each trade row in the window (before the first-row rule),
            non-decreasing; the trade_* arrays are parallel, in this order (ties: by venue, then
            sequence number, then file order, as the first-row rule orders rows).
        trade_size: int64[M], shares traded by each trade row.
        trade_venue: int32[M], publisher_id of the venue each trade row is at.
        trade_px: float64[M], trade price in dollars; NaN where the row's price is undefined.
        trade_side: int8[M], aggressor side: `BUY` (+1, Databento 'B': the ask was lifted),
            `SELL` (-1, 'A': the bid was hit), `NO_SIDE` (0, 'N' or not given).
        symbol: the instrument these updates are for.
    """

    ts: np.ndarray
    venue: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_depth_px: np.ndarray
    ask_depth_sz: np.ndarray
    trade_ts: np.ndarray
    trade_size: np.ndarray
    trade_venue: np.ndarray
    trade_px: np.ndarray
    trade_side: np.ndarray
    symbol: str = ""

    def __post_init__(self) -> None:
        shape = np.shape(self.ask_depth_px)
        if len(shape) != 2 or shape[0] != len(self.ts) or shape[1] < 1:
            raise ValueError(
                f"ask_depth_px must be [U={len(self.ts)}, L >= 1], but has shape {shape}"
            )
        if np.shape(self.ask_depth_sz) != shape:
            raise ValueError(
                f"ask_depth_sz must have ask_depth_px's shape {shape}, but has "
                f"{np.shape(self.ask_depth_sz)}"
            )

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def n_levels(self) -> int:
        """Number of ask levels L of `ask_depth_px` (10 for MBP-10 data, 1 for MBP-1)."""
        return int(self.ask_depth_px.shape[1])


def ladder_breaks(px: np.ndarray, sz: np.ndarray) -> np.ndarray:
    """Where ask ladders break the rules of `QuoteUpdates.ask_depth_px`.

    A level is empty where its price is NaN or its size is 0.

    Args:
        px: float64[U, L], prices in dollars per level, level 0 first.
        sz: int64[U, L], shares per level.

    Returns:
        bool[U, L], True at each level k >= 1 that is not empty while level k-1 is, or whose
        price is below level k-1's; level 0 is never True.
    """
    empty = np.isnan(px) | (sz == 0)
    breaks = np.zeros(np.shape(px), dtype=bool)
    breaks[:, 1:] = ~empty[:, 1:] & (empty[:, :-1] | (px[:, 1:] < px[:, :-1]))
    return breaks


def _empty(dtype: type) -> np.ndarray:
    return np.zeros(0, dtype=dtype)


@dataclass(frozen=True, eq=False)
class Snapshots:
    """Columnar snapshots: one row per distinct clock value, one column per venue (model.md §2).

    Memory: `nbytes` counts every array, the ask ladder's too: 16 bytes per snapshot, venue and
    level for `ask_depth_px` and `ask_depth_sz` (T * N * L of each), which for MBP-10 data
    (L = 10) is about five times the top-of-book arrays together. From MBP-1 data (L = 1)
    `build_snapshots` makes the depth arrays views of `ask_px` and `ask_sz`, which `nbytes` still
    counts. The arrays are never written to once built.

    Attributes:
        ts: int64[T], snapshot time in ns since the epoch, strictly increasing.
        venues: int32[N], publisher_ids of the venues, ascending; column j of the 2-D arrays.
        ask_px: float64[T, N], the venue's latest best ask in dollars; NaN while it shows none.
        ask_sz: int64[T, N], shares at that ask; 0 while the venue shows no ask.
        bid_px: float64[T, N], the venue's latest best bid in dollars; NaN while it shows none.
        bid_sz: int64[T, N], shares at that bid; 0 while the venue shows no bid.
        trade_volume: int64[T], shares traded (trade rows) at this snapshot's time.
        trade_row: int64[M'], for each trade print counted at a snapshot (the first at or after
            the trade, as for `trade_volume`), that snapshot's row, non-decreasing; the trade_*
            arrays below are parallel, in the order of `QuoteUpdates.trade_ts`. Trades after the
            last snapshot are in none of them; trades at a publisher_id without a column (one
            that never quoted) are left out of them but still counted in `trade_volume`.
        trade_col: int32[M'], the venue column (index into `venues`) the trade was at.
        trade_px: float64[M'], trade price in dollars; NaN where the data gives none.
        trade_sz: int64[M'], shares traded.
        trade_side: int8[M'], aggressor side: +1 buy (lifted the ask), -1 sell (hit the bid),
            0 unknown.
        ask_depth_px: float64[T, N, L] or None, the venue's latest visible ask ladder in
            dollars, level 0 (equal to `ask_px`) first; NaN at an empty level and at every
            level while the venue shows no ask. L = 10 for MBP-10 data, 1 for MBP-1. None in
            hand-built snapshots that hold only the top of book: `ask_ladder()` reads either.
        ask_depth_sz: int64[T, N, L] or None, shares at each of those levels (level 0 equal to
            `ask_sz`); 0 at an empty level. Given together with `ask_depth_px`.
        symbol: the instrument.
    """

    ts: np.ndarray
    venues: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray
    bid_px: np.ndarray
    bid_sz: np.ndarray
    trade_volume: np.ndarray
    # Defaults (no trade prints) for hand-built snapshots that only need the quotes.
    trade_row: np.ndarray = field(default_factory=lambda: _empty(np.int64))
    trade_col: np.ndarray = field(default_factory=lambda: _empty(np.int32))
    trade_px: np.ndarray = field(default_factory=lambda: _empty(np.float64))
    trade_sz: np.ndarray = field(default_factory=lambda: _empty(np.int64))
    trade_side: np.ndarray = field(default_factory=lambda: _empty(np.int8))
    # Defaults (top of book only) for hand-built snapshots.
    ask_depth_px: np.ndarray | None = None
    ask_depth_sz: np.ndarray | None = None
    symbol: str = ""

    def __post_init__(self) -> None:
        px, sz = self.ask_depth_px, self.ask_depth_sz
        if px is None and sz is None:
            return
        if px is None or sz is None:
            raise ValueError("ask_depth_px and ask_depth_sz are given together or not at all")
        top = np.shape(self.ask_px)
        if px.ndim != 3 or px.shape[:2] != top or px.shape[2] < 1 or sz.shape != px.shape:
            raise ValueError(
                f"ask_depth_px and ask_depth_sz must be [T, N, L >= 1] with [T, N] = {top}, but "
                f"have shapes {px.shape} and {sz.shape}"
            )

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def n_venues(self) -> int:
        """Number of venue columns."""
        return len(self.venues)

    @property
    def n_levels(self) -> int:
        """Number of ask levels L of `ask_ladder()`: 10 for MBP-10 data, 1 for MBP-1 or without
        depth arrays."""
        return 1 if self.ask_depth_px is None else int(self.ask_depth_px.shape[2])

    def ask_ladder(self) -> tuple[np.ndarray, np.ndarray]:
        """Every venue's visible ask ladder: (px float64[T, N, L], sz int64[T, N, L]).

        The depth arrays when present, else the top of book as one level (L = 1, views of
        `ask_px` and `ask_sz`). Level 0 is the best ask; NaN price and 0 size at an empty level.
        """
        if self.ask_depth_px is None or self.ask_depth_sz is None:
            return self.ask_px[:, :, None], self.ask_sz[:, :, None]
        return self.ask_depth_px, self.ask_depth_sz

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays, the depth arrays included."""
        return sum(
            value.nbytes
            for f in fields(self)
            if f.name != "symbol" and (value := getattr(self, f.name)) is not None
        )

    def equals(self, other: Snapshots) -> bool:
        """True when every array (NaN equal to NaN) and the symbol are identical.

        Depth arrays absent (None) on one side only make the snapshots different.
        """
        if self.symbol != other.symbol:
            return False
        for f in fields(self):
            if f.name == "symbol":
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a is None or b is None:
                if a is not b:
                    return False
                continue
            if a.shape != b.shape or a.dtype != b.dtype:
                return False
            if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                return False
        return True


def trades_at_snapshots(
    snapshot_ts: np.ndarray, trade_ts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Which trades are counted at which snapshot: the first snapshot at or after the trade.

    Args:
        snapshot_ts: int64[T], snapshot times in ns, strictly increasing.
        trade_ts: int64[M], trade times in ns.

    Returns:
        (index, row): int64[M'] indices into the trades of those at or before the last snapshot,
        ordered by snapshot (stably, so trades of one snapshot keep their order), and int64[M']
        the snapshot row of each.
    """
    at = np.searchsorted(snapshot_ts, trade_ts, side="left").astype(np.int64, copy=False)
    index = np.flatnonzero(at < len(snapshot_ts))
    if len(index) > 1 and bool((np.diff(at[index]) < 0).any()):
        index = index[np.argsort(at[index], kind="stable")]
    return index, at[index]


def distinct_venues(venue: np.ndarray) -> np.ndarray:
    """The distinct publisher_ids of `venue`, ascending (`np.unique`'s answer)."""
    return venue_columns(venue)[0]


def venue_columns(venue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct publisher_ids ascending, the column of each entry of `venue` among them): what
    `np.unique(venue, return_inverse=True)` gives, by counting instead of sorting where the ids
    are small non-negative integers (publisher_ids are below 65,536)."""
    venue = np.asarray(venue)
    if len(venue) == 0 or venue.dtype.kind not in "iu" or venue.min() < 0 or venue.max() > 2**16:
        venues, inverse = np.unique(venue, return_inverse=True)
        return venues, inverse.reshape(-1)
    present = np.bincount(venue) > 0
    venues = np.flatnonzero(present).astype(venue.dtype)
    column = np.cumsum(present) - 1
    return venues, column[venue]


def build_snapshots(updates: QuoteUpdates) -> Snapshots:
    """Build the snapshot arrays from kept quote updates (model.md §2 rules 3-4).

    Each distinct update time is one snapshot; a venue that did not update keeps its previous
    quote and ask ladder, and a venue never seen yet, or whose side is empty, shows NaN price and
    0 size (at every level of the ladder for an empty ask side).
    Trades are counted at the first snapshot at or after their time (see `trades_at_snapshots`).

    Args:
        updates: kept updates in non-decreasing `ts` order.

    Returns:
        The snapshot arrays.
    """
    # Distinct times of the sorted ts, and the snapshot of each update.
    ts_all = np.asarray(updates.ts, dtype=np.int64)
    starts = np.ones(len(ts_all), dtype=bool)
    starts[1:] = ts_all[1:] != ts_all[:-1]
    ts, snap_index = ts_all[starts], np.cumsum(starts) - 1
    venues, venue_index = venue_columns(updates.venue)
    n_snap, n_venue = len(ts), len(venues)

    # Row number of each venue's latest update at or before each snapshot: updates are in clock
    # order, so the running maximum of update row numbers down each column is that row.
    index = np.int32 if len(updates) < 2**31 else np.int64  # half the memory where it fits
    rows = np.full((n_snap, n_venue), -1, dtype=index)
    np.maximum.at(rows, (snap_index, venue_index), np.arange(len(updates), dtype=index))
    np.maximum.accumulate(rows, axis=0, out=rows)
    np.maximum(rows, 0, out=rows)  # before a venue's first update: any row, overwritten below
    # A venue is unseen on the snapshots before its first update: a prefix of its column.
    first_seen = np.full(n_venue, n_snap, dtype=np.int64)
    np.minimum.at(first_seen, venue_index, snap_index)

    def gather(values: np.ndarray, missing: float | int) -> np.ndarray:
        if len(values) == 0:
            return np.full((n_snap, n_venue), missing, dtype=values.dtype)
        out: np.ndarray = values[rows]  # a new [T, N] (or [T, N, L]) array: filled in place
        for j, first in enumerate(first_seen.tolist()):
            out[:first, j] = missing
        return out

    def gather_levels(values: np.ndarray, missing: float | int) -> np.ndarray:
        if len(values) == 0:
            return np.full((n_snap, n_venue, values.shape[1]), missing, dtype=values.dtype)
        return gather(values, missing)

    trade, trade_row = trades_at_snapshots(ts, np.asarray(updates.trade_ts, dtype=np.int64))
    trade_sz = np.asarray(updates.trade_size, dtype=np.int64)[trade]
    trade_volume = np.zeros(n_snap, dtype=np.int64)
    np.add.at(trade_volume, trade_row, trade_sz)
    # Trade prints per venue column; a trade at a venue that never quoted has no column.
    trade_venue = np.asarray(updates.trade_venue)[trade]
    trade_col = np.searchsorted(venues, trade_venue)
    has_col = trade_col < n_venue
    has_col[has_col] = venues[trade_col[has_col]] == trade_venue[has_col]
    trade = trade[has_col]

    ask_px = updates.ask_px.astype(np.float64, copy=False)
    ask_sz = updates.ask_sz.astype(np.int64, copy=False)
    # As `QuoteUpdates` has it, the best ask is level 0 of the ladder: gathered once.
    top_is_level_0 = np.array_equal(
        ask_px, updates.ask_depth_px[:, 0], equal_nan=True
    ) and np.array_equal(ask_sz, updates.ask_depth_sz[:, 0])
    if top_is_level_0 and updates.n_levels == 1:  # MBP-1: the ladder is the top of book
        top_px, top_sz = gather(ask_px, NO_PRICE), gather(ask_sz, 0)
        ladder_px, ladder_sz = top_px[:, :, None], top_sz[:, :, None]
    else:
        ladder_px = gather_levels(updates.ask_depth_px.astype(np.float64, copy=False), NO_PRICE)
        ladder_sz = gather_levels(updates.ask_depth_sz.astype(np.int64, copy=False), 0)
        if top_is_level_0:
            top_px, top_sz = ladder_px[:, :, 0].copy(), ladder_sz[:, :, 0].copy()
        else:
            top_px, top_sz = gather(ask_px, NO_PRICE), gather(ask_sz, 0)
    return Snapshots(
        ts=ts.astype(np.int64, copy=False),
        venues=venues.astype(np.int32, copy=False),
        ask_px=top_px,
        ask_sz=top_sz,
        bid_px=gather(updates.bid_px.astype(np.float64, copy=False), NO_PRICE),
        bid_sz=gather(updates.bid_sz.astype(np.int64, copy=False), 0),
        trade_volume=trade_volume,
        trade_row=trade_row[has_col],
        trade_col=trade_col[has_col].astype(np.int32),
        trade_px=np.asarray(updates.trade_px, dtype=np.float64)[trade],
        trade_sz=trade_sz[has_col],
        trade_side=np.asarray(updates.trade_side, dtype=np.int8)[trade],
        ask_depth_px=ladder_px,
        ask_depth_sz=ladder_sz,
        symbol=updates.symbol,
    )


def reference_mid(snaps: Snapshots) -> np.ndarray:
    """float64[T]: middle of the best bid and best ask across venues; the best ask without bids."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows with no quote on a side
        best_ask = np.nanmin(snaps.ask_px, axis=1)
        best_bid = np.nanmax(snaps.bid_px, axis=1)
    mid: np.ndarray = np.where(np.isfinite(best_bid), (best_bid + best_ask) / 2, best_ask)
    return mid
