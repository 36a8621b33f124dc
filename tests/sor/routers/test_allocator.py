"""The allocator against a literal enumeration of every candidate split (model.md §3)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sor.routers.allocator import Venue, _Problem, _solve, allocate, allocate_arrays

# Near-ties closer than NEAR * scale dollars are settled in exact rational arithmetic; a case is
# "clear" when no split costs within GAP * scale of the optimum without tying it exactly.
NEAR = 1e-7
GAP = 1e-9


def literal_cost(order_size, split, ask, size, fee, rebate, lo, lu, theta, num=float):
    """model.md §3 term by term, with numbers of type `num` (float or Fraction)."""
    executed = 0
    cash = num(0)
    for q, a, s, f, r in zip(split, ask, size, fee, rebate, strict=True):
        exe = min(q, s)
        executed += exe
        cash += exe * (num(a) + num(f))
        cash -= max(q - exe, 0) * num(r)
    underfill = max(order_size - executed, 0)
    overfill = max(executed - order_size, 0)
    return cash + num(theta) * (underfill + overfill) + num(lu) * underfill + num(lo) * overfill


def enumerate_splits(order_size, size, step, cap, include_cap):
    """Every candidate with sum == order_size, in the task's (lexicographic) order."""
    out = []

    def extend(prefix, used):
        if len(prefix) == len(size):
            if used == order_size:
                out.append(tuple(prefix))
            return
        limit = order_size - used
        if cap == "displayed":
            limit = min(limit, size[len(prefix)])
        candidates = list(range(0, limit + 1, step))
        if include_cap and limit % step:
            candidates.append(limit)
        for q in candidates:
            extend([*prefix, q], used + q)

    extend([], 0)
    return out


def cost_scale(order_size, ask, fee, rebate, lo, lu, theta):
    terms = [abs(x) for x in (*ask, *fee, *rebate, lo, lu, theta)]
    return order_size * (max(terms, default=0.0) * 4) + 1.0


def brute_force(order_size, ask, size, fee, rebate, lo, lu, theta, step, cap, include_cap):
    """(least cost, first least-cost split, whether the case is clear) by enumeration.

    Float costs find the near-optimal splits; exact rational costs rank those, so that ties are
    ties and the first one in enumeration order is the task's answer.
    """
    args = (ask, size, fee, rebate, lo, lu, theta)
    splits = enumerate_splits(order_size, size, step, cap, include_cap)
    if not splits:
        return math.inf, None, True
    costs = [literal_cost(order_size, s, *args) for s in splits]
    scale = cost_scale(order_size, ask, fee, rebate, lo, lu, theta)
    near = [s for s, c in zip(splits, costs, strict=True) if c <= min(costs) + NEAR * scale]
    exact = [literal_cost(order_size, s, *args, num=Fraction) for s in near]
    best = min(exact)
    first = near[exact.index(best)]
    clear = all(c == best or c > best + Fraction(GAP * scale) for c in exact)
    return float(best), first, clear


def solve(order_size, ask, size, fee, rebate, lo, lu, theta, step, cap, include_cap, fast):
    """The allocator with or without its fast paths."""
    if fast:
        split, cost = allocate_arrays(
            order_size,
            np.array(ask, dtype=float),
            np.array(size, dtype=np.int64),
            np.array(fee, dtype=float),
            np.array(rebate, dtype=float),
            lo,
            lu,
            theta,
            step=step,
            cap=cap,
            include_cap=include_cap,
        )
        return (None if split is None else tuple(split.tolist())), cost
    problem = _Problem.checked(
        order_size, ask, size, fee, rebate, lo, lu, theta, step, cap, include_cap
    )
    split = _solve(problem, fast_paths=False)
    return (None, math.inf) if split is None else (tuple(split), problem.cost(split))


# Arbitrary values, and small palettes whose repeats make exact ties common.
prices = st.floats(-5.0, 300.0, allow_nan=False)
charges = st.floats(0.0, 10.0, allow_nan=False)
penalties = st.floats(0.0, 1e3, allow_nan=False)
sizes = st.one_of(st.sampled_from([0, 1, 37, 50, 99, 100, 101, 150, 333]), st.integers(0, 700))
PALETTES = {
    "ask": [10.0, 10.5, 11.0, 0.0, -0.25, 222.8, 222.81],
    "charge": [0.0, 0.002, 0.003, 0.5],
    "penalty": [0.0, 0.01, 0.1, 1.0, 100.0, 1e4],
}


@st.composite
def cases(draw):
    n = draw(st.sampled_from([0, 1, 2, 2, 3, 3, 4, 4, 4]))
    step = draw(st.sampled_from([1, 50, 100]))
    lots = draw(st.integers(0, {0: 12, 1: 12, 2: 12, 3: 9, 4: 7}[n]))
    if step == 1:
        order_size = draw(st.integers(0, {0: 12, 1: 40, 2: 40, 3: 20, 4: 12}[n]))
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


# Cases hypothesis once found against broken variants of the allocator.
REGRESSIONS = [
    dict(
        order_size=300,
        ask=[-0.25, -0.25, -0.25],
        size=[50, 601, 0],
        fee=[fee, 0.0, 0.0],
        rebate=[0.0] * 3,
        lo=0.0,
        lu=0.0,
        theta=0.0,
        step=50,
        cap="displayed",
        include_cap=True,
    )
    for fee in (0.0, 0.002)
]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), fast=st.booleans())
@example(case=REGRESSIONS[0], fast=False)
@example(case=REGRESSIONS[1], fast=False)
def test_matches_brute_force(case, fast):
    best, first, clear = brute_force(**case)
    split, cost = solve(**case, fast=fast)
    if first is None:
        assert (split, cost) == (None, math.inf)
        return
    assert split is not None
    assert split in enumerate_splits(
        case["order_size"], case["size"], case["step"], case["cap"], case["include_cap"]
    )
    scale = cost_scale(
        case["order_size"],
        case["ask"],
        case["fee"],
        case["rebate"],
        case["lo"],
        case["lu"],
        case["theta"],
    )
    assert math.isclose(cost, best, rel_tol=1e-9, abs_tol=1e-9 * scale)
    if clear:
        assert split == first


@settings(max_examples=200, deadline=None)
@given(
    case=cases(),
    penalties=st.tuples(*[st.one_of(st.sampled_from(PALETTES["penalty"]), penalties)] * 3),
)
def test_penalties_cannot_change_a_displayed_split(case, penalties):
    case.update(cap="displayed")
    split, cost = solve(**case, fast=True)
    case.update(zip(("lo", "lu", "theta"), penalties, strict=True))
    assert solve(**case, fast=True) == (split, cost)


@settings(max_examples=100, deadline=None)
@given(case=cases())
def test_allocate_is_allocate_arrays_on_the_grid(case):
    venues = [
        Venue(*v) for v in zip(case["ask"], case["size"], case["fee"], case["rebate"], strict=True)
    ]
    split, cost = allocate(
        case["order_size"],
        venues,
        case["lo"],
        case["lu"],
        case["theta"],
        step=case["step"],
        cap=case["cap"],
    )
    case.update(include_cap=False)
    expected_split, expected_cost = solve(**case, fast=True)
    assert (split, cost) == (list(expected_split or []), expected_cost)


def venues(asks, sizes, fee=0.0, rebate=0.0):
    return [Venue(a, s, fee, rebate) for a, s in zip(asks, sizes, strict=True)]


@pytest.mark.parametrize(("cap", "lambda_under"), [("displayed", 0.0), ("order", 100.0)])
def test_exact_ties_go_to_the_lexicographically_smallest_split(cap, lambda_under):
    # Every split of 300 over two 10.0 asks costs 3000.0 exactly: the first is (0, 300).
    two = venues([10.0, 10.0], [1000, 1000])
    assert allocate(300, two, 0, lambda_under, 0, cap=cap) == ([0, 300], 3000.0)
    # The cheap venue is filled (with cap "order" a large lambda_under makes every share fill);
    # the tie between the two 10.5 asks goes to the later one.
    three = venues([10.5, 10.0, 10.5], [500, 200, 500])
    assert allocate(600, three, 0, lambda_under, 0, cap=cap) == ([0, 200, 400], 6200.0)


def test_exact_ties_with_include_cap():
    # 250 shares over two 10.0 asks: (0, 250), (100, 150), (200, 50), (250, 0) tie at 2500.0.
    split, cost = allocate_arrays(
        250,
        np.array([10.0, 10.0]),
        np.array([1000, 1000]),
        np.zeros(2),
        np.zeros(2),
        0,
        0,
        0,
        include_cap=True,
    )
    assert split.tolist() == [0, 250] and cost == 2500.0


def test_include_cap_reaches_off_grid_orders_and_odd_lots():
    ask, fee, rebate = np.array([10.0, 10.5]), np.zeros(2), np.zeros(2)
    size = np.array([137, 1000])
    # Literal: 4,937 is off the grid, so no split exists.
    assert allocate_arrays(4937, ask, size, fee, rebate, 0, 0, 0) == (None, math.inf)
    # Cap "order", no penalties: unfilled shares are free, so post where least fills (137 shares).
    split, cost = allocate_arrays(
        4937, ask, size, fee, rebate, 0, 0, 0, cap="order", include_cap=True
    )
    assert split.tolist() == [4937, 0] and cost == 1370.0
    # Displayed: take the odd lot of 137 at 10.0, then the rest, 863, at 10.5.
    split, cost = allocate_arrays(1000, ask, size, fee, rebate, 0, 0, 0, include_cap=True)
    assert split.tolist() == [137, 863] and cost == 137 * 10.0 + 863 * 10.5


def test_include_cap_is_not_greedy():
    # Cheaper venue 2 cannot take 150 after venue 1 takes 50: venue 1's candidates are 0, 100, ..
    # and 1000, so the best split of 200 is (100, 100), not the greedy (50, 150).
    split, cost = allocate_arrays(
        200,
        np.array([11.0, 10.0]),
        np.array([1000, 150]),
        np.zeros(2),
        np.zeros(2),
        0,
        0,
        0,
        include_cap=True,
    )
    assert split.tolist() == [100, 100] and cost == 2100.0


def test_negative_prices_with_odd_lots():
    # Asks below the reference (crossed venues, cost_basis "mid"): taking more is cheaper. The
    # odd lot of 950 cannot be taken whole from 150 shares: venue 1 takes all at -2.0.
    split, cost = allocate_arrays(
        150,
        np.array([-2.0, -1.0]),
        np.array([1000, 950]),
        np.zeros(2),
        np.zeros(2),
        0,
        0,
        0,
        include_cap=True,
    )
    assert split.tolist() == [150, 0] and cost == -300.0


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize(("cap", "include_cap"), [("displayed", False), ("order", True)])
def test_tiny_real_price_differences_are_not_ties(fast, cap, include_cap):
    # 1e-8 dollars a share apart: a real difference (1e-9 of the cost), not float noise.
    case = dict(
        order_size=100,
        ask=[10.0, 10.0 + 1e-8],
        size=[1000, 1000],
        fee=[0.0] * 2,
        rebate=[0.0] * 2,
        lo=0.0,
        lu=100.0,
        theta=0.0,
        step=100,
        cap=cap,
        include_cap=include_cap,
    )
    assert solve(**case, fast=fast)[0] == (100, 0)
    case.update(ask=[10.0 + 1e-8, 10.0])
    assert solve(**case, fast=fast)[0] == (0, 100)


@pytest.mark.parametrize("include_cap", [False, True])
def test_infeasible_splits_are_empty_with_infinite_cost(include_cap):
    few = venues([10.0, 10.5], [100, 150])
    assert allocate(250, few, 0, 0, 0) == ([], math.inf)  # off the grid
    assert allocate(300, few, 0, 0, 0) == ([], math.inf)  # 100 + 100 lots displayed
    assert allocate(300, [], 0, 0, 0) == ([], math.inf)  # no venues
    ask, size, fee = np.array([10.0, 10.5]), np.array([100, 150]), np.zeros(2)
    split, cost = allocate_arrays(251, ask, size, fee, fee, 0, 0, 0, include_cap=include_cap)
    assert (split, cost) == (None, math.inf)  # 250 displayed


def test_zero_order_and_zero_sizes():
    assert allocate(0, venues([10.0, 10.5], [0, 100]), 1, 1, 1) == ([0, 0], 0.0)
    assert allocate(0, [], 1, 1, 1) == ([], 0.0)  # the enumeration's empty split has sum 0
    assert allocate(100, venues([9.0, 10.0], [0, 100]), 0, 0, 0) == ([0, 100], 1000.0)
    # With cap "order" a venue showing nothing can still take posted shares.
    split, cost = allocate(100, venues([9.0, 10.0], [0, 100], rebate=0.5), 0, 0, 0, cap="order")
    assert (split, cost) == ([100, 0], -50.0)


def test_penalties_decide_between_taking_and_posting_with_cap_order():
    book = venues([222.8, 222.82, 222.81], [200, 500, 300], fee=0.003, rebate=0.002)
    # Cheap to leave shares unfilled: take as little as possible (the smallest displayed size).
    assert allocate(1000, book, 0, 0.01, 0.01, cap="order")[0] == [1000, 0, 0]
    # Expensive to leave shares unfilled: take every displayed share.
    assert allocate(1000, book, 0, 1000.0, 0.0, cap="order")[0] == [200, 500, 300]
    # With cap "displayed" the penalties change nothing: cheapest first.
    for lambda_under in (0.0, 1000.0):
        assert allocate(1000, book, 0, lambda_under, 0.0)[0] == [200, 500, 300]
        assert allocate(700, book, 0, lambda_under, 0.0)[0] == [200, 200, 300]


def test_mid_basis_trade_off():
    # Asks measured from the mid: taking costs the half-spread + fee, posting earns the rebate.
    book = venues([0.01, 0.02], [300, 1000], fee=0.003, rebate=0.002)
    assert allocate(500, book, 0, 0.001, 0.0, cap="order")[0] == [500, 0]  # post the rest
    assert allocate(500, book, 0, 0.05, 0.0, cap="order")[0] == [300, 200]  # take all shown


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("include_cap", [False, True])
def test_realistic_sizes_against_brute_force(seed, include_cap):
    # 5,000 shares (4,937 with include_cap) in lots of 100 over three venues, asks from the mid.
    rng = np.random.default_rng(seed)
    case = dict(
        order_size=4937 if include_cap else 5000,
        ask=rng.uniform(-0.01, 0.05, 3).tolist(),
        size=rng.integers(100, 2000, 3).tolist(),
        fee=[0.003] * 3,
        rebate=[0.002] * 3,
        lo=0.01,
        lu=float(rng.uniform(0.0, 0.1)),
        theta=float(rng.uniform(0.0, 0.1)),
        step=100,
        cap="order",
        include_cap=include_cap,
    )
    best, first, clear = brute_force(**case)
    for fast in (False, True):
        split, cost = solve(**case, fast=fast)
        assert math.isclose(cost, best, rel_tol=1e-9) and (split == first or not clear)


@pytest.mark.parametrize("seed", range(5))
def test_fast_paths_and_dynamic_program_agree_on_large_books(seed):
    # Beyond the brute force's reach (8 venues, 51 lots): two exact methods must agree.
    rng = np.random.default_rng(seed)
    ask = (222.80 + rng.integers(-3, 4, 8) * 0.01).tolist()  # cash basis: concave with cap order
    size = np.clip(rng.integers(1, 21, 8) * 100 + rng.choice([0, 37, 63], 8), 100, 2000).tolist()
    case = dict(
        order_size=5000,
        ask=ask,
        size=size,
        fee=[0.003] * 8,
        rebate=[0.002] * 8,
        lo=0.01,
        lu=0.05,
        theta=0.02,
        step=100,
    )
    for cap, include_cap in (("order", False), ("order", True), ("displayed", False)):
        fast = solve(**case, cap=cap, include_cap=include_cap, fast=True)
        slow = solve(**case, cap=cap, include_cap=include_cap, fast=False)
        assert fast[0] == slow[0] and math.isclose(fast[1], slow[1], rel_tol=1e-12)


def test_all_displayed_shares_have_one_split():
    ask, size, zeros = np.array([10.5, 10.0, 11.0]), np.array([137, 250, 63]), np.zeros(3)
    split, cost = allocate_arrays(450, ask, size, zeros, zeros, 0, 0, 0, include_cap=True)
    assert split.tolist() == [137, 250, 63] and cost == 137 * 10.5 + 2500.0 + 63 * 11.0
    case = dict(
        order_size=450,
        ask=ask.tolist(),
        size=size.tolist(),
        fee=[0.0] * 3,
        rebate=[0.0] * 3,
        lo=0.0,
        lu=0.0,
        theta=0.0,
        step=100,
        cap="displayed",
        include_cap=True,
    )
    assert solve(**case, fast=False) == ((137, 250, 63), cost)


@pytest.mark.parametrize("fast", [False, True])
def test_odd_lots_move_the_remainder_across_residues(fast):
    # Each odd lot taken whole shifts the remainder mod 100; the best split needs two of them.
    case = dict(
        order_size=487,
        ask=[10.0, 10.0, 10.5, 11.0],
        size=[137, 250, 900, 900],
        fee=[0.0] * 4,
        rebate=[0.0] * 4,
        lo=0.0,
        lu=0.0,
        theta=0.0,
        step=100,
        cap="displayed",
        include_cap=True,
    )
    best, first, clear = brute_force(**case)
    assert clear and first == (137, 250, 100, 0)
    assert solve(**case, fast=fast) == (first, best)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(order_size=-1), r"`order_size >= 0` must hold, but got order_size=-1\."),
        (dict(step=0), r"`step > 0` must hold, but got step=0\."),
        (dict(cap="orders"), r"`cap` must be one of .*Did you mean 'order'\?"),
        (dict(ask_size=np.array([100, -5])), r"`ask_size >= 0` must hold, .*ask_size\[1\]=-5"),
        (dict(ask_size=np.array([100.5, 5])), r"`ask_size` must hold whole shares"),
        (dict(ask=np.array([10.0, np.nan])), r"`ask` must be finite, but got ask\[1\]=nan"),
        (dict(fee=np.array([np.inf, 0.0])), r"`fee` must be finite"),
        (dict(theta_queue=math.nan), r"`theta_queue` must be finite"),
        (
            dict(rebate=np.zeros(3)),
            r"`len\(ask\) == len\(ask_size\) == .* but got lengths 2, 2, 2, 3\.",
        ),
        (dict(fee=np.zeros((2, 1))), r"`fee` must be 1-D, but got shape \(2, 1\)"),
    ],
)
def test_invalid_inputs_are_rejected_with_the_rule(kwargs, message):
    args = dict(
        order_size=100,
        ask=np.array([10.0, 10.5]),
        ask_size=np.array([100, 100]),
        fee=np.zeros(2),
        rebate=np.zeros(2),
        lambda_over=0.0,
        lambda_under=0.0,
        theta_queue=0.0,
    )
    args.update(kwargs)
    order_size = args.pop("order_size")
    with pytest.raises(ValueError, match=message):
        allocate_arrays(order_size, **args)


def test_non_integer_order_size_is_a_type_error():
    with pytest.raises(TypeError, match="`order_size` must be an int"):
        allocate(100.0, venues([10.0], [100]), 0, 0, 0)
