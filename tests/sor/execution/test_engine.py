"""The fill model and the baselines (model.md §4-§5) on snapshots where the answer is obvious."""

from __future__ import annotations

import numpy as np
import pytest

from sor.evaluation.baselines import BestAsk, Twap, Vwap, savings_bps, twap_due, vwap_due
from sor.execution.cleanup import after_horizon, estimate_impact
from sor.execution.depth import TakenMemory, sweep_ladder
from sor.execution.engine import execute
from sor.execution.venues import venue_costs
from tests.sor.data.snapdata import make_snaps

NAN = np.nan


def costs_for(snaps, fee=0.0, rebate=0.0, overrides=None):
    return venue_costs(snaps.venues, fee=fee, rebate=rebate, overrides=overrides)


def test_best_ask_takes_cheapest_venue_and_rolls_over():
    snaps = make_snaps([[10.0, 10.1], [10.2, 10.1]], [[300, 500], [1000, 1000]])
    result = execute(snaps, costs_for(snaps), BestAsk(snaps), 1000, fill_model="naive")
    # t0: all 1000 to venue 1 (10.0), 300 fill; t1: 700 to venue 2 (10.1)
    assert result.filled_shares == 1000 and result.unfilled_shares == 0
    assert result.total_cash == pytest.approx(300 * 10.0 + 700 * 10.1)
    assert result.shares_by_venue == {1: 300, 2: 700}
    assert result.avg_fill_px * result.filled_shares == pytest.approx(result.total_cash)


def test_best_ask_ties_prefer_larger_size_then_lower_id():
    snaps = make_snaps([[10.0, 10.0, 10.0]], [[100, 400, 400]], venues=[7, 5, 9])
    result = execute(snaps, costs_for(snaps), BestAsk(snaps), 200)
    assert result.shares_by_venue == {5: 200}


def test_fees_are_paid_per_venue():
    snaps = make_snaps([[10.0, 10.0]], [[100, 100]], venues=[2, 9])
    costs = costs_for(snaps, fee=0.003, overrides={9: {"fee": 0.01}})
    result = execute(snaps, costs, Twap(snaps, 200, 60), 200)
    assert result.total_cash == pytest.approx(100 * 10.003 + 100 * 10.01)


def test_strict_model_does_not_take_the_same_shares_twice():
    ask = [[10.0], [10.0], [10.0], [10.1]]
    size = [[100], [100], [150], [200]]
    snaps = make_snaps(ask, size)
    naive = execute(snaps, costs_for(snaps), BestAsk(snaps), 300, fill_model="naive")
    strict = execute(snaps, costs_for(snaps), BestAsk(snaps), 300, fill_model="strict")
    assert naive.total_cash == pytest.approx(300 * 10.0)
    # strict: 100 at t0; the level still shows 100 at t1, all of it already taken; at t2 it
    # shows 150, so 50 are new; the price moves at t3, and 150 more are taken at 10.1.
    assert strict.filled_shares == 300
    assert strict.total_cash == pytest.approx(150 * 10.0 + 150 * 10.1)


def test_a_level_that_flickers_away_and_back_hands_out_nothing_new():
    # The ask at 10.0 disappears for a snapshot and comes back with the same 100 shares: the
    # same queue, already taken. Only a new price (10.1) has shares left.
    snaps = make_snaps([[10.0], [NAN], [10.0], [10.1]], [[100], [0], [100], [100]])
    strict = execute(snaps, costs_for(snaps), BestAsk(snaps), 200, fill_model="strict")
    assert strict.total_cash == pytest.approx(100 * 10.0 + 100 * 10.1)
    naive = execute(snaps, costs_for(snaps), BestAsk(snaps), 200, fill_model="naive")
    assert naive.total_cash == pytest.approx(200 * 10.0)


def test_memory_of_a_price_is_forgotten_when_the_ask_rises_above_it_not_when_it_falls():
    best_ask = np.array([[10.0], [9.9], [10.0], [10.1], [10.0]])
    memory = TakenMemory(1)
    memory.take(0, 10.0, 300)
    memory.forget_through(best_ask, 2)  # fell to 9.9 and came back: kept
    assert memory.taken_at(0, 10.0) == 300
    memory.forget_through(best_ask, 4)  # rose to 10.1 at row 3: that queue is gone
    assert memory.taken_at(0, 10.0) == 0


def test_unfilled_shares_without_data_after_the_horizon_are_priced_by_the_impact_model():
    snaps = make_snaps([[10.0], [10.5]], [[100], [100]], trade_volume=[50, 50])
    costs = costs_for(snaps, fee=0.01)
    result = execute(snaps, costs, BestAsk(snaps), 500, fill_model="strict")
    assert result.filled_shares == 200 and result.unfilled_shares == 300
    assert result.cleanup_impact_shares == 300 and result.cleanup_taken_shares == 0
    impact = estimate_impact(snaps)
    assert impact.fraction(300) > 0
    expected = 300 * (10.5 + 0.01) * (1 + impact.fraction(300))
    assert result.cleanup_cash == pytest.approx(expected)
    assert result.completed_cash == pytest.approx(result.total_cash + expected)


def test_the_clean_up_takes_the_depth_after_the_horizon_first():
    # Horizon: rows 0-1; the data goes on with 200 shares at 10.2, then 10.4.
    whole = make_snaps(
        [[10.0], [10.0], [10.2], [10.4]], [[100], [100], [200], [500]], trade_volume=[10] * 4
    )
    horizon = make_snaps([[10.0], [10.0]], [[100], [100]], trade_volume=[10] * 2)
    costs = costs_for(whole)
    after = after_horizon(whole, costs, 2, estimate_impact(whole))
    result = execute(horizon, costs, BestAsk(horizon), 500, fill_model="strict", after=after)
    # The horizon gives 100 (the level at 10.0 stays taken); the clean-up 200 at 10.2, 200 at 10.4.
    assert result.filled_shares == 100 and result.unfilled_shares == 400
    assert result.cleanup_taken_shares == 400 and result.cleanup_impact_shares == 0
    assert result.completed_cash == pytest.approx(100 * 10.0 + 200 * 10.2 + 200 * 10.4)


def test_leaving_shares_to_the_clean_up_is_never_cheaper_than_taking_what_shows():
    whole = make_snaps([[10.0], [10.0], [10.0]], [[500], [500], [500]], trade_volume=[100] * 3)
    costs = costs_for(whole)
    impact = estimate_impact(whole)
    horizon = make_snaps([[10.0], [10.0]], [[500], [500]], trade_volume=[100] * 2)
    after = after_horizon(whole, costs, 2, impact)
    took = execute(horizon, costs, BestAsk(horizon), 1000, after=after)
    waited = execute(horizon, costs, Waiter(), 1000, after=after)
    assert waited.unfilled_shares == 1000 and took.unfilled_shares == 500
    assert waited.completed_cash >= took.completed_cash


class Waiter:
    """A strategy that never sends anything: everything goes to the clean-up."""

    name = "waiter"

    def next_action(self, t, filled):
        return 10**9

    def orders(self, t, remaining, prices, left):
        raise AssertionError("never asked")


def test_sweep_ladder_orders_by_price_size_and_id():
    sent = sweep_ladder(
        350,
        np.array([[10.1], [10.0], [10.0], [NAN]]),
        np.array([[500], [100], [200], [0]]),
        np.array([1, 2, 3, 4]),
    )
    assert sent.tolist() == [50, 100, 200, 0]


def test_sweep_ladder_walks_levels_across_venues_cheapest_first():
    prices = np.array([[10.0, 10.3], [10.1, 10.2]])
    left = np.array([[100, 500], [100, 500]])
    sent = sweep_ladder(450, prices, left, np.array([1, 2]))
    # 100 at 10.0 (venue 1), 100 at 10.1 (venue 2), 250 at 10.2 (venue 2)
    assert sent.tolist() == [100, 350]


def test_twap_schedule_buckets():
    ts = (np.array([0, 30, 60, 119, 120, 150]) * 1e9).astype(np.int64)
    # window 150 s -> ceil(150/60) = 3 buckets: due 1/3, 2/3, all
    assert twap_due(ts, 900, 60).tolist() == [300, 300, 600, 600, 900, 900]
    assert twap_due(ts[:1], 900, 60).tolist() == [900]
    with pytest.raises(ValueError, match="twap_bucket_s > 0"):
        twap_due(ts, 900, 0)


def test_twap_buys_due_shares_in_each_bucket():
    snaps = make_snaps([[10.0], [10.2], [10.4]], [[1000], [1000], [1000]], ts_s=[0, 60, 150])
    result = execute(snaps, costs_for(snaps), Twap(snaps, 900, 60), 900, fill_model="naive")
    assert result.total_cash == pytest.approx(300 * 10.0 + 300 * 10.2 + 300 * 10.4)
    assert result.child_orders == 3


def test_vwap_follows_traded_volume_and_falls_back_to_displayed_size():
    snaps = make_snaps(
        [[10.0], [10.2], [10.4]], [[1000], [1000], [2000]], trade_volume=[100, 0, 300]
    )
    assert vwap_due(snaps, 800).tolist() == [200, 200, 800]
    result = execute(snaps, costs_for(snaps), Vwap(snaps, 800), 800, fill_model="naive")
    assert result.total_cash == pytest.approx(200 * 10.0 + 600 * 10.4)
    no_trades = make_snaps([[10.0], [10.2]], [[100], [300]])
    assert vwap_due(no_trades, 800).tolist() == [200, 800]


def test_schedule_catches_up_when_liquidity_was_short():
    snaps = make_snaps([[10.0], [10.1], [10.2]], [[100], [1000], [1000]], ts_s=[0, 1, 2])
    result = execute(snaps, costs_for(snaps), Twap(snaps, 500, 60), 500, fill_model="naive")
    assert result.total_cash == pytest.approx(100 * 10.0 + 400 * 10.1)


def test_savings_sign():
    assert savings_bps(100.0, 99.0) == pytest.approx(100.0)
    assert savings_bps(100.0, 101.0) < 0


def test_on_fill_reports_each_fill():
    snaps = make_snaps([[10.0, 10.1], [10.2, 10.1]], [[300, 500], [1000, 1000]])
    fills = []
    result = execute(
        snaps,
        costs_for(snaps),
        BestAsk(snaps),
        1000,
        fill_model="naive",
        on_fill=lambda t, fill, cash: fills.append((t, fill.tolist())),
    )
    assert fills == [(0, [300, 0]), (1, [0, 700])]
    assert sum(sum(f) for _, f in fills) == result.filled_shares


def test_impact_model_estimates_sigma_and_volume_from_the_data():
    # Asks 10.0 -> 10.1 -> 10.0 over 4 s; 300 shares traded.
    snaps = make_snaps(
        [[10.0], [10.1], [10.0]], [[100], [100], [100]], ts_s=[0, 2, 4], trade_volume=[0, 100, 200]
    )
    impact = estimate_impact(snaps)
    from sor.routers.static import reference_mid

    moves = np.diff(np.log(reference_mid(snaps)))
    assert impact.sigma == pytest.approx(np.sqrt((moves**2).sum() / 4.0))
    assert impact.volume_per_s == pytest.approx(300 / 4.0) and impact.volume_source == "trades"
    assert impact.fraction(75) == pytest.approx(impact.sigma * 1.0)  # Y = 1, sqrt(75 / 75)
    # No trades: shares leaving the best ask at an unchanged price (150 -> 100: 50 in 4 s).
    quiet = make_snaps([[10.0], [10.0], [10.0]], [[150], [100], [100]], ts_s=[0, 2, 4])
    assert estimate_impact(quiet).volume_source == "ask_depletion"
    assert estimate_impact(quiet).volume_per_s == pytest.approx(50 / 4.0)
    # Neither: the visible depth at the end as one minute's volume.
    still = make_snaps([[10.0], [10.0]], [[600], [600]])
    assert estimate_impact(still).volume_source == "visible_depth_per_minute"
    assert estimate_impact(still).volume_per_s == pytest.approx(600 / 60.0)


def test_the_clean_up_is_held_to_the_strategys_cap_and_temporary_impact():
    # A flat book: taking 1,000 at once in the horizon, or waiting and letting the clean-up take
    # them just after it, must cost the same with a temporary impact; and a capped order cannot
    # escape its cap by leaving shares to the clean-up.
    whole = make_snaps([[10.0]] * 4, [[1000]] * 4, trade_volume=[1000] * 4)
    horizon = make_snaps([[10.0]], [[1000]], trade_volume=[1000])
    costs = costs_for(whole, fee=0.003)
    after = after_horizon(whole, costs, 2, estimate_impact(whole))
    took = execute(horizon, costs, BestAsk(horizon), 1000, after=after, temporary_impact=1.0)
    waited = execute(horizon, costs, Waiter(), 1000, after=after, temporary_impact=1.0)
    assert waited.completed_cash >= took.completed_cash
    capped = execute(horizon, costs, BestAsk(horizon), 1000, after=after, max_participation=0.2)
    assert capped.filled_shares == 200
    # After the horizon 1,000 more trade at each of rows 2 and 3: the cap allows 400, then 600.
    assert capped.cleanup_taken_shares == 400 and capped.cleanup_impact_shares == 400
