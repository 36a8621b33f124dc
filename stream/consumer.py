"""Read one snapshot stream back from Kafka into `QuoteUpdates`, Snapshots, or a Ray object.

Partition 0 is assigned by hand rather than by joining a consumer group: a group join waits for
the group's rebalance timeout, and one reader of one partition needs no coordination. The stream
ends at its end-of-stream message, never at the partition's high watermark: Tansu reports an
end offset that can lag the last message written (e.g. 1001 after 2000 messages).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from sor.errors import StreamError
from sor.snapshots import QuoteUpdates, Snapshots, build_snapshots
from stream.assembler import OnEvent, StreamAssembler
from stream.connect import check_bootstrap, check_topic, client_settings, connect_with_retry
from stream.messages import DEFAULT_MAX_BYTES, decode

if TYPE_CHECKING:
    import ray

log = logging.getLogger(__name__)

PARTITION = 0
_POLL_MS = 200  #: longest single wait for records, ms; bounds how late an idle timeout fires


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
        messages: messages of the stream accepted (start + events + end).
        duplicates: repeats of an accepted message (same seq, same content), dropped.
        skipped: messages of other streams before this one's start, ignored.
        first_offset: offset of the start message.
        last_offset: offset of the end message.
        wall_s: seconds from the first poll to the end message.
        messages_per_s: messages / wall_s.
        snapshot_bytes: bytes of the Snapshots built (consume_snapshots, consume_to_ray; else 0).
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
    snapshot_bytes: int = 0

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
        "metrics_enabled": False,
    }


def consume_updates(
    *,
    bootstrap: str,
    topic: str,
    stream_id: str | None = None,
    start_offset: int | None = None,
    idle_timeout_s: float = 30.0,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    security: dict[str, Any] | None = None,
    on_event: OnEvent | None = None,
    connect_timeout_s: float = 30.0,
) -> tuple[QuoteUpdates, ConsumeReport]:
    """Read one stream from partition 0 of `topic` and rebuild its quote updates.

    `build_snapshots` of the result is identical to `build_snapshots` of what the producer sent.

    Args:
        bootstrap: Kafka bootstrap servers, "HOST:PORT[,HOST:PORT...]".
        topic: the topic to read.
        stream_id: the stream to read; None reads the first stream whose start message is met.
        start_offset: offset to start reading at (e.g. `ProduceReport.first_offset`); None:
            the beginning of the partition.
        idle_timeout_s: give up after this many seconds without a new message.
        max_message_bytes: refuse larger messages.
        security: kafka-python settings (security_protocol, sasl_*, ssl_*), never logged.
        on_event: live mode: called as `on_event(ts, book)` for each snapshot event as it
            arrives; `book` is a read-only `stream.book.TopOfBook` of every venue's latest
            quote at `ts` (ns since the epoch).
        connect_timeout_s: seconds to keep retrying while no broker answers.

    Returns:
        The updates and a report (stream id, counts, duplicates, offsets, throughput).

    Raises:
        StreamError: no broker, a malformed message, another schema version, interleaved
            streams, a gap, a wrong event count, or no end-of-stream message within
            `idle_timeout_s` of the last message.
    """
    check_topic(topic)
    check_bootstrap(bootstrap)
    if start_offset is not None and start_offset < 0:
        raise StreamError(f"`start_offset >= 0` must hold, but got start_offset={start_offset}")
    if not idle_timeout_s > 0:
        raise StreamError(f"`idle_timeout_s > 0` must hold, but got {idle_timeout_s=}")
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
        _read(consumer, assembler, topic, idle_timeout_s, max_message_bytes)
        wall_s = time.monotonic() - started
    finally:
        consumer.close()
    updates = assembler.updates()
    start = assembler.start
    assert start is not None and assembler.first_offset is not None
    messages = assembler.events + 2
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
    )
    if report.duplicates:
        log.warning("stream %s: dropped %d duplicate messages", report.stream_id, report.duplicates)
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
    consumer: Any, assembler: StreamAssembler, topic: str, idle_timeout_s: float, max_bytes: int
) -> None:
    from kafka.errors import KafkaError

    last_message = time.monotonic()
    while True:
        try:
            batches = consumer.poll(timeout_ms=_POLL_MS)
        except KafkaError as exc:
            raise StreamError(f"reading {topic}: {type(exc).__name__}") from None
        if not batches:
            if time.monotonic() - last_message > idle_timeout_s:
                raise _idle_error(consumer, assembler, topic, idle_timeout_s)
            continue
        last_message = time.monotonic()
        for records in batches.values():
            for record in records:
                message = decode(record.value, max_bytes=max_bytes)
                if assembler.accept(message, record.offset):
                    return


def _idle_error(
    consumer: Any, assembler: StreamAssembler, topic: str, idle_timeout_s: float
) -> StreamError:
    if assembler.start is None:
        what = "no start message"
        if assembler.stream_id is not None:
            what += f" of stream {assembler.stream_id}"
        if _is_empty(consumer, topic):
            # Not "does not exist": Tansu creates a topic on a metadata request for it.
            what += " (the topic is empty: nothing was produced to it)"
        return StreamError(f"{what} on {topic} within {idle_timeout_s} s")
    return StreamError(
        f"stream {assembler.stream_id} on {topic} is truncated: no message for "
        f"{idle_timeout_s} s after seq {assembler.next_seq - 1} (offset {assembler.last_offset}) "
        "and no end-of-stream message"
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


def consume_to_ray(**options: Any) -> tuple[ray.ObjectRef, ConsumeReport]:
    """Consume a stream, build its Snapshots and put them in the Ray object store once.

    Trials then share the one object (`ray.get(ref)` in each task costs no copy on the same
    node). Starts a local Ray runtime if none is initialised; initialise Ray first to choose
    its address and CPUs.

    Args:
        **options: as `consume_updates`.

    Returns:
        The object reference of the `sor.snapshots.Snapshots` and the report.
    """
    import ray

    snapshots, report = consume_snapshots(**options)
    return ray.put(snapshots), report
