"""Passive fills with queue position and the bid-queue outflow, on hand-built books."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from sor.data.snapshots import BUY, NO_SIDE, SELL, Snapshots
from sor.execution import passive
from sor.execution.passive import (
    CONSERVATIVE,
    PROBABILISTIC,
    bid_events,
    outflow_samples,
    queue_outflow,
    simulate_resting,
    simulate_resting_at,
    trade_starts,
)


def book(bids, trades=(), asks=None) -> Snapshots:
    """One venue: `bids` is [(price, size)] per row; `trades` is [(row, price, size[, side])].

    A trade without a side is a sell-aggressor print (`SELL`, 'A': it hit the bid). Trades keep
    their given order within a row.
    """
    t = len(bids)
    bid_px = np.array([[p] for p, _ in bids], dtype=np.float64)
    bid_sz = np.array([[s] for _, s in bids], dtype=np.int64)
    ask_px = np.full((t, 1), 100.05) if asks is None else np.array(asks, dtype=float)[:, None]
    trades = sorted(((*tr, SELL)[:4] for tr in trades), key=lambda tr: tr[0])
    return Snapshots(
        ts=np.arange(t, dtype=np.int64) * 1_000_000_000,
        venues=np.array([1], dtype=np.int32),
        ask_px=ask_px,
        ask_sz=np.full((t, 1), 500, dtype=np.int64),
        bid_px=bid_px,
        bid_sz=bid_sz,
        trade_volume=np.zeros(t, dtype=np.int64),
        trade_row=np.array([r for r, _, _, _ in trades], dtype=np.int64),
        trade_col=np.zeros(len(trades), dtype=np.int32),
        trade_px=np.array([p for _, p, _, _ in trades], dtype=np.float64),
        trade_sz=np.array([s for _, _, s, _ in trades], dtype=np.int64),
        trade_side=np.array([side for _, _, _, side in trades], dtype=np.int8),
    )


@contextlib.contextmanager
def plain_python() -> Iterator[None]:
    """The compiled helpers `simulate_resting` calls run as plain Python (`.py_func`) too."""
    names = ("_start_resting", "_fill_from_prints", "_follow_bids", "_can_fill_bid",
             "_ahead_after_cancel")  # fmt: skip
    compiled = {name: getattr(passive, name) for name in names}
    try:
        for name, function in compiled.items():
            setattr(passive, name, function.py_func)
        yield
    finally:
        for name, function in compiled.items():
            setattr(passive, name, function)


def rest(
    snaps, shares, *, model=CONSERVATIVE, power=2.0, max_fill=None, posted_row=0, compiled=True
):
    """Post `shares` at the bid of `posted_row`, run to the end; returns (filled, ahead, row).

    `compiled=False` runs the plain-Python twin of the compiled function (`.py_func`, and of
    the compiled helpers it calls).
    """
    price = snaps.bid_px[posted_row].copy()
    ahead = snaps.bid_sz[posted_row].astype(float)
    fills = np.zeros(1)
    run = simulate_resting if compiled else simulate_resting.py_func
    with contextlib.nullcontext() if compiled else plain_python():
        row = run(
            snaps.bid_px, snaps.bid_sz, trade_starts(snaps), snaps.trade_col, snaps.trade_px,
            snaps.trade_sz, snaps.trade_side, posted_row + 1, len(snaps) - 1, price, ahead,
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


# ---------------------------------------------------------------------------------------------
# The aggressor side: only sell-aggressor prints (and prints without a side) fill a resting buy

FLAT = [(100.0, 300)] * 3  # 300 shares ahead at 100.00 on every row, no size change


@pytest.mark.parametrize("side", [SELL, NO_SIDE])
def test_a_sell_or_unsided_print_at_the_price_fills_after_the_queue(side):
    filled, ahead, _ = rest(book(FLAT, trades=[(1, 100.0, 500, side)]), 1000)
    assert filled == 200 and ahead == 0  # 300 ahead, then 200 to the order
    filled, ahead, _ = rest(book(FLAT, trades=[(1, 100.0, 250, side)]), 1000)
    assert filled == 0 and ahead == 50  # the print did not reach the order


def test_a_buy_print_at_the_price_fills_nothing_and_leaves_the_queue_ahead():
    filled, ahead, _ = rest(book(FLAT, trades=[(1, 100.0, 500, BUY)]), 1000)
    assert filled == 0 and ahead == 300


def test_a_print_below_the_price_clears_the_level_unless_it_is_a_buy():
    for side, expected in ((SELL, 100), (NO_SIDE, 100), (BUY, 0)):
        filled, ahead, _ = rest(book(FLAT, trades=[(1, 99.99, 150, side)]), 100)
        assert filled == expected, side
        assert ahead == (0 if side != BUY else 300), side


#: Books of the tests above, whose numbers the price rule alone gave: (bids, trades, shares, filled)
PRICE_RULE_CASES = [
    ([(100.0, 300), (100.0, 300), (100.0, 0)], [(1, 100.0, 500)], 1000, 200),
    ([(100.0, 300)] * 4, [(1, 100.0, 250), (2, 100.0, 100), (3, 100.0, 400)], 300, 300),
    ([(100.0, 300), (100.01, 200), (100.02, 200)], [(2, 100.01, 900)], 200, 0),
    ([(100.0, 300), (100.0, 300), (99.99, 100)], [(2, 99.99, 150)], 100, 100),
]


@pytest.mark.parametrize(("bids", "trades", "shares", "expected"), PRICE_RULE_CASES)
def test_unsided_prints_fill_as_the_price_rule_did(bids, trades, shares, expected):
    unsided = [(*trade, NO_SIDE) for trade in trades]
    assert rest(book(bids, trades=unsided), shares)[0] == expected
    assert rest(book(bids, trades=trades), shares)[0] == expected  # the same prints as sells
    bought = [(*trade, BUY) for trade in trades]
    assert rest(book(bids, trades=bought), shares)[0] == 0


def test_mixed_sides_fill_only_from_sells_and_unsided_prints():
    bids = [(100.0, 300)] * 5
    trades = [
        (1, 100.0, 200, SELL),  # 200 of the 300 ahead
        (1, 100.0, 400, BUY),  # ignored: the price rule alone would fill the whole order here
        (2, 100.0, 150, NO_SIDE),  # the last 100 ahead, then 50 to the order
        (3, 100.0, 500, BUY),  # ignored
        (4, 100.0, 300, SELL),  # the order's remaining 150
    ]
    snaps = book(bids, trades=trades)
    filled, ahead, row = rest(snaps, 200)
    assert (filled, ahead, row) == (200, 0, 4)
    until_row_3 = book(bids[:4], trades=trades[:4])
    assert rest(until_row_3, 200)[:2] == (50, 0)


def test_a_buy_print_does_not_explain_a_size_drop():
    # 300 ahead, 300 join behind, a print at the bid price on row 2, then the size drops by 200.
    # After a buy print (a locked market: it lifted an ask at that price) the drop is a cancel,
    # half of it from ahead in the probabilistic model, as without any print; after a sell print
    # the drop is the sell itself, which took 200 of the 300 ahead.
    bids = [(100.0, 300), (100.0, 600), (100.0, 600), (100.0, 400)]
    results = {
        side: rest(book(bids, trades=[] if side is None else [(2, 100.0, 200, side)]), 100,
                   model=PROBABILISTIC)[:2]
        for side in (None, BUY, SELL)
    }  # fmt: skip
    assert results[None] == results[BUY] == (0, pytest.approx(200.0))
    assert results[SELL] == (0, pytest.approx(100.0))


def test_outflow_counts_the_prints_the_fill_rule_counts():
    snaps = book(
        [(100.0, 500)] * 4,
        trades=[
            (1, 100.0, 200, SELL),
            (1, 100.0, 300, BUY),  # a buy at the bid price: nothing left the bid queue
            (2, 100.0, 100, NO_SIDE),
            (3, 99.99, 50, BUY),  # below the bid, but a buy: not counted either
            (3, 100.05, 70, BUY),  # at the ask
        ],
    )
    np.testing.assert_array_equal(queue_outflow(snaps)[:, 0], [0, 200, 100, 0])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("shares", [150, 10**6])
def test_fills_equal_the_outflow_the_allocator_samples(seed, shares):
    """With the bid level unchanged (no cancels), a limit order of L shares behind Q fills
    min((xi - Q)+, L), xi the queue outflow over its rows: the Cont & Kukanov fill (§3)."""
    rng = np.random.default_rng(seed)
    rows, q = 30, 400
    trades = []
    for _ in range(40):
        side = int(rng.choice([SELL, NO_SIDE, BUY]))
        # sells and unsided prints at the bid or the ask; buys anywhere, below the bid included
        prices = [100.0, 99.99, 100.05] if side == BUY else [100.0, 100.05]
        trades.append(
            (int(rng.integers(1, rows)), float(rng.choice(prices)), int(rng.integers(1, 120)), side)
        )
    snaps = book([(100.0, q)] * rows, trades=trades)
    xi = queue_outflow(snaps)[1:].sum()
    assert xi < sum(s for _, p, s, _ in trades if p <= 100.0)  # some buys at the bid left out
    filled, _, _ = rest(snaps, shares, max_fill=10**9)
    assert filled == min(max(xi - q, 0), shares)
    assert filled == rest(snaps, shares, max_fill=10**9, compiled=False)[0]


def test_compiled_and_plain_python_give_the_same_fills():
    rng = np.random.default_rng(7)
    rows = 60
    bids = [(100.0 + 0.01 * int(rng.integers(-1, 2)), int(s)) for s in rng.integers(0, 900, rows)]
    trades = [
        (int(r), float(100.0 + 0.01 * rng.integers(-2, 3)), int(s), int(side))
        for r, s, side in zip(
            rng.integers(1, rows, 80),
            rng.integers(1, 300, 80),
            rng.choice([-1, 0, 1], 80),
            strict=True,
        )
    ]
    snaps = book(bids, trades=trades)
    for model in (CONSERVATIVE, PROBABILISTIC):
        compiled = rest(snaps, 500, model=model)
        plain = rest(snaps, 500, model=model, compiled=False)
        assert compiled == pytest.approx(plain), model
    assert simulate_resting.signatures  # it ran compiled, not as plain Python


def sticky_book(rng, rows: int, venues: int) -> Snapshots:
    """Several venues whose bids mostly repeat the row before (a missing bid now and then) and
    prints at some rows: most rows move nothing, as in MBP-10 data where the asks change."""
    bid_px = np.empty((rows, venues))
    bid_sz = np.empty((rows, venues), dtype=np.int64)
    px, sz = np.full(venues, 100.0), np.full(venues, 300)
    for t in range(rows):
        move = rng.random(venues) < 0.15
        px = np.where(move, 100.0 + rng.integers(-2, 3, venues) / 100, px)
        sz = np.where(move | (rng.random(venues) < 0.1), rng.integers(0, 600, venues), sz)
        bid_px[t] = np.where(rng.random(venues) < 0.03, np.nan, px)
        bid_sz[t] = sz
    n_trades = int(rng.integers(0, rows))
    trade_row = np.sort(rng.integers(1, rows, n_trades))
    return Snapshots(
        ts=np.arange(rows, dtype=np.int64) * 1_000_000,
        venues=np.arange(1, venues + 1, dtype=np.int32),
        ask_px=np.full((rows, venues), 100.05),
        ask_sz=np.full((rows, venues), 500, dtype=np.int64),
        bid_px=bid_px,
        bid_sz=bid_sz,
        trade_volume=np.zeros(rows, dtype=np.int64),
        trade_row=trade_row.astype(np.int64),
        trade_col=rng.integers(0, venues, n_trades).astype(np.int32),
        trade_px=100.0 + rng.integers(-3, 3, n_trades) / 100,
        trade_sz=rng.integers(1, 400, n_trades).astype(np.int64),
        trade_side=rng.choice(np.array([SELL, BUY, NO_SIDE], dtype=np.int8), n_trades),
    )


@pytest.mark.parametrize("seed", range(40))
def test_reading_only_the_rows_that_move_a_bid_gives_the_same_fills(seed):
    rng = np.random.default_rng(seed)
    snaps = sticky_book(rng, int(rng.integers(2, 400)), int(rng.integers(1, 6)))
    starts = trade_starts(snaps)
    events = bid_events(snaps, starts)
    assert len(events.rows) < len(snaps) - 1 or len(snaps) < 20  # rows are skipped
    for _ in range(10):
        posted = int(rng.integers(0, len(snaps) - 1))
        last = int(rng.integers(posted + 1, len(snaps)))
        resting = rng.integers(0, 800, snaps.n_venues).astype(float)
        price = np.where(resting > 0, snaps.bid_px[posted], np.nan)
        model = int(rng.choice([CONSERVATIVE, PROBABILISTIC]))
        max_fill = float(rng.integers(1, 1500))
        runs = []
        for at in (False, True):
            ahead, fills = snaps.bid_sz[posted].astype(float), np.zeros(snaps.n_venues)
            args = (posted + 1, last, price, ahead, resting, max_fill, model, 2.0, fills)
            columns = (snaps.bid_px, snaps.bid_sz, starts, snaps.trade_col, snaps.trade_px,
                       snaps.trade_sz, snaps.trade_side)  # fmt: skip
            row = (
                simulate_resting_at(*columns, *events, *args)
                if at
                else simulate_resting(*columns, *args)
            )
            runs.append((row, ahead.tobytes(), fills.tobytes()))
        assert runs[0] == runs[1]
