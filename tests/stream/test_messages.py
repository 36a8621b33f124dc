"""The wire format: exact round trips, and a clear refusal of anything else (no broker needed)."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sor.data.snapshots import build_snapshots
from sor.errors import StreamError
from sor.vocabulary import MAX_SIZE
from stream import messages
from stream.events import UpdatesBuilder, event_columns, split_events, updates_problem
from stream.messages import (
    BATCH_HEADER_BYTES,
    BATCH_MAGIC,
    MAX_LEVELS,
    MAX_PRICE,
    SCHEMA_VERSION,
    Batch,
    End,
    EventColumns,
    Start,
    batch_bytes,
    columns_of_rows,
    cut,
    decode,
    encode_batch,
    encode_end,
    encode_event,
    encode_events,
    encode_start,
    event_rows,
    first_difference,
    new_stream_id,
)
from tests.stream.helpers import BASE_NS, small_updates

SID = "0123456789abcdef0123456789abcdef"
AWKWARD_FLOATS = [
    0.1 + 0.2,
    222.83,
    222.82999999999998,
    5e-324,
    1.7976931348623157e308,
    -0.0,
    1e-300,
    123456789.12345679,
    2.0**53 + 2,
]
#: the awkward floats a quote may hold: positive, at most MAX_PRICE
QUOTE_FLOATS = [p for p in AWKWARD_FLOATS if 0 < p <= MAX_PRICE]


def same_columns(a: EventColumns, b: EventColumns) -> bool:
    """Every column of `a` and `b` bit for bit, with its dtype and shape."""
    return all(
        x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        for x, y in zip(a, b, strict=True)
    )


def one(seq: int = 1, levels: int = 1, **columns) -> bytes:
    """An event message of one event (one update, one trade), `columns` replaced as given
    (values a producer with a bug could write)."""
    depth = [[10.01] * (levels - 1), [5] * (levels - 1)] if levels > 1 else []
    events = columns_of_rows(
        [(BASE_NS, [[2, 10.0, 100, 9.99, 200, *depth]], [[2, 10.0, 100, 1]])], levels
    )
    columns = {k: np.asarray(v, dtype=getattr(events, k).dtype) for k, v in columns.items()}
    return encode_batch(SID, seq, events._replace(**columns))


def test_batch_roundtrip_is_bit_exact():
    updates = small_updates(40)
    events = event_columns(updates)
    data = encode_batch(SID, 7, events)
    assert data[:4] == BATCH_MAGIC and len(data) == batch_bytes(40, 40, 1, 2)
    message = decode(data)
    assert type(message) is Batch and (message.stream_id, message.seq, message.count) == (
        SID,
        7,
        40,
    )
    assert same_columns(message.events, events)
    assert event_rows(message.events) == list(split_events(updates))


def test_awkward_floats_and_nan_payloads_travel_bit_exact():
    prices = np.array(QUOTE_FLOATS)
    n = len(prices)
    rows = [(BASE_NS + i, [[i, p, 1, None, 0]], []) for i, p in enumerate(prices.tolist())]
    events = columns_of_rows(rows)
    # A NaN with a payload (what some tools write for "no quote") stays that NaN.
    odd_nan = np.frombuffer(struct.pack("<Q", 0x7FF8_0000_0000_0BAD), dtype="<f8")
    bid = np.full(n, np.nan)
    bid[0] = odd_nan[0]
    events = events._replace(bid_px=bid)
    decoded = decode(encode_batch(SID, 1, events)).events
    assert decoded.ask_px.tobytes() == prices.tobytes()
    assert decoded.bid_px[:1].tobytes() == odd_nan.tobytes()


def test_decoded_columns_are_views_of_the_message_aligned():
    data = encode_batch(SID, 1, event_columns(small_updates(9)))
    events = decode(data).events
    for column in events:
        assert np.shares_memory(column, np.frombuffer(data, dtype=np.uint8))
        assert column.flags.aligned and not column.flags.writeable
    assert events.depth_px.shape == (9, 1) and events.levels == 2


def test_mbp10_ladders_empty_sides_and_trades_round_trip():
    """Ten levels: full ladders, ladders ending early, an empty ask side (no level shown), an
    empty bid side, several trades at one event, one without a price."""
    rows = [
        (
            BASE_NS,
            [
                [2, 10.0, 1, 9.99, 5, [10.0 + k / 100 for k in range(1, 10)], list(range(1, 10))],
                [9, None, 0, 9.98, 7, [], []],
            ],
            [[2, 10.0, 3, 1], [9, None, 0, -1], [43, 9.99, 2, 0]],
        ),
        (BASE_NS + 1, [[43, 10.5, 2, None, 0, [10.6, 10.6], [1, 2]]], []),
    ]
    data = encode_events(SID, 3, rows, levels=10)
    message = decode(data)
    assert event_rows(message.events) == [
        (ts, [list(u) for u in updates], [list(t) for t in trades]) for ts, updates, trades in rows
    ]
    assert message.events.depth_px.shape == (3, 9)
    assert message.events.depth_sz[1].tolist() == [0] * 9
    assert math.isnan(message.events.trade_px[1])


def test_one_event_per_message_and_slices():
    events = event_columns(small_updates(6))
    for i in range(6):
        message = decode(encode_batch(SID, i + 1, cut(events, i, i + 1)))
        assert message.count == 1 and message.seq == i + 1
        assert same_columns(message.events, cut(events, i, i + 1))
    assert first_difference(cut(events, 0, 3), cut(events, 0, 3)) is None
    assert first_difference(cut(events, 0, 3), cut(events, 3, 6)) == 0
    other = events._replace(trade_sz=events.trade_sz + 1)  # the trade is at event index 2
    assert first_difference(events, other) == 2


def test_start_and_end_roundtrip():
    source = {"file": "l1_day.csv", "rows_kept": 3, "venues": [2, 9]}
    start = decode(encode_start(SID, symbol="AAPL", clock="ts_recv", source=source, events=0))
    assert start == Start(SID, 0, "AAPL", "ts_recv", source) and start.levels == 1
    deep = decode(encode_start(SID, symbol="AAPL", clock="ts_event", levels=10, events=8))
    assert deep == Start(SID, 0, "AAPL", "ts_event", {}, 10, 8)
    body = json.loads(encode_start(SID, symbol="A", clock="ts_event", levels=10, events=3))
    assert body["levels"] == 10 and body["events"] == 3
    assert decode(encode_end(SID, 9, 8)) == End(SID, 9, 8)


def test_stream_ids_are_fresh_hex():
    a, b = new_stream_id(), new_stream_id()
    assert a != b and len(a) == 32 and int(a, 16) >= 0 and a == a.lower()


def test_encoding_refuses_bad_ids_clocks_and_sizes():
    with pytest.raises(StreamError, match="32 lowercase hex"):
        encode_start("not-an-id", symbol="A", clock="ts_event", events=0)
    with pytest.raises(StreamError, match="clock must be one of"):
        encode_start(SID, symbol="A", clock="wall", events=0)
    for events in (-1, True, 1.0, None):
        with pytest.raises(StreamError, match="events must be a whole number"):
            encode_start(SID, symbol="A", clock="ts_event", events=events)
    with pytest.raises(StreamError, match="message of 454 bytes exceeds the limit of 100 bytes"):
        encode_event(SID, 1, 5, [[2, 1.0, 1, 1.0, 1]] * 15, [], max_bytes=100)
    for levels in (0, MAX_LEVELS + 1, True, 2.0):
        with pytest.raises(StreamError, match=r"levels must be an integer in \[1, 100\]"):
            encode_start(SID, symbol="A", clock="ts_event", levels=levels, events=0)
    with pytest.raises(StreamError, match="at least 1 event"):
        encode_events(SID, 1, [])
    with pytest.raises(StreamError, match="has 5 fields"):
        encode_event(SID, 1, 5, [[2, 1.0, 1, 1.0, 1, [], []]], [])
    with pytest.raises(StreamError, match="at most 1 ask levels beyond level 0"):
        encode_event(SID, 1, 5, [[2, 1.0, 1, 1.0, 1, [1.1, 1.2], [1, 1]]], [], levels=2)
    events = columns_of_rows([(5, [[2, 1.0, 1, 1.0, 1]], [])])
    with pytest.raises(StreamError, match="do not fit together"):
        encode_batch(SID, 1, events._replace(bid_sz=np.zeros(2)))
    with pytest.raises(StreamError, match="the events count 2 updates and 0 trades, the column"):
        encode_batch(SID, 1, events._replace(n_updates=np.array([2])))


def start_json(**fields) -> bytes:
    body = {
        "schema": SCHEMA_VERSION,
        "kind": "start",
        "stream": SID,
        "seq": 0,
        "symbol": "A",
        "clock": "ts_event",
        "levels": 1,
        "events": 1,
        "source": {},
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def header(**fields) -> bytes:
    """The header of `one()` with fields replaced, and its columns."""
    data = one()
    names = ["magic", "schema", "reserved", "stream", "seq", "events", "updates", "trades"]
    names += ["depth", "reserved_2"]
    values = dict(zip(names, struct.unpack_from("<4sHH16sqIIIHH", data), strict=True))
    values.update(fields)
    return struct.pack("<4sHH16sqIIIHH", *values.values()) + data[BATCH_HEADER_BYTES:]


def counts(n_updates: int, n_trades: int) -> bytes:
    """`one()` with its event's counts of updates and trades overwritten (a producer with a
    bug: the header's totals and the columns stay as they were)."""
    data = bytearray(one())
    # header, then ts, ask_px, bid_px and trade_px of one event, one update, one trade
    struct.pack_into("<II", data, BATCH_HEADER_BYTES + 4 * 8, n_updates, n_trades)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (None, "empty record value"),
        (b"\x80\x04\x95\x00pickle", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b'"text"', "expected a JSON object"),
        (start_json(schema=4), "schema version 4; this reader understands version 5"),
        (start_json(schema="5"), "schema version '5'"),
        (start_json(schema=True), "schema version True"),
        (start_json(stream="ABC"), "'stream' must be 32 lowercase hex digits"),
        (start_json(stream=None), "'stream' must be 32 lowercase hex digits"),
        (start_json(seq=-1), "'seq' must be an integer"),
        (start_json(seq=True), "'seq' must be an integer"),
        (start_json(seq=1), "start message must have 'seq' 0"),
        (start_json(symbol=5), "'symbol' must be a string"),
        (start_json(clock="wall"), "'clock' must be one of"),
        (start_json(source=[]), "'source' must be an object"),
        (start_json(levels=0), r"'levels' must be an integer in \[1, 100\]"),
        (start_json(levels=101), r"'levels' must be an integer in \[1, 100\]"),
        (start_json(levels=...), r"'levels' must be an integer in \[1, 100\]"),
        (start_json(levels=1.0), r"'levels' must be an integer in \[1, 100\]"),
        (start_json(events=-1), r"'events' must be an integer"),
        (start_json(kind="events"), "'kind' must be 'start' or 'end'"),
        (start_json(kind="event"), "'kind' must be 'start' or 'end'"),
        (start_json(kind="end", events=...), "'events' must be an integer"),
        # event messages: the header
        (BATCH_MAGIC, "an event message of 4 bytes is shorter than its 48-byte header"),
        (header(schema=4), "schema version 4; this reader understands version 5"),
        (header(schema=6), "schema version 6; this reader understands version 5"),
        (header(reserved=1), "the reserved header fields of an event message must be 0"),
        (header(reserved_2=1), "the reserved header fields of an event message must be 0"),
        (header(seq=0), "its first seq in"),
        (header(seq=-1), "its first seq in"),
        (header(seq=2**63 - 1), "its first seq in"),
        (header(events=0), "holds at least 1 event"),
        (
            header(events=2),
            "an event message of 2 events, 1 updates, 1 trades and 0 ask levels beyond level 0 "
            "is 121 bytes, but it has 105",
        ),
        (header(updates=2**32 - 1), r"is \d+ bytes, but it has 105"),
        (header(trades=0), r"is 90 bytes, but it has 105"),
        (header(depth=MAX_LEVELS), "ask levels beyond level 0 must be at most 99"),
        (one() + b"\x00", "is 105 bytes, but it has 106"),
        (one()[:-1], "is 105 bytes, but it has 104"),
        # event messages: counts that do not add up
        (counts(0, 1), "event seq 1 has no venue update"),
        (counts(2, 1), "update and trade counts must add up"),
        (counts(1, 0), "update and trade counts must add up"),
    ],
)
def test_decode_refuses_what_it_does_not_understand(data, match):
    with pytest.raises(StreamError, match=match):
        decode(data)


NAN = np.nan


@pytest.mark.parametrize(
    ("columns", "match"),
    [
        ({"ts": np.array([5])}, "ts 5 ns is outside the years 2000-2099"),
        ({"ask_px": np.array([0.0])}, r"ask_px 0.0 is outside \(0, 9223372036\.8"),
        ({"ask_px": np.array([-0.0])}, r"ask_px -0.0 is outside"),
        ({"ask_px": np.array([np.inf])}, r"ask_px inf is outside"),
        ({"bid_px": np.array([-9.99])}, r"bid_px -9.99 is outside"),
        ({"bid_px": np.array([1e10])}, r"bid_px 10000000000.0 is outside"),
        ({"ask_sz": np.array([MAX_SIZE + 1])}, r"ask_sz 1000000001 is above 1000000000 shares"),
        ({"bid_sz": np.array([2**32 - 1])}, r"bid_sz 4294967295 is above"),
        ({"ask_px": np.array([NAN])}, r"ask_px nan with ask_sz 100: a side or level shows"),
        ({"bid_sz": np.array([0])}, r"bid_px 9.99 with bid_sz 0"),
        ({"bid_px": np.array([10.01])}, r"bid_px 10.01 above ask_px 10.0: a crossed quote"),
        ({"trade_px": np.array([-10.0])}, r"trade 0: trade price -10.0 is outside"),
        ({"trade_px": np.array([-np.inf])}, r"trade 0: trade price -inf is outside"),
        ({"trade_sz": np.array([MAX_SIZE + 1])}, r"trade 0: trade size 1000000001 is above"),
        ({"trade_side": np.array([2])}, "trade 0: trade side 2 is not -1, 0 or 1"),
        ({"trade_side": np.array([-2])}, "trade 0: trade side -2 is not -1, 0 or 1"),
    ],
)
def test_values_the_loader_refuses_are_named_by_seq_field_and_value(columns, match):
    data = one(seq=41, **columns)
    with pytest.raises(StreamError, match="^event seq 41 holds a value the CSV loader refuses: "):
        decode(data)
    with pytest.raises(StreamError, match=match):
        decode(data)


@pytest.mark.parametrize(
    ("px", "sz", "match"),
    [
        ([10.01, 10.0, NAN], [50, 20, 0], r"ask level 1 price 10.0 after level 0 price 10.01"),
        ([10.01, NAN, 10.05], [50, 0, 300], "ask level 2 price 10.05 after level 1 price nan"),
        ([NAN, 10.01, NAN], [0, 20, 0], "ask level 1 price 10.01 after level 0 price nan"),
        ([10.01, 10.02, NAN], [50, 0, 0], "ask level 1 price 10.02 with size 0"),
        ([10.01, NAN, NAN], [50, 5, 0], "ask level 1 price nan with size 5"),
        ([10.01, -10.02, NAN], [50, 5, 0], r"ask level 1 price -10.02 is outside \(0, "),
        ([10.01, 10.02, np.inf], [50, 5, 5], r"ask level 2 price inf is outside \(0, "),
        ([10.01, 10.02, NAN], [50, MAX_SIZE + 1, 0], r"ask level 1 size 1000000001 is above"),
    ],
)
def test_mbp10_ladders_the_loader_refuses_are_named(px, sz, match):
    """A ladder of three levels at update 1 of event seq 8 of a message of ten events."""
    rows = [
        (BASE_NS + i, [[2, 10.0, 1, 9.9, 1, [10.1], [1]], [9, 10.0, 1, 9.9, 1, [], []]], [])
        for i in range(10)
    ]
    events = columns_of_rows(rows, levels=3)
    ask_px, ask_sz = events.ask_px.copy(), events.ask_sz.copy()
    depth_px, depth_sz = events.depth_px.copy(), events.depth_sz.copy()
    row = 2 * 7 + 1
    ask_px[row], ask_sz[row], depth_px[row], depth_sz[row] = px[0], sz[0], px[1:], sz[1:]
    events = events._replace(ask_px=ask_px, ask_sz=ask_sz, depth_px=depth_px, depth_sz=depth_sz)
    data = encode_batch(SID, 1, events)
    with pytest.raises(StreamError, match=r"^event seq 8 holds .*: update 1 \(publisher_id 9\): "):
        decode(data)
    with pytest.raises(StreamError, match=match):
        decode(data)


def test_a_bad_value_deep_inside_a_large_message_names_its_event():
    """Event 7,337 (0-based) of 20,000 in a message from seq 100 (so seq 7,437) holds a crossed
    quote, event 9,000 a size too large (a rule checked before): the first event is named."""
    events = event_columns(small_updates(20_000))
    bid = events.bid_px.copy()
    bid[7_337] = events.ask_px[7_337] + 0.01
    size = events.ask_sz.copy()
    size[9_000] = MAX_SIZE + 1
    events = events._replace(bid_px=bid, ask_sz=size)
    data = encode_batch(SID, 100, events, max_bytes=10**7)
    pattern = r"^event seq 7437 holds .*: update 0 \(publisher_id 9\): bid_px 83.39000000000001 "
    with pytest.raises(StreamError, match=pattern):
        decode(data, max_bytes=len(data))


def test_size_is_checked_before_parsing():
    data = b"{" * 5000  # would be a JSON error, but is too large first
    with pytest.raises(StreamError, match="5000 bytes exceeds the limit of 4999 bytes"):
        decode(data, max_bytes=4999)
    data = one()
    with pytest.raises(StreamError, match=f"{len(data)} bytes exceeds the limit of 50 bytes"):
        decode(data, max_bytes=50)


def test_schema_version_is_five():
    """Version 5 sends event messages as columns; version 4's JSON event messages and every
    older version are refused."""
    assert SCHEMA_VERSION == 5
    assert json.loads(encode_end(SID, 1, 0))["schema"] == 5
    assert json.loads(encode_start(SID, symbol="A", clock="ts_event", events=0))["schema"] == 5
    assert struct.unpack_from("<H", one(), 4) == (5,)
    version_4 = {
        "schema": 4,
        "kind": "events",
        "stream": SID,
        "seq": 1,
        "count": 1,
        "events": [{"ts": 5, "updates": [[2, 10.0, 100, 9.99, 200]], "trades": []}],
    }
    with pytest.raises(StreamError, match="schema version 4; this reader understands version 5"):
        decode(json.dumps(version_4).encode())


GOOD_PRICES = [NAN, 10.0, 10.01, 10.02, 222.83, MAX_PRICE, 5e-324]
#: Values that break a rule alone or beside the others (a crossed quote, a ladder out of
#: order, a price without a size), per kind of column.
BAD = {
    "px": [NAN, 0.0, -0.0, -1.0, np.inf, -np.inf, MAX_PRICE * 2, 9.0, 10.015, 300.0, 5e-324],
    "sz": [0, 1, MAX_SIZE, MAX_SIZE + 1, 2**32 - 1],
    "ts": [5, 2**62],
    "side": [-2, 2, 127, 0],
}
COLUMN_KIND = {
    "ts": "ts",
    "ask_px": "px",
    "bid_px": "px",
    "depth_px": "px",
    "trade_px": "px",
    "ask_sz": "sz",
    "bid_sz": "sz",
    "depth_sz": "sz",
    "trade_sz": "sz",
    "trade_side": "side",
}


@st.composite
def event_messages(draw, good: bool) -> EventColumns:
    """Columns of 1-6 events of 1-3 updates and 0-2 trades each, 1, 3 or 10 ask levels, with
    values the loader accepts; unless `good`, then 0-3 values replaced by values from `BAD`."""
    levels = draw(st.sampled_from([1, 3, 10]))
    n = draw(st.integers(1, 6))
    n_updates = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    n_trades = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
    u, m = sum(n_updates), sum(n_trades)
    sizes = [1, 100, MAX_SIZE]

    def column(pool, count, dtype):
        return np.array(
            draw(st.lists(st.sampled_from(pool), min_size=count, max_size=count)), dtype
        )

    def side(count, width=1):
        px = column(GOOD_PRICES, count * width, "<f8").reshape(count, width)
        sz = column(sizes, count * width, "<u4").reshape(count, width)
        px.sort(axis=1)  # NaN last: empty levels after the shown ones, in price order
        sz[np.isnan(px)] = 0
        return px, sz

    ask_px, ask_sz = side(u, levels)
    bid_px, bid_sz = side(u)
    bid_px[bid_px > ask_px[:, :1]] = NAN  # no crossed quote
    bid_sz[np.isnan(bid_px)] = 0
    events = EventColumns(
        ts=np.array(BASE_NS + np.arange(n) * draw(st.integers(1, 10**9)), "<i8"),
        ask_px=ask_px[:, 0].copy(),
        bid_px=bid_px[:, 0].copy(),
        depth_px=ask_px[:, 1:].copy(),
        trade_px=column(GOOD_PRICES, m, "<f8"),
        n_updates=np.array(n_updates, "<u4"),
        n_trades=np.array(n_trades, "<u4"),
        ask_sz=ask_sz[:, 0].copy(),
        bid_sz=bid_sz[:, 0].copy(),
        depth_sz=ask_sz[:, 1:].copy(),
        trade_sz=column(sizes, m, "<u4"),
        venue=column([0, 2, 65535], u, "<u2"),
        trade_venue=column([0, 9, 65535], m, "<u2"),
        trade_side=column([-1, 0, 1], m, "i1"),
    )
    if good:
        return events
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([*sorted(COLUMN_KIND), "crossed", "ladder"]))
        if name == "ladder":  # a level shown below the level before it
            if levels == 1:
                continue
            row, k = draw(st.integers(0, u - 1)), draw(st.integers(0, levels - 2))
            depth_px, depth_sz = events.depth_px.copy(), events.depth_sz.copy()
            before = events.ask_px[row] if k == 0 else depth_px[row, k - 1]
            depth_px[row, k], depth_sz[row, k] = before - 0.005, 1
            events = events._replace(depth_px=depth_px, depth_sz=depth_sz)
            continue
        if name == "crossed":  # a bid above the ask of its update, both shown
            row = draw(st.integers(0, u - 1))
            bid_px, bid_sz = events.bid_px.copy(), events.bid_sz.copy()
            bid_px[row], bid_sz[row] = events.ask_px[row] + draw(st.sampled_from([0.01, 0])), 1
            events = events._replace(bid_px=bid_px, bid_sz=bid_sz)
            continue
        values = getattr(events, name).copy()
        if values.size == 0:
            continue
        flat = values.reshape(-1)
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(BAD[COLUMN_KIND[name]]))
        events = events._replace(**{name: values})
    return events


def as_updates(events: EventColumns):
    builder = UpdatesBuilder(events.levels)
    builder.add(events)
    return builder.build("X")


@pytest.mark.parametrize("small_values", [messages.SMALL_VALUES, 0], ids=["python", "numpy"])
@settings(max_examples=300, deadline=None)
@given(events=event_messages(good=False))
def test_decode_refuses_exactly_what_the_loader_refuses(small_values, events):
    """The checks of an event message, the plain Python ones of a small message and the numpy
    ones (every message with `SMALL_VALUES` 0), and the loader's rules (`updates_problem`, what
    the producer checks) accept the same values."""
    refused = updates_problem(as_updates(events))
    data = encode_batch(SID, 1, events, max_bytes=10**6)
    saved, messages.SMALL_VALUES = messages.SMALL_VALUES, small_values
    try:
        if refused is None:
            assert same_columns(decode(data).events, events)
        else:
            with pytest.raises(StreamError, match="holds a value the CSV loader refuses"):
                decode(data)
    finally:
        messages.SMALL_VALUES = saved


@settings(max_examples=200, deadline=None)
@given(event_messages(good=True), st.integers(1, 2**40))
def test_encode_decode_round_trip(events, seq):
    """Good events travel bit for bit, rows and snapshots included."""
    assert updates_problem(as_updates(events)) is None
    message = decode(encode_batch(SID, seq, events, max_bytes=10**6))
    assert type(message) is Batch and message.seq == seq and message.stream_id == SID
    assert same_columns(message.events, events)
    again = columns_of_rows(event_rows(message.events), events.levels)
    assert same_columns(again, events)
    assert build_snapshots(as_updates(message.events)).equals(build_snapshots(as_updates(events)))
