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
from typing import Protocol, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sor.errors import DataError
from sor.vocabulary import DEFAULT_MAX_DATA_BYTES, MAX_SIZE

__all__ = [
    "DEFAULT_MAX_DATA_BYTES",
    "MAX_PRICE",
    "MAX_PUBLISHER_ID",
    "TS_MAX",
    "TS_MIN",
    "UNDEF_PRICE",
    "Cells",
    "Rows",
    "compression_of",
    "data_lines",
    "decimal_values",
    "header_of",
    "price_style_of",
    "read_bytes",
    "read_columns",
    "timestamp_style_of",
]

UNDEF_PRICE = 9223372036854775807  #: Databento's raw "no price" (int64 max)
MAX_PRICE = UNDEF_PRICE / 1e9  #: dollars; the largest price a Databento file can hold
MAX_PUBLISHER_ID = 65535  #: publisher_id is an unsigned 16-bit number
TS_MIN = int(pd.Timestamp("2000-01-01", tz="UTC").value)  #: ns; earlier is taken for bad units
TS_MAX = int(pd.Timestamp("2100-01-01", tz="UTC").value)
_CHUNK = 1 << 24  # bytes decompressed at a time while counting
# Databento's pretty timestamps: 2024-08-01T13:36:32.491911683Z (an offset is accepted too).
_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})"
_DIGITS = r"\d+"
_DECIMAL = r"\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?"


def compression_of(path: Path) -> str | None:
    """ "gzip" when the file starts with gzip's magic bytes, whatever its name; else None."""
    with open(path, "rb") as fh:
        return "gzip" if fh.read(2) == b"\x1f\x8b" else None


def _too_large(path: Path, max_bytes: int, what: str) -> DataError:
    return DataError(
        f"{what} more than {max_bytes:,} bytes, the largest file content read (max_bytes; "
        "data.max_bytes in the configuration): raise it to read a larger file, which takes about "
        "three times its size in memory",
        path=str(path),
    )


def read_bytes(
    path: Path, compression: str | None, max_bytes: int = DEFAULT_MAX_DATA_BYTES
) -> bytes | bytearray:
    """The file's content, decompressed, at most `max_bytes` long.

    A gzip file is inflated a chunk at a time and counted as it goes, so a small file that
    inflates to far more than `max_bytes` stops at the limit instead of filling the memory.

    Raises:
        DataError: the content is longer than `max_bytes`, or the gzip stream is corrupt.
    """
    try:
        if compression != "gzip":
            if path.stat().st_size > max_bytes:
                raise _too_large(path, max_bytes, "the file holds")
            return path.read_bytes()
        content = bytearray()
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                content += chunk
                if len(content) > max_bytes:
                    raise _too_large(path, max_bytes, "the gzip file inflates to")
        return content
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"truncated or corrupt gzip file ({exc})", path=str(path)) from exc


def header_of(path: Path, content: bytes | bytearray) -> list[str]:
    """Column names of the header line (a UTF-8 byte-order mark and spaces are dropped)."""
    end = content.find(b"\n")
    first = bytes(content[: end if end >= 0 else len(content)])
    try:
        text = first.decode("utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        raise DataError(f"the header is not UTF-8 text ({exc})", path=str(path), line=1) from exc
    if not text:
        raise DataError("the file is empty: expected a Databento MBP CSV header", path=str(path))
    return [c.strip() for c in text.split(",")]


def data_lines(path: Path, content: bytes | bytearray, n_fields: int) -> np.ndarray:
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


def read_columns(
    path: Path, content: bytes | bytearray, header: list[str], columns: list[str]
) -> pd.DataFrame:
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


def timestamp_style_of(head: pd.Series) -> str:
    """ "raw" (integer ns) or "pretty" (ISO 8601): the style of most of these first cells of a
    timestamp column (so one damaged first row is named as the odd one out, not every row after
    it); a tie goes to the first cell's style."""
    raw = int(head.str.fullmatch(_DIGITS).sum())
    style = "raw" if raw * 2 > len(head) else "pretty"
    if raw * 2 == len(head):
        style = "raw" if re.fullmatch(_DIGITS, cast(str, head.iat[0])) else "pretty"
    return style


def price_style_of(heads: list[pd.Series]) -> str | None:
    """The price style the first cells of some price columns show: "fixed", "decimal", or None
    (all empty).

    Raw files write integers in units of 1e-9 dollars: the style is "fixed" when most of the
    non-empty cells are integers of 7 digits or more (as decimals they would be prices of a
    million dollars). Most cells decide, so that one damaged cell cannot switch the style.
    """
    sample = pd.concat(heads)
    sample = sample[sample != ""]
    if not len(sample):
        return None
    fixed = sample.str.fullmatch(r"\d{7,}").to_numpy(dtype=bool)
    return "fixed" if fixed.mean() > 0.5 else "decimal"


def decimal_values(text: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """float64 dollars of cells that are decimal numbers or empty (NaN).

    Both readers convert with this one function (pyarrow's correctly rounded parser), so their
    prices agree to the bit. The cells must have been checked against the decimal syntax first.
    """
    empty = pc.equal(text, "")
    cells = pc.if_else(empty, pa.scalar(None, type=text.type), text)
    values: np.ndarray = pc.cast(cells, pa.float64()).to_numpy(zero_copy_only=False)
    return np.array(values, dtype=np.float64)  # writable, one block


class Rows(Protocol):
    """The rows of one file as the loader reads them (`sor.data.loader`): the precise reader
    `Cells` and the fast one (`sor.data.fastcsv.ArrowCells`) give the same answers."""

    def __len__(self) -> int: ...

    def has(self, column: str) -> bool:
        """Whether the column was read."""
        ...

    def error(self, row: int, column: str, message: str) -> DataError:
        """A DataError for cell (row, column)."""
        ...

    def select(self, keep: np.ndarray) -> Rows:
        """These rows (a boolean mask) alone."""
        ...

    def subset(self, keep: np.ndarray, columns: list[str]) -> Rows:
        """These rows (a boolean mask) of these columns."""
        ...

    def select_symbol(self, symbol: str | None) -> tuple[np.ndarray, list[str], str]:
        """Rows of the chosen symbol (a boolean mask), the file's symbols, and the symbol."""
        ...

    def repeated(self) -> np.ndarray:
        """bool[rows]: the rows equal in every column read to an earlier row."""
        ...

    def equals(self, column: str, value: str) -> np.ndarray:
        """bool[rows]: the cells of `column` that read `value`."""
        ...

    def timestamps(self, column: str, style: str | None = None) -> tuple[np.ndarray, str]:
        """Exact int64 ns and the style; see `Cells.timestamps`."""
        ...

    def price_style(self, columns: list[str]) -> str | None:
        """See `Cells.price_style`."""
        ...

    def prices(
        self, columns: list[str], style: str | None = None
    ) -> tuple[dict[str, np.ndarray], str]:
        """See `Cells.prices`."""
        ...

    def integers(self, column: str, low: int, high: int, what: str) -> np.ndarray:
        """See `Cells.integers`."""
        ...

    def sizes(self, column: str) -> np.ndarray:
        """See `Cells.sizes`."""
        ...

    def sides(self, column: str) -> np.ndarray:
        """See `Cells.sides`."""
        ...


class Cells:
    """The precise reader: parses the text columns of one file; errors name the file line of
    the offending cell.

    Args:
        path: the file, for messages.
        df: text columns, one row per data row.
        lines: int[len(df)], file line of each row.
    """

    def __init__(self, path: Path, df: pd.DataFrame, lines: np.ndarray) -> None:
        self.path, self.df, self.lines = path, df, lines

    def __len__(self) -> int:
        return len(self.df)

    def has(self, column: str) -> bool:
        """Whether the column was read."""
        return column in self.df.columns

    def error(self, row: int, column: str, message: str) -> DataError:
        """A DataError for cell (row, column)."""
        return DataError(message, path=str(self.path), line=int(self.lines[row]), field=column)

    def select(self, keep: np.ndarray) -> Cells:
        """These rows (a boolean mask) alone."""
        return Cells(self.path, self.df[keep].reset_index(drop=True), self.lines[keep])

    def subset(self, keep: np.ndarray, columns: list[str]) -> Cells:
        """These rows (a boolean mask) of these columns."""
        return Cells(self.path, self.df.loc[keep, columns].reset_index(drop=True), self.lines[keep])

    def select_symbol(self, symbol: str | None) -> tuple[np.ndarray, list[str], str]:
        """Rows of the chosen symbol (a boolean mask), the file's symbols, and the symbol.

        A row with no symbol goes with the file's one symbol.

        Raises:
            DataError: the file holds several symbols and none is chosen, or not the one chosen.
        """
        df, lines, path = self.df, self.lines, self.path
        key = next((c for c in ("symbol", "instrument_id") if c in df.columns), None)
        everything = np.ones(len(df), dtype=bool)
        if key is None:
            return everything, [], symbol or ""
        values = df[key].to_numpy(dtype=object)
        symbols, first_row, counts = np.unique(values, return_index=True, return_counts=True)
        named = symbols != ""
        symbols, first_row, counts = symbols[named], first_row[named], counts[named]
        names = [str(v) for v in symbols]
        if symbol is None:
            if len(names) > 1:
                where = ", ".join(
                    f"{n!r} ({c} rows from line {int(lines[r])})"
                    for n, r, c in zip(names, first_row, counts, strict=True)
                )
                rarest = int(first_row[np.argmin(counts)])
                raise DataError(
                    f"the file holds {len(names)} symbols: {where}; choose one (--symbol)",
                    path=str(path),
                    line=int(lines[rarest]),
                    field=key,
                )
            return everything, names, names[0] if names else ""
        if symbol not in names:
            raise DataError(
                f"unknown symbol {symbol!r}: the file holds {names}", path=str(path), field=key
            )
        return values == symbol, names, symbol

    def repeated(self) -> np.ndarray:
        """bool[rows]: the rows equal in every column read to an earlier row."""
        return self.df.duplicated().to_numpy(dtype=bool)

    def equals(self, column: str, value: str) -> np.ndarray:
        """bool[rows]: the cells of `column` that read `value`."""
        return (self.df[column] == value).to_numpy(dtype=bool)

    def _check(self, column: str, bad: np.ndarray, message: str) -> None:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            cell = self.df[column].iat[row]
            raise self.error(row, column, message.format(cell=repr(cell)))

    def _matches(self, column: str, pattern: str) -> np.ndarray:
        return self.df[column].str.fullmatch(pattern).to_numpy(dtype=bool)

    def timestamps(self, column: str, style: str | None = None) -> tuple[np.ndarray, str]:
        """Exact int64 ns from integer ns ("raw") or ISO 8601 ("pretty") cells.

        The style is that of most of the first 100 rows unless given (`timestamp_style_of`);
        every cell must be of that style, a real date and time, and lie in [2000, 2100).
        """
        text = self.df[column]
        if style is None:
            style = timestamp_style_of(text.iloc[:100])  # every cell is read as text
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
            try:
                stamps = pd.to_datetime(text, format="ISO8601", utc=True)
            except (ValueError, OverflowError):  # 2024-02-30, 25:61:61, year 9999: find it
                coerced = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
                self._check(
                    column,
                    coerced.isna().to_numpy(dtype=bool),
                    "{cell} is not a date and time that exists (month 01-12, a day of that "
                    "month, hours 00-23, minutes and seconds 00-59) in the years 2000-2099",
                )
                raise
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
        """The price style the first 1,000 cells of each of `columns` show: "fixed",
        "decimal", or None (all empty); see `price_style_of`."""
        return price_style_of([self.df[c].head(1000) for c in columns])

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
                values = decimal_values(pa.array(text, type=pa.large_string()))
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
