"""Stylized facts of the real files and of the calibrated generator, side by side.

    PYTHONPATH=$PWD python bench/calibration.py [--days 12] [--seed 1] [--speed]

For each calibrated profile, measures the real file it is named after (the TAQ day in regular
hours) and a generated file of the same rows per day over `--days` days (facts averaged over
the days, `sor.synth.facts.measure_days`), and prints each fact with the ratio generated / real
and whether it lies within the profile's tolerance. `--speed` also times `sor generate` of two
million rows over 20 days in every profile, legacy included (rows per second and peak memory).

Needs ../shared/data/real (the files of /work/shared/data/README.md).
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

from sor.synth.facts import measure, measure_days, read_tape, session_mask
from sor.synth.profiles import PROFILE_NAMES, PROFILES, CalibratedProfile, write

REAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real"
FILES = {
    "taq-2018": ("taq_2018-01-02_mbp1_trades.csv.gz", (14.5 * 3600, 21 * 3600)),
    "xnas-aapl": ("xnas_aapl_2024-10-21_mbp10_5000rows.csv.gz", None),
}
# Facts printed per profile: the reference venue's and the most active venues' first.
SKIP = ("quote_rows", "reference_venue", "rows", "trades", "duration_s", "days")


def table(prof: CalibratedProfile, real: dict[str, float], gen: dict[str, float]) -> list[str]:
    """Markdown rows: fact, real, generated, ratio, tolerance check."""
    rows = [
        f"| fact ({prof.name}) | real | generated | ratio | within tolerance |",
        "|---|---:|---:|---:|---|",
    ]
    for name, r in real.items():
        if name.endswith("_se") or name.startswith(SKIP) or name not in gen:
            continue
        if name.startswith(("spread_p90", "spread_one_tick")) and name not in prof.tolerances:
            continue
        g = gen[name]
        ratio = g / r if r else math.nan
        tol = prof.tolerances.get(name)
        check = ""
        if tol is not None:
            ok = abs(g - r) <= max(tol[0] * abs(r), tol[1])
            check = ("yes" if ok else "**no**") + f" (+-{max(tol[0] * abs(r), tol[1]):.3g})"
        rows.append(f"| {name} | {r:.4g} | {g:.4g} | {ratio:.2f} | {check} |")
    return rows


def main() -> int:
    """Print the calibration table of every calibrated profile."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--speed", action="store_true")
    args = ap.parse_args()
    if not REAL.is_dir():
        print(f"no real data at {REAL}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for name, (file, session) in FILES.items():
            prof = PROFILES[name]
            assert prof is not None
            tape = read_tape(REAL / file)
            if session:
                tape = tape.take(session_mask(tape.ts, *session))
            real = measure(tape)
            path = Path(tmp) / f"{name}.csv"
            rows = int(real["rows"]) * args.days
            write(path, profile=name, rows=rows, days=args.days, seed=args.seed)
            gen = measure_days(read_tape(path))
            print(f"\n{name}: real {file} ({int(real['rows'])} rows) vs generated "
                  f"{rows} rows over {args.days} days, seed {args.seed}\n")  # fmt: skip
            print("\n".join(table(prof, real, gen)))
        if args.speed:
            print("\n| profile | rows | days | seconds | rows/s |\n|---|---:|---:|---:|---:|")
            for name in PROFILE_NAMES:
                path = Path(tmp) / "speed.csv"
                write(path, profile=name, rows=1000, days=1, seed=0)  # compile outside the clock
                t0 = time.perf_counter()
                s = write(path, profile=name, rows=2_000_000, days=20, seed=0)
                sec = time.perf_counter() - t0
                print(f"| {name} | {s.rows} | 20 | {sec:.1f} | {s.rows / sec:,.0f} |")
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"\npeak resident memory of this process: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
