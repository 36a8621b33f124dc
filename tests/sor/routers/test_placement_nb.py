"""The compiled Cont & Kukanov parent order equals `execute_parent` field by field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sor.data.loader import load_snapshots
from sor.execution.cleanup import after_horizon, estimate_impact
from sor.execution.venues import venue_costs
from sor.routers import placement_nb
from sor.routers.placement import (
    PlacementParams,
    PlacementSettings,
    execute_parent,
    make_passive_market,
)
from sor.routers.placement_nb import execute_parent_compiled
from sor.synth.generate import DEFAULT_VENUES, generate

REAL = (
    Path(__file__).resolve().parents[3].parent
    / "shared/data/real/taq_2018-01-02_mbp1_trades.csv.gz"
)


def assert_same(got, want) -> None:
    for f in dataclasses.fields(want):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if isinstance(b, np.ndarray):
            assert np.array_equal(a, b), (f.name, a, b)
        else:
            assert a == b and type(a) is type(b), (f.name, a, b)


@pytest.fixture(scope="module", params=[("mbp-1", 3), ("mbp-10", 5), ("mbp-1", 2)])
def market(request, tmp_path_factory):
    schema, venues = request.param
    path = tmp_path_factory.mktemp("placement") / "day.csv"
    generate(path, n_events=6_000, schema=schema, seed=venues, venues=DEFAULT_VENUES[:venues])
    snaps, _ = load_snapshots(path)
    costs = venue_costs(snaps.venues)
    return make_passive_market(snaps, costs, estimate_impact(snaps))


PARAMS = [
    PlacementParams(0.05, 0.05, 0.05, 15.0),
    PlacementParams(0.0, 0.5, 0.0, 2.5),
    PlacementParams(0.3, 0.01, 0.2, 29.0),
]


@pytest.mark.parametrize("params", PARAMS, ids=["default", "eager", "patient"])
@pytest.mark.parametrize("queue_model", ["conservative", "probabilistic"])
@pytest.mark.parametrize("size", [100, 5_000, 2_000_000])
@pytest.mark.parametrize("limits", [(None, None), (0.1, None), (None, 1.0), (0.05, 0.5)])
def test_compiled_parent_equals_the_reference(market, params, queue_model, size, limits):
    cap, impact = limits
    settings = PlacementSettings(iterations=100, queue_model=queue_model, seed=3)
    snaps = market.snaps
    n = len(snaps)
    for first, last in ((0, n // 3), (n // 4, n // 2), (n // 2, n - 1)):
        kwargs = {"max_participation": cap, "temporary_impact": impact}
        want = execute_parent(market, first, last, size, params, settings, **kwargs)
        got = execute_parent_compiled(market, first, last, size, params, settings, **kwargs)
        assert_same(got, want)


def test_clean_up_stops_where_the_given_after_horizon_stops(market):
    """An in-sample order's clean-up rows end at the walk-forward split, compiled as in Python."""
    snaps = market.snaps
    first, last = 10, len(snaps) // 4
    split = dataclasses.replace(snaps)  # same arrays; the after-horizon view ends early below
    after = after_horizon(split, market.costs, last + 1, market.impact)
    after = dataclasses.replace(
        after,
        prices=after.prices[:50],
        sizes=after.sizes[:50],
        best_ask=after.best_ask[:50],
        trade_volume=after.trade_volume[:50],
    )
    params, settings = PARAMS[0], PlacementSettings(iterations=100)
    want = execute_parent(market, first, last, 3_000_000, params, settings, after=after)
    got = execute_parent_compiled(market, first, last, 3_000_000, params, settings, after=after)
    assert want.cleanup_impact_shares > 0
    assert_same(got, want)


def test_a_full_memory_runs_the_reference(market, monkeypatch):
    calls = []
    real = placement_nb.execute_parent

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(placement_nb, "execute_parent", spy)
    monkeypatch.setattr(placement_nb, "empty_memory", lambda n: None)  # never reached if cached
    params, settings = PARAMS[0], PlacementSettings(iterations=50)
    n = len(market.snaps)
    fill = placement_nb._Fill(False, 0.0, 0, 0, 0, 0, 0.0, 0, 0.0)
    monkeypatch.setattr(placement_nb, "_execute_parent_nb", lambda *args: fill)
    got = execute_parent_compiled(market, 0, n // 2, 10_000, params, settings)
    assert calls
    assert_same(got, execute_parent(market, 0, n // 2, 10_000, params, settings))


@pytest.mark.skipif(not REAL.exists(), reason="shared real data absent")
def test_compiled_parent_equals_the_reference_on_a_real_day():
    snaps, _ = load_snapshots(REAL, start="14:30", end="15:30")
    market = make_passive_market(snaps, venue_costs(snaps.venues))
    settings = PlacementSettings(iterations=200)
    ts = snaps.ts
    for k in range(12):
        first = int(np.searchsorted(ts, ts[0] + k * 300 * 10**9))
        last = int(np.searchsorted(ts, ts[first] + 60 * 10**9)) - 1
        for params in PARAMS:
            for cap in (None, 0.2):
                want = execute_parent(
                    market, first, last, 5_000, params, settings, max_participation=cap
                )
                got = execute_parent_compiled(
                    market, first, last, 5_000, params, settings, max_participation=cap
                )
                assert_same(got, want)


@pytest.mark.parametrize("seed", range(20))
def test_the_time_index_finds_the_rows_numpy_finds(seed):
    """`_row_at` is `np.searchsorted(ts, value, side="left")`: repeated times, gaps, one row,
    values before, between, at and after the rows."""
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(1, 300))
    gaps = rng.choice([0, 1, 7, 10**6, 10**9], rows) * rng.integers(0, 3, rows)
    ts = np.cumsum(gaps).astype(np.int64) + int(rng.integers(0, 10**12))
    arrays = dict.fromkeys(placement_nb.ParentArrays._fields, np.zeros(0))
    arrays |= dict(
        zip(("ts_origin", "ts_width", "ts_rows"), placement_nb.time_index(ts), strict=True)
    )
    index = placement_nb.ParentArrays(**{**arrays, "ts": ts})
    values = np.concatenate([ts, ts - 1, ts + 1, rng.integers(ts[0] - 10**9, ts[-1] + 10**9, 200)])
    for value in values:
        assert placement_nb._row_at(index, int(value)) == np.searchsorted(ts, value, side="left")
