"""One exception type per kind of bad input; the CLI turns each into one line and exit code 2."""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "SorError", "StreamError"]


class SorError(Exception):
    """Base class for errors caused by the user's input, not by a bug."""


class DataError(SorError):
    """Market data that cannot be used: names the file, line and field where it can.

    Args:
        message: what was wrong and what was expected.
        path: the file it came from.
        line: 1-based line number in the file (the header is line 1).
        field: the column name.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path, self.line, self.field = path, line, field
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        column = f"column {field!r}: " if field else ""
        super().__init__(f"{prefix}{column}{message}")


class ConfigError(SorError):
    """An invalid configuration value; the message names the key."""


class StreamError(SorError):
    """The Kafka stream is broken: gap, foreign schema, stream mismatch, truncated, unreachable."""
