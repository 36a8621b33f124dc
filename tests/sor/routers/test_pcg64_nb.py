"""The compiled seeding and draws equal NumPy's `default_rng(seed).integers(0, count, size)`."""

from __future__ import annotations

import numpy as np
import pytest

from sor.routers.pcg64_nb import bounded_draws_into, seed_state_into, seeded_state

SEEDS = [0, 1, 7, 2**31 + 5, 2**32 - 1, 2**32, 123_456_789, 2**63 - 1]
# 1 draws nothing; 2**32 - 1 and 2**32 are the edges of the 32-bit method; others reject often
COUNTS = [1, 2, 3, 29, 100, 1000, 2**31 + 5, 2**32 - 1, 2**32]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("count", COUNTS)
def test_draws_are_numpys(seed, count):
    want = np.random.default_rng(seed).integers(0, count, size=1001)  # odd: a half word left
    got = np.full(1001, -1, dtype=np.int64)
    bounded_draws_into(compiled_state(seed), count, got)
    assert np.array_equal(got, want)


def compiled_state(seed: int) -> np.ndarray:
    state = np.zeros(4, dtype=np.uint64)
    seed_state_into(seed, state)
    return state


def test_seeding_is_numpys():
    rng = np.random.default_rng(11)
    seeds = [*range(3_000), *(int(s) for s in rng.integers(0, 2**63 - 1, size=3_000))]
    for seed in seeds + SEEDS:
        assert np.array_equal(compiled_state(seed), seeded_state(seed)), seed


def test_many_seeds_and_short_lengths():
    rng = np.random.default_rng(5)
    for _ in range(300):
        seed = int(rng.integers(0, 2**62))
        count = int(rng.integers(1, 5_000))
        size = int(rng.integers(0, 40))
        got = np.empty(size, dtype=np.int64)
        bounded_draws_into(compiled_state(seed), count, got)
        assert np.array_equal(got, np.random.default_rng(seed).integers(0, count, size=size))


def test_the_state_is_left_unchanged():
    state = compiled_state(42)
    before = state.copy()
    first, second = np.empty(50, dtype=np.int64), np.empty(50, dtype=np.int64)
    bounded_draws_into(state, 17, first)
    bounded_draws_into(state, 17, second)
    assert np.array_equal(state, before) and np.array_equal(first, second)
    assert not np.array_equal(compiled_state(43), state)
