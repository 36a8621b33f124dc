"""Message authentication: every message of a stream is signed with HMAC-SHA256 under a key that
never travels over Kafka.

The signature is the HMAC-SHA256 of the record value (the whole message, header and columns of
an event message included) under the stream's key, in the record header `sor-hmac-sha256` (32
raw bytes). The consumer checks it before parsing the value, so a message from anyone without
the key is never read as data.

Where the key comes from:

- `sor run` produces and consumes in one process: a fresh random key for each run
  (`StreamKey.random`), held in memory only.
- `sor produce` with a consumer in another process: both read the key from the environment
  variable named by `stream.key_env` (default `SOR_STREAM_KEY`, `StreamKey.from_env`), at least
  `MIN_KEY_BYTES` bytes of UTF-8 (e.g. `openssl rand -hex 32`). The configuration holds only the
  variable's name, so the key never reaches the results JSON or the report.

A `StreamKey` never shows its bytes in `repr`, `str`, logs or error messages.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from sor.errors import StreamError

__all__ = ["HEADER", "MIN_KEY_BYTES", "StreamKey", "signature_problem"]

HEADER = "sor-hmac-sha256"  #: the record header holding a message's signature
MIN_KEY_BYTES = 16  #: shortest key accepted
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class StreamKey:
    """The secret key of a stream's signatures; its bytes are never shown.

    Args:
        secret: at least `MIN_KEY_BYTES` bytes.

    Raises:
        StreamError: too short, or not bytes.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_KEY_BYTES:
            size = len(secret) if isinstance(secret, bytes) else type(secret).__name__
            raise StreamError(
                f"a stream key must be at least {MIN_KEY_BYTES} bytes, but got {size} "
                "(e.g. `openssl rand -hex 32`)"
            )
        self._secret = secret

    @classmethod
    def random(cls) -> StreamKey:
        """A fresh 32-byte key from the operating system's random source."""
        return cls(secrets.token_bytes(32))

    @classmethod
    def from_env(cls, name: str, environ: dict[str, str] | None = None) -> StreamKey:
        """The key held by the environment variable `name` (its UTF-8 bytes).

        Args:
            name: the variable's name (`stream.key_env`).
            environ: where to look; None: `os.environ`.

        Raises:
            StreamError: the name is not a variable name, the variable is unset, empty or
                shorter than `MIN_KEY_BYTES` bytes; the message names the variable, never
                its value.
        """
        if not _ENV_NAME.fullmatch(name):
            raise StreamError(f"stream.key_env must be an environment variable name: {name!r}")
        value = (os.environ if environ is None else environ).get(name)
        if not value:
            raise StreamError(
                f"the stream key is read from the environment variable {name} "
                "(stream.key_env), which is not set: set it to the same secret of at least "
                f"{MIN_KEY_BYTES} bytes for the producer and the consumer "
                "(e.g. `export SOR_STREAM_KEY=$(openssl rand -hex 32)`)"
            )
        secret = value.encode()
        if len(secret) < MIN_KEY_BYTES:
            raise StreamError(
                f"the stream key in the environment variable {name} has {len(secret)} bytes; "
                f"at least {MIN_KEY_BYTES} are needed (e.g. `openssl rand -hex 32`)"
            )
        return cls(secret)

    def sign(self, value: bytes) -> bytes:
        """The HMAC-SHA256 of `value` (32 bytes)."""
        return hmac.digest(self._secret, value, "sha256")

    def headers(self, value: bytes) -> list[tuple[str, bytes]]:
        """The Kafka record headers that sign `value`."""
        return [(HEADER, hmac.digest(self._secret, value, "sha256"))]

    def __repr__(self) -> str:
        return "StreamKey(***)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a StreamKey is not pickled: it stays in the process that holds it")


def signature_problem(
    key: StreamKey, value: bytes | None, headers: Iterable[Sequence[Any]] | None
) -> str | None:
    """Why a record is not a message signed with `key`, or None if it is.

    Args:
        key: the stream's key.
        value: the record value.
        headers: the record headers, (name, bytes) pairs.
    """
    signatures = [h[1] for h in headers or () if h[0] == HEADER]
    if not signatures:
        return f"not signed (no {HEADER} header)"
    if len(signatures) > 1:
        return f"{len(signatures)} {HEADER} headers; a signed message has one"
    signature = signatures[0]
    if not isinstance(signature, bytes) or value is None:
        return "bad signature"
    if not hmac.compare_digest(signature, key.sign(value)):
        return "bad signature: not signed with this stream's key, or altered after signing"
    return None
