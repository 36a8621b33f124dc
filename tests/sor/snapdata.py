"""Hand-built Snapshots for execution tests."""

from __future__ import annotations

import numpy as np

from sor.snapshots import Snapshots


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
