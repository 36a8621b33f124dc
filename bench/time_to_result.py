"""Time to the first result: `sor run` end to end in a subprocess, with its phases.

Runs `python -m sor run --data FILE --trials N -q` and measures, from the moment the process is
started, when its results JSON appears and when the process has exited (the prompt is back),
then prints the phases the run recorded under `timings` in the JSON. With `--before PATH` (a
checkout of another version, e.g. `git archive <commit> | tar -x -C PATH`) the two versions run
alternately in one session, so that a busy machine slows both alike, and the ratio of their
medians is printed.

    .venv/bin/python bench/time_to_result.py --data d17k.csv --trials 27 --repeat 3 \\
        --before /tmp/sor-before

The data file: `sor generate d17k.csv --profile legacy --rows 19000 --seed 0` gives 17,139
snapshots.
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
PHASES = ("ray_start", "ray_wait", "load", "broker_start", "produce", "consume",
          "driver_ready", "sweep_warm_up", "sweep", "report", "total", "trials_per_s")  # fmt: skip


def run_once(root: Path, data: Path, trials: int, extra: list[str]) -> dict:
    """One `sor run` of the checkout at `root`: seconds to the results JSON and to the exit."""
    with tempfile.TemporaryDirectory(prefix="sor-ttr-") as folder:
        out = Path(folder) / "results.json"
        env = {**os.environ, "PYTHONPATH": str(root)}
        command = [sys.executable, "-m", "sor", "run", "--data", str(data), "--trials",
                   str(trials), "--out", str(out), "-q", *extra]  # fmt: skip
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)  # fmt: skip
        first = None
        while process.poll() is None:
            if first is None and out.exists():
                first = time.perf_counter() - started
            time.sleep(0.01)
        ended = time.perf_counter() - started
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.returncode != 0 or not out.exists():
            raise SystemExit(f"{root}: sor run failed ({process.returncode}): {stderr[-2000:]}")
        report = json.loads(out.read_text())
        return {
            "results_s": first if first is not None else ended,
            "exit_s": ended,
            "timings": report.get("timings", {}),
            "trials_per_s": report["sweep"]["trials_per_s"],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the data file to run on")
    parser.add_argument("--trials", type=int, default=27)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each version")
    parser.add_argument("--before", type=Path, help="checkout of the version to compare with")
    parser.add_argument("extra", nargs="*", help="more `sor run` arguments (after --)")
    args = parser.parse_args()
    versions = {"after": ROOT} if args.before is None else {"before": args.before, "after": ROOT}
    for name, root in versions.items():  # untimed: Numba's cache and the OS's file cache
        run_once(root, args.data, args.trials, args.extra)
        print(f"warmed up {name} ({root})", file=sys.stderr)
    runs: dict[str, list[dict]] = {name: [] for name in versions}
    for i in range(args.repeat):
        for name, root in versions.items():
            result = run_once(root, args.data, args.trials, args.extra)
            runs[name].append(result)
            print(f"run {i + 1} {name}: results after {result['results_s']:.2f} s, exit after "
                  f"{result['exit_s']:.2f} s, {result['trials_per_s']:.1f} trials/s",
                  file=sys.stderr)  # fmt: skip
    print(f"sor run --data {args.data.name} --trials {args.trials}, {args.repeat} runs each, "
          f"load average {os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} CPUs")  # fmt: skip
    medians = {}
    for name, results in runs.items():
        medians[name] = {key: statistics.median(r[key] for r in results)
                         for key in ("results_s", "exit_s", "trials_per_s")}  # fmt: skip
        m = medians[name]
        print(f"{name:>6}: results JSON after {m['results_s']:.2f} s, prompt back after "
              f"{m['exit_s']:.2f} s (medians), sweep {m['trials_per_s']:.1f} trials/s")  # fmt: skip
    if "before" in medians:
        b, a = medians["before"], medians["after"]
        print(f" ratio: results {b['results_s'] / a['results_s']:.2f}x sooner, prompt back "
              f"{b['exit_s'] / a['exit_s']:.2f}x sooner")  # fmt: skip
    print("phases (seconds, medians; ray_start overlaps load..consume):")
    print(f"  {'':>13}  " + "  ".join(f"{name:>8}" for name in runs))
    for key in PHASES:
        row = []
        for results in runs.values():
            values = [r["timings"][key] for r in results if key in r["timings"]]
            row.append(f"{statistics.median(values):8.3f}" if values else f"{'-':>8}")
        print(f"  {key:>13}: " + "  ".join(row))


if __name__ == "__main__":
    main()
