"""The compiled baselines (`sor.evaluation.baselines_nb`) equal the Python engine field by field.

Best-Ask, TWAP and VWAP through `sor.execution.engine.execute` are the reference; the kernel
must give the same `ExecutionResult`, floats exact, on generated MBP-1 and MBP-10 markets over
parent orders with and without data after their horizon, order sizes from one share to far more
than the data holds (the clean-up's impact part), both fill models, with and without a
participation cap and a temporary impact, and TWAP buckets of several sizes; and on slices of
the real TAQ day when the shared data is present.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest

from sor.config import load_config
from sor.data.loader import load_snapshots
from sor.evaluation import baselines_nb
from sor.evaluation.backtest import make_market, run_baselines, run_baselines_reference
from sor.evaluation.baselines import BASELINES, BestAsk, Twap
from sor.evaluation.baselines_nb import compiled_baseline, execute_baseline
from sor.evaluation.rules import evaluation_rules
from sor.evaluation.schedule import make_schedule_market, slice_rows
from sor.execution.cleanup import after_horizon, estimate_impact
from sor.execution.depth_nb import MEMORY_SLOTS
from sor.execution.engine import ExecutionResult
from sor.execution.market import Market, build_market, run_strategy
from sor.execution.rules import OrderRules
from sor.execution.venues import venue_costs
from sor.synth.generate import DEFAULT_VENUES, VenueProfile, generate
from tests.csvdata import SHARED_DATA
from tests.sor.data.snapdata import make_snaps

REAL_DAY = SHARED_DATA / "real" / "taq_2018-01-02_mbp1_trades.csv.gz"

#: Eight venues: the five default profiles and three more, thin and wide.
EIGHT_VENUES = (
    *DEFAULT_VENUES,
    VenueProfile(11, spread_ticks=2.0, depth_shares=120, rate_hz=15, lag_ms=5.0),
    VenueProfile(21, spread_ticks=1.3, depth_shares=90, rate_hz=20, empty_ask_per_min=0.5),
    VenueProfile(57, spread_ticks=1.0, depth_shares=150, rate_hz=10, lag_ms=12.0),
)


def assert_same(got: ExecutionResult, want: ExecutionResult, context: object = None) -> None:
    """Equal field by field with `==`, floats exact (NaN avg_fill_px on both sides counts as
    equal: nothing filled)."""
    if math.isnan(got.avg_fill_px) and math.isnan(want.avg_fill_px):
        got = dataclasses.replace(got, avg_fill_px=0.0)
        want = dataclasses.replace(want, avg_fill_px=0.0)
    assert got == want, (context, got, want)


@pytest.fixture(
    scope="module",
    params=[("mbp-1", 3, 2), ("mbp-1", 11, 8), ("mbp-10", 5, 3), ("mbp-10", 8, 5)],
    ids=lambda p: f"{p[0]}-seed{p[1]}-{p[2]}venues",
)
def snaps(request, tmp_path_factory):
    schema, seed, n_venues = request.param
    path = tmp_path_factory.mktemp("baselines") / "day.csv"
    generate(path, n_events=1_500, schema=schema, seed=seed, venues=EIGHT_VENUES[:n_venues])
    return load_snapshots(path)[0]


def parent_markets(snaps) -> list[Market]:
    """A parent order in the first third with the data after it for its clean-up, and one over
    the last rows with nothing after (the impact model prices what is left)."""
    costs = venue_costs(snaps.venues)
    impact = estimate_impact(snaps)
    last = len(snaps) // 3
    early = Market(slice_rows(snaps, 0, last), costs, after_horizon(snaps, costs, last + 1, impact))
    late = build_market(slice_rows(snaps, len(snaps) - 200, len(snaps) - 1), costs)
    return [early, late]


def both(market: Market, baseline, order: OrderRules, bucket_s: float):
    """(compiled, reference) results of one baseline over `market`."""
    strategy = baseline.for_order(market.snaps, order.size, bucket_s)
    return execute_baseline(market, strategy, order), run_strategy(market, strategy, order)


@pytest.mark.parametrize("fill_model", ["strict", "naive"])
@pytest.mark.parametrize("cap", [None, 0.05, 0.5])
@pytest.mark.parametrize("impact", [None, 1.0])
def test_compiled_baselines_equal_the_engine(snaps, fill_model, cap, impact):
    seen = Counter()
    for i, market in enumerate(parent_markets(snaps)):
        for size in (1, 700, 5_000, 2_000_000):
            order = OrderRules(
                size=size, fill_model=fill_model, max_participation=cap, temporary_impact=impact
            )
            for baseline in BASELINES:
                for bucket_s in (0.5, 7.0, 60.0) if baseline is Twap else (60.0,):
                    got, want = both(market, baseline, order, bucket_s)
                    assert_same(got, want, (i, size, baseline.name, bucket_s))
                    seen["impact part"] += want.cleanup_impact_shares > 0
                    seen["taken after"] += want.cleanup_taken_shares > 0
                    seen["filled"] += want.filled_shares > 0
    # The cases reach every part of the result: fills, the depth after, the impact model.
    assert seen["impact part"] and seen["filled"], seen
    assert seen["taken after"] or cap == 0.05, seen  # a tight cap may leave nothing to take


def test_a_binding_cap_keeps_the_cheapest_shares_as_the_engine(snaps):
    """A cap that binds while TWAP and VWAP sweep several levels at once (`keep_cheapest`)."""
    market = parent_markets(snaps)[0]
    binding = 0
    for cap in (0.01, 0.02, 0.1, 0.3):
        order = OrderRules(size=20_000, max_participation=cap)
        for baseline in BASELINES:
            got, want = both(market, baseline, order, 5.0)
            assert_same(got, want, (cap, baseline.name))
            binding += want.filled_shares < order.size
    assert binding


def test_run_baselines_is_the_compiled_path_and_equals_the_reference(snaps):
    config = load_config(None, {"order.size": 3_000, "baselines.twap_bucket_s": 3})
    rules = evaluation_rules(config)
    market = make_market(snaps, rules)
    got = run_baselines(market, rules)
    want = run_baselines_reference(market, rules)
    assert list(got) == list(want) == [b.name for b in BASELINES]
    for name in want:
        assert_same(got[name], want[name], name)


def test_every_registered_baseline_runs_compiled(snaps):
    for baseline in BASELINES:
        assert compiled_baseline(baseline.for_order(snaps, 100, 1.0)) is not None, baseline


def test_a_strategy_the_kernel_does_not_know_runs_in_python(snaps, monkeypatch):
    class Picky(BestAsk):
        """A subclass may decide otherwise: it is run by the engine, not the kernel."""

    calls = []
    real = baselines_nb.run_strategy
    monkeypatch.setattr(
        baselines_nb, "run_strategy", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    market = parent_markets(snaps)[0]
    got = execute_baseline(market, Picky(market.snaps), OrderRules(size=500))
    assert calls
    assert_same(got, run_strategy(market, BestAsk(market.snaps), OrderRules(size=500)))


def test_best_ask_ties_go_to_more_shares_left_then_the_lower_publisher_id():
    # Row 0: venues 7 and 3 tie at 10.00 with 100 shares each, venue 5 shows 300 at 10.00;
    # row 1: the two left tie at the same size; row 2: a NaN ask beside a quote.
    snaps = make_snaps(
        [[10.0, 10.0, 10.0], [10.0, 10.0, 10.01], [np.nan, 10.02, 10.02]],
        [[100, 100, 300], [100, 100, 50], [0, 40, 40]],
        venues=[7, 3, 5],
    )
    market = build_market(snaps, venue_costs(snaps.venues))
    for size in (50, 250, 350, 460, 520, 10_000):
        for fill_model in ("strict", "naive"):
            order = OrderRules(size=size, fill_model=fill_model)
            got, want = both(market, BestAsk, order, 1.0)
            assert_same(got, want, (size, fill_model))
    order = OrderRules(size=250)
    want = run_strategy(market, BestAsk(snaps), order)
    assert want.shares_by_venue == {5: 250}  # more shares left wins the tie at 10.00


def test_memory_full_falls_back_to_the_engine(monkeypatch):
    # The ask falls a cent every snapshot: every price taken stays remembered (the ask never
    # rises above it), more of them than the kernel's `MEMORY_SLOTS`.
    rows = MEMORY_SLOTS + 20
    snaps = make_snaps(
        [[100.0 - 0.01 * t, 100.5] for t in range(rows)],
        [[100, 10]] * rows,
        trade_volume=np.full(rows, 500),
    )
    market = build_market(snaps, venue_costs(snaps.venues))
    calls = []
    real = baselines_nb.run_strategy
    monkeypatch.setattr(
        baselines_nb, "run_strategy", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    for baseline in BASELINES:
        got, want = both(market, baseline, OrderRules(size=100 * rows), 1.0)
        assert_same(got, want, baseline.name)
    assert len(calls) == 3, "the compiled memory never filled up: the test proves nothing"


def test_memory_full_in_the_clean_up_falls_back_to_the_engine(monkeypatch):
    # Two rows of horizon, then the falling ask: the clean-up fills the memory.
    rows = MEMORY_SLOTS + 20
    snaps = make_snaps([[100.0 - 0.01 * t] for t in range(rows)], [[100]] * rows)
    costs = venue_costs(snaps.venues)
    market = Market(
        slice_rows(snaps, 0, 1), costs, after_horizon(snaps, costs, 2, estimate_impact(snaps))
    )
    totals, _ = baselines_nb.run_baseline_nb(
        *baselines_nb._arrays(market), 0, np.zeros(1, dtype=np.int64), (10**6, True, -1.0, 0.0)
    )
    assert totals[0] == baselines_nb._MEMORY_FULL
    calls = []
    real = baselines_nb.run_strategy
    monkeypatch.setattr(
        baselines_nb, "run_strategy", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    got, want = both(market, BestAsk, OrderRules(size=10**6), 1.0)
    assert calls
    assert_same(got, want)
    assert want.cleanup_taken_shares > MEMORY_SLOTS * 100 - 500


def test_a_horizon_without_asks_leaves_everything_to_the_clean_up(snaps):
    """No ask anywhere within the horizon: nothing fills; the clean-up takes from the data
    after it."""
    part = slice_rows(snaps, 0, 30)
    empty = dataclasses.replace(
        part,
        ask_px=np.full(part.ask_px.shape, np.nan),
        ask_sz=np.zeros(part.ask_sz.shape, dtype=np.int64),
        ask_depth_px=None,
        ask_depth_sz=None,
    )
    costs = venue_costs(snaps.venues)
    market = Market(empty, costs, after_horizon(snaps, costs, 31, estimate_impact(snaps)))
    for baseline in BASELINES:
        got, want = both(market, baseline, OrderRules(size=300), 1.0)
        assert want.filled_shares == 0 and want.cleanup_taken_shares == 300
        assert_same(got, want, baseline.name)


@pytest.mark.skipif(not REAL_DAY.exists(), reason="shared data not available")
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"order.max_participation": 0.05, "order.temporary_impact": 1.0},
        {"order.fill_model": "naive", "order.size": 20_000, "schedule.twap_bucket_s": 3},
    ],
    ids=["default", "capped-charged", "naive-large"],
)
def test_a_real_days_schedule_gives_the_engines_baselines(overrides):
    """20 parent orders of the real TAQ day (12 venues, MBP-1 with trades), as `sor backtest
    --schedule` builds them: the schedule's baselines are the engine's."""
    config = load_config(
        None,
        {
            "window.start": "2018-01-02T15:00:00Z",
            "window.end": "2018-01-02T15:30:00Z",
            "schedule.enabled": True,
            "schedule.train_fraction": 0.0,
            **overrides,
        },
    )
    snaps = load_snapshots(REAL_DAY, **config.load_options())[0]
    rules = evaluation_rules(config)
    sm = make_schedule_market(snaps, rules)
    assert len(sm.parents) >= 20 and snaps.n_venues >= 10
    baseline_rules = dataclasses.replace(rules, twap_bucket_s=rules.schedule.twap_bucket_s)
    for p, parent in enumerate(sm.parents[:20]):
        want = run_baselines_reference(parent, baseline_rules)
        for name, result in want.items():
            assert_same(sm.baseline_fills[name][p], result, (p, name))


def test_the_warm_up_compiles_what_real_markets_run(snaps):
    """After `warm_up` (which the sweep's driver calls before its workers start), a market
    read from a file needs no other compiled signature: workers load the cache, none compiles."""
    baselines_nb.warm_up()
    signatures = list(baselines_nb.run_baseline_nb.signatures)
    assert signatures
    for market in parent_markets(snaps):
        for baseline in BASELINES:
            strategy = baseline.for_order(market.snaps, 500, 5.0)
            execute_baseline(market, strategy, OrderRules(size=500, max_participation=0.1))
    assert list(baselines_nb.run_baseline_nb.signatures) == signatures
