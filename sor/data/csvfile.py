"""Reading a Databento CSV file strictly: file checks, line numbers, and cell parsing.

Every cell that cannot be used raises `DataError` naming the file, the line (counted in the file,
blank lines included, the header is line 1) and the column. `sor.data.loader` applies the
model's rules to what this module returns.
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from sor.errors import DataError
from sor.vocabulary import MAX_SIZE

__all__ = [
    "MAX_PRICE",
    "MAX_PUBLISHER_ID",
    "TS_MAX",
    "TS_MIN",
    "UNDEF_PRICE",
    "Cells",
    "compression_of",
    "data_lines",
    "header_of",
    "read_bytes",
    "read_columns",
]

UNDEF_PRICE = 9223372036854775807  #: Databento's raw "no price" (int64 max)
MAX_PRICE = UNDEF_PRICE / 1e9  #: dollars; the largest price a Databento file can hold
MAX_PUBLISHER_ID = 65535  #: publisher_id is an unsigned 16-bit number
TS_MIN = int(pd.Timestamp("2000-01-01", tz="UTC").value)  #: ns; earlier is taken for bad units
TS_MAX = int(pd.Timestamp("2100-01-01", tz="UTC").value)
# Databento's pretty timestamps: 2024-08-01T13:36:32.491911683Z (an offset is accepted too).
_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})"
_DIGITS = r"\d+"
_DECIMAL = r"\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?"


def compression_of(path: Path) -> str | None:
    """ "gzip" when the file starts with gzip's magic bytes, whatever its name; else None."""
    with open(path, "rb") as fh:
        return "gzip" if fh.read(2) == b"\x1f\x8b" else None


def read_bytes(path: Path, compression: str | None) -> bytes:
    """The file's content, decompressed."""
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if compression == "gzip" else raw
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"truncated or corrupt gzip file ({exc})", path=str(path)) from exc


def header_of(path: Path, content: bytes) -> list[str]:
    """Column names of the header line (a UTF-8 byte-order mark and spaces are dropped)."""
    first = content.split(b"\n", 1)[0]
    try:
        text = first.decode("utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        raise DataError(f"the header is not UTF-8 text ({exc})", path=str(path), line=1) from exc
    if not text:
        raise DataError("the file is empty: expected a Databento MBP CSV header", path=str(path))
    return [c.strip() for c in text.split(",")]


def data_lines(path: Path, content: bytes, n_fields: int) -> np.ndarray:
    """File line number of each data row, after checking every line has `n_fields` fields.

    Databento's CSV never quotes fields, so counting commas per line is exact (and fast on the
    raw bytes, where pandas would silently pad a short line). Empty lines (or a lone "\\r") are
    skipped, as pandas skips them; the numbers returned keep counting them.
    """
    data = np.frombuffer(content, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    if len(data) and data[-1] != ord("\n"):
        ends = np.append(ends, len(data))
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    last_char = data[np.maximum(ends - 1, 0)]
    blank = (lengths == 0) | ((lengths == 1) & (last_char == ord("\r")))
    commas = np.searchsorted(np.flatnonzero(data == ord(",")), ends)
    per_line = np.diff(np.concatenate(([0], commas)))
    bad = np.flatnonzero((per_line != n_fields - 1) & ~blank)
    if len(bad):
        raise DataError(
            f"malformed line: {int(per_line[bad[0]]) + 1} fields, expected {n_fields} as in the "
            "header (truncated or merged line?)",
            path=str(path),
            line=int(bad[0]) + 1,
        )
    return np.flatnonzero(~blank)[1:] + 1  # 1-based, without the header


def read_columns(path: Path, content: bytes, header: list[str], columns: list[str]) -> pd.DataFrame:
    """The named columns as text, every cell kept as written (no NA guessing)."""
    import io

    try:
        return pd.read_csv(
            io.BytesIO(content),
            header=0,
            names=header,
            usecols=columns,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8-sig",
            engine="c",
        )
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise DataError(
            f"malformed CSV ({exc})", path=str(path), line=int(match.group(1)) if match else None
        ) from exc


def _above_int64(text: pd.Series) -> np.ndarray:
    """Digit strings above int64 max, compared as text (float64 cannot tell them apart)."""
    digits = text.str.lstrip("0")
    length = digits.str.len()
    return ((length > 19) | ((length == 19) & (digits > str(UNDEF_PRICE)))).to_numpy(dtype=bool)


class Cells:
    """Parses the text columns of one file; errors name the file line of the offending cell.

    Args:
        path: the file, for messages.
        df: text columns, one row per data row.
        lines: int[len(df)], file line of each row.
    """

    def __init__(self, path: Path, df: pd.DataFrame, lines: np.ndarray) -> None:
        self.path, self.df, self.lines = path, df, lines

    def error(self, row: int, column: str, message: str) -> DataError:
        """A DataError for cell (row, column)."""
        return DataError(message, path=str(self.path), line=int(self.lines[row]), field=column)

    def _check(self, column: str, bad: np.ndarray, message: str) -> None:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            cell = self.df[column].iat[row]
            raise self.error(row, column, message.format(cell=repr(cell)))

    def _matches(self, column: str, pattern: str) -> np.ndarray:
        return self.df[column].str.fullmatch(pattern).to_numpy(dtype=bool)

    def timestamps(self, column: str, style: str | None = None) -> tuple[np.ndarray, str]:
        """Exact int64 ns from integer ns ("raw") or ISO 8601 ("pretty") cells.

        The style is that of most of the first 100 rows unless given (so one damaged first row
        is named as the odd one out, not every row after it); every cell must be of that style
        and lie in [2000, 2100).
        """
        text = self.df[column]
        if style is None:
            head = text.iloc[:100]  # `read_columns` reads every cell as text
            raw = int(head.str.fullmatch(_DIGITS).sum())
            style = "raw" if raw * 2 > len(head) else "pretty"
            if raw * 2 == len(head):  # a tie: the first row's
                style = "raw" if re.fullmatch(_DIGITS, cast(str, text.iat[0])) else "pretty"
        if style == "raw":
            self._check(
                column,
                ~self._matches(column, _DIGITS),
                "{cell} is not a timestamp: this file has integer ns timestamps",
            )
            self._check(column, _above_int64(text), "{cell} is too large for int64 ns")
            ns = pd.to_numeric(text).to_numpy(dtype=np.int64)
        else:
            self._check(
                column,
                ~self._matches(column, _ISO),
                "{cell} is not a timestamp: expected ISO 8601 such as "
                "2024-08-01T13:36:32.491911683Z (this file's style) or integer ns",
            )
            stamps = pd.to_datetime(text, format="ISO8601", utc=True)
            # pandas infers the unit from the digits shown (".000Z" gives microseconds): force ns
            ns = stamps.dt.as_unit("ns").astype("int64").to_numpy()
        self._check(
            column,
            (ns < TS_MIN) | (ns >= TS_MAX),
            "{cell} is outside the years 2000-2099: expected ns since the epoch "
            "(a file in µs or ms?)",
        )
        return ns, style

    def price_style(self, columns: list[str]) -> str | None:
        """The price style the cells of `columns` show: "fixed", "decimal", or None (all empty).

        Raw files write integers in units of 1e-9 dollars: the style is "fixed" when most of the
        first 1,000 non-empty cells of each column are integers of 7 digits or more (as decimals
        they would be prices of a million dollars).
        """
        # Most cells decide, so that one damaged cell cannot switch the style of the file.
        sample = pd.concat([self.df[c].head(1000) for c in columns])
        sample = sample[sample != ""]
        if not len(sample):
            return None
        fixed = sample.str.fullmatch(r"\d{7,}").to_numpy(dtype=bool)
        return "fixed" if fixed.mean() > 0.5 else "decimal"

    def prices(
        self, columns: list[str], style: str | None = None
    ) -> tuple[dict[str, np.ndarray], str]:
        """Dollars per share (float64, NaN = no quote) and the style, "decimal" or "fixed".

        Raw files write integers in units of 1e-9 dollars, with int64 max for "no price"; the
        style, unless given, is `price_style` of these columns ("decimal" where all are empty),
        and every cell must follow it. An empty or zero price is no quote (model.md §1).
        """
        if style is None:
            style = self.price_style(columns) or "decimal"
        out = {}
        for column in columns:
            text = self.df[column]
            empty = (text == "").to_numpy(dtype=bool)
            if style == "fixed":
                self._check(
                    column,
                    ~self._matches(column, _DIGITS) & ~empty,
                    "{cell} is not a price: this file has integer prices in units of 1e-9 dollars",
                )
                self._check(column, _above_int64(text), "{cell} is above int64 max")
                undefined = (text == str(UNDEF_PRICE)).to_numpy(dtype=bool) | empty
                values = pd.to_numeric(text.where(~undefined, "0")).to_numpy(dtype=np.float64)
                values = values / 1e9
                values[undefined] = np.nan
            else:
                self._check(
                    column,
                    ~self._matches(column, _DECIMAL) & ~empty,
                    "{cell} is not a price: expected a decimal number >= 0 or empty",
                )
                values = np.array(pd.to_numeric(text.where(~empty, "0")), dtype=np.float64)
                self._check(
                    column,
                    values > MAX_PRICE,
                    f"{{cell}} is above the largest price a Databento file holds ({MAX_PRICE:.2f})",
                )
            values[values == 0] = np.nan
            out[column] = values
        return out, style

    def integers(self, column: str, low: int, high: int, what: str) -> np.ndarray:
        """Whole numbers in [low, high] (int64); empty cells are an error."""
        self._check(column, ~self._matches(column, _DIGITS), f"{{cell}} is not {what}")
        text = self.df[column]
        out_of_range = f"{{cell}} is not {what} in [{low}, {high}]"
        try:
            # Digits only: an exact conversion, several times faster than pd.to_numeric.
            values: np.ndarray = text.astype(np.int64).to_numpy(dtype=np.int64, copy=True)
        except (OverflowError, ValueError):  # a cell beyond int64: find the first bad one
            approx = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
            self._check(column, (approx < low) | (approx > high) | _above_int64(text), out_of_range)
            raise
        self._check(column, (values < low) | (values > high), out_of_range)
        return values

    def sizes(self, column: str) -> np.ndarray:
        """Shares, whole numbers in [0, MAX_SIZE]."""
        return self.integers(column, 0, MAX_SIZE, "a whole number of shares")

    def sides(self, column: str) -> np.ndarray:
        """Aggressor side of trade rows as int8: 'B' (buy) +1, 'A' (sell) -1, 'N' or empty 0."""
        text = self.df[column]
        self._check(
            column,
            ~text.isin(("A", "B", "N", "")).to_numpy(dtype=bool),
            "{cell} is not a side: expected A (sell aggressor), B (buy aggressor), N or empty",
        )
        buys = (text == "B").to_numpy(dtype=np.int8)
        sells = (text == "A").to_numpy(dtype=np.int8)
        side: np.ndarray = buys - sells
        return side
