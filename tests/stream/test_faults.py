"""A broken topic, written message by message with a plain KafkaProducer, is refused clearly."""

from __future__ import annotations

import json
import struct
import time

import pytest

from sor.data.snapshots import build_snapshots
from sor.errors import StreamError
from stream.broker import free_port
from stream.consumer import consume_updates
from stream.events import split_events
from stream.messages import decode, encode_event
from stream.producer import produce
from tests.stream.helpers import KAFKA_PYTHON_WARNINGS, KEY, encoded_stream, small_updates

pytestmark = [pytest.mark.kafka, KAFKA_PYTHON_WARNINGS]


def consume(bootstrap, topic, **options):
    options.setdefault("idle_timeout_s", 5)
    options.setdefault("key", KEY)
    return consume_updates(bootstrap=bootstrap, topic=topic, **options)


def test_duplicate_is_dropped_and_counted(bootstrap, topic, write_raw):
    updates = small_updates()
    messages = encoded_stream(updates)
    write_raw(topic, [*messages[:3], messages[2], messages[0], *messages[3:]])
    consumed, report = consume(bootstrap, topic)
    assert report.duplicates == 2
    assert build_snapshots(consumed).equals(build_snapshots(updates))


def test_duplicate_seq_with_other_content_is_refused(bootstrap, topic, write_raw):
    messages = encoded_stream(small_updates())
    ts, rows, trades = list(split_events(small_updates()))[2]
    assert trades == [[9, 10.5, 40, 1]]
    forged = encode_event(decode(messages[0]).stream_id, 3, ts, rows, [[9, 10.5, 41, 1]], levels=2)
    assert forged != messages[3]
    write_raw(topic, [*messages[:4], forged, *messages[4:]])
    with pytest.raises(StreamError, match="repeats seq 3 .* different content"):
        consume(bootstrap, topic)


@pytest.mark.parametrize(
    ("drop", "missing"), [([2], "seq 2 missing"), ([2, 3, 4], r"seq 2\.\.4 missing")]
)
def test_gap_names_the_missing_range(bootstrap, topic, write_raw, drop, missing):
    messages = encoded_stream(small_updates())
    write_raw(topic, [m for i, m in enumerate(messages) if i not in drop])
    with pytest.raises(StreamError, match=missing):
        consume(bootstrap, topic)


def test_reordered_messages_are_refused(bootstrap, topic, write_raw):
    messages = encoded_stream(small_updates())
    messages[2], messages[3] = messages[3], messages[2]
    write_raw(topic, messages)
    with pytest.raises(StreamError, match="seq 2 missing or out of order"):
        consume(bootstrap, topic)


@pytest.mark.parametrize("version", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("where", ["start", "event message"])
def test_foreign_schema_version_is_refused(bootstrap, topic, write_raw, version, where):
    """Another version in the start message (JSON) or in an event message's header."""
    messages = encoded_stream(small_updates())
    if where == "start":
        messages[0] = messages[0].replace(b'"schema":5', b'"schema":%d' % version)
    else:
        messages[1] = messages[1][:4] + struct.pack("<H", version) + messages[1][6:]
    write_raw(topic, messages)
    match = f"offset {int(where != 'start')}: message has schema version {version}; this reader "
    with pytest.raises(StreamError, match=match + "understands version 5"):
        consume(bootstrap, topic)


def test_version_4_json_event_message_is_refused(bootstrap, topic, write_raw):
    """What a version-4 producer wrote inside a stream: a JSON event message."""
    messages = encoded_stream(small_updates())
    sid = decode(messages[0]).stream_id
    old = {"schema": 4, "kind": "events", "stream": sid, "seq": 1, "count": 1, "events": []}
    write_raw(topic, [messages[0], json.dumps(old).encode(), *messages[2:]])
    with pytest.raises(StreamError, match="schema version 4; this reader understands version 5"):
        consume(bootstrap, topic)


def test_event_not_fitting_the_declared_levels_is_refused(bootstrap, topic, write_raw):
    """An event carrying more ask levels than its stream's start message declares."""
    messages = encoded_stream(small_updates())  # two ask levels: one beyond level 0
    assert b'"levels":2' in messages[0]
    ts, rows, trades = next(split_events(small_updates()))
    assert rows == [[2, 10.01, 100, 10.0, 200, [10.02], [1]]]
    rows = [[2, 10.01, 100, 10.0, 200, [10.02, 10.03], [1, 1]]]
    messages[1] = encode_event(decode(messages[0]).stream_id, 1, ts, rows, trades, levels=3)
    write_raw(topic, messages)
    with pytest.raises(StreamError, match="carry 2 ask level.s. beyond level 0, not 1"):
        consume(bootstrap, topic)


def test_oversized_message_is_refused(bootstrap, topic, write_raw):
    messages = encoded_stream(small_updates())
    ts, rows, trades = next(split_events(small_updates()))
    messages[1] = encode_event(decode(messages[0]).stream_id, 1, ts, rows * 200, trades, levels=2)
    write_raw(topic, messages)
    with pytest.raises(StreamError, match=rf"{len(messages[1])} bytes exceeds the limit of 2000"):
        consume(bootstrap, topic, max_message_bytes=2000)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (b"\x80\x04\x95pickle", "not valid JSON"),
        (b'{"schema":1,"kind":"event"', "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b"SORB\x05\x00", "an event message of 6 bytes is shorter than its 48-byte header"),
        (
            b"SORB" + bytes(44),
            r"offset 1: message has schema version 0; this reader understands version 5",
        ),
    ],
)
def test_malformed_message_is_refused(bootstrap, topic, write_raw, value, match):
    messages = encoded_stream(small_updates())
    write_raw(topic, [messages[0], value, *messages[1:]])
    with pytest.raises(StreamError, match=match):
        consume(bootstrap, topic)


def test_interleaved_stream_is_refused(bootstrap, topic, write_raw):
    ours, other = encoded_stream(small_updates()), encoded_stream(small_updates())
    write_raw(topic, [*ours[:3], other[0], *ours[3:]])
    with pytest.raises(StreamError, match="interleaved"):
        consume(bootstrap, topic)


def test_wrong_event_count_in_end_message_is_refused(bootstrap, topic, write_raw):
    messages = encoded_stream(small_updates())
    end = json.loads(messages[-1])
    end["events"] += 1
    messages[-1] = json.dumps(end).encode()
    write_raw(topic, messages)
    with pytest.raises(StreamError, match="announces 7 events, but 6 arrived"):
        consume(bootstrap, topic)


def test_truncated_stream_times_out(bootstrap, topic, write_raw):
    messages = encoded_stream(small_updates())
    write_raw(topic, messages[:-2])
    started = time.monotonic()
    with pytest.raises(StreamError, match=r"truncated: no message for 2(\.0)? s after seq 5"):
        consume(bootstrap, topic, idle_timeout_s=2)
    assert 2 <= time.monotonic() - started < 10


def test_empty_topic_times_out_and_says_so(bootstrap, topic):
    with pytest.raises(StreamError, match="no start message .*the topic is empty"):
        consume(bootstrap, topic, idle_timeout_s=1)


def test_start_offset_inside_the_stream_is_refused(bootstrap, topic, write_raw):
    messages = encoded_stream(small_updates())
    stream_id = json.loads(messages[0])["stream"]
    write_raw(topic, messages)
    with pytest.raises(StreamError, match=r"before its start message: seq 0\.\.2 missing"):
        consume(bootstrap, topic, stream_id=stream_id, start_offset=3)


def test_broker_down_at_start_names_the_address(caplog):
    address = f"127.0.0.1:{free_port()}"
    secret = "hunter2-not-for-logs"
    security = {"sasl_plain_username": "alice", "sasl_plain_password": secret}
    started = time.monotonic()
    caplog.set_level("DEBUG")
    with pytest.raises(StreamError, match=f"cannot reach a Kafka broker at {address}") as info:
        produce(
            small_updates(),
            key=KEY,
            bootstrap=address,
            topic="t",
            progress=False,
            connect_timeout_s=1.0,
            security=security,
        )
    assert time.monotonic() - started < 10
    assert secret not in str(info.value) and secret not in caplog.text
    assert "attempt" in str(info.value)
