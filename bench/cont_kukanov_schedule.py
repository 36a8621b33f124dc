"""The Cont & Kukanov router over a day's parent-order schedule: compiled against the reference.

Run as ``.venv/bin/python bench/cont_kukanov_schedule.py [--data FILE] [--trials 3]``. On the
real 12-venue TAQ day with trades (``../shared/data/real/taq_2018-01-02_mbp1_trades.csv.gz``
when present, else a generated 12-minute MBP-10 file) it prints:

1. seconds per sweep trial (every parent order of the schedule executed once at one parameter
   set drawn from the sweep's default space) with `execute_parent` (the reference) and with
   `execute_parent_compiled`, and their ratio; the results are compared field by field;
2. wall-clock seconds of ``sor backtest`` on the file with the static router (a plain backtest,
   mostly loading) and with ``--allocator cont_kukanov --schedule``, and their ratio (the target
   is at most 2), each in a fresh process after one warm-up run that fills Numba's cache.

Timings are wall-clock on a shared machine: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sor.config import load_config  # noqa: E402
from sor.data.loader import load_snapshots  # noqa: E402
from sor.evaluation.rules import evaluation_rules  # noqa: E402
from sor.evaluation.schedule import parent_orders  # noqa: E402
from sor.execution.cleanup import after_horizon, estimate_impact  # noqa: E402
from sor.execution.venues import venue_costs  # noqa: E402
from sor.routers.placement import PlacementParams, execute_parent, make_passive_market  # noqa: E402
from sor.routers.placement_nb import execute_parent_compiled  # noqa: E402
from sor.routers.static import reference_mid  # noqa: E402
from sor.synth.generate import generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared/data/real/taq_2018-01-02_mbp1_trades.csv.gz"


def trial(run, pm, orders, afters, params, rules) -> list:
    """Every parent order of the schedule at `params`."""
    return [
        run(
            pm,
            o.first,
            o.last,
            rules.order.size,
            params,
            rules.placement,
            max_participation=rules.order.max_participation,
            temporary_impact=rules.order.temporary_impact,
            after=after,
        )
        for o, after in zip(orders, afters, strict=True)
    ]


def same(a, b) -> bool:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if not (np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y):
            return False
    return True


def backtest_seconds(data: Path, *extra: str) -> float:
    out = Path(tempfile.mkdtemp()) / "results.json"
    command = [sys.executable, "-m", "sor", "backtest", "--data", str(data), "--out", str(out)]
    command += ["-q", *extra]
    subprocess.run(command, check=True, capture_output=True)  # warm-up: Numba's cache
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--no-backtest", action="store_true", help="skip part 2")
    args = parser.parse_args()
    data = args.data
    if data is None:
        if REAL.exists():
            data = REAL
        else:
            data = Path(tempfile.mkdtemp()) / "day.csv"
            generate(data, n_events=200_000, schema="mbp-10", seed=0)
    snaps, _ = load_snapshots(data)
    rules = evaluation_rules(load_config(None, {"router.allocator": "cont_kukanov"}))
    sched = rules.schedule
    orders = parent_orders(
        snaps,
        reference_mid(snaps),
        interval_s=sched.interval_s,
        horizon_s=sched.horizon_s,
        train_fraction=sched.train_fraction,
    )
    costs = venue_costs(snaps.venues)
    impact = estimate_impact(snaps)
    pm = make_passive_market(snaps, costs, impact)
    afters = [after_horizon(snaps, costs, o.last + 1, impact) for o in orders]
    print(f"data: {data.name}: {len(snaps):,} snapshots, {snaps.n_venues} venues")
    print(f"schedule: {len(orders)} parent orders of {rules.order.size:,} shares")
    rng = np.random.default_rng(0)
    trial(
        execute_parent_compiled,
        pm,
        orders[:2],
        afters[:2],
        PlacementParams(0.05, 0.05, 0.05, 15.0),
        rules,
    )
    ref_s, nb_s, equal = 0.0, 0.0, True
    for _ in range(args.trials):
        lo, lu, th = rng.uniform(0, 0.1, 3)
        params = PlacementParams(lo, lu, th, float(rng.uniform(1, 30)))
        started = time.perf_counter()
        want = trial(execute_parent, pm, orders, afters, params, rules)
        ref_s += time.perf_counter() - started
        started = time.perf_counter()
        got = trial(execute_parent_compiled, pm, orders, afters, params, rules)
        nb_s += time.perf_counter() - started
        equal &= all(same(g, w) for g, w in zip(got, want, strict=True))
    decisions = sum(f.decisions for f in got)
    print(
        f"per trial: reference {ref_s / args.trials:.2f} s, compiled {nb_s / args.trials:.2f} s, "
        f"ratio {ref_s / nb_s:.1f}x ({decisions} decisions in the last trial); "
        f"results identical: {equal}"
    )
    if args.no_backtest:
        return
    static_s = backtest_seconds(data)
    ck_s = backtest_seconds(data, "--allocator", "cont_kukanov", "--schedule")
    print(
        f"sor backtest: static {static_s:.1f} s, cont_kukanov --schedule {ck_s:.1f} s, "
        f"ratio {ck_s / static_s:.2f} (target <= 2)"
    )


if __name__ == "__main__":
    main()
