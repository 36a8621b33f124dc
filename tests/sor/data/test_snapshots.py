"""The snapshot record layout: ask ladders, trade prints per venue, defaults, equality, size."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

from sor.data.snapshots import (
    BUY,
    NO_SIDE,
    SELL,
    QuoteUpdates,
    Snapshots,
    build_snapshots,
    ladder_breaks,
    venue_columns,
)
from tests.sor.data.snapdata import make_snaps, updates_with_trades

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
    quote_fields = (
        "ts", "venue", "ask_px", "ask_sz", "bid_px", "bid_sz", "ask_depth_px", "ask_depth_sz"
    )  # fmt: skip
    no_quotes = replace(updates, **{name: getattr(updates, name)[:0] for name in quote_fields})
    empty = build_snapshots(no_quotes)
    # Without a snapshot, no trade lands anywhere.
    assert len(empty) == 0 and len(empty.trade_row) == 0 and len(empty.trade_volume) == 0
    assert empty.ask_depth_px is not None and empty.ask_depth_px.shape == (0, 0, 3)


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
    assert snaps.ask_depth_px is None and snaps.ask_depth_sz is None and snaps.n_levels == 1


def test_equals_and_nbytes_cover_the_trade_and_depth_arrays():
    snaps = build_snapshots(updates_with_trades())
    assert snaps.equals(build_snapshots(updates_with_trades()))
    arrays = [f.name for f in fields(Snapshots) if f.name != "symbol"]
    assert snaps.nbytes == sum(getattr(snaps, name).nbytes for name in arrays)
    changing = ("trade_row", "trade_col", "trade_px", "trade_sz", "trade_side")
    changing += ("ask_depth_px", "ask_depth_sz")
    assert set(changing) <= set(arrays)
    assert snaps.ask_depth_px is not None and snaps.ask_depth_sz is not None
    # 16 bytes per snapshot, venue and level for the two depth arrays
    depth_bytes = snaps.ask_depth_px.nbytes + snaps.ask_depth_sz.nbytes
    assert depth_bytes == 16 * len(snaps) * snaps.n_venues * snaps.n_levels
    top_only = replace(snaps, ask_depth_px=None, ask_depth_sz=None)
    assert top_only.nbytes == snaps.nbytes - depth_bytes
    assert not snaps.equals(top_only) and not top_only.equals(snaps)
    assert top_only.equals(replace(top_only))
    for name in changing:
        changed = getattr(snaps, name).copy()
        changed[-1] = changed[-1] + 1
        assert not snaps.equals(replace(snaps, **{name: changed})), name
        assert not snaps.equals(replace(snaps, **{name: changed.astype(np.float32)})), name
    # NaN prices compare equal to NaN.
    assert np.isnan(snaps.trade_px).any() and snaps.equals(replace(snaps))


def test_ask_ladder_is_carried_like_the_top_of_book():
    """Each snapshot holds every venue's latest ladder; a venue without an ask shows NaN / 0."""
    snaps = build_snapshots(updates_with_trades())
    assert snaps.n_levels == 3 and snaps.venues.tolist() == [2, 9]
    px, sz = snaps.ask_ladder()
    assert px is snaps.ask_depth_px and sz is snaps.ask_depth_sz
    assert px.dtype == np.float64 and sz.dtype == np.int64 and px.shape == (3, 2, 3)
    nan = np.nan
    ladder_2 = [[nan, nan, nan], [10.01, 10.01, 10.05], [10.01, 10.01, 10.05]]  # empty at 10 ns
    ladder_9 = [[10.02, 10.03, nan], [10.02, 10.03, nan], [10.03, nan, nan]]  # keeps its ladder
    np.testing.assert_array_equal(px[:, 0], ladder_2)
    np.testing.assert_array_equal(px[:, 1], ladder_9)
    np.testing.assert_array_equal(sz[:, 0], [[0, 0, 0], [50, 20, 300], [50, 20, 300]])
    np.testing.assert_array_equal(sz[:, 1], [[100, 200, 0], [100, 200, 0], [70, 0, 0]])
    np.testing.assert_array_equal(px[:, :, 0], snaps.ask_px)
    np.testing.assert_array_equal(sz[:, :, 0], snaps.ask_sz)


def test_venue_not_seen_yet_shows_an_empty_ladder():
    updates = updates_with_trades()
    later = replace(
        updates,
        **{
            name: getattr(updates, name)[[0, 2, 3]]
            for name in ("ts", "venue", "ask_px", "ask_sz", "bid_px", "bid_sz")
            + ("ask_depth_px", "ask_depth_sz")
        },
    )
    snaps = build_snapshots(later)  # venue 2 first quotes at 20 ns
    assert snaps.ask_depth_px is not None and snaps.ask_depth_sz is not None
    assert np.isnan(snaps.ask_depth_px[0, 0]).all() and (snaps.ask_depth_sz[0, 0] == 0).all()
    np.testing.assert_array_equal(snaps.ask_depth_px[1, 0], [10.01, 10.01, 10.05])


def test_ask_ladder_of_top_of_book_snapshots_is_one_level():
    """Without depth arrays, `ask_ladder()` is the top of book as level 0 of one."""
    snaps = make_snaps([[10.0, np.nan], [10.01, 10.02]], [[100, 0], [5, 7]])
    px, sz = snaps.ask_ladder()
    assert snaps.n_levels == 1 and px.shape == sz.shape == (2, 2, 1)
    np.testing.assert_array_equal(px[:, :, 0], snaps.ask_px)
    np.testing.assert_array_equal(sz[:, :, 0], snaps.ask_sz)


def test_depth_arrays_must_fit_the_top_of_book():
    snaps = build_snapshots(updates_with_trades())
    assert snaps.ask_depth_px is not None
    with pytest.raises(ValueError, match="together or not at all"):
        replace(snaps, ask_depth_sz=None)
    with pytest.raises(ValueError, match=r"\[T, N, L >= 1\]"):
        replace(snaps, ask_depth_px=snaps.ask_depth_px[1:], ask_depth_sz=snaps.ask_depth_sz[1:])
    with pytest.raises(ValueError, match=r"\[T, N, L >= 1\]"):
        replace(snaps, ask_depth_px=snaps.ask_px, ask_depth_sz=snaps.ask_sz)
    updates = updates_with_trades()
    with pytest.raises(ValueError, match=r"ask_depth_px must be \[U=4, L >= 1\]"):
        replace(updates, ask_depth_px=updates.ask_px)
    with pytest.raises(ValueError, match="ask_depth_sz must have ask_depth_px's shape"):
        replace(updates, ask_depth_sz=updates.ask_depth_sz[:, :2])
    assert isinstance(replace(updates), QuoteUpdates) and updates.n_levels == 3


def test_ladder_breaks_marks_the_level_at_fault():
    nan = np.nan
    px = np.array(
        [
            [10.0, 10.01, 10.02],  # fine
            [10.0, 10.0, nan],  # fine: equal prices, then empty
            [nan, nan, nan],  # fine: no ask at all
            [10.0, nan, 10.02],  # level 2 after an empty level 1
            [10.0, 10.02, 10.01],  # level 2 below level 1
            [nan, 10.01, 10.02],  # level 1 after an empty level 0
            [10.0, 10.01, 10.02],  # level 1 has a price but no size: empty, level 2 is not
        ]
    )
    sz = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 1], [1, 1, 1], [0, 1, 1], [1, 0, 1]])
    expected = np.zeros(px.shape, dtype=bool)
    expected[3, 2] = expected[4, 2] = expected[5, 1] = expected[6, 2] = True
    np.testing.assert_array_equal(ladder_breaks(px, sz), expected)
    assert ladder_breaks(px[:, :1], sz[:, :1]).shape == (7, 1)  # one level never breaks


def test_top_of_book_not_equal_to_ladder_level_0_is_carried_on_its_own():
    """`build_snapshots` copies the best ask from the ladder only where the updates agree with
    it; hand-built updates that do not are carried from their own `ask_px` and `ask_sz`."""
    updates = updates_with_trades()
    agreeing = build_snapshots(updates)
    other = replace(updates, ask_px=updates.ask_px + 1.0, ask_sz=updates.ask_sz + 1)
    snaps = build_snapshots(other)
    np.testing.assert_array_equal(snaps.ask_px, agreeing.ask_px + 1.0)
    seen = np.isfinite(agreeing.ask_px) | (agreeing.ask_sz > 0)
    np.testing.assert_array_equal(snaps.ask_sz[seen], agreeing.ask_sz[seen] + 1)
    np.testing.assert_array_equal(snaps.ask_depth_px, agreeing.ask_depth_px)


@pytest.mark.parametrize(
    "venue",
    [
        np.array([7, 2, 40, 2, 7, 65535], dtype=np.int32),
        np.array([3], dtype=np.int64),
        np.array([], dtype=np.int32),
        np.array([5, -1, 5], dtype=np.int32),  # not publisher_ids: the sort answers
        np.random.default_rng(0).integers(0, 60, size=5_000).astype(np.int32),
    ],
)
def test_venue_columns_are_what_np_unique_gives(venue):
    venues, column = venue_columns(venue)
    expected, inverse = np.unique(venue, return_inverse=True)
    assert venues.dtype == expected.dtype and np.array_equal(venues, expected)
    assert np.array_equal(column, inverse.reshape(-1))
