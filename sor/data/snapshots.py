"""The one record layout of the project: kept quote updates and the snapshot arrays built from them.

Both the CSV loader (`sor.data.loader`) and the Kafka consumer (`stream.consumer`) produce
`QuoteUpdates`; `build_snapshots` turns them into `Snapshots` (model.md §2), which is all the
backtest ever sees.
"""

from __future__ import annotations

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
    "trades_at_snapshots",
]

NO_PRICE = np.nan  #: price of an absent side
BUY, SELL, NO_SIDE = 1, -1, 0  #: trade_side values: buy aggressor (Databento 'B'), 'A', 'N'


@dataclass(frozen=True, eq=False)
class QuoteUpdates:
    """Venue top-of-book updates kept by model.md §2 rules 1-3, in clock order.

    Attributes:
        ts: int64[U], clock time of each update in ns since the epoch, non-decreasing.
        venue: int32[U], publisher_id of the venue that updated.
        ask_px: float64[U], best ask in dollars; NaN where the ask side is empty.
        ask_sz: int64[U], shares at the best ask; 0 where the ask side is empty.
        bid_px: float64[U], best bid in dollars; NaN where the bid side is empty.
        bid_sz: int64[U], shares at the best bid; 0 where the bid side is empty.
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
    trade_ts: np.ndarray
    trade_size: np.ndarray
    trade_venue: np.ndarray
    trade_px: np.ndarray
    trade_side: np.ndarray
    symbol: str = ""

    def __len__(self) -> int:
        return len(self.ts)


def _empty(dtype: type) -> np.ndarray:
    return np.zeros(0, dtype=dtype)


@dataclass(frozen=True, eq=False)
class Snapshots:
    """Columnar snapshots: one row per distinct clock value, one column per venue (model.md §2).

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
    symbol: str = ""

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def n_venues(self) -> int:
        """Number of venue columns."""
        return len(self.venues)

    def ask_ladder(self) -> tuple[np.ndarray, np.ndarray]:
        """(px float64[T, N, L], sz int64[T, N, L]): every visible ask level, level 0 first."""
        return self.ask_px[:, :, None], self.ask_sz[:, :, None]

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return sum(getattr(self, f.name).nbytes for f in fields(self) if f.name != "symbol")

    def equals(self, other: Snapshots) -> bool:
        """True when every array (NaN equal to NaN) and the symbol are identical."""
        if self.symbol != other.symbol:
            return False
        for f in fields(self):
            if f.name == "symbol":
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
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


def build_snapshots(updates: QuoteUpdates) -> Snapshots:
    """Build the snapshot arrays from kept quote updates (model.md §2 rules 3-4).

    Each distinct update time is one snapshot; a venue that did not update keeps its previous
    quote, and a venue never seen yet, or whose side is empty, shows NaN price and 0 size.
    Trades are counted at the first snapshot at or after their time (see `trades_at_snapshots`).

    Args:
        updates: kept updates in non-decreasing `ts` order.

    Returns:
        The snapshot arrays.
    """
    ts, snap_index = np.unique(updates.ts, return_inverse=True)
    venues, venue_index = np.unique(updates.venue, return_inverse=True)
    n_snap, n_venue = len(ts), len(venues)

    # Row number of each venue's latest update at or before each snapshot: updates are in clock
    # order, so the running maximum of update row numbers down each column is that row.
    latest = np.full((n_snap, n_venue), -1, dtype=np.int64)
    np.maximum.at(latest, (snap_index, venue_index), np.arange(len(updates), dtype=np.int64))
    np.maximum.accumulate(latest, axis=0, out=latest)
    seen = latest >= 0
    rows = np.where(seen, latest, 0)

    def gather(values: np.ndarray, missing: float | int) -> np.ndarray:
        if len(values) == 0:
            return np.full((n_snap, n_venue), missing, dtype=values.dtype)
        return np.where(seen, values[rows], missing).astype(values.dtype, copy=False)

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

    return Snapshots(
        ts=ts.astype(np.int64, copy=False),
        venues=venues.astype(np.int32, copy=False),
        ask_px=gather(updates.ask_px.astype(np.float64, copy=False), NO_PRICE),
        ask_sz=gather(updates.ask_sz.astype(np.int64, copy=False), 0),
        bid_px=gather(updates.bid_px.astype(np.float64, copy=False), NO_PRICE),
        bid_sz=gather(updates.bid_sz.astype(np.int64, copy=False), 0),
        trade_volume=trade_volume,
        trade_row=trade_row[has_col],
        trade_col=trade_col[has_col].astype(np.int32),
        trade_px=np.asarray(updates.trade_px, dtype=np.float64)[trade],
        trade_sz=trade_sz[has_col],
        trade_side=np.asarray(updates.trade_side, dtype=np.int8)[trade],
        symbol=updates.symbol,
    )
