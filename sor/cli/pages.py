"""Large arrays on ordinary memory pages: NumPy's huge-page advice can stall in the kernel.

NumPy advises the kernel to back every array of 4 MiB or more with transparent huge pages
(`madvise(MADV_HUGEPAGE)`). Where the kernel then defragments on demand (Linux with
`transparent_hugepage/defrag` set to `madvise`, a common default), the first touch of a large
array waits for memory to be compacted, and after a load has churned through gigabytes that wait
is long: on a month of data (2 million rows, 11 venues) the snapshot arrays took 4.1-4.6 s to
build instead of 0.8-1.1 s, 3.0-3.4 s of it kernel time (`bench/huge_pages.py`). sor's arrays
are read in sequence, where ordinary pages cost nothing measurable, so its command line turns
the advice off, for itself and for the processes it starts (Ray's workers read the variable
when they import NumPy). A user who sets `NUMPY_MADVISE_HUGEPAGE` keeps their choice.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import Any

__all__ = ["HUGE_PAGE_ENV", "avoid_huge_page_stalls"]

#: NumPy's own switch, read when NumPy is imported: "0" turns the advice off.
HUGE_PAGE_ENV = "NUMPY_MADVISE_HUGEPAGE"


def avoid_huge_page_stalls() -> bool:
    """Turn NumPy's huge-page advice off in this process and the ones it starts, unless the
    user chose (`NUMPY_MADVISE_HUGEPAGE` set). Returns whether sor turned it off."""
    if HUGE_PAGE_ENV in os.environ:
        return False
    os.environ[HUGE_PAGE_ENV] = "0"  # for the processes started from here
    _numpy_setter()(False)  # for this one, which imported NumPy already
    return True


def _numpy_setter() -> Any:
    """NumPy's `_set_madvise_hugepage` (private, there since NumPy 1.20; moved in 2.0)."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        with contextlib.suppress(ImportError):
            return importlib.import_module(module)._set_madvise_hugepage
    raise ImportError("numpy has no _set_madvise_hugepage")
