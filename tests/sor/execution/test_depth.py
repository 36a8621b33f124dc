"""Market orders walk the visible depth of every venue, cheapest first (docs/model.md §4)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sor.data.snapshots import Snapshots
from sor.evaluation.baselines import BestAsk, Twap, Vwap
from sor.execution.depth_nb import empty_memory, forget_row, forget_rows, take
from sor.execution.engine import execute
from sor.execution.venues import venue_costs

NAN = np.nan

# Two venues, three visible levels each; level 0 is far too thin for the order.
LADDER_PX = [[10.00, 10.02, 10.05], [10.01, 10.03, 10.04]]
LADDER_SZ = [[100, 500, 1000], [50, 400, 1000]]
FEES = {1: 0.003, 2: 0.001}


def book(rows: int = 1, trade_volume: int = 1000) -> Snapshots:
    px = np.array([LADDER_PX] * rows, dtype=np.float64)
    sz = np.array([LADDER_SZ] * rows, dtype=np.int64)
    return Snapshots(
        ts=np.arange(rows, dtype=np.int64) * 1_000_000_000,
        venues=np.array([1, 2], dtype=np.int32),
        ask_px=px[:, :, 0].copy(),
        ask_sz=sz[:, :, 0].copy(),
        bid_px=np.full((rows, 2), 9.99),
        bid_sz=np.full((rows, 2), 100, dtype=np.int64),
        trade_volume=np.full(rows, trade_volume, dtype=np.int64),
        ask_depth_px=px,
        ask_depth_sz=sz,
    )


def costs(snaps: Snapshots):
    return venue_costs(
        snaps.venues,
        fee=0.0,
        rebate=0.0,
        overrides={pid: {"fee": fee} for pid, fee in FEES.items()},
    )


def walk(shares: int) -> float:
    """The cheapest-first walk of the visible asks, by hand: (price, venue) in price order."""
    levels = sorted(
        (px, pid, sz)
        for pid, (pxs, szs) in zip((1, 2), zip(LADDER_PX, LADDER_SZ, strict=True), strict=True)
        for px, sz in zip(pxs, szs, strict=True)
    )
    cash, need = 0.0, shares
    for px, pid, sz in levels:
        q = min(need, sz)
        cash += q * (px + FEES[pid])
        need -= q
    assert need == 0
    return cash


@pytest.mark.parametrize("strategy", ["twap", "vwap"])
@pytest.mark.parametrize("fill_model", ["strict", "naive"])
def test_twap_and_vwap_pay_exactly_the_cheapest_first_walk(strategy, fill_model):
    snaps = book()
    make = {"twap": lambda: Twap(snaps, 1000, 60), "vwap": lambda: Vwap(snaps, 1000)}
    result = execute(snaps, costs(snaps), make[strategy](), 1000, fill_model=fill_model)
    assert result.filled_shares == 1000 and result.unfilled_shares == 0
    # 100 @ 10.00 (A), 50 @ 10.01 (B), 500 @ 10.02 (A), 350 @ 10.03 (B)
    assert result.total_cash == pytest.approx(walk(1000), rel=1e-15)
    assert result.shares_by_venue == {1: 600, 2: 400}


def test_best_ask_walks_the_depth_of_its_venue():
    snaps = book()
    result = execute(snaps, costs(snaps), BestAsk(snaps), 1000)
    # All to venue 1 (lowest ask): 100 @ 10.00, 500 @ 10.02, 400 @ 10.05, each plus its fee.
    assert result.shares_by_venue == {1: 1000}
    assert result.total_cash == pytest.approx(100 * 10.003 + 500 * 10.023 + 400 * 10.053)


def test_strict_memory_does_not_retake_depth_on_the_next_snapshot():
    snaps = book(rows=2)
    strict = execute(snaps, costs(snaps), BestAsk(snaps), 3100, fill_model="strict")
    # Row 0 takes all 1,600 shares of venue 1; row 1 shows the same queues: only venue 2's
    # 1,450 are left, then the clean-up (no data after) prices the last 50 by the impact model.
    assert strict.filled_shares == 3050 and strict.cleanup_impact_shares == 50
    naive = execute(snaps, costs(snaps), BestAsk(snaps), 3100, fill_model="naive")
    assert naive.filled_shares == 3100


def test_participation_cap_limits_every_snapshot_and_keeps_the_cheapest_shares():
    snaps = book(rows=3, trade_volume=400)  # 400 shares trade at each snapshot
    result = execute(
        snaps, costs(snaps), Twap(snaps, 1000, 60), 1000, fill_model="naive", max_participation=0.5
    )
    # Allowed by row: floor(0.5 * 400) = 200, then 400, then 600 in all; each time the
    # cheapest of what TWAP sent: 100 @ 10.00 (A) and 50 @ 10.01 (B) and 50 @ 10.02 (A) ...
    assert result.filled_shares == 600 and result.unfilled_shares == 400
    first = 100 * (10.00 + 0.003) + 50 * (10.01 + 0.001) + 50 * (10.02 + 0.003)
    assert result.child_orders == 3
    assert result.total_cash == pytest.approx(3 * first)
    assert result.participation == pytest.approx(600 / 1200)


def test_participation_cap_without_traded_volume_fills_nothing():
    snaps = book(rows=2, trade_volume=0)
    result = execute(snaps, costs(snaps), BestAsk(snaps), 500, max_participation=0.2)
    assert result.filled_shares == 0 and result.cleanup_impact_shares == 500


def test_temporary_impact_raises_the_cash_of_each_snapshots_fills():
    from sor.execution.cleanup import estimate_impact
    from sor.execution.engine import temporary_impact_charge

    snaps = book(rows=2, trade_volume=1000)
    snaps = Snapshots(**{**snaps.__dict__, "bid_px": np.array([[9.99, 9.99], [10.0, 10.0]])})
    plain = execute(snaps, costs(snaps), Twap(snaps, 1000, 60), 1000, fill_model="naive")
    charged = execute(
        snaps, costs(snaps), Twap(snaps, 1000, 60), 1000, fill_model="naive", temporary_impact=1.0
    )
    charge = temporary_impact_charge(estimate_impact(snaps), 1.0)
    assert charge > 0
    assert charged.total_cash == pytest.approx(plain.total_cash * (1 + charge * np.sqrt(1000)))


@settings(max_examples=300, deadline=None)
@given(
    taken=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 6), st.integers(1, 500)), max_size=12
    ),
    asks=st.lists(
        st.lists(st.one_of(st.integers(-1, 8), st.just(99)), min_size=3, max_size=3),
        min_size=1,
        max_size=20,
    ),
    span=st.tuples(st.integers(0, 19), st.integers(-1, 19)),
)
def test_forget_rows_is_forget_row_row_by_row(taken, asks, span):
    """The compiled range of rows drops the same prices, leaving the rest in the same order."""
    # ticks of 0.01 from 10.00; -1 is no ask (NaN), 99 an infinite one
    book = np.array(
        [[np.nan if a == -1 else np.inf if a == 99 else 10 + a / 100 for a in row] for row in asks]
    )
    first, last = span[0] % len(book), min(span[1], len(book) - 1)
    one, many = empty_memory(3), empty_memory(3)
    for j, tick, shares in taken:
        for memory in (one, many):
            take(memory, j, 10 + tick / 100, shares)
    for t in range(first, last + 1):
        forget_row(book, t, one)
    forget_rows(book, first, last, many)
    assert np.array_equal(one.n, many.n)
    for j in range(3):
        assert np.array_equal(one.px[j, : one.n[j]], many.px[j, : many.n[j]])
        assert np.array_equal(one.sz[j, : one.n[j]], many.sz[j, : many.n[j]])
