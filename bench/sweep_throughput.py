"""Sweep throughput with 1 and 2 Ray workers on l1_day-sized generated data, and worker memory.

Run: .venv/bin/python bench/sweep_throughput.py [--trials 400]
Prints, for a 5,000-share parent order (the default: a trial takes about a millisecond with the
compiled kernel, so the Optuna driver's ask/tell bounds the rate) and a 200,000-share one (trials
of 30-900 ms that run through the window, so the workers bound it): trials/s with 1 and 2 Ray
workers, their ratio (target >= 1.7 where the workers bound the rate; the driver shares the two
cores of this machine), and the peak RSS of each worker (target: the same for 1 and 2 workers,
since every worker reads the one shared snapshot object zero-copy). A third case sweeps the
Cont & Kukanov router over a parent-order schedule: 50-200 ms trials.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import ray

from sor.config import load_config
from sor.data.loader import load_snapshots
from sor.synth.generate import generate
from sweep.driver import run_sweep


def measure(
    snaps, workers: int, trials: int, size: int, extra: dict | None = None
) -> tuple[float, list[int]]:
    ray.init(
        num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False
    )
    try:
        config = load_config(
            None,
            {
                "search.trials": trials,
                "search.sampler": "random",
                "search.trials_per_round": 16,
                "order.size": size,
                **(extra or {}),
            },
        )
        ref = ray.put(snaps)
        # Warm-up: Ray starts worker processes on first use (seconds each); not what we measure.
        warm = load_config(
            None,
            {
                "search.trials": 2 * workers,
                "search.sampler": "random",
                "search.seed": 99,
                "search.trials_per_round": 2 * workers,
                "order.size": size,
                **(extra or {}),
            },
        )
        run_sweep(ref, warm, progress=False)
        started = time.perf_counter()
        result = run_sweep(ref, config, progress=False)
        elapsed = time.perf_counter() - started
        peaks: dict[int, int] = {}
        for t in result.study.trials:
            pid, peak = t.user_attrs.get("pid"), t.user_attrs.get("peak_rss_kib", 0)
            peaks[pid] = max(peaks.get(pid, 0), peak)
        return trials / elapsed, sorted(peaks.values())
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument(
        "--only", default=None, help="run only the cases whose label contains this text"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "day.csv"
        generate(path, n_events=60_000, schema="mbp-10", seed=0)
        snaps, _ = load_snapshots(path)
    print(
        f"machine: {platform.machine()}, {platform.python_version()}; "
        f"{len(snaps):,} snapshots x {snaps.n_venues} venues, {snaps.nbytes / 1e6:.1f} MB; "
        f"{args.trials} trials, random sampler"
    )
    cont_kukanov = {"router.allocator": "cont_kukanov", "schedule.enabled": True}
    cases = [
        ("static, 5,000 shares", 5_000, args.trials, None),
        ("static, 200,000 shares", 200_000, max(16, args.trials // 8), None),
        ("cont_kukanov schedule, 5,000 shares", 5_000, max(16, args.trials // 8), cont_kukanov),
    ]
    for label, size, trials, extra in cases:
        if args.only and args.only not in label:
            continue
        rates = {}
        for workers in (1, 2):
            rate, peaks = measure(snaps, workers, trials, size, extra)
            rates[workers] = rate
            print(
                f"{label}, workers={workers}: {rate:8.2f} trials/s ({trials} trials); "
                f"peak RSS per worker (MB): {[round(p / 1024) for p in peaks]}"
            )
        print(f"{label}: speed-up 2 vs 1 workers {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
