"""The Cont & Kukanov stochastic-approximation allocator against exact answers."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest

from sor.routers.cont_kukanov import (
    PlacementProblem,
    _arrays,
    _project,
    _stochastic_approximation,
    assumptions_hold,
    expected_cost,
    one_venue_closed_form,
    solve,
)

#: The stated tolerance: at N = 1,000 iterations the averaged iterate's sample-average cost is
#: within this fraction of S * (h + f + theta + lambda_u + lambda_o) of the least cost, the scale
#: of the O(1/sqrt(N)) bound of robust stochastic approximation.
TOLERANCE_N1000 = 0.02


def _scale(p: PlacementProblem) -> float:
    return p.shares * (p.half_spread + p.fee + p.theta + p.lambda_under + p.lambda_over)


def _random_problem(rng, *, venues: int, shares: float, samples: int) -> PlacementProblem:
    return PlacementProblem(
        shares=shares,
        half_spread=0.01,
        fee=0.003,
        rebates=rng.uniform(0.0005, 0.004, venues),
        queues=rng.integers(0, int(shares), venues).astype(float),
        outflows=rng.poisson(rng.uniform(0.2, 2.5, venues) * shares, (samples, venues)).astype(
            float
        ),
        lambda_under=rng.uniform(0.02, 0.2),
        lambda_over=rng.uniform(0.02, 0.2),
        theta=0.002,
    )


def _brute_force(p: PlacementProblem) -> float:
    """Least sample-average cost over every integer point of C."""
    s = int(p.shares)
    best = np.inf
    for market in range(s + 1):
        for limits in itertools.product(range(s - market + 1), repeat=p.n_venues):
            if market + sum(limits) >= s:
                best = min(best, expected_cost(p, market, np.array(limits, dtype=float)))
    return best


def _in_c(x: np.ndarray, shares: float) -> bool:
    m, limits = x[0], x[1:]
    eps = 1e-9 * shares
    return bool(
        -eps <= m <= shares + eps
        and (limits >= -eps).all()
        and (limits <= shares - m + eps).all()
        and m + limits.sum() >= shares - eps
    )


@pytest.mark.parametrize("seed", range(8))
def test_matches_exact_sample_average_optimum_on_small_cases(seed):
    rng = np.random.default_rng(seed)
    p = _random_problem(rng, venues=2, shares=16, samples=25)
    best = _brute_force(p)
    gaps = []
    for n in (1_000, 100_000):
        x = solve(p, iterations=n, seed=seed)
        assert _in_c(np.r_[x.market, x.limits], p.shares)
        gaps.append(expected_cost(p, x.market, x.limits) - best)
    # the integer grid holds the optimum of this piecewise linear cost, up to rounding
    assert gaps[0] >= -1e-9 and gaps[1] >= -1e-9
    assert gaps[0] <= TOLERANCE_N1000 * _scale(p)
    assert gaps[1] <= 0.003 * _scale(p)  # O(1/sqrt(N)): a hundred times N, a tenth of the gap


@pytest.mark.parametrize("seed", range(6))
def test_one_venue_lands_on_proposition_3(seed):
    rng = np.random.default_rng(100 + seed)
    p = PlacementProblem(
        shares=1000,
        half_spread=0.01,
        fee=0.003,
        rebates=np.array([0.002]),
        queues=np.array([500.0]),
        outflows=rng.gamma(2.0, 800, size=(200, 1)).round(),
        lambda_under=rng.uniform(0.02, 0.3),
        lambda_over=0.05,
        theta=0.001,
    )
    assert assumptions_hold(p)
    closed = one_venue_closed_form(p)
    optimum = expected_cost(p, closed.market, closed.limits)
    grid = min(
        expected_cost(p, m, np.array([p.shares - m], dtype=float)) for m in range(0, 1001, 5)
    )
    assert optimum <= grid + 1e-9  # the closed form is optimal on the segment M + L = S
    x = solve(p, iterations=1_000, seed=seed)
    assert expected_cost(p, x.market, x.limits) - optimum <= TOLERANCE_N1000 * _scale(p)
    x = solve(p, iterations=100_000, seed=seed)
    assert abs(x.market - closed.market) <= 0.05 * p.shares


def test_closed_form_corner_cases():
    base = dict(half_spread=0.01, fee=0.003, rebates=np.array([0.002]), lambda_over=0.05)
    # the queue always clears with room to spare: all limit
    always = PlacementProblem(
        shares=100, queues=np.array([10.0]), outflows=np.full((5, 1), 500.0),
        lambda_under=0.05, theta=0.0, **base,
    )  # fmt: skip
    assert one_venue_closed_form(always).market == 0.0
    # nothing ever leaves the queue: all market
    never = PlacementProblem(
        shares=100, queues=np.array([10.0]), outflows=np.zeros((5, 1)),
        lambda_under=0.05, theta=0.0, **base,
    )  # fmt: skip
    assert one_venue_closed_form(never).market == 100.0
    x = solve(never, iterations=2_000)
    assert x.market > 95.0


def test_projection_is_the_euclidean_projection_onto_c():
    rng = np.random.default_rng(7)
    shares = 50.0
    for _ in range(300):
        k = int(rng.integers(1, 6))
        y = rng.normal(0, 60, k + 1)
        x = y.copy()
        _project(x, shares)
        assert _in_c(x, shares)
        # variational inequality: (y - P y) . (z - P y) <= 0 for every z in C
        for _ in range(40):
            z = np.empty(k + 1)
            z[0] = rng.uniform(0, shares)
            z[1:] = rng.uniform(0, shares - z[0], k)
            if z[0] + z[1:].sum() < shares:
                continue
            assert np.dot(y - x, z - x) <= 1e-7 * shares**2
        x2 = x.copy()
        _project(x2, shares)
        np.testing.assert_allclose(x2, x, atol=1e-9)  # a point of C stays put


def test_reproducible_and_validates_shapes():
    rng = np.random.default_rng(3)
    p = _random_problem(rng, venues=4, shares=500, samples=40)
    a, b = solve(p, seed=5), solve(p, seed=5)
    assert a.market == b.market and np.array_equal(a.limits, b.limits)
    bad = PlacementProblem(**{**p.__dict__, "outflows": np.zeros((0, 4))})
    with pytest.raises(ValueError, match="no outflow samples"):
        solve(bad)
    bad = PlacementProblem(**{**p.__dict__, "outflows": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="K = 4"):
        solve(bad)


def test_higher_rebate_draws_more_limit_shares():
    rng = np.random.default_rng(11)
    outflows = rng.poisson(400, size=(100, 2)).astype(float)
    p = PlacementProblem(
        shares=400, half_spread=0.01, fee=0.003, rebates=np.array([0.001, 0.006]),
        queues=np.array([100.0, 100.0]), outflows=outflows,
        lambda_under=0.05, lambda_over=0.05, theta=0.001,
    )  # fmt: skip
    x = solve(p, iterations=20_000)
    assert x.limits[1] > x.limits[0]


def _pinned_problems():
    """Problems of every shape the router meets, seeded: few and many venues, tied rebates,
    queues and samples, penalties from none to large, one to a thousand iterations."""
    rng = np.random.default_rng(20180102)
    for case in range(240):
        venues = int(rng.integers(0, 8))
        shares = float(rng.choice([1.0, 37.0, 5_000.0, 2_000_000.0]))
        ties = case % 3 == 0
        rebates = np.full(venues, 0.002) if ties else rng.uniform(-0.001, 0.004, venues)
        queues = (
            np.full(venues, float(rng.integers(0, 3 * int(shares) + 1)))
            if ties
            else rng.integers(0, 3 * int(shares) + 1, venues).astype(float)
        )
        samples = int(rng.integers(1, 101))
        outflows = rng.poisson(rng.uniform(0.0, 3.0, venues) * shares, (samples, venues))
        if case % 4 == 0:
            outflows = outflows[rng.integers(0, samples, samples) % max(samples // 4, 1)]
        problem = PlacementProblem(
            shares=shares,
            half_spread=float(rng.choice([0.0, 0.005, 0.01])),
            fee=float(rng.choice([0.0, 0.003])),
            rebates=rebates,
            queues=queues,
            outflows=outflows.astype(float),
            lambda_under=float(rng.uniform(0.0, 0.5)),
            lambda_over=float(rng.uniform(0.0, 0.5)),
            theta=float(rng.choice([0.0, 0.002, rng.uniform(0.0, 0.1)])),
        )
        yield problem, int(rng.choice([1, 7, 100, 1000])), int(rng.integers(0, 2**31))


#: sha256 of the answers `solve` gave to `_pinned_problems` before any step was skipped
#: (market then limits, float64 bytes): the solver's answer may not move by a bit.
PINNED_ANSWERS = "ed02efe799a0f6c7637178ea1d292ab434a5cf6b33b78c5a09fa3e9d40c79633"


def test_answers_are_pinned_to_the_bit():
    digest = hashlib.sha256()
    for problem, iterations, seed in _pinned_problems():
        x = solve(problem, iterations=iterations, seed=seed)
        digest.update(np.float64(x.market).tobytes() + np.ascontiguousarray(x.limits).tobytes())
    assert digest.hexdigest() == PINNED_ANSWERS


def _pinned_edge_problems():
    """More venues than a step's bit mask holds, and penalties of zero (a short step's sign
    term is then -0.0)."""
    rng = np.random.default_rng(7)
    for case in range(24):
        venues = [1, 3, 61, 62, 70][case % 5]
        shares = float(rng.choice([10.0, 5_000.0]))
        zero = case % 2 == 0
        problem = PlacementProblem(
            shares=shares,
            half_spread=0.01,
            fee=0.0 if zero else 0.003,
            rebates=np.zeros(venues) if zero else rng.uniform(0.0, 0.004, venues),
            queues=rng.integers(0, int(shares), venues).astype(float),
            outflows=rng.poisson(shares / 2, (int(rng.integers(1, 60)), venues)).astype(float),
            lambda_under=0.0 if zero else float(rng.uniform(0.0, 0.3)),
            lambda_over=0.0 if zero else float(rng.uniform(0.0, 0.3)),
            theta=0.0 if zero or case % 3 == 0 else 0.002,
        )
        yield problem, int(rng.choice([50, 400])), int(rng.integers(0, 2**31))


#: sha256 of the answers `solve` gave to `_pinned_edge_problems` before any step was skipped.
PINNED_EDGE_ANSWERS = "f6ace673d062014d3961ddcd32d2286667c3997388a38e5152481e991c9c6173"


def test_answers_with_many_venues_or_zero_penalties_are_pinned_to_the_bit():
    digest = hashlib.sha256()
    for problem, iterations, seed in _pinned_edge_problems():
        x = solve(problem, iterations=iterations, seed=seed)
        digest.update(np.float64(x.market).tobytes() + np.ascontiguousarray(x.limits).tobytes())
    assert digest.hexdigest() == PINNED_EDGE_ANSWERS


def test_a_step_that_left_the_iterate_unchanged_is_not_computed_again():
    """On the pinned problems some iterates settle: fewer projections than steps, same answers
    (`test_answers_are_pinned_to_the_bit`)."""
    settled = 0
    for problem, iterations, seed in _pinned_problems():
        rebates, queues, outflows = _arrays(problem)
        k = len(rebates)
        start = np.full(k + 1, problem.shares / (2 * k) if k else problem.shares)
        start[0] = problem.shares / 2 if k else problem.shares
        draws = np.random.default_rng(seed).integers(0, len(outflows), size=iterations)
        out = np.empty(k + 1)
        args = (problem.shares, problem.half_spread, problem.fee, rebates, queues, outflows)
        penalties = (problem.lambda_under, problem.lambda_over, problem.theta)
        projections = _stochastic_approximation(*args, draws, *penalties, start, out)
        assert 1 <= projections <= iterations + 1
        settled += projections < iterations / 2
    assert settled >= 10
