"""The router backtest compiled with Numba: allocator and engine loop in one kernel.

`sor.evaluation.backtest.evaluate` runs the engine (`sor.execution.engine.execute`) in Python and
calls `sor.routers.allocator.allocate_arrays` at every snapshot where something can fill: 100-700 us
a call, mostly numpy's fixed costs on arrays of five numbers. This module runs the same loop and the
same allocator in one compiled function over the snapshot arrays, so that a sweep of thousands of
trials takes seconds.

Same answers, by construction:

- `_allocate_nb` is `allocate_arrays` step by step (module docstring of `sor.routers.allocator`):
  the same infeasibility rule, the same exact fast paths with the same float comparisons, and the
  same dynamic program over the shares left. The program's tables hold the same float values as
  the reference's (the same sums and products in the same order; minima are exact in any order),
  and the forward pass keeps the smallest q_i within the same tolerance (`_Problem.tolerance`),
  so the split is identical, ties and near-ties included. The cost is `_Problem.cost` term by
  term: bit-identical.
- `run_router_nb` is `execute` with `Router`: the same skipping of snapshots where nothing can
  fill (`_next_fillable`), the same strict-model memory of what was taken per venue and price
  (`Memory`, the arrays of `sor.execution.depth.TakenMemory`), the same child sizing and venue
  selection (`Router.orders`), the same walk of each venue's visible levels in price order, and
  the same cash: each venue's levels summed first, then venue by venue in column order, the
  float operations in the engine's order, so `total_cash` is bit-identical.
- The clean-up of unfilled shares runs after the kernel, compiled as well, from the memory the
  kernel leaves (`sor.execution.cleanup_nb.clean_up_compiled`, equal to the engine's
  `sor.execution.cleanup.clean_up`).

Nothing here allocates per snapshot: the dynamic program's tables are one workspace per run, sized
for children of up to 100 lots (a larger child's program allocates its own, as the reference
does at every call).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from sor.data.snapshots import Snapshots
from sor.execution.cleanup import OrderLimits
from sor.execution.cleanup_nb import clean_up_compiled
from sor.execution.depth import PRICE_EPS
from sor.execution.depth_nb import MEMORY_SLOTS, Memory, empty_memory, forget_row, level_left, take
from sor.execution.engine import (
    ExecutionResult,
    result_of,
    temporary_impact_charge,
)
from sor.execution.market import Market, build_market, run_strategy
from sor.execution.rules import OrderRules
from sor.execution.venues import venue_costs
from sor.routers.allocator import _TIE_RTOL
from sor.routers.static import RouterParams, make_router, reference_mid
from sor.vocabulary import CAPS, CHILD_SIZINGS, COST_BASES, FILL_MODELS

__all__ = [
    "MEMORY_SLOTS",
    "allocator_prices",
    "compiled_inputs",
    "evaluate_batch_compiled",
    "evaluate_compiled",
    "evaluate_compiled_stats",
    "run_router_nb",
    "warm_up",
]

_INF = np.inf

#: `Totals.status` codes.
_OK = 0
_NON_FINITE_ASK = 1  # a venue the router passes to the allocator has no finite price
_MEMORY_FULL = 2  # more prices taken at one venue than `MEMORY_SLOTS`, none forgotten

_PRICE_EPS = PRICE_EPS


# ---------------------------------------------------------------------------------------------
# The kernel's structs
#
# NamedTuples: Numba compiles them as immutable structs of their fields (no boxing, no
# allocation), caches the functions that take them (`cache=True`), and their arrays stay
# writable. What they cost, and how this module avoids it:
#
# - Numba counts references to arrays (an atomic add for each new reference, a subtract when it
#   dies) and prunes the counts it can prove redundant, fewer for arrays that travel in a struct
#   than for arrays passed one by one. So structs that hold arrays are built once per run
#   (`MarketArrays`, `Venues`, `Workspace`) and those built per allocator call hold scalars only
#   (`Problem`, `Layout`). What pruning leaves depends on the control flow: in the functions
#   called per decision, which array fields are read into locals and which where they are used
#   (`v.size[i]`) follows the calls to `NRT_incref` left in the generated code
#   (`_solve_into.inspect_llvm()`, with an empty `NUMBA_CACHE_DIR`), and no struct argument is
#   rebound (`ws = larger` would count all its arrays at every call).
# - Numba types a NamedTuple argument, and boxes a NamedTuple result, through Python (1-3 us a
#   call, a few percent of a short trial) but a plain tuple in C, so the entry points called
#   from Python (`run_router_nb`, `_run_batch`) take and return plain tuples of the fields and
#   rebuild the structs first thing.
# ---------------------------------------------------------------------------------------------


class MarketArrays(NamedTuple):
    """The snapshot arrays of one market and cost basis as the kernel reads them (`_arrays`).

    Attributes:
        ask_px: float64[T, N], best ask per venue, dollars per share (NaN: no ask).
        ladder_px: float64[T, N, L], every visible ask level (`Snapshots.ask_ladder`).
        ladder_sz: int64[T, N, L], shares shown at each level.
        price: float64[T, N], what the allocator sees as the ask: ask_px minus the reference of
            the cost basis (`Router`), so the cost basis itself is no input of the kernel.
        fee: float64[N], taker fee per venue column, dollars per share.
        rebate: float64[N], maker rebate per venue column, dollars per share.
        cum_volume: int64[T], the market's traded shares from the first snapshot through each.
        venues: int64[N], publisher_ids (the tie rule of `_keep_cheapest`).
    """

    ask_px: np.ndarray
    ladder_px: np.ndarray
    ladder_sz: np.ndarray
    price: np.ndarray
    fee: np.ndarray
    rebate: np.ndarray
    cum_volume: np.ndarray
    venues: np.ndarray


class Rules(NamedTuple):
    """The parent order and the router's rules: `OrderRules` without the cost basis, as flags.

    Attributes:
        order_size: shares to buy.
        step: lot size, shares.
        displayed: cap "displayed" (True) or "order".
        literal: child sizing "all_or_none" (True) or "available".
        strict: fill model "strict" (True) or "naive".
        max_participation: the participation cap, or a negative number for none.
        impact_charge: `sor.execution.engine.temporary_impact_charge` (0: none).
    """

    order_size: int
    step: int
    displayed: bool
    literal: bool
    strict: bool
    max_participation: float
    impact_charge: float


class Penalties(NamedTuple):
    """`RouterParams`: the penalties of one trial, dollars per share."""

    lambda_over: float
    lambda_under: float
    theta_queue: float


class Venues(NamedTuple):
    """The per-venue values of a split, of which a `Problem` uses the first n entries.

    Python twin: `sor.routers.allocator._Problem` (its per-venue lists). The router refills these
    buffers at every decision.

    Attributes:
        ask: float64[>= n], ask per venue, dollars per share (or its distance from a reference).
        size: int64[>= n], displayed shares per venue.
        fee: float64[>= n], taker fee per venue, dollars per share filled.
        rebate: float64[>= n], maker rebate per venue, dollars per share posted.
    """

    ask: np.ndarray
    size: np.ndarray
    fee: np.ndarray
    rebate: np.ndarray


class Problem(NamedTuple):
    """One split: what to split and by which rules, its per-venue values aside (`Venues`).

    Python twin: `sor.routers.allocator._Problem` (its other fields).

    Attributes:
        order_size: shares to split, >= 0.
        n: number of venues: the first n entries of the `Venues`.
        lambda_over, lambda_under, theta_queue: the penalties, dollars per share.
        step: lot size, shares, > 0.
        displayed: cap "displayed" (True) or "order" (False).
        include_cap: whether each venue's cap is a candidate too.
    """

    order_size: int
    n: int
    lambda_over: float
    lambda_under: float
    theta_queue: float
    step: int
    displayed: bool
    include_cap: bool


class Workspace(NamedTuple):
    """Scratch arrays of the dynamic program, sized once for a run (`_new_workspace`).

    Attributes:
        tables: float64[N, C, K], tables[i] holding V_{i+2} of `sor.routers.allocator` (what the
            venues after venue i cost) on C residue columns by K rows of remainders.
        column: int64[step], residue -> column, -1 where not tracked (reset after each call).
        residues: int64[C], in the order the venues first reach them.
        reach: int64[N], columns reachable before venue i.
        take: float64[N], the separable cost of a filled share.
        line, deque, prefix: one row of the min-plus step.
    """

    tables: np.ndarray
    column: np.ndarray
    residues: np.ndarray
    reach: np.ndarray
    take: np.ndarray
    line: np.ndarray
    deque: np.ndarray
    prefix: np.ndarray


class Layout(NamedTuple):
    """The remainders the dynamic program tracks.

    Python twin: `sor.routers.allocator._Layout` (its scalars; its arrays are in the `Workspace`).

    Cell (c, row) is remainder origin + residues[c] + row * step, with the residues, the
    residue -> column map and the columns each venue reaches in the `Workspace`.

    Attributes:
        origin: remainder of cell (0, 0) less residues[0].
        rows: K, rows of remainders.
        step: lot size, shares.
        displayed: cap "displayed" (True) or "order".
        include_cap: whether each venue's cap is a candidate too. With cap "displayed" a venue
            taking its odd-lot size moves the remainder to another column, which
            `Workspace.column` maps.
    """

    origin: int
    rows: int
    step: int
    displayed: bool
    include_cap: bool


class Totals(NamedTuple):
    """What one parent order through the router did (`_route`).

    Attributes:
        status: `_OK`, `_NON_FINITE_ASK` or `_MEMORY_FULL`.
        cash: dollars paid, fees included.
        filled: shares bought.
        child_orders: snapshots where something filled.
        last_fill_t: snapshot index of the last fill, -1 when nothing filled.
        decisions: allocator calls.
        t_end: snapshot index where the loop stopped.
    """

    status: int
    cash: float
    filled: int
    child_orders: int
    last_fill_t: int
    decisions: int
    t_end: int


class BatchTotals(NamedTuple):
    """`Totals` of each trial of `_run_batch` (row p: params[p]), and shares per venue column."""

    status: np.ndarray
    cash: np.ndarray
    filled: np.ndarray
    child_orders: np.ndarray
    last_fill_t: np.ndarray
    decisions: np.ndarray
    t_end: np.ndarray
    by_venue: np.ndarray  # int64[P, N]
    memory_px: np.ndarray  # float64[P, N, K], each trial's `Memory`
    memory_sz: np.ndarray  # int64[P, N, K]
    memory_n: np.ndarray  # int64[P, N]

    @classmethod
    def zeros(cls, n_trials: int, n_venues: int) -> BatchTotals:
        """Zeroed arrays for `n_trials` trials over `n_venues` venue columns."""
        counts = [np.zeros(n_trials, dtype=np.int64) for _ in range(6)]  # all but cash
        status, filled, child_orders, last_fill_t, decisions, t_end = counts
        by_venue = np.zeros((n_trials, n_venues), dtype=np.int64)
        cash = np.zeros(n_trials)
        return cls(
            status,
            cash,
            filled,
            child_orders,
            last_fill_t,
            decisions,
            t_end,
            by_venue,
            np.zeros((n_trials, n_venues, MEMORY_SLOTS)),
            np.zeros((n_trials, n_venues, MEMORY_SLOTS), dtype=np.int64),
            np.zeros((n_trials, n_venues), dtype=np.int64),
        )

    def rows(self) -> list[Totals]:
        """The `Totals` of each trial, in Python numbers (one conversion per column)."""
        columns = (
            self.status.tolist(),
            self.cash.tolist(),
            self.filled.tolist(),
            self.child_orders.tolist(),
            self.last_fill_t.tolist(),
            self.decisions.tolist(),
            self.t_end.tolist(),
        )
        return [Totals(*row) for row in zip(*columns, strict=True)]


# ---------------------------------------------------------------------------------------------
# The allocator (sor.routers.allocator, compiled)
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _columns_needed(n_venues: int, step: int, displayed: bool, include_cap: bool) -> int:
    """Most residue columns the dynamic program can track: min(step, 2^(N-1)).

    Python twin: `sor.routers.allocator._Layout.of`, which tracks the residue classes reachable
    from order_size.
    """
    if not (displayed and include_cap) or n_venues <= 1:
        return 1
    return min(step, 1 << min(n_venues - 1, 40))


@njit(cache=True)
def _new_workspace(
    n_venues: int, max_order: int, step: int, displayed: bool, include_cap: bool
) -> Workspace:
    """The `Workspace` for splits of up to `max_order` shares over up to `n_venues` venues.

    Python twin: none: the reference allocates its tables at every call
    (`sor.routers.allocator._Layout`).
    """
    rows = max_order // step + 1
    columns = _columns_needed(n_venues, step, displayed, include_cap)
    tables = np.empty((max(n_venues, 1), columns, rows))
    column = np.full(step if displayed and include_cap else 1, -1, dtype=np.int64)
    residues = np.zeros(columns, dtype=np.int64)
    reach = np.zeros(max(n_venues, 1), dtype=np.int64)
    take = np.zeros(max(n_venues, 1))
    line = np.empty(rows)
    deque = np.empty(rows, dtype=np.int64)
    prefix = np.empty(rows)
    return Workspace(tables, column, residues, reach, take, line, deque, prefix)


@njit(cache=True)
def _run_workspace(n_venues: int, rules: Rules) -> Workspace:
    """The workspace of one run, sized for the order up to 100 lots (K <= 101).

    With cap "displayed" a child order is at most what is shown, and the fast paths need no
    tables, so a huge parent order must not size them: a dynamic program for a child larger than
    the workspace allocates its own tables, as the reference does for every call.

    Python twin: none (see `_new_workspace`).
    """
    shares = min(rules.order_size, 100 * rules.step)
    return _new_workspace(n_venues, shares, rules.step, rules.displayed, not rules.literal)


@njit(cache=True)
def _tolerance(p: Problem, v: Venues) -> float:
    """Cost difference, dollars, below which two splits tie.

    Python twin: `sor.routers.allocator._Problem.tolerance`.
    """
    top = 0.0
    top_rebate = 0.0
    for i in range(p.n):
        top = max(top, abs(v.ask[i] + v.fee[i]))
        top_rebate = max(top_rebate, abs(v.rebate[i]))
    per_share = top + top_rebate + abs(p.theta_queue + p.lambda_under)
    return _TIE_RTOL * (p.order_size * per_share + 1.0)


@njit(cache=True)
def _venue_cost(q: float, size: float, take: float, rebate: float) -> float:
    """c_i(q) of `sor.routers.allocator`, dollars; q in shares as a float (exact below 2^53).

    Python twin: `sor.routers.allocator._venue_cost`.
    """
    filled = min(q, float(size))
    return filled * take - (q - filled) * rebate


@njit(cache=True)
def _split_cost(p: Problem, v: Venues, split: np.ndarray) -> float:
    """Cost of `split`: model.md §3 term by term, in the reference's order of operations.

    Python twin: `sor.routers.allocator._Problem.cost`.
    """
    executed = 0
    cash = 0.0
    for i in range(p.n):
        exe = min(split[i], v.size[i])
        executed += exe
        cash += exe * (v.ask[i] + v.fee[i]) - max(split[i] - exe, 0) * v.rebate[i]
    underfill = max(p.order_size - executed, 0)
    overfill = max(executed - p.order_size, 0)
    return (
        cash
        + p.theta_queue * (underfill + overfill)
        + p.lambda_under * underfill
        + p.lambda_over * overfill
    )


@njit(cache=True)
def _solve_into(out: np.ndarray, p: Problem, v: Venues, ws: Workspace) -> bool:
    """The least-cost split of `p`, written to out[:p.n].

    Python twin: `sor.routers.allocator._solve`, with `sor.routers.allocator._infeasible`,
    `sor.routers.allocator._Problem.take` and `sor.routers.allocator._best_single_venue` inline.

    Args:
        out: int64 array of at least p.n entries.
        p: the `Problem`.
        v: its `Venues`.
        ws: a `Workspace` for at least p.n venues; a program for a larger order than it was
            sized for allocates its own.

    Returns:
        False where no candidate has sum == order_size (out is then all zero).
    """
    n, order_size, step = p.n, p.order_size, p.step
    displayed, include_cap = p.displayed, p.include_cap
    for i in range(n):
        out[i] = 0
    if order_size == 0:
        return True
    if n == 0:
        return False
    # _infeasible
    if not include_cap and order_size % step:
        return False
    if displayed:
        usable = 0
        for i in range(n):
            usable += v.size[i] if include_cap else v.size[i] - v.size[i] % step
        if usable < order_size:
            return False
    shortfall = p.theta_queue + p.lambda_under  # what each filled share saves (cap "order")
    for i in range(n):
        ws.take[i] = v.ask[i] + v.fee[i] if displayed else v.ask[i] + v.fee[i] - shortfall
    if displayed and not include_cap:
        _cheapest_first(out, p, v.size, ws.take)
        return True
    if displayed:
        total = 0
        for i in range(n):
            total += v.size[i]
        if total == order_size:  # q_i <= a_i and sum q_i == sum a_i leave one split
            for i in range(n):
                out[i] = v.size[i]
            return True
    tolerance = _tolerance(p, v)
    if not displayed:
        concave = True
        for i in range(n):
            if not ws.take[i] + v.rebate[i] >= 0:
                concave = False
                break
        if concave:  # _best_single_venue: the cheapest venue takes all, ties to the last one
            lowest = _INF
            for i in range(n):
                lowest = min(
                    lowest, _venue_cost(float(order_size), v.size[i], ws.take[i], v.rebate[i])
                )
            cutoff = lowest + tolerance
            best = 0
            for i in range(n):
                if _venue_cost(float(order_size), v.size[i], ws.take[i], v.rebate[i]) <= cutoff:
                    best = i
            out[best] = order_size
            return True
    if order_size // step + 1 <= ws.tables.shape[2]:
        return _dynamic_program(out, p, v, tolerance, ws)
    larger = _new_workspace(n, order_size, step, displayed, include_cap)  # a larger child
    larger.take[:n] = ws.take[:n]
    return _dynamic_program(out, p, v, tolerance, larger)


@njit(cache=True)
def _cheapest_first(out: np.ndarray, p: Problem, size: np.ndarray, price: np.ndarray) -> None:
    """Cap "displayed" on the step grid: cheapest ask + fee (`price`) first.

    Each venue takes up to `size` shares (whole lots); ties go to later venues.

    Python twin: `sor.routers.allocator._cheapest_first`.
    """
    n, step = p.n, p.step
    order = np.empty(n, dtype=np.int64)
    for i in range(n):  # insertion sort by (price, -i), as sorted(..., key=(price[i], -i))
        j = i
        while j > 0 and (
            price[i] < price[order[j - 1]] or (price[i] == price[order[j - 1]] and i > order[j - 1])
        ):
            order[j] = order[j - 1]
            j -= 1
        order[j] = i
    lots_left = p.order_size // step
    for k in range(n):
        i = order[k]
        lots = min(lots_left, size[i] // step)
        out[i] = lots * step
        lots_left -= lots


@njit(cache=True)
def _cell(layout: Layout, column: np.ndarray, remainder: int) -> tuple[int, int]:
    """(column, row) of `remainder` in the layout; (-1, -1) where not tracked.

    `column` is `Workspace.column`, the residue -> column map.

    Python twin: `sor.routers.allocator._Layout.cell`.
    """
    shifted = remainder - layout.origin
    row = shifted // layout.step
    residue = shifted % layout.step
    residue_cap = layout.displayed and layout.include_cap
    c = column[residue] if residue_cap else (0 if residue == 0 else -1)
    if row < 0 or c < 0:
        return -1, -1
    return c, row


@njit(cache=True)
def _dynamic_program(out: np.ndarray, p: Problem, v: Venues, tol: float, ws: Workspace) -> bool:
    """The exact split by the dynamic program, with the reference's float operations cell by cell.

    Python twin: `sor.routers.allocator._dynamic_program`, with `sor.routers.allocator._Layout.of`,
    `sor.routers.allocator._Layout.final`, `sor.routers.allocator._Layout.last_venue_values`,
    `sor.routers.allocator._Layout.grid_costs` and `sor.routers.allocator._Layout.value` inline.

    Layout (`Layout`): cell (c, row) is remainder origin + residues[c] + row * step. tables[i]
    holds V_{i+2}; cells never written are never read, except in V_{N+1}, which is filled with
    inf.
    """
    n, order_size, step = p.n, p.order_size, p.step
    displayed, include_cap = p.displayed, p.include_cap
    rows = order_size // step + 1
    residue_cap = displayed and include_cap
    # The layout: with cap "displayed" and include_cap a venue may take its odd-lot size, which
    # moves the remainder to another residue class mod step.
    if residue_cap:
        origin = 0
        first = order_size % step
        ws.residues[0] = first
        ws.column[first] = 0
        n_columns = 1
        ws.reach[0] = 1
        for i in range(n - 1):
            if v.size[i] % step:
                before = n_columns
                for c in range(before):
                    moved = (ws.residues[c] - v.size[i]) % step
                    if ws.column[moved] < 0:
                        ws.column[moved] = n_columns
                        ws.residues[n_columns] = moved
                        n_columns += 1
            ws.reach[i + 1] = n_columns
    else:
        origin = order_size % step
        ws.residues[0] = 0
        n_columns = 1
        for i in range(n):
            ws.reach[i] = 1
    layout = Layout(origin, rows, step, displayed, include_cap)

    # V_{N+1}: 0 at remainder 0, else inf.
    final = ws.tables[n - 1]
    for c in range(n_columns):
        for r in range(rows):
            final[c, r] = _INF
    if origin == 0:
        c0 = ws.column[0] if residue_cap else 0
        if c0 >= 0:
            final[c0, 0] = 0.0

    # V_N: venue N takes the whole remainder, a candidate when it is within its cap.
    if n >= 2:
        i = n - 1
        table = ws.tables[n - 2]
        for c in range(ws.reach[i]):
            base = origin + ws.residues[c]
            for r in range(rows):
                left = float(base) + float(r) * step
                value = _venue_cost(left, v.size[i], ws.take[i], v.rebate[i])
                if displayed and left > v.size[i]:
                    value = _INF
                table[c, r] = value

    # V_{i+1} from V_{i+2} for venues n-2 .. 1 (0-based i), as _Layout.venue_values.
    for i in range(n - 2, 0, -1):
        _venue_values(ws.tables[i - 1], ws.tables[i], i, layout, v, ws)

    # Forward pass: venue by venue, the smallest q_i that still reaches the optimum.
    ok = True
    remaining = order_size
    for i in range(n):
        if remaining == 0:
            break
        later = ws.tables[i]
        cap = min(remaining, v.size[i]) if displayed else remaining
        lots = cap // step
        c, row = _cell(layout, ws.column, remaining)
        best = _INF
        for k in range(lots + 1):
            cost = _venue_cost(float(k) * step, v.size[i], ws.take[i], v.rebate[i])
            cost = cost + (later[c, row - k] if c >= 0 else _INF)
            ws.line[k] = cost
            if cost < best:
                best = cost
        at_cap = _INF  # the cap as a candidate of its own, off the step grid
        if include_cap and cap % step:
            at_cap = _venue_cost(float(cap), v.size[i], ws.take[i], v.rebate[i])
            rest = remaining - cap
            if rest == 0:
                at_cap += 0.0
            else:
                c2, row2 = _cell(layout, ws.column, rest)
                at_cap += later[c2, row2] if c2 >= 0 else _INF
        optimum = min(best, at_cap)
        if optimum == _INF:
            ok = False  # only venue 1 can meet this: no split has sum == order_size
            break
        # The first candidate in the enumeration's order within tolerance: the task's tie rule.
        if best <= optimum + tol:
            for k in range(lots + 1):
                if ws.line[k] <= optimum + tol:
                    out[i] = k * step
                    break
        else:
            out[i] = cap
        remaining -= out[i]

    if residue_cap:  # leave the residue map clean for the next call
        for c in range(n_columns):
            ws.column[ws.residues[c]] = -1
    if not ok:
        for i in range(n):
            out[i] = 0
    return ok


@njit(cache=True)
def _venue_values(
    table: np.ndarray, later: np.ndarray, i: int, layout: Layout, v: Venues, ws: Workspace
) -> None:
    """V_i from V_{i+1} (`later`): the min-plus step of venue i, on its reachable columns.

    Python twin: `sor.routers.allocator._Layout.venue_values`, with
    `sor.routers.allocator._Layout._shifted` and `sor.routers.allocator._window_min` inline.

    A grid candidate q = k * step (k <= row) costs take * k * step while k * step <= size, and
    (take + rebate) * size - rebate * k * step beyond (cap "order" only). With j = row - k each
    side is take * grid[row] plus a minimum over a window of j (a monotone deque here, doubling in
    the reference: a minimum is exact in any order), the posted side a prefix minimum.
    """
    rows, origin, step = layout.rows, layout.origin, layout.step
    displayed, include_cap = layout.displayed, layout.include_cap
    columns, residues, column = ws.reach[i], ws.residues, ws.column
    size, take, rebate = v.size[i], ws.take[i], v.rebate[i]
    line, deque, prefix = ws.line, ws.deque, ws.prefix
    lots = size // step
    width = lots + 1
    posted_const = (take + rebate) * size
    for c in range(columns):
        later_c = later[c]
        out_c = table[c]
        # Sliding-window minimum of later[c, j] - take * grid[j] over j in [row - lots, row].
        head = 0
        tail = 0
        for r in range(rows):
            slope = take * (float(r) * step)
            line[r] = later_c[r] - slope
            while tail > head and line[deque[tail - 1]] >= line[r]:
                tail -= 1
            deque[tail] = r
            tail += 1
            if deque[head] <= r - width:
                head += 1
            out_c[r] = slope + line[deque[head]]
        if not displayed and rows > width:  # posted shares: k from lots + 1 up to row
            running = _INF
            for j in range(rows - width):
                running = min(running, later_c[j] + rebate * (float(j) * step))
                prefix[j] = running
            for r in range(width, rows):
                beyond = prefix[r - width] + (posted_const - rebate * (float(r) * step))
                out_c[r] = min(out_c[r], beyond)
        if include_cap:  # q = cap: the whole remainder (up to size with cap "displayed")
            base = origin + residues[c]
            c_shift = -1
            back = 0
            if displayed and size % step:
                back = (residues[c] - size) // step
                c_shift = column[(residues[c] - size) % step]
            for r in range(rows):
                left = float(base) + float(r) * step
                whole = _venue_cost(left, size, take, rebate)
                if displayed:
                    if left > size:
                        whole = _INF
                    if size % step:  # q = size < remainder, off the grid
                        r2 = back + r
                        shifted = later[c_shift, r2] if r2 >= 0 and c_shift >= 0 else _INF
                        whole = min(whole, take * size + shifted)
                out_c[r] = min(out_c[r], whole)


@njit(cache=True, nogil=True)
def _allocate_nb(
    order_size: int,
    ask: np.ndarray,
    ask_size: np.ndarray,
    fee: np.ndarray,
    rebate: np.ndarray,
    lambda_over: float,
    lambda_under: float,
    theta_queue: float,
    step: int,
    displayed: bool,
    include_cap: bool,
) -> tuple[bool, np.ndarray, float]:
    """The static split on arrays, compiled, for valid input (no checks here).

    Python twin: `sor.routers.allocator.allocate_arrays` (and `sor.routers.allocator.allocate`,
    its include_cap=False case). Takes `allocate_arrays`'s arguments in its order, with the cap as
    a flag, so that the two are called alike.

    Args:
        order_size: shares to buy, >= 0.
        ask, ask_size, fee, rebate: float64[N], int64[N], float64[N], float64[N] per venue.
        lambda_over, lambda_under, theta_queue: the penalties, dollars per share.
        step: lot size, shares, > 0.
        displayed: cap "displayed" (True) or "order" (False).
        include_cap: whether each venue's cap is a candidate too.

    Returns:
        (feasible, split int64[N], cost): the split and `_Problem.cost` of it, or
        (False, zeros, inf) where `allocate_arrays` returns (None, inf).
    """
    n = len(ask)
    p = Problem(order_size, n, lambda_over, lambda_under, theta_queue, step, displayed, include_cap)
    v = Venues(ask, ask_size, fee, rebate)
    ws = _new_workspace(n, order_size, step, displayed, include_cap)
    out = np.zeros(n, dtype=np.int64)
    if not _solve_into(out, p, v, ws):
        return False, out, _INF
    return True, out, _split_cost(p, v, out)


# ---------------------------------------------------------------------------------------------
# The engine loop with the router (sor.execution.engine.execute + sor.routers.static.Router,
# compiled)
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _keep_cheapest(
    takes: np.ndarray, allowance: int, prices: np.ndarray, left: np.ndarray, venues: np.ndarray
) -> int:
    """Cut `takes` (int64[N, L], in place) to its cheapest `allowance` shares; returns the total.

    Python twin: `sor.execution.engine.keep_cheapest` (the same order: price, then more shares
    left at the level, then the lower publisher_id).
    """
    n_venue, n_level = takes.shape
    budget = max(allowance, 0)
    done = np.zeros((n_venue, n_level), dtype=np.bool_)
    kept = 0
    while True:
        best_j, best_k = -1, -1
        for j in range(n_venue):
            for k in range(n_level):
                if takes[j, k] <= 0 or done[j, k]:
                    continue
                if best_j < 0:
                    best_j, best_k = j, k
                    continue
                p, bp = prices[j, k], prices[best_j, best_k]
                if p < bp or (
                    p == bp
                    and (
                        left[j, k] > left[best_j, best_k]
                        or (left[j, k] == left[best_j, best_k] and venues[j] < venues[best_j])
                    )
                ):
                    best_j, best_k = j, k
        if best_j < 0:
            return kept
        done[best_j, best_k] = True
        q = min(takes[best_j, best_k], budget)
        takes[best_j, best_k] = q
        budget -= q
        kept += q


@njit(cache=True)
def _next_fillable(market: MarketArrays, strict: bool, memory: Memory, t: int) -> int:
    """First snapshot from t where some venue has shares left, else T; the memory forgotten
    through that row.

    Python twin: `sor.execution.engine.next_fillable`.
    """
    n_snap, n_venue, n_level = market.ladder_sz.shape
    while t < n_snap:
        if strict:
            forget_row(market.ask_px, t, memory)
        for j in range(n_venue):
            for k in range(n_level):
                if (
                    level_left(
                        market.ladder_px[t, j, k], market.ladder_sz[t, j, k], strict, memory, j
                    )
                    > 0
                ):
                    return t
        t += 1
    return int(n_snap)


@njit(cache=True)
def _route(
    market: MarketArrays,
    rules: Rules,
    penalties: Penalties,
    ws: Workspace,
    filled_by_venue: np.ndarray,
    memory: Memory,
) -> Totals:
    """One parent order through the router over all snapshots.

    Python twin: `sor.execution.engine.execute` with `sor.routers.static.Router`, whose
    `sor.routers.static.Router.orders` (the venues the allocator sees, the child order) and
    `sor.execution.engine.participation_allowance` (the participation cap) are inline.

    Args:
        market: the `MarketArrays`.
        rules: the `Rules`.
        penalties: the `Penalties`.
        ws: `_run_workspace(N, rules)`, or any `Workspace` for N venues: a dynamic program for a
            child larger than it was sized for allocates its own.
        filled_by_venue: int64[N], zeroed and filled with shares per venue column.
        memory: a `Memory` for N venues, emptied and left holding what the order took (strict
            fill model), forgotten through the last row the loop saw.

    Returns:
        The `Totals`.
    """
    ladder_px = market.ladder_px
    price, fee, rebate = market.price, market.fee, market.rebate
    order_size, step, displayed = rules.order_size, rules.step, rules.displayed
    literal, strict = rules.literal, rules.strict
    n_snap, n_venue, n_level = market.ladder_sz.shape
    include_cap = not literal
    for j in range(n_venue):
        memory.n[j] = 0
    available = np.zeros(n_venue, dtype=np.int64)
    left = np.zeros((n_venue, n_level), dtype=np.int64)
    takes = np.zeros((n_venue, n_level), dtype=np.int64)
    sent = np.zeros(n_venue, dtype=np.int64)
    idx = np.zeros(n_venue, dtype=np.int64)
    sub_price = np.zeros(n_venue)
    sub_size = np.zeros(n_venue, dtype=np.int64)
    sub_fee = np.zeros(n_venue)
    sub_rebate = np.zeros(n_venue)
    venues = Venues(sub_price, sub_size, sub_fee, sub_rebate)  # the allocator's view
    split = np.zeros(n_venue, dtype=np.int64)
    for j in range(n_venue):
        filled_by_venue[j] = 0
    cash = 0.0
    filled = 0
    child_orders = 0
    last_fill_t = -1
    decisions = 0
    t = 0
    while filled < order_size:
        t = _next_fillable(market, strict, memory, t)
        if t >= n_snap:
            break
        allowance = order_size - filled
        if rules.max_participation >= 0:
            allowance = int(math.floor(rules.max_participation * market.cum_volume[t])) - filled
            if allowance <= 0:
                t += 1
                continue
        for j in range(n_venue):
            shown = 0
            for k in range(n_level):
                left[j, k] = level_left(
                    market.ladder_px[t, j, k], market.ladder_sz[t, j, k], strict, memory, j
                )
                shown += left[j, k]
            available[j] = shown
            sent[j] = 0
        # Router.orders: which venues the allocator sees, and the child order.
        m = 0
        shown_total = 0
        for j in range(n_venue):
            if (not displayed and np.isfinite(price[t, j])) or (displayed and available[j] > 0):
                idx[m] = j
                m += 1
                shown_total += available[j]
        child = order_size - filled
        if not literal and displayed:
            child = min(child, shown_total)
        if m > 0 and child > 0:
            for k in range(m):
                j = idx[k]
                sub_price[k] = price[t, j]
                sub_size[k] = available[j]
                sub_fee[k] = fee[j]
                sub_rebate[k] = rebate[j]
                if not np.isfinite(sub_price[k]):
                    return Totals(
                        _NON_FINITE_ASK, cash, filled, child_orders, last_fill_t, decisions, t
                    )
            decisions += 1
            problem = Problem(
                child,
                m,
                penalties.lambda_over,
                penalties.lambda_under,
                penalties.theta_queue,
                step,
                displayed,
                include_cap,
            )
            if _solve_into(split, problem, venues, ws):
                for k in range(m):
                    sent[idx[k]] = split[k]
        # Fills, as execute: each venue walks its levels in price order (`walk_venue`); a cap
        # that binds keeps the cheapest shares (`_keep_cheapest`); the cash is summed level by
        # level, then venue by venue in column order, as there.
        total = 0
        for j in range(n_venue):
            need = sent[j] if sent[j] > 0 else 0
            for k in range(n_level):
                q = min(need, left[j, k]) if left[j, k] > 0 else 0
                takes[j, k] = q
                need -= q
                total += q
        if total > allowance:
            total = _keep_cheapest(takes, allowance, market.ladder_px[t], left, market.venues)
        factor = 1.0 + rules.impact_charge * math.sqrt(float(total))
        any_fill = False
        for j in range(n_venue):
            got = 0
            spent = 0.0
            for k in range(n_level):
                q = takes[j, k]
                if q > 0:
                    spent += q * ladder_px[t, j, k]
                    got += q
                    if strict and not take(memory, j, ladder_px[t, j, k], q):
                        return Totals(
                            _MEMORY_FULL, cash, filled, child_orders, last_fill_t, decisions, t
                        )
            if got == 0:
                continue
            cash += (spent + got * fee[j]) * factor
            filled += got
            filled_by_venue[j] += got
            any_fill = True
        if any_fill:
            child_orders += 1
            last_fill_t = t
        t += 1
    return Totals(_OK, cash, filled, child_orders, last_fill_t, decisions, t)


@njit(cache=True, nogil=True)
def run_router_nb(
    market: tuple[np.ndarray, ...],
    rules: tuple[int, int, bool, bool, bool, float, float],
    penalties: tuple[float, float, float],
) -> tuple[tuple[Any, ...], np.ndarray, tuple[np.ndarray, ...]]:
    """The whole router backtest over the snapshot arrays: `_route` in a workspace of its own.

    Python twin: `sor.execution.engine.execute` with `sor.routers.static.Router`.

    Args:
        market, rules, penalties: the fields of `MarketArrays`, `Rules` and `Penalties` as plain
            tuples (see "The kernel's structs").

    Returns:
        (totals, shares_by_venue, memory): the fields of `Totals` as a plain tuple, int64[N]
        shares per venue column, and the fields of the `Memory` the order left.
    """
    market, rules, penalties = MarketArrays(*market), Rules(*rules), Penalties(*penalties)
    n_venue = market.ask_px.shape[1]
    ws = _run_workspace(n_venue, rules)
    by_venue = np.zeros(n_venue, dtype=np.int64)
    memory = empty_memory(n_venue)
    totals = _route(market, rules, penalties, ws, by_venue, memory)
    return totals[:], by_venue, memory[:]


@njit(cache=True, nogil=True)
def _run_batch(
    market: tuple[np.ndarray, ...],
    rules: tuple[int, int, bool, bool, bool, float, float],
    params: np.ndarray,
    out: tuple[np.ndarray, ...],
) -> None:
    """`_route` for each row (lambda_over, lambda_under, theta_queue) of `params`, one workspace.

    Python twin: `sor.execution.engine.execute` with `sor.routers.static.Router`, once per trial.

    Args:
        market, rules: the fields of `MarketArrays` and `Rules` as plain tuples.
        params: float64[P, 3], the penalties of each trial.
        out: the fields of a `BatchTotals` of P rows as a plain tuple, filled row by row.
    """
    market, rules, out = MarketArrays(*market), Rules(*rules), BatchTotals(*out)
    ws = _run_workspace(market.ask_px.shape[1], rules)
    for p in range(params.shape[0]):
        penalties = Penalties(params[p, 0], params[p, 1], params[p, 2])
        memory = Memory(out.memory_px[p], out.memory_sz[p], out.memory_n[p])
        totals = _route(market, rules, penalties, ws, out.by_venue[p], memory)
        out.status[p] = totals.status
        out.cash[p] = totals.cash
        out.filled[p] = totals.filled
        out.child_orders[p] = totals.child_orders
        out.last_fill_t[p] = totals.last_fill_t
        out.decisions[p] = totals.decisions
        out.t_end[p] = totals.t_end


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

# What every trial over one market shares, per cost basis: the kernel's input arrays, among them
# the allocator's price matrix (ask minus the reference), which costs about as much to compute
# as a compiled trial. Dropped with the market.
_PREPARED: weakref.WeakKeyDictionary[Market, dict[str, MarketArrays]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class RunStats:
    """What one compiled run did, beside its `ExecutionResult` (for benchmarks).

    Attributes:
        decisions: allocator calls by the router.
        snapshots: snapshots the loop went through (index where it stopped).
    """

    decisions: int
    snapshots: int


def allocator_prices(market: Market, cost_basis: str) -> np.ndarray:
    """float64[T, N]: what the router's allocator sees as the ask (`Router`), cached per market."""
    return _arrays(market, cost_basis).price


def _arrays(market: Market, cost_basis: str) -> MarketArrays:
    """The kernel's `MarketArrays` of `market` for `cost_basis`, checked and cached."""
    if cost_basis not in COST_BASES:
        raise ValueError(f"`cost_basis` must be one of {COST_BASES}, but got {cost_basis=}.")
    cached = _PREPARED.setdefault(market, {})
    if cost_basis not in cached:
        snaps, costs = market.snaps, market.costs
        for name in ("fee", "rebate"):
            values = getattr(costs, name)
            if not np.isfinite(values).all():
                raise ValueError(f"`{name}` must be finite, but got {name}={values.tolist()}.")
        reference = reference_mid(snaps) if cost_basis == "mid" else np.zeros(len(snaps))
        ladder_px, ladder_sz = snaps.ask_ladder()
        cached[cost_basis] = MarketArrays(
            ask_px=np.ascontiguousarray(snaps.ask_px, dtype=np.float64),
            ladder_px=np.ascontiguousarray(ladder_px, dtype=np.float64),
            ladder_sz=np.ascontiguousarray(ladder_sz, dtype=np.int64),
            price=np.ascontiguousarray(snaps.ask_px - reference[:, None], dtype=np.float64),
            fee=np.ascontiguousarray(costs.fee, dtype=np.float64),
            rebate=np.ascontiguousarray(costs.rebate, dtype=np.float64),
            cum_volume=np.cumsum(snaps.trade_volume, dtype=np.int64),
            venues=np.ascontiguousarray(snaps.venues, dtype=np.int64),
        )
    return cached[cost_basis]


def compiled_inputs(
    market: Market, order: OrderRules
) -> tuple[tuple[np.ndarray, ...], tuple[int, int, bool, bool, bool, float, float]]:
    """The plain tuples `run_router_nb` takes for `market` and `order` (cached per market):
    for timing or replaying the compiled call alone, as the benchmarks and tests do.

    Example:
        >>> arrays, rules = compiled_inputs(market, order)  # doctest: +SKIP
        >>> penalties = (0.4, 0.6, 0.3)
        >>> totals, by_venue, memory = run_router_nb(arrays, rules, penalties)  # doctest: +SKIP
    """
    _check(order, [])
    return tuple(_arrays(market, order.cost_basis)), _rules(order, market)


def _rules(order: OrderRules, market: Market) -> tuple[int, int, bool, bool, bool, float, float]:
    """The fields of the kernel's `Rules` for a checked `order`, as the plain tuple that the entry
    points take (built directly: a `Rules` and its conversion cost 0.5 us a trial)."""
    cap = order.max_participation
    return (
        order.size,  # order_size
        order.step,  # step
        order.cap == "displayed",  # displayed
        order.child_sizing == "all_or_none",  # literal
        order.fill_model == "strict",  # strict
        -1.0 if cap is None else float(cap),  # max_participation
        temporary_impact_charge(market.after.impact, order.temporary_impact),  # impact_charge
    )


def _check(order: OrderRules, params_list: Sequence[RouterParams]) -> None:
    for value, allowed, key in (
        (order.cap, CAPS, "cap"),
        (order.child_sizing, CHILD_SIZINGS, "child_sizing"),
        (order.fill_model, FILL_MODELS, "fill_model"),
    ):
        if value not in allowed:
            raise ValueError(f"`{key}` must be one of {allowed}, but got {value!r}.")
    if order.size <= 0 or order.step <= 0:
        raise ValueError(
            f"`size > 0 and step > 0` must hold, but got {order.size=}, {order.step=}."
        )
    for params in params_list:
        for name in ("lambda_over", "lambda_under", "theta_queue"):
            number = float(getattr(params, name))
            if not math.isfinite(number):
                raise ValueError(f"`{name}` must be finite, but got {name}={number}.")


def _result(
    market: Market,
    order: OrderRules,
    params: RouterParams,
    totals: Totals,
    by_venue: np.ndarray,
    memory: tuple[np.ndarray, ...],
) -> ExecutionResult:
    """The `ExecutionResult` that `execute` builds from the same numbers, the clean-up included
    (compiled, from the memory the kernel left: `sor.execution.cleanup_nb.clean_up_compiled`)."""
    status, cash, filled, child_orders, last_fill_t, _, _ = totals
    if status == _NON_FINITE_ASK:
        raise ValueError("`ask` must be finite, but the router passed a venue with no price.")
    if status == _MEMORY_FULL:
        return _reference(market, order, params)
    snaps = market.snaps
    last_fill_ts = int(snaps.ts[last_fill_t]) if last_fill_t >= 0 else 0
    unfilled = order.size - int(filled)
    taken = Memory(*memory) if order.fill_model == "strict" else None
    limits = OrderLimits(
        order.max_participation,
        int(snaps.trade_volume.sum()),
        int(filled),
        temporary_impact_charge(market.after.impact, order.temporary_impact),
    )
    cleanup = clean_up_compiled(market.after, market.costs.fee, unfilled, taken, limits)
    return result_of(snaps, order.size, cash, filled, by_venue, child_orders, last_fill_ts, cleanup)


def _reference(market: Market, order: OrderRules, params: RouterParams) -> ExecutionResult:
    """The Python reference run (`execute` with `Router`), for a run the kernel's `Memory` is too
    small for: the same answer, slower."""
    return run_strategy(market, make_router(market, params, order), order)


def evaluate_compiled_stats(
    market: Market, params: RouterParams, order: OrderRules
) -> tuple[ExecutionResult, RunStats]:
    """`evaluate_compiled` and what the run did (allocator calls, snapshots gone through)."""
    _check(order, [params])
    penalties = (float(params.lambda_over), float(params.lambda_under), float(params.theta_queue))
    totals, by_venue, memory = run_router_nb(
        tuple(_arrays(market, order.cost_basis)), _rules(order, market), penalties
    )
    totals = Totals(*totals)
    result = _result(market, order, params, totals, by_venue, memory)
    return result, RunStats(decisions=int(totals.decisions), snapshots=int(totals.t_end))


def evaluate_compiled(market: Market, params: RouterParams, order: OrderRules) -> ExecutionResult:
    """`sor.evaluation.backtest.evaluate`, compiled: the same `ExecutionResult` (module docstring).

    Args:
        market: the snapshots with fees (`sor.evaluation.backtest.make_market`).
        params: the penalties, dollars per share.
        order: the parent order and the router's rules (size, step, cap, cost_basis,
            child_sizing, fill_model).

    Returns:
        The execution result of the router at `params`.

    Raises:
        ValueError: a penalty, fee or rebate is not finite, or an option is unknown.

    Example:
        >>> params = RouterParams(lambda_over=0.4, lambda_under=0.6, theta_queue=0.3)
        >>> evaluate_compiled(market, params, config.order).completed_cash  # doctest: +SKIP
    """
    return evaluate_compiled_stats(market, params, order)[0]


def evaluate_batch_compiled(
    market: Market, params_list: Sequence[RouterParams], order: OrderRules
) -> list[ExecutionResult]:
    """`evaluate_compiled` for each of `params_list`, in one compiled call.

    Args:
        market: the snapshots with fees.
        params_list: the penalties of each trial.
        order: the parent order and the router's rules, shared by the trials.

    Returns:
        One result per parameter set, in order.
    """
    params_list = list(params_list)
    _check(order, params_list)
    if not params_list:
        return []
    params = np.array(
        [[p.lambda_over, p.lambda_under, p.theta_queue] for p in params_list], dtype=np.float64
    )
    out = BatchTotals.zeros(len(params_list), market.snaps.ask_sz.shape[1])
    _run_batch(tuple(_arrays(market, order.cost_basis)), _rules(order, market), params, tuple(out))
    return [
        _result(
            market,
            order,
            params_list[p],
            totals,
            out.by_venue[p],
            (out.memory_px[p], out.memory_sz[p], out.memory_n[p]),
        )
        for p, totals in enumerate(out.rows())
    ]


def warm_up() -> None:
    """Compile the kernel, or load it from Numba's on-disk cache, on a two-snapshot market.

    The first call in a fresh checkout compiles for 10-15 s and writes the cache beside this file;
    calling this in the driver before work goes out lets Ray workers load that cache (under a
    second) instead of all compiling at once.
    """
    snaps = Snapshots(
        ts=np.array([0, 1], dtype=np.int64),
        venues=np.array([1, 2], dtype=np.int32),
        ask_px=np.array([[10.0, 10.01], [10.0, 10.01]]),
        ask_sz=np.array([[100, 100], [100, 100]], dtype=np.int64),
        bid_px=np.array([[9.99, 9.98], [9.99, 9.98]]),
        bid_sz=np.array([[100, 100], [100, 100]], dtype=np.int64),
        trade_volume=np.zeros(2, dtype=np.int64),
    )
    market = build_market(snaps, venue_costs(snaps.venues))
    evaluate_compiled(market, RouterParams(0.0, 0.01, 0.0), OrderRules())
