"""The fast reader of a Databento CSV: columns parsed and checked at C speed by pyarrow and numpy.

It answers only for what it can vouch for. A file it cannot read the way the precise reader
(`sor.data.csvfile.Cells`) would, or any cell the precise reader would refuse, raises `Declined`,
and the loader reads the file again with the precise reader, which names the file, line and
column of the first bad cell. Where the fast reader answers, its arrays equal the precise
reader's bit for bit: every check below is at least as strict as the precise reader's regular
expression or range, and the numbers come from exact integer arithmetic or from the one decimal
conversion both readers share (`decimal_values`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sor.data.csvfile import (
    MAX_PRICE,
    MAX_PUBLISHER_ID,
    TS_MAX,
    TS_MIN,
    UNDEF_PRICE,
    decimal_values,
    price_style_of,
    timestamp_style_of,
)
from sor.errors import DataError
from sor.vocabulary import MAX_SIZE

__all__ = ["ArrowCells", "Declined", "read_table"]

_BOM = b"\xef\xbb\xbf"
_ZERO, _NINE, _DOT, _SLASH = ord("0"), ord("9"), ord("."), ord("/")
# Databento's pretty timestamp, 2024-08-01T13:36:32.491911683Z: 30 bytes, these at fixed places.
_ISO_WIDTH = 30
_ISO_LITERALS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":", 19: ".", 29: "Z"}
_ISO_FIELDS = {  # name: (first byte, last byte + 1)
    "year": (0, 4),
    "month": (5, 7),
    "day": (8, 10),
    "hour": (11, 13),
    "minute": (14, 16),
    "second": (17, 19),
    "ns": (20, 29),
}
_ISO_DIGITS = np.concatenate([np.arange(a, b) for a, b in _ISO_FIELDS.values()])
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_MAX_DIGITS = 19  # int64 max has 19 digits; longer cells go to the precise reader


class Declined(Exception):
    """The fast reader cannot vouch for this file or cell: read it with the precise reader."""


def read_table(content: bytes | bytearray, header: list[str], columns: list[str]) -> pa.Table:
    """The named columns of every data row as text, read by pyarrow's multithreaded parser.

    Accepts only files whose rows pyarrow splits exactly as the precise reader does: ASCII
    (after an optional UTF-8 byte-order mark), no quote, NUL or carriage return other than in
    a CRLF line end, distinct column names, every non-empty line with the header's field count.

    Raises:
        Declined: anything else, or a file without data rows.
    """
    if len(set(header)) != len(header):
        raise Declined("repeated column names")
    buffer = pa.py_buffer(content)
    if content.startswith(_BOM):
        buffer = buffer.slice(len(_BOM))
        if len(buffer) and int(np.frombuffer(buffer, dtype=np.uint8).max()) >= 0x80:
            raise Declined("not ASCII")
    elif not content.isascii():
        raise Declined("not ASCII")
    if b'"' in content or b"\x00" in content:
        raise Declined("quote or NUL byte")
    if b"\r" in content and content.count(b"\r") != content.count(b"\r\n"):
        raise Declined("carriage return inside a line")
    try:
        table = pacsv.read_csv(
            pa.BufferReader(buffer),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(
                quote_char=False,
                escape_char=False,
                newlines_in_values=False,
                ignore_empty_lines=True,
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types={c: pa.string() for c in columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                null_values=[],
                check_utf8=True,
            ),
        )
    except pa.ArrowException as exc:  # a row with another field count, among others
        raise Declined(str(exc)) from exc
    if table.num_rows == 0:
        raise Declined("no data rows")
    return table


def _cells(chunk: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64[n + 1] offsets from 0, uint8 bytes) of one chunk of a text column."""
    if chunk.null_count:
        raise Declined("null cell")
    _, offset_buffer, data_buffer = chunk.buffers()
    width = np.dtype(np.int64 if pa.types.is_large_string(chunk.type) else np.int32)
    offsets = np.frombuffer(
        offset_buffer, dtype=width, count=len(chunk) + 1, offset=chunk.offset * width.itemsize
    ).astype(np.int64)
    start, end = int(offsets[0]), int(offsets[-1])
    if end == start:
        return offsets - start, np.zeros(0, dtype=np.uint8)
    data = np.frombuffer(data_buffer, dtype=np.uint8, count=end - start, offset=start)
    return offsets - start, data


def _chunks(column: pa.ChunkedArray) -> list[tuple[np.ndarray, np.ndarray]]:
    return [_cells(chunk) for chunk in column.chunks if len(chunk)]


def _only_digits(data: np.ndarray) -> bool:
    return not len(data) or (int(data.min()) >= _ZERO and int(data.max()) <= _NINE)


def _digit_cells(column: pa.ChunkedArray, *, empty_allowed: bool) -> None:
    """Decline unless every cell is 1 to 19 ASCII digits (or, where allowed, empty)."""
    for offsets, data in _chunks(column):
        lengths = np.diff(offsets)
        if int(lengths.max()) > _MAX_DIGITS or (not empty_allowed and int(lengths.min()) < 1):
            raise Declined("not 1-19 digits")
        if not _only_digits(data):
            raise Declined("not digits")


def _to_int64(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """int64 of digit cells checked by `_digit_cells` (a cell above int64 max declines)."""
    try:
        values: np.ndarray = pc.cast(column, pa.int64()).to_numpy()
    except pa.ArrowInvalid as exc:
        raise Declined(str(exc)) from exc
    return np.array(values, dtype=np.int64)


def _decimal_cells(column: pa.ChunkedArray) -> None:
    """Decline unless every cell is empty or digits with at most one '.' and at least one
    digit (a subset of the precise reader's decimal syntax: no exponent)."""
    for offsets, data in _chunks(column):
        if not len(data):
            continue
        if int(data.max()) > _NINE or int(data.min()) < _DOT or bool((data == _SLASH).any()):
            raise Declined("not a plain decimal")
        n = len(offsets) - 1
        dot_at = np.flatnonzero(data == _DOT)
        dots = np.bincount(np.searchsorted(offsets, dot_at, side="right") - 1, minlength=n)
        if bool(((dots > 1) | ((dots == 1) & (np.diff(offsets) == 1))).any()):
            raise Declined("not a plain decimal")


def _iso_ns(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """int64 ns of cells in Databento's pretty form, 2024-08-01T13:36:32.491911683Z, that
    are real dates and times in the years 2000-2099; anything else declines."""
    n = len(offsets) - 1
    if len(data) != n * _ISO_WIDTH or bool((np.diff(offsets) != _ISO_WIDTH).any()):
        raise Declined("not 30-character ISO timestamps")
    cells = data.reshape(n, _ISO_WIDTH)
    for at, literal in _ISO_LITERALS.items():
        if bool((cells[:, at] != ord(literal)).any()):
            raise Declined("not an ISO timestamp")
    digits = cells[:, _ISO_DIGITS]
    if not _only_digits(digits):
        raise Declined("not an ISO timestamp")
    digits = digits - np.uint8(_ZERO)
    fields, at = {}, 0
    for name, (first, stop) in _ISO_FIELDS.items():
        value = digits[:, at].astype(np.int64)
        for k in range(at + 1, at + stop - first):
            value = value * 10 + digits[:, k]
        fields[name], at = value, at + stop - first
    year, month, day = fields["year"], fields["month"], fields["day"]
    if int(year.min()) < 2000 or int(year.max()) > 2099:
        raise Declined("outside the years 2000-2099")
    if int(month.min()) < 1 or int(month.max()) > 12:
        raise Declined("no such month")
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _DAYS_IN_MONTH[month] + (leap & (month == 2))
    if bool(((day < 1) | (day > days_in_month)).any()):
        raise Declined("no such day")
    hour, minute, second = fields["hour"], fields["minute"], fields["second"]
    if int(hour.max()) > 23 or int(minute.max()) > 59 or int(second.max()) > 59:
        raise Declined("no such time of day")
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    y = year - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    ns: np.ndarray = seconds * 1_000_000_000 + fields["ns"]
    return ns


def _head(column: pa.ChunkedArray, n: int) -> pd.Series:
    """The first `n` cells as a text Series, as the precise reader's columns are."""
    head: pd.Series = pd.Series(column.slice(0, n).to_pylist(), dtype=str)
    return head


class ArrowCells:
    """The fast reader over a pyarrow table of text columns (`read_table`); the methods of
    `sor.data.csvfile.Rows`, each answering exactly as `Cells` does or raising `Declined`.

    Args:
        table: text columns, one row per data row.
    """

    def __init__(self, table: pa.Table, cache: dict[tuple[object, ...], np.ndarray] | None = None):
        self.table = table
        # Columns parsed by `repeated`, by (kind, column, style or range), kept across `select`
        # and handed over (not copied) to the first call that asks for them again.
        self._cache = cache if cache is not None else {}

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def has(self, column: str) -> bool:
        """Whether the column was read."""
        return column in self.table.column_names

    def error(self, row: int, column: str, message: str) -> DataError:
        """The fast reader names no line: the precise reader will."""
        raise Declined(message)

    def select(self, keep: np.ndarray) -> ArrowCells:
        """These rows (a boolean mask) alone."""
        cache = {key: values[keep] for key, values in self._cache.items()}
        return ArrowCells(self.table.filter(pa.array(keep)), cache)

    def subset(self, keep: np.ndarray, columns: list[str]) -> ArrowCells:
        """These rows (a boolean mask) of these columns."""
        return ArrowCells(self.table.select(columns).filter(pa.array(keep)))

    def select_symbol(self, symbol: str | None) -> tuple[np.ndarray, list[str], str]:
        """As `Cells.select_symbol`; declines where that raises."""
        key = next((c for c in ("symbol", "instrument_id") if self.has(c)), None)
        everything = np.ones(len(self), dtype=bool)
        if key is None:
            return everything, [], symbol or ""
        column = self.table.column(key)
        names = sorted(str(v) for v in pc.unique(column).to_pylist() if v != "")
        if symbol is None:
            if len(names) > 1:
                raise Declined("several symbols")
            return everything, names, names[0] if names else ""
        if symbol not in names:
            raise Declined("unknown symbol")
        return self.equals(key, symbol), names, symbol

    def repeated(self) -> np.ndarray:
        """bool[rows]: the rows equal in every column read to an earlier row.

        Such rows share ts_event, publisher_id and sequence: only rows that share them with
        another row are compared in full.
        """
        ts, style = self.timestamps("ts_event")
        publisher = self.integers("publisher_id", 0, MAX_PUBLISHER_ID, "")
        self._cache[("ts", "ts_event", style)] = ts  # for the loader's own calls
        self._cache[("int", "publisher_id", 0, MAX_PUBLISHER_ID)] = publisher
        key = ts.view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        key ^= publisher.view(np.uint64)
        if self.has("sequence"):
            sequence = self.integers("sequence", 0, 2**63 - 1, "")
            self._cache[("int", "sequence", 0, 2**63 - 1)] = sequence
            key ^= sequence.view(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        out = np.zeros(len(self), dtype=bool)
        ordered = np.sort(key)
        if bool((ordered[1:] == ordered[:-1]).any()):
            candidates = pd.Series(key).duplicated(keep=False).to_numpy(dtype=bool)
            rows = np.flatnonzero(candidates)
            text = self.table.take(pa.array(rows)).to_pandas()
            out[rows[text.duplicated().to_numpy(dtype=bool)]] = True
        return out

    def equals(self, column: str, value: str) -> np.ndarray:
        """bool[rows]: the cells of `column` that read `value`."""
        same: np.ndarray = pc.equal(self.table.column(column), value).to_numpy()
        return np.array(same, dtype=bool)

    def timestamps(self, column: str, style: str | None = None) -> tuple[np.ndarray, str]:
        """As `Cells.timestamps`, for integer ns and Databento's 30-character ISO form."""
        text = self.table.column(column)
        if style is None:
            style = timestamp_style_of(_head(text, 100))
        key = ("ts", column, style)
        if key not in self._cache:
            if style == "raw":
                _digit_cells(text, empty_allowed=False)
                ns = _to_int64(text)
            else:
                parts = [_iso_ns(offsets, data) for offsets, data in _chunks(text)]
                ns = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            if int(ns.min()) < TS_MIN or int(ns.max()) >= TS_MAX:
                raise Declined("outside the years 2000-2099")
            self._cache[key] = ns
        out: np.ndarray = self._cache.pop(key)
        return out, style

    def price_style(self, columns: list[str]) -> str | None:
        """As `Cells.price_style`."""
        return price_style_of([_head(self.table.column(c), 1000) for c in columns])

    def prices(
        self, columns: list[str], style: str | None = None
    ) -> tuple[dict[str, np.ndarray], str]:
        """As `Cells.prices`."""
        if style is None:
            style = self.price_style(columns) or "decimal"
        out = {}
        for column in columns:
            text = self.table.column(column)
            if style == "fixed":
                _digit_cells(text, empty_allowed=True)
                empty = self.equals(column, "")
                ints = _to_int64(pc.if_else(pc.equal(text, ""), "0", text))
                undefined = (ints == UNDEF_PRICE) | empty
                values = ints.astype(np.float64) / 1e9
                values[undefined] = np.nan
            else:
                _decimal_cells(text)
                values = decimal_values(text)
                if bool((values > MAX_PRICE).any()):
                    raise Declined("above the largest price")
            values[values == 0] = np.nan
            out[column] = values
        return out, style

    def integers(self, column: str, low: int, high: int, what: str) -> np.ndarray:
        """As `Cells.integers`."""
        key = ("int", column, low, high)
        if key not in self._cache:
            text = self.table.column(column)
            _digit_cells(text, empty_allowed=False)
            values = _to_int64(text)
            if len(values) and (int(values.min()) < low or int(values.max()) > high):
                raise Declined(f"not in [{low}, {high}]")
            self._cache[key] = values
        out: np.ndarray = self._cache.pop(key)
        return out

    def sizes(self, column: str) -> np.ndarray:
        """As `Cells.sizes`."""
        return self.integers(column, 0, MAX_SIZE, "a whole number of shares")

    def sides(self, column: str) -> np.ndarray:
        """As `Cells.sides`: 'B' +1, 'A' -1, 'N' or empty 0."""
        parts = []
        for offsets, data in _chunks(self.table.column(column)):
            lengths = np.diff(offsets)
            if int(lengths.max()) > 1 or not np.isin(data, np.frombuffer(b"ABN", np.uint8)).all():
                raise Declined("not a side")
            letter = np.zeros(len(lengths), dtype=np.uint8)
            letter[lengths == 1] = data
            parts.append((letter == ord("B")).astype(np.int8) - (letter == ord("A")))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int8)
