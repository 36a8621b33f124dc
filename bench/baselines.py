"""The baselines over a day's parent-order schedule: the compiled kernel against the Python engine.

Run as ``.venv/bin/python bench/baselines.py [--data PATH] [--orders N]``. Without ``--data`` it
reads the shared real day (``../shared/data/real/taq_2018-01-02_mbp1_trades.csv.gz``: MBP-1
TAQ quotes with trades, 12 venues), builds the parent-order schedule of ``sor backtest
--schedule`` with the default configuration (one 5,000-share order every 30 s, 60 s horizons),
and times Best-Ask, TWAP and VWAP over every parent order (or the first N):

- `run_baselines_reference`: each baseline through `sor.execution.engine.execute` in Python;
- `run_baselines`: the compiled kernel (`sor.evaluation.baselines_nb`), its input arrays built
  anew for each parent order (as in a fresh `make_schedule_market`).

One run of each (the reference takes tens of seconds); wall-clock and CPU time (this process)
on a shared machine, so compare the ratios. The first compiled call (`warm_up`: JIT compile or
cache load) is timed apart. No
assertions: whether every result is identical, field by field, is printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402
import numpy as np  # noqa: E402

from sor.config import load_config  # noqa: E402
from sor.data.loader import load_snapshots  # noqa: E402
from sor.evaluation.backtest import run_baselines, run_baselines_reference  # noqa: E402
from sor.evaluation.baselines_nb import warm_up  # noqa: E402
from sor.evaluation.rules import evaluation_rules  # noqa: E402
from sor.evaluation.schedule import make_schedule_market  # noqa: E402
from sor.execution.engine import ExecutionResult  # noqa: E402

REAL_DAY = (
    Path(__file__).resolve().parents[2] / "shared/data/real/taq_2018-01-02_mbp1_trades.csv.gz"
)


def same(a: ExecutionResult, b: ExecutionResult) -> bool:
    """Equal field by field, floats exact (NaN equal to NaN)."""
    if math.isnan(a.avg_fill_px) and math.isnan(b.avg_fill_px):
        a, b = dataclasses.replace(a, avg_fill_px=0.0), dataclasses.replace(b, avg_fill_px=0.0)
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REAL_DAY)
    parser.add_argument("--orders", type=int, default=None, help="first N parent orders only")
    args = parser.parse_args()
    config = load_config(
        None,
        {
            "data.path": str(args.data),
            "router.allocator": "cont_kukanov",
            "schedule.enabled": True,
        },
    )
    started = time.perf_counter()
    warm_up()
    first_call = time.perf_counter() - started
    started = time.perf_counter()
    snaps, _ = load_snapshots(args.data, **config.load_options())
    rules = evaluation_rules(config)
    sm = make_schedule_market(snaps, rules)
    setup = time.perf_counter() - started
    baseline_rules = dataclasses.replace(rules, twap_bucket_s=rules.schedule.twap_bucket_s)
    parents = sm.parents[: args.orders] if args.orders else sm.parents

    print("# bench/baselines.py\n")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"{now}; {platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, numba {numba.__version__}\n"
    )
    print(
        f"Data: {args.data.name}: {len(snaps):,} "
        f"snapshots x {snaps.n_venues} venues; {len(parents)} parent orders of "
        f"{rules.order.size:,} shares, {rules.schedule.horizon_s:g} s horizons, TWAP buckets of "
        f"{rules.schedule.twap_bucket_s:g} s (load and schedule: {setup:.1f} s).\n"
    )

    def fresh(parent):  # a new Market: the compiled path's per-market cache starts empty
        return dataclasses.replace(parent)

    started, cpu = time.perf_counter(), time.process_time()
    reference = [run_baselines_reference(fresh(p), baseline_rules) for p in parents]
    reference_s, reference_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    compiled = [run_baselines(fresh(p), baseline_rules) for p in parents]
    compiled_s, compiled_cpu = time.perf_counter() - started, time.process_time() - cpu

    runs = sum(len(r) for r in reference)
    identical = all(
        same(compiled[i][name], reference[i][name])
        for i in range(len(parents))
        for name in reference[i]
    )
    print(
        "| implementation | executions | wall s | CPU s | ms per execution (CPU) | "
        "vs reference (wall) | vs reference (CPU) |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| `run_baselines_reference` (Python engine) | {runs:,} | {reference_s:.2f} | "
        f"{reference_cpu:.2f} | {1e3 * reference_cpu / runs:.2f} | 1x | 1x |"
    )
    print(
        f"| `run_baselines` (compiled) | {runs:,} | {compiled_s:.3f} | {compiled_cpu:.3f} | "
        f"{1e3 * compiled_cpu / runs:.3f} | {reference_s / compiled_s:.0f}x | "
        f"{reference_cpu / compiled_cpu:.0f}x |"
    )
    print(f"\nFirst compiled call (JIT compile or cache load): {first_call:.1f} s.")
    answer = "yes" if identical else "NO"
    print(f"Every result identical to the reference, field by field: {answer}")


if __name__ == "__main__":
    main()
