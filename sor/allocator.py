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
method is a dynamic program over the shares left after venues 1..i-1 (the "remainder"):

    V_{N+1}(r) = 0 if r == 0 else inf,
    V_i(r) = min over the candidates q of venue i at remainder r of c_i(q) + V_{i+1}(r - q),

followed by a forward pass that keeps, venue by venue, the smallest q_i that still reaches the
optimum (within a float tolerance far below any real price difference); the first split the
task's enumeration meets among the least-cost ones is exactly the lexicographically smallest, so
this reproduces its tie rule. On the step grid each c_i is linear on each side of the kink, so a
venue's min-plus step is a sliding-window minimum plus a prefix minimum: O(K) numpy work per venue
for K = order_size // step + 1 remainders.

Exact fast paths, used before the dynamic program:

- cap "displayed" on the step grid: the cost is linear per share, so filling the cheapest venues
  first (an LP with integral capacities) is optimal; ties go to later venues, which makes the
  split lexicographically smallest.
- cap "order" with every c_i concave: merging two venues' shares into one of them never raises
  the cost (a concave function of the transfer is least at an end), so some single venue taking
  the whole order is optimal, and the lexicographically smallest optimum is of that form.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CAPS", "Venue", "allocate", "allocate_arrays"]

CAPS = ("displayed", "order")

#: Splits whose costs differ by at most this fraction of the cost scale count as ties. Float
#: rounding is ~1e-15 of the scale; real price differences are many orders of magnitude larger.
_TIE_RTOL = 1e-12


@dataclass(frozen=True)
class Venue:
    """One venue's top of book as the allocator sees it.

    Attributes:
        ask: best ask, dollars per share (or its distance from a reference price).
        ask_size: shares displayed at the ask.
        fee: taker fee, dollars per share filled.
        rebate: maker rebate, dollars per share posted (not filled).
    """

    ask: float
    ask_size: int
    fee: float = 0.003
    rebate: float = 0.002


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

    Each q_i is a multiple of `step` from 0 up to venue i's cap: min(order_size - shares given to
    venues before i, ask_size_i) for cap "displayed", order_size - shares given before for cap
    "order". Only splits with sum == order_size count. Of several least-cost splits the
    lexicographically smallest (q_1, ..., q_N) is returned, as the task's enumeration keeps the
    first one it meets. `order_size` 0 gives the all-zero split and cost 0.0 (with no venues:
    the empty split and cost 0.0, as the enumeration gives).

    Args:
        order_size: shares to buy, >= 0.
        venues: the venues, in the order that breaks ties.
        lambda_over: penalty per share overfilled, dollars per share (never binds, see §3).
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

    Example:
        >>> allocate(300, [Venue(10.0, 200, 0.0, 0.0), Venue(10.5, 500, 0.0, 0.0)], 0, 0, 0)
        ([200, 100], 3050.0)
    """
    split, cost = allocate_arrays(
        order_size,
        np.array([v.ask for v in venues], dtype=np.float64),
        np.array([v.ask_size for v in venues], dtype=np.int64),
        np.array([v.fee for v in venues], dtype=np.float64),
        np.array([v.rebate for v in venues], dtype=np.float64),
        lambda_over,
        lambda_under,
        theta_queue,
        step=step,
        cap=cap,
    )
    return ([], cost) if split is None else (split.tolist(), cost)


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
    return split, problem.cost(split)


@dataclass(frozen=True)
class _Problem:
    """Validated inputs of one split, in the units of `allocate_arrays`."""

    order_size: int
    ask: np.ndarray
    size: np.ndarray
    fee: np.ndarray
    rebate: np.ndarray
    lambda_over: float
    lambda_under: float
    theta_queue: float
    step: int
    displayed: bool
    include_cap: bool

    @classmethod
    def checked(
        cls,
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
    ) -> _Problem:
        """Checks the inputs once, at the boundary, and converts them."""
        order_size = _as_int("order_size", order_size)
        step = _as_int("step", step)
        if order_size < 0:
            raise ValueError(f"`order_size >= 0` must hold, but got {order_size=}.")
        if step <= 0:
            raise ValueError(f"`step > 0` must hold, but got {step=}.")
        if cap not in CAPS:
            hint = difflib.get_close_matches(str(cap), CAPS, n=1)
            did_you_mean = f" Did you mean {hint[0]!r}?" if hint else ""
            raise ValueError(f"`cap` must be one of {CAPS}, but got {cap=}.{did_you_mean}")
        arrays = {
            "ask": np.asarray(ask, dtype=np.float64),
            "ask_size": np.asarray(ask_size),
            "fee": np.asarray(fee, dtype=np.float64),
            "rebate": np.asarray(rebate, dtype=np.float64),
        }
        lengths = {name: a.shape for name, a in arrays.items()}
        n = arrays["ask"].shape
        if len(n) != 1 or any(shape != n for shape in lengths.values()):
            raise ValueError(
                f"`ask`, `ask_size`, `fee`, `rebate` must be 1-D of one length, "
                f"but got shapes {lengths}."
            )
        for name in ("ask", "fee", "rebate"):
            _check_finite(name, arrays[name])
        size = _as_sizes(arrays["ask_size"])
        penalties = {}
        for name, value in (
            ("lambda_over", lambda_over),
            ("lambda_under", lambda_under),
            ("theta_queue", theta_queue),
        ):
            penalties[name] = float(value)
            if not math.isfinite(penalties[name]):
                raise ValueError(f"`{name}` must be finite, but got {name}={value!r}.")
        return cls(
            order_size,
            arrays["ask"],
            size,
            arrays["fee"],
            arrays["rebate"],
            **penalties,
            step=step,
            displayed=cap == "displayed",
            include_cap=bool(include_cap),
        )

    @property
    def take(self) -> np.ndarray:
        """float[N], separable cost of a filled share, dollars (module docstring)."""
        if self.displayed:
            return self.ask + self.fee  # every share fills: the penalties cancel
        return self.ask + self.fee - self.theta_queue - self.lambda_under

    @property
    def tolerance(self) -> float:
        """Cost difference, dollars, below which two splits tie."""
        if len(self.ask) == 0:
            return 0.0
        per_share = (
            np.abs(self.ask + self.fee).max()
            + np.abs(self.rebate).max()
            + abs(self.theta_queue + self.lambda_under)
        )
        return _TIE_RTOL * (self.order_size * per_share + 1.0)

    def cost(self, split: np.ndarray) -> float:
        """Cost of `split` in dollars, literally as model.md §3 writes it."""
        exe = np.minimum(split, self.size)
        cash = np.sum(exe * (self.ask + self.fee)) - np.sum((split - exe) * self.rebate)
        executed = int(exe.sum())
        underfill = max(self.order_size - executed, 0)
        overfill = max(executed - self.order_size, 0)
        return float(
            cash
            + self.theta_queue * (underfill + overfill)
            + self.lambda_under * underfill
            + self.lambda_over * overfill
        )


def _as_int(name: str, value) -> int:
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be an int, but got {name}={value!r}.")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` must be an int, but got {name}={value!r}.") from None


def _check_finite(name: str, values: np.ndarray) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValueError(f"`{name}` must be finite, but got {name}[{bad[0]}]={values[bad[0]]}.")


def _as_sizes(ask_size: np.ndarray) -> np.ndarray:
    if ask_size.dtype.kind in "iu":
        size = ask_size.astype(np.int64)
    elif ask_size.dtype.kind == "f":
        _check_finite("ask_size", ask_size)
        size = ask_size.astype(np.int64)
        bad = np.flatnonzero(size != ask_size)
        if len(bad):
            raise ValueError(
                f"`ask_size` must hold whole shares, but got ask_size[{bad[0]}]={ask_size[bad[0]]}."
            )
    else:
        raise ValueError(f"`ask_size` must hold whole shares, but got dtype {ask_size.dtype}.")
    bad = np.flatnonzero(size < 0)
    if len(bad):
        raise ValueError(f"`ask_size >= 0` must hold, but got ask_size[{bad[0]}]={size[bad[0]]}.")
    return size


def _solve(problem: _Problem, *, fast_paths: bool = True) -> np.ndarray | None:
    """The least-cost split (int64[N]) of `problem`, or None when none has the right sum."""
    p = problem
    n = len(p.ask)
    if p.order_size == 0:
        return np.zeros(n, dtype=np.int64)  # the only candidate; also right for n == 0
    if n == 0 or _infeasible(p):
        return None
    if fast_paths and p.displayed and not p.include_cap:
        return _cheapest_first(p)
    if fast_paths and not p.displayed and np.all(p.take + p.rebate >= 0):
        return _best_single_venue(p)
    return _dynamic_program(p)


def _infeasible(p: _Problem) -> bool:
    """Whether no candidate has sum == order_size (n >= 1, order_size > 0)."""
    if not p.include_cap and p.order_size % p.step:
        return True  # every candidate is a multiple of step
    if p.displayed:
        usable = p.size if p.include_cap else p.size // p.step * p.step
        return int(usable.sum()) < p.order_size  # every q_i <= ask_size_i
    return False  # venue 1 can take the whole order


def _cheapest_first(p: _Problem) -> np.ndarray:
    """Cap "displayed" on the step grid: fill the cheapest (ask + fee) first; ties to later venues.

    The cost is linear per share and the capacities are whole lots, so the greedy LP solution is
    optimal; among equal prices, filling later venues first keeps earlier q_i smallest.
    """
    lots = p.size // p.step
    order = np.lexsort((-np.arange(len(lots)), p.ask + p.fee))
    before = np.cumsum(lots[order]) - lots[order]
    split = np.empty_like(lots)
    split[order] = np.clip(p.order_size // p.step - before, 0, lots[order]) * p.step
    return split


def _best_single_venue(p: _Problem) -> np.ndarray:
    """Cap "order", every c_i concave: the cheapest single venue; ties to the last one.

    For two venues i < j holding shares, moving d shares from i to j changes the cost by a concave
    function of d on [-q_j, q_i], whose ends are both candidates; at an optimum it is therefore
    constant, and moving all of q_i to j gives an equal, lexicographically smaller split.
    """
    whole = _venue_cost(np.int64(p.order_size), p.size, p.take, p.rebate)
    best = np.flatnonzero(whole <= whole.min() + p.tolerance)[-1]
    split = np.zeros(len(whole), dtype=np.int64)
    split[best] = p.order_size
    return split


def _venue_cost(q, size, take, rebate):
    """c_i(q) of the module docstring: filled shares at `take`, posted shares earn `rebate`."""
    filled = np.minimum(q, size)
    return filled * take - (q - filled) * rebate


@dataclass(frozen=True)
class _Layout:
    """The remainders the dynamic program tracks, as a (rows, columns) grid.

    Remainder of cell (row, j) = origin + row * step + residues[j]. A move by a multiple of step
    stays in its column, so each venue's grid candidates are a window along axis 0.
    """

    origin: int
    step: int
    residues: np.ndarray  # int64[C], sorted, in [0, step)
    column: np.ndarray  # int64[step], residue -> column index, -1 where not tracked
    remainder: np.ndarray  # int64[rows, C]

    @classmethod
    def build(cls, origin: int, step: int, rows: int, residues: np.ndarray) -> _Layout:
        column = np.full(step, -1, dtype=np.int64)
        column[residues] = np.arange(len(residues))
        remainder = origin + step * np.arange(rows)[:, None] + residues[None, :]
        return cls(origin, step, residues, column, remainder)

    def lookup(self, values: np.ndarray, remainder: np.ndarray) -> np.ndarray:
        """values at `remainder` (any shape): 0 at remainder 0, inf where not tracked."""
        offset = remainder - self.origin
        row, column = np.divmod(offset, self.step)
        column = self.column[column]
        tracked = (offset >= 0) & (column >= 0)
        out = np.full(remainder.shape, np.inf)
        out[tracked] = values[row[tracked], column[tracked]]
        out[remainder == 0] = 0.0  # nothing left: every later venue gets 0, at no cost
        return out


def _layout(p: _Problem) -> _Layout:
    """The remainders reachable from order_size.

    On the step grid, and with cap "order", the candidates are multiples of step except a venue
    taking everything left (remainder 0), so one column suffices. With cap "displayed" and
    include_cap a venue may take its odd-lot ask_size, which moves the remainder to another
    residue class mod step; the reachable classes are tracked (at most min(step, 2^(N-1))).
    """
    rows = p.order_size // p.step + 1
    if not (p.displayed and p.include_cap):
        return _Layout.build(p.order_size % p.step, p.step, rows, np.zeros(1, dtype=np.int64))
    reachable = np.zeros(p.step, dtype=bool)
    reachable[p.order_size % p.step] = True
    for size in p.size[:-1].tolist():
        if size % p.step:
            reachable |= np.roll(reachable, -(size % p.step))
    return _Layout.build(0, p.step, rows, np.flatnonzero(reachable))


def _dynamic_program(p: _Problem) -> np.ndarray | None:
    """Exact split by the dynamic program of the module docstring, or None if infeasible."""
    layout = _layout(p)
    take, n = p.take, len(p.ask)
    values = [np.empty(0)] * (n + 1)
    values[n] = np.where(layout.remainder == 0, 0.0, np.inf)
    for i in range(n - 1, -1, -1):
        values[i] = _venue_values(p, layout, values[i + 1], int(p.size[i]), take[i], p.rebate[i])
    remaining = p.order_size
    if not layout.lookup(values[0], np.array(remaining)) < np.inf:
        return None
    split = np.zeros(n, dtype=np.int64)
    for i in range(n):
        if remaining == 0:
            break
        size = int(p.size[i])
        cap = min(remaining, size) if p.displayed else remaining
        candidates = np.arange(0, cap + 1, p.step)
        if p.include_cap and cap % p.step:
            candidates = np.append(candidates, cap)
        reached = _venue_cost(candidates, size, take[i], p.rebate[i]) + layout.lookup(
            values[i + 1], remaining - candidates
        )
        optimum = layout.lookup(values[i], np.array(remaining))
        # The first candidate that still reaches the optimum: the lexicographic tie rule.
        split[i] = candidates[np.argmax(reached <= optimum + p.tolerance)]
        remaining -= int(split[i])
    return split


def _venue_values(
    p: _Problem, layout: _Layout, later: np.ndarray, size: int, take: float, rebate: float
) -> np.ndarray:
    """V_i on the layout from V_{i+1} (`later`): the min-plus step of one venue.

    A grid candidate q = k * step costs take * k * step while k * step <= size (k <= lots), and
    (take + rebate) * size - rebate * k * step beyond, so with j = row - k each side is a linear
    function of row plus a minimum of `later` over a window of j.
    """
    step, rows = p.step, later.shape[0]
    lots = size // step
    row = np.arange(rows, dtype=np.float64)[:, None]
    slope = take * step * row
    values = slope + _window_min(later - slope, lots)
    if not p.displayed and rows > lots + 1:  # posted shares: k from lots + 1 up to row
        slope = rebate * step * row
        prefix = np.minimum.accumulate(later + slope, axis=0)
        beyond = np.full_like(later, np.inf)
        beyond[lots + 1 :] = prefix[: rows - lots - 1]
        np.minimum(values, (take + rebate) * size - slope + beyond, out=values)
    if p.include_cap:  # q = cap: the whole remainder (only up to size with cap "displayed")
        left = layout.remainder
        whole = _venue_cost(left, size, take, rebate)
        if p.displayed:
            whole = np.where(left <= size, whole, np.inf)
            if size % step:  # q = size off the grid, when size < remainder
                whole = np.minimum(whole, take * size + layout.lookup(later, left - size))
        np.minimum(values, whole, out=values)
    return values


def _window_min(x: np.ndarray, width: int) -> np.ndarray:
    """out[r] = min(x[max(0, r - width + 1) : r + 1]) along axis 0 (van Herk / Gil-Werman)."""
    n = x.shape[0]
    if width <= 1:
        return x
    if width >= n:
        return np.minimum.accumulate(x, axis=0)
    blocks = -(-(n + width - 1) // width)
    padded = np.full((blocks * width,) + x.shape[1:], np.inf)
    padded[width - 1 : width - 1 + n] = x
    shaped = padded.reshape((blocks, width) + x.shape[1:])
    forward = np.minimum.accumulate(shaped, axis=1).reshape(padded.shape)
    backward = np.minimum.accumulate(shaped[:, ::-1], axis=1)[:, ::-1].reshape(padded.shape)
    # Window [r, r + width - 1] of `padded` spans at most two blocks.
    return np.minimum(backward[:n], forward[width - 1 : width - 1 + n])
