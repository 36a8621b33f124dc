"""Databento MBP-1 / MBP-10 CSV loader (model.md §1-§2): file in, kept quote updates out.

Reads only the columns the router needs, accepts Databento's "pretty" (ISO timestamps, decimal
prices) and raw (integer ns, integer 1e-9 prices) CSV styles, applies the evaluation window and
the first-row-per-(ts_event, publisher_id) rule, and reports what it read.
"""

from __future__ import annotations

import gzip
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sor.errors import DataError
from sor.snapshots import QuoteUpdates, Snapshots, build_snapshots

UNDEF_PRICE = 9223372036854775807  #: Databento's raw "no price" (int64 max)
MAX_SIZE = 10**9  #: shares; larger sizes are taken for corrupt data
REQUIRED = ("ts_event", "publisher_id", "bid_px_00", "ask_px_00", "bid_sz_00", "ask_sz_00")
OPTIONAL = ("ts_recv", "action", "size", "sequence", "symbol", "instrument_id")
CLOCKS = ("ts_event", "ts_recv")
_DIGITS = re.compile(r"^\d+$")


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
    venues: list[int] = field(default_factory=list)
    start: str = ""
    end: str = ""
    timestamp_style: str = ""
    price_style: str = ""
    clock: str = "ts_event"
    skipped: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)


def ns_to_iso(ns: int) -> str:
    """ns since the epoch as ISO 8601 UTC with nanoseconds: 2024-08-01T13:36:32.491911683Z."""
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-1] + (
        f"{int(ns) % 1000:03d}Z"
    )


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


def _compression(path: Path) -> str | None:
    with open(path, "rb") as fh:
        return "gzip" if fh.read(2) == b"\x1f\x8b" else None


def _read_header(path: Path, compression: str | None) -> list[str]:
    opener = gzip.open if compression == "gzip" else open
    try:
        with opener(path, "rt", newline="") as fh:  # type: ignore[operator]
            header = fh.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the file: {exc}", path=str(path)) from exc
    if not header.strip():
        raise DataError("the file is empty: expected a Databento MBP CSV header", path=str(path))
    return [c.strip() for c in header.strip().split(",")]


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


def _check_field_counts(path: Path, compression: str | None, n_fields: int) -> None:
    """Every line must have as many fields as the header: catches truncated and merged lines.

    Databento's CSV never quotes fields, so counting commas per line is exact (and fast on the
    raw bytes, where pandas would silently pad a short line).
    """
    raw = gzip.decompress(path.read_bytes()) if compression == "gzip" else path.read_bytes()
    data = np.frombuffer(raw, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    if len(data) and data[-1] != ord("\n"):
        ends = np.append(ends, len(data))
    commas_before_end = np.searchsorted(np.flatnonzero(data == ord(",")), ends)
    per_line = np.diff(np.concatenate(([0], commas_before_end)))
    blank = np.diff(np.concatenate(([-1], ends))) <= 2  # empty or "\r" only
    bad = np.flatnonzero((per_line != n_fields - 1) & ~blank)
    if len(bad):
        line = int(bad[0]) + 1
        raise DataError(
            f"malformed line: {int(per_line[bad[0]]) + 1} fields, expected {n_fields} as in the "
            "header (truncated or merged line?)",
            path=str(path),
            line=line,
        )


def _read_table(path: Path, columns: list[str], compression: str | None) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path,
            usecols=columns,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            compression=compression,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise DataError(
            f"malformed CSV ({exc})", path=str(path), line=int(match.group(1)) if match else None
        ) from exc
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"cannot read the file: {exc}", path=str(path)) from exc


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _parse_timestamps(path: Path, column: pd.Series, name: str) -> tuple[np.ndarray, str]:
    text = column.to_numpy(dtype=object)
    if len(text) and all(_DIGITS.match(v) for v in text[: min(len(text), 1000)]):
        digits = column.str.fullmatch(r"\d+").to_numpy(dtype=bool)
        if not digits.all():
            i = _first_bad(~digits)
            raise DataError(
                f"{text[i]!r} is not a timestamp: this file has integer ns timestamps",
                path=str(path),
                line=i + 2,
                field=name,
            )
        return column.astype(np.int64).to_numpy(), "raw"
    parsed = pd.to_datetime(column, format="ISO8601", utc=True, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = _first_bad(bad)
        raise DataError(
            f"{text[i]!r} is not a timestamp: expected ISO 8601 such as "
            "2024-08-01T13:36:32.491911683Z or integer ns",
            path=str(path),
            line=i + 2,
            field=name,
        )
    return parsed.astype("int64").to_numpy(), "pretty"


def _parse_numbers(path: Path, column: pd.Series, name: str) -> np.ndarray:
    """Parse a numeric column; empty cells become NaN, anything else unparsable is an error."""
    text = column.to_numpy(dtype=object)
    values = np.array(pd.to_numeric(column.replace("", np.nan), errors="coerce"), dtype=np.float64)
    empty = column.to_numpy(dtype=object) == ""
    bad = (np.isnan(values) & ~empty) | np.isinf(values)
    if bad.any():
        i = _first_bad(bad)
        raise DataError(
            f"{text[i]!r} is not a finite number", path=str(path), line=i + 2, field=name
        )
    return values


def _price_style(columns: dict[str, pd.Series]) -> str:
    """Raw prices are integers in units of 1e-9 dollars: no decimal point, and large."""
    for column in columns.values():
        text = column[column != ""]
        if len(text) == 0:
            continue
        if text.str.contains(r"[.eE]", regex=True).any():
            return "decimal"
        if text.astype(np.float64).abs().max() >= 1e6:
            return "fixed"
    return "decimal"


def _parse_prices(path: Path, df: pd.DataFrame, names: list[str]) -> tuple[dict, str]:
    style = _price_style({n: df[n] for n in names})
    prices = {}
    for name in names:
        values = _parse_numbers(path, df[name], name)
        if style == "fixed":
            values[values >= float(UNDEF_PRICE)] = np.nan
            values = values / 1e9
        negative = values < 0
        if negative.any():
            i = _first_bad(negative)
            raise DataError(
                f"negative price {df[name].iat[i]!r}: expected a price >= 0",
                path=str(path),
                line=i + 2,
                field=name,
            )
        values[values == 0] = np.nan  # a zero price is no quote (model.md §1)
        prices[name] = values
    return prices, style


def _parse_sizes(path: Path, df: pd.DataFrame, name: str) -> np.ndarray:
    values = _parse_numbers(path, df[name], name)
    values = np.nan_to_num(values, nan=0.0)
    bad = (values < 0) | (values > MAX_SIZE) | (values != np.floor(values))
    if bad.any():
        i = _first_bad(bad)
        raise DataError(
            f"size {df[name].iat[i]!r} is not a whole number of shares in [0, {MAX_SIZE}]",
            path=str(path),
            line=i + 2,
            field=name,
        )
    return values.astype(np.int64)


def _select_symbol(
    path: Path, df: pd.DataFrame, symbol: str | None
) -> tuple[pd.DataFrame, list, str]:
    key = "symbol" if "symbol" in df.columns else "instrument_id" if "instrument_id" in df else None
    if key is None:
        return df, [], symbol or ""
    symbols = sorted(set(df[key].unique()) - {""})
    if symbol is None:
        if len(symbols) > 1:
            raise DataError(
                f"the file holds {len(symbols)} symbols {symbols}: choose one (--symbol)",
                path=str(path),
                field=key,
            )
        return df, symbols, symbols[0] if symbols else ""
    if symbol not in symbols:
        raise DataError(
            f"unknown symbol {symbol!r}: the file holds {symbols}", path=str(path), field=key
        )
    return df[df[key].to_numpy() == symbol], symbols, symbol


def load_updates(
    path: str | Path,
    *,
    start: str | int | None = None,
    end: str | int | None = None,
    symbol: str | None = None,
    clock: str = "ts_event",
    crossed: str = "error",
) -> tuple[QuoteUpdates, DataSummary]:
    """Load a Databento MBP-1/MBP-10 CSV (plain or gzip) into kept quote updates.

    Args:
        path: the CSV file.
        start: first ts_event of the window, inclusive (see `parse_time_bound`); None: the file's.
        end: last ts_event of the window, inclusive; None: the file's.
        symbol: the instrument to keep where the file holds several.
        clock: "ts_event" (default, the task's) or "ts_recv" (model.md §2 rule 3).
        crossed: what to do with a row whose own bid is above its own ask: "error" or "skip".

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
    if not path.is_file():
        raise DataError("no such file", path=str(path))
    compression = _compression(path)
    header = _read_header(path, compression)
    _check_columns(path, header, clock)
    columns = [c for c in (*REQUIRED, *OPTIONAL) if c in header]
    _check_field_counts(path, compression, len(header))
    df = _read_table(path, columns, compression)
    summary = DataSummary(path=str(path), rows_read=len(df), clock=clock)
    if df.empty:
        raise DataError("the file has a header but no rows", path=str(path))
    df, summary.symbols, summary.symbol = _select_symbol(path, df, symbol)
    line = df.index.to_numpy() + 2  # file line of each row, for messages after filtering

    ts_event, summary.timestamp_style = _parse_timestamps(path, df["ts_event"], "ts_event")
    ts_clock = (
        ts_event if clock == "ts_event" else _parse_timestamps(path, df["ts_recv"], "ts_recv")[0]
    )
    publisher = _parse_numbers(path, df["publisher_id"], "publisher_id")
    if np.isnan(publisher).any():
        i = _first_bad(np.isnan(publisher))
        raise DataError(
            "empty publisher_id", path=str(path), line=int(line[i]), field="publisher_id"
        )
    prices, summary.price_style = _parse_prices(path, df, ["ask_px_00", "bid_px_00"])
    ask_sz = _parse_sizes(path, df, "ask_sz_00")
    bid_sz = _parse_sizes(path, df, "bid_sz_00")
    sequence = (
        _parse_numbers(path, df["sequence"], "sequence") if "sequence" in df else np.zeros(len(df))
    )
    sequence = np.nan_to_num(sequence, nan=0.0)

    # Window (model.md §2 rule 1), on ts_event whatever the clock.
    first_ns = int(ts_event.min())
    lo = parse_time_bound(start, first_ns, name="start")
    hi = parse_time_bound(end, first_ns, name="end")
    if lo is not None and hi is not None and lo > hi:
        raise DataError(f"window start {start!r} is after end {end!r}")
    in_window = np.ones(len(df), dtype=bool)
    if lo is not None:
        in_window &= ts_event >= lo
    if hi is not None:
        in_window &= ts_event <= hi
    summary.rows_in_window = int(in_window.sum())
    if not in_window.any():
        raise DataError(
            f"no rows in the window [{start}, {end}]: the file's ts_event runs from "
            f"{ns_to_iso(first_ns)} to {ns_to_iso(int(ts_event.max()))}",
            path=str(path),
        )

    # A side is quoted only with a positive price and a positive size (model.md §1).
    ask_px, bid_px = prices["ask_px_00"], prices["bid_px_00"]
    no_ask = np.isnan(ask_px) | (ask_sz == 0)
    no_bid = np.isnan(bid_px) | (bid_sz == 0)
    ask_px[no_ask], ask_sz[no_ask] = np.nan, 0
    bid_px[no_bid], bid_sz[no_bid] = np.nan, 0
    is_crossed = in_window & ~no_ask & ~no_bid & (bid_px > ask_px)
    if is_crossed.any():
        if crossed == "error":
            i = _first_bad(is_crossed)
            raise DataError(
                f"crossed quote: bid {bid_px[i]} above ask {ask_px[i]} at the same venue "
                "(set data.crossed: skip to drop such rows)",
                path=str(path),
                line=int(line[i]),
                field="bid_px_00",
            )
        summary.skipped["crossed_quote"] = int(is_crossed.sum())
        warnings.warn(f"{path}: skipped {int(is_crossed.sum())} crossed quotes", stacklevel=2)
    usable = in_window & ~is_crossed

    out_of_order = int((np.diff(ts_event) < 0).sum())
    if out_of_order:
        summary.repaired["rows_out_of_ts_event_order_sorted"] = out_of_order

    # Trade volume for VWAP, counted before the first-row rule (model.md §5).
    if "action" in df and "size" in df:
        is_trade = usable & (df["action"].to_numpy(dtype=object) == "T")
        trade_size = _parse_sizes(path, df, "size")[is_trade]
    else:
        is_trade = np.zeros(len(df), dtype=bool)
        trade_size = np.zeros(0, dtype=np.int64)
    summary.trade_rows, summary.traded_shares = int(is_trade.sum()), int(trade_size.sum())

    # First row per (ts_event, publisher_id) in (ts_event, sequence, file) order (model.md §2).
    idx = np.flatnonzero(usable)
    order = idx[np.lexsort((idx, sequence[idx], publisher[idx], ts_event[idx]))]
    key_ts, key_pub = ts_event[order], publisher[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (key_ts[1:] != key_ts[:-1]) | (key_pub[1:] != key_pub[:-1])
    kept = order[first]
    summary.skipped["not_first_row_of_event_at_venue"] = int(len(order) - len(kept))
    kept = kept[np.lexsort((kept, sequence[kept], ts_clock[kept]))]
    summary.rows_kept = len(kept)

    updates = QuoteUpdates(
        ts=ts_clock[kept].astype(np.int64),
        venue=publisher[kept].astype(np.int32),
        ask_px=ask_px[kept],
        ask_sz=ask_sz[kept],
        bid_px=bid_px[kept],
        bid_sz=bid_sz[kept],
        trade_ts=np.sort(ts_clock[is_trade].astype(np.int64)),
        trade_size=trade_size[np.argsort(ts_clock[is_trade], kind="stable")],
        symbol=summary.symbol,
    )
    summary.snapshot_events = int(len(np.unique(updates.ts)))
    summary.venues = sorted(int(v) for v in np.unique(updates.venue))
    summary.start, summary.end = ns_to_iso(int(updates.ts[0])), ns_to_iso(int(updates.ts[-1]))
    return updates, summary


def load_snapshots(path: str | Path, **options) -> tuple[Snapshots, DataSummary]:
    """Load a CSV straight into snapshot arrays; options as for `load_updates`."""
    updates, summary = load_updates(path, **options)
    return build_snapshots(updates), summary
