"""Stream kept quote updates to a Kafka topic as snapshot events, optionally paced in real time.

Delivery: acks="all" and the idempotent producer (Tansu accepts InitProducerId, so no fallback is
needed), every message to partition 0 of a topic created with one partition, so that the
consumer sees the events in clock order. The consumer still checks sequence numbers: idempotence
guards against retries within one producer session, not against everything else.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sor.errors import StreamError
from sor.snapshots import QuoteUpdates
from stream.connect import check_bootstrap, check_topic, client_settings, connect_with_retry
from stream.events import count_events, split_events
from stream.messages import (
    DEFAULT_MAX_BYTES,
    encode_end,
    encode_event,
    encode_start,
    new_stream_id,
)

log = logging.getLogger(__name__)

PARTITION = 0  #: every message of a stream goes here: one partition keeps the order
ACK_TIMEOUT_S = 60.0  #: seconds to wait for the broker to acknowledge what was sent


@dataclass(frozen=True)
class ProduceReport:
    """What a `produce` call wrote.

    Attributes:
        stream_id: id of the stream written (32 hex digits).
        topic: topic written to (partition 0).
        bootstrap: the broker address used.
        symbol: the instrument.
        events: snapshot event messages written.
        messages: all messages written (start + events + end).
        first_offset: offset of the start message: a consumer of a shared topic starts here.
        last_offset: offset of the end message.
        wall_s: seconds from the start message to the acknowledged end message.
        messages_per_s: messages / wall_s.
        speed: pacing used: 0 as fast as possible, 1 real time.
    """

    stream_id: str
    topic: str
    bootstrap: str
    symbol: str
    events: int
    messages: int
    first_offset: int
    last_offset: int
    wall_s: float
    messages_per_s: float
    speed: float

    @property
    def count(self) -> int:
        """Number of snapshot events written (the same as `events`)."""
        return self.events

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def producer_settings(speed: float, max_message_bytes: int) -> dict[str, Any]:
    """kafka-python producer settings of the pipeline (shared with bench/stream_throughput.py).

    Args:
        speed: pacing factor; when paced, every event leaves at once (no batching delay).
        max_message_bytes: largest message, bytes.
    """
    return {
        "acks": "all",
        "enable_idempotence": True,
        # Kafka would otherwise create a missing topic with the broker's default partition
        # count. Tansu ignores this flag and creates any topic a client asks metadata for, with
        # 4 partitions: hence ensure_topic first, and partition 0 always.
        "allow_auto_create_topics": False,
        "linger_ms": 0 if speed > 0 else 5,
        "batch_size": 256 * 1024,
        "max_request_size": max(1_048_576, max_message_bytes + 1024),
        "metrics_enabled": False,
    }


def ensure_topic(
    bootstrap: str,
    topic: str,
    *,
    security: dict[str, Any] | None = None,
    connect_timeout_s: float = 30.0,
) -> None:
    """Create `topic` with one partition unless it exists (whatever its partition count).

    Args:
        bootstrap: Kafka bootstrap servers, "HOST:PORT[,HOST:PORT...]".
        topic: the topic name.
        security: kafka-python settings (security_protocol, sasl_*, ssl_*), never logged.
        connect_timeout_s: seconds to keep retrying while no broker answers.

    Raises:
        StreamError: no broker answered, or the broker refused to create the topic.
    """
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    settings = client_settings(check_bootstrap(bootstrap), security)
    admin = connect_with_retry(
        lambda ms: KafkaAdminClient(**settings, bootstrap_timeout_ms=ms),
        bootstrap=bootstrap,
        what="admin client",
        connect_timeout_s=connect_timeout_s,
    )
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        log.info("created topic %s (1 partition)", topic)
    except TopicAlreadyExistsError:
        pass
    except KafkaError as exc:
        raise StreamError(
            f"cannot create topic {topic!r} at {bootstrap}: {type(exc).__name__}"
        ) from None
    finally:
        admin.close()


def produce(
    updates: QuoteUpdates,
    *,
    bootstrap: str,
    topic: str,
    speed: float = 0.0,
    security: dict[str, Any] | None = None,
    progress: bool = True,
    stream_id: str | None = None,
    clock: str = "ts_event",
    source: dict[str, Any] | None = None,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    connect_timeout_s: float = 30.0,
) -> ProduceReport:
    """Write `updates` to `topic` as one stream: start, one event per snapshot time, end.

    Example:
        >>> report = produce(updates, bootstrap="127.0.0.1:9092", topic="l1")  # doctest: +SKIP
        >>> snapshots_ref, _ = consume_to_ray(bootstrap="127.0.0.1:9092", topic="l1",
        ...     stream_id=report.stream_id, start_offset=report.first_offset)  # doctest: +SKIP

    Args:
        updates: kept quote updates in clock order (`sor.marketdata.load_updates`).
        bootstrap: Kafka bootstrap servers, "HOST:PORT[,HOST:PORT...]".
        topic: created with one partition if missing; if it has more, partition 0 is used.
        speed: 0 sends as fast as the broker takes; s > 0 sends each event when
            (ts - first ts) / s of wall time has passed since the start (1: real time).
        security: kafka-python settings (security_protocol, sasl_*, ssl_*), passed through
            and never logged.
        progress: show a progress bar on stderr.
        stream_id: 32 hex digits to use (see `messages.new_stream_id`), so that a live consumer
            can know it in advance; None makes a fresh one.
        clock: the clock `updates.ts` is on, "ts_event" or "ts_recv"; told to the consumer.
        source: JSON-ready description of the data for the start message.
        max_message_bytes: refuse to write a larger message (and size the producer's requests).
        connect_timeout_s: seconds to keep retrying while no broker answers.

    Returns:
        The stream id, counts, offsets of the first and last message, and wall time.

    Raises:
        StreamError: no broker answered, the topic cannot be created, a message is too large,
            or the broker did not acknowledge every message.
    """
    check_topic(topic)
    check_bootstrap(bootstrap)
    if not speed >= 0:
        raise StreamError(f"`speed >= 0` must hold, but got speed={speed}")
    stream_id = stream_id or new_stream_id()
    start_message = encode_start(
        stream_id, symbol=updates.symbol, clock=clock, source=source, max_bytes=max_message_bytes
    )
    n_events = count_events(updates)
    ensure_topic(bootstrap, topic, security=security, connect_timeout_s=connect_timeout_s)
    settings = client_settings(bootstrap, security)

    from kafka import KafkaProducer

    producer = connect_with_retry(
        lambda ms: KafkaProducer(
            **settings, **producer_settings(speed, max_message_bytes), bootstrap_timeout_ms=ms
        ),
        bootstrap=bootstrap,
        what="producer",
        connect_timeout_s=connect_timeout_s,
    )
    try:
        partitions = producer.partitions_for(topic)
        if partitions and len(partitions) > 1:
            log.warning(
                "topic %s has %d partitions; writing the whole stream to partition %d to keep "
                "its order",
                topic,
                len(partitions),
                PARTITION,
            )
        report = _send_all(
            producer,
            updates,
            topic=topic,
            stream_id=stream_id,
            start_message=start_message,
            n_events=n_events,
            speed=speed,
            progress=progress,
            max_bytes=max_message_bytes,
        )
    finally:
        producer.close(timeout=5)
    report = ProduceReport(bootstrap=bootstrap, symbol=updates.symbol, speed=speed, **report)
    log.info(
        "produced stream %s: %d events, %d messages in %.2f s (%.0f messages/s) to %s offsets "
        "%d..%d",
        stream_id,
        report.events,
        report.messages,
        report.wall_s,
        report.messages_per_s,
        topic,
        report.first_offset,
        report.last_offset,
    )
    return report


def _send_all(
    producer: Any,
    updates: QuoteUpdates,
    *,
    topic: str,
    stream_id: str,
    start_message: bytes,
    n_events: int,
    speed: float,
    progress: bool,
    max_bytes: int,
) -> dict[str, Any]:
    from kafka.errors import KafkaError
    from tqdm import tqdm

    send = producer.send
    futures = []
    bar = tqdm(
        total=n_events + 2,
        unit="msg",
        desc=f"produce {topic}",
        disable=not progress,
        mininterval=0.5,
        leave=False,
    )
    try:
        started = time.monotonic()
        first = send(topic, start_message, partition=PARTITION)
        seq, first_ts, pending = 0, None, 0
        bar_every = 1 if speed > 0 else 1024  # paced streams are slow enough to show each event
        for ts, rows, volume in split_events(updates):
            if speed > 0:
                # Due times are measured from the stream's start, not from the previous
                # event, so that sleep overshoot does not accumulate into drift.
                if first_ts is None:
                    first_ts = ts
                delay = started + (ts - first_ts) / 1e9 / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            seq += 1
            futures.append(
                send(
                    topic,
                    encode_event(stream_id, seq, ts, rows, volume, max_bytes),
                    partition=PARTITION,
                )
            )
            pending += 1
            if pending >= bar_every:
                bar.update(pending)
                pending = 0
        last = send(topic, encode_end(stream_id, seq + 1, seq), partition=PARTITION)
        producer.flush(timeout=ACK_TIMEOUT_S)
        first_offset = first.get(timeout=ACK_TIMEOUT_S).offset
        last_offset = last.get(timeout=ACK_TIMEOUT_S).offset
        wall_s = time.monotonic() - started
        bar.update(pending + 2)
    except KafkaError as exc:
        raise StreamError(
            f"the broker did not acknowledge stream {stream_id} on {topic}: {type(exc).__name__}"
        ) from None
    finally:
        bar.close()
    for i, future in enumerate(futures, start=1):
        if not future.succeeded():
            raise StreamError(
                f"the broker did not acknowledge event seq {i} of stream {stream_id} on {topic}: "
                f"{type(future.exception).__name__}"
            )
    messages = seq + 2
    if last_offset - first_offset != messages - 1:
        log.warning(
            "stream %s occupies offsets %d..%d of %s for %d messages: something else wrote to "
            "partition %d meanwhile, and consumers will refuse the interleaved stream",
            stream_id,
            first_offset,
            last_offset,
            topic,
            messages,
            PARTITION,
        )
    return {
        "stream_id": stream_id,
        "topic": topic,
        "events": seq,
        "messages": messages,
        "first_offset": first_offset,
        "last_offset": last_offset,
        "wall_s": wall_s,
        "messages_per_s": messages / max(wall_s, 1e-9),
    }


def produce_csv(
    path: str | Path,
    *,
    start: str | int | None = None,
    end: str | int | None = None,
    symbol: str | None = None,
    clock: str = "ts_event",
    crossed: str = "error",
    **options: Any,
) -> ProduceReport:
    """Load a Databento MBP CSV (`sor.marketdata.load_updates`) and `produce` it.

    Args:
        path: the CSV (plain or gzip).
        start, end: evaluation window on ts_event, inclusive.
        symbol: instrument, where the file holds several.
        clock: "ts_event" or "ts_recv".
        crossed: "error" or "skip" crossed quotes.
        **options: passed to `produce` (bootstrap, topic, speed, security, ...).

    Raises:
        DataError: the file is unusable.
        StreamError: as `produce`.
    """
    from sor.marketdata import load_updates

    updates, summary = load_updates(
        path, start=start, end=end, symbol=symbol, clock=clock, crossed=crossed
    )
    # The file name only: the start message may land on a shared topic.
    source = {
        "file": Path(path).name,
        "rows_kept": summary.rows_kept,
        "start": summary.start,
        "end": summary.end,
        "venues": summary.venues,
    }
    return produce(updates, clock=clock, source=source, **options)
