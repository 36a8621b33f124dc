"""NumPy's huge-page advice on and off: loading a month of data and building its snapshots.

Run as ``.venv/bin/python bench/huge_pages.py [--data FILE] [--repeat 3]``. Without ``--data`` it
generates a 2,000,000-row, 20-day file (``sor generate --profile taq-2018``) in a temporary
folder. Each measurement is a fresh process that loads the file (``load_updates``) and builds
the snapshots (``build_snapshots``) with ``NUMPY_MADVISE_HUGEPAGE`` set to 1 (NumPy's default
advice) or 0 (what the ``sor`` command sets, ``sor/cli/pages.py``), alternately, so that a busy
machine slows both alike. It prints wall, user and system seconds of each phase and the ratio
of the medians. The difference shows only where the kernel defragments on demand for advised
memory (``/sys/kernel/mm/transparent_hugepage/defrag`` at ``madvise``), which it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from sor.config import load_config
from sor.data.loader import load_updates
from sor.data.snapshots import build_snapshots

def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime, r.ru_stime

def spent(a, b):
    return {"wall": b[0] - a[0], "user": b[1] - a[1], "sys": b[2] - a[2]}

config = load_config(None, None)
a = usage()
updates, _ = load_updates(sys.argv[1], **config.load_options())
b = usage()
build_snapshots(updates)
c = usage()
print(json.dumps({"load": spent(a, b), "build": spent(b, c)}))
"""


def measure(path: Path, advice: str) -> dict:
    """One fresh process's load and build seconds with NUMPY_MADVISE_HUGEPAGE=`advice`."""
    env = {**os.environ, "NUMPY_MADVISE_HUGEPAGE": advice, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=env, check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    """Measure both settings alternately and print the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a Databento MBP CSV (default: generated)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    defrag = Path("/sys/kernel/mm/transparent_hugepage/defrag")
    print("transparent_hugepage/defrag:", defrag.read_text().strip() if defrag.exists() else "-")
    with tempfile.TemporaryDirectory() as folder:
        path = args.data
        if path is None:
            path = Path(folder) / "month.csv"
            subprocess.run(
                [sys.executable, "-m", "sor", "-q", "generate", str(path), "--rows", "2000000",
                 "--days", "20", "--seed", "0"], check=True, cwd=ROOT,
            )  # fmt: skip
        runs: dict[str, list[dict]] = {"1": [], "0": []}
        for _ in range(args.repeat):
            for advice in ("1", "0"):
                runs[advice].append(measure(path, advice))
    for phase in ("load", "build"):
        medians = {}
        for advice, label in (("1", "advice on (NumPy's default)"), ("0", "advice off (sor)")):
            rows = [r[phase] for r in runs[advice]]
            medians[advice] = statistics.median(r["wall"] for r in rows)
            walls = ", ".join(f"{r['wall']:.2f}" for r in rows)
            syss = ", ".join(f"{r['sys']:.2f}" for r in rows)
            print(f"{phase:5} {label:28} wall s {walls}   system s {syss}")
        print(f"{phase:5} median wall, on / off: {medians['1'] / medians['0']:.2f}x")


if __name__ == "__main__":
    main()
