"""The compiled kernel (sor.routers.static_nb) against the Python reference: identical results.

`_allocate_nb` must give `allocate_arrays`'s split and cost exactly; `evaluate_compiled` and
`evaluate_batch_compiled` must give `sor.evaluation.backtest.evaluate_reference`'s `ExecutionResult`
exactly, float sums included (model.md §3-§4).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sor.config import load_config
from sor.data.loader import load_snapshots
from sor.data.snapshots import Snapshots
from sor.evaluation.backtest import evaluate_reference, make_market
from sor.evaluation.rules import evaluation_rules
from sor.execution.market import build_market
from sor.execution.rules import OrderRules
from sor.execution.venues import venue_costs
from sor.routers.allocator import allocate_arrays
from sor.routers.static import RouterParams
from sor.routers.static_nb import (
    _allocate_nb,
    evaluate_batch_compiled,
    evaluate_compiled,
    evaluate_compiled_stats,
)
from sor.synth.generate import generate
from tests.sor.data.snapdata import make_snaps

NAN = np.nan

# ---------------------------------------------------------------------------------------------
# The allocator
# ---------------------------------------------------------------------------------------------


def both(order_size, ask, size, fee, rebate, lo, lu, theta, step, cap, include_cap):
    """(reference split or None, cost), (kernel split or None, cost)."""
    arrays = (
        np.asarray(ask, dtype=np.float64),
        np.asarray(size, dtype=np.int64),
        np.asarray(fee, dtype=np.float64),
        np.asarray(rebate, dtype=np.float64),
    )
    split, cost = allocate_arrays(
        order_size, *arrays, lo, lu, theta, step=step, cap=cap, include_cap=include_cap
    )
    expected = (None if split is None else split.tolist(), cost)
    ok, got, got_cost = _allocate_nb(
        order_size, *arrays, lo, lu, theta, step, cap == "displayed", include_cap
    )
    return expected, ((got.tolist() if ok else None), got_cost)


def assert_same(expected, got):
    assert got[0] == expected[0]
    # The kernel repeats `_Problem.cost` operation by operation: the same float.
    assert got[1] == expected[1]


prices = st.floats(-5.0, 300.0, allow_nan=False)
charges = st.floats(0.0, 10.0, allow_nan=False)
penalties = st.floats(0.0, 1e3, allow_nan=False)
sizes = st.one_of(st.sampled_from([0, 1, 37, 50, 99, 100, 101, 150, 333]), st.integers(0, 900))
PALETTES = {  # repeated values make exact and near ties common
    "ask": [10.0, 10.5, 11.0, 0.0, -0.25, 0.005, 0.015, 222.8, 222.81],
    "charge": [0.0, 0.002, 0.003, 0.5],
    "penalty": [0.0, 0.001, 0.005, 0.01, 0.1, 1.0, 100.0, 1e4],
}


@st.composite
def problems(draw):
    n = draw(st.integers(0, 6))
    step = draw(st.sampled_from([1, 7, 50, 100]))
    lots = draw(st.integers(0, 30 if step > 1 else 12))
    if step == 1:
        order_size = draw(st.integers(0, 60))
    else:
        order_size = lots * step + draw(st.sampled_from([0, 0, 0, 1, step // 2, step - 1]))
    palette = draw(st.booleans())

    def values(kind, arbitrary, count):
        if palette:
            pool = draw(st.lists(st.sampled_from(PALETTES[kind]), min_size=1, max_size=3))
            return [draw(st.sampled_from(pool)) for _ in range(count)]
        return draw(st.lists(arbitrary, min_size=count, max_size=count))

    lo, lu, theta = values("penalty", penalties, 3)
    return dict(
        order_size=order_size,
        ask=values("ask", prices, n),
        size=draw(st.lists(sizes, min_size=n, max_size=n)),
        fee=values("charge", charges, n),
        rebate=values("charge", charges, n),
        lo=lo,
        lu=lu,
        theta=theta,
        step=step,
        cap=draw(st.sampled_from(["displayed", "order"])),
        include_cap=draw(st.booleans()),
    )


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=problems())
def test_allocator_matches_allocate_arrays(case):
    assert_same(*both(**case))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("cap", ["displayed", "order"])
def test_allocator_matches_on_router_sized_books(seed, cap):
    # The router's problems: up to 5,000 shares in lots of 100 (51 remainders), 2-12 venues,
    # odd-lot sizes (many residue columns with cap "displayed"), asks measured from the mid.
    rng = np.random.default_rng(seed)
    for _ in range(300):
        n = int(rng.integers(2, 13))
        size = rng.integers(0, 21, n) * 100 + rng.choice([0, 0, 13, 37, 63, 81], n)
        order_size = int(rng.integers(1, min(5000, int(size.sum())) + 2))
        ask = rng.integers(0, 4, n) * 0.01 + 0.005 - rng.choice([0.0, 0.01], n, p=[0.9, 0.1])
        fee = rng.choice([0.003, 0.003, 0.0025, 0.0], n)
        rebate = rng.choice([0.002, 0.002, 0.0], n)
        lo, lu, theta = rng.choice([0.0, 0.001, 0.004, 0.01, 0.05, 1.0], 3)
        for include_cap in (True, False):
            args = (order_size, ask, size, fee, rebate, lo, lu, theta, 100, cap, include_cap)
            assert_same(*both(*args))


@pytest.mark.parametrize("cap", ["displayed", "order"])
@pytest.mark.parametrize("include_cap", [False, True])
def test_allocator_edge_cases(cap, include_cap):
    cases = [
        (0, [], [], 0.0),  # no venues, nothing to buy: the empty split
        (100, [], [], 0.0),  # no venues: infeasible
        (0, [1.0, 2.0], [0, 0], 0.0),  # nothing to buy
        (250, [10.0, 10.5], [100, 150], 0.0),  # off the grid / too little shown
        (300, [10.0, 10.0], [1000, 1000], 0.0),  # exact ties: (0, 300)
        (4937, [10.0, 10.5], [137, 1000], 0.0),
        (200, [11.0, 10.0], [1000, 150], 0.0),
        (100, [9.0, 10.0], [0, 100], 0.5),  # a venue showing nothing
    ]
    for order_size, ask, size, rebate in cases:
        n = len(ask)
        args = (order_size, ask, size, [0.003] * n, [rebate] * n, 0.0, 0.01, 0.0)
        assert_same(*both(*args, 100, cap, include_cap))


# ---------------------------------------------------------------------------------------------
# The router backtest
# ---------------------------------------------------------------------------------------------

# Penalties that make the router wait (small: post for the rebate, fill little), sit near the
# point where taking and posting cost the same (mid basis), or take at once (large).
PARAMS = [
    RouterParams(0.0, 0.0, 0.0),
    RouterParams(0.0, 0.004, 0.002),
    RouterParams(0.01, 0.005, 0.005),
    RouterParams(0.4, 0.6, 0.3),
    RouterParams(0.0, 300.0, 0.0),
]
RULES = [
    dict(cap=cap, child_sizing=sizing, fill_model=fill, cost_basis=basis)
    for cap in ("displayed", "order")
    for sizing in ("available", "all_or_none")
    for fill in ("strict", "naive")
    for basis in ("mid", "cash")
]
COSTS = {
    "default": {},  # fee 0.003, rebate 0.002; 5,000 shares in lots of 100
    "overrides": {  # per-venue fees and rebates, an order and a step off the usual grid
        "venues.fee": 0.0025,
        "venues.rebate": 0.001,
        "venues.overrides": {2: {"fee": 0.0}, 9: {"rebate": 0.003}, 38: {"fee": 0.0009}},
        "order.size": 3737,
        "order.step": 50,
    },
}


@pytest.fixture(scope="module")
def snaps(tmp_path_factory):
    path = tmp_path_factory.mktemp("kernel") / "mbp1.csv"
    generate(path, n_events=2500, schema="mbp-1", seed=11)
    return load_snapshots(path)[0]


def market_for(snaps, rules, costs):
    overrides = {f"order.{k}": v for k, v in rules.items()} | COSTS[costs]
    config = load_config(None, overrides)
    return make_market(snaps, evaluation_rules(config)), config.order


@pytest.mark.parametrize("costs", list(COSTS))
@pytest.mark.parametrize("rules", RULES, ids=lambda r: "-".join(r.values()))
def test_evaluate_compiled_is_evaluate(snaps, rules, costs):
    market, order = market_for(snaps, rules, costs)
    batch = evaluate_batch_compiled(market, PARAMS, order)
    for params, batched in zip(PARAMS, batch, strict=True):
        expected = evaluate_reference(market, params, order)
        got = evaluate_compiled(market, params, order)
        # Dataclass equality compares every float exactly (NaN avg_fill_px aside).
        assert got.to_dict() == expected.to_dict(), params
        assert batched.to_dict() == expected.to_dict(), params
        assert got.total_cash == expected.total_cash
        assert got.completed_cash == expected.completed_cash or (
            math.isnan(got.completed_cash) and math.isnan(expected.completed_cash)
        )


def test_the_grid_covers_waiting_and_taking(snaps):
    # The parameter grid above is meant to make the router wait as well as take at once.
    rules = dict(cap="order", child_sizing="available", fill_model="strict", cost_basis="mid")
    market, order = market_for(snaps, rules, "default")
    (wait, waited), (take, took) = (
        evaluate_compiled_stats(market, PARAMS[i], order) for i in (0, -1)
    )
    assert wait.last_fill_ts > take.last_fill_ts and wait.child_orders > take.child_orders
    assert waited.decisions > 10 * took.decisions


@pytest.mark.parametrize(
    ("cap", "impact"), [(0.05, None), (None, 1.0), (0.2, 0.5)], ids=["cap", "impact", "both"]
)
@pytest.mark.parametrize("fill_model", ["strict", "naive"])
def test_participation_cap_and_temporary_impact_in_both(tmp_path, cap, impact, fill_model):
    path = tmp_path / "mbp10.csv"
    generate(path, n_events=3000, schema="mbp-10", seed=7)
    snaps = load_snapshots(path)[0]
    rules = {"fill_model": fill_model, "max_participation": cap, "temporary_impact": impact}
    config = load_config(None, {f"order.{k}": v for k, v in rules.items()})
    market = make_market(snaps, evaluation_rules(config))
    order = evaluation_rules(config).order
    batch = evaluate_batch_compiled(market, PARAMS, order)
    for params, batched in zip(PARAMS, batch, strict=True):
        expected = evaluate_reference(market, params, order).to_dict()
        assert evaluate_compiled(market, params, order).to_dict() == expected, params
        assert batched.to_dict() == expected, params
    if cap is not None:  # the cap binds on this data
        plain = evaluate_reference(market, PARAMS[0], evaluation_rules(load_config(None)).order)
        assert evaluate_reference(market, PARAMS[0], order).filled_shares < plain.filled_shares


def test_mbp10_data_and_a_window(tmp_path):
    path = tmp_path / "mbp10.csv"
    generate(path, n_events=3000, schema="mbp-10", seed=5)
    snaps = load_snapshots(path, start="13:36:35", end="13:36:50")[0]
    for cap in ("displayed", "order"):
        market, order = market_for(snaps, dict(cap=cap), "default")
        for params in PARAMS:
            expected = evaluate_reference(market, params, order).to_dict()
            assert evaluate_compiled(market, params, order).to_dict() == expected


def test_many_venues_filling_at_once_sum_like_the_engine():
    # 20 venues fill at one snapshot: both sum the cash venue by venue in column order, each
    # venue's levels first, so the floats agree bit for bit.
    rng = np.random.default_rng(0)
    n = 20
    ask = 222.80 + rng.integers(0, 7, (3, n)) * 0.01
    size = rng.integers(100, 400, (3, n))
    snaps = make_snaps(ask, size, venues=list(range(1, n + 1)))
    overrides = {"order.cap": "displayed", "order.size": int(size[0].sum()) - 7}
    config = load_config(None, overrides | {"venues.fee": 0.0031})
    market = make_market(snaps, evaluation_rules(config))
    params = RouterParams(0.0, 0.0, 0.0)
    expected = evaluate_reference(market, params, config.order)
    got = evaluate_compiled(market, params, config.order)
    assert expected.child_orders == 1 and len(expected.shares_by_venue) >= 16
    assert got.to_dict() == expected.to_dict() and got.total_cash == expected.total_cash


def test_invalid_penalties_are_rejected(snaps):
    market, order = market_for(snaps, {}, "default")
    with pytest.raises(ValueError, match="lambda_under"):
        evaluate_compiled(market, RouterParams(0.0, math.nan, 0.0), order)


@pytest.mark.parametrize(
    ("cap", "size", "fill_model"),
    [("displayed", 10**7, "strict"), ("displayed", 10**7, "naive"), ("order", 20_000, "strict")],
)
def test_large_parent_orders(snaps, cap, size, fill_model):
    # Children larger than the first workspace (100 lots) make the kernel grow it; with cap
    # "displayed" a huge order keeps the router taking what is shown until the window ends.
    rules = dict(cap=cap, fill_model=fill_model, size=size)
    market, order = market_for(snaps, rules, "default")
    for params in (PARAMS[1], PARAMS[2]):
        expected = evaluate_reference(market, params, order)
        assert evaluate_compiled(market, params, order).to_dict() == expected.to_dict()


def test_a_shown_size_without_a_price_shows_nothing_in_both():
    # Data the loader never builds: shares shown at a venue with no ask price. A level without a
    # price holds nothing to take (docs/model.md §1), in the reference and in the kernel alike.
    snaps = make_snaps([[10.0, NAN], [10.0, 10.1]], [[100, 200], [100, 200]])
    config = load_config(None, {"order.cap": "displayed", "order.size": 1000})
    market = make_market(snaps, evaluation_rules(config))
    expected = evaluate_reference(market, PARAMS[0], config.order)
    assert evaluate_compiled(market, PARAMS[0], config.order).to_dict() == expected.to_dict()
    assert expected.shares_by_venue.get(2, 0) <= 200  # venue 2 fills only once it shows a price


def test_a_price_forgotten_in_an_earlier_stretch_of_rows_stays_forgotten():
    # The ask rises above the taken 10.00 at row 10 and returns at row 65: the level at 10.00
    # is a new queue there, in the reference (which scans rows in stretches) and the kernel.
    rows = 80
    px = np.full((rows, 1, 2), np.nan)
    sz = np.zeros((rows, 1, 2), dtype=np.int64)
    px[:, 0], sz[:, 0] = [10.00, 10.01], [100, 100]
    px[10:65, 0], sz[10:65, 0] = [10.01, np.nan], [100, 0]
    snaps = Snapshots(
        ts=np.arange(rows, dtype=np.int64) * 1_000_000,
        venues=np.array([1], dtype=np.int32),
        ask_px=px[:, :, 0].copy(),
        ask_sz=sz[:, :, 0].copy(),
        bid_px=np.full((rows, 1), 9.99),
        bid_sz=np.full((rows, 1), 100, dtype=np.int64),
        trade_volume=np.zeros(rows, dtype=np.int64),
        ask_depth_px=px,
        ask_depth_sz=sz,
    )
    market = build_market(snaps, venue_costs(snaps.venues))
    order = OrderRules(size=300, step=100, fill_model="strict")
    params = RouterParams(0.4, 0.6, 0.3)
    expected = evaluate_reference(market, params, order)
    assert expected.filled_shares == 300
    assert evaluate_compiled(market, params, order).to_dict() == expected.to_dict()


def test_more_prices_than_the_kernels_memory_holds_give_the_references_answer():
    # The ask falls a cent every snapshot: every price taken stays remembered (the ask never
    # rises above it), more of them than `MEMORY_SLOTS`; the reference's answer comes back.
    from sor.routers.static_nb import MEMORY_SLOTS

    rows = MEMORY_SLOTS + 20
    snaps = make_snaps([[100.0 - 0.01 * t] for t in range(rows)], [[100]] * rows)
    market = build_market(snaps, venue_costs(snaps.venues))
    order = OrderRules(size=100 * rows, step=100, cap="displayed")
    params = RouterParams(0.4, 0.6, 0.3)
    expected = evaluate_reference(market, params, order)
    assert expected.filled_shares == 100 * rows
    assert evaluate_compiled(market, params, order).to_dict() == expected.to_dict()
    batch = evaluate_batch_compiled(market, [params], order)
    assert batch[0].to_dict() == expected.to_dict()
