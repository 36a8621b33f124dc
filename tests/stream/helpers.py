"""Helpers shared by the stream tests."""

from __future__ import annotations

import numpy as np
import pytest

from sor.data.snapshots import QuoteUpdates
from stream.events import count_events, event_columns
from stream.messages import cut, encode_batch, encode_end, encode_start, new_stream_id
from stream.signing import StreamKey

BASE_NS = 1_722_519_392_000_000_000  #: 2024-08-01T13:36:32Z

# kafka-python 3.0 loads its protocol schemas with importlib.resources calls deprecated in 3.11.
KAFKA_PYTHON_WARNINGS = pytest.mark.filterwarnings(
    "ignore:(read_text|open_text) is deprecated:DeprecationWarning"
)


#: The signing key of the tests' streams.
KEY = StreamKey(b"sor-tests-stream-key-0123456789")


def encoded_stream(
    updates: QuoteUpdates, stream_id: str | None = None, per_message: int = 1
) -> list[bytes]:
    """The messages `produce` writes for `updates`: start, events (`per_message` a message,
    the last message with the rest), end."""
    stream_id = stream_id or new_stream_id()
    n = count_events(updates)
    messages = [
        encode_start(
            stream_id, symbol=updates.symbol, clock="ts_event", levels=updates.n_levels, events=n
        )
    ]
    events = event_columns(updates)
    for first in range(0, n, per_message):
        last = min(first + per_message, n)
        messages.append(encode_batch(stream_id, first + 1, cut(events, first, last)))
    messages.append(encode_end(stream_id, n + 1, n))
    return messages


def small_updates(n: int = 6) -> QuoteUpdates:
    """n updates from two venues at n distinct times, one trade (at venue 9, seq 3); two ask
    levels, the second empty at every third update."""
    i = np.arange(n)
    ask_px, ask_sz = 10.01 + i / 100, 100 + i
    return QuoteUpdates(
        ts=BASE_NS + i * 1_000_000,
        venue=np.where(i % 2 == 0, 2, 9).astype(np.int32),
        ask_px=ask_px,
        ask_sz=ask_sz,
        bid_px=np.where(i == 3, np.nan, 10.0),
        bid_sz=np.where(i == 3, 0, 200),
        ask_depth_px=np.column_stack([ask_px, np.where(i % 3 == 2, np.nan, ask_px + 0.01)]),
        ask_depth_sz=np.column_stack([ask_sz, np.where(i % 3 == 2, 0, 7 * i + 1)]),
        trade_ts=np.array([BASE_NS + 1_500_000]),
        trade_size=np.array([40]),
        trade_venue=np.array([9], dtype=np.int32),
        trade_px=np.array([10.5]),
        trade_side=np.array([1], dtype=np.int8),
        symbol="AAPL",
    )


def forge_an_end_after_the_first_events(
    bootstrap: str, topic: str, forged: list[int], patience_s: float = 300.0
) -> None:
    """Watch `topic` as someone without the key would, and right after the first events
    message write an end-of-stream message (unsigned) that declares the stream over there;
    the forged end's seq goes into `forged`. Gives up after `patience_s` seconds."""
    import time

    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from stream.messages import Batch, decode

    consumer = KafkaConsumer(bootstrap_servers=[bootstrap], group_id=None, fetch_max_wait_ms=10)
    producer = KafkaProducer(bootstrap_servers=[bootstrap], acks="all")
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    try:
        deadline = time.monotonic() + patience_s
        while not forged and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=20).values():
                for record in records:
                    message = decode(record.value)
                    if type(message) is Batch:
                        seq = message.seq + message.count
                        end = encode_end(message.stream_id, seq, seq - 1)
                        producer.send(topic, end, partition=0).get(timeout=10)
                        forged.append(seq)
                        return
    finally:
        consumer.close()
        producer.close()
