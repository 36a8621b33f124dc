"""The wire format: exact round trips, and a clear refusal of anything else (no broker needed)."""

from __future__ import annotations

import json
import struct
from typing import Literal, get_type_hints

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from sor.errors import StreamError
from sor.vocabulary import MAX_SIZE
from stream.messages import (
    MAX_LEVELS,
    MAX_PRICE,
    MAX_PUBLISHER_ID,
    SCHEMA_VERSION,
    End,
    Event,
    Events,
    Start,
    decode,
    encode_end,
    encode_event,
    encode_events,
    encode_start,
    event_fragment,
    new_stream_id,
)

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


def event_bytes(**fields) -> bytes:
    """A version-4 event message of one event as JSON, with `fields` replaced (`...` leaves a
    key out): `ts`, `updates` and `trades` those of the event, the others the message's."""
    body = {"schema": 4, "kind": "events", "stream": SID, "seq": 1, "count": 1}
    event = {"ts": 5, "updates": [[2, 10.0, 100, 9.99, 200]], "trades": [[2, 10.0, 100, 1]]}
    for key, value in fields.items():
        (event if key in event else body)[key] = value
    body = {k: v for k, v in body.items() if v is not ...}
    body.setdefault("events", [{k: v for k, v in event.items() if v is not ...}])
    return json.dumps(body).encode()


def one_event(data: bytes) -> Event:
    """The one event of the event message `data`."""
    message = decode(data)
    assert type(message) is Events and len(message.events) == 1
    return message.events[0]


def depth_bytes(*updates) -> bytes:
    """`event_bytes` with updates of an ask ladder: [venue, ask_px, ask_sz, bid_px, bid_sz,
    [px_1, ...], [sz_1, ...]] (default: one update showing three levels)."""
    return event_bytes(updates=list(updates) or [[2, 10.0, 100, 9.99, 200, [10.01, 10.01], [5, 7]]])


def test_event_roundtrip_is_bit_exact():
    updates = [[2, p, 100, None, 0] for p in QUOTE_FLOATS] + [
        [MAX_PUBLISHER_ID, None, 0, MAX_PRICE, MAX_SIZE]
    ]
    trades = [[9, p, 7, -1] for p in QUOTE_FLOATS] + [
        [MAX_PUBLISHER_ID, None, 10**9, 0],
        [0, 1.5, 0, 1],
    ]
    ts = 2**63 - 1
    message = one_event(encode_event(SID, 7, ts, updates, trades))
    rows = [tuple(u) for u in updates]  # decoded rows are tuples
    assert message == Event(SID, 7, ts, rows, [tuple(t) for t in trades])
    assert message.trade_volume == 7 * len(QUOTE_FLOATS) + 10**9
    for (_, got, *_), want in zip(message.updates[:-1], QUOTE_FLOATS, strict=True):
        assert struct.pack("<d", got) == struct.pack("<d", want)
    for (_, got, *_), want in zip(message.trades[:-2], QUOTE_FLOATS, strict=True):
        assert struct.pack("<d", got) == struct.pack("<d", want)


def test_several_events_in_one_message_roundtrip():
    """An event message carries consecutive events, numbered from its seq."""
    events = [
        (5, [[2, 10.0, 1, None, 0]], []),
        (6, [[9, None, 0, 9.5, 3], [2, 10.5, 2, 10.0, 1]], [[9, 10.5, 4, 1]]),
        (9, [[2, 11.0, 1, None, 0]], [[2, None, 1, 0]]),
    ]
    data = encode_events(SID, 4, [event_fragment(*e) for e in events])
    expected = Events(
        SID,
        4,
        [
            Event(SID, 4 + i, ts, [tuple(u) for u in ups], [tuple(t) for t in trs])
            for i, (ts, ups, trs) in enumerate(events)
        ],
    )
    assert decode(data) == expected == messages_checked(data)
    body = json.loads(data)
    assert (body["kind"], body["seq"], body["count"], len(body["events"])) == ("events", 4, 3, 3)


def test_event_with_ask_levels_roundtrip_is_bit_exact():
    """Levels beyond level 0 come back as written: floats bit-exact, lists in order."""
    ladder = sorted(QUOTE_FLOATS)
    updates = [
        [2, ladder[0], 1, None, 0, ladder[1:], list(range(1, len(ladder)))],
        [9, None, 0, 1.5, 3, [], []],  # an empty ask side shows no level
        [5, MAX_PRICE, MAX_SIZE, None, 0, [MAX_PRICE] * 9, [MAX_SIZE] * 9],
    ]
    message = one_event(encode_event(SID, 7, 5, updates, []))
    assert message == Event(SID, 7, 5, [tuple(u) for u in updates], [])
    assert message == messages_checked(encode_event(SID, 7, 5, updates, [])).events[0]
    for got, want in zip(message.updates[0][5], ladder[1:], strict=True):
        assert struct.pack("<d", got) == struct.pack("<d", want)
    assert type(message.updates[0][5]) is list and type(message.updates[0]) is tuple


def messages_checked(data: bytes):
    from stream import messages

    return messages._decode_checked(data)


def test_event_without_trades():
    message = one_event(encode_event(SID, 1, 5, [[2, 10.0, 1, None, 0]], []))
    assert message.trades == [] and message.trade_volume == 0
    assert b'"trades":[]' in encode_event(SID, 1, 5, [[2, 10.0, 1, None, 0]], [])


def test_event_encoding_is_standard_json_with_exact_values():
    import numpy as np

    updates = [[2, p, 100, None, 0] for p in AWKWARD_FLOATS] + [[9, None, 0, 1e22, 7]]
    trades = [[2, p, 3, 1] for p in AWKWARD_FLOATS] + [[9, None, 0, 0], [5, 1e22, 1, -1]]
    encoded = encode_event(SID, 3, -5, updates, trades)
    # the standard library reads it: plain JSON, no NaN tokens
    body = json.loads(encoded)["events"][0]
    assert body["updates"] == updates and body["trades"] == trades
    assert [struct.pack("<d", u[1]) for u in body["updates"][:-1]] == [
        struct.pack("<d", p) for p in AWKWARD_FLOATS
    ]
    # numpy scalars (a caller's arrays) are written as their values
    assert json.loads(encode_event(SID, 3, -5, [[2, np.float64(1.5), 1, None, 0]], []))["events"][
        0
    ]["updates"] == [[2, 1.5, 1, None, 0]]


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
    with pytest.raises(StreamError, match="exceeds the limit of 100 bytes"):
        encode_event(SID, 1, 5, [[2, 1.0, 1, 1.0, 1]] * 10, [], max_bytes=100)
    for levels in (0, MAX_LEVELS + 1, True, 2.0):
        with pytest.raises(StreamError, match=r"levels must be an integer in \[1, 100\]"):
            encode_start(SID, symbol="A", clock="ts_event", levels=levels, events=0)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (None, "empty record value"),
        (b"\x80\x04\x95\x00pickle", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b'"text"', "expected a JSON object"),
        (event_bytes(schema=1), "schema version 1; this reader understands version 4"),
        (event_bytes(schema=2), "schema version 2; this reader understands version 4"),
        (event_bytes(schema=3), "schema version 3; this reader understands version 4"),
        (event_bytes(schema=5), "schema version 5; this reader understands version 4"),
        (event_bytes(schema="4"), "schema version '4'"),
        (event_bytes(schema=True), "schema version True"),
        (event_bytes(stream="ABC"), "'stream' must be 32 lowercase hex digits"),
        (event_bytes(seq=-1), "'seq' must be an integer"),
        (event_bytes(seq=True), "'seq' must be an integer"),
        (event_bytes(seq=0), r"'seq' of 1 events must be in \[1, "),
        (event_bytes(seq=2**63 - 1), r"'seq' of 1 events must be in \[1, "),
        (event_bytes(count=2), "'count' must be the number of events listed, 1"),
        (event_bytes(count=0), r"'count' must be an integer in \[1, "),
        (event_bytes(count=...), r"'count' must be an integer in \[1, "),
        (event_bytes(count=True), r"'count' must be an integer in \[1, "),
        (event_bytes(events=[]), "'events' must be a non-empty list of events"),
        (event_bytes(events={"ts": 5}), "'events' must be a non-empty list of events"),
        (event_bytes(events=[[5, [[2, 10.0, 1, None, 0]], []]]), "an event must be an object"),
        (
            event_bytes().replace(b'"trades"', b'"x": 1, "trades"'),
            "an event has only 'ts', 'updates' and 'trades'",
        ),
        (
            encode_events(
                SID,
                1,
                [
                    event_fragment(5, [[2, 10.0, 1, None, 0]], []),
                    event_fragment(6, [[2, 10.0, 1, None, 0, [], []]], []),
                ],
            ),
            "every event of a message must have updates of one layout",
        ),
        (event_bytes(ts=1.5), "'ts' must be an integer"),
        (event_bytes(ts=2**63), "'ts' must be an integer"),
        (event_bytes(trades=None), "'trades' must be a list"),
        (event_bytes(trades={"2": 1}), "'trades' must be a list"),
        (event_bytes(trades="[]"), "'trades' must be a list"),
        (event_bytes(trades=0), "'trades' must be a list"),
        (event_bytes(trades=[[2, 10.0, 100]]), "a trade must be"),
        (event_bytes(trades=[[2, 10.0, 100, 1, 0]]), "a trade must be"),
        (event_bytes(trades=[(2, 10.0, 100, 1), 5]), "a trade must be"),
        (event_bytes(trades=[{"venue": 2}]), "a trade must be"),
        (event_bytes(trades=[[2, "10.0", 100, 1]]), "a trade must be"),
        (event_bytes(trades=[[2, True, 100, 1]]), "a trade must be"),
        (event_bytes(trades=[[2, 10.0, -1, 1]]), "a trade must be"),
        (event_bytes(trades=[[2, 10.0, 100.0, 1]]), "a trade must be"),
        (event_bytes(trades=[[2, 10.0, False, 1]]), "a trade must be"),
        (event_bytes(trades=[[2, 10.0, MAX_SIZE + 1, 1]]), r"size in \[0, 1000000000\]"),
        (event_bytes(trades=[[2, 10.0, 2**64, 1]]), "a trade must be"),
        (event_bytes(trades=[[-2, 10.0, 100, 1]]), "a trade must be"),
        (event_bytes(trades=[[2**31, 10.0, 100, 1]]), "a trade must be"),
        (
            event_bytes(trades=[[MAX_PUBLISHER_ID + 1, 10.0, 100, 1]]),
            r"publisher_id in \[0, 65535\]",
        ),
        # trade prices bounded as the loader bounds them (version 4)
        (event_bytes(trades=[[2, -10.0, 100, 1]]), r"a price in \(0, 9223372036\.8"),
        (event_bytes(trades=[[2, 0.0, 100, 1]]), "a trade must be"),
        (event_bytes(trades=[[2, -0.0, 100, 1]]), "a trade must be"),
        (event_bytes(trades=[[2, 1e10, 100, 1]]), "a trade must be"),
        (event_bytes(trades=[[2.0, 10.0, 100, 1]]), "a trade must be"),
        (event_bytes(trades=[[None, 10.0, 100, 1]]), "a trade must be"),
        (event_bytes(trades=[[2, 10.0, 100, 2]]), "side -1, 0 or 1"),
        (event_bytes(trades=[[2, 10.0, 100, -2]]), "a trade must be"),
        (event_bytes(trades=[[2, 10.0, 100, "B"]]), "a trade must be"),
        (event_bytes(trades=[[2, 10.0, 100, True]]), "a trade must be"),
        (event_bytes(trades=[[2, 10.0, 100, None]]), "a trade must be"),
        (event_bytes(trades=[[2, 10.0, 100, 1], [2, 10.0, 100, 1.0]]), "a trade must be"),
        (event_bytes(trades=[[2, "INF", 100, 1]]).replace(b'"INF"', b"1e999"), "is infinity"),
        (event_bytes(trades=...), "'trades' must be a list"),  # no trades key
        (event_bytes(kind="snapshot"), "'kind' must be 'start', 'events' or 'end'"),
        (event_bytes(kind="event"), "'kind' must be 'start', 'events' or 'end'"),
        (event_bytes(updates=[]), "'updates' must be a non-empty list"),
        (event_bytes(updates={"2": 1}), "'updates' must be a non-empty list"),
        (event_bytes(updates=[[2, 10.0, 100, 9.99]]), "an update must be"),
        (event_bytes(updates=[[2, "10.0", 100, 9.99, 1]]), "an update must be"),
        (event_bytes(updates=[[2, 10.0, -1, 9.99, 1]]), "an update must be"),
        (event_bytes(updates=[[2, 10.0, True, 9.99, 1]]), "an update must be"),
        (event_bytes(updates=[[-2, 10.0, 1, 9.99, 1]]), "an update must be"),
        (event_bytes(updates=[[2, 10.0, 1, 9.99, 2**63]]), "an update must be"),
        (event_bytes(updates=[[MAX_PUBLISHER_ID + 1, 10.0, 1, 9.99, 1]]), "an update must be"),
        # quote prices and sizes within the loader's bounds (version 3)
        (event_bytes(updates=[[2, 0.0, 1, 9.99, 1]]), r"a price in \(0, 9223372036\.8"),
        (event_bytes(updates=[[2, 10.0, 1, -9.99, 1]]), "an update must be"),
        (event_bytes(updates=[[2, 10.0, 1, -0.0, 1]]), "an update must be"),
        (event_bytes(updates=[[2, 1e10, 1, 9.99, 1]]), "an update must be"),
        (event_bytes(updates=[[2, 10.0, MAX_SIZE + 1, 9.99, 1]]), r"a size in \[0, 1000000000\]"),
        (event_bytes(updates=[[2, 10.0, 1, 9.99, MAX_SIZE + 1]]), "an update must be"),
        # the ask levels beyond level 0
        (event_bytes(updates=[[2, 10.0, 1, 9.99, 1, [10.1]]]), "an update must be"),
        (event_bytes(updates=[[2, 10.0, 1, 9.99, 1, [10.1], [1], [1]]]), "an update must be"),
        (
            event_bytes(updates=[[2, 10.0, 1, 9.99, 1, [10.1], [1]], [2, 10.0, 1, 9.99, 1]]),
            "every update of an event must be a list of 7 like the first",
        ),
        (
            event_bytes(updates=[[2, 10.0, 1, 9.99, 1], [2, 10.0, 1, 9.99, 1, [], []]]),
            "every update of an event must be a list of 5 like the first",
        ),
        (depth_bytes([2, 10.0, 1, 9.99, 1, [10.1, 10.2], [1]]), "two lists of one length"),
        (depth_bytes([2, 10.0, 1, 9.99, 1, [10.1], [0]]), r"a size in \[1, 1000000000\]"),
        (depth_bytes([2, 10.0, 1, 9.99, 1, [10.1], [1.0]]), "two lists of one length"),
        (depth_bytes([2, 10.0, 1, 9.99, 1, [10.1], [True]]), "two lists of one length"),
        (depth_bytes([2, 10.0, 1, 9.99, 1, [None], [1]]), "two lists of one length"),
        (depth_bytes([2, 10.0, 1, 9.99, 1, [0.0], [1]]), "two lists of one length"),
        (depth_bytes([2, 10.0, 1, 9.99, 1, ["10.1"], [1]]), "two lists of one length"),
        (depth_bytes([2, 10.0, 1, 9.99, 1, (10.1,), {"1": 1}]), "two lists of one length"),
        (depth_bytes([2, 10.0, 1, 9.99, 1, 10.1, 1]), "two lists of one length"),
        (depth_bytes([2, None, 0, 9.99, 1, [10.1], [1]]), "shown after an empty level 0"),
        (depth_bytes([2, 10.0, 0, 9.99, 1, [10.1], [1]]), "shown after an empty level 0"),
        (depth_bytes([2, 10.0, 1, 9.99, 1, [9.9], [1]]), "non-decreasing price order"),
        (depth_bytes([2, 10.0, 1, 9.99, 1, [10.2, 10.1], [1, 1]]), "non-decreasing price order"),
        (event_bytes().replace(b"10.0", b"1e999"), "number is infinity"),  # overflows a double
        (
            json.dumps(
                {
                    "schema": 4,
                    "kind": "start",
                    "stream": SID,
                    "seq": 1,
                    "symbol": "A",
                    "clock": "ts_event",
                    "levels": 1,
                    "source": {},
                }
            ).encode(),
            "start message must have 'seq' 0",
        ),
        (
            json.dumps(
                {
                    "schema": 4,
                    "kind": "start",
                    "stream": SID,
                    "seq": 0,
                    "symbol": 5,
                    "clock": "ts_event",
                    "levels": 1,
                    "source": {},
                }
            ).encode(),
            "'symbol' must be a string",
        ),
        (
            json.dumps({"schema": 4, "kind": "end", "stream": SID, "seq": 3}).encode(),
            "'events' must be an integer",
        ),
        *(
            (
                json.dumps(
                    {
                        "schema": 4,
                        "kind": "start",
                        "stream": SID,
                        "seq": 0,
                        "symbol": "A",
                        "clock": "ts_event",
                        "source": {},
                        **({} if levels is ... else {"levels": levels}),
                    }
                ).encode(),
                r"'levels' must be an integer in \[1, 100\]",
            )
            for levels in (..., 0, 101, True, 1.0, "10", None)
        ),
    ],
)
def test_decode_refuses_what_it_does_not_understand(data, match):
    with pytest.raises(StreamError, match=match):
        decode(data)


def test_size_is_checked_before_parsing():
    data = b"{" * 5000  # would be a JSON error, but is too large first
    with pytest.raises(StreamError, match="5000 bytes exceeds the limit of 4999 bytes"):
        decode(data, max_bytes=4999)


def test_schema_version_is_four():
    """Version 4 carries several events per message and the event count in the start message;
    versions 1 to 3 (one event per message) are refused."""
    assert SCHEMA_VERSION == 4
    assert json.loads(encode_end(SID, 1, 0))["schema"] == 4
    assert json.loads(encode_start(SID, symbol="A", clock="ts_event", events=0))["schema"] == 4
    assert json.loads(encode_event(SID, 1, 5, [[2, 1.0, 1, None, 0]], []))["schema"] == 4
    version_3 = [
        json.dumps(
            {
                "schema": 3,
                "kind": "start",
                "stream": SID,
                "seq": 0,
                "symbol": "A",
                "clock": "ts_event",
                "levels": 1,
                "source": {},
            }
        ).encode(),
        json.dumps(
            {
                "schema": 3,
                "kind": "event",
                "stream": SID,
                "seq": 1,
                "ts": 5,
                "updates": [[2, 10.0, 100, 9.99, 200]],
                "trades": [],
            }
        ).encode(),
        json.dumps({"schema": 3, "kind": "end", "stream": SID, "seq": 2, "events": 1}).encode(),
    ]
    for message in version_3:
        with pytest.raises(
            StreamError, match="schema version 3; this reader understands version 4"
        ):
            decode(message)


def test_event_with_trades_is_accepted():
    event = one_event(event_bytes(trades=[[2, 10.0, 100, 1], [9, None, 0, -1], [3, 0.5, 7, 0]]))
    assert event.trades == [(2, 10.0, 100, 1), (9, None, 0, -1), (3, 0.5, 7, 0)]
    assert event.trade_volume == 107


@pytest.mark.parametrize("stream", [[1], {"a": 1}, 5, None, "ABC", "g" * 32])
def test_stream_id_of_any_json_type_is_refused_cleanly(stream):
    data = json.dumps({"schema": 4, "stream": stream, "seq": 0, "kind": "end", "events": 0})
    with pytest.raises(StreamError, match="'stream' must be 32 lowercase hex digits"):
        decode(data.encode())


def fast_takes(data: bytes) -> bool:
    """Whether msgspec's pass alone takes `data` (either layout, then the ladder's order)."""
    from stream import messages

    for decoder in (messages._FAST_EVENTS, messages._FAST_DEPTH_EVENTS):
        try:
            wire = decoder.decode(data)
        except msgspec.DecodeError:
            continue
        return wire.count == len(wire.events) and (
            type(wire) is messages._WireEvents or messages._depth_ok(wire)
        )
    return False


def test_fast_and_checked_decoders_agree():
    """msgspec's C pass and the Python checks accept the same events, with the same result."""
    from stream import messages

    for wire in (messages._WireEvents, messages._WireDepthEvents):
        hints = get_type_hints(wire, include_extras=True)
        assert hints["schema"] == Literal[messages.SCHEMA_VERSION]
    cases = [
        event_bytes(),
        event_bytes(trades=[]),
        event_bytes(
            updates=[[0, None, 0, None, 0], [MAX_PUBLISHER_ID, 5e-324, MAX_SIZE, MAX_PRICE, 1]]
        ),
        event_bytes(updates=[[2, 10, 1, 9, 1]]),  # integer prices
        event_bytes(updates=[[2, 10.0, 0, None, 7]]),  # a price with size 0: no quote, as read
        event_bytes(trades=[[5, None, 10**9, 0]]),
        depth_bytes(),
        depth_bytes(
            [0, None, 0, None, 0, [], []],
            [
                MAX_PUBLISHER_ID,
                5e-324,
                MAX_SIZE,
                MAX_PRICE,
                1,
                [5e-324, 1, MAX_PRICE],
                [1, MAX_SIZE, 1],
            ],
            [2, 10, 1, None, 0, [10, 10.5, 10.5], [1, 2, 3]],
            [2, 10.0, 0, None, 0, [], []],
        ),
        event_bytes(extra="ignored"),
        depth_bytes()[:-1] + b',"extra":[1]}',
    ]
    for data in cases:
        assert decode(data) == messages._decode_checked(data)
        assert fast_takes(data) == (b"extra" not in data)  # the fast path takes it
    # A stream keeps one layout, but decode takes both in any order.
    for data in (depth_bytes(), event_bytes(), event_bytes(), depth_bytes(), event_bytes()):
        assert decode(data) == messages._decode_checked(data)
    # extra fields go to the Python checks, which refuse what orjson refuses inside them
    for good in (event_bytes(), depth_bytes()):
        for extra in (b'"x":1e999', b'"x":"\xff"', b'"x":' + b"[" * 1000 + b"]" * 1000):
            data = good[:-1] + b"," + extra + b"}"
            assert not fast_takes(data)
            try:
                expected = messages._decode_checked(data)
            except StreamError:
                with pytest.raises(StreamError):
                    decode(data)
            else:
                assert decode(data) == expected
    refused = [
        event_bytes(seq=True),
        event_bytes(seq=1.0),
        event_bytes(ts=2**63),
        event_bytes(stream="A" * 32),
        event_bytes(stream=SID + "\n"),
        event_bytes(updates=[]),
        event_bytes(updates=[[2, 10.0, 100, 9.99]]),
        event_bytes(updates=[[2, "10.0", 100, 9.99, 1]]),
        event_bytes(updates=[[-1, 10.0, 100, 9.99, 1]]),
        event_bytes(updates=[[2, 0.0, 100, 9.99, 1]]),
        event_bytes(updates=[[2, 10.0, 100, -9.99, 1]]),
        event_bytes(updates=[[2, 10.0, 100, 1e10, 1]]),
        event_bytes(updates=[[2, 10.0, MAX_SIZE + 1, 9.99, 1]]),
        event_bytes(updates=[[2, 10.0, 1, 9.99, 1, [10.1], [1]], [2, 10.0, 1, 9.99, 1]]),
        event_bytes(updates=[[2, 10.0, 1, 9.99, 1], [2, 10.0, 1, 9.99, 1, [10.1], [1]]]),
        event_bytes(updates=[[2, 10.0, 1, 9.99, 1, [10.1]]]),
        depth_bytes([2, 10.0, 1, 9.99, 1, [10.1, 10.2], [1]]),
        depth_bytes([2, 10.0, 1, 9.99, 1, [10.1], [1, 1]]),
        depth_bytes([2, 10.0, 1, 9.99, 1, [9.9], [1]]),
        depth_bytes([2, 10.0, 1, 9.99, 1, [10.2, 10.1], [1, 1]]),
        depth_bytes([2, None, 0, 9.99, 1, [10.1], [1]]),
        depth_bytes([2, 10.0, 0, 9.99, 1, [10.1], [1]]),
        depth_bytes([2, 10.0, 1, 9.99, 1, [10.1], [0]]),
        depth_bytes([2, 10.0, 1, 9.99, 1, [None], [1]]),
        depth_bytes([2, 10.0, 1, 9.99, 1, [-10.1], [1]]),
        depth_bytes([2, 10.0, 1, 9.99, 1, [10.1], [MAX_SIZE + 1]]),
        depth_bytes([2, 10.0, 1, 9.99, 1, [10.1], [1.0]]),
        event_bytes(trades=[[2, 10.0, 10**9 + 1, 1]]),
        event_bytes(trades=[[2, 10.0, 1, 2]]),
        event_bytes(trades=...),
        event_bytes(schema=1),
        event_bytes(schema=2),
        b'{"schema":4,"kind":"events","stream":"' + SID.encode() + b'","seq":1,"count":1,'
        b'"events":[{"ts":5,"updates":[[2,Infinity,1,null,0]],"trades":[]}]}',
        event_bytes(count=2),
        event_bytes(seq=0),
        event_bytes(updates=[[MAX_PUBLISHER_ID + 1, 10.0, 100, 9.99, 1]]),
        event_bytes(trades=[[2, -10.0, 100, 1]]),
        event_bytes(trades=[[2, 0.0, 100, 1]]),
        event_bytes(trades=[[2, MAX_PRICE * 2, 100, 1]]),
    ]
    for data in refused:
        assert not fast_takes(data)
        with pytest.raises(StreamError):
            decode(data)


_NUMBERS = [0, 1, 10, 2**31, 2**63, 0.0, -0.0, 5e-324, 9.99, 10.0, 10.01, MAX_PRICE, 1e10]
_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(_NUMBERS + [-n for n in _NUMBERS] + [MAX_SIZE, MAX_SIZE + 1, "1", 1.5]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**64), 2**64),
)
_GOOD_PX = st.sampled_from([5e-324, 9.99, 10, 10.0, 10.01, 11, MAX_PRICE])
_GOOD_SZ = st.sampled_from([1, 7, MAX_SIZE])


@st.composite
def _updates(draw) -> list:
    """An event's updates of one layout (5 fields, or 7 with the levels beyond 0) with values
    in bounds but ladders in any order and of any lengths; now and then one field, or one
    level, is anything at all, or an update has another length."""
    width = draw(st.sampled_from([5, 7]))
    updates = []
    for _ in range(draw(st.integers(1, 3))):
        update = [
            draw(st.sampled_from([0, 2, 9, MAX_PUBLISHER_ID])),
            draw(st.one_of(st.none(), _GOOD_PX)),
            draw(st.one_of(st.just(0), _GOOD_SZ)),
            draw(st.one_of(st.none(), _GOOD_PX)),
            draw(st.one_of(st.just(0), _GOOD_SZ)),
        ]
        if width == 7:
            ordered = st.lists(_GOOD_PX, max_size=3).map(sorted)
            prices = draw(st.one_of(ordered, ordered, st.lists(_GOOD_PX, max_size=3)))
            n = draw(st.one_of(st.just(len(prices)), st.just(len(prices)), st.integers(0, 3)))
            update += [prices, draw(st.lists(_GOOD_SZ, min_size=n, max_size=n))]
        updates.append(update)
    damaged = draw(st.sampled_from(updates))
    how = draw(st.sampled_from(["none", "none", "field", "level", "length"]))
    if how == "field":
        damaged[draw(st.integers(0, len(damaged) - 1))] = draw(_ANY)
    elif how == "level" and width == 7 and (levels := damaged[draw(st.sampled_from([5, 6]))]):
        levels[draw(st.integers(0, len(levels) - 1))] = draw(_ANY)
    elif how == "length":
        del damaged[draw(st.integers(4, len(damaged))) :]
        damaged += [[]] * draw(st.integers(0, 3))
    return updates


@settings(max_examples=2000, deadline=None, database=None)
@given(updates=_updates())
def test_fast_and_checked_decoders_agree_on_any_updates(updates):
    """Random updates, ask levels beyond level 0 included: the two decoders accept the same
    ones with the same result, and refuse the same ones."""
    from stream import messages

    try:
        data = event_bytes(updates=updates)
    except (TypeError, ValueError):  # json cannot write it
        return
    try:
        expected = messages._decode_checked(data)
    except StreamError:
        event("refused")
        assert not fast_takes(data), data
        with pytest.raises(StreamError):
            decode(data)
        return
    event(f"accepted, updates of {len(expected.events[0].updates[0])}")
    assert fast_takes(data), data
    assert decode(data) == expected
