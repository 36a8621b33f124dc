"""One contract for every execution strategy: the same invariants, checked from the fills.

Strategies: best_ask, twap and vwap (`sor.evaluation.baselines`), the static router through the
Python engine (`evaluate_reference`'s path) and through the compiled kernel
(`sor.routers.static_nb`), and the Cont & Kukanov router (`sor.routers.placement.execute_parent`).
Each runs over seeded generated markets (MBP-1 and MBP-10, whose ten ask levels the execution
walks; three and five venues; default and per-venue fees and rebates), two order sizes, two
parameter sets and both fill models where they apply. `execute_parent` has no fill model option:
it always takes liquidity under the strict model, so it runs under "strict" only.

Every run is turned into a `Ledger`: the strategy's fills (snapshot row, venue column, shares,
taken or passive) recorded from the fills themselves, with the cash the code reports for them,
next to the totals the code reports:

- the engine's strategies (baselines and the Python router) through the engine's `on_fill`, which
  gives each venue's shares and cash (fees included) at each row;
- the compiled kernel has no callback and `ExecutionResult` has only per-venue totals, so it is
  replayed on every prefix of the snapshots (rows 0..t) with its entry point `run_router_nb`. It
  never reads a row after the one it acts at (it is `execute` with `Router`), so the prefix
  ending at row t shows its cumulative shares per venue and cash up to row t, and the fills (and
  cash) at row t are the difference between consecutive prefixes;
- the Cont & Kukanov router: spies on its market orders (`placement._take`: shares per venue and
  cash per row) and on its resting limit orders (`placement.simulate_resting`) record what they
  filled (the spies return what they got, unchanged), and `decisions_log` what each decision
  posted.

What the fills should have cost is worked out by the test from the snapshots and `VenueCosts`
alone, never from the code under test (`Replay`):

- A taken fill of s shares at a venue and row is placed on that venue's visible ask levels at
  the row (`Snapshots.ask_ladder`), cheapest first, each level holding what it shows less what
  the order already took at its price (strict model) or at this row (naive model). Each share
  costs its level's price plus the venue's fee. What the order already took is kept by the
  strict rule itself (`Remembered`), not by `sor.execution.depth.TakenMemory`: shares taken at a
  venue and price stay taken until that venue's best ask is above the price (by more than
  `PRICE_EPS`) at a later row; an ask that empties and comes back (NaN in between) forgets
  nothing.
- A passive share costs the venue's best bid at the decision that posted it less its rebate.
- Shares left at the end of the horizon are bought by the clean-up: from the visible depth of
  the rows after the horizon (none for the single-order market of the engine and the kernel),
  cheapest first across venues and levels (ties: more shares left, then the lower
  publisher_id), by the same memory; then what is still missing, n shares, costs
  n * end_price * (1 + Y * sigma * sqrt(n / v)), with end_price the best ask plus the lowest fee
  among the venues showing it at the data's last row with an ask, and Y, sigma and v the
  market's impact model (`market.after.impact`).

The same count gives what each venue had left at the start of every row, which tells whether a
market order bought what it asked for, up to what was left, wherever it acted (nothing skipped).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pytest

from sor.config import Config
from sor.data.loader import load_snapshots
from sor.data.snapshots import BUY
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
#: Prices are the same within this (dollars), as the fill model and the queue model compare them.
PRICE_EPS = 1e-9

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
    #: Cont & Kukanov parent order: first and last row, share of time. p1 runs to the last row
    #: (nothing after it); p2 leaves a few rows after it, in most markets too few for the
    #: clean-up of 20,000 shares.
    window: tuple[float, float]


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
        window=(0.5, 0.97),
    ),
}
FILL_MODELS = ("strict", "naive")
STRATEGIES = ("best_ask", "twap", "vwap", "static_reference", "static_compiled", "cont_kukanov")
#: Strategies without a parameter the parameter sets change run once per market, size and model.
PARAMETERLESS = ("best_ask", "vwap")
#: Strategies whose market orders sweep the cheapest asks first across venues and levels.
SWEEPS = ("twap", "vwap", "cont_kukanov")


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
    """Shares bought at one venue column: taken at `row`'s asks, or filled passively.

    A passive fill is what a limit order posted at decision row `row` filled at some row in
    (row, end]; the queue model reports fills per resting period, not per row.
    """

    row: int
    col: int
    shares: float
    passive: bool = False
    end: int = -1


@dataclass(frozen=True)
class LevelFill:
    """The shares of a taken fill that the test places at one ask level of its venue."""

    row: int
    col: int
    level: int
    price: float  # the level's ask, dollars per share before the fee
    shares: int


@dataclass
class Replay:
    """What a ledger's fills and clean-up should be, worked out by the test (`replay`)."""

    level_fills: list[LevelFill]
    #: taken fills that do not fit in what their venue's levels had left
    beyond_display: list[str]
    #: per row with taken fills: the highest level price taken, and the lowest price any venue
    #: still had shares left at after them (inf when none)
    highest_taken: dict[int, float]
    cheapest_left: dict[int, float]
    #: taken fills at a venue where the order still remembered shares taken at one of its
    #: levels' prices though its ask had been empty since (a level that flickered away and back
    #: hands out nothing new)
    held_through_empty: int
    #: int64[T, N]: shares left at each venue at the start of each row of the horizon, before
    #: the row's takes (zero outside the horizon)
    left_by_row: np.ndarray
    cleanup_taken_shares: int
    cleanup_taken_cash: float
    cleanup_impact_shares: int
    cleanup_impact_cash: float

    @property
    def cleanup_cash(self) -> float:
        return self.cleanup_taken_cash + self.cleanup_impact_cash


@dataclass
class Ledger:
    """A run's fills and what the code reports about them."""

    case: Case
    market: Market
    size: int
    first: int  # the parent order's first row
    last: int  # its last row
    after: range  # the rows its clean-up may take depth from
    fills: list[Fill]
    #: cash the code reports for the shares taken at each row: per (row, venue column) where it
    #: says (the engine's `on_fill`), and per row
    venue_cash: dict[tuple[int, int], float]
    row_cash: dict[int, float]
    total_cash: float
    filled_shares: float
    unfilled_shares: float
    completed_cash: float
    cleanup_taken_shares: int
    cleanup_impact_shares: int
    cleanup_cash: float  # dollars the code says the clean-up cost
    by_venue: np.ndarray  # float64[N], reported shares per venue column
    #: Cont & Kukanov: limit shares posted per (decision row, venue column), and at what price.
    posted: dict[tuple[int, int], int] = field(default_factory=dict)
    limit_px: dict[tuple[int, int], float] = field(default_factory=dict)
    #: Cont & Kukanov: reported shares per venue column, taken and passive apart.
    split_by_venue: tuple[np.ndarray, np.ndarray] | None = None
    #: TWAP and VWAP: int64[T] shares due by each row (the strategy's schedule, its decision).
    due: np.ndarray | None = None
    #: Cont & Kukanov: the market order (shares) each decision row sent.
    market_orders: dict[int, int] = field(default_factory=dict)
    replays: dict[bool, Replay] = field(default_factory=dict)

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
    venue_cash: dict[tuple[int, int], float] = {}
    row_cash: dict[int, float] = defaultdict(float)

    def on_fill(t: int, shares: np.ndarray, cash: np.ndarray) -> None:
        for j in np.flatnonzero(shares):
            fills.append(Fill(t, int(j), float(shares[j])))
            venue_cash[t, int(j)] = float(cash[j])
            row_cash[t] += float(cash[j])

    result = run_strategy(market, strategy, order, on_fill=on_fill)
    ledger = _ledger_of_result(case, market, fills, venue_cash, dict(row_cash), result)
    ledger.due = getattr(strategy, "due", None)
    return ledger


def _ledger_of_result(case, market, fills, venue_cash, row_cash, result) -> Ledger:
    # One parent order over the whole window: nothing comes after it (`make_market`).
    n_after = market.after.prices.shape[0]
    return Ledger(
        case=case,
        market=market,
        size=case.size,
        first=0,
        last=len(market.snaps) - 1,
        after=range(len(market.snaps), len(market.snaps) + n_after),
        fills=fills,
        venue_cash=venue_cash,
        row_cash=row_cash,
        total_cash=result.total_cash,
        filled_shares=result.filled_shares,
        unfilled_shares=result.unfilled_shares,
        completed_cash=result.completed_cash,
        cleanup_taken_shares=result.cleanup_taken_shares,
        cleanup_impact_shares=result.cleanup_impact_shares,
        cleanup_cash=result.cleanup_cash,
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
    row_cash: dict[int, float] = {}
    before, cash_before = np.zeros(snaps.n_venues, dtype=np.int64), 0.0
    for t in range(last_fill + 1):
        # rows 0..t of every per-row array; the per-venue ones (fees, ids) whole
        prefix = tuple(a[: t + 1] if a.shape[0] == len(snaps) else a for a in arrays)
        totals, by_venue, _ = run_router_nb(prefix, _rules(order, market), penalties)
        status, cash = totals[0], totals[1]
        assert status == 0
        changed = np.flatnonzero(by_venue != before)
        fills.extend(Fill(t, int(j), float(by_venue[j] - before[j])) for j in changed)
        if len(changed) or cash != cash_before:
            row_cash[t] = cash - cash_before
        before, cash_before = by_venue.copy(), cash
    return _ledger_of_result(case, market, fills, {}, row_cash, result)


def _run_cont_kukanov(case: Case, market: Market) -> Ledger:
    """`execute_parent` over a part of the window, its fills recorded by spies."""
    snaps, p = market.snaps, PARAM_SETS[case.params]
    ts = snaps.ts
    first, last = (int(np.searchsorted(ts, ts[0] + share * (ts[-1] - ts[0]))) for share in p.window)
    last = min(last, len(snaps) - 1)
    pm = make_passive_market(snaps, market.costs, market.after.impact)
    taken: list[tuple[int, np.ndarray, float]] = []
    resting: list[tuple[int, np.ndarray, np.ndarray]] = []
    take, simulate = placement._take, placement.simulate_resting

    def take_spy(pm, row, shares, *state):
        bought, cash = take(pm, row, shares, *state)
        taken.append((row, bought.copy(), float(cash)))
        return bought, cash

    def simulate_spy(*args):
        first_row, price, fills = args[7], args[9], args[15]
        already = fills.copy()
        out = simulate(*args)
        resting.append((first_row - 1, fills - already, price.copy()))
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
    fills = [Fill(row, int(j), float(b[j])) for row, b, _ in taken for j in np.flatnonzero(b)]
    row_cash = {row: cash for row, b, cash in taken if b.any() or cash}
    limit_px = {}
    for row, got, price in resting:
        assert row in ends, f"limit orders rested from row {row}, where no decision was made"
        fills.extend(
            Fill(row, int(j), float(got[j]), passive=True, end=ends[row])
            for j in np.flatnonzero(got)
        )
        limit_px.update(
            {(row, int(j)): float(price[j]) for j in np.flatnonzero(np.isfinite(price))}
        )
    by_venue = parent.market_shares + parent.passive_shares
    return Ledger(
        case=case,
        market=market,
        size=case.size,
        first=first,
        last=last,
        after=range(last + 1, len(snaps)),
        fills=fills,
        venue_cash={},
        row_cash=row_cash,
        total_cash=parent.total_cash,
        filled_shares=float(by_venue.sum()),
        unfilled_shares=parent.cleanup_shares,
        completed_cash=parent.completed_cash,
        cleanup_taken_shares=parent.cleanup_taken_shares,
        cleanup_impact_shares=parent.cleanup_impact_shares,
        cleanup_cash=parent.completed_cash - parent.total_cash,
        by_venue=by_venue,
        posted=posted,
        limit_px=limit_px,
        split_by_venue=(parent.market_shares, parent.passive_shares),
        market_orders={int(row): int(m) for row, m, _ in log},
    )


# ---------------------------------------------------------------------------------------------
# What the invariants are measured with, from the snapshots and the venue costs alone
# ---------------------------------------------------------------------------------------------


class Remembered:
    """Shares a parent order took per (venue column, price), kept by the strict rule: they stay
    taken until the venue's best ask is above the price by more than `PRICE_EPS` at a row after
    the take; an empty ask (NaN) is above nothing. Rows are visited in order (`move_to`)."""

    def __init__(self, best_ask: np.ndarray) -> None:
        self.ask = best_ask  # float64[T, N], -inf where a venue shows no ask
        self._seen = -1
        #: col -> [[price, shares, whether the venue's ask was empty since], ...]
        self.taken: dict[int, list[list]] = defaultdict(list)

    def move_to(self, row: int) -> None:
        """Forget every price a venue's best ask rose above in the rows after the last seen."""
        if row <= self._seen:
            return
        rows = self.ask[self._seen + 1 : row + 1]
        for j, entries in self.taken.items():
            highest, empty = rows[:, j].max(), bool(np.isneginf(rows[:, j]).any())
            entries[:] = [e for e in entries if not highest > e[0] + PRICE_EPS]
            for entry in entries:
                entry[2] = entry[2] or empty
        self._seen = row

    def at(self, col: int, price: float) -> int:
        return sum(e[1] for e in self.taken[col] if abs(e[0] - price) <= PRICE_EPS)

    def kept_through_empty(self, col: int, price: float) -> bool:
        """Whether shares taken at `price` are still remembered though the venue's ask has been
        empty since they were taken."""
        return any(e[2] for e in self.taken[col] if abs(e[0] - price) <= PRICE_EPS)

    def add(self, col: int, price: float, shares: int) -> None:
        for entry in self.taken[col]:
            if abs(entry[0] - price) <= PRICE_EPS:
                entry[1] += shares
                return
        self.taken[col].append([price, shares, False])


def levels_left(ledger: Ledger, row: int, col: int, memory: Remembered) -> list[int]:
    """Shares at each ask level of venue `col` at `row`: shown, less what `memory` holds taken
    at its price."""
    px, sz = ledger.market.snaps.ask_ladder()
    out = []
    for price, shown in zip(px[row, col].tolist(), sz[row, col].tolist(), strict=True):
        out.append(max(shown - memory.at(col, price), 0) if math.isfinite(price) else 0)
    return out


def left_in_rows(ledger: Ledger, memory: Remembered | None, lo: int, hi: int) -> np.ndarray:
    """int64[hi - lo, N]: shares left at each venue at the start of rows lo..hi-1, the order
    having taken nothing since row lo - 1: what the rows show, less (strict model: `memory`,
    as it stood after row lo - 1) what the order took at each remembered price until the
    venue's best ask rises above it."""
    px, sz = ledger.market.snaps.ask_ladder()
    px, sz = px[lo:hi], sz[lo:hi]
    visible = np.where(np.isfinite(px) & (sz > 0), sz, 0)
    left = visible.sum(axis=2)
    if memory is None:
        return left
    best_ask = memory.ask[lo:hi]
    for j, entries in memory.taken.items():
        for price, taken, _ in entries:
            above = np.flatnonzero(best_ask[:, j] > price + PRICE_EPS)
            stop = int(above[0]) if len(above) else hi - lo
            at_price = np.where(np.abs(px[:stop, j] - price) <= PRICE_EPS, visible[:stop, j], 0)
            left[:stop, j] -= np.minimum(at_price.sum(axis=1), taken)
    return left


def end_price(ledger: Ledger) -> float:
    """The best ask plus the lowest fee among the venues showing it, at the data's last row
    that shows an ask."""
    snaps, costs = ledger.market.snaps, ledger.market.costs
    row = snaps.ask_px[np.flatnonzero(np.isfinite(snaps.ask_px).any(axis=1))[-1]]
    best = np.nanmin(row)
    return float(best + costs.fee[np.isfinite(row) & (row <= best + PRICE_EPS)].min())


def impact_cash(ledger: Ledger, shares: int) -> float:
    """What the square-root law charges for `shares` the data cannot supply."""
    if shares <= 0:
        return 0.0
    model = ledger.market.after.impact
    fraction = model.y * model.sigma * math.sqrt(shares / model.volume_per_s)
    return shares * end_price(ledger) * (1.0 + fraction)


def replay(ledger: Ledger, *, strict: bool | None = None) -> Replay:
    """Place the ledger's taken fills on their venues' ask levels and run its clean-up, by the
    strict model (default: the ledger's fill model) or the naive one, from the data alone."""
    strict = ledger.strict if strict is None else strict
    if strict in ledger.replays:
        return ledger.replays[strict]
    snaps, fee = ledger.market.snaps, ledger.market.costs.fee
    px, _ = snaps.ask_ladder()
    best_ask = np.where(np.isnan(snaps.ask_px), -np.inf, snaps.ask_px)
    memory = Remembered(best_ask)
    level_fills: list[LevelFill] = []
    beyond: list[str] = []
    highest: dict[int, float] = {}
    cheapest: dict[int, float] = {}
    by_row: dict[int, list[Fill]] = defaultdict(list)
    for f in ledger.fills:
        if not f.passive:
            by_row[f.row].append(f)
    left_by_row = np.zeros(snaps.ask_px.shape, dtype=np.int64)
    previous = ledger.first - 1  # the last row whose takes `memory` holds
    held = 0
    for row in sorted(by_row):
        rows = slice(previous + 1, row + 1)
        left_by_row[rows] = left_in_rows(ledger, memory if strict else None, rows.start, rows.stop)
        previous = row
        if strict:
            memory.move_to(row)
        else:
            memory = Remembered(best_ask)  # naive: this row's own takes only
        for f in by_row[row]:
            left, need = levels_left(ledger, row, f.col, memory), f.shares
            held += any(memory.kept_through_empty(f.col, p) for p in px[row, f.col].tolist())
            for k, shares in enumerate(left):
                q = min(need, shares)
                if q > 0:
                    price = float(px[row, f.col, k])
                    level_fills.append(LevelFill(row, f.col, k, price, int(q)))
                    memory.add(f.col, price, int(q))
                    highest[row] = max(highest.get(row, -math.inf), price)
                    need -= q
            if need > 0:
                beyond.append(f"{f}: {need:g} shares more than its levels had left, {left}")
        cheapest[row] = min(
            (
                float(px[row, j, k])
                for j in range(snaps.n_venues)
                for k, shares in enumerate(levels_left(ledger, row, j, memory))
                if shares > 0
            ),
            default=math.inf,
        )
    rows = slice(previous + 1, ledger.last + 1)
    left_by_row[rows] = left_in_rows(ledger, memory if strict else None, rows.start, rows.stop)
    # The clean-up: depth after the horizon, cheapest first, then the impact model.
    need = int(ledger.size - sum(f.shares for f in ledger.fills))
    taken_shares, taken_cash = 0, 0.0
    for row in ledger.after:
        if need <= 0:
            break
        if strict:
            memory.move_to(row)
        else:
            memory = Remembered(best_ask)
        asks = sorted(
            (float(px[row, j, k]), -shares, int(snaps.venues[j]), j, k)
            for j in range(snaps.n_venues)
            for k, shares in enumerate(levels_left(ledger, row, j, memory))
            if shares > 0
        )
        for price, minus_shares, _, j, _ in asks:
            q = min(need, -minus_shares)
            if q <= 0:
                break
            taken_shares += q
            taken_cash += q * (price + float(fee[j]))
            memory.add(j, price, q)
            need -= q
    ledger.replays[strict] = Replay(
        level_fills=level_fills,
        beyond_display=beyond,
        highest_taken=highest,
        cheapest_left=cheapest,
        held_through_empty=held,
        left_by_row=left_by_row,
        cleanup_taken_shares=taken_shares,
        cleanup_taken_cash=taken_cash,
        cleanup_impact_shares=max(need, 0),
        cleanup_impact_cash=impact_cash(ledger, need),
    )
    return ledger.replays[strict]


def passive_price(ledger: Ledger, fill: Fill) -> float:
    """Dollars per share of a passive fill: the venue's best bid when posted less its rebate."""
    snaps, costs = ledger.market.snaps, ledger.market.costs
    return float(snaps.bid_px[fill.row, fill.col] - costs.rebate[fill.col])


def taken_cash(ledger: Ledger) -> tuple[dict[tuple[int, int], float], dict[int, float]]:
    """What the taken fills cost by the test's placement: per (row, venue column), per row."""
    fee = ledger.market.costs.fee
    by_venue: dict[tuple[int, int], float] = defaultdict(float)
    by_row: dict[int, float] = defaultdict(float)
    for lf in replay(ledger).level_fills:
        cash = lf.shares * (lf.price + float(fee[lf.col]))
        by_venue[lf.row, lf.col] += cash
        by_row[lf.row] += cash
    return by_venue, by_row


def expected_cash(ledger: Ledger) -> float:
    """The taken shares at their levels' prices plus fee, the passive ones at bid less rebate."""
    fee = ledger.market.costs.fee
    return math.fsum(
        [lf.shares * (lf.price + float(fee[lf.col])) for lf in replay(ledger).level_fills]
        + [f.shares * passive_price(ledger, f) for f in ledger.fills if f.passive]
    )


def filled_by_venue(ledger: Ledger, *, passive: bool | None = None) -> np.ndarray:
    out = np.zeros(ledger.market.snaps.n_venues)
    for f in ledger.fills:
        if passive is None or f.passive == passive:
            out[f.col] += f.shares
    return out


def close(got: float, want: float, scale: float) -> bool:
    """Equal up to the rounding of sums of about `scale` dollars."""
    return abs(got - want) <= CASH_RTOL * abs(scale) + 1e-9


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
    for f in run.fills:
        assert f.shares > 0 and f.shares == int(f.shares), f  # whole shares, no sell-back
        if f.passive:
            assert passive_price(run, f) > 0, f
    for lf in replay(run).level_fills:
        assert lf.price + run.market.costs.fee[lf.col] > 0, lf
    assert all(cash > 0 for cash in run.venue_cash.values()), run.venue_cash
    assert all(cash > 0 for cash in run.row_cash.values()), run.row_cash
    assert run.total_cash >= 0 and run.completed_cash >= run.total_cash
    assert run.unfilled_shares >= 0 and run.filled_shares >= 0
    assert run.cleanup_taken_shares >= 0 and run.cleanup_impact_shares >= 0
    assert (run.by_venue >= 0).all(), run.by_venue


def test_cash_is_the_sum_over_fills(run: Ledger):
    """Taken shares pay their level's ask plus the fee, passive shares earn the rebate off their
    limit price."""
    assert close(run.total_cash, expected_cash(run), run.total_cash)


def test_each_taken_fill_pays_its_levels_plus_fee(run: Ledger):
    """The cash the code reports for the shares taken at a row (at each venue, where it says) is
    what they cost walked over the venue's levels cheapest first, each at its ask plus fee."""
    by_venue, by_row = taken_cash(run)
    assert set(run.row_cash) == {f.row for f in run.fills if not f.passive}
    for row, cash in run.row_cash.items():
        assert close(cash, by_row[row], run.total_cash), (row, cash, by_row[row])
    for key, cash in run.venue_cash.items():
        assert close(cash, by_venue[key], cash), (key, cash, by_venue[key])


def test_completed_cash_adds_the_cleanup_of_the_remainder(run: Ledger):
    """The clean-up buys exactly the unfilled shares: first from the depth after the horizon,
    then the rest at the impact model's price; completed cash is cash plus its cost."""
    expected = replay(run)
    assert run.cleanup_taken_shares + run.cleanup_impact_shares == run.unfilled_shares
    assert run.cleanup_taken_shares == expected.cleanup_taken_shares
    assert run.cleanup_impact_shares == expected.cleanup_impact_shares
    assert close(run.completed_cash - run.total_cash, run.cleanup_cash, run.completed_cash)
    assert close(run.cleanup_cash, expected.cleanup_cash, run.completed_cash), (
        run.cleanup_cash,
        expected.cleanup_taken_cash,
        expected.cleanup_impact_cash,
    )
    if not run.after:  # one order over the whole window: the impact model prices it all
        assert run.cleanup_taken_shares == 0
        assert close(run.cleanup_cash, impact_cash(run, int(run.unfilled_shares)), run.cleanup_cash)


def test_never_takes_more_than_displayed(run: Ledger):
    """Every taken share was shown at its row. Strict model: at each venue and price, what the
    order took since the venue's best ask last rose above that price never exceeds what the
    data shows there; naive model: at each row, what it took never exceeds what the row shows."""
    for f in run.fills:
        assert run.first <= f.row <= run.last, f
    assert replay(run).beyond_display == []


def test_reported_shares_by_venue_are_the_fills(run: Ledger):
    assert np.array_equal(run.by_venue, filled_by_venue(run)), (run.by_venue, run.fills)
    if run.split_by_venue is not None:
        market_shares, passive_shares = run.split_by_venue
        assert np.array_equal(market_shares, filled_by_venue(run, passive=False))
        assert np.array_equal(passive_shares, filled_by_venue(run, passive=True))


def test_sweeps_take_the_cheapest_asks_first(run: Ledger):
    """TWAP, VWAP and the Cont & Kukanov market order buy the cheapest asks across venues and
    levels first: no share at a row costs more (before fees) than an ask still left there."""
    if run.case.strategy not in SWEEPS:
        return
    expected = replay(run)
    for row, price in expected.highest_taken.items():
        assert price <= expected.cheapest_left[row] + PRICE_EPS, (row, expected.cheapest_left[row])


def test_market_orders_buy_what_they_ask_up_to_what_is_left(run: Ledger):
    """Nothing is skipped: Best-Ask acts at every row (all remaining shares to one venue), TWAP
    and VWAP at every row where their schedule has shares due, and the Cont & Kukanov router
    sends a market order at each decision; each buys what it asks for up to what the book has
    left at that row (the test's count), at Best-Ask's one venue up to what that venue has."""
    if run.case.strategy not in ("best_ask", "twap", "vwap", "cont_kukanov"):
        return
    left = replay(run).left_by_row
    bought = np.zeros(left.shape)
    for f in run.fills:
        if not f.passive:
            bought[f.row, f.col] += f.shares
    if run.case.strategy == "cont_kukanov":
        for row, m in run.market_orders.items():
            assert bought[row].sum() == min(m, left[row].sum()), (row, m, left[row])
        return
    filled = np.concatenate([[0.0], np.cumsum(bought.sum(axis=1))[:-1]])  # before each row
    for row in range(run.first, run.last + 1):
        remaining = run.size - filled[row]
        if run.case.strategy == "best_ask":
            venues = np.flatnonzero(bought[row])
            if remaining > 0 and left[row].any():
                assert len(venues) == 1, (row, bought[row])
                want = min(remaining, left[row, venues[0]])
                assert bought[row, venues[0]] == want, (row, left[row], bought[row])
            else:
                assert len(venues) == 0, (row, remaining, left[row], bought[row])
        else:
            due = max(int(run.due[row]) - filled[row], 0)
            assert bought[row].sum() == min(due, left[row].sum()), (row, due, left[row])


def test_passive_fills_come_from_trades_through_the_limit_price(run: Ledger):
    """A resting limit buy rests at the venue's best bid when posted, and fills only from prints
    at the venue at or below its price that were not buys lifting the ask, after the row it was
    posted at and up to the next decision (docs/cont-kukanov-router.md §2)."""
    snaps = run.market.snaps
    passive = [f for f in run.fills if f.passive]
    if run.case.strategy != "cont_kukanov":
        assert passive == []
        return
    for (row, col), price in run.limit_px.items():
        assert price == snaps.bid_px[row, col], (row, col, price)
    for f in passive:
        limit = run.limit_px[f.row, f.col]
        trades = (
            (snaps.trade_row > f.row)
            & (snaps.trade_row <= f.end)
            & (snaps.trade_col == f.col)
            & (snaps.trade_side != BUY)
            & (snaps.trade_px <= limit + PRICE_EPS)
        )
        assert f.shares <= snaps.trade_sz[trades].sum(), (f, limit)


def test_the_suite_sees_every_branch(markets):
    """The cases reach every branch the invariants guard: limit orders that fill, fills beyond
    the best ask (level 0) at several prices, a parent with no row after it left to the impact
    model, a clean-up that takes depth after the horizon and then needs the impact model, a
    naive run that takes displayed shares twice (which the strict check rejects: it has teeth),
    and a strict run whose memory of a price held through an empty ask and limited a fill."""
    market = markets("mbp10-5venues")
    ck = _run_cont_kukanov(Case("cont_kukanov", "mbp10-5venues", 1_250, "p1", "strict"), market)
    assert any(f.passive for f in ck.fills) and any(not f.passive for f in ck.fills)
    best = _run_engine(Case("best_ask", "mbp10-5venues", 20_000, "p1", "strict"), market)
    compiled = _run_compiled(
        Case("static_compiled", "mbp10-5venues", 20_000, "p1", "strict"), market
    )
    for ledger in (best, compiled):
        deep = [lf for lf in replay(ledger).level_fills if lf.level > 0]
        assert deep and len({lf.price for lf in deep}) > 1
    literal = _run_engine(Case("static_reference", "mbp10-5venues", 20_000, "p2", "strict"), market)
    assert not literal.after and literal.cleanup_impact_shares == literal.unfilled_shares > 0
    case = Case("cont_kukanov", "mbp10-3venues-fees", 20_000, "p2", "strict")
    ck_after = _run_cont_kukanov(case, markets(case.market))
    assert ck_after.cleanup_taken_shares > 0 and ck_after.cleanup_impact_shares > 0
    naive = _run_engine(Case("best_ask", "mbp10-5venues", 20_000, "p1", "naive"), market)
    assert replay(naive).beyond_display == []
    assert replay(naive, strict=True).beyond_display != []
    # In one fill of all the cases: a memory that forgot on an empty ask would take 100 shares
    # too many there.
    case = Case("cont_kukanov", "mbp1-5venues-fees", 20_000, "p1", "strict")
    flicker = _run_cont_kukanov(case, markets(case.market))
    assert replay(flicker).held_through_empty > 0
