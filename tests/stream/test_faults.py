"""A broken topic, written message by message with a plain KafkaProducer, is refused clearly."""

from __future__ import annotations

import json
import time

import pytest

from sor.data.snapshots import build_snapshots
from sor.errors import StreamError
from stream.broker import free_port
from stream.consumer import consume_updates
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
    forged = messages[3].replace(b'"trades":[[9,10.5,40,1]]', b'"trades":[[9,10.5,41,1]]')
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


@pytest.mark.parametrize("version", [1, 2, 3])
def test_foreign_schema_version_is_refused(bootstrap, topic, write_raw, version):
    messages = encoded_stream(small_updates())
    messages[1] = messages[1].replace(b'"schema":4', b'"schema":%d' % version)
    write_raw(topic, messages)
    match = f"schema version {version}; this reader understands version 4"
    with pytest.raises(StreamError, match=match):
        consume(bootstrap, topic)


def test_event_not_fitting_the_declared_levels_is_refused(bootstrap, topic, write_raw):
    """An event carrying more ask levels than its stream's start message declares."""
    messages = encoded_stream(small_updates())  # two ask levels: one beyond level 0
    assert b'"levels":2' in messages[0] and b",[10.02],[1]]" in messages[1]
    messages[1] = messages[1].replace(b",[10.02],[1]]", b",[10.02,10.03],[1,1]]")
    write_raw(topic, messages)
    with pytest.raises(StreamError, match="at most 1 ask levels beyond level 0"):
        consume(bootstrap, topic)


def test_oversized_message_is_refused(bootstrap, topic, write_raw):
    messages = encoded_stream(small_updates())
    huge = json.loads(messages[1])
    huge["events"][0]["updates"] = huge["events"][0]["updates"] * 200
    messages[1] = json.dumps(huge).encode()
    write_raw(topic, messages)
    with pytest.raises(StreamError, match=rf"{len(messages[1])} bytes exceeds the limit of 2000"):
        consume(bootstrap, topic, max_message_bytes=2000)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (b"\x80\x04\x95pickle", "not valid JSON"),
        (b'{"schema":1,"kind":"event"', "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
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
