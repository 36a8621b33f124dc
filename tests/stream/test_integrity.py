"""Forged, unsigned, badly signed and truncated streams on a real broker: never read as data.

Each stream is written message by message with a plain KafkaProducer (`write_raw`), signed with
the tests' key unless said otherwise; a forger is anyone who can write to the topic but does not
hold the key, a key holder is a producer with a bug.
"""

from __future__ import annotations

import json
import threading

import pytest

from sor.data.snapshots import build_snapshots
from sor.errors import StreamError
from stream.consumer import consume_updates
from stream.events import split_events
from stream.messages import encode_end, encode_event
from stream.signing import HEADER, StreamKey
from tests.stream.helpers import (
    BASE_NS,
    KAFKA_PYTHON_WARNINGS,
    KEY,
    encoded_stream,
    forge_an_end_after_the_first_events,
    small_updates,
)

pytestmark = [pytest.mark.kafka, KAFKA_PYTHON_WARNINGS]

OTHER_KEY = StreamKey(b"another-key-of-somebody-else-42")


def consume(bootstrap, topic, **options):
    options.setdefault("idle_timeout_s", 5)
    options.setdefault("key", KEY)
    return consume_updates(bootstrap=bootstrap, topic=topic, **options)


def stream_id_of(messages: list[bytes]) -> str:
    return json.loads(messages[0])["stream"]


def write_each(write_raw, topic, values_and_keys) -> None:
    """Append each (value, key or None) in order, signed with its own key."""
    for value, key in values_and_keys:
        write_raw(topic, [value], key=key)


def test_forged_end_with_a_smaller_count_is_refused(bootstrap, topic, write_raw):
    """A forged end after two of six events: the stream is refused, not cut short."""
    messages = encoded_stream(small_updates())  # start, 6 events, end
    forged_end = encode_end(stream_id_of(messages), 3, 2)
    write_each(
        write_raw,
        topic,
        [(m, KEY) for m in messages[:3]] + [(forged_end, None)] + [(m, KEY) for m in messages[3:]],
    )
    with pytest.raises(StreamError, match=rf"{topic} partition 0 offset 3: not signed"):
        consume(bootstrap, topic)


def test_end_with_a_smaller_count_than_the_start_declares_is_refused(bootstrap, topic, write_raw):
    """Even signed (a producer with a bug), an end before all declared events is refused."""
    messages = encoded_stream(small_updates())
    write_raw(topic, [*messages[:3], encode_end(stream_id_of(messages), 3, 2)])
    with pytest.raises(StreamError, match="announces 2 events, but its start message declares 6"):
        consume(bootstrap, topic)


def test_event_beyond_the_declared_count_is_refused(bootstrap, topic, write_raw):
    messages = encoded_stream(small_updates())
    sid = stream_id_of(messages)
    extra = encode_event(sid, 7, BASE_NS + 10**9, [[2, 11.0, 1, 10.0, 1, [], []]], [], levels=2)
    write_raw(topic, [*messages[:-1], extra, encode_end(sid, 8, 7)])
    with pytest.raises(StreamError, match="seq 7 at offset 7 is beyond the 6 events the start"):
        consume(bootstrap, topic)


@pytest.mark.parametrize(
    ("event", "key", "match"),
    [
        # a forger's negative trade price: refused for its signature
        (
            [[2, 10.02, 101, 10.0, 200]],
            None,
            r"partition 0 offset 2: not signed",
        ),
        # the same from a key holder: refused for its value, as the CSV loader refuses it
        (
            [[2, 10.02, 101, 10.0, 200]],
            KEY,
            r"partition 0 offset 2: event seq 2 holds .*trade 0: trade price -10.5 is outside",
        ),
    ],
)
def test_forged_negative_price_event_is_refused(bootstrap, topic, write_raw, event, key, match):
    messages = encoded_stream(small_updates())
    sid = stream_id_of(messages)
    original = list(split_events(small_updates()))[1]
    forged = encode_event(sid, 2, original.ts, event, [[9, -10.5, 40, 1]])
    write_each(write_raw, topic, [(messages[0], KEY), (messages[1], KEY), (forged, key)])
    with pytest.raises(StreamError, match=match):
        consume(bootstrap, topic)


def test_negative_quote_price_and_crossed_quote_from_a_key_holder_are_refused(
    bootstrap, topic, write_raw
):
    messages = encoded_stream(small_updates())
    sid = stream_id_of(messages)
    ts = list(split_events(small_updates()))[1].ts
    negative = encode_event(sid, 2, ts, [[9, -10.0, 1, None, 0, [], []]], [], levels=2)
    write_raw(topic, [*messages[:2], negative])
    with pytest.raises(
        StreamError,
        match=rf"^{topic} partition 0 offset 2: event seq 2 holds a value the CSV loader "
        r"refuses: update 0 \(publisher_id 9\): ask_px -10.0 is outside \(0, ",
    ):
        consume(bootstrap, topic)

    crossed_topic = topic + "-crossed"
    crossed = encode_event(sid, 2, ts, [[9, 10.0, 1, 10.5, 1, [], []]], [], levels=2)
    write_raw(crossed_topic, [*messages[:2], crossed, *messages[3:]])
    with pytest.raises(
        StreamError,
        match=r"offset 2: event seq 2 holds .*: bid_px 10.5 above ask_px 10.0: a crossed quote",
    ):
        consume(bootstrap, crossed_topic)


def test_unsigned_message_inside_a_stream_is_refused(bootstrap, topic, write_raw):
    """A genuine message written again without its header: refused, naming where it is."""
    messages = encoded_stream(small_updates())
    write_each(write_raw, topic, [(m, None if i == 4 else KEY) for i, m in enumerate(messages)])
    with pytest.raises(
        StreamError, match=rf"^{topic} partition 0 offset 4: not signed \(no {HEADER} header\)"
    ):
        consume(bootstrap, topic)


def test_unsigned_stream_is_never_read(bootstrap, topic, write_raw):
    """A whole stream without signatures is skipped: no start message of a signed stream."""
    write_raw(topic, encoded_stream(small_updates()), key=None)
    with pytest.raises(StreamError, match="no start message signed with the key .*8 records"):
        consume(bootstrap, topic, idle_timeout_s=1)


def test_wrong_key_is_refused(bootstrap, topic, write_raw):
    """A stream signed with another key is never read; one message of another key inside a
    stream is refused."""
    messages = encoded_stream(small_updates())
    write_raw(topic, messages, key=OTHER_KEY)
    with pytest.raises(StreamError, match="no start message signed with the key"):
        consume(bootstrap, topic, idle_timeout_s=1)

    mixed = topic + "-mixed"
    write_each(
        write_raw, mixed, [(m, OTHER_KEY if i == 3 else KEY) for i, m in enumerate(messages)]
    )
    with pytest.raises(StreamError, match=rf"{mixed} partition 0 offset 3: bad signature"):
        consume(bootstrap, mixed)


def test_altered_message_fails_its_signature(bootstrap, topic, write_raw, raw_producer):
    """A message changed after signing (one size) keeps its old signature: refused."""
    messages = encoded_stream(small_updates())
    write_raw(topic, messages[:2])
    altered = bytearray(messages[2])
    altered[-1] ^= 1  # one bit of the last column
    altered = bytes(altered)
    raw_producer.send(topic, altered, partition=0, headers=KEY.headers(messages[2]))
    raw_producer.flush()
    with pytest.raises(StreamError, match="offset 2: bad signature: not signed with this"):
        consume(bootstrap, topic)


def test_truncated_stream_completed_by_a_forged_end_is_refused(bootstrap, topic, write_raw):
    """Half a stream with an end forged to match what arrived."""
    messages = encoded_stream(small_updates())
    forged_end = encode_end(stream_id_of(messages), 4, 3)
    write_each(write_raw, topic, [(m, KEY) for m in messages[:4]] + [(forged_end, None)])
    with pytest.raises(StreamError, match="offset 4: not signed"):
        consume(bootstrap, topic)


def test_forgeries_before_the_stream_are_skipped(bootstrap, topic, write_raw):
    """Unsigned records before the stream's start (a forged start among them) belong to no
    stream this consumer follows: skipped and counted; the stream is read whole."""
    updates = small_updates()
    forged = encoded_stream(small_updates(3))
    ours = encoded_stream(updates, per_message=4)
    write_raw(topic, forged, key=None)
    write_raw(topic, ours)
    consumed, report = consume(bootstrap, topic)
    assert report.unverified == len(forged) and report.stream_id == stream_id_of(ours)
    assert build_snapshots(consumed).equals(build_snapshots(updates))


def test_batched_stream_checks_each_event(bootstrap, topic, write_raw):
    """Event messages of several events: a duplicate message is dropped event by event, and a
    gap inside is named by event seq."""
    updates = small_updates()
    batched = encoded_stream(updates, per_message=4)  # start, events 1-4, events 5-6, end
    assert len(batched) == 4
    write_raw(topic, [*batched[:2], batched[1], *batched[2:]])
    consumed, report = consume(bootstrap, topic)
    assert report.duplicates == 4 and report.messages == 4 and report.events == 6
    assert build_snapshots(consumed).equals(build_snapshots(updates))

    gap = topic + "-gap"
    three = encoded_stream(updates, stream_id=stream_id_of(batched), per_message=3)
    write_raw(gap, [batched[0], three[1], batched[2]])  # events 1-3, then 5-6
    with pytest.raises(StreamError, match=r"seq 4 missing or out of order \(offset 2 holds seq 5"):
        consume(bootstrap, gap)


def test_sor_run_refuses_a_forged_end_written_while_it_streams(tmp_path, bootstrap, topic):
    """`sor run`'s pipeline, paced: a forger who watches the topic writes an end right after
    the first event message. The run's key is its own, so the forgery ends the run with an
    error (exit 2) instead of a sweep over one event."""
    from sor.config import load_config
    from stream.pipeline import stream_snapshots
    from tests.csvdata import row, write_csv

    # 30 events 100 ms apart at speed 1: the forger has 100 ms to slip in before seq 2.
    path = write_csv(
        tmp_path / "paced.csv",
        [row(i * 100, (2, 9, 43)[i % 3], 10.0, 10.01 + i / 100, 100, 100 + i) for i in range(30)],
    )
    config = load_config(
        overrides={
            "kafka.bootstrap": bootstrap,
            "kafka.topic": topic,
            "stream.speed": 1,
            "stream.idle_timeout_s": 10,
        }
    )
    forged: list[int] = []

    forger = threading.Thread(
        target=forge_an_end_after_the_first_events,
        args=(bootstrap, topic, forged, 20.0),
        daemon=True,
    )
    forger.start()
    with pytest.raises(StreamError, match=rf"{topic} partition 0 offset \d+: not signed"):
        stream_snapshots(config, path)
    forger.join(timeout=30)
    assert forged
