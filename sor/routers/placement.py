"""The Cont & Kukanov router: a market order and queue-aware limit orders, re-decided every T.

At each decision (the parent's arrival, then every `horizon_s` = T seconds) the router cancels
what still rests, and for the R shares left solves the Cont & Kukanov placement
(`sor.routers.cont_kukanov`) with inputs read from the data up to that snapshot only:

- h: half the spread between the best ask and the best bid across venues;
- f: the fee of the venue with the best ask; r_k: each venue's rebate;
- Q_k: venue k's displayed best bid size (the queue a new limit order joins);
- outflow samples: the volume that left each venue's bid queue over past windows of length T
  (`sor.execution.passive.outflow_samples`), strictly before the decision.

The market order M takes the cheapest visible asks across venues and levels at once (strict fill
model: what it took at a venue and price stays taken until that venue's best ask rises above the
price, `sor.execution.depth.TakenMemory`); limit orders L_k rest
at each venue's best bid and fill by the queue model of `sor.execution.passive` until the next
decision. A filled limit order pays its price less the venue's rebate. Once the parent is
complete every resting order is cancelled (no overfill in execution; the allocator still
prices the risk).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sor.data.snapshots import Snapshots
from sor.execution.cleanup import (
    AfterHorizon,
    ImpactModel,
    OrderLimits,
    after_horizon,
    clean_up,
    estimate_impact,
)
from sor.execution.depth import TakenMemory, shares_left, take_cheapest
from sor.execution.engine import (
    participation_allowance,
    temporary_impact_charge,
)
from sor.execution.passive import (
    QUEUE_MODELS,
    outflow_samples,
    queue_outflow,
    simulate_resting,
    trade_starts,
)
from sor.execution.venues import VenueCosts
from sor.routers import cont_kukanov
from sor.routers.cont_kukanov import PlacementProblem
from sor.vocabulary import NS_PER_S, QueueModel

__all__ = [
    "ParentFill",
    "PassiveMarket",
    "PlacementParams",
    "PlacementSettings",
    "execute_parent",
    "make_passive_market",
]


@dataclass(frozen=True)
class PlacementParams:
    """What the sweep tunes for the Cont & Kukanov router (dollars per share; seconds)."""

    lambda_over: float
    lambda_under: float
    theta_queue: float
    horizon_s: float


@dataclass(frozen=True)
class PlacementSettings:
    """Fixed settings of the Cont & Kukanov router (configuration section `placement`)."""

    iterations: int = 1000
    lookback_s: float = 120.0
    max_samples: int = 100
    queue_model: QueueModel = "conservative"
    cancel_power: float = 2.0
    seed: int = 0


@dataclass(frozen=True, eq=False)
class PassiveMarket:
    """Snapshots with what every placement run over them shares, computed once.

    Compiled twin: `sor.routers.placement_nb.ParentArrays`.
    """

    snaps: Snapshots
    costs: VenueCosts
    starts: np.ndarray  #: `trade_starts(snaps)`
    cumulative_outflow: np.ndarray  #: float64[T + 1, N], leading zero row
    impact: ImpactModel  #: prices what a clean-up cannot take from the data


def make_passive_market(
    snaps: Snapshots, costs: VenueCosts, impact: ImpactModel | None = None
) -> PassiveMarket:
    """Precompute trade row starts and cumulative queue outflow for `snaps`.

    `impact`: the clean-up's impact model when the caller has it (estimated from `snaps`
    otherwise).
    """
    outflow = queue_outflow(snaps)
    cumulative = np.zeros((len(snaps) + 1, snaps.n_venues))
    np.cumsum(outflow, axis=0, out=cumulative[1:])
    if impact is None:
        impact = estimate_impact(snaps)
    return PassiveMarket(snaps, costs, trade_starts(snaps), cumulative, impact)


@dataclass
class ParentFill:
    """How one parent order was executed.

    Attributes:
        total_cash: dollars paid for the shares filled (fees paid, rebates earned).
        market_shares: float64[N], shares taken at each venue by market orders.
        passive_shares: float64[N], shares filled at each venue by resting limit orders.
        cleanup_shares: shares left unfilled at the horizon, bought by the clean-up.
        completed_cash: total_cash plus the clean-up's cost.
        decisions: number of allocation decisions made.
        posted_shares: float64[N], shares posted at each venue by limit orders.
        cleanup_taken_shares: of `cleanup_shares`, those taken from the depth after the horizon.
        cleanup_impact_shares: of `cleanup_shares`, those priced by the impact model.
        market_volume: shares the market traded from the arrival through the last row at which
            the order filled (a resting order's fills count at the end of its resting period).
    """

    total_cash: float
    market_shares: np.ndarray
    passive_shares: np.ndarray
    cleanup_shares: int
    completed_cash: float
    decisions: int
    posted_shares: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cleanup_taken_shares: int = 0
    cleanup_impact_shares: int = 0
    market_volume: int = 0


def _take(
    pm: PassiveMarket, row: int, shares: int, memory: TakenMemory
) -> tuple[np.ndarray, float]:
    """Buy up to `shares` at the cheapest visible asks of `row`, across venues and levels
    (strict fill model). Returns (shares per venue, dollars paid with fees)."""
    snaps, fee = pm.snaps, pm.costs.fee
    prices, sizes = snaps.ask_ladder()
    left = shares_left(prices[row], sizes[row], memory, snaps.ask_px, row)
    bought, cash = take_cheapest(shares, prices[row], left, snaps.venues, fee, memory)
    return bought.astype(np.float64), cash


def _problem(
    pm: PassiveMarket, row: int, shares: int, params: PlacementParams, settings: PlacementSettings
) -> tuple[PlacementProblem, np.ndarray] | tuple[None, None]:
    """The placement problem at `row` for `shares`, and the venue columns it posts to."""
    snaps, costs = pm.snaps, pm.costs
    ask, bid = snaps.ask_px[row], snaps.bid_px[row]
    has_ask, has_bid = np.isfinite(ask), np.isfinite(bid) & (snaps.bid_sz[row] > 0)
    if not has_ask.any() or not has_bid.any():
        return None, None
    best = int(np.flatnonzero(has_ask)[np.argmin(ask[has_ask])])
    half_spread = max((ask[best] - bid[has_bid].max()) / 2, 0.0)
    posts = np.flatnonzero(has_bid)
    horizon_ns = int(params.horizon_s * NS_PER_S)
    samples = outflow_samples(
        snaps.ts,
        pm.cumulative_outflow,
        int(snaps.ts[row]),
        horizon_ns,
        int(settings.lookback_s * NS_PER_S),
        settings.max_samples,
    )
    if len(samples) == 0:
        return None, None
    problem = PlacementProblem(
        shares=float(shares),
        half_spread=float(half_spread),
        fee=float(costs.fee[best]),
        rebates=costs.rebate[posts],
        queues=snaps.bid_sz[row, posts].astype(np.float64),
        outflows=samples[:, posts],
        lambda_under=params.lambda_under,
        lambda_over=params.lambda_over,
        theta=params.theta_queue,
    )
    return problem, posts


def _round_placement(market: float, limits: np.ndarray, shares: int) -> tuple[int, np.ndarray]:
    """Whole shares: limits rounded, the market order rounded and raised to keep M + sum L >= R."""
    lim = np.rint(np.clip(limits, 0, shares)).astype(np.int64)
    m = int(min(max(round(market), 0), shares))
    if m + lim.sum() < shares:
        m = int(shares - lim.sum())
    return m, np.minimum(lim, shares - m)


def execute_parent(
    pm: PassiveMarket,
    first: int,
    last: int,
    size: int,
    params: PlacementParams,
    settings: PlacementSettings,
    decisions_log: list[tuple[int, int, np.ndarray]] | None = None,
    *,
    max_participation: float | None = None,
    temporary_impact: float | None = None,
    after: AfterHorizon | None = None,
) -> ParentFill:
    """Execute one parent order of `size` shares over rows first..last with the C&K router.

    Compiled twin: `sor.routers.placement_nb._execute_parent_nb`, which calls
    `sor.routers.placement_nb._parent_nb` with the market's arrays.

    Where a decision has no outflow sample yet (no past window of length T) or no venue shows
    both sides, the router sends a market order for everything left.

    Args:
        pm: the market with its queue-model inputs.
        first, last: the parent order's snapshot rows (inclusive).
        size: shares to buy.
        params: lambda_over, lambda_under, theta_queue and the horizon T.
        settings: the router's fixed settings.
        decisions_log: if given, gets (row, market shares, limit shares per venue) per decision.
        max_participation: None, or the participation cap of the market orders: M is cut to
            `sor.execution.engine.participation_allowance` (passive fills count as filled).
        temporary_impact: None, or Y of the temporary impact on the market orders' cash
            (`sor.execution.engine.temporary_impact_charge`).
        after: the data the clean-up may take from (None: every row after `last`, priced by
            `pm.impact` beyond them).
    """
    snaps, costs = pm.snaps, pm.costs
    n = snaps.n_venues
    if not params.horizon_s > 0:
        raise ValueError(f"horizon_s must be > 0, got {params.horizon_s}")
    model = QUEUE_MODELS[settings.queue_model]
    horizon_ns = int(params.horizon_s * NS_PER_S)
    memory = TakenMemory(n)
    if after is None:
        after = after_horizon(snaps, costs, last + 1, pm.impact)
    charge = temporary_impact_charge(after.impact, temporary_impact)
    market_shares, passive_shares, posted = np.zeros(n), np.zeros(n), np.zeros(n)
    remaining, cash, decisions = size, 0.0, 0
    last_fill_row = -1
    row = first
    while remaining > 0 and row <= last:
        decisions += 1
        next_row = int(np.searchsorted(snaps.ts, snaps.ts[row] + horizon_ns, side="left"))
        next_row = max(next_row, row + 1)
        problem, posts = _problem(pm, row, remaining, params, settings)
        limits = np.zeros(n, dtype=np.int64)
        if problem is None:
            m = remaining
        else:
            x = cont_kukanov.solve(
                problem, iterations=settings.iterations, seed=settings.seed + row
            )
            m, lim = _round_placement(x.market, x.limits, remaining)
            limits[posts] = lim
        if decisions_log is not None:
            decisions_log.append((row, m, limits.copy()))
        if max_participation is not None:
            traded = int(snaps.trade_volume[first : row + 1].sum())
            m = min(m, max(participation_allowance(max_participation, traded, size - remaining), 0))
        if m > 0:
            bought, spent = _take(pm, row, m, memory)
            spent *= 1.0 + charge * math.sqrt(float(bought.sum()))
            market_shares += bought
            cash += spent
            remaining -= int(bought.sum())
            if bought.any():
                last_fill_row = row
        end = min(next_row, last)
        if remaining > 0 and limits.any() and end > row:
            price = np.where(limits > 0, snaps.bid_px[row], np.nan)
            ahead = snaps.bid_sz[row].astype(np.float64)
            fills = np.zeros(n)
            simulate_resting(
                snaps.bid_px,
                snaps.bid_sz,
                pm.starts,
                snaps.trade_col,
                snaps.trade_px,
                snaps.trade_sz,
                snaps.trade_side,
                row + 1,
                end,
                price,
                ahead,
                limits.astype(np.float64),
                float(remaining),
                model,
                settings.cancel_power,
                fills,
            )
            posted += limits
            got = fills > 0
            # summed venue by venue in column order (the compiled twin's order, to the last bit)
            passive_cash = 0.0
            for j in np.flatnonzero(got):
                passive_cash += float(fills[j]) * float(snaps.bid_px[row, j] - costs.rebate[j])
            cash += passive_cash
            passive_shares += fills
            remaining -= int(round(fills.sum()))
            if got.any():
                last_fill_row = max(last_fill_row, end)
        row = next_row
    memory.forget_through(snaps.ask_px, last)
    memory.rebase()
    traded = int(snaps.trade_volume[first : last + 1].sum())
    held_to = OrderLimits(max_participation, traded, size - remaining, charge)
    cleanup = clean_up(after, costs.fee, remaining, memory, held_to)
    return ParentFill(
        total_cash=cash,
        market_shares=market_shares,
        passive_shares=passive_shares,
        cleanup_shares=remaining,
        completed_cash=cash + cleanup.cash,
        cleanup_taken_shares=cleanup.taken_shares,
        cleanup_impact_shares=cleanup.impact_shares,
        market_volume=int(snaps.trade_volume[first : last_fill_row + 1].sum()),
        decisions=decisions,
        posted_shares=posted,
    )
