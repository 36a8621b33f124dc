"""How sor scales with the size of the data: time and peak memory of each phase against rows.

Run as ``.venv/bin/python bench/scale.py [--days 1 2 5 10 20] [--events-per-day 100000]``.
For each size it generates a multi-day file (``sor generate --days --profile taq-2018``: 11
venues, MBP-1, calibrated to a real day), then runs, each in a fresh process:

- ``sor backtest`` on it (load, one evaluation, baselines, results): wall time and peak RSS;
- ``sor run`` on it with a few trials (broker, produce, consume, sweep, report), reading the
  phase breakdown from the results JSON's ``timings``; the peak RSS is the largest of the run's
  processes (the driver or a Ray worker, as the kernel reports for waited-for descendants);
- a plain ``pandas.read_csv`` of the file, the yardstick of the targets: ``sor run`` at most 20
  times it, printed as a ratio per size.

Then it fits, for every phase, the exponent b of time ~ rows^b by least squares on the log-log
points (1 is linear, the goal) and prints the table. Wall-clock on a shared machine: the
exponents are the result, the seconds are context.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str]) -> tuple[float, float]:
    """Run `command` in a fresh process: (wall seconds, peak RSS MB of its largest process)."""
    script = (
        "import resource, subprocess, sys, time\n"
        "started = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, capture_output=True)\n"
        "print(time.perf_counter() - started,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *command], check=True, capture_output=True, text=True
    )
    seconds, peak = out.stdout.split()
    return float(seconds), float(peak)


def exponent(rows: list[int], seconds: list[float]) -> float:
    """b of seconds ~ rows^b, least squares on logs (nan with fewer than two points)."""
    if len(rows) < 2 or min(seconds) <= 0:
        return math.nan
    slope, _ = np.polyfit(np.log(rows), np.log(seconds), 1)
    return float(slope)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, nargs="+", default=[1, 2, 5, 10, 20])
    parser.add_argument("--events-per-day", type=int, default=100_000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--profile", default="taq-2018", help="sor generate --profile")
    args = parser.parse_args()
    sor = [sys.executable, "-m", "sor"]
    table: dict[str, dict[int, tuple[float, float]]] = {}
    sizes: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up, not measured: Numba compiles the generator's and the router's kernels once.
        warm = Path(tmp) / "warm.csv"
        subprocess.run(
            [*sor, "generate", str(warm), "--profile", args.profile, "--rows", "5000", "-q"],
            check=True,
            capture_output=True,
        )
        run([*sor, "backtest", "--data", str(warm), "--out", str(Path(tmp) / "w" / "r.json")])
        for days in args.days:
            data = Path(tmp) / f"days{days}.csv"
            started = time.perf_counter()
            subprocess.run(
                [*sor, "generate", str(data), "--days", str(days), "--profile", args.profile]
                + ["--rows", str(args.events_per_day * days), "-q"],
                check=True,
                capture_output=True,
            )
            generate_s = time.perf_counter() - started
            rows = sum(1 for _ in data.open()) - 1
            sizes.append(rows)
            table.setdefault("generate", {})[rows] = (generate_s, math.nan)
            out = Path(tmp) / f"bt{days}" / "results.json"
            table.setdefault("backtest", {})[rows] = run(
                [*sor, "backtest", "--data", str(data), "--out", str(out), "-q"]
            )
            out = Path(tmp) / f"run{days}" / "results.json"
            seconds, peak = run(
                [
                    *sor,
                    "run",
                    "--data",
                    str(data),
                    "--trials",
                    str(args.trials),
                    "--out",
                    str(out),
                    "-q",
                ]
            )
            table.setdefault("run (total)", {})[rows] = (seconds, peak)
            read = [sys.executable, "-c", "import pandas, sys; pandas.read_csv(sys.argv[1])"]
            table.setdefault("pandas.read_csv", {})[rows] = run([*read, str(data)])
            timings = json.loads(out.read_text()).get("timings", {})
            for phase, value in timings.items():
                if isinstance(value, (int, float)) and phase not in ("total", "trials_per_s"):
                    table.setdefault(f"run: {phase}", {})[rows] = (float(value), math.nan)
            print(f"{days} day(s): {rows:,} rows done", flush=True)
    print(f"\n{'phase':<24}" + "".join(f"{r:>14,}" for r in sizes) + f"{'exponent':>10}")
    for phase, points in table.items():
        xs = [r for r in sizes if r in points]
        ts = [points[r][0] for r in xs]
        cells = "".join(f"{points[r][0]:>10.1f} s  " if r in points else f"{'':>14}" for r in sizes)
        print(f"{phase:<24}{cells}{exponent(xs, ts):>10.2f}")
    ratios = [
        table["run (total)"][r][0] / table["pandas.read_csv"][r][0]
        for r in sizes
        if r in table.get("pandas.read_csv", {})
    ]
    print(f"{'run / read_csv':<24}" + "".join(f"{x:>12.1f}x  " for x in ratios))
    print(f"\n{'peak RSS (MB)':<24}" + "".join(f"{r:>14,}" for r in sizes) + f"{'exponent':>10}")
    for phase, points in table.items():
        mem = [points[r][1] for r in sizes if r in points]
        if all(math.isnan(m) for m in mem):
            continue
        xs = [r for r in sizes if r in points]
        print(f"{phase:<24}" + "".join(f"{m:>14.0f}" for m in mem) + f"{exponent(xs, mem):>10.2f}")


if __name__ == "__main__":
    main()
