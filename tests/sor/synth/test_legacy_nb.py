"""The compiled legacy simulation (`sor.synth.legacy_nb`) records exactly the rows of the
pure-Python one it replaced (`legacy_reference`), from the same plan and the same draws."""

from __future__ import annotations

import numpy as np
import pytest

from sor.synth import generate as gen
from sor.synth import legacy_nb
from tests.sor.synth.legacy_reference import _Simulator

# A venue whose offer is pulled every ten seconds on average: empty asks, requotes, sweeps
# with no offer left, and cross-venue sweeps between two venues.
_FLICKER = (
    gen.VenueProfile(2, spread_ticks=1.5, depth_shares=200, rate_hz=50),
    gen.VenueProfile(
        11, spread_ticks=3.0, depth_shares=80, odd_lot_prob=0.6, rate_hz=10, lag_ms=20,
        empty_ask_per_min=6.0,
    ),
)  # fmt: skip


def _params(n: int, venues: tuple[gen.VenueProfile, ...], trade_fraction: float) -> gen._Params:
    return gen._Params(
        n_events=n,
        venues=venues,
        start="2024-08-01T13:36:32Z",
        price=222.80,
        tick=0.01,
        trade_fraction=trade_fraction,
        burst_prob=0.04,
        cross_venue_prob=0.25,
        vol=5.0,
        drift=0.0,
        empty_ask_s=2.0,
    )


@pytest.mark.parametrize(
    ("n", "seed", "top_only", "venues", "trade_fraction"),
    [
        (20_000, 1, False, gen.DEFAULT_VENUES, 0.05),
        (20_000, 2, True, gen.DEFAULT_VENUES, 0.05),
        (15_000, 3, False, _FLICKER, 0.3),
        (15_000, 4, True, _FLICKER, 0.3),
    ],
)
def test_compiled_simulation_records_the_reference_rows(n, seed, top_only, venues, trade_fraction):
    prm = _params(n, venues, trade_fraction)
    ref_rng, rng = np.random.default_rng(seed), np.random.default_rng(seed)
    want = _Simulator(ref_rng, prm, gen._plan(ref_rng, prm), top_only=top_only).run()
    got = gen._simulate(rng, prm, gen._plan(rng, prm), top_only=top_only)
    # The same draws were taken: the rest of `generate` draws the same numbers.
    assert rng.bit_generator.state == ref_rng.bit_generator.state
    assert len(got["group"]) == len(want["group"]) == n
    for k in ("group", "venue", "depth", "price", "size", "book"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    for k in ("action", "side"):
        np.testing.assert_array_equal(got[k], want[k].view(np.uint32).astype(np.uint8), err_msg=k)
    # The cases reach the rare paths: empty offers being pulled and coming back, and prints.
    assert (want["action"] == "T").any()
    if venues is _FLICKER:
        assert (want["book"][:, 1, 0] == 0).any()  # an empty ask


@pytest.mark.parametrize("n", [1, 2, 5, 1000, 50_000])
def test_lagged_index_is_the_binary_search_it_replaces(n):
    """Each venue's lagged fair price: the last group at or before t - lag (or the first)."""
    rng = np.random.default_rng(n)
    t = np.cumsum(np.maximum(rng.exponential(1e6, n).astype(np.int64), 1))
    t[0] = 0
    lag = np.array([0, 3_000_000, 8_000_000, 2_000_000, 50_000_000, 10**12], dtype=np.int64)
    want = np.maximum(np.searchsorted(t, t[:, None] - lag[None, :], side="right") - 1, 0)
    np.testing.assert_array_equal(legacy_nb.lagged_index(t, lag), want)
