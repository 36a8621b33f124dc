"""Time one Cont & Kukanov allocation: 12 venues, N = 1,000 stochastic-approximation iterations.

Run as ``.venv/bin/python bench/cont_kukanov.py``. The paper (Cont & Kukanov 2017, §4) quotes
under 200 ms on a laptop; the target here is under 2 ms, so that a decision every few
seconds of a day stays affordable inside a sweep. Prints the median of repeated solves for
K = 1..16 venues, the compiled solver against its iteration loop run as plain Python (same
answer checked), and the ratios to both figures. Inputs are seeded: 5,000 shares, queues
of 100-2,000 shares, 200 joint outflow samples. Wall-clock timings on a shared machine;
no assertions.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sor.routers import cont_kukanov  # noqa: E402
from sor.routers.cont_kukanov import PlacementProblem, solve  # noqa: E402

ITERATIONS = 1_000
PAPER_MS = 200.0
TARGET_MS = 2.0


def problem(venues: int, rng: np.random.Generator) -> PlacementProblem:
    """A seeded decision with `venues` venues."""
    return PlacementProblem(
        shares=5_000,
        half_spread=0.005,
        fee=0.003,
        rebates=rng.uniform(0.001, 0.0032, venues),
        queues=rng.integers(100, 2_000, venues).astype(float),
        outflows=rng.gamma(1.5, 900, size=(200, venues)).round(),
        lambda_under=0.05,
        lambda_over=0.04,
        theta=0.001,
    )


def median_ms(p: PlacementProblem, repeats: int) -> float:
    """Median wall time of one `solve`, milliseconds."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        solve(p, iterations=ITERATIONS, seed=i)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def python_ms(p: PlacementProblem) -> tuple[float, np.ndarray]:
    """Wall time with the iteration loop as plain Python (Numba's py_func; the projection it calls
    stays compiled), and its answer."""
    kernel = cont_kukanov._stochastic_approximation
    saved = cont_kukanov._stochastic_approximation, cont_kukanov._project_into
    cont_kukanov._stochastic_approximation = kernel.py_func
    try:
        start = time.perf_counter()
        x = solve(p, iterations=ITERATIONS, seed=0)
        return (time.perf_counter() - start) * 1e3, np.r_[x.market, x.limits]
    finally:
        cont_kukanov._stochastic_approximation, cont_kukanov._project_into = saved


def main() -> None:
    rng = np.random.default_rng(0)
    solve(problem(2, rng), iterations=10)  # compile (or load the cache) before timing
    print(f"Cont & Kukanov allocation, N = {ITERATIONS:,} iterations, median of repeats")
    print(f"{'venues':>6} {'ms':>8} {'target/ms':>10} {'paper/ms':>9}")
    for k in (1, 2, 4, 8, 12, 16):
        ms = median_ms(problem(k, rng), repeats=50)
        print(f"{k:>6} {ms:>8.3f} {TARGET_MS / ms:>9.1f}x {PAPER_MS / ms:>8.0f}x")
    p = problem(12, np.random.default_rng(12))
    compiled = median_ms(p, repeats=50)
    plain, answer = python_ms(p)
    x = solve(p, iterations=ITERATIONS, seed=0)
    same = np.allclose(answer, np.r_[x.market, x.limits], rtol=1e-9, atol=1e-6)
    print(
        f"12 venues: compiled {compiled:.3f} ms, loop in plain Python {plain:.1f} ms "
        f"({plain / compiled:.0f}x), same answer: {same}"
    )
    verdict = "met" if compiled < TARGET_MS else "MISSED"
    print(f"target under {TARGET_MS} ms for 12 venues: {verdict}")


if __name__ == "__main__":
    main()
