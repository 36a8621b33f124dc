"""Router decisions per second: the compiled kernel (sor.routers.static_nb) against the Python loop.

Run as ``.venv/bin/python bench/router.py`` (``--quick`` for a short smoke run). On l1_day-sized
generated data (60,000 MBP-10 events, seed 0: about 53,800 snapshots over 5 venues) it prints:

1. router decisions (allocator calls) per second and snapshots per second, compiled and
   reference (`sor.evaluation.backtest.evaluate`), for caps "displayed" and "order", in scenarios
   where the router takes at once (typical penalties) and where it keeps deciding (small penalties
   with cap "order", so that it waits; a parent order larger than the day's liquidity with cap
   "displayed");
2. trials per second of `evaluate_compiled` (one call per trial, and batched) against `evaluate`
   with a 5,000-share order and penalties drawn from the sweep's default space;
3. time per trial as venues go 2, 4, 8, 16 and as snapshots double from 50,000 to 800,000 (the
   5-venue arrays tiled with shifted timestamps), with log-log least-squares exponents;
4. peak memory of one trial on 800,000 snapshots relative to the snapshot arrays, measured in a
   fresh process (VmHWM, reset before the trial where the kernel allows it, and tracemalloc).

Every timing is the best of a few repeats of wall-clock time on one core (the kernel and the
reference are single-threaded); the machine is shared, so compare the ratios measured in one run.
No assertions; results of both implementations are compared and the comparison printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402

import sor.routers.static  # noqa: E402
from sor.config import load_config  # noqa: E402
from sor.data.loader import load_snapshots  # noqa: E402
from sor.data.snapshots import Snapshots  # noqa: E402
from sor.evaluation.backtest import evaluate_reference, make_market  # noqa: E402
from sor.evaluation.rules import evaluation_rules  # noqa: E402
from sor.execution.market import Market, build_market  # noqa: E402
from sor.execution.venues import venue_costs  # noqa: E402
from sor.routers import static_nb as kernel  # noqa: E402
from sor.routers.static import RouterParams  # noqa: E402
from sor.synth.generate import DEFAULT_VENUES, generate  # noqa: E402

TYPICAL = RouterParams(0.4, 0.6, 0.3)  # configs/default.yaml's `params`: take at once
WAITING = RouterParams(0.0, 0.001, 0.001)  # post for the rebate, take little: the router waits
BALANCED = RouterParams(0.0, 0.01, 0.0)  # taking and posting cost about the same: mostly DP
HUGE = 10**9  # a parent order larger than all liquidity: the router takes until the window ends

# (name, cap, order size, params, what it shows)
SCENARIOS = [
    ("typical", "displayed", 5_000, TYPICAL, "takes what is shown at once"),
    ("long", "displayed", HUGE, TYPICAL, "10^9 shares: takes all day"),
    ("typical", "order", 5_000, TYPICAL, "takes at once"),
    ("waiting", "order", 5_000, WAITING, "posts for the rebate, fills little"),
    ("balanced", "order", 5_000, BALANCED, "dynamic program on most calls"),
    ("waiting", "order", 50_000, WAITING, "50,000 shares: decides all day"),
]


def best_time(fn, repeats: int) -> tuple[float, object]:
    """Best wall time of `repeats` calls of fn() and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def order_config(cap: str, size: int, **more):
    return load_config(None, {"order.cap": cap, "order.size": size, **more}).order


def reference_with_count(market: Market, params: RouterParams, order) -> tuple[float, object, int]:
    """One `evaluate` run, its wall time and the number of allocator calls the router made."""
    calls = 0
    original = sor.routers.static.allocate_arrays

    def counted(*args, **kwargs):
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    sor.routers.static.allocate_arrays = counted
    try:
        started = time.perf_counter()
        result = evaluate_reference(market, params, order)
        elapsed = time.perf_counter() - started
    finally:
        sor.routers.static.allocate_arrays = original
    return elapsed, result, calls


def kernel_only(market: Market, params: RouterParams, order) -> float:
    """Best time of the compiled call alone (`run_router_nb`, no Python wrapper), seconds."""
    arrays, rules = kernel.compiled_inputs(market, order)
    penalties = (float(params.lambda_over), float(params.lambda_under), float(params.theta_queue))

    def run():
        return kernel.run_router_nb(arrays, rules, penalties)

    return best_time(run, 5)[0]


def section_decisions(snaps: Snapshots, quick: bool) -> None:
    print("## 1. Router decisions per second (one core), 5 venues")
    print()
    print(
        f"{len(snaps):,} snapshots; mid cost basis, child sizing 'available', strict fills. "
        "A decision is one allocator call by the router; 'snaps' = snapshots the loop went "
        "through. Compiled = `evaluate_compiled` end to end (kernel = the compiled call alone)."
    )
    market = make_market(snaps, evaluation_rules(load_config(None)))
    build = sor.routers.static.Router
    matrix_s = best_time(lambda: build(market.snaps, market.costs, TYPICAL), 5)[0]
    print(
        f"The reference builds the allocator's price matrix (ask minus the mid) in every trial "
        f"(`Router.__init__`: {matrix_s * 1e3:.1f} ms here, included in 'reference ms'); the "
        "compiled path builds it once per market and caches it (not included)."
    )
    print()
    header = (
        "| scenario | cap | order | params (lo, lu, theta) | decisions | snaps | reference ms | "
        "compiled ms | reference dec/s | compiled dec/s | kernel dec/s | reference snaps/s | "
        "compiled snaps/s | speed-up | identical |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, cap, size, params, note in SCENARIOS:
        order = order_config(cap, size)
        market = make_market(snaps, evaluation_rules(load_config(None)))
        kernel.allocator_prices(market, order.cost_basis)  # once per market, not per trial
        ref_s, expected, calls = reference_with_count(market, params, order)
        if ref_s < 1.0 and not quick:
            ref_s = min(ref_s, *(reference_with_count(market, params, order)[0] for _ in range(2)))
        compiled_s, (result, stats) = best_time(
            lambda order=order, market=market, params=params: kernel.evaluate_compiled_stats(
                market, params, order
            ),
            3 if quick else 20,
        )
        core_s = kernel_only(market, params, order)
        same = result.to_dict() == expected.to_dict() and stats.decisions == calls
        size_text = "10^9" if size == HUGE else f"{size:,}"
        penalties = f"({params.lambda_over}, {params.lambda_under}, {params.theta_queue})"
        print(
            f"| {name}: {note} | {cap} | {size_text} | {penalties} | {stats.decisions:,} | "
            f"{stats.snapshots:,} | {ref_s * 1e3:,.1f} | {compiled_s * 1e3:,.3f} | "
            f"{calls / ref_s:,.0f} | {stats.decisions / compiled_s:,.0f} | "
            f"{stats.decisions / core_s:,.0f} | {stats.snapshots / ref_s:,.0f} | "
            f"{stats.snapshots / compiled_s:,.0f} | "
            f"{ref_s / compiled_s:,.0f}x | {'yes' if same else 'NO'} |"
        )
    print()


def section_trials(snaps: Snapshots, quick: bool) -> None:
    print("## 2. Trials per second, 5,000-share order, default rules (cap 'order', mid, strict)")
    print()
    config = load_config(None)
    market = make_market(snaps, evaluation_rules(config))
    order = config.order
    rng = np.random.default_rng(0)
    n_ref, n_compiled = (5, 200) if quick else (30, 2000)
    draws = rng.uniform(0.0, 0.1, (n_compiled, 3))  # the sweep's default space (config.py)
    params = [RouterParams(*map(float, row)) for row in draws]
    kernel.evaluate_batch_compiled(market, params[:2], order)  # compile / load the cache
    started = time.perf_counter()
    expected = [evaluate_reference(market, p, order) for p in params[:n_ref]]
    ref_s = time.perf_counter() - started
    single_s, results = best_time(
        lambda: [kernel.evaluate_compiled(market, p, order) for p in params], 7
    )
    batch_s, batch = best_time(lambda: kernel.evaluate_batch_compiled(market, params, order), 7)
    same = all(
        a.to_dict() == b.to_dict() == c.to_dict()
        for a, b, c in zip(expected, results, batch, strict=False)
    )
    same = same and all(a.to_dict() == b.to_dict() for a, b in zip(results, batch, strict=True))
    print("| implementation | trials | seconds | trials/s | vs reference |")
    print("|---|---|---|---|---|")
    ref_rate = n_ref / ref_s
    print(f"| `evaluate` (reference) | {n_ref} | {ref_s:.2f} | {ref_rate:,.1f} | 1x |")
    for label, seconds in (
        ("`evaluate_compiled`, one call per trial", single_s),
        ("`evaluate_batch_compiled`, one call for all", batch_s),
    ):
        rate = n_compiled / seconds
        print(f"| {label} | {n_compiled} | {seconds:.3f} | {rate:,.0f} | {rate / ref_rate:,.0f}x |")
    print()
    print(
        f"Penalties uniform on [0, 0.1]^3 (seed 0). Results identical to the reference on the "
        f"{n_ref} shared trials, and batch == single on all: {'yes' if same else 'NO'}."
    )
    print()


def venue_profiles(n: int):
    """n venue profiles: the five defaults, then copies of them under new publisher_ids."""
    out = []
    for k in range(n):
        profile = DEFAULT_VENUES[k % len(DEFAULT_VENUES)]
        copy = k // len(DEFAULT_VENUES)
        out.append(dataclasses.replace(profile, publisher_id=profile.publisher_id + 100 * copy))
    return out


def tile(snaps: Snapshots, rows: int, copies: int) -> Snapshots:
    """The first `rows` snapshots repeated `copies` times, timestamps shifted to stay increasing."""
    base = {f.name: getattr(snaps, f.name) for f in dataclasses.fields(snaps)}
    span = int(snaps.ts[rows - 1] - snaps.ts[0]) + 1_000_000
    out = {}
    per_trade = (snaps.trade_row < rows) if len(snaps.trade_row) else None
    for name, value in base.items():
        if name in ("venues", "symbol"):
            out[name] = value
        elif name == "trade_row":
            kept = value[per_trade] if per_trade is not None else value
            out[name] = np.concatenate([kept + i * rows for i in range(copies)])
        elif name.startswith("trade_") and name != "trade_volume":
            kept = value[per_trade] if per_trade is not None else value
            out[name] = np.concatenate([kept] * copies)
        elif name == "ts":
            shifts = np.repeat(np.arange(copies, dtype=np.int64) * span, rows)
            out[name] = np.tile(value[:rows], copies) + shifts
        else:
            out[name] = np.concatenate([value[:rows]] * copies)
    return Snapshots(**out)


def fit_exponent(x, y) -> float:
    """Slope of log(y) against log(x), least squares."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


SCALING = [
    ("typical", "order", 5_000, TYPICAL),
    ("waiting", "order", 5_000, WAITING),
    ("balanced", "order", 5_000, BALANCED),
    ("long", "displayed", HUGE, TYPICAL),
]


def time_trial(snaps: Snapshots, cap: str, size: int, params: RouterParams, repeats: int):
    order = order_config(cap, size)
    market = make_market(snaps, evaluation_rules(load_config(None)))
    kernel.allocator_prices(market, order.cost_basis)
    seconds, (_, stats) = best_time(
        lambda: kernel.evaluate_compiled_stats(market, params, order), repeats
    )
    return seconds, stats


def section_scaling(workdir: Path, snaps5: Snapshots, quick: bool) -> Snapshots:
    print("## 3. Scaling (compiled, time per trial)")
    print()
    counts = (2, 4, 8, 16)
    print("### Venues (60,000 MBP-10 events each, seed 0)")
    print()
    print(
        "| venues | snapshots | "
        + " | ".join(f"{s[0]} {s[1]} ms (decisions)" for s in SCALING)
        + " |"
    )
    print("|---|---|" + "---|" * len(SCALING))
    times: dict[str, list[float]] = {s[0] + s[1]: [] for s in SCALING}
    per_decision: dict[str, list[float]] = {s[0] + s[1]: [] for s in SCALING}
    for n in counts:
        path = workdir / f"venues{n}.csv"
        events = 20_000 if quick else 60_000
        generate(path, n_events=events, schema="mbp-10", seed=0, venues=venue_profiles(n))
        snaps = load_snapshots(path)[0]
        cells = []
        for name, cap, size, params in SCALING:
            seconds, stats = time_trial(snaps, cap, size, params, 3 if quick else 7)
            times[name + cap].append(seconds)
            per_decision[name + cap].append(seconds / max(stats.decisions, 1))
            cells.append(f"{seconds * 1e3:,.2f} ({stats.decisions:,})")
        print(f"| {n} | {len(snaps):,} | " + " | ".join(cells) + " |")
    print(
        "| exponent (time ~ venues^k) | | "
        + " | ".join(
            f"k = {fit_exponent(counts, times[s[0] + s[1]]):.2f} "
            f"(per decision {fit_exponent(counts, per_decision[s[0] + s[1]]):.2f})"
            for s in SCALING
        )
        + " |"
    )
    print()
    print(
        "Different venue counts are different markets (more venues, more liquidity shown): the "
        "number of decisions changes with them; the exponent per decision is the cost of one "
        "allocator call plus the snapshots skipped between calls."
    )
    print()
    base = min(50_000, len(snaps5))
    print(f"### Snapshots (the 5-venue data, first {base:,} snapshots tiled)")
    print()
    sizes = tuple(base * k for k in ((1, 2, 4) if quick else (1, 2, 4, 8, 16)))
    print("| snapshots | " + " | ".join(f"{s[0]} {s[1]} ms (decisions)" for s in SCALING) + " |")
    print("|---|" + "---|" * len(SCALING))
    times = {s[0] + s[1]: [] for s in SCALING}
    largest = None
    for rows in sizes:
        snaps = tile(snaps5, base, rows // base)
        largest = snaps
        cells = []
        for name, cap, size, params in SCALING:
            seconds, stats = time_trial(snaps, cap, size, params, 3 if quick else 5)
            times[name + cap].append(seconds)
            cells.append(f"{seconds * 1e3:,.2f} ({stats.decisions:,})")
        print(f"| {rows:,} | " + " | ".join(cells) + " |")
    print(
        "| exponent (time ~ snapshots^k) | "
        + " | ".join(f"k = {fit_exponent(sizes, times[s[0] + s[1]]):.2f}" for s in SCALING)
        + " |"
    )
    print()
    print(
        "A 5,000-share order finishes within the first few thousand snapshots whatever follows, "
        "so its time does not grow with the window (k ~ 0); the 10^9-share order goes through "
        "every snapshot (k ~ 1)."
    )
    print()
    return largest


def current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def hwm() -> int:
    """Peak resident memory of this process (VmHWM), bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_hwm() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


MEMORY_TRIALS = {
    "long": ("compiled, long: cap displayed, 10^9 shares", "displayed", HUGE, True),
    "typical": ("compiled, typical: cap order, 5,000 shares", "order", 5_000, True),
    "reference": ("reference `evaluate`, typical", "order", 5_000, False),
}


def memory_child(workdir: Path, trial: str) -> None:
    """Runs in a fresh process: load the snapshot arrays, measure one trial's peak memory.

    One trial per process: memory freed by an earlier trial stays resident in the allocator's
    heap and would hide the next one's peak.
    """
    label, cap, size, compiled = MEMORY_TRIALS[trial]
    names = [f.name for f in dataclasses.fields(Snapshots) if f.name != "symbol"]
    arrays = {n: np.load(workdir / f"{n}.npy") for n in names if (workdir / f"{n}.npy").exists()}
    snaps = Snapshots(**arrays, symbol="AAPL")
    costs = venue_costs(snaps.venues)
    order = order_config(cap, size)
    run = kernel.evaluate_compiled if compiled else evaluate_reference
    # Warm-up on 1,000 snapshots: imports, JIT cache load, first allocations.
    small = Snapshots(**{k: (v if k == "venues" else v[:1000]) for k, v in arrays.items()})
    run(build_market(small, costs), TYPICAL, order)
    market = build_market(snaps, costs)
    gc.collect()
    reset = reset_hwm()
    before_rss, before_peak = current_rss(), hwm()
    started = time.perf_counter()
    run(market, TYPICAL, order)
    seconds = time.perf_counter() - started
    peak = hwm() - (before_rss if reset else before_peak)
    market = build_market(snaps, costs)  # a fresh market: the price matrix is computed anew
    gc.collect()
    tracemalloc.start()
    run(market, TYPICAL, order)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    data = snaps.nbytes
    how = "VmHWM reset before the trial" if reset else "VmHWM growth, a lower bound"
    print(
        f"| {label} | {seconds:.3f} | {peak / 2**20:,.1f} ({how}) | {peak / data:.2f}x | "
        f"{traced / 2**20:,.1f} | {traced / data:.2f}x | "
        f"{(data + peak) / data:.2f}x |"
    )


def section_memory(workdir: Path, snaps: Snapshots) -> None:
    print(f"## 4. Peak memory of one trial on {len(snaps):,} snapshots (fresh process per trial)")
    print()
    for f in dataclasses.fields(Snapshots):
        if f.name != "symbol" and getattr(snaps, f.name) is not None:
            np.save(workdir / f"{f.name}.npy", getattr(snaps, f.name))
    print(
        f"Snapshot arrays (`Snapshots.nbytes`, ask depth included): "
        f"{snaps.nbytes / 2**20:,.1f} MiB ({len(snaps):,} x {snaps.n_venues} venues x "
        f"{snaps.n_levels} levels). Penalties {tuple(vars(TYPICAL).values())}."
    )
    print()
    print(
        "| trial | seconds (price matrix included) | trial peak RSS, MiB | / snapshot arrays | "
        "tracemalloc peak, MiB | / snapshot arrays | (arrays + trial peak) / arrays |"
    )
    print("|---|---|---|---|---|---|---|")
    for trial in MEMORY_TRIALS:
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(workdir), trial],
            capture_output=True,
            text=True,
            check=False,
        )
        print(out.stdout.strip() or f"| {trial} | failed: {out.stderr.strip()[-300:]} |")
    print()
    print(
        "A trial's own allocations are the price matrix the allocator sees (ask minus the "
        "reference mid, float64[T, N]: 0.23x the arrays with 5 venues, computed once per market "
        "and cached by the compiled path, per trial by the reference) and its temporaries; the "
        "kernel's workspace is a few kilobytes. tracemalloc sees numpy's allocations, not "
        "Numba's runtime (which allocates only that workspace)."
    )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(Path(args.memory_child[0]), args.memory_child[1])
        return
    print("# bench/router.py")
    print()
    print(
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or 'unknown processor'}); Python "
        f"{platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}"
    )
    print()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "l1_day_like.csv"
        started = time.perf_counter()
        generate(path, n_events=20_000 if args.quick else 60_000, schema="mbp-10", seed=0)
        snaps = load_snapshots(path)[0]
        print(
            f"Data: generate(n_events={'20_000' if args.quick else '60_000'}, schema='mbp-10', "
            f"seed=0): {len(snaps):,} snapshots x {snaps.n_venues} venues, "
            f"{snaps.nbytes / 2**20:.1f} MiB of arrays ({time.perf_counter() - started:.1f} s to "
            "generate and load)."
        )
        started = time.perf_counter()
        warm = make_market(snaps, evaluation_rules(load_config(None)))
        for cap in ("displayed", "order"):
            kernel.evaluate_compiled(warm, TYPICAL, order_config(cap, 5_000))
            kernel.evaluate_batch_compiled(warm, [TYPICAL], order_config(cap, 5_000))
        seconds = time.perf_counter() - started
        print(f"First compiled calls (JIT compile or cache load): {seconds:.1f} s.")
        print()
        section_decisions(snaps, args.quick)
        section_trials(snaps, args.quick)
        largest = section_scaling(workdir, snaps, args.quick)
        section_memory(workdir, largest)


if __name__ == "__main__":
    main()
