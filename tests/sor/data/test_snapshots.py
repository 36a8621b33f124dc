"""The snapshot record layout: trade prints per venue, defaults, equality and size."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from sor.data.snapshots import BUY, NO_SIDE, SELL, Snapshots, build_snapshots
from tests.sor.data.snapdata import updates_with_trades

TRADE_FIELDS = ("trade_ts", "trade_size", "trade_venue", "trade_px", "trade_side")


def test_trade_prints_land_on_the_first_snapshot_at_or_after_them():
    snaps = build_snapshots(updates_with_trades())
    assert snaps.venues.tolist() == [2, 9]
    assert snaps.trade_volume.tolist() == [1 + 2, 4 + 32, 8]  # 16 after the last: dropped
    assert snaps.trade_row.tolist() == [0, 0, 1, 2]
    assert snaps.trade_col.tolist() == [1, 0, 1, 1]
    np.testing.assert_array_equal(snaps.trade_px, [10.02, 9.99, np.nan, 10.0])
    assert snaps.trade_sz.tolist() == [1, 2, 32, 8]
    assert snaps.trade_side.tolist() == [BUY, SELL, NO_SIDE, SELL]


def test_trades_out_of_clock_order_are_grouped_by_snapshot_stably():
    updates = updates_with_trades()
    order = np.array([4, 0, 2, 1, 3, 5])  # not clock order
    shuffled = replace(updates, **{name: getattr(updates, name)[order] for name in TRADE_FIELDS})
    snaps = build_snapshots(shuffled)
    assert snaps.trade_row.tolist() == [0, 0, 1, 2]
    assert snaps.trade_sz.tolist() == [1, 2, 32, 8]
    assert snaps.trade_volume.tolist() == build_snapshots(updates).trade_volume.tolist()


def test_no_trades_and_no_updates():
    updates = updates_with_trades()
    none = replace(updates, **{name: getattr(updates, name)[:0] for name in TRADE_FIELDS})
    snaps = build_snapshots(none)
    assert snaps.trade_volume.tolist() == [0, 0, 0]
    for name in ("trade_row", "trade_col", "trade_px", "trade_sz", "trade_side"):
        assert len(getattr(snaps, name)) == 0, name
    quote_fields = ("ts", "venue", "ask_px", "ask_sz", "bid_px", "bid_sz")
    no_quotes = replace(updates, **{name: getattr(updates, name)[:0] for name in quote_fields})
    empty = build_snapshots(no_quotes)
    # Without a snapshot, no trade lands anywhere.
    assert len(empty) == 0 and len(empty.trade_row) == 0 and len(empty.trade_volume) == 0


def test_hand_built_snapshots_default_to_no_trade_prints():
    snaps = Snapshots(
        ts=np.array([0, 1], dtype=np.int64),
        venues=np.array([1], dtype=np.int32),
        ask_px=np.array([[10.0], [10.0]]),
        ask_sz=np.array([[100], [100]], dtype=np.int64),
        bid_px=np.array([[9.99], [9.99]]),
        bid_sz=np.array([[100], [100]], dtype=np.int64),
        trade_volume=np.zeros(2, dtype=np.int64),
    )
    assert snaps.trade_row.dtype == np.int64 and snaps.trade_col.dtype == np.int32
    assert snaps.trade_px.dtype == np.float64 and snaps.trade_sz.dtype == np.int64
    assert snaps.trade_side.dtype == np.int8 and len(snaps.trade_side) == 0
    assert snaps.symbol == ""


def test_equals_and_nbytes_cover_the_trade_arrays():
    snaps = build_snapshots(updates_with_trades())
    assert snaps.equals(build_snapshots(updates_with_trades()))
    arrays = [f.name for f in fields(Snapshots) if f.name != "symbol"]
    assert snaps.nbytes == sum(getattr(snaps, name).nbytes for name in arrays)
    assert {"trade_row", "trade_col", "trade_px", "trade_sz", "trade_side"} <= set(arrays)
    for name in ("trade_row", "trade_col", "trade_px", "trade_sz", "trade_side"):
        changed = getattr(snaps, name).copy()
        changed[-1] = changed[-1] + 1
        assert not snaps.equals(replace(snaps, **{name: changed})), name
        assert not snaps.equals(replace(snaps, **{name: changed.astype(np.float32)})), name
    # NaN prices compare equal to NaN.
    assert np.isnan(snaps.trade_px).any() and snaps.equals(replace(snaps))
