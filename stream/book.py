"""Live top of book per venue, as a consumer sees it while events arrive (model.md §2 rule 4)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from stream.messages import TradeRow, UpdateRow

__all__ = ["Quote", "TopOfBook", "Trade"]

_NAN = math.nan


class Quote(NamedTuple):
    """A venue's latest top of book; an empty side has price NaN and size 0."""

    ask_px: float  #: dollars
    ask_sz: int  #: shares
    bid_px: float  #: dollars
    bid_sz: int  #: shares


class Trade(NamedTuple):
    """One trade print counted at a snapshot."""

    venue: int  #: publisher_id
    px: float  #: dollars; NaN where the data gives no price
    sz: int  #: shares
    side: int  #: +1 buy aggressor (lifted the ask), -1 sell aggressor (hit the bid), 0 unknown


class TopOfBook:
    """Read-only view of every venue's latest quote at the current snapshot.

    The consumer updates it in place after each event, so inside an `on_event(ts, book)`
    callback it shows the snapshot at `ts`, the same row `build_snapshots` would give (its top
    of book: the ask levels beyond the best are in the consumed Snapshots only); copy what you
    keep (`dict(book.quotes)`). A venue not seen yet is absent.

    Attributes:
        ts: time of the current snapshot, ns since the epoch (None before the first event).
        trade_volume: shares traded at the current snapshot.
        trades: the trade prints counted at the current snapshot (`Trade`s, in the data's
            order; at venues that never quoted too), a tuple.
        quotes: publisher_id -> `Quote`, read-only.
    """

    def __init__(self) -> None:
        self._quotes: dict[int, Quote] = {}
        self.quotes: Mapping[int, Quote] = MappingProxyType(self._quotes)
        self.ts: int | None = None
        self.trade_volume = 0
        self.trades: tuple[Trade, ...] = ()

    def _apply(self, ts: int, updates: Sequence[UpdateRow], trades: Sequence[TradeRow]) -> None:
        quotes = self._quotes
        for venue, ask_px, ask_sz, bid_px, bid_sz, *_ in updates:  # levels beyond 0: not kept
            quotes[venue] = Quote(
                _NAN if ask_px is None else float(ask_px),
                ask_sz,
                _NAN if bid_px is None else float(bid_px),
                bid_sz,
            )
        self.ts = ts
        if trades:
            self.trades = tuple(
                Trade(venue, _NAN if px is None else float(px), sz, side)
                for venue, px, sz, side in trades
            )
            self.trade_volume = sum(t.sz for t in self.trades)
        else:
            self.trades, self.trade_volume = (), 0

    def best_ask(self) -> tuple[int, float, int] | None:
        """(publisher_id, ask in dollars, shares) of the lowest ask, None when no venue shows one.

        Ties go to the larger displayed size, then the lower publisher_id (model.md §5).
        """
        best = None
        for venue, q in self._quotes.items():
            if q.ask_sz > 0 and not math.isnan(q.ask_px):
                key = (q.ask_px, -q.ask_sz, venue)
                if best is None or key < best:
                    best = key
        return None if best is None else (best[2], best[0], -best[1])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Copies as arrays, venues ascending: (venues int32, ask_px, ask_sz, bid_px, bid_sz)."""
        venues = sorted(self._quotes)
        rows = [self._quotes[v] for v in venues]
        return (
            np.array(venues, dtype=np.int32),
            np.array([r.ask_px for r in rows], dtype=np.float64),
            np.array([r.ask_sz for r in rows], dtype=np.int64),
            np.array([r.bid_px for r in rows], dtype=np.float64),
            np.array([r.bid_sz for r in rows], dtype=np.int64),
        )

    def __repr__(self) -> str:
        return f"TopOfBook(ts={self.ts}, venues={sorted(self._quotes)})"
