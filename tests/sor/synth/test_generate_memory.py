"""`sor generate` writes in constant memory: the peak does not grow with the days, nor with the
rows of a calibrated day; a legacy day holds its columns, never the file's text.

Measured with tracemalloc, which sees every NumPy array and Python object the writers allocate.
"""

from __future__ import annotations

import threading
import tracemalloc
from pathlib import Path

import pytest

from sor.synth.profiles import write

MB = 1 << 20


def _peak(path, **kw) -> int:
    write(path, **kw)  # compiled kernels and caches loaded outside the measurement
    tracemalloc.start()
    try:
        write(path, **kw)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("profile", "rows_per_day", "schema"),
    [("taq-2018", 140_000, None), ("xnas-aapl", 70_000, None), ("legacy", 30_000, "mbp-1")],
)
def test_peak_memory_does_not_grow_with_the_days(tmp_path, profile, rows_per_day, schema):
    path = tmp_path / "out.csv"
    one = _peak(path, profile=profile, rows=rows_per_day, days=1, schema=schema, seed=1)
    four = _peak(path, profile=profile, rows=4 * rows_per_day, days=4, schema=schema, seed=1)
    assert four <= 1.05 * one + MB


def test_calibrated_peak_memory_does_not_grow_with_the_rows_of_a_day(tmp_path):
    path = tmp_path / "out.csv"
    small = _peak(path, profile="taq-2018", rows=140_000, seed=2)
    large = _peak(path, profile="taq-2018", rows=560_000, seed=2)
    assert large <= 1.05 * small + MB


def test_a_legacy_day_holds_its_columns_not_its_text(tmp_path):
    """About 1.4 KB a row of a day (the pools of draws, the plan, the rows' columns and books);
    building the day's text in Python took about 4 KB a row."""
    rows = 40_000
    peak = _peak(tmp_path / "out.csv", profile="legacy", rows=rows, seed=3)
    assert peak / rows < 2_000


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("profile", ["taq-2018", "legacy"])
def test_a_failing_disk_raises_and_leaves_no_writer_thread(profile):
    """A write that fails in the writer thread (here: no space left) raises OSError in the
    caller, which `sor generate` reports as "cannot write" with exit code 2."""
    before = threading.active_count()
    with pytest.raises(OSError, match="No space left"):
        write(Path("/dev/full"), profile=profile, rows=200_000, days=2, seed=1)
    assert threading.active_count() == before
