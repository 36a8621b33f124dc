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
  fill (`_next_fillable`), the same strict-model bookkeeping (`taken`, `taken_level`), the same
  child sizing and venue selection (`Router.orders`), and the same cash: each snapshot's fills
  summed by `np.dot` over the venues that filled, in column order, exactly as the engine calls it.
  Both `np.dot`s are BLAS `ddot` (Numba's through SciPy's OpenBLAS, the engine's through NumPy's),
  which sums in SIMD lanes from 16 numbers on, so a plain loop would not give the engine's float;
  the same `ddot` on the same products does. `total_cash` is therefore bit-identical as long as the
  two OpenBLAS builds sum alike (`test_many_venues_filling_at_once_sum_like_the_engine` checks it);
  were they to differ, only snapshots filling at 16 or more venues could, by an ulp or so.

Nothing here allocates per snapshot: the dynamic program's tables are one workspace per run, sized
for children of up to 100 lots (a larger child's program allocates its own, as the reference
does at every call).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from sor.config import OrderConfig
from sor.execution.engine import FILL_MODELS, ExecutionResult, cleanup_price, result_of
from sor.routers.allocator import _TIE_RTOL
from sor.routers.static import CAPS, CHILD_SIZINGS, COST_BASES, RouterParams, reference_mid

if TYPE_CHECKING:  # sor.evaluation.backtest may import this module: no import cycle at run time
    from sor.evaluation.backtest import Market

__all__ = ["evaluate_batch_compiled", "evaluate_compiled"]

_INF = np.inf

#: `run_router_nb` status codes.
_OK = 0
_NON_FINITE_ASK = 1  # a venue the router passes to the allocator has no finite price


# ---------------------------------------------------------------------------------------------
# The allocator (sor.routers.allocator, compiled)
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _columns_needed(n_venues, step, displayed, include_cap):
    """Most residue columns the program can track: min(step, 2^(N-1))
    (sor.routers.allocator._Layout)."""
    if not (displayed and include_cap) or n_venues <= 1:
        return 1
    return min(step, 1 << min(n_venues - 1, 40))


@njit(cache=True)
def _new_workspace(n_venues, max_order, step, displayed, include_cap):
    """Scratch arrays of the dynamic program, sized once for a run (no allocation per call).

    Returns:
        (tables, column, residues, reach, take, line, deque, prefix): tables float64[N, C, K],
        tables[i] holding V_{i+2} of `sor.routers.allocator` (what the venues after venue i cost) on
        C residue columns by K rows of remainders; column int64[step], residue -> column, -1 where
        not tracked (reset after each call); residues int64[C] in the order the venues first
        reach them; reach int64[N], columns reachable before venue i; take float64[N], the
        separable cost of a filled share; line, deque, prefix: one row of the min-plus step.
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
    return tables, column, residues, reach, take, line, deque, prefix


@njit(cache=True)
def _initial_shares(order_size, step):
    """Shares the first workspace is sized for: the order, up to 100 lots (K <= 101).

    With cap "displayed" a child order is at most what is shown, and the fast paths need no
    tables, so a huge parent order must not size them: a dynamic program for a child larger than
    the workspace allocates its own tables, as the reference does for every call.
    """
    return min(order_size, 100 * step)


@njit(cache=True)
def _tolerance(order_size, ask, fee, rebate, n, lambda_under, theta_queue):
    """`_Problem.tolerance`: cost difference, dollars, below which two splits tie."""
    top = 0.0
    top_rebate = 0.0
    for i in range(n):
        top = max(top, abs(ask[i] + fee[i]))
        top_rebate = max(top_rebate, abs(rebate[i]))
    per_share = top + top_rebate + abs(theta_queue + lambda_under)
    return _TIE_RTOL * (order_size * per_share + 1.0)


@njit(cache=True)
def _venue_cost(q, size, take, rebate):
    """c_i(q) of `sor.routers.allocator`, dollars; q in shares as a float (exact below 2^53)."""
    filled = min(q, float(size))
    return filled * take - (q - filled) * rebate


@njit(cache=True)
def _split_cost(order_size, split, ask, size, fee, rebate, n, lo, lu, theta):
    """`_Problem.cost`: model.md §3 term by term, in the reference's order of operations."""
    executed = 0
    cash = 0.0
    for i in range(n):
        exe = min(split[i], size[i])
        executed += exe
        cash += exe * (ask[i] + fee[i]) - max(split[i] - exe, 0) * rebate[i]
    underfill = max(order_size - executed, 0)
    overfill = max(executed - order_size, 0)
    return cash + theta * (underfill + overfill) + lu * underfill + lo * overfill


@njit(cache=True)
def _solve_into(
    out,
    order_size,
    ask,
    size,
    fee,
    rebate,
    n,
    lambda_under,
    theta_queue,
    step,
    displayed,
    include_cap,
    ws,
):
    """`sor.routers.allocator._solve` on the first n entries; writes the split to out[:n].

    Returns:
        False where no candidate has sum == order_size (out is then all zero).
    """
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
            usable += size[i] if include_cap else size[i] - size[i] % step
        if usable < order_size:
            return False
    take = ws[4]
    shortfall = theta_queue + lambda_under  # what each filled share saves (cap "order")
    for i in range(n):
        take[i] = ask[i] + fee[i] if displayed else ask[i] + fee[i] - shortfall
    if displayed and not include_cap:
        _cheapest_first(out, size, take, n, order_size, step)
        return True
    if displayed:
        total = 0
        for i in range(n):
            total += size[i]
        if total == order_size:  # q_i <= a_i and sum q_i == sum a_i leave one split
            for i in range(n):
                out[i] = size[i]
            return True
    tolerance = _tolerance(order_size, ask, fee, rebate, n, lambda_under, theta_queue)
    if not displayed:
        concave = True
        for i in range(n):
            if not take[i] + rebate[i] >= 0:
                concave = False
                break
        if concave:  # _best_single_venue: the cheapest venue takes all, ties to the last one
            lowest = _INF
            for i in range(n):
                lowest = min(lowest, _venue_cost(float(order_size), size[i], take[i], rebate[i]))
            cutoff = lowest + tolerance
            best = 0
            for i in range(n):
                if _venue_cost(float(order_size), size[i], take[i], rebate[i]) <= cutoff:
                    best = i
            out[best] = order_size
            return True
    if order_size // step + 1 > ws[0].shape[2]:  # a child larger than the workspace: a new one
        larger = _new_workspace(n, order_size, step, displayed, include_cap)
        larger[4][:n] = take[:n]
        ws = larger
    return _dynamic_program(
        out, order_size, size, rebate, n, step, displayed, include_cap, tolerance, ws
    )


@njit(cache=True)
def _cheapest_first(out, size, price, n, order_size, step):
    """Cap "displayed" on the step grid: cheapest ask + fee first, ties to later venues."""
    order = np.empty(n, dtype=np.int64)
    for i in range(n):  # insertion sort by (price, -i), as sorted(..., key=(price[i], -i))
        j = i
        while j > 0 and (
            price[i] < price[order[j - 1]] or (price[i] == price[order[j - 1]] and i > order[j - 1])
        ):
            order[j] = order[j - 1]
            j -= 1
        order[j] = i
    lots_left = order_size // step
    for k in range(n):
        i = order[k]
        lots = min(lots_left, size[i] // step)
        out[i] = lots * step
        lots_left -= lots


@njit(cache=True)
def _cell(remainder, origin, step, column, displayed_cap):
    """(column, row) of `remainder` in the layout; (-1, -1) where not tracked."""
    shifted = remainder - origin
    row = shifted // step
    residue = shifted % step
    c = column[residue] if displayed_cap else (0 if residue == 0 else -1)
    if row < 0 or c < 0:
        return -1, -1
    return c, row


@njit(cache=True)
def _dynamic_program(out, order_size, size, rebate, n, step, displayed, include_cap, tol, ws):
    """`sor.routers.allocator._dynamic_program`, with the same float operations cell by cell.

    Layout (`sor.routers.allocator._Layout`): cell (c, row) is remainder origin + residues[c] + row
    * step. tables[i] holds V_{i+2}; cells never written are never read, except in V_{N+1}, which is
    filled with inf.
    """
    tables, column, residues, reach, take, line, deque, prefix = ws
    rows = order_size // step + 1
    residue_cap = displayed and include_cap
    # The layout: with cap "displayed" and include_cap a venue may take its odd-lot size, which
    # moves the remainder to another residue class mod step.
    if residue_cap:
        origin = 0
        first = order_size % step
        residues[0] = first
        column[first] = 0
        n_columns = 1
        reach[0] = 1
        for i in range(n - 1):
            if size[i] % step:
                before = n_columns
                for c in range(before):
                    moved = (residues[c] - size[i]) % step
                    if column[moved] < 0:
                        column[moved] = n_columns
                        residues[n_columns] = moved
                        n_columns += 1
            reach[i + 1] = n_columns
    else:
        origin = order_size % step
        residues[0] = 0
        n_columns = 1
        for i in range(n):
            reach[i] = 1

    # V_{N+1}: 0 at remainder 0, else inf.
    final = tables[n - 1]
    for c in range(n_columns):
        for r in range(rows):
            final[c, r] = _INF
    if origin == 0:
        c0 = column[0] if residue_cap else 0
        if c0 >= 0:
            final[c0, 0] = 0.0

    # V_N: venue N takes the whole remainder, a candidate when it is within its cap.
    if n >= 2:
        i = n - 1
        table = tables[n - 2]
        for c in range(reach[i]):
            base = origin + residues[c]
            for r in range(rows):
                left = float(base) + float(r) * step
                value = _venue_cost(left, size[i], take[i], rebate[i])
                if displayed and left > size[i]:
                    value = _INF
                table[c, r] = value

    # V_{i+1} from V_{i+2} for venues n-2 .. 1 (0-based i), as _Layout.venue_values.
    for i in range(n - 2, 0, -1):
        _venue_values(
            tables[i - 1],
            tables[i],
            reach[i],
            rows,
            origin,
            residues,
            column,
            step,
            size[i],
            take[i],
            rebate[i],
            displayed,
            include_cap,
            line,
            deque,
            prefix,
        )

    # Forward pass: venue by venue, the smallest q_i that still reaches the optimum.
    ok = True
    remaining = order_size
    for i in range(n):
        if remaining == 0:
            break
        later = tables[i]
        cap = min(remaining, size[i]) if displayed else remaining
        lots = cap // step
        c, row = _cell(remaining, origin, step, column, residue_cap)
        best = _INF
        for k in range(lots + 1):
            v = _venue_cost(float(k) * step, size[i], take[i], rebate[i])
            v = v + (later[c, row - k] if c >= 0 else _INF)
            line[k] = v
            if v < best:
                best = v
        at_cap = _INF  # the cap as a candidate of its own, off the step grid
        if include_cap and cap % step:
            at_cap = _venue_cost(float(cap), size[i], take[i], rebate[i])
            rest = remaining - cap
            if rest == 0:
                at_cap += 0.0
            else:
                c2, row2 = _cell(rest, origin, step, column, residue_cap)
                at_cap += later[c2, row2] if c2 >= 0 else _INF
        optimum = min(best, at_cap)
        if optimum == _INF:
            ok = False  # only venue 1 can meet this: no split has sum == order_size
            break
        # The first candidate in the enumeration's order within tolerance: the task's tie rule.
        if best <= optimum + tol:
            for k in range(lots + 1):
                if line[k] <= optimum + tol:
                    out[i] = k * step
                    break
        else:
            out[i] = cap
        remaining -= out[i]

    if residue_cap:  # leave the residue map clean for the next call
        for c in range(n_columns):
            column[residues[c]] = -1
    if not ok:
        for i in range(n):
            out[i] = 0
    return ok


@njit(cache=True)
def _venue_values(
    table,
    later,
    columns,
    rows,
    origin,
    residues,
    column,
    step,
    size,
    take,
    rebate,
    displayed,
    include_cap,
    line,
    deque,
    prefix,
):
    """`_Layout.venue_values`: V_i from V_{i+1} (`later`) on the first `columns` columns.

    A grid candidate q = k * step (k <= row) costs take * k * step while k * step <= size, and
    (take + rebate) * size - rebate * k * step beyond (cap "order" only). With j = row - k each
    side is take * grid[row] plus a minimum over a window of j (a monotone deque here, doubling in
    the reference: a minimum is exact in any order), the posted side a prefix minimum.
    """
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
    order_size,
    ask,
    ask_size,
    fee,
    rebate,
    lambda_over,
    lambda_under,
    theta_queue,
    step,
    displayed,
    include_cap,
):
    """`sor.routers.allocator.allocate_arrays`, compiled, for valid input (no checks here).

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
    ws = _new_workspace(n, order_size, step, displayed, include_cap)
    out = np.zeros(n, dtype=np.int64)
    ok = _solve_into(
        out,
        order_size,
        ask,
        ask_size,
        fee,
        rebate,
        n,
        lambda_under,
        theta_queue,
        step,
        displayed,
        include_cap,
        ws,
    )
    if not ok:
        return False, out, _INF
    cost = _split_cost(
        order_size, out, ask, ask_size, fee, rebate, n, lambda_over, lambda_under, theta_queue
    )
    return True, out, cost


# ---------------------------------------------------------------------------------------------
# The engine loop with the router (sor.execution.engine.execute + sor.routers.static.Router,
# compiled)
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _next_fillable(ask_sz, levels, taken, taken_level, t, strict):
    """`sor.execution.engine._next_fillable`: first snapshot from t where some venue has shares."""
    n_snap, n_venue = ask_sz.shape
    while t < n_snap:
        for j in range(n_venue):
            shown = ask_sz[t, j]
            if strict and levels[t, j] == taken_level[j]:
                shown -= taken[j]
            if shown > 0:
                return t
        t += 1
    return n_snap


@njit(cache=True)
def _route(
    ask_px,
    ask_sz,
    levels,
    price,
    fee,
    rebate,
    lambda_over,
    lambda_under,
    theta_queue,
    step,
    displayed,
    literal,
    strict,
    order_size,
    ws,
    filled_by_venue,
):
    """One parent order through the router over all snapshots (`execute` with `Router`).

    Args:
        ask_px: float64[T, N], dollars per share (NaN: no ask).
        ask_sz: int64[T, N], shares shown.
        levels: int64[T, N], `ask_levels` (read with the strict model only).
        price: float64[T, N], what the allocator sees as the ask: ask_px minus the reference.
        fee, rebate: float64[N], dollars per share.
        lambda_over, lambda_under, theta_queue: the penalties, dollars per share.
        step: lot size, shares.
        displayed: cap "displayed" (True) or "order".
        literal: child sizing "all_or_none" (True) or "available".
        strict: fill model "strict" (True) or "naive".
        order_size: shares to buy.
        ws: `_new_workspace(N, shares, step, displayed, not literal)` for some number of shares;
            a dynamic program for a larger child order allocates its own.
        filled_by_venue: int64[N], zeroed and filled with shares per venue column.

    Returns:
        (status, total_cash, filled_shares, child_orders, last_fill_t, decisions, t_end):
        status `_OK` or `_NON_FINITE_ASK`; last_fill_t -1 when nothing filled; decisions is the
        number of allocator calls; t_end the snapshot index where the loop stopped.
    """
    n_snap, n_venue = ask_sz.shape
    include_cap = not literal
    taken = np.zeros(n_venue, dtype=np.int64)
    taken_level = np.full(n_venue, -1, dtype=np.int64)
    available = np.zeros(n_venue, dtype=np.int64)
    sent = np.zeros(n_venue, dtype=np.int64)
    idx = np.zeros(n_venue, dtype=np.int64)
    sub_price = np.zeros(n_venue)
    sub_size = np.zeros(n_venue, dtype=np.int64)
    sub_fee = np.zeros(n_venue)
    sub_rebate = np.zeros(n_venue)
    split = np.zeros(n_venue, dtype=np.int64)
    dot_fill = np.zeros(n_venue)
    dot_px = np.zeros(n_venue)
    for j in range(n_venue):
        filled_by_venue[j] = 0
    cash = 0.0
    filled = 0
    child_orders = 0
    last_fill_t = -1
    decisions = 0
    t = 0
    while filled < order_size:
        t = _next_fillable(ask_sz, levels, taken, taken_level, t, strict)
        if t >= n_snap:
            break
        for j in range(n_venue):
            shown = ask_sz[t, j]
            if strict and levels[t, j] == taken_level[j]:
                shown = max(shown - taken[j], 0)
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
                    return _NON_FINITE_ASK, cash, filled, child_orders, last_fill_t, decisions, t
            decisions += 1
            ok = _solve_into(
                split,
                child,
                sub_price,
                sub_size,
                sub_fee,
                sub_rebate,
                m,
                lambda_under,
                theta_queue,
                step,
                displayed,
                include_cap,
                ws,
            )
            if ok:
                for k in range(m):
                    sent[idx[k]] = split[k]
        # Fills, as execute: cash is np.dot over the venues that filled, in column order.
        n_filled = 0
        for j in range(n_venue):
            fill = min(sent[j], available[j])
            if fill != 0:
                dot_fill[n_filled] = fill
                dot_px[n_filled] = ask_px[t, j] + fee[j]
                n_filled += 1
                filled += fill
                filled_by_venue[j] += fill
                if strict:
                    if levels[t, j] != taken_level[j]:
                        taken[j] = 0
                    taken[j] += fill
                    taken_level[j] = levels[t, j]
        if n_filled:
            child_orders += 1
            cash += np.dot(dot_fill[:n_filled], dot_px[:n_filled])
            last_fill_t = t
        t += 1
    return _OK, cash, filled, child_orders, last_fill_t, decisions, t


@njit(cache=True, nogil=True)
def run_router_nb(
    ask_px,
    ask_sz,
    levels,
    price,
    fee,
    rebate,
    lambda_over,
    lambda_under,
    theta_queue,
    step,
    displayed,
    literal,
    strict,
    order_size,
):
    """The whole router backtest over the snapshot arrays, compiled (`execute` with `Router`).

    Args: as `_route` without the workspace and the output array.

    Returns:
        (status, total_cash, filled_shares, shares_by_venue int64[N], child_orders, last_fill_t,
        decisions, t_end): as `_route`; shares_by_venue per venue column.
    """
    n_venue = ask_sz.shape[1]
    shares = _initial_shares(order_size, step)
    ws = _new_workspace(n_venue, shares, step, displayed, not literal)
    by_venue = np.zeros(n_venue, dtype=np.int64)
    status, cash, filled, child_orders, last_fill_t, decisions, t_end = _route(
        ask_px,
        ask_sz,
        levels,
        price,
        fee,
        rebate,
        lambda_over,
        lambda_under,
        theta_queue,
        step,
        displayed,
        literal,
        strict,
        order_size,
        ws,
        by_venue,
    )
    return status, cash, filled, by_venue, child_orders, last_fill_t, decisions, t_end


@njit(cache=True, nogil=True)
def _run_batch(
    ask_px,
    ask_sz,
    levels,
    price,
    fee,
    rebate,
    params,
    step,
    displayed,
    literal,
    strict,
    order_size,
    status,
    cash,
    filled,
    child_orders,
    last_fill_t,
    decisions,
    t_end,
    filled_by_venue,
):
    """`_route` for each row (lambda_over, lambda_under, theta_queue) of `params`."""
    ws = _new_workspace(
        ask_sz.shape[1], _initial_shares(order_size, step), step, displayed, not literal
    )
    for p in range(params.shape[0]):
        out = _route(
            ask_px,
            ask_sz,
            levels,
            price,
            fee,
            rebate,
            params[p, 0],
            params[p, 1],
            params[p, 2],
            step,
            displayed,
            literal,
            strict,
            order_size,
            ws,
            filled_by_venue[p],
        )
        status[p], cash[p], filled[p], child_orders[p], last_fill_t[p], decisions[p], t_end[p] = out


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------

# What every trial over one market shares, per cost basis: the kernel's input arrays, among them
# the allocator's price matrix (ask minus the reference), which costs about as much to compute
# as a compiled trial. Dropped with the market.
_PREPARED: weakref.WeakKeyDictionary[Market, dict[str, tuple]] = weakref.WeakKeyDictionary()


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
    return _arrays(market, cost_basis)[3]


def _arrays(market: Market, cost_basis: str) -> tuple:
    """(ask_px, ask_sz, levels, price, fee, rebate) for the kernel, checked and cached."""
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
        cached[cost_basis] = (
            np.ascontiguousarray(snaps.ask_px, dtype=np.float64),
            np.ascontiguousarray(snaps.ask_sz, dtype=np.int64),
            np.ascontiguousarray(market.levels, dtype=np.int64),
            np.ascontiguousarray(snaps.ask_px - reference[:, None], dtype=np.float64),
            np.ascontiguousarray(costs.fee, dtype=np.float64),
            np.ascontiguousarray(costs.rebate, dtype=np.float64),
        )
    return cached[cost_basis]


def _check(order: OrderConfig, params_list: Sequence[RouterParams]) -> None:
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
            value = float(getattr(params, name))
            if not math.isfinite(value):
                raise ValueError(f"`{name}` must be finite, but got {name}={value}.")


def _result(
    market: Market,
    order: OrderConfig,
    status: int,
    cash: float,
    filled: int,
    by_venue: np.ndarray,
    child_orders: int,
    last_fill_t: int,
    cleanup: float | None,
) -> ExecutionResult:
    """The `ExecutionResult` that `execute` builds from the same numbers."""
    if status == _NON_FINITE_ASK:
        raise ValueError("`ask` must be finite, but the router passed a venue with no price.")
    snaps = market.snaps
    last_fill_ts = int(snaps.ts[last_fill_t]) if last_fill_t >= 0 else 0
    return result_of(
        snaps, market.costs, order.size, cash, filled, by_venue, child_orders, last_fill_ts, cleanup
    )


def evaluate_compiled_stats(
    market: Market, params: RouterParams, order: OrderConfig
) -> tuple[ExecutionResult, RunStats]:
    """`evaluate_compiled` and what the run did (allocator calls, snapshots gone through)."""
    _check(order, [params])
    displayed, literal = order.cap == "displayed", order.child_sizing == "all_or_none"
    status, cash, filled, by_venue, child_orders, last_fill_t, decisions, t_end = run_router_nb(
        *_arrays(market, order.cost_basis),
        float(params.lambda_over),
        float(params.lambda_under),
        float(params.theta_queue),
        order.step,
        displayed,
        literal,
        order.fill_model == "strict",
        order.size,
    )
    result = _result(market, order, status, cash, filled, by_venue, child_orders, last_fill_t, None)
    return result, RunStats(decisions=int(decisions), snapshots=int(t_end))


def evaluate_compiled(market: Market, params: RouterParams, order: OrderConfig) -> ExecutionResult:
    """`sor.evaluation.backtest.evaluate`, compiled: the same `ExecutionResult` (module docstring).

    Args:
        market: the snapshots with fees and ask levels (`sor.evaluation.backtest.make_market`).
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
    market: Market, params_list: Sequence[RouterParams], order: OrderConfig
) -> list[ExecutionResult]:
    """`evaluate_compiled` for each of `params_list`, in one compiled call.

    Args:
        market: the snapshots with fees and ask levels.
        params_list: the penalties of each trial.
        order: the parent order and the router's rules, shared by the trials.

    Returns:
        One result per parameter set, in order.
    """
    params_list = list(params_list)
    _check(order, params_list)
    if not params_list:
        return []
    displayed, literal = order.cap == "displayed", order.child_sizing == "all_or_none"
    n_trials, n_venue = len(params_list), market.snaps.ask_sz.shape[1]
    params = np.array(
        [[p.lambda_over, p.lambda_under, p.theta_queue] for p in params_list], dtype=np.float64
    )
    status = np.zeros(n_trials, dtype=np.int64)
    cash = np.zeros(n_trials)
    filled = np.zeros(n_trials, dtype=np.int64)
    child_orders = np.zeros(n_trials, dtype=np.int64)
    last_fill_t = np.zeros(n_trials, dtype=np.int64)
    decisions = np.zeros(n_trials, dtype=np.int64)
    t_end = np.zeros(n_trials, dtype=np.int64)
    by_venue = np.zeros((n_trials, n_venue), dtype=np.int64)
    _run_batch(
        *_arrays(market, order.cost_basis),
        params,
        order.step,
        displayed,
        literal,
        order.fill_model == "strict",
        order.size,
        status,
        cash,
        filled,
        child_orders,
        last_fill_t,
        decisions,
        t_end,
        by_venue,
    )
    cleanup = None
    if (filled < order.size).any():
        cleanup = cleanup_price(market.snaps, market.costs)
    return [
        _result(
            market,
            order,
            int(status[p]),
            cash[p],
            filled[p],
            by_venue[p],
            child_orders[p],
            last_fill_t[p],
            cleanup,
        )
        for p in range(n_trials)
    ]


def warm_up() -> None:
    """Compile the kernel, or load it from Numba's on-disk cache, on a two-snapshot market.

    The first call in a fresh checkout compiles for 10-15 s and writes the cache beside this file;
    calling this in the driver before work goes out lets Ray workers load that cache (under a
    second) instead of all compiling at once.
    """
    from sor.config import Config
    from sor.data.snapshots import Snapshots
    from sor.evaluation.backtest import make_market
    from sor.routers.static import RouterParams

    snaps = Snapshots(
        ts=np.array([0, 1], dtype=np.int64),
        venues=np.array([1, 2], dtype=np.int32),
        ask_px=np.array([[10.0, 10.01], [10.0, 10.01]]),
        ask_sz=np.array([[100, 100], [100, 100]], dtype=np.int64),
        bid_px=np.array([[9.99, 9.98], [9.99, 9.98]]),
        bid_sz=np.array([[100, 100], [100, 100]], dtype=np.int64),
        trade_volume=np.zeros(2, dtype=np.int64),
    )
    config = Config()
    evaluate_compiled(make_market(snaps, config), RouterParams(0.0, 0.01, 0.0), config.order)
