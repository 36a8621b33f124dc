"""The full Cont & Kukanov order placement model: a market order and limit orders over a horizon.

R. Cont and A. Kukanov, "Optimal order placement in limit order markets", Quantitative Finance
17(1), 2017; the formulas are restated in docs/cont-kukanov-router.md §3. At a decision the
router buys S shares by a horizon T: a market order M now and a limit buy L_k at each venue's best
bid, behind Q_k shares. xi_k, the volume that leaves the front of venue k's bid queue over T, is
random; the allocator minimizes the sample average of the paper's cost (5) over samples of xi by
robust stochastic approximation (paper §4) and returns the averaged iterate.

Everything here is a pure function of numbers and arrays; the compiled inner loops take plain
arrays so that a decision at every few seconds of a day stays cheap inside a sweep (the paper
quotes under 200 ms for 12 venues and 1,000 iterations; `bench/cont_kukanov.py` measures this).

Costs are dollars per share measured from the mid: a market order costs h + f, a filled limit
order earns h + r_k. The assumptions of the paper's §2.6 (A1 h + min r > 0, A2 lambda_o > h +
max r, A3 lambda_u > h + f) make the optimum lie in the set C that the solver projects onto;
`assumptions_hold` tells whether a parameter set meets them.

Compiled twin and reference: `_stochastic_approximation` is the compiled solver loop and its
`.py_func` the same loop as plain Python; `bench/cont_kukanov.py` times both and checks that they
give the same answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = [
    "Placement",
    "PlacementProblem",
    "assumptions_hold",
    "expected_cost",
    "one_venue_closed_form",
    "solve",
]


@dataclass(frozen=True, eq=False)
class PlacementProblem:
    """One decision of the Cont & Kukanov model (paper §2), in dollars per share from the mid.

    Attributes:
        shares: S, shares to buy by the horizon (> 0).
        half_spread: h.
        fee: f, fee per share of the market order.
        rebates: float64[K], r_k, rebate per share filled passively at venue k.
        queues: float64[K], Q_k, shares ahead of a new limit order at venue k's best bid.
        outflows: float64[n, K], samples xi^n of the queue outflows over the horizon, jointly
            across venues (one row per past window).
        lambda_under: lambda_u, penalty per share short of S at the horizon.
        lambda_over: lambda_o, penalty per share beyond S.
        theta: market-impact charge per share submitted (and per catch-up share).
    """

    shares: float
    half_spread: float
    fee: float
    rebates: np.ndarray
    queues: np.ndarray
    outflows: np.ndarray
    lambda_under: float
    lambda_over: float
    theta: float

    @property
    def n_venues(self) -> int:
        """K, the number of venues a limit order may go to."""
        return len(self.rebates)


@dataclass(frozen=True)
class Placement:
    """A decision X = (M, L_1..L_K) in shares (real-valued; the router rounds to whole shares)."""

    market: float
    limits: np.ndarray


def assumptions_hold(problem: PlacementProblem) -> bool:
    """Whether the paper's assumptions A1-A3 (§2.6) hold, under which the optimum lies in C."""
    h, r = problem.half_spread, problem.rebates
    if problem.n_venues == 0:
        return problem.lambda_under > h + problem.fee
    return bool(
        h + r.min() > 0
        and problem.lambda_over > h + r.max()
        and problem.lambda_under > h + problem.fee
    )


@njit(cache=True)
def _sample_cost(
    market: float,
    limits: np.ndarray,
    xi: np.ndarray,
    shares: float,
    h: float,
    f: float,
    rebates: np.ndarray,
    queues: np.ndarray,
    lu: float,
    lo: float,
    theta: float,
) -> float:
    """v(X, xi) of the paper's equation (5) for one outflow sample."""
    filled = market
    cost = (h + f) * market
    submitted = market
    for k in range(len(limits)):
        fill = min(max(xi[k] - queues[k], 0.0), limits[k])
        filled += fill
        cost -= (h + rebates[k]) * fill
        submitted += limits[k]
    short = max(shares - filled, 0.0)
    over = max(filled - shares, 0.0)
    return cost + theta * (submitted + short) + lu * short + lo * over


@njit(cache=True)
def _average_cost(
    market: float,
    limits: np.ndarray,
    outflows: np.ndarray,
    shares: float,
    h: float,
    f: float,
    rebates: np.ndarray,
    queues: np.ndarray,
    lu: float,
    lo: float,
    theta: float,
) -> float:
    total = 0.0
    for n in range(outflows.shape[0]):
        total += _sample_cost(
            market, limits, outflows[n], shares, h, f, rebates, queues, lu, lo, theta
        )
    average: float = total / outflows.shape[0]
    return average


@njit(cache=True)
def _market_at(y: np.ndarray, order: np.ndarray, shares: float, mu: float) -> float:
    """M of the projection of (y + mu) onto {M >= 0, 0 <= L_k <= S - M}.

    For a fixed M the nearest L_k is clip(y_k + mu, 0, S - M), so M solves
    M + sum_k max(M - b_k, 0) = y_0 + mu with b_k = S - y_k - mu, a piecewise linear equation
    walked along the b_k in ascending order (`order`, the venues by descending y_k).
    """
    target: float = y[0] + mu
    active, sum_b = 0, 0.0
    for j in range(len(order)):
        b: float = shares - y[order[j] + 1] - mu
        candidate = (target + sum_b) / (1 + active)
        if candidate <= b:
            return min(max(candidate, 0.0), shares)
        active += 1
        sum_b += b
    return min(max((target + sum_b) / (1 + active), 0.0), shares)


@njit(cache=True)
def _total_at(y: np.ndarray, order: np.ndarray, shares: float, mu: float) -> tuple[float, float]:
    """(M + sum_k L_k, M) of the box projection of (y + mu); the sum is non-decreasing in mu."""
    market = _market_at(y, order, shares, mu)
    total = market
    for k in range(len(order)):
        total += min(max(y[k + 1] + mu, 0.0), shares - market)
    return total, market


@njit(cache=True)
def _project(x: np.ndarray, shares: float) -> None:
    """`_project_into` with buffers of its own and no guess."""
    _project_into(x, shares, np.empty(len(x)), np.arange(max(len(x) - 1, 0)))


@njit(cache=True)
def _project_into(
    x: np.ndarray,
    shares: float,
    y: np.ndarray,
    order: np.ndarray,
    guess: float = 0.0,
    step: float = 0.0,
) -> float:
    """Euclidean projection of X = (M, L) onto C (paper, Proposition 1), in place; returns mu.

    C = {0 <= M <= S, 0 <= L_k <= S - M, M + sum_k L_k >= S}. By the KKT conditions the
    projection is that of X + mu (every coordinate shifted by mu >= 0, the multiplier of the sum
    constraint) onto the box-like set {M >= 0, 0 <= L_k <= S - M}, with mu = 0 when the sum
    holds there and otherwise the least mu making it hold: the root of a continuous,
    non-decreasing, piecewise linear function of mu. It is found by regula falsi with the
    Illinois rule inside a bracket that only shrinks (a secant step lands on the root once the
    bracket lies on one linear piece), to float precision of the sum (1e-14 * S) or a bracket of
    1e-13 * S, whichever comes first; mu is the bracket's upper end, where the sum holds.

    The bracket: with a `guess` > 0 (the previous iterate's mu: the solver's steps are small, so
    the root moves little), from the guess outwards in steps of `step`, doubled until the sign
    changes (typically one or two evaluations, and a bracket on one linear piece); without one,
    [0, S + max |X|].

    `y` (float64[K + 1]) and `order` (int64[K], a permutation of 0..K-1: the venues by
    descending y_k of the previous call, re-sorted here) are scratch space.
    """
    k_count = len(x) - 1
    if k_count == 0:
        x[0] = shares
        return 0.0
    for j in range(k_count + 1):
        y[j] = x[j]
    # the venues by descending y_k: insertion sort from the previous call's order, nearly
    # sorted already (ties in any order give the same projection, to the bit: tied venues
    # enter `_market_at` with equal values)
    for i in range(1, k_count):
        k = order[i]
        pos = i
        while pos > 0 and y[order[pos - 1] + 1] < y[k + 1]:
            order[pos] = order[pos - 1]
            pos -= 1
        order[pos] = k
    scale = max(shares, 1.0)
    mu = 0.0
    low, high = 0.0, -1.0  # high < 0: no upper end yet
    f_low = f_high = 0.0
    # M at the upper end and at mu = 0, from the evaluations that found them (M at the root
    # is one of the two: not computed again)
    m_high = m_zero = 0.0
    if guess > 0:
        step = max(step, 1e-12 * scale)
        f_guess, m_guess = _total_at(y, order, shares, guess)
        f_guess -= shares
        if f_guess >= 0:
            high, f_high, m_high = guess, f_guess, m_guess
            probe = guess - step
            while True:
                if probe <= 0:
                    f_low, m_zero = _total_at(y, order, shares, 0.0)
                    low, f_low = 0.0, f_low - shares
                    break
                f_probe, m_probe = _total_at(y, order, shares, probe)
                f_probe -= shares
                if f_probe < 0:
                    low, f_low = probe, f_probe
                    break
                high, f_high, m_high = probe, f_probe, m_probe
                step *= 2
                probe = high - step
        else:
            low, f_low = guess, f_guess
            reach = 0.0
            for j in range(k_count + 1):
                reach = max(reach, abs(y[j]))
            ceiling = shares + reach
            probe = guess + step
            while True:
                if probe >= ceiling:
                    f_high, m_high = _total_at(y, order, shares, ceiling)
                    high, f_high = ceiling, f_high - shares
                    break
                f_probe, m_probe = _total_at(y, order, shares, probe)
                f_probe -= shares
                if f_probe >= 0:
                    high, f_high, m_high = probe, f_probe, m_probe
                    break
                low, f_low = probe, f_probe
                step *= 2
                probe = low + step
    else:
        f_low, m_zero = _total_at(y, order, shares, 0.0)
        f_low -= shares
        if f_low < 0:
            reach = 0.0
            for j in range(k_count + 1):
                reach = max(reach, abs(y[j]))
            high = shares + reach
            f_high, m_high = _total_at(y, order, shares, high)
            f_high -= shares
    market = m_zero  # mu = 0: the sum holds at 0, evaluated on every path that gets here
    if f_low < 0 and high >= 0:
        kept = 0  # which end the last step kept: -1 low, +1 high, 0 none yet
        if f_high <= 1e-14 * scale:
            kept = 2  # the upper end is the root already
        while kept != 2:
            mid = 0.5 * (low + high)
            if f_high > f_low:
                secant = high - f_high * (high - low) / (f_high - f_low)
                if low < secant < high:
                    mid = secant
            f_mid, m_mid = _total_at(y, order, shares, mid)
            f_mid -= shares
            if f_mid >= 0:
                high, f_high, m_high = mid, f_mid, m_mid
                if f_mid <= 1e-14 * scale:
                    break
                if kept == -1:
                    f_low *= 0.5  # Illinois: the low end was kept twice
                kept = -1
            else:
                low, f_low = mid, f_mid
                if kept == 1:
                    f_high *= 0.5
                kept = 1
            if high - low <= 1e-13 * scale:
                break
        mu = high
        market = m_high
    x[0] = market
    for k in range(k_count):
        x[k + 1] = min(max(y[k + 1] + mu, 0.0), shares - x[0])
    return mu


@njit(cache=True)
def _same(a: float, b: float) -> bool:
    """Whether two floats have the same bits (NaN: never; 0.0 and -0.0 differ)."""
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@njit(cache=True)
def _signs(xi: np.ndarray, queues: np.ndarray, x: np.ndarray, short_over: int) -> int:
    """The signs a solver step's gradient takes at X for the sample xi, as a bit mask: bits 0-1
    `short_over` (1 short, 2 over, 0 neither), bit k + 2 venue k's sample above Q_k + L_k; for
    at most `_KEY_VENUES` venues."""
    key = short_over
    for k in range(len(queues)):
        if xi[k] > queues[k] + x[k + 1]:
            key |= 1 << (k + 2)
    return key


#: Steps remembered as leaving an iterate where it is (`_stochastic_approximation`).
_STILL_KEYS = 8
#: Venues whose gradient signs fit the bit mask of a step (bits 2..62 of an int64); with more,
#: no step is remembered.
_KEY_VENUES = 61


@njit(cache=True, nogil=True)
def _stochastic_approximation(
    shares: float,
    h: float,
    f: float,
    rebates: np.ndarray,
    queues: np.ndarray,
    outflows: np.ndarray,
    draws: np.ndarray,
    lu: float,
    lo: float,
    theta: float,
    start: np.ndarray,
    out: np.ndarray,
) -> int:
    """Robust stochastic approximation (paper §4): X_n = P_C(X_{n-1} - gamma g(X_{n-1}, xi^n)).

    `draws` picks the sample used at each iteration; `out` receives the mean of X_1..X_N.
    Returns the number of projections computed.

    A step depends on the sample only through the gradient's signs: whether the fills are
    short of S, over it or neither, and which venues' samples exceed Q_k + L_k. Its result is a
    function of the iterate, the multiplier mu it carries into the next projection and those
    signs (the venues' sort order too, but only up to ties, which give the same bits). Once a
    step leaves (X, mu) bit for bit where they were, a later step from the same (X, mu) with
    the same signs would too: it is not computed again, and X_n = X_{n-1} is added to the
    mean as it would have been. The result is the same to the last bit. On the generated
    MBP-10 day's decisions about a third of the steps are such repeats (the iterate settles on
    a corner of C); on the real 12-venue day about 6%. The signs are read only while the
    iterate stands still, so a step that moves costs one comparison more.
    """
    k_count = len(rebates)
    n_iter = len(draws)
    penalty = lu + lo
    norm = (h + f + theta + penalty) ** 2
    for k in range(k_count):
        norm += (h + rebates[k] + theta + penalty) ** 2
    gamma = math.sqrt(max(k_count, 1)) * shares / math.sqrt(n_iter * norm)
    tolerance = 1e-9 * max(shares, 1.0)
    # about how far one step can move the multiplier: the largest gradient component's step
    largest = abs(h + f + theta) + lu + lo + theta
    for k in range(k_count):
        largest = max(largest, abs(h + rebates[k]) + lu + lo + theta)
    mu_step = gamma * largest
    x = start.copy()
    y = np.empty(k_count + 1)
    order = np.arange(k_count)
    mu = _project_into(x, shares, y, order)
    projections = 1
    for j in range(k_count + 1):
        out[j] = 0.0
    # the signs of the steps known to leave the current (X, mu) unchanged, as bit masks
    # (`_signs`); none are kept with more than `_KEY_VENUES` venues
    still = np.empty(_STILL_KEYS, dtype=np.int64)
    n_still = 0
    remember = k_count <= _KEY_VENUES
    step = np.empty(k_count + 1)
    for n in range(n_iter):
        xi = outflows[draws[n]]
        filled = x[0]
        for k in range(k_count):
            filled += min(max(xi[k] - queues[k], 0.0), x[k + 1])
        # the sign terms shared by every component: -(lu + theta) if short, +lo if over
        # The projection puts iterates exactly on M + L_k = S, where rounding would read
        # "short" by an ulp and push M up for good: compare with a tolerance.
        side, short_over = 0.0, 0
        if filled < shares - tolerance:
            side, short_over = -(lu + theta), 1
        elif filled > shares + tolerance:
            side, short_over = lo, 2
        if n_still > 0:  # the iterate has stood still: is this step one of those?
            key = _signs(xi, queues, x, short_over)
            repeat = False
            for i in range(n_still):
                if still[i] == key:
                    repeat = True
                    break
            if repeat:
                for j in range(k_count + 1):
                    out[j] += x[j]
                continue
        # the step goes to `step`, is projected there and becomes the iterate: the previous
        # one stays at hand for the comparison, without a copy
        mu_before = mu
        g_market = h + f + theta + side
        for k in range(k_count):
            g = theta
            if xi[k] > queues[k] + x[k + 1]:
                g += -(h + rebates[k]) + side
            step[k + 1] = x[k + 1] - gamma * g
        step[0] = x[0] - gamma * g_market
        mu = _project_into(step, shares, y, order, mu, mu_step)
        projections += 1
        unchanged = remember and _same(mu, mu_before)  # mostly mu moved: one comparison
        if unchanged:
            for j in range(k_count + 1):
                if not _same(step[j], x[j]):
                    unchanged = False
                    break
        if not unchanged:
            n_still = 0
        elif n_still < _STILL_KEYS:
            still[n_still] = _signs(xi, queues, x, short_over)
            n_still += 1
        x, step = step, x
        for j in range(k_count + 1):
            out[j] += x[j]
    for j in range(k_count + 1):
        out[j] /= n_iter
    return projections


def _arrays(problem: PlacementProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rebates = np.ascontiguousarray(problem.rebates, dtype=np.float64)
    queues = np.ascontiguousarray(problem.queues, dtype=np.float64)
    outflows = np.ascontiguousarray(problem.outflows, dtype=np.float64)
    if outflows.ndim != 2 or outflows.shape[1] != len(rebates) or len(queues) != len(rebates):
        raise ValueError(
            f"outflows must be [n, K] with K = {len(rebates)} venues, got shape {outflows.shape}"
        )
    if len(outflows) == 0:
        raise ValueError("no outflow samples: at least one past window is needed")
    return rebates, queues, outflows


def solve(problem: PlacementProblem, *, iterations: int = 1000, seed: int = 0) -> Placement:
    """The Cont & Kukanov placement by stochastic approximation (paper §4).

    Each of `iterations` steps draws one outflow sample uniformly (with replacement, from a
    generator seeded by `seed`), so the answer is reproducible. The start is the middle of C: half
    the shares at market, half spread evenly over the venues' limit orders.

    Args:
        problem: the decision's inputs.
        iterations: N, the number of stochastic gradient steps.
        seed: seeds the choice of samples.

    Returns:
        The averaged iterate, a point of C (real-valued shares).
    """
    rebates, queues, outflows = _arrays(problem)
    k_count = len(rebates)
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    draws = np.random.default_rng(seed).integers(0, len(outflows), size=iterations)
    start = np.zeros(k_count + 1)
    if k_count:  # the middle of C: half market, half spread evenly over the venues
        start[0] = problem.shares / 2
        start[1:] = problem.shares / (2 * k_count)
    else:
        start[0] = problem.shares
    out = np.empty(k_count + 1)
    _stochastic_approximation(
        float(problem.shares),
        float(problem.half_spread),
        float(problem.fee),
        rebates,
        queues,
        outflows,
        draws,
        float(problem.lambda_under),
        float(problem.lambda_over),
        float(problem.theta),
        start,
        out,
    )
    return Placement(market=float(out[0]), limits=out[1:].copy())


def expected_cost(problem: PlacementProblem, market: float, limits: np.ndarray) -> float:
    """V(X): the paper's cost (5) averaged over the problem's outflow samples, dollars."""
    rebates, queues, outflows = _arrays(problem)
    return float(
        _average_cost(
            float(market),
            np.ascontiguousarray(limits, dtype=np.float64),
            outflows,
            float(problem.shares),
            float(problem.half_spread),
            float(problem.fee),
            rebates,
            queues,
            float(problem.lambda_under),
            float(problem.lambda_over),
            float(problem.theta),
        )
    )


def one_venue_closed_form(problem: PlacementProblem) -> Placement:
    """Proposition 3 of the paper: the optimal (M, L) for one venue, F the samples' distribution.

    With F the empirical distribution function of the outflow samples and F^-1 its left inverse:
    all limit if lambda_u <= (2h + f + r) / F(Q + S) - (h + r + theta), all market if
    lambda_u >= (2h + f + r) / F(Q) - (h + r + theta), else L = F^-1((2h + f + r) /
    (lambda_u + h + r + theta)) - Q and M = S - L.
    """
    if problem.n_venues != 1:
        raise ValueError(f"the closed form is for one venue, got {problem.n_venues}")
    xi = np.sort(np.asarray(problem.outflows, dtype=np.float64)[:, 0])
    s, h, f = float(problem.shares), float(problem.half_spread), float(problem.fee)
    r, q = float(problem.rebates[0]), float(problem.queues[0])
    lu, theta = float(problem.lambda_under), float(problem.theta)

    def cdf(x: float) -> float:
        return np.searchsorted(xi, x, side="right") / len(xi)

    edge = 2 * h + f + r
    with np.errstate(divide="ignore"):
        all_limit = lu <= (edge / cdf(q + s) if cdf(q + s) > 0 else math.inf) - (h + r + theta)
        all_market = lu >= (edge / cdf(q) if cdf(q) > 0 else math.inf) - (h + r + theta)
    if all_limit:
        return Placement(market=0.0, limits=np.array([s]))
    if all_market:
        return Placement(market=s, limits=np.array([0.0]))
    level = edge / (lu + h + r + theta)
    # left inverse: the least sample x with F(x) >= level
    index = int(math.ceil(level * len(xi) - 1e-12)) - 1
    quantile = xi[min(max(index, 0), len(xi) - 1)]
    limit = min(max(quantile - q, 0.0), s)
    return Placement(market=s - limit, limits=np.array([limit]))
