"""`sor run`'s background start of Ray: whatever fails in it reaches the main thread."""

from __future__ import annotations

import sys

import pytest

from sor.cli.run import RayStart


def test_a_start_that_cannot_import_its_runtime_raises_in_the_main_thread(monkeypatch):
    monkeypatch.setitem(sys.modules, "sweep.runtime", None)  # `import` of it raises ImportError
    start = RayStart(None, None).start()
    start.wait_imported()
    with pytest.raises(ImportError):
        start.wait()  # raises, rather than wait forever for a thread that ended
    assert start.done
