"""Read one snapshot stream back from Kafka into `QuoteUpdates`, Snapshots, or a Ray object.

Every record's signature is checked before its value is parsed (`stream.signing`). A record
that fails the check is skipped before the stream's start message (it belongs to no stream this
reader follows: older streams on a shared topic are signed with other keys) and refused from the
start on: the consumer raises a `StreamError` naming the topic, partition and offset, so a
forged or altered message inside a stream ends the read rather than being left out silently.

Partition 0 is assigned by hand rather than by joining a consumer group: a group join waits for
the group's rebalance timeout, and one reader of one partition needs no coordination. The stream
ends at its end-of-stream message, never at the partition's end offset: Tansu answers a
ListOffsets request for the latest offset with a wrong value (e.g. 1 after 2000 messages); the
high watermark in its fetch responses is right, and is what `records_from` relies on.

Broker faults. While the broker is away, kafka-python keeps reconnecting by itself and `poll`
returns nothing, so the consumer waits up to `idle_timeout_s`. A broker that comes back with its
data (Kafka) lets it carry on from its position. One that comes back empty (the in-memory
embedded broker) shows as a partition rewritten under the consumer: its high watermark falls
below the consumer's position, offsets go back, or the records at the consumer's position no
longer continue the stream (a gap, another stream). In that last case the consumer first reads
the record it accepted last again: if it is still there, the error stands. Otherwise the
consumer reads the partition again from its beginning while the producer sends the stream again
(`StreamAssembler.rewind`): what it already has comes again as duplicates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from sor.data.snapshots import QuoteUpdates, Snapshots, build_snapshots
from sor.errors import StreamError
from stream.assembler import OnEvent, StreamAssembler
from stream.connect import (
    check_bootstrap,
    check_topic,
    client_settings,
    connect_with_retry,
    reachable,
)
from stream.messages import DEFAULT_MAX_BYTES, PARTITION, decode
from stream.signing import StreamKey, signature_problem

if TYPE_CHECKING:
    from collections.abc import Iterator

    import ray

__all__ = [
    "ConsumeReport",
    "consume_snapshots",
    "consume_to_ray",
    "consume_updates",
    "consumer_settings",
    "records_from",
]

log = logging.getLogger(__name__)

_POLL_MS = 200  #: longest single wait for records, ms; bounds how late an idle timeout fires
_CHECK_WAIT_S = 5.0  #: longest wait for the broker to show a record the consumer checks again


@dataclass(frozen=True)
class ConsumeReport:
    """What a consume call read.

    Attributes:
        stream_id: the stream read.
        topic: the topic (partition 0).
        symbol: the instrument, from the start message.
        clock: "ts_event" or "ts_recv", from the start message.
        source: the producer's description of its data.
        events: snapshot events received.
        updates: venue updates received.
        messages: messages of the stream accepted: the start, the event messages (one or more
            events each) and the end.
        duplicates: repeats of an accepted message (same seq, same content), dropped.
        skipped: messages of other streams before this one's start, ignored (and, after a
            rewind, messages the rewritten partition holds beyond the next seq).
        unverified: records whose signature did not verify under the key, skipped before the
            stream's start (or while re-reading a rewritten partition).
        first_offset: offset of the start message.
        last_offset: offset of the end message.
        wall_s: seconds from the first poll to the end message.
        messages_per_s: messages / wall_s.
        events_per_s: events / wall_s.
        snapshot_bytes: bytes of the Snapshots built (consume_snapshots, consume_to_ray; else 0).
        rewinds: times the partition was found rewritten (the broker restarted empty) and read
            again from its beginning.
    """

    stream_id: str
    topic: str
    symbol: str
    clock: str
    source: dict[str, Any]
    events: int
    updates: int
    messages: int
    duplicates: int
    skipped: int
    first_offset: int
    last_offset: int
    wall_s: float
    messages_per_s: float
    events_per_s: float = 0.0
    unverified: int = 0
    snapshot_bytes: int = 0
    rewinds: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def consumer_settings(max_message_bytes: int) -> dict[str, Any]:
    """kafka-python consumer settings of the pipeline (shared with bench/stream_throughput.py)."""
    fetch = max(1_048_576, max_message_bytes + 1024)
    return {
        "group_id": None,
        "enable_auto_commit": False,
        # Kafka would create a missing topic on the consumer's metadata request. (Tansu does it
        # regardless, with 4 partitions; the producer then writes to partition 0 of that.)
        "allow_auto_create_topics": False,
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": fetch,
        "fetch_max_bytes": max(52_428_800, fetch),
        "max_poll_records": 5000,
        # Tansu answers a fetch with no data only when this wait expires, not when data arrives,
        # so the default 500 ms would make live events up to half a second late.
        "fetch_max_wait_ms": 20,
        # kafka-python doubles its reconnect backoff up to 30 s by default; after a broker
        # restart the consumer should be back within a second.
        "reconnect_backoff_max_ms": 1000,
        "metrics_enabled": False,
    }


def consume_updates(
    *,
    bootstrap: str,
    topic: str,
    key: StreamKey,
    stream_id: str | None = None,
    start_offset: int | None = None,
    idle_timeout_s: float = 30.0,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    security: dict[str, Any] | None = None,
    on_event: OnEvent | None = None,
    connect_timeout_s: float = 30.0,
    progress: bool = False,
    expected_events: int | None = None,
) -> tuple[QuoteUpdates, ConsumeReport]:
    """Read one stream from partition 0 of `topic` and rebuild its quote updates.

    `build_snapshots` of the result is identical to `build_snapshots` of what the producer sent.

    Args:
        bootstrap: Kafka bootstrap servers, "HOST:PORT[,HOST:PORT...]".
        topic: the topic to read.
        key: the stream's signing key (`stream.signing`), the producer's.
        stream_id: the stream to read; None reads the first stream whose start message is met.
        start_offset: offset to start reading at (e.g. `ProduceReport.first_offset`); None:
            the beginning of the partition.
        idle_timeout_s: give up after this many seconds without a new message; also how long
            the consumer waits for a broker that went away to come back.
        max_message_bytes: refuse larger messages.
        security: kafka-python settings (security_protocol, sasl_*, ssl_*), never logged.
        on_event: live mode: called as `on_event(ts, book)` for each snapshot event as it
            arrives; `book` is a read-only `stream.book.TopOfBook` of every venue's latest
            quote at `ts` (ns since the epoch).
        connect_timeout_s: seconds to keep retrying while no broker answers.
        progress: show a progress bar of the events read (on stderr).
        expected_events: the bar's total, when known (e.g. `ProduceReport.events`).

    Returns:
        The updates and a report (stream id, counts, duplicates, offsets, throughput).

    Raises:
        StreamError: no broker, a message of the stream not signed with `key`, a malformed
            message, another schema version, interleaved streams, a gap, an event count other
            than the start message declares, a value the CSV loader would never give, or no
            end-of-stream message within
            `idle_timeout_s` of the last message (the message says when the broker is the
            reason: it went away and did not come back).
    """
    check_topic(topic)
    check_bootstrap(bootstrap)
    if start_offset is not None and start_offset < 0:
        raise StreamError(f"`start_offset >= 0` must hold, but got start_offset={start_offset}")
    if not idle_timeout_s > 0:
        raise StreamError(f"`idle_timeout_s > 0` must hold, but got {idle_timeout_s=}")
    if not isinstance(key, StreamKey):
        raise StreamError("consume_updates needs the stream's key: a stream.signing.StreamKey")
    from kafka import KafkaConsumer, TopicPartition

    settings = client_settings(bootstrap, security)
    consumer = connect_with_retry(
        lambda ms: KafkaConsumer(
            **settings, **consumer_settings(max_message_bytes), bootstrap_timeout_ms=ms
        ),
        bootstrap=bootstrap,
        what="consumer",
        connect_timeout_s=connect_timeout_s,
    )
    assembler = StreamAssembler(stream_id, on_event)
    try:
        partition = TopicPartition(topic, PARTITION)
        consumer.assign([partition])
        if start_offset is None:
            consumer.seek_to_beginning(partition)
        else:
            consumer.seek(partition, start_offset)
        started = time.monotonic()
        with tqdm(total=expected_events, disable=not progress, desc="consume", unit="event") as bar:

            def advance() -> None:
                bar.update(assembler.events - bar.n)

            _read(
                consumer,
                partition,
                assembler,
                bootstrap,
                idle_timeout_s,
                max_message_bytes,
                key,
                advance,
            )
            advance()
        wall_s = time.monotonic() - started
    finally:
        consumer.close()
    updates = assembler.updates()
    start = assembler.start
    assert start is not None and assembler.first_offset is not None
    messages = assembler.messages
    report = ConsumeReport(
        stream_id=start.stream_id,
        topic=topic,
        symbol=start.symbol,
        clock=start.clock,
        source=start.source,
        events=assembler.events,
        updates=len(updates),
        messages=messages,
        duplicates=assembler.duplicates,
        skipped=assembler.skipped,
        first_offset=assembler.first_offset,
        last_offset=assembler.last_offset or 0,
        wall_s=wall_s,
        messages_per_s=messages / max(wall_s, 1e-9),
        events_per_s=assembler.events / max(wall_s, 1e-9),
        unverified=assembler.unverified,
        rewinds=assembler.rewinds,
    )
    if report.duplicates:
        log.warning("stream %s: dropped %d duplicate events", report.stream_id, report.duplicates)
    log.info(
        "consumed stream %s: %d events in %.2f s (%.0f messages/s) from %s offsets %d..%d",
        report.stream_id,
        report.events,
        wall_s,
        report.messages_per_s,
        topic,
        report.first_offset,
        report.last_offset,
    )
    return updates, report


def _read(
    consumer: Any,
    partition: Any,
    assembler: StreamAssembler,
    bootstrap: str,
    idle_timeout_s: float,
    max_bytes: int,
    key: StreamKey,
    advance: Callable[[], None] = lambda: None,
) -> None:
    from kafka.errors import KafkaError, RetriableError

    topic = partition.topic
    last_message = time.monotonic()
    next_offset = None  # offset after the last record read: the partition reached this far
    while True:
        try:
            batches = consumer.poll(timeout_ms=_POLL_MS)
        except RetriableError as exc:
            # e.g. UnknownTopicOrPartition from a broker that restarted and has not got the
            # topic back yet: waited out like silence, within idle_timeout_s.
            log.debug("reading %s: %s; retrying", topic, type(exc).__name__)
            batches = {}
        except KafkaError as exc:
            raise StreamError(f"reading {topic}: {type(exc).__name__}") from None
        if not batches:
            if next_offset is not None:
                end = consumer.highwater(partition)
                if end is not None and end < next_offset:
                    _rewind(consumer, partition, assembler, f"it ends at offset {end} now")
                    next_offset = None
                    continue
            if time.monotonic() - last_message > idle_timeout_s:
                raise _idle_error(consumer, assembler, topic, bootstrap, idle_timeout_s)
            continue
        last_message = time.monotonic()
        advance()
        for records in batches.values():
            first = records[0].offset
            if next_offset is not None and first < next_offset:
                # kafka-python moved the position back by itself (auto_offset_reset after an
                # OffsetOutOfRange answer): the partition no longer reaches where we were.
                _rewound(
                    assembler, topic, f"the broker sent offset {first} after {next_offset - 1}"
                )
            for record in records:
                try:
                    problem = signature_problem(key, record.value, record.headers)
                    if problem is not None:
                        if assembler.skips_unverified:
                            assembler.unverified += 1
                            continue
                        raise StreamError(
                            f"{topic} partition {PARTITION} offset {record.offset}: {problem}; "
                            f"refusing stream {assembler.stream_id} (after seq "
                            f"{assembler.next_seq - 1}): a message inside it was not written "
                            "by its producer"
                        )
                    try:
                        message = decode(record.value, max_bytes=max_bytes)
                    except StreamError as exc:
                        raise StreamError(
                            f"{topic} partition {PARTITION} offset {record.offset}: {exc}"
                        ) from None
                    if assembler.accept(message, record.offset):
                        return
                except StreamError:
                    # Most likely bad data; but a partition rewritten under us (the broker came
                    # back empty and the producer is sending again) looks the same from here.
                    if not _log_changed(consumer, partition, assembler, max_bytes, key):
                        raise
                    _rewind(
                        consumer,
                        partition,
                        assembler,
                        f"offset {assembler.last_offset} no longer holds seq "
                        f"{assembler.next_seq - 1}",
                    )
                    next_offset = None
                    break
            else:
                next_offset = records[-1].offset + 1
                continue
            break  # rewound: the rest of this poll's records are from the old position


def records_from(
    consumer: Any, partition: Any, offset: int, *, wait_s: float = _CHECK_WAIT_S
) -> Iterator[Any]:
    """The records of an assigned partition from `offset` up to its current end.

    Stops at the high watermark of the broker's fetch answers (Tansu's ListOffsets answer is
    wrong, see the module docstring), or after `wait_s` seconds without a record and without an
    answer that says where the partition ends (e.g. the broker is away). When kafka-python moves
    the position back by itself (the partition no longer reaches `offset`), the first record
    from there, below `offset`, is the last one yielded. Moves the consumer's position.
    """
    consumer.seek(partition, offset)
    deadline = time.monotonic() + wait_s
    polled = False
    while True:
        batches = consumer.poll(timeout_ms=_POLL_MS)
        records = batches.get(partition, [])
        for record in records:
            yield record
            if record.offset < offset:
                return
        end = consumer.highwater(partition)
        # The high watermark is trusted only after a poll since the seek: an older value may
        # come from before the broker restarted.
        if polled and end is not None and consumer.position(partition) >= end:
            return
        polled = True
        if records:
            deadline = time.monotonic() + wait_s
        elif time.monotonic() > deadline:
            return


def _log_changed(
    consumer: Any, partition: Any, assembler: StreamAssembler, max_bytes: int, key: StreamKey
) -> bool:
    """True if the partition no longer holds the message accepted last where it was read."""
    offset = assembler.last_offset
    if offset is None or assembler.resyncing:
        return False
    from kafka.errors import KafkaError

    try:
        for record in records_from(consumer, partition, offset):
            if record.offset != offset:
                return True
            if signature_problem(key, record.value, record.headers) is not None:
                return True
            try:
                return not assembler.is_last(decode(record.value, max_bytes=max_bytes))
            except StreamError:
                return True
    except KafkaError:
        return False
    end = consumer.highwater(partition)
    return end is not None and end <= offset


def _rewind(consumer: Any, partition: Any, assembler: StreamAssembler, why: str) -> None:
    consumer.seek_to_beginning(partition)
    _rewound(assembler, partition.topic, why)


def _rewound(assembler: StreamAssembler, topic: str, why: str) -> None:
    assembler.rewind()
    log.warning(
        "stream %s: partition %d of %s was rewritten (%s; did the broker restart without its "
        "data?); reading it again from its beginning and dropping what was already received",
        assembler.stream_id,
        PARTITION,
        topic,
        why,
    )


def _idle_error(
    consumer: Any, assembler: StreamAssembler, topic: str, bootstrap: str, idle_timeout_s: float
) -> StreamError:
    broker_gone = not reachable(bootstrap)
    if assembler.start is None:
        what = "no start message"
        if assembler.stream_id is not None:
            what += f" of stream {assembler.stream_id}"
        if assembler.unverified:
            what += (
                f" signed with the key ({assembler.unverified} records skipped as not signed "
                "with it: is the producer's key another one?)"
            )
        if broker_gone:
            what += f" (no Kafka broker answers at {bootstrap})"
        elif _is_empty(consumer, topic):
            # Not "does not exist": Tansu creates a topic on a metadata request for it.
            what += " (the topic is empty: nothing was produced to it)"
        return StreamError(f"{what} on {topic} within {idle_timeout_s} s")
    why = "and no end-of-stream message"
    if broker_gone:
        why = f"and no Kafka broker answers at {bootstrap} (it went away and did not come back)"
    return StreamError(
        f"stream {assembler.stream_id} on {topic} is truncated: no message for "
        f"{idle_timeout_s} s after seq {assembler.next_seq - 1} (offset {assembler.last_offset}) "
        f"{why}"
    )


def _is_empty(consumer: Any, topic: str) -> bool:
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    partition = TopicPartition(topic, PARTITION)
    try:
        return consumer.end_offsets([partition]).get(partition) == 0
    except KafkaError:
        return False


def consume_snapshots(**options: Any) -> tuple[Snapshots, ConsumeReport]:
    """`consume_updates` (same options), then `build_snapshots` of what it read."""
    updates, report = consume_updates(**options)
    snapshots = build_snapshots(updates)
    return snapshots, replace(report, snapshot_bytes=snapshots.nbytes)


def consume_to_ray(**options: Any) -> tuple[ray.ObjectRef[Snapshots], ConsumeReport]:
    """Consume a stream, build its Snapshots and put them in the Ray object store once.

    Trials then share the one object (`ray.get(ref)` in each task costs no copy on the same
    node). Starts a local Ray runtime if none is initialised; initialise Ray first to choose
    its address and CPUs.

    Args:
        **options: as `consume_updates`.

    Returns:
        The object reference of the `sor.data.snapshots.Snapshots` and the report.
    """
    import ray

    snapshots, report = consume_snapshots(**options)
    return ray.put(snapshots), report
