"""The wire format: exact round trips, and a clear refusal of anything else (no broker needed)."""

from __future__ import annotations

import json
import struct
from typing import Literal, get_type_hints

import msgspec
import pytest

from sor.errors import StreamError
from sor.vocabulary import MAX_SIZE
from stream.messages import (
    SCHEMA_VERSION,
    End,
    Event,
    Start,
    decode,
    encode_end,
    encode_event,
    encode_start,
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


def event_bytes(**fields) -> bytes:
    """A version-2 event message as JSON, with `fields` replaced (`...` leaves a key out)."""
    body = {
        "schema": 2,
        "kind": "event",
        "stream": SID,
        "seq": 1,
        "ts": 5,
        "updates": [[2, 10.0, 100, 9.99, 200]],
        "trades": [[2, 10.0, 100, 1]],
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_event_roundtrip_is_bit_exact():
    updates = [[2, p, 100, None, 0] for p in AWKWARD_FLOATS] + [
        [2**31 - 1, None, 0, 1.5, 2**63 - 1]
    ]
    trades = [[9, p, 7, -1] for p in AWKWARD_FLOATS] + [[2**31 - 1, None, 10**9, 0], [0, 1.5, 0, 1]]
    ts = 2**63 - 1
    message = decode(encode_event(SID, 7, ts, updates, trades))
    rows = [tuple(u) for u in updates]  # decoded rows are tuples
    assert message == Event(SID, 7, ts, rows, [tuple(t) for t in trades])
    assert message.trade_volume == 7 * len(AWKWARD_FLOATS) + 10**9
    for (_, got, *_), want in zip(message.updates[:-1], AWKWARD_FLOATS, strict=True):
        assert struct.pack("<d", got) == struct.pack("<d", want)
    for (_, got, *_), want in zip(message.trades[:-2], AWKWARD_FLOATS, strict=True):
        assert struct.pack("<d", got) == struct.pack("<d", want)


def test_event_without_trades():
    message = decode(encode_event(SID, 1, 5, [[2, 10.0, 1, None, 0]], []))
    assert message.trades == [] and message.trade_volume == 0
    assert b'"trades":[]' in encode_event(SID, 1, 5, [[2, 10.0, 1, None, 0]], [])


def test_event_encoding_is_standard_json_with_exact_values():
    import numpy as np

    updates = [[2, p, 100, None, 0] for p in AWKWARD_FLOATS] + [[9, None, 0, 1e22, 7]]
    trades = [[2, p, 3, 1] for p in AWKWARD_FLOATS] + [[9, None, 0, 0], [5, 1e22, 1, -1]]
    encoded = encode_event(SID, 3, -5, updates, trades)
    body = json.loads(encoded)  # the standard library reads it: plain JSON, no NaN tokens
    assert body["updates"] == updates and body["trades"] == trades
    assert [struct.pack("<d", u[1]) for u in body["updates"][:-1]] == [
        struct.pack("<d", p) for p in AWKWARD_FLOATS
    ]
    # numpy scalars (a caller's arrays) are written as their values
    assert json.loads(encode_event(SID, 3, -5, [[2, np.float64(1.5), 1, None, 0]], []))[
        "updates"
    ] == [[2, 1.5, 1, None, 0]]


def test_start_and_end_roundtrip():
    source = {"file": "l1_day.csv", "rows_kept": 3, "venues": [2, 9]}
    start = decode(encode_start(SID, symbol="AAPL", clock="ts_recv", source=source))
    assert start == Start(SID, 0, "AAPL", "ts_recv", source)
    assert decode(encode_end(SID, 9, 8)) == End(SID, 9, 8)


def test_stream_ids_are_fresh_hex():
    a, b = new_stream_id(), new_stream_id()
    assert a != b and len(a) == 32 and int(a, 16) >= 0 and a == a.lower()


def test_encoding_refuses_bad_ids_clocks_and_sizes():
    with pytest.raises(StreamError, match="32 lowercase hex"):
        encode_start("not-an-id", symbol="A", clock="ts_event")
    with pytest.raises(StreamError, match="clock must be one of"):
        encode_start(SID, symbol="A", clock="wall")
    with pytest.raises(StreamError, match="exceeds the limit of 100 bytes"):
        encode_event(SID, 1, 5, [[2, 1.0, 1, 1.0, 1]] * 10, [], max_bytes=100)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (None, "empty record value"),
        (b"\x80\x04\x95\x00pickle", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b'"text"', "expected a JSON object"),
        (event_bytes(schema=1), "schema version 1; this reader understands version 2"),
        (event_bytes(schema=3), "schema version 3; this reader understands version 2"),
        (event_bytes(schema="2"), "schema version '2'"),
        (event_bytes(schema=True), "schema version True"),
        (event_bytes(stream="ABC"), "'stream' must be 32 lowercase hex digits"),
        (event_bytes(seq=-1), "'seq' must be an integer"),
        (event_bytes(seq=True), "'seq' must be an integer"),
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
        (event_bytes(kind="snapshot"), "'kind' must be 'start', 'event' or 'end'"),
        (event_bytes(updates=[]), "'updates' must be a non-empty list"),
        (event_bytes(updates={"2": 1}), "'updates' must be a non-empty list"),
        (event_bytes(updates=[[2, 10.0, 100, 9.99]]), "an update must be"),
        (event_bytes(updates=[[2, "10.0", 100, 9.99, 1]]), "an update must be"),
        (event_bytes(updates=[[2, 10.0, -1, 9.99, 1]]), "an update must be"),
        (event_bytes(updates=[[2, 10.0, True, 9.99, 1]]), "an update must be"),
        (event_bytes(updates=[[-2, 10.0, 1, 9.99, 1]]), "an update must be"),
        (event_bytes(updates=[[2, 10.0, 1, 9.99, 2**63]]), "an update must be"),
        (event_bytes().replace(b"10.0", b"1e999"), "number is infinity"),  # overflows a double
        (
            json.dumps(
                {
                    "schema": 2,
                    "kind": "start",
                    "stream": SID,
                    "seq": 1,
                    "symbol": "A",
                    "clock": "ts_event",
                    "source": {},
                }
            ).encode(),
            "start message must have 'seq' 0",
        ),
        (
            json.dumps(
                {
                    "schema": 2,
                    "kind": "start",
                    "stream": SID,
                    "seq": 0,
                    "symbol": 5,
                    "clock": "ts_event",
                    "source": {},
                }
            ).encode(),
            "'symbol' must be a string",
        ),
        (
            json.dumps({"schema": 2, "kind": "end", "stream": SID, "seq": 3}).encode(),
            "'events' must be an integer",
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


def test_schema_version_is_two():
    """Version 2 carries the trade prints; version 1 messages (trade_volume only) are refused."""
    assert SCHEMA_VERSION == 2
    assert json.loads(encode_end(SID, 1, 0))["schema"] == 2
    assert json.loads(encode_start(SID, symbol="A", clock="ts_event"))["schema"] == 2
    version_1 = json.dumps(
        {
            "schema": 1,
            "kind": "event",
            "stream": SID,
            "seq": 1,
            "ts": 5,
            "trade_volume": 421,
            "updates": [[2, 10.0, 100, 9.99, 200]],
        }
    ).encode()
    with pytest.raises(StreamError, match="schema version 1; this reader understands version 2 "):
        decode(version_1)


def test_event_with_trades_is_accepted():
    event = decode(event_bytes(trades=[[2, 10.0, 100, 1], [9, None, 0, -1], [3, 0.5, 7, 0]]))
    assert event.trades == [(2, 10.0, 100, 1), (9, None, 0, -1), (3, 0.5, 7, 0)]
    assert event.trade_volume == 107


@pytest.mark.parametrize("stream", [[1], {"a": 1}, 5, None, "ABC", "g" * 32])
def test_stream_id_of_any_json_type_is_refused_cleanly(stream):
    data = json.dumps({"schema": 2, "stream": stream, "seq": 0, "kind": "end", "events": 0})
    with pytest.raises(StreamError, match="'stream' must be 32 lowercase hex digits"):
        decode(data.encode())


def test_fast_and_checked_decoders_agree():
    """msgspec's C pass and the Python checks accept the same events, with the same result."""
    from stream import messages

    hints = get_type_hints(messages._WireEvent, include_extras=True)
    assert hints["schema"] == Literal[messages.SCHEMA_VERSION]
    cases = [
        event_bytes(),
        event_bytes(trades=[]),
        event_bytes(updates=[[0, None, 0, None, 0], [2**31 - 1, -1.5, 2**63 - 1, 1e308, 1]]),
        event_bytes(trades=[[5, None, 10**9, 0]]),
        event_bytes(extra="ignored"),
    ]
    for data in cases[:-1]:
        assert messages._FAST_EVENT.decode(data)  # the fast path takes it
    for data in cases:
        assert decode(data) == messages._decode_checked(data)
    # extra fields go to the Python checks, which refuse what orjson refuses inside them
    good = event_bytes()
    for extra in (b'"x":1e999', b'"x":"\xff"', b'"x":' + b"[" * 1000 + b"]" * 1000):
        data = good[:-1] + b"," + extra + b"}"
        with pytest.raises(msgspec.DecodeError):
            messages._FAST_EVENT.decode(data)
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
        event_bytes(trades=[[2, 10.0, 10**9 + 1, 1]]),
        event_bytes(trades=[[2, 10.0, 1, 2]]),
        event_bytes(trades=...),
        event_bytes(schema=1),
        b'{"schema":2,"kind":"event","stream":"' + SID.encode() + b'","seq":1,"ts":5,'
        b'"updates":[[2,Infinity,1,null,0]],"trades":[]}',
    ]
    for data in refused:
        with pytest.raises(msgspec.DecodeError):
            messages._FAST_EVENT.decode(data)
        with pytest.raises(StreamError):
            decode(data)
