"""Time the allocator against the task's full enumeration (model.md §3).

Run as ``.venv/bin/python bench/allocator.py``. Prints two tables: the enumeration against
`allocate` for N = 2..4 venues, and `allocate` / `allocate_arrays(include_cap=True)` for
N = 5..16. Inputs are seeded and realistic: asks around 222.80 a few cents apart, displayed sizes
of 100-2,000 shares with odd lots, fee 0.003, rebate 0.002, penalties 0.01-0.1 dollars a share.

Prices are raw in the "cash" rows (the task's cost basis): with cap "order" every venue's cost
is then concave and the exact single-venue fast path answers. In the "mid" rows they are
measured from the mid (model.md §3), the penalties matter, and the exact dynamic program does
the work. Timings are wall clock on whatever else the machine is doing; no assertions.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sor.routers.allocator import Venue, allocate, allocate_arrays  # noqa: E402

ORDER_SIZE = 5_000
OFF_GRID_ORDER_SIZE = 4_937  # a remainder after odd-lot fills (model.md §4 item 2)
STEP = 100
ENUMERATION_BUDGET_S = 60.0


def book(n: int, rng: np.random.Generator, basis: str) -> tuple[list[Venue], tuple[float, ...]]:
    """n venues and (lambda_over, lambda_under, theta_queue), seeded."""
    ask = 222.80 + rng.integers(-3, 4, n) * 0.01
    size = rng.integers(1, 21, n) * 100 + rng.choice([0, 0, 37, 63, 81], n)  # odd lots too
    size = np.clip(size, 100, 2000)
    if basis == "mid":
        ask = ask - (ask.min() - 0.005)  # a half-spread of half a cent under the best ask
    venues = [Venue(float(a), int(s), 0.003, 0.002) for a, s in zip(ask, size, strict=True)]
    penalties = tuple(float(x) for x in rng.uniform(0.01, 0.1, 3))
    return venues, penalties


def enumerate_all(order_size, venues, lambda_over, lambda_under, theta_queue, step, cap):
    """The task's allocator: build every split, keep the first of least cost."""
    splits = [[]]
    for venue in venues:
        grown = []
        for split in splits:
            used = sum(split)
            limit = order_size - used
            if cap == "displayed":
                limit = min(limit, venue.ask_size)
            for q in range(0, limit + 1, step):
                grown.append(split + [q])
        splits = grown
    best_cost, best_split = math.inf, []
    for split in splits:
        if sum(split) != order_size:
            continue
        cost = task_cost(split, venues, order_size, lambda_over, lambda_under, theta_queue)
        if cost < best_cost:
            best_cost, best_split = cost, split
    return best_split, best_cost, len(splits)


def task_cost(split, venues, order_size, lambda_over, lambda_under, theta_queue):
    """The task's compute_cost (model.md §3)."""
    executed, cash = 0, 0.0
    for q, venue in zip(split, venues, strict=True):
        exe = min(q, venue.ask_size)
        executed += exe
        cash += exe * (venue.ask + venue.fee)
        cash -= max(q - exe, 0) * venue.rebate
    underfill = max(order_size - executed, 0)
    overfill = max(executed - order_size, 0)
    risk = theta_queue * (underfill + overfill)
    return cash + risk + lambda_under * underfill + lambda_over * overfill


def candidates_count(order_size, venues, step, cap):
    """Leaves of the enumeration tree, counted without building them."""
    ways = {order_size: 1}  # remainder -> number of prefixes
    for venue in venues:
        after = {}
        for left, count in ways.items():
            limit = min(left, venue.ask_size) if cap == "displayed" else left
            for q in range(0, limit + 1, step):
                after[left - q] = after.get(left - q, 0) + count
        ways = after
    return sum(ways.values())


def per_call(fn, min_seconds: float = 0.2) -> float:
    """Seconds per call of fn(): the best of 5 rounds of about min_seconds / 3 each."""
    fn()
    calls, elapsed = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds / 3 or calls >= 1 << 20:
            break
        calls *= 4
    best = elapsed
    for _ in range(4):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / calls


def time_enumeration(venues, penalties, cap):
    """(seconds per call, leaves, note): timed, or estimated from the leaves when too slow."""
    leaves = candidates_count(ORDER_SIZE, venues, STEP, cap)
    probe = venues[:2]  # per-leaf cost measured on a small tree
    probe_leaves = candidates_count(ORDER_SIZE, probe, STEP, cap)
    probe_s = per_call(lambda: enumerate_all(ORDER_SIZE, probe, *penalties, STEP, cap), 0.5)
    estimate = probe_s / probe_leaves * leaves
    if estimate > ENUMERATION_BUDGET_S:
        return estimate, leaves, "estimated"
    if estimate > 1.0:
        start = time.perf_counter()
        split, cost, _ = enumerate_all(ORDER_SIZE, venues, *penalties, STEP, cap)
        elapsed = time.perf_counter() - start
        return elapsed, leaves, "one call" + check(venues, penalties, cap, split, cost)
    split, cost, _ = enumerate_all(ORDER_SIZE, venues, *penalties, STEP, cap)
    note = check(venues, penalties, cap, split, cost)
    return per_call(lambda: enumerate_all(ORDER_SIZE, venues, *penalties, STEP, cap)), leaves, note


def check(venues, penalties, cap, split, cost) -> str:
    """A note on the answer; the allocator must agree with the enumeration."""
    got_split, got_cost = allocate(ORDER_SIZE, venues, *penalties, step=STEP, cap=cap)
    if not split:
        return " (no split: too little displayed)" if not got_split else " MISMATCH"
    if not math.isclose(got_cost, cost, rel_tol=1e-9):
        return f" MISMATCH: enumeration {split} {cost}, allocate {got_split} {got_cost}"
    if got_split != split:  # equal costs: the enumeration's float rounding broke a tie
        return f" (tie: enumeration {split}, allocate {got_split})"
    return ""


def as_arrays(venues):
    return (
        np.array([v.ask for v in venues]),
        np.array([v.ask_size for v in venues]),
        np.array([v.fee for v in venues]),
        np.array([v.rebate for v in venues]),
    )


def main() -> None:
    rng = np.random.default_rng(20240801)
    print(f"Enumeration vs allocate: {ORDER_SIZE:,} shares, step {STEP}, cost basis cash and mid")
    header = f"{'N':>2} {'basis':>5} {'cap':>9} {'leaves':>9} {'enumeration':>14} "
    print(header + f"{'allocate':>11} {'ratio':>10}")
    for n in (2, 3, 4):
        for basis in ("cash", "mid"):
            venues, penalties = book(n, rng, basis)
            for cap in ("displayed", "order"):
                enum_s, leaves, note = time_enumeration(venues, penalties, cap)
                alloc_s = per_call(
                    lambda v=venues, p=penalties, c=cap: allocate(ORDER_SIZE, v, *p, cap=c)
                )
                print(
                    f"{n:>2} {basis:>5} {cap:>9} {leaves:>9,} {fmt(enum_s):>14} "
                    f"{fmt(alloc_s):>11} {enum_s / alloc_s:>9,.0f}x {note}"
                )
    print()
    print(
        f"allocate ({ORDER_SIZE:,} shares) and allocate_arrays(include_cap=True) "
        f"({OFF_GRID_ORDER_SIZE:,} shares; with cap displayed at most the displayed total - 63)"
    )
    print(f"{'N':>2} {'basis':>5} {'cap':>9} {'allocate':>11} {'include_cap':>12}")
    for n in range(5, 17):
        for basis in ("cash", "mid"):
            venues, penalties = book(n, rng, basis)
            arrays = as_arrays(venues)
            for cap in ("displayed", "order"):
                literal = per_call(
                    lambda v=venues, p=penalties, c=cap: allocate(ORDER_SIZE, v, *p, cap=c)
                )
                # With cap displayed a child order the size of all displayed shares has one
                # split (a fast path); 63 fewer shares make the dynamic program work.
                child = OFF_GRID_ORDER_SIZE
                if cap == "displayed":
                    child = min(child, int(arrays[1].sum()) - 63)
                off_grid = per_call(
                    lambda a=arrays, p=penalties, c=cap, s=child: allocate_arrays(
                        s, *a, *p, cap=c, include_cap=True
                    )
                )
                print(f"{n:>2} {basis:>5} {cap:>9} {fmt(literal):>11} {fmt(off_grid):>12}")


def fmt(seconds: float) -> str:
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


if __name__ == "__main__":
    main()
