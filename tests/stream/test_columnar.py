"""Columnar event messages of many events on a real broker: each event still checked by its seq.

Streams are written message by message with a plain KafkaProducer (`write_raw`), signed with the
tests' key unless said otherwise, as in test_faults.py and test_integrity.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from sor.config import StreamConfig
from sor.data.snapshots import QuoteUpdates, build_snapshots
from sor.errors import StreamError
from stream.consumer import consume_updates
from stream.events import event_columns
from stream.messages import (
    BATCH_HEADER_BYTES,
    Batch,
    cut,
    decode,
    encode_batch,
    encode_end,
    encode_start,
)
from stream.producer import DEFAULT_BATCH_BYTES, produce, stream_messages
from tests.stream.helpers import BASE_NS, KAFKA_PYTHON_WARNINGS, KEY, small_updates

pytestmark = [KAFKA_PYTHON_WARNINGS]
kafka = pytest.mark.kafka

SID = "00112233445566778899aabbccddeeff"


def consume(bootstrap, topic, **options):
    options.setdefault("idle_timeout_s", 5)
    options.setdefault("key", KEY)
    return consume_updates(bootstrap=bootstrap, topic=topic, **options)


def batched(updates: QuoteUpdates, *cuts: int) -> list[bytes]:
    """Start, event messages of events [cuts[i], cuts[i+1]) (0-based), end."""
    return encoded_stream_cut(updates, SID, list(cuts))


def encoded_stream_cut(updates: QuoteUpdates, stream_id: str, cuts: list[int]) -> list[bytes]:
    events = event_columns(updates)
    n = len(events.ts)
    start = encode_start(
        stream_id, symbol=updates.symbol, clock="ts_event", levels=updates.n_levels, events=n
    )
    bounds = [*cuts, n]
    middle = [
        encode_batch(stream_id, a + 1, cut(events, a, b))
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    return [start, *middle, encode_end(stream_id, n + 1, n)]


def ladders(n: int = 40) -> QuoteUpdates:
    """n updates of ten ask levels at three venues, two of them at each time: full ladders,
    ladders ending early, an empty ask side (no level), an empty bid side; trades at every
    fifth time, one without a price."""
    i = np.arange(n)
    shown = i % 11  # levels shown: 0 (an empty ask side) to 10
    px = 10.0 + i[:, None] / 100 + np.arange(10)[None, :] / 100
    sz = np.tile(np.arange(1, 11), (n, 1)) * (1 + i[:, None])
    empty = np.arange(10)[None, :] >= shown[:, None]
    px[empty], sz[empty] = np.nan, 0
    bid_empty = i % 7 == 3
    times = BASE_NS + (i // 2) * 1_000_000
    trades = np.arange(0, n // 2, 5)
    return QuoteUpdates(
        ts=times,
        venue=np.array([2, 9, 43])[i % 3].astype(np.int32),
        ask_px=px[:, 0].copy(),
        ask_sz=sz[:, 0].copy(),
        bid_px=np.where(bid_empty, np.nan, 9.99),
        bid_sz=np.where(bid_empty, 0, 50),
        ask_depth_px=px,
        ask_depth_sz=sz,
        trade_ts=BASE_NS + trades * 1_000_000,
        trade_size=10 + trades,
        trade_venue=np.full(len(trades), 9, dtype=np.int32),
        trade_px=np.where(trades % 10 == 0, np.nan, 10.0),
        trade_side=np.where(trades % 10 == 0, 0, 1).astype(np.int8),
        symbol="AAPL",
    )


@kafka
@pytest.mark.parametrize(
    "batch_bytes", [0, 300, DEFAULT_BATCH_BYTES], ids=["one", "300B", "default"]
)
def test_mbp10_ladders_empty_sides_and_trades_travel_whole(bootstrap, topic, batch_bytes):
    updates = ladders()
    report = produce(
        updates, key=KEY, bootstrap=bootstrap, topic=topic, progress=False, batch_bytes=batch_bytes
    )
    consumed, got = consume(bootstrap, topic)
    assert got.messages == report.messages == {0: 22, 300: 22, DEFAULT_BATCH_BYTES: 3}[batch_bytes]
    snaps = build_snapshots(consumed)
    assert snaps.equals(build_snapshots(updates)) and snaps.n_levels == 10
    assert np.isnan(snaps.bid_px).any() and (snaps.ask_sz == 0).any()
    assert np.isnan(snaps.trade_px).any() and snaps.trade_volume.sum() == updates.trade_size.sum()


@kafka
def test_duplicate_and_overlapping_batches_are_dropped_event_by_event(bootstrap, topic, write_raw):
    """A batch sent twice, then a batch that repeats two accepted events and brings two new."""
    updates = small_updates(10)
    m = batched(updates, 0, 4, 8)  # start, 1-4, 5-8, 9-10, end
    overlap = batched(updates, 0, 6)[2]  # events 7-10: 7-8 held, 9-10 new
    write_raw(topic, [m[0], m[1], m[1], m[2], overlap, m[3], m[4]])
    consumed, report = consume(bootstrap, topic)
    assert report.duplicates == 4 + 2 + 2 and report.events == 10
    assert report.messages == 1 + 3 + 1  # m[3] brought nothing new
    assert build_snapshots(consumed).equals(build_snapshots(updates))


@kafka
@pytest.mark.parametrize(
    ("keep", "missing"),
    [
        ([0, 1, 3, 4], r"seq 5\.\.8 missing or out of order \(offset 2 holds seq 9\)"),
        ([0, 2, 1], r"seq 1\.\.4 missing or out of order \(offset 1 holds seq 5\)"),
    ],
    ids=["a batch lost", "batches swapped"],
)
def test_gaps_between_batches_are_named_by_event_seq(bootstrap, topic, write_raw, keep, missing):
    m = batched(small_updates(10), 0, 4, 8)
    write_raw(topic, [m[i] for i in keep])
    with pytest.raises(StreamError, match=missing):
        consume(bootstrap, topic)


@kafka
def test_a_gap_inside_a_batch_boundary_is_named(bootstrap, topic, write_raw):
    """Batches cut differently by two producer runs: events 1-3, then 5-8 (seq 4 lost)."""
    updates = small_updates(10)
    first, second = batched(updates, 0, 3), batched(updates, 0, 4, 8)
    write_raw(topic, [first[0], first[1], second[2], second[3], second[4]])
    with pytest.raises(StreamError, match=r"seq 4 missing or out of order \(offset 2 holds seq 5"):
        consume(bootstrap, topic)


@kafka
def test_overlapping_batch_with_other_content_names_the_first_event_that_differs(
    bootstrap, topic, write_raw
):
    updates = small_updates(10)
    m = batched(updates, 0, 8)  # start, 1-8, 9-10, end
    events = event_columns(updates)
    altered = events.ask_sz.copy()
    altered[5] += 1  # event 6
    changed = encode_batch(SID, 4, cut(events._replace(ask_sz=altered), 3, 8))  # events 4-8
    write_raw(topic, [m[0], m[1], changed, *m[2:]])
    with pytest.raises(StreamError, match="offset 2 repeats seq 6 of stream .* different content"):
        consume(bootstrap, topic)


@kafka
def test_a_bad_value_deep_inside_a_batch_is_named_by_seq_field_value_and_offset(
    bootstrap, topic, write_raw
):
    """A key holder's batch of 2,000 events whose event 1,377 has an ask size of 0 at a price."""
    updates = small_updates(3000)
    events = event_columns(updates)
    size = events.ask_sz.copy()
    size[1_376] = 0
    m = batched(updates, 0, 1000)
    bad = encode_batch(SID, 1001, cut(events._replace(ask_sz=size), 1000, 3000))
    write_raw(topic, [m[0], m[1], bad, m[-1]])
    pattern = (
        rf"^{topic} partition 0 offset 2: event seq 1377 holds a value the CSV loader refuses: "
        r"update 0 \(publisher_id 2\): ask_px 23.77\d* with ask_sz 0: a side or level shows a "
        r"price and a size, or neither"
    )
    with pytest.raises(StreamError, match=pattern):
        consume(bootstrap, topic)


@kafka
def test_forged_and_altered_batches_are_refused_before_parsing(
    bootstrap, topic, write_raw, raw_producer
):
    updates = small_updates(3000)
    m = batched(updates, 0, 1000, 2000)
    write_raw(topic, m[:2])
    write_raw(topic, [m[2]], key=None)  # a forger's copy: no signature
    with pytest.raises(StreamError, match=rf"{topic} partition 0 offset 2: not signed"):
        consume(bootstrap, topic)

    altered_topic = topic + "-altered"
    write_raw(altered_topic, m[:2])
    altered = bytearray(m[2])
    altered[BATCH_HEADER_BYTES + 8 * 500] ^= 0x01  # one bit of the event times
    raw_producer.send(altered_topic, bytes(altered), partition=0, headers=KEY.headers(m[2]))
    raw_producer.flush()
    with pytest.raises(StreamError, match="offset 2: bad signature: not signed with this"):
        consume(bootstrap, altered_topic)


def test_the_producer_fills_batches_up_to_batch_bytes():
    """Each message holds as many whole events as fit in `batch_bytes`; one larger event goes
    alone; the messages are `encode_batch` of consecutive events, byte for byte."""
    updates = small_updates(500)
    events = event_columns(updates)
    for batch_bytes in (0, 100, 1000, 5000, 10**6):
        messages = stream_messages(updates, key=KEY, stream_id=SID, batch_bytes=batch_bytes)
        middle = [decode(m) for m in messages[1:-1]]
        assert all(type(b) is Batch for b in middle)
        assert [b.seq for b in middle] == list(np.cumsum([1] + [b.count for b in middle[:-1]]))
        assert sum(b.count for b in middle) == 500
        for value, batch in zip(messages[1:-1], middle, strict=True):
            a = batch.seq - 1
            assert value == encode_batch(SID, batch.seq, cut(events, a, a + batch.count))
            if batch_bytes == 0:
                assert batch.count == 1
            elif batch.count > 1:
                assert len(value) <= batch_bytes
        if batch_bytes:  # full: the next event would not have fit
            for value, batch in zip(messages[1:-2], middle, strict=False):
                after = batch.seq - 1 + batch.count
                extra = len(encode_batch(SID, 1, cut(events, after, after + 1)))
                assert len(value) + extra - BATCH_HEADER_BYTES > batch_bytes
    with pytest.raises(StreamError, match="exceeds the limit of 100 bytes"):
        stream_messages(updates, key=KEY, batch_bytes=100, max_message_bytes=100)


def test_the_configured_default_is_the_producers():
    assert StreamConfig().batch_bytes == DEFAULT_BATCH_BYTES == 524_288
