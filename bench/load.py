"""Loading a month-sized CSV: `sor.data.loader.load_snapshots` against a plain `pandas.read_csv`.

Run as ``.venv/bin/python bench/load.py`` (``--quick`` for 200,000 rows). It generates (once,
then reuses from the temporary folder) a Databento MBP-1 CSV of 1,000,000 rows over 12 venues
with `sor.synth.generate`, about 270 MB, and measures, each in a fresh process:

1. a plain ``pandas.read_csv(path)`` of the file (every column, types guessed);
2. ``load_snapshots(path)``: the fast reader, the precise one only where it declines;
3. ``load_snapshots(path, reader="precise")``: the precise reader alone, which is how every
   file was read before the fast reader (the reference it is tested against).

Wall-clock seconds come from one process that alternates 1 and 2 (best of the repeats, so both
see the same load of the machine), then runs 3 once; the ratio is to the plain read. Peak
memory comes from a fresh process per reading: the peak resident memory (VmHWM, reset after the
imports) above the resident memory then, also as a multiple of the snapshot arrays plus the
file's content. The targets: at most 4x the
plain read's time, at most 3x (snapshot arrays + content) in memory. The machine is shared, so
compare the ratios of one run. The two readers' snapshot arrays are compared and the comparison
printed. No assertions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sor.synth.generate import DEFAULT_VENUES, generate  # noqa: E402

# Seven more venues on the TAQ exchanges' publisher_ids (shared/data/README.md), quoting like
# the default five in turn: 12 venues in all.
EXTRA_PUBLISHERS = (8, 7, 3, 4, 6, 11, 12)

TIMING = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd
from sor.data.loader import load_snapshots

path, repeats = {path!r}, {repeats}

def timed(read):
    start = time.perf_counter()
    result = read()
    return time.perf_counter() - start, result

best = {{"read_csv": float("inf"), "auto": float("inf")}}
for _ in range(repeats):  # interleaved, so that both see the same load of the machine
    best["read_csv"] = min(best["read_csv"], timed(lambda: pd.read_csv(path))[0])
    seconds, (snaps, _) = timed(lambda: load_snapshots(path))
    best["auto"] = min(best["auto"], seconds)
    del snaps
best["precise"], (precise, _) = timed(lambda: load_snapshots(path, reader="precise"))
print(json.dumps(best))
"""

MEMORY = r"""
import json, sys
sys.path.insert(0, {root!r})
import numpy as np, pandas as pd
from sor.data.loader import load_snapshots

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))

path, what = {path!r}, {what!r}
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # VmHWM from here on (Linux >= 4.0)
    f.write("5")
out = {{}}
if what == "read_csv":
    pd.read_csv(path)
else:
    snaps = load_snapshots(path, reader=what)[0]
    out["snapshot_bytes"], out["snapshots"] = snaps.nbytes, len(snaps)
    out["checksum"] = [
        float(np.nansum(snaps.ask_px)), int(snaps.ask_sz.sum()), int(snaps.ts.sum() % 2**61),
        float(np.nansum(snaps.trade_px)), int(snaps.trade_volume.sum()),
    ]
out.update(peak_bytes=status("VmHWM") - base, baseline_bytes=base)
print(json.dumps(out))
"""


def venues(n: int) -> tuple:
    """`n` venue profiles: the default five, then copies of them on other publisher_ids."""
    extra = [
        dataclasses.replace(DEFAULT_VENUES[i % len(DEFAULT_VENUES)], publisher_id=p)
        for i, p in enumerate(EXTRA_PUBLISHERS)
    ]
    return (*DEFAULT_VENUES, *extra)[:n]


def data_file(rows: int, n_venues: int, schema: str) -> Path:
    """The generated file, made once per (rows, venues, schema) in the temporary folder."""
    folder = Path(tempfile.gettempdir()) / "sor-bench-load"
    folder.mkdir(exist_ok=True)
    path = folder / f"{schema}_{rows}_rows_{n_venues}_venues.csv"
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        partial = path.with_suffix(".part.csv")
        generate(partial, n_events=rows, schema=schema, venues=venues(n_venues), seed=1)
        partial.rename(path)
    return path


def child(code: str) -> dict:
    """Run `code` in a fresh process; the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    """Generate or reuse the file, measure the three readings and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--venues", type=int, default=12)
    parser.add_argument("--schema", default="mbp-1", choices=("mbp-1", "mbp-10"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200,000 rows, one repeat")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = 200_000, 1
    path = data_file(args.rows, args.venues, args.schema)
    content = path.stat().st_size
    print(f"{path.name}: {content / 1e6:,.0f} MB, {args.rows:,} rows, {args.venues} venues")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    seconds = child(TIMING.format(root=str(ROOT), path=str(path), repeats=args.repeats))
    memory = {
        what: child(MEMORY.format(root=str(ROOT), path=str(path), what=what))
        for what in ("read_csv", "auto", "precise")
    }
    arrays = memory["auto"]["snapshot_bytes"]
    print(f"snapshot arrays: {arrays / 1e6:,.0f} MB ({memory['auto']['snapshots']:,} snapshots)")
    print(f"imports: {memory['auto']['baseline_bytes'] / 1e6:,.0f} MB resident before reading")
    print(f"{'reading':<34}{'seconds':>9}{'x read_csv':>12}{'peak MB':>10}{'x (arrays+file)':>17}")
    for name, what in (
        ("pandas.read_csv (plain)", "read_csv"),
        ("load_snapshots (fast reader)", "auto"),
        ("load_snapshots (precise reader)", "precise"),
    ):
        peak = memory[what]["peak_bytes"]
        print(
            f"{name:<34}{seconds[what]:>9.2f}{seconds[what] / seconds['read_csv']:>12.2f}"
            f"{peak / 1e6:>10,.0f}{peak / (arrays + content):>17.2f}"
        )
    same = memory["auto"]["checksum"] == memory["precise"]["checksum"]
    print(f"fast and precise snapshot checksums {'equal' if same else 'DIFFER'}")
    print(f"precise / fast: {seconds['precise'] / seconds['auto']:.1f}x")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
