"""Databento DBN input (`.dbn`, `.dbn.zst`) through the official `databento` package.

The file is exported to Databento's own raw CSV (integer ns, integer 1e-9 prices) and read by the
CSV loader, so a DBN file gives exactly the snapshots of its CSV export. Optional: install with
`pip install 'sor[dbn]'`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sor.errors import DataError

__all__ = ["DBN_MAGIC", "SCHEMAS", "ZSTD_MAGIC", "dbn_to_csv", "is_dbn"]

DBN_MAGIC = b"DBN"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SCHEMAS = ("mbp-1", "mbp-10")


def is_dbn(path: Path) -> bool:
    """Whether `path` is a DBN file: by its name (.dbn, .dbn.zst) or its first bytes."""
    if path.name.endswith((".dbn", ".dbn.zst")):
        return True
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head[:3] == DBN_MAGIC or head == ZSTD_MAGIC


def dbn_to_csv(path: Path, directory: str | Path | None = None) -> Path:
    """Export an MBP-1 or MBP-10 DBN file to a raw-style Databento CSV; returns the CSV's path.

    Raises:
        DataError: `databento` is not installed, the file is not DBN, or its schema is not MBP.
    """
    try:
        import databento
    except ImportError as exc:
        raise DataError(
            "reading DBN files needs the optional `databento` package: pip install 'sor[dbn]'",
            path=str(path),
        ) from exc
    try:
        store = databento.DBNStore.from_file(path)
        schema = str(store.schema)
    except Exception as exc:  # the package raises several types for a file it cannot decode
        raise DataError(f"not a readable DBN file ({exc})", path=str(path)) from exc
    if schema not in SCHEMAS:
        raise DataError(f"DBN schema {schema!r}: expected one of {SCHEMAS}", path=str(path))
    out = Path(tempfile.mkdtemp(prefix="sor-dbn-", dir=directory)) / (path.name + ".csv")
    store.to_csv(out, pretty_px=False, pretty_ts=False, map_symbols=True)
    return out
