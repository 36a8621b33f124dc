"""`python -m sor` and the `sor` console script (`run`)."""

import os
import signal
import sys
from types import FrameType


def _stopped_while_starting(signum: int, frame: FrameType | None) -> None:
    # Nothing has started yet: the one line, and the exit code of the signal.
    what = b"interrupted" if signum == signal.SIGINT else b"terminated"
    os.write(2, b"sor: " + what + b"\n")
    os._exit(128 + signum)


def run() -> int:
    """The `sor` command: Ctrl-C or SIGTERM while its modules are still being imported (before
    `sor.cli.main.main` sets up its own handlers) is one line and exit 130 (143), as later."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stopped_while_starting)
    from sor.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
