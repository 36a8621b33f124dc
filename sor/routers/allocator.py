"""The static Cont & Kukanov split of one snapshot's order across venues (model.md §3).

The task enumerates every candidate split, which grows as (order_size / step + 1)^N. This module
returns the same answer exactly, by the following argument.

Every candidate has sum_i q_i == order_size and exe_i = min(q_i, ask_size_i) <= q_i, so
sum_i exe_i <= order_size: overfill is always 0 and underfill is order_size - sum_i exe_i. The
cost of model.md §3 is therefore separable by venue:

    cost = (theta_queue + lambda_under) * order_size + sum_i c_i(q_i),
    c_i(q) = min(q, a_i) * take_i - max(q - a_i, 0) * rebate_i,
    take_i = ask_i + fee_i - theta_queue - lambda_under,

with a_i = ask_size_i. With cap "displayed" every q_i <= a_i fills, so the penalties cancel and
c_i(q) = q * (ask_i + fee_i). Each c_i is piecewise linear with a kink at a_i; it is convex where
take_i <= -rebate_i and concave otherwise, so a greedy split is not exact in general. The exact
method is a dynamic program over the shares left for venues i..N (the "remainder" r):

    V_{N+1}(r) = 0 if r == 0 else inf,
    V_i(r) = min over the candidates q of venue i at remainder r of c_i(q) + V_{i+1}(r - q),

followed by a forward pass that keeps, venue by venue, the smallest q_i that still reaches the
optimum (within a float tolerance far below any real price difference). The first least-cost
split the task's enumeration meets is the lexicographically smallest one, so this reproduces its
tie rule. A grid candidate moves the remainder by a multiple of step and c_i is linear on each
side of the kink, so one venue's min-plus step is a sliding-window minimum and a prefix minimum:
O(K log K) numpy work per venue for K = order_size // step + 1 remainders.

With ``include_cap`` a venue may also take its cap: the whole remainder (r -> 0) or, with cap
"displayed", its odd-lot ask size (r -> r - a_i, another residue class mod step). The program
then tracks the residue classes reachable from order_size, at most min(step, 2^(N-1)) of them.

Exact fast paths, tried first:

- cap "displayed" on the step grid: the cost is linear per share and the capacities are whole
  lots, so filling the cheapest venues first is optimal (the LP's greedy solution is integral);
  ties go to later venues, which makes the split lexicographically smallest.
- cap "displayed" with include_cap and order_size == sum_i a_i: the only split is q_i = a_i.
- cap "order" with every c_i concave: take the last two venues i < j holding shares. Moving d
  shares from i to j changes the cost by a concave function of d on [-q_j, q_i], whose ends are
  candidates (with include_cap too: the venue left holding shares last may be off the grid).
  At an optimum, an inner point, it is therefore constant, and moving all of q_i to j gives an
  equal, lexicographically smaller split. So the answer is the cheapest single venue, the last
  one among equals.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import SupportsIndex, cast

import numpy as np

from sor.vocabulary import CAPS, DEFAULT_FEE, DEFAULT_REBATE

__all__ = ["Venue", "allocate", "allocate_arrays"]

#: Splits whose costs differ by at most this fraction of the cost scale (order_size times the
#: largest per-share term) tie. Float rounding is ~1e-15 of that scale; real price differences
#: are orders of magnitude larger.
_TIE_RTOL = 1e-12


@dataclass(frozen=True)
class Venue:
    """One venue's top of book as the allocator sees it.

    Attributes:
        ask: best ask, dollars per share (or its distance from a reference price).
        ask_size: shares displayed at the ask.
        fee: taker fee, dollars per share filled.
        rebate: maker rebate, dollars per share posted (sent but not filled).
    """

    ask: float
    ask_size: int
    fee: float = DEFAULT_FEE
    rebate: float = DEFAULT_REBATE


def allocate(
    order_size: int,
    venues: Sequence[Venue],
    lambda_over: float,
    lambda_under: float,
    theta_queue: float,
    *,
    step: int = 100,
    cap: str = "displayed",
) -> tuple[list[int], float]:
    """The task's static split: the least-cost split of `order_size` over `venues` (model.md §3).

    Compiled twin: `sor.routers.static_nb._allocate_nb` (with include_cap=False).

    Each q_i is a multiple of `step` from 0 up to venue i's cap: min(order_size - shares given to
    venues before i, ask_size_i) for cap "displayed", order_size - shares given before for cap
    "order". Only splits with sum == order_size count. Of several least-cost splits the
    lexicographically smallest (q_1, ..., q_N) is returned, as the task's enumeration keeps the
    first one it meets. `order_size` 0 gives the all-zero split and cost 0.0 (with no venues,
    the empty split and cost 0.0, which is what the enumeration gives too).

    Args:
        order_size: shares to buy, >= 0.
        venues: the venues, in the order that breaks ties.
        lambda_over: penalty per share overfilled, dollars per share (never binds, model.md §3).
        lambda_under: penalty per share left unfilled, dollars per share.
        theta_queue: queue-risk penalty per share under- or overfilled, dollars per share.
        step: lot size of the candidates, shares, > 0.
        cap: "displayed" or "order".

    Returns:
        The split (shares per venue) and its cost in dollars; ``([], math.inf)`` when no split
        has sum == order_size (order_size off the step grid, too little displayed size with cap
        "displayed", no venues).

    Raises:
        ValueError: on a negative size, a non-finite price or penalty, `step <= 0` or an
            unknown `cap`.
        TypeError: when `order_size` or `step` is not an integer.

    Example:
        >>> allocate(300, [Venue(10.0, 200, 0.0, 0.0), Venue(10.5, 500, 0.0, 0.0)], 0, 0, 0)
        ([200, 100], 3050.0)
    """
    problem = _Problem.checked(
        order_size,
        [v.ask for v in venues],
        [v.ask_size for v in venues],
        [v.fee for v in venues],
        [v.rebate for v in venues],
        lambda_over,
        lambda_under,
        theta_queue,
        step,
        cap,
        include_cap=False,
    )
    split = _solve(problem)
    return ([], math.inf) if split is None else (split, problem.cost(split))


def allocate_arrays(
    order_size: int,
    ask: np.ndarray,
    ask_size: np.ndarray,
    fee: np.ndarray,
    rebate: np.ndarray,
    lambda_over: float,
    lambda_under: float,
    theta_queue: float,
    *,
    step: int = 100,
    cap: str = "displayed",
    include_cap: bool = False,
) -> tuple[np.ndarray | None, float]:
    """The static split on arrays, for the router's hot path (model.md §3, §4 item 2).

    Compiled twin: `sor.routers.static_nb._allocate_nb`.

    With ``include_cap=False`` this is `allocate`. With ``include_cap=True`` each venue's
    candidates are the multiples of `step` up to its cap plus the cap itself, so that an order
    off the step grid (4,937 shares) and odd-lot displayed sizes can be split; cost, tie rule and
    infeasibility rule are unchanged.

    Args:
        order_size: shares to buy, >= 0.
        ask: float[N], ask per venue, dollars per share.
        ask_size: int[N], displayed shares per venue, >= 0.
        fee: float[N], taker fee per venue, dollars per share filled.
        rebate: float[N], maker rebate per venue, dollars per share posted.
        lambda_over: overfill penalty, dollars per share.
        lambda_under: underfill penalty, dollars per share.
        theta_queue: queue-risk penalty, dollars per share.
        step: lot size of the candidates, shares, > 0.
        cap: "displayed" or "order".
        include_cap: whether each venue's cap is a candidate too.

    Returns:
        int64[N] shares per venue and the cost in dollars, or ``(None, math.inf)`` when no
        split has sum == order_size. With no venues and `order_size` 0: an empty array and 0.0.

    Raises:
        ValueError: on invalid input, stating the rule and the values.
        TypeError: when `order_size` or `step` is not an integer.
    """
    problem = _Problem.checked(
        order_size,
        ask,
        ask_size,
        fee,
        rebate,
        lambda_over,
        lambda_under,
        theta_queue,
        step,
        cap,
        include_cap,
    )
    split = _solve(problem)
    if split is None:
        return None, math.inf
    return np.array(split, dtype=np.int64), problem.cost(split)


@dataclass(slots=True)
class _Problem:
    """Validated inputs of one split; per-venue values as Python lists (N is small).

    Compiled twin: `sor.routers.static_nb.Problem` with `sor.routers.static_nb.Venues` (the
    per-venue lists).
    """

    order_size: int
    ask: list[float]
    size: list[int]
    fee: list[float]
    rebate: list[float]
    lambda_over: float
    lambda_under: float
    theta_queue: float
    step: int
    displayed: bool
    include_cap: bool

    @classmethod
    def checked(
        cls,
        order_size: int,
        ask: Sequence[float] | np.ndarray,
        ask_size: Sequence[float] | np.ndarray,
        fee: Sequence[float] | np.ndarray,
        rebate: Sequence[float] | np.ndarray,
        lambda_over: float,
        lambda_under: float,
        theta_queue: float,
        step: int,
        cap: str,
        include_cap: bool,
    ) -> _Problem:
        """Checks the inputs once, at the boundary, and converts them."""
        order_size, step = _as_int("order_size", order_size), _as_int("step", step)
        if order_size < 0:
            raise ValueError(f"`order_size >= 0` must hold, but got {order_size=}.")
        if step <= 0:
            raise ValueError(f"`step > 0` must hold, but got {step=}.")
        if cap not in CAPS:
            hint = difflib.get_close_matches(str(cap), CAPS, n=1)
            did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(f"`cap` must be one of {CAPS}, but got {cap=}.{did_you_mean}")
        ask, ask_size = _per_venue("ask", ask), _per_venue("ask_size", ask_size)
        fee, rebate = _per_venue("fee", fee), _per_venue("rebate", rebate)
        if not len(ask) == len(ask_size) == len(fee) == len(rebate):
            raise ValueError(
                "`len(ask) == len(ask_size) == len(fee) == len(rebate)` must hold, but got "
                f"lengths {len(ask)}, {len(ask_size)}, {len(fee)}, {len(rebate)}."
            )
        _check_finite("ask", ask)
        _check_finite("fee", fee)
        _check_finite("rebate", rebate)
        _check_finite("ask_size", ask_size)
        size = _as_sizes(ask_size)
        penalties = float(lambda_over), float(lambda_under), float(theta_queue)
        if not all(map(math.isfinite, penalties)):
            names = ("lambda_over", "lambda_under", "theta_queue")
            i = next(i for i, v in enumerate(penalties) if not math.isfinite(v))
            raise ValueError(f"`{names[i]}` must be finite, but got {names[i]}={penalties[i]}.")
        displayed = cap == "displayed"
        return cls(
            order_size, ask, size, fee, rebate, *penalties, step, displayed, bool(include_cap)
        )

    def take(self) -> list[float]:
        """Separable cost of a filled share per venue, dollars (module docstring).

        Compiled twin: inline in `sor.routers.static_nb._solve_into`.
        """
        if self.displayed:
            return [a + f for a, f in zip(self.ask, self.fee, strict=True)]  # penalties cancel
        shortfall = self.theta_queue + self.lambda_under  # what each filled share saves
        return [a + f - shortfall for a, f in zip(self.ask, self.fee, strict=True)]

    def tolerance(self) -> float:
        """Cost difference, dollars, below which two splits tie.

        Compiled twin: `sor.routers.static_nb._tolerance`.
        """
        per_share: float = (
            max(map(abs, map(operator.add, self.ask, self.fee)))
            + max(map(abs, self.rebate))
            + abs(self.theta_queue + self.lambda_under)
        )
        return _TIE_RTOL * (self.order_size * per_share + 1.0)

    def cost(self, split: list[int]) -> float:
        """Cost of `split` in dollars, term by term as model.md §3 writes it.

        Compiled twin: `sor.routers.static_nb._split_cost`.
        """
        executed, cash = 0, 0.0
        for q, a, size, fee, rebate in zip(
            split, self.ask, self.size, self.fee, self.rebate, strict=True
        ):
            exe = min(q, size)
            executed += exe
            cash += exe * (a + fee) - max(q - exe, 0) * rebate
        underfill = max(self.order_size - executed, 0)
        overfill = max(executed - self.order_size, 0)
        return (
            cash
            + self.theta_queue * (underfill + overfill)
            + self.lambda_under * underfill
            + self.lambda_over * overfill
        )


def _as_int(name: str, value: object) -> int:
    if not isinstance(value, bool):
        try:
            # anything without __index__ raises TypeError, caught below
            return operator.index(cast(SupportsIndex, value))
        except TypeError:
            pass
    raise TypeError(f"`{name}` must be an int, but got {name}={value!r}.")


def _per_venue(name: str, values: Sequence[float] | np.ndarray) -> list[float]:
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"`{name}` must be 1-D, but got shape {values.shape}.")
        as_list: list[float] = values.tolist()
        return as_list
    return list(values)


def _check_finite(name: str, values: Sequence[float]) -> None:
    if not all(map(math.isfinite, values)):
        i = next(i for i, v in enumerate(values) if not math.isfinite(v))
        raise ValueError(f"`{name}` must be finite, but got {name}[{i}]={values[i]}.")


def _as_sizes(values: Sequence[float]) -> list[int]:
    size = [int(v) for v in values]
    if size != values:
        i = next(i for i, (s, v) in enumerate(zip(size, values, strict=True)) if s != v)
        raise ValueError(f"`ask_size` must hold whole shares, but got ask_size[{i}]={values[i]}.")
    if size and min(size) < 0:
        i = next(i for i, s in enumerate(size) if s < 0)
        raise ValueError(f"`ask_size >= 0` must hold, but got ask_size[{i}]={size[i]}.")
    return size


def _solve(p: _Problem, *, fast_paths: bool = True) -> list[int] | None:
    """The least-cost split of `p`, or None when no candidate has sum == order_size.

    Compiled twin: `sor.routers.static_nb._solve_into`.
    """
    n = len(p.ask)
    if p.order_size == 0:
        return [0] * n  # the only candidate; also right for n == 0
    if n == 0 or _infeasible(p):
        return None
    if fast_paths:
        if p.displayed and not p.include_cap:
            return _cheapest_first(p)
        if p.displayed and p.order_size == sum(p.size):
            return list(p.size)  # q_i <= a_i and sum q_i == sum a_i leave one split
        take = p.take()
        if not p.displayed and all(t + r >= 0 for t, r in zip(take, p.rebate, strict=True)):
            return _best_single_venue(p, take)
    return _dynamic_program(p)


def _infeasible(p: _Problem) -> bool:
    """Whether no candidate has sum == order_size (N >= 1, order_size > 0).

    Compiled twin: inline in `sor.routers.static_nb._solve_into`.
    """
    if not p.include_cap and p.order_size % p.step:
        return True  # every candidate is a multiple of step
    if p.displayed:
        usable = p.size if p.include_cap else [a - a % p.step for a in p.size]
        return sum(usable) < p.order_size  # every q_i <= a_i
    return False  # venue 1 can take the whole order


def _cheapest_first(p: _Problem) -> list[int]:
    """Cap "displayed" on the step grid: fill the cheapest ask + fee first, ties to later venues.

    Compiled twin: `sor.routers.static_nb._cheapest_first`.
    """
    price = p.take()
    lots_left = p.order_size // p.step
    split = [0] * len(price)
    for i in sorted(range(len(price)), key=lambda i: (price[i], -i)):
        lots = min(lots_left, p.size[i] // p.step)
        split[i], lots_left = lots * p.step, lots_left - lots
    return split


def _best_single_venue(p: _Problem, take: list[float]) -> list[int]:
    """Cap "order", every c_i concave: the cheapest venue takes all; ties to the last one.

    Compiled twin: inline in `sor.routers.static_nb._solve_into`.
    """
    n = p.order_size
    whole = [
        min(n, a) * t - max(n - a, 0) * r for a, t, r in zip(p.size, take, p.rebate, strict=True)
    ]
    cutoff = min(whole) + p.tolerance()
    best = max(i for i, c in enumerate(whole) if c <= cutoff)
    split = [0] * len(whole)
    split[best] = p.order_size
    return split


def _venue_cost(q: np.ndarray, size: int, take: float, rebate: float) -> np.ndarray:
    """c_i(q) of the module docstring, dollars: filled shares at `take`, posted earn `rebate`.

    Compiled twin: `sor.routers.static_nb._venue_cost`.
    """
    filled = np.minimum(q, size)
    cost: np.ndarray = filled * take - (q - filled) * rebate
    return cost


def _dynamic_program(p: _Problem) -> list[int] | None:
    """Exact split by the dynamic program of the module docstring, or None if infeasible.

    Compiled twin: `sor.routers.static_nb._dynamic_program`.

    Only V_2 .. V_{N+1} are tabulated: venue 1 is evaluated at remainder order_size alone, in
    the forward pass, and V_N has a closed form (venue N must take the whole remainder).
    """
    layout = _Layout.of(p)
    take, n = p.take(), len(p.ask)
    tables = [layout.final()]  # V_{N+1}, then V_N, .., V_2
    if n >= 2:
        tables.append(layout.last_venue_values(n - 1, p.size[-1], take[-1], p.rebate[-1]))
    for i in range(n - 2, 0, -1):
        tables.append(layout.venue_values(i, tables[-1], p.size[i], take[i], p.rebate[i]))
    tables.reverse()  # tables[i] = V_{i+2}: what the venues after venue i (0-based) cost
    tolerance = p.tolerance()
    remaining = p.order_size
    split = [0] * n
    for i in range(n):
        if remaining == 0:
            break
        size = p.size[i]
        cap = min(remaining, size) if p.displayed else remaining
        reached = layout.grid_costs(tables[i], remaining, cap // p.step, size, take[i], p.rebate[i])
        best = float(reached.min())
        at_cap = math.inf  # the cap as a candidate of its own, off the step grid
        if p.include_cap and cap % p.step:
            filled = min(cap, size)
            at_cap = filled * take[i] - (cap - filled) * p.rebate[i]
            at_cap += layout.value(tables[i], remaining - cap)
        optimum = min(best, at_cap)
        if optimum == math.inf:
            return None  # only venue 1 can meet this: no split has sum == order_size
        # The first candidate, in the enumeration's order, that reaches the optimum: the task's
        # tie rule. The grid candidates 0, step, .. come first; the cap comes last.
        if best <= optimum + tolerance:
            split[i] = int(np.argmax(reached <= optimum + tolerance)) * p.step
        else:
            split[i] = cap
        remaining -= split[i]
    return split


@dataclass(slots=True)
class _Layout:
    """The remainders the dynamic program tracks, as a (columns, rows) table.

    Compiled twin: `sor.routers.static_nb.Layout`, with the arrays in a `Workspace`.

    Cell (j, row) holds remainder origin + residues[j] + row * step. A candidate that is a
    multiple of step keeps the remainder in its column, so a venue's grid candidates form a
    window along the rows. Columns are in the order the venues first reach them, so the
    remainders reachable before venue i are the first reach[i] columns. An extra row and column
    of inf stand for "not tracked".
    """

    origin: int
    step: int
    displayed: bool
    include_cap: bool
    residues: np.ndarray  # int64[columns], in [0, step)
    column: np.ndarray  # int64[step], residue -> column, -1 where not tracked
    reach: list[int]  # reach[i]: number of columns reachable before venue i
    remainder: np.ndarray  # float[columns, rows], shares
    grid: np.ndarray  # float[rows], row * step, shares

    @classmethod
    def of(cls, p: _Problem) -> _Layout:
        """The layout for `p`.

        Compiled twin: inline in `sor.routers.static_nb._dynamic_program`, sized by
        `sor.routers.static_nb._columns_needed`.

        On the step grid, and with cap "order", every candidate is a multiple of step except a
        venue taking the whole remainder (r -> 0), so one column suffices. With cap "displayed"
        and include_cap a venue may take its odd-lot ask size, which moves the remainder to
        another residue class mod step: track the classes reachable from order_size.
        """
        step = p.step
        if p.displayed and p.include_cap:
            origin, residues = 0, [p.order_size % step]
            reach, seen = [1], set(residues)
            for size in p.size[:-1]:
                if size % step:
                    for residue in residues[:]:
                        moved = (residue - size) % step
                        if moved not in seen:
                            seen.add(moved)
                            residues.append(moved)
                reach.append(len(residues))
        else:
            origin, residues, reach = p.order_size % step, [0], [1] * len(p.size)
        column = np.full(step, -1, dtype=np.int64)
        column[residues] = np.arange(len(residues))
        grid = np.arange(p.order_size // step + 1, dtype=np.float64) * step
        remainder = (origin + np.array(residues, dtype=np.float64))[:, None] + grid
        return cls(
            origin,
            step,
            p.displayed,
            p.include_cap,
            np.array(residues),
            column,
            reach,
            remainder,
            grid,
        )

    def cell(self, remainder: int) -> tuple[int, int]:
        """(column, row) of `remainder`; (-1, -1), the inf sentinel, where not tracked.

        Compiled twin: `sor.routers.static_nb._cell`.
        """
        row, residue = divmod(remainder - self.origin, self.step)
        column = int(self.column[residue])
        return (column, row) if row >= 0 and column >= 0 else (-1, -1)

    def value(self, table: np.ndarray, remainder: int) -> float:
        """table at `remainder`: 0 at remainder 0 (later venues get nothing), inf if untracked.

        Compiled twin: inline in `sor.routers.static_nb._dynamic_program`.
        """
        return 0.0 if remainder == 0 else float(table[self.cell(remainder)])

    def final(self) -> np.ndarray:
        """V_{N+1}: 0 at remainder 0, else inf.

        Compiled twin: inline in `sor.routers.static_nb._dynamic_program`.
        """
        table = np.full((self.remainder.shape[0] + 1, self.remainder.shape[1] + 1), np.inf)
        if self.origin == 0 and self.column[0] >= 0:
            table[self.column[0], 0] = 0.0
        return table

    def last_venue_values(self, i: int, size: int, take: float, rebate: float) -> np.ndarray:
        """V_N: venue N (index i) takes the whole remainder r, a candidate when r <= cap.

        Compiled twin: inline in `sor.routers.static_nb._dynamic_program`.
        """
        table = np.full((self.remainder.shape[0] + 1, self.remainder.shape[1] + 1), np.inf)
        left = self.remainder[: self.reach[i]]
        values = _venue_cost(left, size, take, rebate)
        if self.displayed:
            values[left > size] = np.inf
        table[: self.reach[i], :-1] = values
        return table

    def venue_values(
        self, i: int, later: np.ndarray, size: int, take: float, rebate: float
    ) -> np.ndarray:
        """V_i from V_{i+1} (`later`): the min-plus step of venue i, on its reachable columns.

        Compiled twin: `sor.routers.static_nb._venue_values`.

        A grid candidate q = k * step (k <= row) costs take * k * step while k * step <= size,
        and (take + rebate) * size - rebate * k * step beyond (cap "order" only). With j = row - k
        each side is a linear function of row plus a minimum of `later` over a window of j.
        """
        columns, rows, lots = self.reach[i], self.grid.shape[0], size // self.step
        cells = later[:columns, :-1]
        table = np.full_like(later, np.inf)
        values = table[:columns, :-1]
        slope = take * self.grid
        np.add(slope, _window_min(cells - slope, lots + 1), out=values)
        if not self.displayed and rows > lots + 1:  # posted shares: k from lots + 1 up to row
            slope = rebate * self.grid
            prefix = np.minimum.accumulate(cells + slope, axis=-1)
            beyond = prefix[:, : rows - lots - 1] + ((take + rebate) * size - slope[lots + 1 :])
            np.minimum(values[:, lots + 1 :], beyond, out=values[:, lots + 1 :])
        if self.include_cap:  # q = cap: the whole remainder (up to size with cap "displayed")
            left = self.remainder[:columns]
            whole = _venue_cost(left, size, take, rebate)
            if self.displayed:
                whole[left > size] = np.inf
                if size % self.step:  # q = size < remainder, off the grid
                    shifted = self._shifted(later, size, columns)
                    np.minimum(whole, take * size + shifted, out=whole)
            np.minimum(values, whole, out=values)
        return table

    def _shifted(self, table: np.ndarray, shares: int, columns: int) -> np.ndarray:
        """table at remainder - shares for the first `columns` columns (inf where not tracked).

        Compiled twin: inline in `sor.routers.static_nb._venue_values`.
        """
        back, residue = np.divmod(self.residues[:columns] - shares, self.step)
        width = table.shape[1]
        row = back[:, None] + np.arange(width - 1)
        flat = self.column[residue][:, None] * width + row
        flat[(row < 0) | (flat < 0)] = -1  # the inf corner
        shifted: np.ndarray = table.ravel()[flat]
        return shifted

    def grid_costs(
        self, later: np.ndarray, remainder: int, lots: int, size: int, take: float, rebate: float
    ) -> np.ndarray:
        """c_i(q) + V_{i+1}(remainder - q) for the grid candidates q = 0, step, .., lots * step.

        Compiled twin: inline in `sor.routers.static_nb._dynamic_program`.
        """
        column, row = self.cell(remainder)
        costs = _venue_cost(self.grid[: lots + 1], size, take, rebate)
        reached: np.ndarray = costs + later[column, row - lots : row + 1][::-1]
        return reached


def _window_min(x: np.ndarray, width: int) -> np.ndarray:
    """out[.., r] = min(x[.., max(0, r - width + 1) : r + 1]) along the last axis, by doubling.

    Compiled twin: inline in `sor.routers.static_nb._venue_values` (a monotone deque).
    """
    if width >= x.shape[-1]:
        return np.minimum.accumulate(x, axis=-1)
    out: np.ndarray = x.copy()
    span = 1
    while 2 * span <= width:
        # out[.., r] becomes the minimum over a span twice as long (numpy buffers the overlap).
        np.minimum(out[:, span:], out[:, :-span], out=out[:, span:])
        span *= 2
    rest = width - span  # two overlapping spans cover the window
    if rest:
        np.minimum(out[:, rest:], out[:, :-rest], out=out[:, rest:])
    return out
