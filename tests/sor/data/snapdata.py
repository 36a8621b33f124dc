"""Hand-built Snapshots for execution tests."""

from __future__ import annotations

import numpy as np

from sor.data.snapshots import BUY, NO_SIDE, SELL, QuoteUpdates, Snapshots


def make_snaps(
    ask_px, ask_sz, *, bid_px=None, bid_sz=None, venues=None, ts_s=None, trade_volume=None
) -> Snapshots:
    """Snapshots from nested lists [t][venue]; NaN price = no ask; times in seconds."""
    ask_px = np.asarray(ask_px, dtype=np.float64)
    n_snap, n_venue = ask_px.shape
    bid_px = np.asarray(bid_px if bid_px is not None else ask_px - 0.02, dtype=np.float64)
    return Snapshots(
        ts=(np.asarray(ts_s if ts_s is not None else np.arange(n_snap)) * 10**9).astype(np.int64),
        venues=np.asarray(venues if venues is not None else np.arange(1, n_venue + 1), np.int32),
        ask_px=ask_px,
        ask_sz=np.asarray(ask_sz, dtype=np.int64),
        bid_px=bid_px,
        bid_sz=np.asarray(bid_sz if bid_sz is not None else np.full((n_snap, n_venue), 100)),
        trade_volume=np.asarray(
            trade_volume if trade_volume is not None else np.zeros(n_snap), dtype=np.int64
        ),
        symbol="TEST",
    )


def updates_with_trades() -> QuoteUpdates:
    """Snapshots at 10, 20, 30 ns from venues 2 and 9 with up to three ask levels; trades before,
    between, at and after."""
    return QuoteUpdates(
        ts=np.array([10, 10, 20, 30], dtype=np.int64),
        venue=np.array([9, 2, 2, 9], dtype=np.int32),
        ask_px=np.array([10.02, np.nan, 10.01, 10.03]),
        ask_sz=np.array([100, 0, 50, 70], dtype=np.int64),
        bid_px=np.array([10.0, 9.99, np.nan, 10.0]),
        bid_sz=np.array([300, 10, 0, 5], dtype=np.int64),
        # Three ask levels, level 0 the best ask; a level at the price of the one above is fine.
        ask_depth_px=np.array(
            [
                [10.02, 10.03, np.nan],
                [np.nan, np.nan, np.nan],
                [10.01, 10.01, 10.05],
                [10.03, np.nan, np.nan],
            ]
        ),
        ask_depth_sz=np.array([[100, 200, 0], [0, 0, 0], [50, 20, 300], [70, 0, 0]], np.int64),
        trade_ts=np.array([5, 10, 15, 15, 30, 31], dtype=np.int64),
        trade_size=np.array([1, 2, 4, 32, 8, 16], dtype=np.int64),
        # Venue 5 never quotes: its trade counts in the volume, but has no column.
        trade_venue=np.array([9, 2, 5, 9, 9, 2], dtype=np.int32),
        trade_px=np.array([10.02, 9.99, 10.0, np.nan, 10.0, 10.03]),
        trade_side=np.array([BUY, SELL, BUY, NO_SIDE, SELL, BUY], dtype=np.int8),
        symbol="XYZ",
    )
