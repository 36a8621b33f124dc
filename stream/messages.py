"""The wire format of a snapshot stream: one JSON object per Kafka message (docs/stream.md).

A stream is a start message, event messages carrying the distinct snapshot times (model.md §2)
in order, one or more per message, and an end-of-stream message. Sequence numbers count the
start message (0), each snapshot event (1..N) and the end message (N + 1); an event message
carries the sequence number of its first event and its event count, so that a reader checks
order, gaps and duplicates per event whatever the batching. Every message carries the schema
version and the stream's id, so that a reader can refuse what it does not understand and tell
streams apart on a shared topic. Every message is signed (`stream.signing`): the signature is a
record header, outside the JSON.

    {"schema":4,"kind":"start","stream":"<32 hex>","seq":0,"symbol":"AAPL","clock":"ts_event",
     "levels":10,"events":2,"source":{...}}
    {"schema":4,"kind":"events","stream":"<32 hex>","seq":1,"count":2,"events":[
     {"ts":1722519392491911683,"updates":[[2,222.83,100,222.81,421,[222.84,222.86],[300,50]]],
      "trades":[[2,222.83,190,1]]},
     {"ts":1722519392491911702,"updates":[[9,null,0,222.8,300,[],[]]],"trades":[]}]}
    {"schema":4,"kind":"end","stream":"<32 hex>","seq":3,"events":2}

The start message declares N, the number of snapshot events of the stream (`events`); the end
message repeats it. `count` is the number of events in an event message, at least 1, and equals
the length of its `events` list; its events have the sequence numbers seq, seq + 1, ...,
seq + count - 1.

`levels` is L, the number of ask levels of the data (`QuoteUpdates.ask_depth_px`): 10 for
MBP-10, 1 for MBP-1. With L = 1 an update is `[publisher_id, ask_px|null, ask_sz, bid_px|null,
bid_sz]`; with L > 1 every update of the stream carries two more lists, `[..., bid_sz,
[px_1, ..., px_k], [sz_1, ..., sz_k]]`: the prices and sizes of the ask levels shown beyond
level 0, in order, k <= L - 1. Levels k+1 to L-1 show nothing (an empty level is followed only
by empty levels, so only the levels shown are sent); an update whose ask side is empty (price
null or size 0) has k = 0. Each update carries the venue's whole ladder: a reader needs no state
beyond L, from the start message. Level 0 is the best ask, `ask_px`/`ask_sz`.

Values are bounded as the CSV loader bounds them (model.md §1): publisher ids in [0,
`MAX_PUBLISHER_ID`]; prices in dollars (null: that side shows no quote, or the trade row gives
no price), positive and at most `MAX_PRICE` (the largest a Databento file holds); sizes are
shares, whole numbers in [0, `MAX_SIZE`] (at least 1 beyond level 0); the ask levels shown are
in non-decreasing price order from level 0 on. `decode` checks each value; the rules that
relate values (a crossed quote, a price shown with no size, times within the loader's years)
are checked on the whole stream by `stream.events.check_updates`, the producer's check too.

A trade is `[publisher_id, price|null, size, side]`: one trade row of the data counted at this
snapshot as `sor.data.snapshots.build_snapshots` counts it (the first snapshot at or after the
trade), in the data's order; side +1 buy aggressor, -1 sell aggressor, 0 unknown. The shares
traded at the snapshot are the sum of the trades' sizes. `ts` is ns since the epoch, exact.
Floats round-trip exactly because they are written in their shortest round-trip form.

Version 4 carries several events per event message (kind `events`, with `count`), the number
of events in the start message, and a trade price bounded as a quote's (version 3 took any
finite trade price and any int32 publisher id). Version 3 added the ask levels beyond the best
ask. Version 2 added `trades` in place of version 1's `trade_volume`.

Topics may hold anything, so decoding is defensive: JSON only (never pickle), a size limit checked
before parsing, and a `StreamError` naming the problem for another schema version, malformed JSON
or a field of the wrong type.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import orjson

from sor.data.csvfile import MAX_PRICE, MAX_PUBLISHER_ID
from sor.errors import StreamError
from sor.vocabulary import CLOCKS, MAX_SIZE

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_LEVELS",
    "MAX_PRICE",
    "MAX_PUBLISHER_ID",
    "MAX_SYMBOL_CHARS",
    "PARTITION",
    "SCHEMA_VERSION",
    "End",
    "Event",
    "Events",
    "Message",
    "Start",
    "TradeRow",
    "UpdateRow",
    "decode",
    "encode_end",
    "encode_event",
    "encode_events",
    "encode_start",
    "event_fragment",
    "events_overhead",
    "new_stream_id",
]

PARTITION = 0  #: every message of a stream goes to this partition: one partition keeps the order

SCHEMA_VERSION = 4  #: bumped on any change a reader of the previous version would misread
DEFAULT_MAX_BYTES = 1_000_000  #: bytes; a larger message is refused
MAX_SYMBOL_CHARS = 64
MAX_LEVELS = 100  #: most ask levels a stream may declare (Databento's MBP-10 has 10)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_STREAM_ID = re.compile(r"[0-9a-f]{32}")
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_DUMPS = orjson.dumps

#: One venue update, [publisher_id, ask_px|None, ask_sz, bid_px|None, bid_sz], and with more
#: than one ask level [..., [px_1, ..., px_k], [sz_1, ..., sz_k]]: a list where updates are
#: split into events (`stream.events.split_events`), a tuple where a message is decoded.
UpdateRow = Sequence[Any]
#: One trade counted at a snapshot, [publisher_id, price|None, size, side]; a list or a tuple too.
TradeRow = Sequence[Any]


class Start(NamedTuple):
    """First message of a stream."""

    stream_id: str
    seq: int
    symbol: str
    clock: str  #: "ts_event" or "ts_recv": which time `ts` is
    source: dict[str, Any]  #: where the data came from (file name, window, counts)
    levels: int = 1  #: ask levels L of the data: each update carries levels 1..L-1 if L > 1
    events: int = 0  #: snapshot events N of the stream: seq 1..N, then the end at N + 1


class Event(NamedTuple):
    """One snapshot time, the venue updates at it and the trades counted at it."""

    stream_id: str
    seq: int
    ts: int  #: ns since the epoch
    updates: list[UpdateRow]  #: one `UpdateRow` per venue update, in order
    trades: list[TradeRow]  #: [publisher_id, price|None, size, side] per trade

    @property
    def trade_volume(self) -> int:
        """Shares traded at this snapshot."""
        return sum(trade[2] for trade in self.trades)


class Events(NamedTuple):
    """One event message: consecutive snapshot events, the first at `seq`."""

    stream_id: str
    seq: int  #: the first event's sequence number
    events: list[Event]  #: at least one; event i has seq `seq + i`


class End(NamedTuple):
    """End-of-stream marker."""

    stream_id: str
    seq: int
    events: int  #: number of snapshot events in the stream


Message = Start | Events | End
_new_tuple = tuple.__new__


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
        levels: ask levels L of the data (`QuoteUpdates.n_levels`), 1 to `MAX_LEVELS`; with
            L > 1 every update of the stream carries levels 1..L-1 (see the module docstring).
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


def event_fragment(ts: int, updates: Sequence[UpdateRow], trades: Sequence[TradeRow]) -> bytes:
    """One event as the JSON object an event message lists; the producer's hot path, so it
    trusts its caller.

    Args:
        ts: snapshot time, int ns since the epoch.
        updates: [publisher_id, ask_px|None, ask_sz, bid_px|None, bid_sz] per venue update,
            and with more than one ask level the lists [px_1, ..., px_k] and [sz_1, ..., sz_k]
            of the levels shown beyond level 0 (see the module docstring): ints, and positive
            finite floats or None (an empty side's price is None, never NaN).
        trades: [publisher_id, price|None, size, side] per trade counted at this snapshot.
    """
    # orjson: three times faster than formatting by hand, ints exact, floats in their shortest
    # round-trip form (byte-identical to json.dumps on real data), so every value reads back
    # bit-identical; numpy scalars are accepted too. (A NaN would be written as null: callers
    # pass None for an empty side, as `split_events` does.)
    return _DUMPS(
        {"ts": ts, "updates": updates, "trades": trades}, option=orjson.OPT_SERIALIZE_NUMPY
    )


def _events_prefix(stream_id: str, seq: int, count: int) -> bytes:
    return b'{"schema":%d,"kind":"events","stream":"%s","seq":%d,"count":%d,"events":[' % (
        SCHEMA_VERSION,
        stream_id.encode(),
        seq,
        count,
    )


def events_overhead(stream_id: str) -> int:
    """Bytes an event message adds to its events' fragments and the commas between them, at
    most (for any seq and count)."""
    return len(_events_prefix(stream_id, _INT64_MAX, _INT64_MAX)) + 2


def encode_events(
    stream_id: str, seq: int, fragments: Sequence[bytes], max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """Encode an event message from its events' `event_fragment`s.

    Args:
        stream_id: the stream's id, already checked by `encode_start`.
        seq: the first event's sequence number (1 for the stream's first event).
        fragments: one `event_fragment` per event, in order; at least one.
        max_bytes: refuse a message larger than this many bytes.

    Raises:
        StreamError: the message is larger than `max_bytes`.
    """
    body = _events_prefix(stream_id, seq, len(fragments)) + b",".join(fragments) + b"]}"
    return _limit(body, max_bytes)


def encode_event(
    stream_id: str,
    seq: int,
    ts: int,
    updates: Sequence[UpdateRow],
    trades: Sequence[TradeRow],
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """Encode an event message of one event (`encode_events` of one `event_fragment`).

    Raises:
        StreamError: the message is larger than `max_bytes`.
    """
    return encode_events(stream_id, seq, [event_fragment(ts, updates, trades)], max_bytes)


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


# orjson: about four times faster than the stdlib here (parsing dominates the consumer once
# kafka-python checks CRCs with crc32c); it refuses NaN, Infinity, invalid UTF-8 and deep nesting.
_DECODE = orjson.loads
_NUMBER = frozenset((int, float))


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


_PRICE_RULE = f"a price in (0, {MAX_PRICE}] dollars"
_SIZE_RULE = f"a size in [0, {MAX_SIZE}] shares"
_VENUE_RULE = f"publisher_id in [0, {MAX_PUBLISHER_ID}]"


def _updates(value: Any) -> list[list[Any]]:
    if type(value) is not list or not value:
        # Empty is refused too: a snapshot exists because at least one venue updated.
        raise _bad("'updates' must be a non-empty list", value)
    first = value[0]
    width = len(first) if type(first) is list else 0
    if width not in (5, 7):
        raise _bad(
            "an update must be [publisher_id, ask_px, ask_sz, bid_px, bid_sz], and with ask "
            "levels beyond level 0 [..., [px_1, ...], [sz_1, ...]]",
            first,
        )
    for update in value:
        if type(update) is not list or len(update) != width:
            raise _bad(f"every update of an event must be a list of {width} like the first", update)
        venue, ask_px, ask_sz, bid_px, bid_sz = update[:5]
        if not (
            type(venue) is int
            and 0 <= venue <= MAX_PUBLISHER_ID
            and type(ask_sz) is int
            and 0 <= ask_sz <= MAX_SIZE
            and type(bid_sz) is int
            and 0 <= bid_sz <= MAX_SIZE
            and (ask_px is None or (type(ask_px) in _NUMBER and 0 < ask_px <= MAX_PRICE))
            and (bid_px is None or (type(bid_px) in _NUMBER and 0 < bid_px <= MAX_PRICE))
        ):
            raise _bad(
                f"an update must be [{_VENUE_RULE}, {_PRICE_RULE} or null, "
                f"{_SIZE_RULE}, {_PRICE_RULE} or null, {_SIZE_RULE}, ...]",
                update,
            )
        if width == 7:
            _levels(update)
    return value


def _levels(update: list[Any]) -> None:
    """Check the ask levels beyond level 0 of one update (its last two entries)."""
    px, sz = update[5], update[6]
    if not (
        type(px) is list
        and type(sz) is list
        and len(px) == len(sz)
        and all(type(p) in _NUMBER and 0 < p <= MAX_PRICE for p in px)
        and all(type(n) is int and 1 <= n <= MAX_SIZE for n in sz)
    ):
        raise _bad(
            f"the ask levels beyond level 0 must be two lists of one length: each {_PRICE_RULE} "
            f"and each a size in [1, {MAX_SIZE}] shares",
            update,
        )
    if px and (update[1] is None or update[2] == 0):
        raise _bad("an ask level is shown after an empty level 0 (the best ask)", update)
    if px and (px[0] < update[1] or px != sorted(px)):
        raise _bad("the ask levels must be in non-decreasing price order from level 0 on", update)


def _ladder_ok(update: tuple[Any, ...]) -> bool:
    """Whether the levels beyond 0 of an update msgspec decoded (types and bounds checked) are
    as `_levels` wants them."""
    px, sz = update[5], update[6]
    if not px:
        return not sz
    ask_px = update[1]
    return (
        len(px) == len(sz)
        and ask_px is not None
        and update[2] > 0
        and ask_px <= px[0]
        and px == sorted(px)
    )


def _trades(value: Any) -> list[list[Any]]:
    if type(value) is not list:
        raise _bad("'trades' must be a list", value)
    # Sizes are bounded as the CSV loader bounds them, so that a snapshot's trade volume (their
    # sum) cannot overflow int64 within any message size.
    for trade in value:
        if type(trade) is not list or len(trade) != 4:
            raise _bad("a trade must be [publisher_id, price, size, side]", trade)
        venue, px, size, side = trade
        if not (
            type(venue) is int
            and 0 <= venue <= MAX_PUBLISHER_ID
            and (px is None or (type(px) in _NUMBER and 0 < px <= MAX_PRICE))
            and type(size) is int
            and 0 <= size <= MAX_SIZE
            and type(side) is int
            and -1 <= side <= 1
        ):
            raise _bad(
                f"a trade must be [{_VENUE_RULE}, {_PRICE_RULE} or null, size in "
                f"[0, {MAX_SIZE}] shares, side -1, 0 or 1]",
                trade,
            )
    return value


def _event(value: Any) -> tuple[int, list[UpdateRow], list[TradeRow]]:
    """Check one event object of an event message: (ts, updates, trades) as tuples."""
    if type(value) is not dict:
        raise _bad("an event must be an object with 'ts', 'updates' and 'trades'", value)
    extra = set(value) - {"ts", "updates", "trades"}
    if extra:
        raise _bad("an event has only 'ts', 'updates' and 'trades'", sorted(extra))
    ts, trades = value.get("ts"), value.get("trades")
    if not (type(ts) is int and _INT64_MIN <= ts <= _INT64_MAX):
        ts = _int(value, "ts", _INT64_MIN, _INT64_MAX)  # raises with the details
    if type(trades) is not list or trades:  # most snapshots have no trade: no call then
        trades = _trades(trades)  # the same list, checked
    updates: list[UpdateRow] = [tuple(u) for u in _updates(value.get("updates"))]
    return ts, updates, [tuple(t) for t in trades]


# Stream ids already checked: a stream repeats one id in every message, so the regex runs once.
_VALID_IDS: set[str] = set()


def _valid_stream_id(stream_id: Any) -> bool:
    if type(stream_id) is not str or not _STREAM_ID.fullmatch(stream_id):
        return False
    if len(_VALID_IDS) > 1000:
        _VALID_IDS.clear()
    _VALID_IDS.add(stream_id)
    return True


_VENUE = Annotated[int, msgspec.Meta(ge=0, le=MAX_PUBLISHER_ID)]
_U64 = Annotated[int, msgspec.Meta(ge=0, le=_INT64_MAX)]
_SEQ = Annotated[int, msgspec.Meta(ge=1, le=_INT64_MAX)]
_SIZE = Annotated[int, msgspec.Meta(ge=0, le=MAX_SIZE)]
_QUOTE_PX = Annotated[float, msgspec.Meta(gt=0, le=MAX_PRICE)]
_LEVEL_SZ = Annotated[int, msgspec.Meta(ge=1, le=MAX_SIZE)]
_TRADE = tuple[_VENUE, _QUOTE_PX | None, _SIZE, Literal[-1, 0, 1]]
_TS = Annotated[int, msgspec.Meta(ge=_INT64_MIN, le=_INT64_MAX)]
_STREAM = Annotated[str, msgspec.Meta(pattern=r"\A[0-9a-f]{32}\Z")]  # `$` would allow "\n"


class _WireEvent(msgspec.Struct, forbid_unknown_fields=True):
    """One event of a stream with one ask level, as `_event` accepts it, checked in C."""

    ts: _TS
    updates: Annotated[
        list[tuple[_VENUE, _QUOTE_PX | None, _SIZE, _QUOTE_PX | None, _SIZE]],
        msgspec.Meta(min_length=1),
    ]
    trades: list[_TRADE]


class _WireDepthEvent(msgspec.Struct, forbid_unknown_fields=True):
    """`_WireEvent` of a stream with several ask levels: each update ends in the prices and
    sizes of the levels beyond level 0. Their order and lengths are checked after msgspec, by
    `_ladder_ok`."""

    ts: _TS
    updates: Annotated[
        list[
            tuple[
                _VENUE,
                _QUOTE_PX | None,
                _SIZE,
                _QUOTE_PX | None,
                _SIZE,
                list[_QUOTE_PX],
                list[_LEVEL_SZ],
            ]
        ],
        msgspec.Meta(min_length=1),
    ]
    trades: list[_TRADE]


class _WireEvents(msgspec.Struct, tag_field="kind", tag="events", forbid_unknown_fields=True):
    """An event message with one ask level exactly as the checks of `_decode_checked` accept
    it (but for `count` equal to the number of events, checked after), checked in C.

    Only the fields our producer writes: a message with any other field goes to the Python
    checks (msgspec would skip an unknown field's value without the checks orjson applies).

    msgspec's strict decoding refuses a bool for an int and a float for an int (as the
    `type(...) is int` checks do), and NaN or infinity tokens; the bounds are those of the
    Python checks. Anything it refuses goes through `_decode_checked`, which either accepts it
    or raises the precise error (schema version, field, value).
    """

    schema: Literal[4]  # SCHEMA_VERSION; a test keeps the two equal
    stream: _STREAM
    seq: _SEQ
    count: _SEQ
    events: Annotated[list[_WireEvent], msgspec.Meta(min_length=1)]


class _WireDepthEvents(msgspec.Struct, tag_field="kind", tag="events", forbid_unknown_fields=True):
    """`_WireEvents` of a stream with several ask levels."""

    schema: Literal[4]  # SCHEMA_VERSION; a test keeps the two equal
    stream: _STREAM
    seq: _SEQ
    count: _SEQ
    events: Annotated[list[_WireDepthEvent], msgspec.Meta(min_length=1)]


_FAST_EVENTS = msgspec.json.Decoder(_WireEvents)
_FAST_DEPTH_EVENTS = msgspec.json.Decoder(_WireDepthEvents)
#: The two fast decoders, the one that took the last message first: a stream keeps one layout.
_FAST: list[msgspec.json.Decoder[Any]] = [_FAST_EVENTS, _FAST_DEPTH_EVENTS]


def _depth_ok(wire: _WireDepthEvents) -> bool:
    return all(all(map(_ladder_ok, event.updates)) for event in wire.events)


def decode(data: bytes | None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Message:
    """Decode and check one message from an untrusted topic (its signature checked first, by
    `stream.signing.signature_problem`).

    Event messages (all but two of a stream) are decoded and checked by msgspec in one C pass
    (and, with ask levels beyond level 0, their order by `_ladder_ok`); the rest, and anything
    refused there, by `_decode_checked`, which names what is wrong. Updates and trades come
    back as tuples (the lists of levels beyond level 0 inside an update as lists).

    Args:
        data: the Kafka record value.
        max_bytes: refuse a larger message without parsing it.

    Returns:
        A `Start`, `Events` or `End`.

    Raises:
        StreamError: too large, not JSON, another schema version, an unknown kind, or a field
            missing or of the wrong type; the message says which.
    """
    if data is None:
        raise StreamError("malformed message: empty record value")
    if len(data) > max_bytes:
        raise StreamError(f"message of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    fast = _FAST
    try:
        wire: _WireEvents | _WireDepthEvents = fast[0].decode(data)
    except (msgspec.DecodeError, RecursionError):  # the other layout, start, end, or a bad one
        try:
            wire = fast[1].decode(data)
        except (msgspec.DecodeError, RecursionError):  # start, end, extra fields, or a bad one
            return _decode_checked(data)
        fast.reverse()  # messages of this layout follow: try it first
    events: list[Any] = wire.events  # of _WireEvent or _WireDepthEvent
    seq, stream_id = wire.seq, wire.stream
    if (
        wire.count != len(events)
        or seq > _INT64_MAX - len(events)
        or (type(wire) is _WireDepthEvents and not _depth_ok(wire))
    ):
        return _decode_checked(data)  # raises, naming the problem
    new = _new_tuple
    return new(
        Events,
        (
            stream_id,
            seq,
            [
                new(Event, (stream_id, i, e.ts, e.updates, e.trades))
                for i, e in enumerate(events, seq)
            ],
        ),
    )


def _decode_checked(data: bytes) -> Message:
    """`decode` by explicit checks in Python, each with its own error message."""
    try:
        obj = _DECODE(data)
    except (ValueError, RecursionError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise StreamError(f"malformed message: not valid JSON ({exc})") from None
    if type(obj) is not dict:
        raise _bad("expected a JSON object", obj)
    version = obj.get("schema")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise StreamError(
            f"message has schema version {version!r}; this reader understands version "
            f"{SCHEMA_VERSION} only (upgrade sor, or read another topic)"
        )
    stream_id = obj.get("stream")
    if type(stream_id) is not str or (
        stream_id not in _VALID_IDS and not _valid_stream_id(stream_id)
    ):
        raise _bad("'stream' must be 32 lowercase hex digits", stream_id)
    seq = obj.get("seq")
    if not (type(seq) is int and 0 <= seq <= _INT64_MAX):
        seq = _int(obj, "seq", 0, _INT64_MAX)  # raises with the details
    kind = obj.get("kind")
    if kind == "events":
        items = obj.get("events")
        if type(items) is not list or not items:
            raise _bad("'events' must be a non-empty list of events", items)
        count = _int(obj, "count", 1, _INT64_MAX)
        if count != len(items):
            raise _bad(f"'count' must be the number of events listed, {len(items)}", count)
        if not 1 <= seq <= _INT64_MAX - count:
            raise _bad(f"'seq' of {count} events must be in [1, {_INT64_MAX - count}]", seq)
        events = [Event(stream_id, i, *_event(item)) for i, item in enumerate(items, seq)]
        for event in events[1:]:
            if len(event.updates[0]) != len(events[0].updates[0]):
                raise _bad(
                    "every event of a message must have updates of one layout",
                    list(event.updates[0]),
                )
        return Events(stream_id, seq, events)
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
    raise _bad("'kind' must be 'start', 'events' or 'end'", kind)
