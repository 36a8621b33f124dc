"""A partition rewritten under the consumer (the broker restarted empty), without a broker.

`StreamAssembler.rewind` and its resync rules, then the consumer's read loop against a fake
partition that is swapped for a new one mid-read, the way each kind of broker shows it: Tansu
answers a fetch beyond the end with nothing and a lower high watermark, Kafka answers
OffsetOutOfRange and kafka-python moves the position to the beginning by itself.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from sor.data.snapshots import build_snapshots
from sor.errors import StreamError
from stream.assembler import StreamAssembler
from stream.consumer import _read, records_from
from stream.events import split_events
from stream.messages import decode, encode_event
from tests.stream.helpers import KAFKA_PYTHON_WARNINGS, KEY, encoded_stream, small_updates

pytestmark = KAFKA_PYTHON_WARNINGS

TOPIC = "t"


def feed(assembler: StreamAssembler, messages: list[bytes], first_offset: int = 0) -> bool:
    done = False
    for offset, value in enumerate(messages, start=first_offset):
        done = assembler.accept(decode(value), offset)
    return done


def test_resync_skips_other_streams_and_later_seqs_until_the_next_new_message():
    ours, other = encoded_stream(small_updates()), encoded_stream(small_updates())
    assembler = StreamAssembler()
    feed(assembler, ours[:4])  # start, seq 1..3
    assembler.rewind()
    assert assembler.resyncing and assembler.rewinds == 1
    # The rewritten partition: another stream, a leftover seq 5, then ours again from seq 0.
    assert not feed(assembler, [*other[:2], ours[5], *ours[:4]], first_offset=0)
    assert assembler.skipped == 3 and assembler.duplicates == 4
    assert assembler.first_offset == 3  # where the partition's copy of the start now is
    assert not feed(assembler, [ours[4]], first_offset=7)
    assert not assembler.resyncing
    # Strict again: another stream inside ours is refused as before.
    with pytest.raises(StreamError, match="interleaved"):
        feed(assembler, [other[2]], first_offset=8)


def test_resync_still_refuses_other_content_under_a_seq_already_held():
    ours = encoded_stream(small_updates())
    assembler = StreamAssembler()
    feed(assembler, ours[:4])
    assembler.rewind()
    ts, rows, trades = list(split_events(small_updates()))[1]
    forged = encode_event(
        decode(ours[0]).stream_id, 2, ts, rows, [*trades, [2, None, 1, 0]], levels=2
    )
    assert forged != ours[2]
    with pytest.raises(StreamError, match="repeats seq 2 .* different content"):
        feed(assembler, [ours[0], ours[1], forged])


def test_is_last_knows_the_message_accepted_last():
    ours = encoded_stream(small_updates())
    assembler = StreamAssembler()
    feed(assembler, ours[:3])
    assert assembler.is_last(decode(ours[2]))
    assert not assembler.is_last(decode(ours[1]))
    assert not assembler.is_last(decode(encoded_stream(small_updates())[2]))


class Record(NamedTuple):
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]]


class FakeConsumer:
    """Partition 0 of one topic, served from a list; `rewrite` swaps the list mid-read.

    Args:
        out_of_range: what a fetch beyond the end does, "tansu" (nothing, high watermark
            below the position) or "kafka" (the position moves to the beginning).
        batch: records per poll.
    """

    def __init__(self, log: list[bytes], out_of_range: str, batch: int = 3) -> None:
        self.log, self.out_of_range, self.batch = log, out_of_range, batch
        self.position_ = 0
        self.hw: int | None = None
        self.after_polls: dict[int, list[bytes]] = {}
        self.polls = 0

    def poll(self, timeout_ms: int) -> dict[Any, list[Record]]:
        self.polls += 1
        if self.polls in self.after_polls:
            self.log = self.after_polls.pop(self.polls)
        self.hw = len(self.log)
        if self.position_ > len(self.log) and self.out_of_range == "kafka":
            self.position_ = 0  # auto_offset_reset="earliest"
        values = self.log[self.position_ : self.position_ + self.batch]
        records = [Record(self.position_ + i, v, KEY.headers(v)) for i, v in enumerate(values)]
        self.position_ += len(records)
        return {PARTITION: records} if records else {}

    def highwater(self, partition: Any) -> int | None:
        return self.hw

    def position(self, partition: Any) -> int:
        return self.position_

    def seek(self, partition: Any, offset: int) -> None:
        self.position_ = offset

    def seek_to_beginning(self, partition: Any) -> None:
        self.position_ = 0


class Partition(NamedTuple):
    topic: str
    partition: int


PARTITION = Partition(TOPIC, 0)


def read(consumer: FakeConsumer, stream_id: str | None = None) -> StreamAssembler:
    assembler = StreamAssembler(stream_id)
    _read(
        consumer, PARTITION, assembler, "127.0.0.1:9", idle_timeout_s=2, max_bytes=1 << 20, key=KEY
    )
    return assembler


@pytest.mark.parametrize("out_of_range", ["tansu", "kafka"])
@pytest.mark.parametrize(
    "new_log",
    ["shorter", "longer"],
    ids=["restarted-log-shorter-than-position", "restarted-log-already-past-position"],
)
def test_consumer_reads_a_rewritten_partition_again(out_of_range, new_log):
    updates = small_updates(12)
    other, ours = encoded_stream(small_updates()), encoded_stream(updates)
    old = [*other, *ours]  # ours starts at offset 8
    # After 4 polls of 3 records the consumer stands at offset 12, at seq 4 of ours; the broker
    # restarts empty and the producer sends ours again from seq 0: only 3 messages so far, or
    # all of them (then offset 12 holds seq 12, not 4).
    rewritten = ours[:3] if new_log == "shorter" else ours
    consumer = FakeConsumer(old, out_of_range)
    consumer.after_polls = {5: rewritten}
    if new_log == "shorter":
        consumer.after_polls[8] = ours  # the producer goes on
    assembler = read(consumer, stream_id=decode(ours[0]).stream_id)
    assert assembler.done and assembler.rewinds == 1
    assert assembler.skipped == len(other)
    assert assembler.duplicates == 4  # seq 0..3, read again
    assert build_snapshots(assembler.updates()).equals(build_snapshots(updates))


def test_a_real_gap_is_still_refused_at_once():
    ours = encoded_stream(small_updates())
    consumer = FakeConsumer([*ours[:3], *ours[4:]], "tansu")
    with pytest.raises(StreamError, match="seq 3 missing"):
        read(consumer)


@pytest.mark.parametrize("out_of_range", ["tansu", "kafka"])
def test_records_from_beyond_the_end_says_so(out_of_range):
    ours = encoded_stream(small_updates())
    consumer = FakeConsumer(ours, out_of_range, batch=100)
    got = [r.offset for r in records_from(consumer, PARTITION, 3, wait_s=1)]
    assert got == list(range(3, len(ours)))
    got = [r.offset for r in records_from(consumer, PARTITION, 50, wait_s=1)]
    if out_of_range == "tansu":  # nothing, and a high watermark below the offset asked for
        assert got == [] and consumer.highwater(PARTITION) == len(ours) < 50
    else:  # kafka-python went back to the beginning: the first record below 50 is the last
        assert got == [0]
