"""The compiled clean-up equals the reference (`sor.execution.cleanup.clean_up`) field by field."""

from __future__ import annotations

import numpy as np
import pytest

from sor.data.loader import load_snapshots
from sor.execution.cleanup import OrderLimits, after_horizon, clean_up, estimate_impact
from sor.execution.cleanup_nb import clean_up_compiled
from sor.execution.depth import TakenMemory
from sor.execution.depth_nb import Memory, empty_memory, take
from sor.execution.venues import venue_costs
from sor.synth.generate import generate


def memory_of(taken: TakenMemory, n_venues: int) -> Memory:
    """The compiled `Memory` holding what `taken` holds."""
    memory = empty_memory(n_venues)
    for j, price, shares in taken.entries():
        assert take(memory, j, price, shares)
    return memory


@pytest.fixture(scope="module", params=["mbp-1", "mbp-10"])
def market(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("cleanup") / "day.csv"
    generate(path, n_events=3_000, schema=request.param, seed=7)
    snaps, _ = load_snapshots(path)
    return snaps, venue_costs(snaps.venues)


def taken_before(snaps, row: int, rng: np.random.Generator) -> TakenMemory:
    """A memory of shares taken at row - 1's levels, forgotten through that row and rebased."""
    prices, sizes = snaps.ask_ladder()
    memory = TakenMemory(snaps.n_venues)
    for j in range(snaps.n_venues):
        for k in range(prices.shape[2]):
            if (
                np.isfinite(prices[row - 1, j, k])
                and sizes[row - 1, j, k] > 0
                and rng.random() < 0.5
            ):
                memory.take(
                    j, float(prices[row - 1, j, k]), int(rng.integers(1, sizes[row - 1, j, k] + 1))
                )
    memory.forget_through(snaps.ask_px, row - 1)
    memory.rebase()
    return memory


@pytest.mark.parametrize("shares", [1, 700, 40_000, 10_000_000])
@pytest.mark.parametrize("cap", [None, 0.05, 0.5])
@pytest.mark.parametrize("charge", [0.0, 0.02])
@pytest.mark.parametrize("strict", [True, False])
def test_compiled_clean_up_equals_the_reference(market, shares, cap, charge, strict):
    snaps, costs = market
    rng = np.random.default_rng(shares + int(100 * (cap or 0)))
    impact = estimate_impact(snaps)
    for start in (1, len(snaps) // 3, len(snaps) - 5, len(snaps)):
        after = after_horizon(snaps, costs, start, impact)
        limits = OrderLimits(cap, int(rng.integers(0, 50_000)), int(rng.integers(0, 5_000)), charge)
        reference_memory = taken_before(snaps, start, rng) if strict else None
        compiled_memory = (
            memory_of(reference_memory, snaps.n_venues) if reference_memory is not None else None
        )
        got = clean_up_compiled(after, costs.fee, shares, compiled_memory, limits)
        want = clean_up(after, costs.fee, shares, reference_memory, limits)
        assert got == want, (start, got, want)


def test_a_full_memory_falls_back_to_the_reference(market, monkeypatch):
    """A venue holding more prices than the compiled memory's slots gets the reference's answer."""
    snaps, costs = market
    from sor.execution import cleanup_nb

    after = after_horizon(snaps, costs, 1, estimate_impact(snaps))
    taken = taken_before(snaps, 1, np.random.default_rng(0))
    memory = memory_of(taken, snaps.n_venues)
    tiny = type(memory)(memory.px[:, :1].copy(), memory.sz[:, :1].copy(), np.minimum(memory.n, 1))
    calls = []
    real = cleanup_nb.clean_up

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(cleanup_nb, "clean_up", spy)
    got = clean_up_compiled(after, costs.fee, 10_000_000, tiny, OrderLimits())
    assert calls, "the compiled memory did not fill up: the test proves nothing"
    want = clean_up(after, costs.fee, 10_000_000, TakenMemory.from_arrays(*tiny), OrderLimits())
    assert got == want
