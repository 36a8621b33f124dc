"""The `sor` command line: a thin shell over the core, `stream` and `sweep`."""

from sor.cli.main import main

__all__ = ["main"]
