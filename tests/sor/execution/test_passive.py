"""Passive fills with queue position and the bid-queue outflow, on hand-built books."""

from __future__ import annotations

import numpy as np
import pytest

from sor.data.snapshots import Snapshots
from sor.execution.passive import (
    CONSERVATIVE,
    PROBABILISTIC,
    outflow_samples,
    queue_outflow,
    simulate_resting,
    trade_starts,
)


def book(bids, trades=(), asks=None) -> Snapshots:
    """One venue: `bids` is [(price, size)] per row; `trades` is [(row, price, size)]."""
    t = len(bids)
    bid_px = np.array([[p] for p, _ in bids], dtype=np.float64)
    bid_sz = np.array([[s] for _, s in bids], dtype=np.int64)
    ask_px = np.full((t, 1), 100.05) if asks is None else np.array(asks, dtype=float)[:, None]
    trades = sorted(trades)
    return Snapshots(
        ts=np.arange(t, dtype=np.int64) * 1_000_000_000,
        venues=np.array([1], dtype=np.int32),
        ask_px=ask_px,
        ask_sz=np.full((t, 1), 500, dtype=np.int64),
        bid_px=bid_px,
        bid_sz=bid_sz,
        trade_volume=np.zeros(t, dtype=np.int64),
        trade_row=np.array([r for r, _, _ in trades], dtype=np.int64),
        trade_col=np.zeros(len(trades), dtype=np.int32),
        trade_px=np.array([p for _, p, _ in trades], dtype=np.float64),
        trade_sz=np.array([s for _, _, s in trades], dtype=np.int64),
        trade_side=np.full(len(trades), -1, dtype=np.int8),
    )


def rest(snaps, shares, *, model=CONSERVATIVE, power=2.0, max_fill=None, posted_row=0):
    """Post `shares` at the bid of `posted_row`, run to the end; returns (filled, ahead, row)."""
    price = snaps.bid_px[posted_row].copy()
    ahead = snaps.bid_sz[posted_row].astype(float)
    fills = np.zeros(1)
    row = simulate_resting(
        snaps.bid_px, snaps.bid_sz, trade_starts(snaps), snaps.trade_col, snaps.trade_px,
        snaps.trade_sz, posted_row + 1, len(snaps) - 1, price, ahead,
        np.array([float(shares)]), float(max_fill or shares), model, power, fills,
    )  # fmt: skip
    return fills[0], ahead[0], row


def test_300_ahead_and_500_traded_at_the_price_fills_200():
    snaps = book([(100.0, 300), (100.0, 300), (100.0, 0)], trades=[(1, 100.0, 500)])
    filled, ahead, _ = rest(snaps, 1000)
    assert filled == 200 and ahead == 0


def test_trades_split_over_rows_fill_in_order():
    snaps = book([(100.0, 300)] * 4, trades=[(1, 100.0, 250), (2, 100.0, 100), (3, 100.0, 400)])
    filled, _, _ = rest(snaps, 300)
    assert filled == 50 + 250  # 250 ahead, then 50 of the next 100, then the order's remaining 250


def test_price_moving_away_leaves_the_order_unfilled():
    # the bid rises above the order and trades happen at the new, better bid only
    snaps = book([(100.0, 300), (100.01, 200), (100.02, 200)], trades=[(2, 100.01, 900)])
    filled, _, _ = rest(snaps, 200)
    assert filled == 0


def test_trade_below_the_price_means_the_level_cleared():
    snaps = book([(100.0, 300), (100.0, 300), (99.99, 100)], trades=[(2, 99.99, 150)])
    filled, _, _ = rest(snaps, 100)
    assert filled == 100


def test_conservative_cancels_do_not_advance_unless_the_level_shrinks_below():
    snaps = book([(100.0, 300), (100.0, 250), (100.0, 120), (100.0, 500)])
    _, ahead, _ = rest(snaps, 100)
    assert ahead == 120  # 300 ahead, then at most the displayed 120
    snaps = book([(100.0, 300), (100.0, 500), (100.0, 350)])
    _, ahead, _ = rest(snaps, 100)
    assert ahead == 300  # adds go behind; cancels come from behind first


def test_probabilistic_cancels_advance_the_order():
    snaps = book([(100.0, 300), (100.0, 600), (100.0, 400)])  # 300 ahead, 300 behind, 200 cancel
    _, conservative, _ = rest(snaps, 100)
    _, probabilistic, _ = rest(snaps, 100, model=PROBABILISTIC, power=2.0)
    assert conservative == 300
    assert probabilistic == pytest.approx(200.0)  # equal front and back: half from ahead
    _, steep, _ = rest(snaps, 100, model=PROBABILISTIC, power=1.0)
    assert steep == pytest.approx(200.0)


def test_trade_then_size_drop_is_not_counted_twice_as_a_cancel():
    # the trade is printed at row 1, the level shows the drop at row 2: no cancellation
    snaps = book([(100.0, 500), (100.0, 500), (100.0, 300)], trades=[(1, 100.0, 200)])
    _, ahead, _ = rest(snaps, 100, model=PROBABILISTIC)
    assert ahead == pytest.approx(300.0)


def test_stops_when_the_parent_is_complete():
    snaps = book([(100.0, 0)] * 4, trades=[(1, 100.0, 50), (2, 100.0, 50), (3, 100.0, 50)])
    filled, _, row = rest(snaps, 500, max_fill=80)
    assert filled == 80 and row == 2


def test_outflow_counts_trades_cancels_and_cleared_levels():
    snaps = book(
        [(100.0, 500), (100.0, 500), (100.0, 300), (100.0, 200), (99.99, 700), (100.0, 50)],
        trades=[(1, 100.0, 200)],
    )
    out = queue_outflow(snaps)[:, 0]
    # row 1: 200 traded; row 2: the drop that trade explains; row 3: 100 cancelled;
    # row 4: the level of 200 cleared; row 5: a new level in front, nothing seen leaving
    np.testing.assert_array_equal(out, [0, 200, 0, 100, 200, 0])


def test_outflow_samples_use_only_the_past():
    rng = np.random.default_rng(0)
    bids = [(100.0, int(s)) for s in rng.integers(100, 900, 200)]
    snaps = book(bids, trades=[(r, 100.0, 50) for r in range(1, 200, 7)])
    out = queue_outflow(snaps)
    cumulative = np.vstack([np.zeros((1, 1)), np.cumsum(out, axis=0)])
    decision = int(snaps.ts[150])
    base = outflow_samples(snaps.ts, cumulative, decision, 10 * 10**9, 100 * 10**9, 50)
    assert len(base) > 1
    # change everything at and after the decision: the samples do not move
    later = book(bids[:150] + [(100.0, 5)] * 50, trades=[(r, 100.0, 50) for r in range(1, 150, 7)])
    out2 = queue_outflow(later)
    cumulative2 = np.vstack([np.zeros((1, 1)), np.cumsum(out2, axis=0)])
    again = outflow_samples(later.ts, cumulative2, decision, 10 * 10**9, 100 * 10**9, 50)
    np.testing.assert_array_equal(base, again)
    # no window fits before the first snapshot plus one horizon
    early = outflow_samples(snaps.ts, cumulative, int(snaps.ts[5]), 10 * 10**9, 10**11, 50)
    assert early.shape == (0, 1)
