"""Writing generated files: the output stream and a writer thread that overlaps the disk.

`open_sink` opens the output (gzip when the name ends with ".gz", with no time or name in the
gzip header, so the bytes are a function of the arguments alone); `Writer` writes byte buffers
in a second thread. File writes and zlib release the GIL and the compiled kernels run without
it, so the next chunk is simulated and formatted while the previous one goes to disk.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["Writer", "open_sink"]


@contextmanager
def open_sink(path: Path, compresslevel: int) -> Iterator[IO[bytes] | gzip.GzipFile]:
    """`path` opened for writing bytes; gzip at `compresslevel` when it ends with ".gz"."""
    with open(path, "wb") as raw:
        if path.name.endswith(".gz"):
            # mtime=0 and no file name keep the bytes a function of the arguments alone.
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=compresslevel
            ) as gz:
                yield gz
        else:
            yield raw


class Writer:
    """Writes byte buffers to `out` in a second thread, one at a time, in order.

    `submit` returns once the buffer submitted before is written: the caller may then refill
    every buffer but the one just submitted. Use as a context manager: leaving it waits for
    the last write, also after an error.
    """

    def __init__(self, out: IO[bytes] | gzip.GzipFile) -> None:
        self._out = out
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sor-generate-write")
        self._pending: Future[int] | None = None

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, data: memoryview) -> None:
        """Queue `data` for writing after waiting for the previous write (its error raises)."""
        self.wait()
        self._pending = self._pool.submit(self._out.write, data)

    def wait(self) -> None:
        """Wait for the write in flight, if any; an error of it raises here."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Wait for the last write and stop the thread."""
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
