"""The wire format of a snapshot stream (docs/stream.md has it byte by byte).

A stream is a start message, event messages carrying the distinct snapshot times (model.md §2)
in order, one or more per message, and an end-of-stream message. Sequence numbers count the
start message (0), each snapshot event (1..N) and the end message (N + 1); an event message
carries the sequence number of its first event and its event count, so that a reader checks
order, gaps and duplicates per event whatever the batching. Every message carries the schema
version and the stream's id, so that a reader can refuse what it does not understand and tell
streams apart on a shared topic. Every message is signed (`stream.signing`): the signature is a
record header, outside the value.

The start and end messages are JSON objects:

    {"schema":5,"kind":"start","stream":"<32 hex>","seq":0,"symbol":"AAPL","clock":"ts_event",
     "levels":10,"events":2,"source":{...}}
    {"schema":5,"kind":"end","stream":"<32 hex>","seq":3,"events":2}

An event message is columnar: a 48-byte header (`BATCH_MAGIC`, the schema version, the stream
id as 16 raw bytes, the first event's seq, the numbers of events, venue updates and trades, and
K, the ask levels beyond level 0 each update carries), then its fields as little-endian typed
arrays, one after the other, in the order of `EventColumns` (8-byte columns first, so that every
column is aligned and read without a copy by `numpy.frombuffer`). Each event is one distinct
clock value: its time, the venue updates at it (`n_updates`, at least 1) and the trade rows
`sor.data.snapshots.build_snapshots` counts there (`n_trades`); the updates and trades of all
the message's events follow in event order.

Values are those of the CSV loader's `QuoteUpdates` (model.md §1): prices in dollars, NaN where
a side or level shows nothing (and then its size is 0) or a trade row gives no price; sizes in
whole shares, at most `MAX_SIZE`; publisher ids are unsigned 16-bit numbers, as in the data
(`MAX_PUBLISHER_ID`). With L ask levels (`levels` of the start message) each update carries the
full ladder: level 0 is `ask_px`/`ask_sz`, levels 1..L-1 the rows of `depth_px`/`depth_sz`
(K = L - 1 columns), NaN and 0 at an empty level.

Topics may hold anything, so decoding is defensive: never pickle, the size limit checked before
parsing, the message's length equal to what its header declares, and every value checked over
the whole message with numpy as the CSV loader checks it (`decode`); a `StreamError` names the
event by its seq, the field and the value.
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import orjson

from sor.data.csvfile import MAX_PRICE, MAX_PUBLISHER_ID, TS_MAX, TS_MIN
from sor.errors import StreamError
from sor.vocabulary import CLOCKS, MAX_SIZE

__all__ = [
    "BATCH_HEADER_BYTES",
    "BATCH_MAGIC",
    "DEFAULT_MAX_BYTES",
    "MAX_LEVELS",
    "MAX_PRICE",
    "MAX_PUBLISHER_ID",
    "MAX_SYMBOL_CHARS",
    "PARTITION",
    "SCHEMA_VERSION",
    "Batch",
    "BatchPacker",
    "End",
    "EventColumns",
    "EventRow",
    "Message",
    "Start",
    "TradeRow",
    "UpdateRow",
    "batch_bytes",
    "columns_of_rows",
    "cut",
    "decode",
    "encode_batch",
    "encode_end",
    "encode_event",
    "encode_events",
    "encode_start",
    "event_bounds",
    "event_rows",
    "first_difference",
    "new_stream_id",
    "update_bytes",
]

PARTITION = 0  #: every message of a stream goes to this partition: one partition keeps the order

SCHEMA_VERSION = 5  #: bumped on any change a reader of the previous version would misread
DEFAULT_MAX_BYTES = 1_000_000  #: bytes; a larger message is refused
MAX_SYMBOL_CHARS = 64
MAX_LEVELS = 100  #: most ask levels a stream may declare (Databento's MBP-10 has 10)
BATCH_MAGIC = b"SORB"  #: the first bytes of an event message (a JSON message starts with "{")

_INT64_MAX = 2**63 - 1
_STREAM_ID = re.compile(r"[0-9a-f]{32}")
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

#: magic, schema, reserved (0), stream id (16 bytes), first seq, events, updates, trades,
#: K (ask levels beyond level 0 per update), reserved (0).
_HEADER = struct.Struct("<4sHH16sqIIIHH")
BATCH_HEADER_BYTES = _HEADER.size  #: 48
assert BATCH_HEADER_BYTES % 8 == 0  # keeps the 8-byte columns aligned
assert np.iinfo(np.uint16).max == MAX_PUBLISHER_ID  # a "<u2" column holds any publisher id
assert np.iinfo(np.uint32).max > MAX_SIZE  # a "<u4" column holds any size

#: One venue update as rows give it: [publisher_id, ask_px|None, ask_sz, bid_px|None, bid_sz],
#: and with more than one ask level [..., [px_1, ..., px_k], [sz_1, ..., sz_k]], the levels
#: shown beyond level 0 (`stream.events.split_events`, `event_rows`).
UpdateRow = Sequence[Any]
#: One trade counted at a snapshot, [publisher_id, price|None, size, side].
TradeRow = Sequence[Any]


class EventRow(NamedTuple):
    """One snapshot event as rows: the slow, readable form of one event of `EventColumns`."""

    ts: int  #: ns since the epoch
    updates: list[UpdateRow]  #: one `UpdateRow` per venue update, in order
    trades: list[TradeRow]  #: one `TradeRow` per trade counted at this snapshot, in order

    @property
    def trade_volume(self) -> int:
        """Shares traded at this snapshot."""
        return sum(trade[2] for trade in self.trades)


class EventColumns(NamedTuple):
    """Consecutive snapshot events as columns, in the wire's order and dtypes.

    Never compared with `==` (arrays): see `first_difference`.
    """

    ts: np.ndarray  #: "<i8"[n], snapshot time, ns since the epoch, strictly increasing
    ask_px: np.ndarray  #: "<f8"[U], best ask of each update, dollars; NaN: no ask
    bid_px: np.ndarray  #: "<f8"[U], best bid, dollars; NaN: no bid
    depth_px: np.ndarray  #: "<f8"[U, K], ask levels 1..K, dollars; NaN at an empty level
    trade_px: np.ndarray  #: "<f8"[M], trade price, dollars; NaN where the data gives none
    n_updates: np.ndarray  #: "<u4"[n], updates of each event, at least 1
    n_trades: np.ndarray  #: "<u4"[n], trades counted at each event
    ask_sz: np.ndarray  #: "<u4"[U], shares at the best ask; 0: no ask
    bid_sz: np.ndarray  #: "<u4"[U], shares at the best bid; 0: no bid
    depth_sz: np.ndarray  #: "<u4"[U, K], shares at ask levels 1..K; 0 at an empty level
    trade_sz: np.ndarray  #: "<u4"[M], shares traded
    venue: np.ndarray  #: "<u2"[U], publisher_id of each update
    trade_venue: np.ndarray  #: "<u2"[M], publisher_id of each trade
    trade_side: np.ndarray  #: "i1"[M], +1 buy aggressor, -1 sell aggressor, 0 unknown

    @property
    def levels(self) -> int:
        """Ask levels L of the updates: 1 + K."""
        return 1 + int(self.depth_px.shape[1])


#: The dtype of each field of `EventColumns`, and what its length counts: "event", "update",
#: "level" (updates times K) or "trade".
_LAYOUT: tuple[tuple[str, str, str], ...] = (
    ("ts", "<i8", "event"),
    ("ask_px", "<f8", "update"),
    ("bid_px", "<f8", "update"),
    ("depth_px", "<f8", "level"),
    ("trade_px", "<f8", "trade"),
    ("n_updates", "<u4", "event"),
    ("n_trades", "<u4", "event"),
    ("ask_sz", "<u4", "update"),
    ("bid_sz", "<u4", "update"),
    ("depth_sz", "<u4", "level"),
    ("trade_sz", "<u4", "trade"),
    ("venue", "<u2", "update"),
    ("trade_venue", "<u2", "trade"),
    ("trade_side", "i1", "trade"),
)
assert tuple(name for name, _, _ in _LAYOUT) == EventColumns._fields
_DTYPES = tuple(np.dtype(dtype) for _, dtype, _ in _LAYOUT)
_KINDS = tuple(kind for _, _, kind in _LAYOUT)
# Bytes per event, per update and level, per trade.
_EVENT_BYTES = sum(d.itemsize for d, k in zip(_DTYPES, _KINDS, strict=True) if k == "event")
_UPDATE_BYTES = sum(d.itemsize for d, k in zip(_DTYPES, _KINDS, strict=True) if k == "update")
_LEVEL_BYTES = sum(d.itemsize for d, k in zip(_DTYPES, _KINDS, strict=True) if k == "level")
_TRADE_BYTES = sum(d.itemsize for d, k in zip(_DTYPES, _KINDS, strict=True) if k == "trade")


def update_bytes(levels: int) -> tuple[int, int, int]:
    """(bytes per event, per update, per trade) of an event message with `levels` ask levels;
    the header adds `BATCH_HEADER_BYTES`."""
    return _EVENT_BYTES, _UPDATE_BYTES + (levels - 1) * _LEVEL_BYTES, _TRADE_BYTES


def batch_bytes(events: int, updates: int, trades: int, levels: int) -> int:
    """The length in bytes of an event message of these counts."""
    per_event, per_update, per_trade = update_bytes(levels)
    return BATCH_HEADER_BYTES + events * per_event + updates * per_update + trades * per_trade


class Start(NamedTuple):
    """First message of a stream."""

    stream_id: str
    seq: int
    symbol: str
    clock: str  #: "ts_event" or "ts_recv": which time `ts` is
    source: dict[str, Any]  #: where the data came from (file name, window, counts)
    levels: int = 1  #: ask levels L of the data: each update carries levels 1..L-1 if L > 1
    events: int = 0  #: snapshot events N of the stream: seq 1..N, then the end at N + 1


class Batch:
    """One event message: consecutive snapshot events, the first at `seq`.

    Attributes:
        stream_id: the stream's id.
        seq: the first event's sequence number; event i has seq `seq + i`.
        events: the events as columns (views of the message's bytes where decoded).
    """

    __slots__ = ("events", "seq", "stream_id")

    def __init__(self, stream_id: str, seq: int, events: EventColumns) -> None:
        self.stream_id = stream_id
        self.seq = seq
        self.events = events

    @property
    def count(self) -> int:
        """Number of events."""
        return len(self.events.ts)

    def __repr__(self) -> str:
        return f"Batch(stream={self.stream_id}, seq={self.seq}, count={self.count})"


class End(NamedTuple):
    """End-of-stream marker."""

    stream_id: str
    seq: int
    events: int  #: number of snapshot events in the stream


Message = Start | Batch | End


def new_stream_id() -> str:
    """A fresh stream id: 32 lowercase hex digits (uuid4)."""
    return uuid.uuid4().hex


def _check_stream_id(stream_id: str) -> None:
    if not isinstance(stream_id, str) or not _STREAM_ID.fullmatch(stream_id):
        raise StreamError(f"stream id must be 32 lowercase hex digits, but got {stream_id!r}")


def _limit(data: bytes, max_bytes: int) -> bytes:
    if len(data) > max_bytes:
        raise StreamError(f"message of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    return data


def encode_start(
    stream_id: str,
    *,
    symbol: str,
    clock: str,
    events: int,
    source: dict[str, Any] | None = None,
    levels: int = 1,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Encode the start message (seq 0).

    Args:
        stream_id: 32 lowercase hex digits, see `new_stream_id`.
        symbol: the instrument.
        clock: "ts_event" or "ts_recv", the clock the event times are on.
        events: the number of snapshot events the stream carries.
        source: JSON-ready description of the data (file name, window, counts).
        levels: ask levels L of the data (`QuoteUpdates.n_levels`), 1 to `MAX_LEVELS`; every
            update of the stream carries levels 1..L-1.
        max_bytes: refuse a message larger than this many bytes.

    Raises:
        StreamError: a bad stream id, clock, number of levels or of events, or the message is
            too large.
    """
    _check_stream_id(stream_id)
    if not isinstance(symbol, str) or len(symbol) > MAX_SYMBOL_CHARS:
        raise StreamError(f"symbol must be at most {MAX_SYMBOL_CHARS} characters: {symbol!r}")
    if clock not in CLOCKS:
        raise StreamError(f"clock must be one of {CLOCKS}, but got {clock!r}")
    if type(levels) is not int or not 1 <= levels <= MAX_LEVELS:
        raise StreamError(f"levels must be an integer in [1, {MAX_LEVELS}], but got {levels!r}")
    if type(events) is not int or not 0 <= events < _INT64_MAX:
        raise StreamError(f"events must be a whole number of events, but got {events!r}")
    body = {
        "schema": SCHEMA_VERSION,
        "kind": "start",
        "stream": stream_id,
        "seq": 0,
        "symbol": symbol,
        "clock": clock,
        "levels": levels,
        "events": events,
        "source": source or {},
    }
    return _limit(_ENCODE(body).encode(), max_bytes)


def encode_end(stream_id: str, seq: int, events: int) -> bytes:
    """Encode the end-of-stream message.

    Args:
        stream_id: the stream's id.
        seq: this message's sequence number (events + 1).
        events: number of snapshot events sent.
    """
    _check_stream_id(stream_id)
    body = {
        "schema": SCHEMA_VERSION,
        "kind": "end",
        "stream": stream_id,
        "seq": seq,
        "events": events,
    }
    return _ENCODE(body).encode()


class BatchPacker:
    """Event messages of one stream, cut from the columns of all its events.

    The producer's hot path: each message is the header and, per column, one slice of a
    memoryview of the whole column, joined; no numpy call per message. `pack(seq, a, b)` is
    byte for byte `encode_batch` of events a..b-1 (`encode_batch` packs with it).

    Args:
        stream_id: the stream's id, already checked by `encode_start`.
        events: the events as `EventColumns` (any dtype that converts exactly).

    Raises:
        StreamError: the columns do not fit together (their lengths, the ask levels).
    """

    def __init__(self, stream_id: str, events: EventColumns) -> None:
        n, n_updates, n_trades = len(events.ts), len(events.venue), len(events.trade_venue)
        depth = events.depth_px.shape[1] if np.ndim(events.depth_px) == 2 else -1
        lengths = {"event": n, "update": n_updates, "level": n_updates * depth, "trade": n_trades}
        self._views: list[memoryview] = []
        self._widths: list[int] = []  # bytes per event, update or trade of each column
        for value, dtype, kind in zip(events, _DTYPES, _KINDS, strict=True):
            column = np.ascontiguousarray(value, dtype=dtype)
            if column.size != lengths[kind] or (kind == "level") != (column.ndim == 2):
                raise StreamError(
                    f"event columns do not fit together: {n} events, {n_updates} updates, "
                    f"{n_trades} trades and {depth} ask levels beyond level 0"
                )
            # memoryview cannot cast an array of size 0; nothing is ever sliced from it.
            view = memoryview(column.reshape(-1).view(np.uint8)) if column.size else memoryview(b"")  # type: ignore[arg-type]
            self._views.append(view)
            self._widths.append(dtype.itemsize * (depth if kind == "level" else 1))
        if not 1 <= depth + 1 <= MAX_LEVELS:
            raise StreamError(f"ask levels beyond level 0 must be in [0, {MAX_LEVELS - 1}]")
        self.depth = depth
        self._raw_id = bytes.fromhex(stream_id)
        # Arrays, not lists: a list of millions of ints costs more to make than every message
        # of a stream takes to read from them.
        self._update_start, self._trade_start = event_bounds(events)
        if self._update_start[-1] != n_updates or self._trade_start[-1] != n_trades:
            raise StreamError(
                f"event columns do not fit together: the events count "
                f"{int(self._update_start[-1])} updates and {int(self._trade_start[-1])} trades, "
                f"the columns hold {n_updates} and {n_trades}"
            )
        self._kinds = [kind if kind != "level" else "update" for kind in _KINDS]

    def pack(self, seq: int, a: int, b: int, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
        """The event message of events a..b-1 (0-based, a < b), the first with seq `seq`.

        Raises:
            StreamError: the message is larger than `max_bytes`, or holds no event.
        """
        if b <= a:
            raise StreamError(f"an event message holds at least 1 event, but got {b - a}")
        u0, u1 = int(self._update_start[a]), int(self._update_start[b])
        t0, t1 = int(self._trade_start[a]), int(self._trade_start[b])
        size = batch_bytes(b - a, u1 - u0, t1 - t0, self.depth + 1)
        if size > max_bytes:
            raise StreamError(f"message of {size} bytes exceeds the limit of {max_bytes} bytes")
        parts: list[Any] = [
            _HEADER.pack(
                BATCH_MAGIC,
                SCHEMA_VERSION,
                0,
                self._raw_id,
                seq,
                b - a,
                u1 - u0,
                t1 - t0,
                self.depth,
                0,
            )  # fmt: skip
        ]
        bounds = {"event": (a, b), "update": (u0, u1), "trade": (t0, t1)}
        for view, width, kind in zip(self._views, self._widths, self._kinds, strict=True):
            lo, hi = bounds[kind]
            parts.append(view[lo * width : hi * width])
        return b"".join(parts)


def encode_batch(
    stream_id: str, seq: int, events: EventColumns, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """Encode an event message: the header, then each column's bytes (`BatchPacker`).

    The values are the caller's to check (`stream.events.check_updates`), so that tests can
    write what a producer with a bug would.

    Args:
        stream_id: the stream's id, already checked by `encode_start`.
        seq: the first event's sequence number (1 for the stream's first event).
        events: at least one event, as `EventColumns` (any dtype that converts exactly).
        max_bytes: refuse a message larger than this many bytes.

    Raises:
        StreamError: the message is larger than `max_bytes`, holds no event, or the columns do
            not fit together.
    """
    return BatchPacker(stream_id, events).pack(seq, 0, len(events.ts), max_bytes)


def _price(value: Any) -> float:
    return np.nan if value is None else float(value)


def columns_of_rows(events: Sequence[Sequence[Any]], levels: int = 1) -> EventColumns:
    """`EventColumns` of events given as rows: (ts, updates, trades) each, as `EventRow`.

    The slow, readable way to build an event message (tests, hand-made messages); with
    `levels` > 1 every update ends in the prices and sizes of the levels it shows beyond level
    0, at most `levels` - 1, and the levels after them are empty (NaN, 0).

    Raises:
        StreamError: an update of the wrong width, showing more levels than `levels` - 1.
    """
    depth = levels - 1
    width = 5 if depth == 0 else 7
    ts, n_updates, n_trades = [], [], []
    venue, ask_px, ask_sz, bid_px, bid_sz, depth_px, depth_sz = [], [], [], [], [], [], []
    trade_venue, trade_px, trade_sz, trade_side = [], [], [], []
    for event_ts, updates, trades in events:
        ts.append(event_ts)
        n_updates.append(len(updates))
        n_trades.append(len(trades))
        for update in updates:
            if len(update) != width:
                raise StreamError(
                    f"an update of a stream of {levels} ask level(s) has {width} fields, but "
                    f"got {list(update)!r}"
                )
            venue.append(update[0])
            ask_px.append(_price(update[1]))
            ask_sz.append(update[2])
            bid_px.append(_price(update[3]))
            bid_sz.append(update[4])
            if depth:
                px, sz = list(update[5]), list(update[6])
                if len(px) > depth or len(sz) != len(px):
                    raise StreamError(
                        f"an update shows at most {depth} ask levels beyond level 0, as "
                        f"prices and sizes of one length, but got {list(update)!r}"
                    )
                depth_px.append([*map(_price, px), *[np.nan] * (depth - len(px))])
                depth_sz.append([*sz, *[0] * (depth - len(sz))])
        for venue_id, px, size, side in trades:
            trade_venue.append(venue_id)
            trade_px.append(_price(px))
            trade_sz.append(size)
            trade_side.append(side)
    n = len(venue)
    return EventColumns(
        ts=np.array(ts, dtype="<i8"),
        ask_px=np.array(ask_px, dtype="<f8"),
        bid_px=np.array(bid_px, dtype="<f8"),
        depth_px=np.array(depth_px, dtype="<f8").reshape(n, depth),
        trade_px=np.array(trade_px, dtype="<f8"),
        n_updates=np.array(n_updates, dtype="<u4"),
        n_trades=np.array(n_trades, dtype="<u4"),
        ask_sz=np.array(ask_sz, dtype="<u4"),
        bid_sz=np.array(bid_sz, dtype="<u4"),
        depth_sz=np.array(depth_sz, dtype="<u4").reshape(n, depth),
        trade_sz=np.array(trade_sz, dtype="<u4"),
        venue=np.array(venue, dtype="<u2"),
        trade_venue=np.array(trade_venue, dtype="<u2"),
        trade_side=np.array(trade_side, dtype="i1"),
    )


def encode_events(
    stream_id: str,
    seq: int,
    events: Sequence[Sequence[Any]],
    *,
    levels: int = 1,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Encode an event message of events given as rows (`columns_of_rows`); no value is
    checked, so that tests can write what a buggy producer would.

    Raises:
        StreamError: as `columns_of_rows` and `encode_batch`.
    """
    return encode_batch(stream_id, seq, columns_of_rows(events, levels), max_bytes)


def encode_event(
    stream_id: str,
    seq: int,
    ts: int,
    updates: Sequence[UpdateRow],
    trades: Sequence[TradeRow],
    *,
    levels: int = 1,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Encode an event message of one event given as rows (`encode_events`)."""
    return encode_events(
        stream_id, seq, [(ts, updates, trades)], levels=levels, max_bytes=max_bytes
    )


def event_bounds(events: EventColumns) -> tuple[np.ndarray, np.ndarray]:
    """(first update, first trade) of each event and one past the last: int64[n + 1] each."""
    n = len(events.ts)
    update_start = np.zeros(n + 1, dtype=np.int64)
    trade_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(events.n_updates, out=update_start[1:])
    np.cumsum(events.n_trades, out=trade_start[1:])
    return update_start, trade_start


def cut(
    events: EventColumns,
    i: int,
    j: int,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> EventColumns:
    """Events i..j-1 of `events` (views, no copy).

    Args:
        events: the columns.
        i, j: the events, 0-based, i <= j.
        bounds: `event_bounds(events)`, when the caller has it already.
    """
    update_start, trade_start = bounds if bounds is not None else event_bounds(events)
    u0, u1 = int(update_start[i]), int(update_start[j])
    t0, t1 = int(trade_start[i]), int(trade_start[j])
    parts = []
    for value, kind in zip(events, _KINDS, strict=True):
        if kind == "event":
            parts.append(value[i:j])
        elif kind == "trade":
            parts.append(value[t0:t1])
        else:
            parts.append(value[u0:u1])
    return EventColumns(*parts)


def first_difference(a: EventColumns, b: EventColumns) -> int | None:
    """The first event (0-based) where two runs of as many events differ in any bit, or None.

    Raises:
        ValueError: `a` and `b` hold different numbers of events.
    """
    n = len(a.ts)
    if len(b.ts) != n:
        raise ValueError(f"compare as many events: {n} and {len(b.ts)}")
    if a.depth_px.shape[1:] == b.depth_px.shape[1:] and all(
        x.shape == y.shape and x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True)
    ):
        return None
    if a.depth_px.shape[1:] != b.depth_px.shape[1:]:
        return 0
    bounds_a, bounds_b = event_bounds(a), event_bounds(b)
    for k in range(n):
        one_a, one_b = cut(a, k, k + 1, bounds_a), cut(b, k, k + 1, bounds_b)
        if any(
            x.shape != y.shape or x.tobytes() != y.tobytes()
            for x, y in zip(one_a, one_b, strict=True)
        ):
            return k
    return None  # pragma: no cover - the whole columns differ, so some event does


def _none_if_nan(values: np.ndarray) -> list[float | None]:
    return [None if v != v else v for v in values.tolist()]


def event_rows(events: EventColumns) -> list[EventRow]:
    """The events as rows (`EventRow`): prices None where NaN, levels beyond level 0 only as
    far as they are shown; the slow path of the live book and of tests."""
    bounds = event_bounds(events)
    venue, ask_sz, bid_sz = (c.tolist() for c in (events.venue, events.ask_sz, events.bid_sz))
    ask_px, bid_px = _none_if_nan(events.ask_px), _none_if_nan(events.bid_px)
    depth = events.depth_px.shape[1]
    rows: list[list[Any]] = [
        list(row) for row in zip(venue, ask_px, ask_sz, bid_px, bid_sz, strict=True)
    ]
    if depth:
        shown = (events.depth_sz > 0).sum(axis=1).tolist()
        for row, px, sz, k in zip(
            rows, events.depth_px.tolist(), events.depth_sz.tolist(), shown, strict=True
        ):
            row += [px[:k], sz[:k]]
    updates: list[UpdateRow] = list(rows)
    trades: list[TradeRow] = [
        list(row)
        for row in zip(
            events.trade_venue.tolist(),
            _none_if_nan(events.trade_px),
            events.trade_sz.tolist(),
            events.trade_side.tolist(),
            strict=True,
        )
    ]
    update_start, trade_start = (b.tolist() for b in bounds)
    return [
        EventRow(
            ts,
            updates[update_start[i] : update_start[i + 1]],
            trades[trade_start[i] : trade_start[i + 1]],
        )
        for i, ts in enumerate(events.ts.tolist())
    ]


def _bad(what: str, value: Any) -> StreamError:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return StreamError(f"malformed message: {what}, but got {text}")


def _int(obj: dict[str, Any], key: str, lo: int, hi: int) -> int:
    value = obj.get(key)
    # `type(...) is int` because bool is an int subclass and True must not pass for 1.
    if type(value) is not int or not lo <= value <= hi:
        raise _bad(f"{key!r} must be an integer in [{lo}, {hi}]", value)
    return value


def _foreign(version: Any) -> StreamError:
    return StreamError(
        f"message has schema version {version!r}; this reader understands version "
        f"{SCHEMA_VERSION} only (upgrade sor, or read another topic)"
    )


def decode(data: bytes | None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """Decode and check one message from an untrusted topic (its signature checked first, by
    `stream.signing.signature_problem`).

    An event message is checked whole with numpy: its length against its header, then every
    value as the CSV loader checks it (`_check_values`); its columns are views of `data`.

    Args:
        data: the Kafka record value.
        max_bytes: refuse a larger message without parsing it.

    Returns:
        A `Start`, `Batch` or `End`.

    Raises:
        StreamError: too large, not a message of this format, another schema version, an
            unknown kind, a field missing or of the wrong type, or a value the CSV loader would
            never give (naming the event's seq, the field and the value).
    """
    if data is None:
        raise StreamError("malformed message: empty record value")
    if len(data) > max_bytes:
        raise StreamError(f"message of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    if data[:4] == BATCH_MAGIC:
        return _decode_batch(data)
    return _decode_json(data)


def _decode_batch(data: bytes) -> Batch:
    if len(data) < BATCH_HEADER_BYTES:
        raise StreamError(
            f"malformed message: an event message of {len(data)} bytes is shorter than its "
            f"{BATCH_HEADER_BYTES}-byte header"
        )
    _, version, reserved, raw_id, seq, n, n_updates, n_trades, depth, reserved_2 = (
        _HEADER.unpack_from(data)
    )
    if version != SCHEMA_VERSION:
        raise _foreign(version)
    if reserved or reserved_2:
        raise _bad(
            "the reserved header fields of an event message must be 0", (reserved, reserved_2)
        )
    if not n >= 1 or not 1 <= seq <= _INT64_MAX - n:
        raise _bad(
            f"an event message holds at least 1 event, its first seq in [1, {_INT64_MAX} - events]",
            {"seq": seq, "events": n},
        )
    if depth > MAX_LEVELS - 1:
        raise _bad(f"ask levels beyond level 0 must be at most {MAX_LEVELS - 1}", depth)
    size = batch_bytes(n, n_updates, n_trades, depth + 1)
    if size != len(data):
        raise StreamError(
            f"malformed message: an event message of {n} events, {n_updates} updates, "
            f"{n_trades} trades and {depth} ask levels beyond level 0 is {size} bytes, but it "
            f"has {len(data)}"
        )
    lengths = {"event": n, "update": n_updates, "level": n_updates * depth, "trade": n_trades}
    offset = BATCH_HEADER_BYTES
    columns = []
    for dtype, kind in zip(_DTYPES, _KINDS, strict=True):
        count = lengths[kind]
        columns.append(np.frombuffer(data, dtype=dtype, count=count, offset=offset))
        offset += count * dtype.itemsize
    columns[3] = columns[3].reshape(n_updates, depth)  # depth_px
    columns[9] = columns[9].reshape(n_updates, depth)  # depth_sz
    events = EventColumns(*columns)
    stream_id = raw_id.hex()
    # A small message (one event per message, mostly) is vouched for in plain Python, which
    # costs less than a numpy call per rule there; the numpy checks name what is wrong.
    if n + n_updates * (depth + 1) + n_trades > SMALL_VALUES or not _small_ok(events):
        _check_values(events, seq)
    return Batch(stream_id, seq, events)


#: Event messages of at most this many values (events + updates x levels + trades) are first
#: checked by `_small_ok`; 0 sends every message to the numpy checks alone.
SMALL_VALUES = 64


def _small_ok(events: EventColumns) -> bool:
    """True if `_check_values` would accept `events`, checked value by value in Python (the same
    rules); False: let `_check_values` find and name the problem."""
    ts, n_updates, n_trades = (
        events.ts.tolist(),
        events.n_updates.tolist(),
        events.n_trades.tolist(),
    )
    if not (
        ts[0] >= TS_MIN
        and ts[-1] < TS_MAX
        and all(a < b for a, b in zip(ts, ts[1:], strict=False))
        and all(n_updates)
        and sum(n_updates) == len(events.venue)
        and sum(n_trades) == len(events.trade_venue)
    ):
        return False
    ask_px, ask_sz = events.ask_px.tolist(), events.ask_sz.tolist()
    bid_px, bid_sz = events.bid_px.tolist(), events.bid_sz.tolist()
    for px, sz in ((ask_px, ask_sz), (bid_px, bid_sz)):
        for p, z in zip(px, sz, strict=True):
            # NaN (p != p): no quote, then no size; else a price in bounds and a size.
            if (z != 0) if p != p else not (0 < p <= MAX_PRICE and 0 < z <= MAX_SIZE):
                return False
    if any(b > a for a, b in zip(ask_px, bid_px, strict=True)):  # NaN compares False
        return False
    if events.depth_px.shape[1]:
        for a, a_sz, levels_px, levels_sz in zip(
            ask_px, ask_sz, events.depth_px.tolist(), events.depth_sz.tolist(), strict=True
        ):
            before, before_empty = a, a != a or a_sz == 0
            for p, z in zip(levels_px, levels_sz, strict=True):
                if p != p:
                    if z != 0:
                        return False
                    before_empty = True
                    continue
                if not (0 < p <= MAX_PRICE and 0 < z <= MAX_SIZE) or before_empty or p < before:
                    return False
                before = p
    for p, z, side in zip(
        events.trade_px.tolist(), events.trade_sz.tolist(), events.trade_side.tolist(), strict=True
    ):
        if not ((p != p or 0 < p <= MAX_PRICE) and z <= MAX_SIZE and -1 <= side <= 1):
            return False
    return True


_PRICE_RULE = f"outside (0, {MAX_PRICE}] dollars (NaN: none)"
_SIZE_RULE = f"above {MAX_SIZE} shares"
_EMPTY_RULE = "a side or level shows a price and a size, or neither (NaN and 0)"


def _check_values(events: EventColumns, seq: int) -> None:
    """Refuse an event message whose counts do not add up or whose values the CSV loader would
    never give (`stream.events.updates_problem`'s rules, over the whole message with numpy).

    Each rule is one vectorised test over its columns; only a rule that is broken looks for
    its first row.

    Raises:
        StreamError: naming the first event at fault by its seq, the field and the value.
    """
    n_updates = events.n_updates
    if not n_updates.all():
        k = int(np.argmin(n_updates))
        raise StreamError(f"event seq {seq + k} has no venue update: an event has at least one")
    if int(n_updates.sum(dtype=np.int64)) != len(events.venue) or int(
        events.n_trades.sum(dtype=np.int64)
    ) != len(events.trade_venue):
        raise _bad(
            "the events' update and trade counts must add up to the message's",
            (len(events.venue), len(events.trade_venue)),
        )
    problems: list[tuple[int, str]] = []  # (event index, what), the first of each rule broken
    ts = events.ts
    mask = (ts < TS_MIN) | (ts >= TS_MAX)
    if mask.any():
        k = _first(mask)
        problems.append((k, f"ts {int(ts[k])} ns is outside the years 2000-2099"))
    if len(ts) > 1:
        mask = ts[1:] <= ts[:-1]
        if mask.any():
            k = _first(mask) + 1
            problems.append(
                (
                    k,
                    f"ts {int(ts[k])} ns is not after the previous event's {int(ts[k - 1])} ns: "
                    "events out of clock order",
                )
            )
    update_checks = _update_checks(events)
    if update_checks:
        update_start, _ = event_bounds(events)
        for row, what in update_checks:
            k = int(np.searchsorted(update_start, row, side="right")) - 1
            venue = int(events.venue[row])
            where = f"update {row - int(update_start[k])} (publisher_id {venue})"
            problems.append((k, f"{where}: {what}"))
    trade_checks = _trade_checks(events) if len(events.trade_venue) else []
    if trade_checks:
        _, trade_start = event_bounds(events)
        for row, what in trade_checks:
            k = int(np.searchsorted(trade_start, row, side="right")) - 1
            problems.append((k, f"trade {row - int(trade_start[k])}: {what}"))
    if problems:
        k, what = min(problems, key=lambda p: p[0])
        raise StreamError(f"event seq {seq + k} holds a value the CSV loader refuses: {what}")


def _first(mask: np.ndarray) -> int:
    """The first row of a [U] or [U, K] mask with a True value (there is one)."""
    rows = mask.any(axis=1) if mask.ndim == 2 else mask
    return int(np.argmax(rows))


def _level(mask: np.ndarray, row: int) -> int:
    """The first ask level (1-based beyond level 0) of `row` where [U, K] `mask` is True."""
    return int(np.argmax(mask[row])) + 1


def _bad_price(px: np.ndarray) -> np.ndarray:
    # NaN compares False both ways: it passes (no quote). Infinities fail one of the two.
    return (px <= 0) | (px > MAX_PRICE)


def _update_checks(events: EventColumns) -> list[tuple[int, str]]:
    """(first update row, what) of each rule on the venue updates that is broken."""
    found: list[tuple[int, str]] = []
    ask_px, bid_px, depth_px = events.ask_px, events.bid_px, events.depth_px
    ask_sz, bid_sz, depth_sz = events.ask_sz, events.bid_sz, events.depth_sz
    deep = depth_px.shape[1] > 0
    for name, px, sz in (("ask", ask_px, ask_sz), ("bid", bid_px, bid_sz)):
        mask = _bad_price(px)
        if mask.any():
            row = _first(mask)
            found.append((row, f"{name}_px {float(px[row])!r} is {_PRICE_RULE}"))
        mask = sz > MAX_SIZE
        if mask.any():
            row = _first(mask)
            found.append((row, f"{name}_sz {int(sz[row])} is {_SIZE_RULE}"))
        mask = np.isnan(px) != (sz == 0)
        if mask.any():
            row = _first(mask)
            found.append(
                (row, f"{name}_px {float(px[row])!r} with {name}_sz {int(sz[row])}: {_EMPTY_RULE}")
            )
    mask = bid_px > ask_px
    if mask.any():
        row = _first(mask)
        found.append(
            (
                row,
                f"bid_px {float(bid_px[row])!r} above ask_px {float(ask_px[row])!r}: a crossed "
                "quote",
            )
        )
    if not deep:
        return found
    mask = _bad_price(depth_px)
    if mask.any():
        row = _first(mask)
        k = _level(mask, row)
        found.append((row, f"ask level {k} price {float(depth_px[row, k - 1])!r} is {_PRICE_RULE}"))
    mask = depth_sz > MAX_SIZE
    if mask.any():
        row = _first(mask)
        k = _level(mask, row)
        found.append((row, f"ask level {k} size {int(depth_sz[row, k - 1])} is {_SIZE_RULE}"))
    depth_empty = np.isnan(depth_px)
    mask = depth_empty != (depth_sz == 0)
    if mask.any():
        row = _first(mask)
        k = _level(mask, row)
        found.append(
            (
                row,
                f"ask level {k} price {float(depth_px[row, k - 1])!r} with size "
                f"{int(depth_sz[row, k - 1])}: {_EMPTY_RULE}",
            )
        )
    # `sor.data.snapshots.ladder_breaks` on the ladder [ask_px, depth_px...]: a level shown
    # after an empty one, or priced below the level before it.
    before_px = np.column_stack([ask_px, depth_px[:, :-1]])
    before_empty = np.isnan(before_px) | (np.column_stack([ask_sz, depth_sz[:, :-1]]) == 0)
    mask = ~(depth_empty | (depth_sz == 0)) & (before_empty | (depth_px < before_px))
    if mask.any():
        row = _first(mask)
        k = _level(mask, row)
        found.append(
            (
                row,
                f"ask level {k} price {float(depth_px[row, k - 1])!r} after level {k - 1} "
                f"price {float(before_px[row, k - 1])!r}: the levels shown follow a shown "
                "level 0 in non-decreasing price order",
            )
        )
    return found


def _trade_checks(events: EventColumns) -> list[tuple[int, str]]:
    """(first trade row, what) of each rule on the trades that is broken."""
    found: list[tuple[int, str]] = []
    px, sz, side = events.trade_px, events.trade_sz, events.trade_side
    mask = _bad_price(px)
    if mask.any():
        row = _first(mask)
        found.append((row, f"trade price {float(px[row])!r} is {_PRICE_RULE}"))
    mask = sz > MAX_SIZE
    if mask.any():
        row = _first(mask)
        found.append((row, f"trade size {int(sz[row])} is {_SIZE_RULE}"))
    mask = (side < -1) | (side > 1)
    if mask.any():
        row = _first(mask)
        found.append((row, f"trade side {int(side[row])} is not -1, 0 or 1"))
    return found


def _decode_json(data: bytes) -> Start | End:
    """A start or end message, checked field by field."""
    try:
        obj = orjson.loads(data)
    except (ValueError, RecursionError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise StreamError(f"malformed message: not valid JSON ({exc})") from None
    if type(obj) is not dict:
        raise _bad("expected a JSON object", obj)
    version = obj.get("schema")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise _foreign(version)
    stream_id = obj.get("stream")
    if type(stream_id) is not str or not _STREAM_ID.fullmatch(stream_id):
        raise _bad("'stream' must be 32 lowercase hex digits", stream_id)
    seq = _int(obj, "seq", 0, _INT64_MAX)
    kind = obj.get("kind")
    if kind == "start":
        symbol, clock, source = obj.get("symbol"), obj.get("clock"), obj.get("source")
        if type(symbol) is not str or len(symbol) > MAX_SYMBOL_CHARS:
            raise _bad(
                f"'symbol' must be a string of at most {MAX_SYMBOL_CHARS} characters", symbol
            )
        if clock not in CLOCKS:
            raise _bad(f"'clock' must be one of {CLOCKS}", clock)
        if type(source) is not dict:
            raise _bad("'source' must be an object", source)
        if seq != 0:
            raise _bad("a start message must have 'seq' 0", seq)
        levels = _int(obj, "levels", 1, MAX_LEVELS)
        return Start(
            stream_id, seq, symbol, clock, source, levels, _int(obj, "events", 0, _INT64_MAX - 1)
        )
    if kind == "end":
        return End(stream_id, seq, _int(obj, "events", 0, _INT64_MAX))
    raise _bad(
        "'kind' must be 'start' or 'end' (event messages are binary, starting with "
        f"{BATCH_MAGIC!r})",
        kind,
    )
