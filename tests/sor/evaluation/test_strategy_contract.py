"""One contract for every execution strategy: the same invariants, checked from the fills.

Strategies: best_ask, twap and vwap (`sor.evaluation.baselines`), the static router through the
Python engine (`evaluate_reference`'s path) and through the compiled kernel
(`sor.routers.static_nb`), and the Cont & Kukanov router (`sor.routers.placement.execute_parent`).
Each runs over seeded generated markets (MBP-1 and MBP-10; three and five venues; default and
per-venue fees and rebates), two order sizes, two parameter sets and both fill models where they
apply. `execute_parent` has no fill model option: it always takes liquidity under the strict model
(model.md, "Execution"), so it runs under "strict" only.

Every run is turned into a `Ledger`: the strategy's fills (snapshot row, venue column, shares,
taken or passive) recorded from the fills themselves, next to the totals the code reports:

- the engine's strategies (baselines and the Python router) through the engine's `on_fill`;
- the compiled kernel has no callback and `ExecutionResult` has only per-venue totals, so it is
  replayed on every prefix of the snapshots (rows 0..t) with its entry point `run_router_nb`. It
  never reads a row after the one it acts at (it is `execute` with `Router`), so the prefix
  ending at row t shows its cumulative fills up to row t, and the fills at row t are the
  difference between consecutive prefixes. The last prefix must give the reported result;
- the Cont & Kukanov router: spies on its market orders (`placement._take`) and on its resting
  limit orders (`placement.simulate_resting`) record the shares they filled (the spies return
  what they got, unchanged), and `decisions_log` what each decision posted.

Prices and charges come from the snapshots and `VenueCosts`, never from the code under test: a
taken share costs its snapshot's ask plus the venue's fee, a passive share the venue's best bid at
the decision that posted it less the venue's rebate (docs/cont-kukanov-router.md §2-§3).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pytest

from sor.config import Config
from sor.data.loader import load_snapshots
from sor.evaluation.backtest import make_market, make_router, run_strategy
from sor.evaluation.baselines import BestAsk, Twap, Vwap
from sor.evaluation.rules import evaluation_rules
from sor.execution.market import Market
from sor.routers import placement
from sor.routers.placement import (
    PlacementParams,
    PlacementSettings,
    execute_parent,
    make_passive_market,
)
from sor.routers.static import RouterParams
from sor.routers.static_nb import _arrays, _rules, evaluate_compiled, run_router_nb
from sor.synth.generate import DEFAULT_VENUES, generate

#: Relative tolerance of cash sums: the code and the test add the same products in other orders.
CASH_RTOL = 1e-12
PRICE_EPS = 1e-9  # trade prices at or below a limit price, as the queue model compares them

# Fees and rebates that differ per venue, so that charging one venue's fee for another's fill
# shows. Publisher ids absent from a market are ignored.
FEE_OVERRIDES = {
    2: {"fee": 0.0030, "rebate": 0.0020},
    9: {"fee": 0.0025, "rebate": 0.0016},
    43: {"fee": 0.0032, "rebate": 0.0027},
    5: {"fee": 0.0018, "rebate": 0.0031},
    38: {"fee": 0.0009, "rebate": 0.0},
}


@dataclass(frozen=True)
class MarketSpec:
    schema: str
    n_events: int
    seed: int
    venues: tuple
    fees: dict | None = None


MARKETS = {
    "mbp10-5venues": MarketSpec("mbp-10", 3_000, 11, DEFAULT_VENUES),
    "mbp1-5venues-fees": MarketSpec("mbp-1", 3_000, 4, DEFAULT_VENUES, FEE_OVERRIDES),
    "mbp10-3venues-fees": MarketSpec("mbp-10", 2_000, 3, DEFAULT_VENUES[:3], FEE_OVERRIDES),
    "mbp1-3venues": MarketSpec("mbp-1", 2_000, 7, DEFAULT_VENUES[1:4]),
}
SIZES = (1_250, 20_000)  # an odd-lot parent (step 100) and one larger than the book shows


@dataclass(frozen=True)
class ParamSet:
    router: RouterParams
    cap: str
    cost_basis: str
    child_sizing: str
    step: int
    twap_bucket_s: float
    horizon_s: float  # Cont & Kukanov: T
    queue_model: str
    window: tuple[float, float]  # Cont & Kukanov parent order: first and last row, share of time


PARAM_SETS = {
    # the configuration defaults for the static router
    "p1": ParamSet(
        RouterParams(lambda_over=0.4, lambda_under=0.6, theta_queue=0.3),
        cap="order",
        cost_basis="mid",
        child_sizing="available",
        step=100,
        twap_bucket_s=2.0,
        horizon_s=1.0,
        queue_model="conservative",
        window=(0.1, 1.0),
    ),
    # the task's literal loop (all remaining shares or nothing; 20,000 shares never fill)
    "p2": ParamSet(
        RouterParams(lambda_over=0.05, lambda_under=0.02, theta_queue=0.01),
        cap="displayed",
        cost_basis="cash",
        child_sizing="all_or_none",
        step=50,
        twap_bucket_s=7.0,
        horizon_s=3.0,
        queue_model="probabilistic",
        window=(0.3, 0.7),
    ),
}
FILL_MODELS = ("strict", "naive")
STRATEGIES = ("best_ask", "twap", "vwap", "static_reference", "static_compiled", "cont_kukanov")
#: Strategies without a parameter the parameter sets change run once per market, size and model.
PARAMETERLESS = ("best_ask", "vwap")


@dataclass(frozen=True)
class Case:
    strategy: str
    market: str
    size: int
    params: str
    fill_model: str

    @property
    def id(self) -> str:
        return f"{self.strategy}-{self.market}-{self.size}-{self.params}-{self.fill_model}"


CASES = [
    Case(strategy, market, size, params, fill_model)
    for strategy in STRATEGIES
    for market in MARKETS
    for size in SIZES
    for params in (("p1",) if strategy in PARAMETERLESS else PARAM_SETS)
    for fill_model in (("strict",) if strategy == "cont_kukanov" else FILL_MODELS)
]


@dataclass(frozen=True)
class Fill:
    """Shares bought at one venue column: taken at `row`'s ask, or filled passively.

    A passive fill is what a limit order posted at decision row `row` filled at some row in
    (row, end]; the queue model reports fills per resting period, not per row.
    """

    row: int
    col: int
    shares: float
    passive: bool = False
    end: int = -1


@dataclass
class Ledger:
    """A run's fills and what the code reports about them."""

    case: Case
    market: Market
    size: int
    first: int  # the parent order's first row
    last: int  # its last row: the clean-up order buys at the last ask up to here
    fills: list[Fill]
    total_cash: float
    filled_shares: float
    unfilled_shares: float
    completed_cash: float
    by_venue: np.ndarray  # float64[N], reported shares per venue column
    #: Cont & Kukanov: limit shares posted per (decision row, venue column).
    posted: dict[tuple[int, int], int] = field(default_factory=dict)
    #: Cont & Kukanov: reported shares per venue column, taken and passive apart.
    split_by_venue: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def strict(self) -> bool:
        return self.case.fill_model == "strict"


# ---------------------------------------------------------------------------------------------
# Markets and runs
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def markets(tmp_path_factory):
    """name -> Market, generated on first use."""
    made: dict[str, Market] = {}
    folder = tmp_path_factory.mktemp("contract")

    def get(name: str) -> Market:
        if name not in made:
            spec = MARKETS[name]
            path = folder / f"{name}.csv"
            generate(
                path, n_events=spec.n_events, schema=spec.schema, seed=spec.seed, venues=spec.venues
            )
            snaps, _ = load_snapshots(path)
            config = Config.model_validate({"venues": {"overrides": spec.fees or {}}})
            made[name] = make_market(snaps, evaluation_rules(config))
        return made[name]

    return get


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def run(request, markets) -> Ledger:
    """The ledger of one strategy over one market, order size, parameter set and fill model."""
    case: Case = request.param
    market = markets(case.market)
    if case.strategy == "cont_kukanov":
        return _run_cont_kukanov(case, market)
    if case.strategy == "static_compiled":
        return _run_compiled(case, market)
    return _run_engine(case, market)


def _order(case: Case):
    p = PARAM_SETS[case.params]
    return Config().order.model_copy(
        update={
            "size": case.size,
            "step": p.step,
            "cap": p.cap,
            "cost_basis": p.cost_basis,
            "child_sizing": p.child_sizing,
            "fill_model": case.fill_model,
        }
    )


def _columns(market: Market, shares_by_venue: dict) -> np.ndarray:
    """A publisher_id -> shares dict as float64[N] by venue column."""
    column = {int(v): j for j, v in enumerate(market.snaps.venues.tolist())}
    out = np.zeros(market.snaps.n_venues)
    for pid, shares in shares_by_venue.items():
        out[column[int(pid)]] += shares
    return out


def _run_engine(case: Case, market: Market) -> Ledger:
    snaps, p, order = market.snaps, PARAM_SETS[case.params], _order(case)
    strategy = {
        "best_ask": lambda: BestAsk(snaps),
        "twap": lambda: Twap(snaps, case.size, p.twap_bucket_s),
        "vwap": lambda: Vwap(snaps, case.size),
        "static_reference": lambda: make_router(market, p.router, order),
    }[case.strategy]()
    fills: list[Fill] = []

    def on_fill(t: int, shares: np.ndarray) -> None:
        fills.extend(Fill(t, int(j), float(shares[j])) for j in np.flatnonzero(shares))

    result = run_strategy(market, strategy, order, on_fill=on_fill)
    return _ledger_of_result(case, market, fills, result)


def _ledger_of_result(case: Case, market: Market, fills: list[Fill], result) -> Ledger:
    return Ledger(
        case=case,
        market=market,
        size=case.size,
        first=0,
        last=len(market.snaps) - 1,
        fills=fills,
        total_cash=result.total_cash,
        filled_shares=result.filled_shares,
        unfilled_shares=result.unfilled_shares,
        completed_cash=result.completed_cash,
        by_venue=_columns(market, result.shares_by_venue),
    )


def _run_compiled(case: Case, market: Market) -> Ledger:
    """`evaluate_compiled`, and its fills from replays of the kernel on prefixes of the rows."""
    snaps, p, order = market.snaps, PARAM_SETS[case.params], _order(case)
    result = evaluate_compiled(market, p.router, order)
    arrays = _arrays(market, order.cost_basis)
    penalties = (
        float(p.router.lambda_over),
        float(p.router.lambda_under),
        float(p.router.theta_queue),
    )
    # No fill after the reported last one: replay up to its row (all rows if it misreports it).
    last_fill = int(np.searchsorted(snaps.ts, result.last_fill_ts)) if result.filled_shares else -1
    fills: list[Fill] = []
    before = np.zeros(snaps.n_venues, dtype=np.int64)
    for t in range(last_fill + 1):
        rows = slice(0, t + 1)
        prefix = tuple(a[rows] if a.ndim == 2 else a for a in arrays)
        totals, by_venue = run_router_nb(prefix, _rules(order), penalties)
        status = totals[0]
        assert status == 0
        fills.extend(
            Fill(t, int(j), float(by_venue[j] - before[j]))
            for j in np.flatnonzero(by_venue != before)
        )
        before = by_venue.copy()
    return _ledger_of_result(case, market, fills, result)


def _run_cont_kukanov(case: Case, market: Market) -> Ledger:
    """`execute_parent` over a part of the window, its fills recorded by spies."""
    snaps, p = market.snaps, PARAM_SETS[case.params]
    ts = snaps.ts
    first, last = (int(np.searchsorted(ts, ts[0] + share * (ts[-1] - ts[0]))) for share in p.window)
    last = min(last, len(snaps) - 1)
    pm = make_passive_market(snaps, market.costs, market.levels)
    taken: list[tuple[int, np.ndarray]] = []
    resting: list[tuple[int, np.ndarray]] = []
    take, simulate = placement._take, placement.simulate_resting

    def take_spy(pm, row, shares, *state):
        bought, cash = take(pm, row, shares, *state)
        taken.append((row, bought.copy()))
        return bought, cash

    def simulate_spy(*args):
        first_row, fills = args[7], args[15]
        already = fills.copy()
        out = simulate(*args)
        resting.append((first_row - 1, fills - already))
        return out

    log: list = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(placement, "_take", take_spy)
        mp.setattr(placement, "simulate_resting", simulate_spy)
        parent = execute_parent(
            pm,
            first,
            last,
            case.size,
            PlacementParams(
                p.router.lambda_over, p.router.lambda_under, p.router.theta_queue, p.horizon_s
            ),
            PlacementSettings(iterations=200, queue_model=p.queue_model),
            decisions_log=log,
        )
    # A limit order posted at decision row r rests over rows (r, next decision or last].
    decision_rows = [int(row) for row, _, _ in log]
    ends = {
        r: min(nxt, last) for r, nxt in zip(decision_rows, decision_rows[1:] + [last], strict=True)
    }
    posted = {
        (int(row), int(j)): int(limits[j]) for row, _, limits in log for j in np.flatnonzero(limits)
    }
    fills = [Fill(row, int(j), float(b[j])) for row, b in taken for j in np.flatnonzero(b)]
    for row, got in resting:
        assert row in ends, f"limit orders rested from row {row}, where no decision was made"
        fills.extend(
            Fill(row, int(j), float(got[j]), passive=True, end=ends[row])
            for j in np.flatnonzero(got)
        )
    by_venue = parent.market_shares + parent.passive_shares
    return Ledger(
        case=case,
        market=market,
        size=case.size,
        first=first,
        last=last,
        fills=fills,
        total_cash=parent.total_cash,
        filled_shares=float(by_venue.sum()),
        unfilled_shares=parent.cleanup_shares,
        completed_cash=parent.completed_cash,
        by_venue=by_venue,
        posted=posted,
        split_by_venue=(parent.market_shares, parent.passive_shares),
    )


# ---------------------------------------------------------------------------------------------
# What the invariants are measured with, from the snapshots and the venue costs alone
# ---------------------------------------------------------------------------------------------


def fill_price(ledger: Ledger, fill: Fill) -> float:
    """Dollars per share: the ask plus the venue's fee, or (passive) the bid less the rebate."""
    snaps, costs = ledger.market.snaps, ledger.market.costs
    if fill.passive:
        return float(snaps.bid_px[fill.row, fill.col] - costs.rebate[fill.col])
    return float(snaps.ask_px[fill.row, fill.col] + costs.fee[fill.col])


def cleanup_prices(ledger: Ledger) -> np.ndarray:
    """Dollars per share a clean-up market order may pay at the last row up to `ledger.last`
    that shows an ask: the best ask plus the fee of a venue showing it (model.md, "The objective
    and the savings"). The docs do not say which venue's fee when several venues show the best
    ask (sor takes the first column's), so each of theirs is allowed."""
    snaps, costs = ledger.market.snaps, ledger.market.costs
    asks = snaps.ask_px[: ledger.last + 1]
    row = asks[np.flatnonzero(np.isfinite(asks).any(axis=1))[-1]]
    best = np.nanmin(row)
    return best + costs.fee[row == best]


def level_runs(ask_px: np.ndarray) -> np.ndarray:
    """int64[T, N]: a number per (row, venue) that is the same exactly while the ask price stays
    the same from one row to the next. An empty ask (NaN) ends a level: it equals nothing."""
    runs = np.zeros(ask_px.shape, dtype=np.int64)
    runs[1:] = np.cumsum(~(ask_px[1:] == ask_px[:-1]), axis=0)
    return runs


def displayed_violations(ledger: Ledger, *, strict: bool) -> list[str]:
    """Taken fills beyond what was displayed: at their row, and (strict) what the parent took
    at the same venue and price level since the level appeared, beyond what the row shows."""
    snaps = ledger.market.snaps
    runs = level_runs(snaps.ask_px)
    taken_at_level: dict[tuple[int, int], float] = defaultdict(float)
    problems = []
    for f in sorted((f for f in ledger.fills if not f.passive), key=lambda f: f.row):
        shown = int(snaps.ask_sz[f.row, f.col])
        if not math.isfinite(snaps.ask_px[f.row, f.col]) or f.shares > shown:
            problems.append(f"{f}: {shown} shown at ask {snaps.ask_px[f.row, f.col]}")
        key = (f.col, int(runs[f.row, f.col]))
        taken_at_level[key] += f.shares
        if strict and taken_at_level[key] > shown:
            problems.append(f"{f}: {taken_at_level[key]:g} taken at this level, {shown} shown")
    return problems


def filled_by_venue(ledger: Ledger, *, passive: bool | None = None) -> np.ndarray:
    out = np.zeros(ledger.market.snaps.n_venues)
    for f in ledger.fills:
        if passive is None or f.passive == passive:
            out[f.col] += f.shares
    return out


# ---------------------------------------------------------------------------------------------
# The contract
# ---------------------------------------------------------------------------------------------


def test_filled_plus_unfilled_is_the_parent_order(run: Ledger):
    filled = sum(f.shares for f in run.fills)
    assert filled + run.unfilled_shares == run.size
    assert run.filled_shares == filled
    assert run.filled_shares + run.unfilled_shares == run.size


def test_no_overfill(run: Ledger):
    by_venue = filled_by_venue(run)
    assert by_venue.sum() <= run.size
    assert (by_venue <= run.size).all(), by_venue
    assert (run.by_venue <= run.size).all() and run.by_venue.sum() <= run.size, run.by_venue
    # A limit order fills at most what it posted.
    passive: dict[tuple[int, int], float] = defaultdict(float)
    for f in run.fills:
        if f.passive:
            passive[f.row, f.col] += f.shares
    for key, shares in passive.items():
        assert shares <= run.posted.get(key, 0), (key, shares, run.posted.get(key, 0))


def test_shares_and_cash_are_never_negative(run: Ledger):
    cash = 0.0
    for f in sorted(run.fills, key=lambda f: f.row):
        assert f.shares > 0 and f.shares == int(f.shares), f  # whole shares, no sell-back
        assert fill_price(run, f) > 0, f
        cash += f.shares * fill_price(run, f)
        assert cash >= 0
    assert run.total_cash >= 0 and run.completed_cash >= 0
    assert run.unfilled_shares >= 0 and run.filled_shares >= 0
    assert (run.by_venue >= 0).all(), run.by_venue


def test_cash_is_the_sum_over_fills(run: Ledger):
    """Taken shares pay ask plus fee, passive shares earn the rebate off their limit price."""
    expected = math.fsum(f.shares * fill_price(run, f) for f in run.fills)
    assert run.total_cash == pytest.approx(expected, rel=CASH_RTOL, abs=1e-9)


def test_completed_cash_adds_the_cleanup_of_the_remainder(run: Ledger):
    cash = math.fsum(f.shares * fill_price(run, f) for f in run.fills)
    if not run.unfilled_shares:
        assert run.completed_cash == pytest.approx(cash, rel=CASH_RTOL, abs=1e-9)
        return
    completed = cash + run.unfilled_shares * cleanup_prices(run)
    close = np.abs(run.completed_cash - completed) <= CASH_RTOL * completed + 1e-9
    assert close.any(), (run.completed_cash, completed.tolist())


def test_never_takes_more_than_displayed(run: Ledger):
    """Every taken share was shown at its row; under the strict model, no displayed share is
    taken twice: what the parent took at a venue's price level counts until the ask moves."""
    for f in run.fills:
        assert run.first <= f.row <= run.last, f
    assert displayed_violations(run, strict=run.strict) == []


def test_reported_shares_by_venue_are_the_fills(run: Ledger):
    assert np.array_equal(run.by_venue, filled_by_venue(run)), (run.by_venue, run.fills)
    if run.split_by_venue is not None:
        market_shares, passive_shares = run.split_by_venue
        assert np.array_equal(market_shares, filled_by_venue(run, passive=False))
        assert np.array_equal(passive_shares, filled_by_venue(run, passive=True))


def test_passive_fills_come_from_trades_through_the_limit_price(run: Ledger):
    """A resting limit buy fills only from trades at the venue at or below its price, after the
    row it was posted at and up to the next decision (docs/cont-kukanov-router.md §2)."""
    snaps = run.market.snaps
    passive = [f for f in run.fills if f.passive]
    if run.case.strategy != "cont_kukanov":
        assert passive == []
        return
    for f in passive:
        limit = snaps.bid_px[f.row, f.col]
        trades = (
            (snaps.trade_row > f.row)
            & (snaps.trade_row <= f.end)
            & (snaps.trade_col == f.col)
            & (snaps.trade_px <= limit + PRICE_EPS)
        )
        assert f.shares <= snaps.trade_sz[trades].sum(), (f, limit)


def test_the_suite_sees_passive_fills_and_unfilled_remainders(markets):
    """The cases reach every branch the invariants guard: limit orders that fill, parents left
    to the clean-up order, and a naive run that takes displayed shares twice (which the strict
    check would reject: the check has teeth)."""
    market = markets("mbp10-5venues")
    case = Case("cont_kukanov", "mbp10-5venues", 1_250, "p1", "strict")
    ck = _run_cont_kukanov(case, market)
    assert any(f.passive for f in ck.fills) and any(not f.passive for f in ck.fills)
    twap = _run_engine(Case("twap", "mbp10-5venues", 20_000, "p1", "strict"), market)
    assert twap.unfilled_shares > 0
    naive = _run_engine(Case("best_ask", "mbp10-5venues", 20_000, "p1", "naive"), market)
    assert displayed_violations(naive, strict=False) == []
    assert displayed_violations(naive, strict=True) != []
