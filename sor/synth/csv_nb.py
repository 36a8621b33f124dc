"""Compiled writers of CSV fields into a byte buffer, shared by the generators' formatters.

Each takes the buffer (uint8), the position to write at and the value, and returns the position
after what it wrote. The caller makes sure the buffer has room.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["put_bytes", "put_clock", "put_fixed", "put_int", "put_uint"]

# "00" .. "99": two digits are written per division
_PAIRS = np.array([ord(c) for k in range(100) for c in f"{k:02d}"], dtype=np.uint8)
_POW10 = np.array([10**k for k in range(19)], dtype=np.int64)


@njit(cache=True)
def _ndigits(x: int) -> int:
    """Decimal digits of x >= 0 (small numbers, the common case, take few comparisons)."""
    k = 1
    while k < 19 and x >= _POW10[k]:
        k += 1
    return k


@njit(cache=True)
def put_uint(buf: np.ndarray, pos: int, x: int) -> int:
    """str(x) for an int64 x >= 0."""
    k = _ndigits(x)
    i = pos + k
    while x >= 100:
        r = x % 100
        x //= 100
        i -= 2
        buf[i] = _PAIRS[2 * r]
        buf[i + 1] = _PAIRS[2 * r + 1]
    if x >= 10:
        buf[i - 2] = _PAIRS[2 * x]
        buf[i - 1] = _PAIRS[2 * x + 1]
    else:
        buf[i - 1] = 48 + x
    return pos + k


@njit(cache=True)
def put_int(buf: np.ndarray, pos: int, x: int) -> int:
    """str(x) for an int64 x above int64's minimum."""
    if x < 0:
        buf[pos] = 45
        return put_uint(buf, pos + 1, -x)
    return put_uint(buf, pos, x)


@njit(cache=True)
def put_fixed(buf: np.ndarray, pos: int, x: int, width: int) -> int:
    """The last `width` decimal digits of x >= 0, zero-padded."""
    for i in range(width - 1, -1, -1):
        buf[pos + i] = 48 + x % 10
        x //= 10
    return pos + width


@njit(cache=True)
def put_bytes(buf: np.ndarray, pos: int, b: np.ndarray) -> int:
    """The bytes b (uint8)."""
    for i in range(len(b)):
        buf[pos + i] = b[i]
    return pos + len(b)


@njit(cache=True)
def put_clock(buf: np.ndarray, pos: int, ns: int) -> int:
    """Write the time of day `ns` (nanoseconds since midnight) as HH:MM:SS.nnnnnnnnnZ at `pos`;
    returns the position after it."""
    s = ns // 1_000_000_000
    pos = put_fixed(buf, pos, s // 3600, 2)
    buf[pos] = 58  # :
    pos = put_fixed(buf, pos + 1, (s // 60) % 60, 2)
    buf[pos] = 58
    pos = put_fixed(buf, pos + 1, s % 60, 2)
    buf[pos] = 46  # .
    pos = put_fixed(buf, pos + 1, ns % 1_000_000_000, 9)
    buf[pos] = 90  # Z
    return pos + 1
