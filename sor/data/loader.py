"""Databento MBP-1 / MBP-10 CSV loader (model.md §1-§2): file in, kept quote updates out.

Reads only the columns the router needs (the top of book, and every visible ask level of an
MBP-10 file), accepts Databento's "pretty" (ISO timestamps, decimal prices) and raw (integer ns,
integer 1e-9 prices) CSV styles, applies the evaluation window and the
first-row-per-(ts_event, publisher_id) rule, and reports what it read.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sor.data.csvfile import (
    DEFAULT_MAX_DATA_BYTES,
    MAX_PUBLISHER_ID,
    Cells,
    Rows,
    compression_of,
    data_lines,
    header_of,
    read_bytes,
    read_columns,
)
from sor.data.days import window_mask
from sor.data.dbn import dbn_to_csv, is_dbn
from sor.data.fastcsv import ArrowCells, Declined, read_table
from sor.data.snapshots import (
    QuoteUpdates,
    Snapshots,
    build_snapshots,
    distinct_venues,
    ladder_breaks,
)
from sor.errors import DataError
from sor.vocabulary import CLOCKS, GENERATED_SYMBOL_PREFIX

__all__ = [
    "OPTIONAL",
    "READERS",
    "REQUIRED",
    "DataSummary",
    "ask_levels",
    "load_snapshots",
    "load_updates",
    "ns_to_iso",
    "parse_time_bound",
    "require_asks",
]

READERS = ("auto", "precise", "fast")  #: `load_updates(reader=...)`
REQUIRED = ("ts_event", "publisher_id", "bid_px_00", "ask_px_00", "bid_sz_00", "ask_sz_00")
OPTIONAL = ("ts_recv", "action", "side", "price", "size", "sequence", "symbol", "instrument_id")
_DIGITS = re.compile(r"^\d+$")
_ASK_LEVEL = re.compile(r"ask_(px|sz)_(\d+)")


@dataclass
class DataSummary:
    """What the loader read, kept, skipped and why; goes into the results JSON."""

    path: str
    rows_read: int = 0
    rows_in_window: int = 0
    rows_kept: int = 0
    snapshot_events: int = 0
    trade_rows: int = 0
    traded_shares: int = 0
    symbols: list[str] = field(default_factory=list)
    symbol: str = ""
    generated: bool = False  #: the symbol says sor.synth made the file (SYNTH-...)
    venues: list[int] = field(default_factory=list)
    start: str = ""
    end: str = ""
    timestamp_style: str = ""
    price_style: str = ""
    clock: str = "ts_event"
    skipped: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)
    #: rows equal in every column read to an earlier row, kept because the file has no
    #: sequence column to tell a resent row from a second identical event
    repeated_rows_kept: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def ns_to_iso(ns: int) -> str:
    """ns since the epoch as ISO 8601 UTC with nanoseconds: 2024-08-01T13:36:32.491911683Z."""
    micros: str = pd.Timestamp(int(ns), unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return micros[:-1] + f"{int(ns) % 1000:03d}Z"


def parse_time_bound(value: str | int | None, reference_ns: int, *, name: str) -> int | None:
    """Parse a window bound: ns since the epoch, an ISO 8601 timestamp, or a UTC time of day.

    A time of day such as "13:36:32" or "13:36:32.5" is taken on the UTC date of `reference_ns`
    (the first row of the file).

    Raises:
        DataError: the value is none of those forms.
    """
    if value is None or value == "":
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    text = str(value).strip()
    if _DIGITS.match(text):
        return int(text)
    try:
        if re.match(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", text):
            hours, minutes, *rest = text.split(":")
            if int(hours) > 23 or int(minutes) > 59 or (rest and float(rest[0]) >= 60):
                raise DataError(
                    f"window {name} {value!r} is not a time of day: expected HH:MM[:SS[.fff]] "
                    "with hours 0-23, minutes and seconds 0-59"
                )
            day = pd.Timestamp(reference_ns, unit="ns", tz="UTC").normalize()
            return int((day + pd.Timedelta(text if text.count(":") == 2 else text + ":00")).value)
        stamp = pd.Timestamp(text)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return int(stamp.value)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"window {name} {value!r} is not a time: expected ns since the epoch, an ISO 8601 "
            "timestamp (2024-08-01T13:36:32Z) or a UTC time of day (13:36:32)"
        ) from exc


def _check_columns(path: Path, header: list[str], clock: str) -> None:
    missing = [c for c in REQUIRED if c not in header]
    if clock == "ts_recv" and "ts_recv" not in header:
        missing.append("ts_recv")
    if missing:
        hint = ""
        if "open" in header and "close" in header:
            hint = " (this looks like an OHLCV file)"
        elif "price" in header and "bid_px_00" not in header:
            hint = " (this looks like a trades file)"
        raise DataError(
            f"missing columns {missing}{hint}: expected a Databento MBP-1 or MBP-10 CSV export "
            f"with {list(REQUIRED)}",
            path=str(path),
        )


def ask_levels(path: str | Path, header: Sequence[str]) -> list[tuple[str, str]]:
    """The (price, size) columns of every ask level the header shows, level 0 first.

    An MBP-10 file has ask_px_00/ask_sz_00 to ask_px_09/ask_sz_09, an MBP-1 file level 00 only.

    Raises:
        DataError: a level's price or size column is missing below the deepest level shown.
    """
    shown = [int(m.group(2)) for c in header if (m := _ASK_LEVEL.fullmatch(c))]
    levels = [(f"ask_px_{k:02d}", f"ask_sz_{k:02d}") for k in range(max(shown, default=0) + 1)]
    missing = [c for level in levels for c in level if c not in header]
    if missing:
        raise DataError(
            f"missing columns {missing}: the header shows ask levels up to "
            f"{levels[-1][0]}, and every level above needs its price and size",
            path=str(path),
        )
    return levels


def _check_ladders(cells: Rows, px: np.ndarray, sz: np.ndarray) -> None:
    """Refuse the first row (in file order) whose ask ladder breaks the rules of
    `QuoteUpdates.ask_depth_px`, naming its line and the price column of the level at fault."""
    breaks = ladder_breaks(px, sz)
    bad_rows = np.flatnonzero(breaks.any(axis=1))
    if not len(bad_rows):
        return
    i = int(bad_rows[0])
    k = int(np.argmax(breaks[i]))
    shown = f"{int(sz[i, k])} shares at {px[i, k]}"
    if np.isnan(px[i, k - 1]):
        message = (
            f"ask level {k} shows {shown} after an empty level {k - 1}: an empty ask level "
            "(empty, zero or undefined price, or size 0) is followed only by empty levels"
        )
    else:
        message = (
            f"ask level {k} shows {shown}, below level {k - 1}'s price {px[i, k - 1]}: ask "
            "levels must be in non-decreasing price order"
        )
    raise cells.error(i, f"ask_px_{k:02d}", message)


@dataclass(frozen=True)
class _File:
    """A file's content and what its header says is to be read."""

    content: bytes | bytearray
    header: list[str]
    levels: list[tuple[str, str]]
    columns: list[str]


def _open(path: Path, clock: str, max_bytes: int) -> _File:
    content = read_bytes(path, compression_of(path), max_bytes)
    header = header_of(path, content)
    _check_columns(path, header, clock)
    levels = ask_levels(path, header)
    depth_columns = [c for level in levels[1:] for c in level]
    columns = [c for c in (*REQUIRED, *depth_columns, *OPTIONAL) if c in header]
    return _File(content, header, levels, columns)


def load_updates(
    path: str | Path,
    *,
    start: str | int | None = None,
    end: str | int | None = None,
    symbol: str | None = None,
    clock: str = "ts_event",
    crossed: str = "error",
    max_bytes: int = DEFAULT_MAX_DATA_BYTES,
    reader: str = "auto",
    timezone: str = "UTC",
) -> tuple[QuoteUpdates, DataSummary]:
    """Load a Databento MBP-1/MBP-10 CSV (plain or gzip) or DBN file into kept quote updates.

    The fast reader (`sor.data.fastcsv`) reads the file; where it declines (a bad cell, or a
    file it cannot vouch for) the precise reader (`sor.data.csvfile.Cells`) reads it again and
    names the file, line and column of the first bad cell. Both give the same arrays.

    Args:
        path: the CSV file.
        start: first ts_event of the window, inclusive: a time of day on every day, or an
            instant (see `parse_time_bound`); None: the file's.
        end: last ts_event of the window, inclusive, in the same forms; None: the file's.
        symbol: the instrument to keep where the file holds several.
        clock: "ts_event" (default, the task's) or "ts_recv" (model.md §2 rule 3).
        crossed: what to do with a row whose own bid is above its own ask: "error" or "skip".
        max_bytes: the largest content read, in bytes after decompression; a longer file is
            refused while it is being read.
        reader: "auto" (the fast reader, the precise one where it declines), "precise" (the
            precise reader alone: slower, the fast reader's reference) or "fast" (the fast
            reader alone, raising `sor.data.fastcsv.Declined` where it declines; for tests).
        timezone: the time zone of a time-of-day window (`sor.data.days.window_mask`).

    Returns:
        The kept updates and a summary of what was read.

    Raises:
        DataError: the file, a line or a field is unusable; the message says where and why.
    """
    path = Path(path)
    if clock not in CLOCKS:
        raise DataError(f"clock must be one of {CLOCKS}, but got {clock!r}")
    if crossed not in ("error", "skip"):
        raise DataError(f"crossed must be 'error' or 'skip', but got {crossed!r}")
    if reader not in READERS:
        raise DataError(f"reader must be one of {READERS}, but got {reader!r}")
    if path.is_dir():
        raise DataError("is a folder, not a data file", path=str(path))
    if not path.is_file():
        raise DataError("no such file", path=str(path))
    rules: dict[str, Any] = {
        "start": start,
        "end": end,
        "symbol": symbol,
        "clock": clock,
        "crossed": crossed,
        "timezone": timezone,
    }
    if is_dbn(path):
        csv = dbn_to_csv(path)
        try:
            updates, summary = load_updates(csv, **rules, max_bytes=max_bytes, reader=reader)
        except DataError as exc:  # name the user's DBN file, not the temporary export
            message = str(exc).replace(f"{csv}:", "", 1).strip()
            raise DataError(f"{message} (in its CSV export)", path=str(path)) from None
        finally:
            shutil.rmtree(csv.parent, ignore_errors=True)
        summary.path = str(path)
        return updates, summary
    file = _open(path, clock, max_bytes)
    notes: list[str] = []
    if reader != "precise":
        try:
            table = read_table(file.content, file.header, file.columns)
        except Declined:
            if reader == "fast":
                raise
            table = None
        if table is not None:
            levels = file.levels
            del file  # the text columns hold all that is needed: free the content
            try:
                loaded = _updates(path, ArrowCells(table), levels, notes, **rules)
            except Declined:
                if reader == "fast":
                    raise
                del table
                notes.clear()
                file = _open(path, clock, max_bytes)
            else:
                _warn(notes)
                return loaded
    lines = data_lines(path, file.content, len(file.header))
    df = read_columns(path, file.content, file.header, file.columns)
    levels = file.levels
    del file
    loaded = _updates(path, Cells(path, df, lines), levels, notes, **rules)
    _warn(notes)
    return loaded


def _warn(notes: list[str]) -> None:
    for note in notes:
        warnings.warn(note, stacklevel=3)


def _updates(
    path: Path,
    cells: Rows,
    levels: list[tuple[str, str]],
    notes: list[str],
    *,
    start: str | int | None,
    end: str | int | None,
    symbol: str | None,
    clock: str,
    crossed: str,
    timezone: str,
) -> tuple[QuoteUpdates, DataSummary]:
    """The model's rules (model.md §1-§2) over the rows of one file, read by either reader.

    Warnings go to `notes`, to be given once the read succeeds.
    """
    summary = DataSummary(path=str(path), rows_read=len(cells), clock=clock)
    if not len(cells):
        raise DataError("the file has a header but no rows", path=str(path))
    mine, summary.symbols, summary.symbol = cells.select_symbol(symbol)
    summary.generated = summary.symbol.startswith(GENERATED_SYMBOL_PREFIX)
    if not mine.all():
        summary.skipped["other_symbols"] = int((~mine).sum())
        cells = cells.select(mine)
    repeated = cells.repeated()
    if repeated.any():
        if cells.has("sequence"):
            # A row repeated to the letter, sequence number included, is one event sent twice.
            summary.skipped["duplicate_rows"] = int(repeated.sum())
            cells = cells.select(~repeated)
        else:
            # Without a sequence number a repeated row cannot be told from two identical
            # events (two equal trades in one nanosecond): kept, counted and reported.
            summary.repeated_rows_kept = int(repeated.sum())
            notes.append(
                f"{path}: {summary.repeated_rows_kept} rows repeat an earlier row in every "
                "column read, and without a sequence column a resent row cannot be told from a "
                "second identical event: they are kept (a repeated trade counts twice in the "
                "traded volume)"
            )

    ts_event, summary.timestamp_style = cells.timestamps("ts_event")
    ts_clock = ts_event if clock == "ts_event" else cells.timestamps("ts_recv")[0]
    publisher = cells.integers("publisher_id", 0, MAX_PUBLISHER_ID, "a publisher_id")
    quote_style = cells.price_style(["ask_px_00", "bid_px_00"])
    prices, summary.price_style = cells.prices(
        ["ask_px_00", "bid_px_00", *(px for px, _ in levels[1:])], quote_style
    )
    ask_sz = cells.sizes("ask_sz_00")
    bid_sz = cells.sizes("bid_sz_00")
    n_rows = len(cells)
    # The visible ask ladder, level 0 first (model.md §1).
    depth_px = np.empty((n_rows, len(levels)), dtype=np.float64)
    depth_sz = np.empty((n_rows, len(levels)), dtype=np.int64)
    depth_px[:, 0], depth_sz[:, 0] = prices["ask_px_00"], ask_sz
    for k, (px_column, sz_column) in enumerate(levels[1:], start=1):
        depth_px[:, k], depth_sz[:, k] = prices[px_column], cells.sizes(sz_column)
    sequence = (
        cells.integers("sequence", 0, 2**63 - 1, "a sequence number")
        if cells.has("sequence")
        else np.zeros(n_rows, dtype=np.int64)
    )

    # Window (model.md §2 rule 1), on ts_event whatever the clock; a time of day on every day.
    first_ns = int(ts_event.min())
    in_window = window_mask(ts_event, start, end, timezone=timezone)
    summary.rows_in_window = int(in_window.sum())
    if not in_window.any():
        raise DataError(
            f"no rows in the window [{start}, {end}]: the file's ts_event runs from "
            f"{ns_to_iso(first_ns)} to {ns_to_iso(int(ts_event.max()))}",
            path=str(path),
        )

    # A side, or an ask level, is quoted only with a positive price and a positive size
    # (model.md §1).
    empty_level = np.isnan(depth_px) | (depth_sz == 0)
    depth_px[empty_level], depth_sz[empty_level] = np.nan, 0
    _check_ladders(cells, depth_px, depth_sz)
    ask_px, ask_sz, no_ask = depth_px[:, 0], depth_sz[:, 0], empty_level[:, 0]
    bid_px = prices["bid_px_00"]
    no_bid = np.isnan(bid_px) | (bid_sz == 0)
    bid_px[no_bid], bid_sz[no_bid] = np.nan, 0
    is_crossed = in_window & ~no_ask & ~no_bid & (bid_px > ask_px)
    if is_crossed.any():
        if crossed == "error":
            i = int(np.flatnonzero(is_crossed)[0])
            raise cells.error(
                i,
                "bid_px_00",
                f"crossed quote: bid {bid_px[i]} above ask {ask_px[i]} at the same venue "
                "(set data.crossed: skip to drop such rows)",
            )
        summary.skipped["crossed_quote"] = int(is_crossed.sum())
        notes.append(f"{path}: skipped {int(is_crossed.sum())} crossed quotes")
    usable = in_window & ~is_crossed

    out_of_order = int((np.diff(ts_event) < 0).sum())
    if out_of_order:
        summary.repaired["rows_out_of_ts_event_order_sorted"] = out_of_order

    # Trade rows, counted before the first-row rule: volume for VWAP (model.md §5) and the
    # individual prints (venue, price, size, aggressor side).
    if cells.has("action") and cells.has("size"):
        is_trade = usable & cells.equals("action", "T")
        trade_size = cells.sizes("size")[is_trade]
    else:
        is_trade = np.zeros(n_rows, dtype=bool)
        trade_size = np.zeros(0, dtype=np.int64)
    summary.trade_rows, summary.traded_shares = int(is_trade.sum()), int(trade_size.sum())
    # Only the trade rows' price and side cells are used, so only they are checked.
    trades = cells.subset(is_trade, [c for c in ("price", "side") if cells.has(c)])
    if cells.has("price"):
        # One style per file: the quotes' decide; trade prices only where no quote has a price.
        style = quote_style or trades.price_style(["price"]) or "decimal"
        trade_px = trades.prices(["price"], style)[0]["price"]
        if quote_style is None and len(trade_px):
            summary.price_style = style
    else:
        trade_px = np.full(len(trade_size), np.nan)
    trade_side = (
        trades.sides("side") if cells.has("side") else np.zeros(len(trade_size), dtype=np.int8)
    )

    # First row per (ts_event, publisher_id) in (ts_event, sequence, file) order (model.md §2).
    idx = np.flatnonzero(usable)
    usable_ts = ts_event[idx]
    if _strictly_increasing(usable_ts):  # one row per ts_event: already in that order
        order = idx
    else:
        order = idx[np.lexsort((idx, sequence[idx], publisher[idx], usable_ts))]
    key_ts, key_pub = ts_event[order], publisher[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (key_ts[1:] != key_ts[:-1]) | (key_pub[1:] != key_pub[:-1])
    kept = order[first]
    summary.skipped["not_first_row_of_event_at_venue"] = int(len(order) - len(kept))
    if not _strictly_increasing(ts_clock[kept]):
        kept = kept[np.lexsort((kept, sequence[kept], ts_clock[kept]))]
    summary.rows_kept = len(kept)

    # Trades in clock order; ties as the first-row rule orders rows: by venue, then sequence,
    # then file order (so the order does not depend on how the file lays out simultaneous rows).
    trade_clock = ts_clock[is_trade]
    by_time = (
        np.arange(len(trade_size))
        if _strictly_increasing(trade_clock)
        else np.lexsort(
            (np.arange(len(trade_size)), sequence[is_trade], publisher[is_trade], trade_clock)
        )
    )
    updates = QuoteUpdates(
        ts=ts_clock[kept].astype(np.int64),
        venue=publisher[kept].astype(np.int32),
        ask_px=ask_px[kept],
        ask_sz=ask_sz[kept],
        bid_px=bid_px[kept],
        bid_sz=bid_sz[kept],
        ask_depth_px=depth_px[kept],
        ask_depth_sz=depth_sz[kept],
        trade_ts=trade_clock[by_time].astype(np.int64),
        trade_size=trade_size[by_time],
        trade_venue=publisher[is_trade][by_time].astype(np.int32),
        trade_px=trade_px[by_time],
        trade_side=trade_side[by_time],
        symbol=summary.symbol,
    )
    # Distinct times of the sorted ts (np.unique's hash path is slow on large int64 arrays).
    summary.snapshot_events = int(np.count_nonzero(np.diff(updates.ts))) + 1
    summary.venues = distinct_venues(updates.venue).tolist()
    summary.start, summary.end = ns_to_iso(int(updates.ts[0])), ns_to_iso(int(updates.ts[-1]))
    return updates, summary


def _strictly_increasing(values: np.ndarray) -> bool:
    """Whether every value is above the one before: a sort keyed first on them keeps the order."""
    return bool((values[1:] > values[:-1]).all())


def load_snapshots(path: str | Path, **options: Any) -> tuple[Snapshots, DataSummary]:
    """Load a CSV straight into snapshot arrays; options as for `load_updates`."""
    updates, summary = load_updates(path, **options)
    return build_snapshots(updates), summary


def require_asks(ask_px: np.ndarray, path: str | Path) -> None:
    """Refuse data in which no row shows an ask: a buy order would have nothing to fill against
    (and every price in the results would be undefined).

    Args:
        ask_px: the updates' or snapshots' ask prices (NaN: no ask).
        path: the file the data came from, for the message.
    """
    if not np.isfinite(ask_px).any():
        raise DataError(
            "no row in the window shows an ask (ask_px_00 / ask_sz_00 empty, zero or undefined "
            "on every kept row): a buy order has nothing to fill against",
            path=str(path),
        )
