"""Stream kept quote updates to a Kafka topic as snapshot events, optionally paced in real time.

Delivery: acks="all" and the idempotent producer (Tansu accepts InitProducerId, so no fallback is
needed), every message to partition 0 of a topic created with one partition, so that the
consumer sees the events in clock order. The consumer still checks sequence numbers: idempotence
guards against retries within one producer session, not against everything else.

Messages. The start message (declaring the number of events), the event messages, the end
message, each signed with the stream's key (`stream.signing`). The event messages are cut from
the loaded arrays as columns (`stream.events.event_columns`, `stream.messages.BatchPacker`),
with no Python object per event. At `speed` 0 consecutive events are packed into one event
message up to `batch_bytes` bytes; with pacing, the events that fall
due together: each event's due time is rounded up to the next `PACE_TICK_S` of the stream's
wall clock, and the events of one due time go in one message (up to `batch_bytes`), sent then.
`batch_bytes` 0 sends one event per message, each at its own due time. The messages are a
function of the data, the stream id, the key and these settings: a message sent again is
byte-identical.

Broker faults. The producer follows the acknowledgements of partition 0: message number `i`
(0 the start message, counting messages, not events) at offset `o`. A send that fails, offsets
that go back (`o - i` never decreases in an intact log), or
acknowledgements that stop while no broker accepts a connection all mean the broker went away.
The producer then drops its kafka-python producer (an idempotent producer's id is unknown to a
broker that restarted empty, and kafka-python cannot recover it there), reconnects with backoff
for up to `reconnect_timeout_s`, and reads back what the broker still holds: the start message
and the last acknowledged message where they were acknowledged, then whatever of the stream
follows them. It sends again from the first message the broker does not hold: from the last
acknowledged one on for a broker that kept its data (Kafka), from seq 0 for one that lost it (the
in-memory embedded broker). No seq is skipped, and a message sent twice is byte-identical (the
messages are a function of the data and the stream id), so the consumer drops it as a duplicate.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sor.data.snapshots import QuoteUpdates
from sor.errors import StreamError
from sor.vocabulary import DEFAULT_MAX_DATA_BYTES
from stream.connect import (
    check_bootstrap,
    check_topic,
    client_settings,
    connect_with_retry,
    reachable,
)
from stream.consumer import consumer_settings, records_from
from stream.events import count_events, event_columns
from stream.messages import (
    BATCH_HEADER_BYTES,
    DEFAULT_MAX_BYTES,
    PARTITION,
    Batch,
    BatchPacker,
    decode,
    encode_end,
    encode_start,
    event_bounds,
    new_stream_id,
    update_bytes,
)
from stream.signing import StreamKey, signature_problem

__all__ = [
    "ACK_TIMEOUT_S",
    "DEFAULT_BATCH_BYTES",
    "PACE_TICK_S",
    "RECONNECT_TIMEOUT_S",
    "ProduceReport",
    "ensure_topic",
    "produce",
    "produce_csv",
    "producer_settings",
    "stream_messages",
]

log = logging.getLogger(__name__)

ACK_TIMEOUT_S = 60.0  #: seconds to wait for the broker to acknowledge what was sent
RECONNECT_TIMEOUT_S = 30.0  #: seconds to wait for a broker that went away mid-stream
_STALL_S = 2.0  #: no acknowledgement for this long: check that the broker is still there
_POLL_S = 0.2  #: longest single wait for acknowledgements, s
_CHECK_BYTES = 1 << 20  #: collect acknowledgements at least this often, bytes sent
DEFAULT_BATCH_BYTES = 524_288  #: largest event message the producer packs, bytes (0: one event)
PACE_TICK_S = 0.001  #: paced and batched: due times are rounded up to this many seconds
#: The packer of a stream's event messages, the first event of each event message and one past
#: the last, each event's due time (None unpaced): see `_plan`.
_Plan = tuple[BatchPacker, list[int], np.ndarray | None]


@dataclass(frozen=True)
class ProduceReport:
    """What a `produce` call wrote.

    Attributes:
        stream_id: id of the stream written (32 hex digits).
        topic: topic written to (partition 0).
        bootstrap: the broker address used.
        symbol: the instrument.
        events: snapshot events written.
        messages: all messages written: the start, the event messages, the end.
        first_offset: offset of the start message: a consumer of a shared topic starts here.
        last_offset: offset of the end message.
        wall_s: seconds from the start message to the acknowledged end message.
        messages_per_s: messages / wall_s.
        events_per_s: events / wall_s.
        speed: pacing used: 0 as fast as possible, 1 real time.
        batch_bytes: largest event message packed, bytes (0: one event per message).
        reconnects: times the broker went away mid-stream and the producer reconnected.
        resent: messages sent again after a reconnect (the broker had lost them, or they
            were not acknowledged).
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
    events_per_s: float = 0.0
    batch_bytes: int = 0
    reconnects: int = 0
    resent: int = 0

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
        # send() blocks this long at most (buffer full, or no metadata while the broker is
        # away) before it raises; the producer then checks the broker and reconnects.
        "max_block_ms": 10_000,
        # kafka-python doubles its reconnect backoff up to 30 s by default.
        "reconnect_backoff_max_ms": 1000,
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
    key: StreamKey,
    speed: float = 0.0,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    security: dict[str, Any] | None = None,
    progress: bool = True,
    stream_id: str | None = None,
    clock: str = "ts_event",
    source: dict[str, Any] | None = None,
    max_message_bytes: int = DEFAULT_MAX_BYTES,
    connect_timeout_s: float = 30.0,
    reconnect_timeout_s: float = RECONNECT_TIMEOUT_S,
) -> ProduceReport:
    """Write `updates` to `topic` as one signed stream: start, the snapshot events, end.

    Survives the broker going away mid-stream (see the module docstring): it reconnects and
    sends again from the first message the broker no longer holds.

    Example:
        >>> key = StreamKey.random()
        >>> report = produce(updates, bootstrap="127.0.0.1:9092", topic="l1",
        ...     key=key)  # doctest: +SKIP
        >>> snapshots_ref, _ = consume_to_ray(bootstrap="127.0.0.1:9092", topic="l1", key=key,
        ...     stream_id=report.stream_id, start_offset=report.first_offset)  # doctest: +SKIP

    Args:
        updates: kept quote updates in clock order (`sor.data.loader.load_updates`).
        bootstrap: Kafka bootstrap servers, "HOST:PORT[,HOST:PORT...]".
        topic: created with one partition if missing; if it has more, partition 0 is used.
        key: the key every message is signed with (`stream.signing`); the consumer needs it.
        speed: 0 sends as fast as the broker takes; s > 0 sends each event when
            (ts - first ts) / s of wall time has passed since the start (1: real time).
        batch_bytes: pack consecutive events into event messages of at most this many bytes
            (and at most `max_message_bytes`); 0: one event per message. Paced, only the
            events due together share a message (see the module docstring).
        security: kafka-python settings (security_protocol, sasl_*, ssl_*), passed through
            and never logged.
        progress: show a progress bar on stderr.
        stream_id: 32 hex digits to use (see `messages.new_stream_id`), so that a live consumer
            can know it in advance; None makes a fresh one.
        clock: the clock `updates.ts` is on, "ts_event" or "ts_recv"; told to the consumer.
        source: JSON-ready description of the data for the start message.
        max_message_bytes: refuse to write a larger message (and size the producer's requests).
        connect_timeout_s: seconds to keep retrying while no broker answers at the start.
        reconnect_timeout_s: seconds to keep reconnecting to a broker that went away
            mid-stream, counted from when the producer notices (within about 2 s).

    Returns:
        The stream id, counts, offsets of the first and last message, and wall time.

    Raises:
        StreamError: no broker answered, the topic cannot be created, a message is too large,
            the broker did not acknowledge every message, or it went away and the producer
            could not resume within `reconnect_timeout_s`; names the bootstrap address.
    """
    check_topic(topic)
    check_bootstrap(bootstrap)
    if not speed >= 0:
        raise StreamError(f"`speed >= 0` must hold, but got speed={speed}")
    if not reconnect_timeout_s >= 0:
        raise StreamError(f"`reconnect_timeout_s >= 0` must hold, but got {reconnect_timeout_s=}")
    if type(batch_bytes) is not int or batch_bytes < 0:
        raise StreamError(f"`batch_bytes >= 0` must hold, but got {batch_bytes=}")
    if not isinstance(key, StreamKey):
        raise StreamError("produce needs a key to sign the stream: a stream.signing.StreamKey")
    stream_id = stream_id or new_stream_id()
    n_events = count_events(updates)
    start_message = encode_start(
        stream_id,
        symbol=updates.symbol,
        clock=clock,
        events=n_events,
        source=source,
        levels=updates.n_levels,
        max_bytes=max_message_bytes,
    )
    ensure_topic(bootstrap, topic, security=security, connect_timeout_s=connect_timeout_s)
    job = _Job(
        updates=updates,
        bootstrap=bootstrap,
        topic=topic,
        stream_id=stream_id,
        start_message=start_message,
        speed=speed,
        security=security,
        max_bytes=max_message_bytes,
        key=key,
        batch_bytes=batch_bytes,
    )
    from tqdm import tqdm

    state = _Progress()
    bar = tqdm(
        total=n_events,
        unit="event",
        desc=f"produce {topic}",
        disable=not progress,
        mininterval=0.5,
        leave=False,
    )
    producer = job.open_producer(connect_timeout_s)
    started = time.monotonic()
    deadline, acks_then = 0.0, -1
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
        while True:
            try:
                job.send(producer, state, bar, started)
                break
            except _Interrupted as exc:
                _close_producer(producer, 0)
                producer = None
                if state.acks != acks_then:  # a new outage, not the same one going on
                    deadline = time.monotonic() + reconnect_timeout_s
                    acks_then = state.acks
                state.reconnects += 1
                log.warning(
                    "stream %s: lost the Kafka broker at %s %s (%s); reconnecting for up to %g s "
                    "to send again what it does not hold",
                    stream_id,
                    bootstrap,
                    state.where(),
                    exc,
                    reconnect_timeout_s,
                )
                producer = job.recover(state, deadline, reason=str(exc))
    finally:
        bar.close()
        if producer is not None:
            _close_producer(producer, 5)
    wall_s = time.monotonic() - started
    messages = state.acked
    assert state.next_seq == n_events + 2 and state.first_offset is not None
    first_offset, last_offset = state.first_offset, state.last_offset
    if state.reconnects == 0 and last_offset - first_offset != messages - 1:
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
    report = ProduceReport(
        stream_id=stream_id,
        topic=topic,
        bootstrap=bootstrap,
        symbol=updates.symbol,
        events=n_events,
        messages=messages,
        first_offset=first_offset,
        last_offset=last_offset,
        wall_s=wall_s,
        messages_per_s=messages / max(wall_s, 1e-9),
        speed=speed,
        events_per_s=n_events / max(wall_s, 1e-9),
        batch_bytes=batch_bytes,
        reconnects=state.reconnects,
        resent=state.resent,
    )
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


def _hms(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class _Interrupted(Exception):
    """This producer session cannot go on: the broker went away, failed a send or lost data."""


class _Progress:
    """What the broker is known to hold of the stream, kept across producer sessions."""

    def __init__(self) -> None:
        self.acked = 0  #: messages 0..acked-1 are acknowledged, in order (numbers, not seqs)
        self.next_seq = 0  #: the seq of message `acked`'s first event (or of the start, end)
        self.first_offset: int | None = None  #: offset of the start message
        self.last_offset = -1  #: offset of message acked-1
        self.last_value = b""  #: message acked-1, to check that the broker still holds it
        self.spread: int | None = None  #: last_offset - (acked-1); never falls in an intact log
        self.acks = 0  #: acknowledgements received, over all sessions
        self.sent = 0  #: messages 0..sent-1 were sent at least once
        self.resent = 0  #: messages sent again after a reconnect
        self.reconnects = 0
        self.waiting_since = 0.0  #: time of the last acknowledgement, or since nothing waited
        self.next_probe = 0.0  #: when to check again that the broker accepts connections

    def ack(self, index: int, seq: int, count: int, offset: int, value: bytes) -> None:
        """Message number `index`, holding seqs seq..seq+count-1, is at `offset`."""
        if index == 0:
            self.first_offset = offset
        self.acked, self.last_offset, self.last_value = index + 1, offset, value
        self.next_seq = seq + count
        self.spread = offset - index
        self.acks += 1

    def where(self) -> str:
        """How far the stream got, for messages."""
        if self.acked == 0:
            return "before any message was acknowledged"
        return f"after seq {self.next_seq - 1} was acknowledged"

    def forget(self) -> None:
        """The broker lost the stream: nothing of it is held any more."""
        self.acked, self.first_offset, self.last_offset, self.last_value = 0, None, -1, b""
        self.next_seq = 0
        self.spread = None


class _Job:
    """One stream to write: its messages, the broker, and how to talk to it."""

    def __init__(
        self,
        *,
        updates: QuoteUpdates,
        bootstrap: str,
        topic: str,
        stream_id: str,
        start_message: bytes,
        speed: float,
        security: dict[str, Any] | None,
        max_bytes: int,
        key: StreamKey,
        batch_bytes: int,
    ) -> None:
        self.updates = updates
        self.bootstrap = bootstrap
        self.topic = topic
        self.stream_id = stream_id
        self.start_message = start_message
        self.speed = speed
        self.security = security
        self.max_bytes = max_bytes
        self.key = key
        self.batch_bytes = batch_bytes
        self.settings = client_settings(bootstrap, security)
        self._planned: _Plan | None = None
        # Pacing is measured from the first event's time (the smallest, as updates are sorted).
        self.first_ts = int(updates.ts[0]) if len(updates.ts) else 0
        self.data_span = _hms((int(updates.ts[-1]) - self.first_ts) / 1e9 if len(updates.ts) else 0)

    def open_producer(self, connect_timeout_s: float) -> Any:
        from kafka import KafkaProducer

        options = producer_settings(self.speed, self.max_bytes)
        return connect_with_retry(
            lambda ms: KafkaProducer(**self.settings, **options, bootstrap_timeout_ms=ms),
            bootstrap=self.bootstrap,
            what="producer",
            connect_timeout_s=connect_timeout_s,
        )

    def plan(self) -> _Plan:
        """The stream's events as columns, their bounds, the first event of each event message
        and one past the last, and each event's due time (None unpaced); made once."""
        if self._planned is None:
            self._planned = _plan(
                self.updates,
                stream_id=self.stream_id,
                batch_bytes=self.batch_bytes,
                max_bytes=self.max_bytes,
                speed=self.speed,
            )
        return self._planned

    def _event_messages(self, first: int = 0) -> Iterator[tuple[int, int, float | None, bytes]]:
        """(first seq, event count, due time or None, message) of each event message from
        event message number `first` (0-based) on; the due time is in seconds after the start
        of pacing."""
        packer, cuts, due = self.plan()
        max_bytes = self.max_bytes
        for a, b in zip(cuts[first:-1], cuts[first + 1 :], strict=True):
            value = packer.pack(a + 1, a, b, max_bytes)
            yield a + 1, b - a, None if due is None else float(due[a]), value

    def messages(self, first: int) -> Iterator[tuple[int, int, int, float | None, bytes]]:
        """(message number, first seq, events, due time or None, message) of the stream from
        message number `first` on; the start and end messages count no event."""
        if first == 0:
            yield 0, 0, 0, None, self.start_message
        cuts = self.plan()[1]
        n_messages = len(cuts) - 1
        for index, (first_seq, count, due, value) in enumerate(
            self._event_messages(max(first - 1, 0)), start=max(first, 1)
        ):
            yield index, first_seq, count, due, value
        seq = cuts[-1] + 1
        if n_messages + 1 >= first:
            yield n_messages + 1, seq, 0, None, encode_end(self.stream_id, seq, seq - 1)

    def send(self, producer: Any, state: _Progress, bar: Any, started: float) -> None:
        """Send the stream from the first message not acknowledged; wait for every ack.

        Raises:
            _Interrupted: the broker went away, failed a send, or lost acknowledged messages.
            StreamError: the broker is there but acknowledged nothing for ACK_TIMEOUT_S.
        """
        from kafka.errors import KafkaError, KafkaTimeoutError

        send, topic, speed, headers = producer.send, self.topic, self.speed, self.key.headers
        inflight: deque[tuple[int, int, int, bytes, Any]] = deque()
        # Paced streams are slow enough to check (and show) each message.
        # As fast as possible: every 256 messages or _CHECK_BYTES, whichever comes first.
        check_every = 1 if speed > 0 else 256
        n_unchecked = n_new = bytes_unchecked = 0
        state.waiting_since = time.monotonic()
        for index, seq, count, due, value in self.messages(state.acked):
            if due is not None:
                # Due times are measured from the stream's start, not from the previous event,
                # so that sleep overshoot does not accumulate into drift; messages sent again
                # after a reconnect are overdue and leave at once.
                delay = started + due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            try:
                future = send(topic, value, partition=PARTITION, headers=headers(value))
            except KafkaError as exc:  # KafkaTimeoutError: blocked max_block_ms
                raise _Interrupted(f"send failed: {type(exc).__name__}") from None
            # The start and end messages take one seq each; an event message one per event.
            inflight.append((index, seq, count or 1, value, future))
            if index < state.sent:
                state.resent += 1
            else:
                state.sent = index + 1
                n_new += count
            n_unchecked += 1
            bytes_unchecked += len(value)
            if n_unchecked >= check_every or bytes_unchecked >= _CHECK_BYTES:
                n_unchecked = bytes_unchecked = 0
                if due is not None:  # paced: how far into the data, of how much
                    bar.set_postfix_str(f"data {_hms(due * speed)} of {self.data_span}", False)
                bar.update(n_new)
                n_new = 0
                self._collect(inflight, state)
                self._watch(inflight, state)
        bar.update(n_new)
        while inflight:
            try:
                producer.flush(timeout=_POLL_S)
            except KafkaTimeoutError:
                pass
            except KafkaError as exc:
                raise _Interrupted(f"flush failed: {type(exc).__name__}") from None
            self._collect(inflight, state)
            self._watch(inflight, state)

    @staticmethod
    def _collect(inflight: deque, state: _Progress) -> None:
        # One partition acknowledges in order, so the done futures are at the left.
        while inflight and inflight[0][4].is_done:
            index, seq, count, value, future = inflight.popleft()
            if future.exception is not None:
                raise _Interrupted(f"seq {seq} failed: {type(future.exception).__name__}")
            offset = future.value.offset
            if state.spread is not None and offset - index < state.spread:
                raise _Interrupted(
                    f"seq {seq} acknowledged at offset {offset}, below seq "
                    f"{state.next_seq - 1}'s offset {state.last_offset}: the broker lost "
                    "acknowledged messages"
                )
            state.ack(index, seq, count, offset, value)
            state.waiting_since = time.monotonic()

    def _watch(self, inflight: deque, state: _Progress) -> None:
        now = time.monotonic()
        if not inflight:
            state.waiting_since = now
            return
        waited = now - state.waiting_since
        if waited > ACK_TIMEOUT_S:
            raise StreamError(
                f"the broker at {self.bootstrap} did not acknowledge stream {self.stream_id} on "
                f"{self.topic} for {ACK_TIMEOUT_S:g} s (seq {inflight[0][1]} waiting)"
            )
        # kafka-python retries a broker that went away for delivery_timeout_ms (2 min) without
        # a word; a refused TCP connection says it sooner. Checked every _STALL_S at most.
        if waited > _STALL_S and now >= state.next_probe:
            state.next_probe = now + _STALL_S
            if not reachable(self.bootstrap):
                raise _Interrupted(f"no broker accepts a connection at {self.bootstrap}")

    def recover(self, state: _Progress, deadline: float, *, reason: str) -> Any:
        """Reconnect, learn what the broker still holds, and open a new producer.

        Raises:
            StreamError: not done by `deadline` (time.monotonic()); names the address.
        """
        from kafka.errors import KafkaError

        delay = 0.2
        while True:
            try:
                remaining = max(deadline - time.monotonic(), 0.0)
                ensure_topic(
                    self.bootstrap, self.topic, security=self.security, connect_timeout_s=remaining
                )
                self._check_held(state, max(deadline - time.monotonic(), 0.0))
                return self.open_producer(max(deadline - time.monotonic(), 0.0))
            except (StreamError, KafkaError) as exc:
                last = str(exc) if isinstance(exc, StreamError) else type(exc).__name__
                if time.monotonic() + delay >= deadline:
                    raise StreamError(
                        f"stream {self.stream_id} on {self.topic}: lost the Kafka broker at "
                        f"{self.bootstrap} {state.where()} ({reason}) and could not resume "
                        f"before the reconnect timeout (last attempt: {last})"
                    ) from None
                log.warning(
                    "reconnecting to %s: %s; retrying in %.1f s", self.bootstrap, last, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _check_held(self, state: _Progress, connect_timeout_s: float) -> None:
        """Read back what the broker holds of the stream; set `state` to match."""
        if state.acked == 0:
            return  # nothing acknowledged: send from seq 0 whatever the broker holds
        from kafka import KafkaConsumer, TopicPartition

        consumer = connect_with_retry(
            lambda ms: KafkaConsumer(
                **self.settings, **consumer_settings(self.max_bytes), bootstrap_timeout_ms=ms
            ),
            bootstrap=self.bootstrap,
            what="consumer",
            connect_timeout_s=connect_timeout_s,
        )
        try:
            partition = TopicPartition(self.topic, PARTITION)
            consumer.assign([partition])
            assert state.first_offset is not None
            # A log only grows at its end, so if the start message and the last acknowledged
            # message are where they were acknowledged, everything between them is too.
            kept = _holds(consumer, partition, state.first_offset, self.start_message) and (
                state.acked == 1 or _holds(consumer, partition, state.last_offset, state.last_value)
            )
            if not kept:
                log.warning(
                    "stream %s: the broker at %s no longer holds seq 0..%d (offsets %d..%d of "
                    "%s): it lost its data; sending the stream again from seq 0",
                    self.stream_id,
                    self.bootstrap,
                    state.next_seq - 1,
                    state.first_offset,
                    state.last_offset,
                    self.topic,
                )
                state.forget()
                return
            acked = state.acked
            # Messages written but not acknowledged before the broker went away.
            for record in records_from(consumer, partition, state.last_offset + 1):
                if record.offset <= state.last_offset:
                    break  # the partition no longer reaches this far after all
                if signature_problem(self.key, record.value, record.headers) is not None:
                    continue  # not ours, whatever it claims
                try:
                    message = decode(record.value, max_bytes=self.max_bytes)
                except StreamError:
                    continue  # not ours: the consumer will say what it makes of it
                if message.stream_id != self.stream_id or message.seq < state.next_seq:
                    continue
                if message.seq > state.next_seq:
                    break  # cannot happen within a session; send again from state.acked
                count = message.count if type(message) is Batch else 1
                state.ack(state.acked, message.seq, count, record.offset, record.value)
            log.warning(
                "stream %s: the broker at %s still holds seq 0..%d (%d messages of them not "
                "acknowledged); sending from seq %d",
                self.stream_id,
                self.bootstrap,
                state.next_seq - 1,
                state.acked - acked,
                state.next_seq,
            )
        finally:
            consumer.close()


def _plan(
    updates: QuoteUpdates, *, stream_id: str, batch_bytes: int, max_bytes: int, speed: float
) -> _Plan:
    """Cut a stream's events into event messages, from the arrays, without a Python object
    per event.

    Unpaced, consecutive events fill each message up to `min(batch_bytes, max_bytes)` bytes;
    paced, each event's due time `(ts - first ts) / speed` is rounded up to the next
    `PACE_TICK_S` (when batching) and only events of one due time share a message.
    `batch_bytes` 0: one event per message. An event larger than the limit goes alone (and
    `encode_batch` refuses it if it is larger than `max_bytes`).

    Returns:
        (the `BatchPacker` of the events, the first event of each message and one past the
        last, the due time in seconds of each event or None unpaced).

    Raises:
        DataError: as `stream.events.event_columns`.
    """
    events = event_columns(updates)
    packer = BatchPacker(stream_id, events)
    update_start, trade_start = event_bounds(events)
    n = len(events.ts)
    due = None
    group_end = np.array([n], dtype=np.int64)
    if speed > 0:
        due = (events.ts - events.ts[:1]) / 1e9 / speed
        if batch_bytes:
            due = np.ceil(due / PACE_TICK_S) * PACE_TICK_S
        group_end = np.append(np.flatnonzero(due[1:] != due[:-1]) + 1, n)
    if batch_bytes == 0 or n == 0:
        return packer, list(range(n + 1)), due
    limit = min(batch_bytes, max_bytes) - BATCH_HEADER_BYTES
    per_event, per_update, per_trade = update_bytes(events.levels)
    # Bytes of events 0..i-1: the message of events a..b-1 takes size[b] - size[a] + header.
    size = per_event * np.arange(n + 1) + per_update * update_start + per_trade * trade_start
    cuts, a, group = [0], 0, 0
    while a < n:
        while group_end[group] <= a:
            group += 1
        b = int(np.searchsorted(size, size[a] + limit, side="right")) - 1
        a = min(max(b, a + 1), int(group_end[group]))
        cuts.append(a)
    return packer, cuts, due


def _holds(consumer: Any, partition: Any, offset: int, value: bytes) -> bool:
    """True if the record at `offset` of `partition` is `value`.

    Raises:
        StreamError: the broker did not say (it went away again); the caller retries.
    """
    for record in records_from(consumer, partition, offset):
        return record.offset == offset and record.value == value
    end = consumer.highwater(partition)
    if end is not None and end <= offset:
        return False  # the partition is shorter now: a broker that restarted empty
    raise StreamError(f"could not read offset {offset} of {partition.topic} back")


def stream_messages(
    updates: QuoteUpdates,
    *,
    key: StreamKey,
    stream_id: str | None = None,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    clock: str = "ts_event",
    max_message_bytes: int = DEFAULT_MAX_BYTES,
) -> list[bytes]:
    """The messages `produce` writes for `updates` as fast as possible, in order, without a
    broker (their signatures are `key.headers(message)`); for benchmarks and tests.

    Raises:
        DataError: as `stream.events.event_columns`.
        StreamError: a message too large.
    """
    stream_id = stream_id or new_stream_id()
    start = encode_start(
        stream_id,
        symbol=updates.symbol,
        clock=clock,
        events=count_events(updates),
        levels=updates.n_levels,
        max_bytes=max_message_bytes,
    )
    job = _Job(
        updates=updates,
        bootstrap="127.0.0.1:9092",  # never contacted
        topic="unused",
        stream_id=stream_id,
        start_message=start,
        speed=0.0,
        security=None,
        max_bytes=max_message_bytes,
        key=key,
        batch_bytes=batch_bytes,
    )
    return [value for *_, value in job.messages(0)]


def _close_producer(producer: Any, timeout_s: float) -> None:
    """Close a kafka-python producer, dropping what it could not deliver within `timeout_s`."""
    from kafka.errors import KafkaError

    try:
        producer.close(timeout=timeout_s)
        return
    except KafkaError:
        pass
    # kafka-python 3.0's close() flushes first and raises KafkaTimeoutError while records are
    # unacknowledged, leaving its network thread running: it would keep retrying them, into a
    # broker that came back, under a producer id that broker does not know. Stop it by hand.
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()  # fails the records still waiting
        sender.join(5.0)
    try:
        producer.close(timeout=0)
    except KafkaError:  # pragma: no cover - nothing left to wait for after force_close
        log.debug("kafka-python producer did not close cleanly", exc_info=True)


def produce_csv(
    path: str | Path,
    *,
    start: str | int | None = None,
    end: str | int | None = None,
    symbol: str | None = None,
    clock: str = "ts_event",
    crossed: str = "error",
    max_bytes: int = DEFAULT_MAX_DATA_BYTES,
    timezone: str = "UTC",
    **options: Any,
) -> ProduceReport:
    """Load a Databento MBP CSV (`sor.data.loader.load_updates`) and `produce` it.

    Args:
        path: the CSV (plain or gzip).
        start, end: evaluation window on ts_event, inclusive.
        symbol: instrument, where the file holds several.
        clock: "ts_event" or "ts_recv".
        crossed: "error" or "skip" crossed quotes.
        max_bytes: the largest file content read, bytes after decompression.
        timezone: the time zone of a time-of-day window.
        **options: passed to `produce` (bootstrap, topic, speed, security, ...).

    Raises:
        DataError: the file is unusable.
        StreamError: as `produce`.
    """
    from sor.data.loader import load_updates

    updates, summary = load_updates(
        path,
        start=start,
        end=end,
        symbol=symbol,
        clock=clock,
        crossed=crossed,
        max_bytes=max_bytes,
        timezone=timezone,
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
