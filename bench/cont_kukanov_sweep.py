"""Cont & Kukanov schedule sweep, trials/s per worker: this checkout against another version.

A sweep of `router.allocator: cont_kukanov` with `schedule.enabled` on the generated
l1_day-sized file (`bench/sweep_throughput.py`'s data: 60,000 MBP-10 events, 5 venues), one Ray
worker, the random sampler. Each version runs in a subprocess of its own, with its code first on
the path: it starts Ray, runs the sweep once untimed (worker start, kernel loading and the
evaluation's preparation are paid there, as a long sweep pays them once) and then the same
sweep again, timed, and prints trials/s; then, in a fresh process, the CPU time of one trial
(`evaluation.evaluate` over 40 seeded parameter sets, no Optuna or Ray). With `--before PATH`
(a checkout of another version, e.g. `git archive <commit> | tar -x -C PATH`) the two versions
run alternately, so that a busy machine slows both alike, and the ratio of their medians is
printed.

    .venv/bin/python bench/cont_kukanov_sweep.py --before /tmp/sor-before --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONT_KUKANOV = {"router.allocator": "cont_kukanov", "schedule.enabled": True}


def child(data: Path, trials: int) -> None:
    """In the subprocess: the untimed and the timed sweep; prints one JSON line."""
    import ray

    from sor.config import load_config
    from sor.data.loader import load_snapshots
    from sweep.driver import run_sweep

    snaps, _ = load_snapshots(data)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        config = load_config(
            None,
            {
                "search.trials": trials,
                "search.sampler": "random",
                "search.trials_per_round": 16,
                "order.size": 5_000,
                **CONT_KUKANOV,
            },
        )
        ref = ray.put(snaps)
        run_sweep(ref, config, progress=False)
        started = time.perf_counter()
        result = run_sweep(ref, config, progress=False)
        elapsed = time.perf_counter() - started
        values = sorted(t.value for t in result.study.trials if t.value is not None)
    finally:
        ray.shutdown()
    print(json.dumps({"trials_per_s": trials / elapsed, "values": values}))


def child_cpu(data: Path, trials: int) -> None:
    """In the subprocess: CPU seconds per trial of `evaluation.evaluate` in this one process,
    over `trials` parameter sets drawn from the search space (seeded); prints one JSON line."""
    import numpy as np

    from sor.config import load_config
    from sor.data.loader import load_snapshots
    from sor.evaluation.modes import prepare

    snaps, _ = load_snapshots(data)
    config = load_config(None, {"order.size": 5_000, **CONT_KUKANOV})
    evaluation = prepare(snaps, config)
    rng = np.random.default_rng(3)
    sets = [
        {
            "lambda_over": float(rng.uniform(0, 0.1)),
            "lambda_under": float(rng.uniform(0, 0.1)),
            "theta_queue": float(rng.uniform(0, 0.1)),
            "horizon_s": float(rng.uniform(1, 30)),
        }
        for _ in range(trials)
    ]
    evaluation.evaluate(sets[0])  # kernels loaded, not timed
    started = time.process_time()
    for params in sets:
        evaluation.evaluate(params)
    print(json.dumps({"cpu_ms": (time.process_time() - started) / trials * 1e3}))


def run_version(root: Path, data: Path, trials: int, mode: str = "--child") -> dict:
    """One subprocess run of the checkout at `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, str(Path(__file__).resolve()), mode, str(data),
               "--trials", str(trials)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{root}: exit {done.returncode}\n{done.stderr[-3000:]}")
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="checkout of the version to compare with")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-cpu", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.trials)
        return
    if args.child_cpu is not None:
        child_cpu(args.child_cpu, 40)
        return
    from sor.synth.generate import generate

    versions = {"after": ROOT}
    if args.before is not None:
        versions = {"before": args.before.resolve(), "after": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "day.csv"
        generate(data, n_events=60_000, schema="mbp-10", seed=0)
        rates: dict[str, list[float]] = {name: [] for name in versions}
        cpu: dict[str, list[float]] = {name: [] for name in versions}
        values: dict[str, list[float]] = {}
        for i in range(args.repeat):
            for name, root in versions.items():
                outcome = run_version(root, data, args.trials)
                rates[name].append(outcome["trials_per_s"])
                values[name] = outcome["values"]
                cpu[name].append(run_version(root, data, 40, "--child-cpu")["cpu_ms"])
                rate, ms = outcome["trials_per_s"], cpu[name][-1]
                print(f"run {i + 1} {name}: {rate:.2f} trials/s through the sweep, "
                      f"{ms:.2f} ms CPU a trial in one process", flush=True)  # fmt: skip
    load = os.getloadavg()[0]
    print(f"{args.trials} C&K schedule trials, 1 worker, {args.repeat} runs each, "
          f"load average {load:.1f} at the end on {os.cpu_count()} CPUs")  # fmt: skip
    for name in versions:
        print(f"{name:>6}: {statistics.median(rates[name]):.2f} trials/s, "
              f"{statistics.median(cpu[name]):.2f} ms CPU a trial (medians)")  # fmt: skip
    if "before" in versions:
        cpu_ratio = statistics.median(cpu["before"]) / statistics.median(cpu["after"])
        print(f" CPU a trial: {cpu_ratio:.2f}x less")
        ratio = statistics.median(rates["after"]) / statistics.median(rates["before"])
        gap = max(abs(a - b) for a, b in zip(values["before"], values["after"], strict=True))
        print(f" ratio: {ratio:.2f}x; largest difference between the trial values: {gap:.2e} bps")


if __name__ == "__main__":
    main()
