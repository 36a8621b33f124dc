"""CSV to one Ray object through Kafka: load, produce, consume, in the order `sor run` needs.

The stream is signed with a random key made for the run and held in this process only
(`stream.signing`): a message that anyone else writes into the stream is refused, and the run
fails with a `StreamError` (exit 2) rather than sweep on data it did not send.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sor.config import Config
from sor.data.loader import DataSummary, load_updates, require_asks
from sor.data.snapshots import Snapshots
from stream.broker import EmbeddedBroker
from stream.consumer import consume_to_ray
from stream.messages import new_stream_id
from stream.producer import ProduceReport, produce
from stream.signing import StreamKey

if TYPE_CHECKING:
    import ray

__all__ = ["stream_snapshots"]

log = logging.getLogger("sor.run")


def stream_snapshots(
    config: Config, data_path: Path, *, progress: bool = False
) -> tuple[ray.ObjectRef[Snapshots], DataSummary, dict[str, Any]]:
    """CSV -> producer -> Kafka -> consumer -> one Ray object; returns (ref, data summary, info)."""
    updates, summary = load_updates(
        data_path,
        **config.load_options(),
    )
    require_asks(updates.ask_px, data_path)
    kafka = config.kafka
    with ExitStack() as stack:
        bootstrap = kafka.bootstrap
        if bootstrap is None:
            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap
            log.info("embedded Kafka broker at %s", bootstrap)
        # One id for producer and consumer: on a shared topic the consumer skips older streams
        # and reads exactly this one, even while it is still being produced.
        stream_id = new_stream_id()
        # Producer and consumer share this process: a fresh key that never leaves it signs the
        # stream, so nothing written to the topic by anyone else is read as its data.
        key = StreamKey.random()
        produced: dict[str, ProduceReport] = {}
        failure: list[BaseException] = []

        def producer() -> None:
            try:
                produced["report"] = produce(
                    updates,
                    bootstrap=bootstrap,
                    topic=kafka.topic,
                    key=key,
                    speed=config.stream.speed,
                    batch_bytes=config.stream.batch_bytes,
                    security=kafka.security,
                    progress=progress,
                    stream_id=stream_id,
                    clock=config.data.clock,
                    max_message_bytes=config.stream.max_message_bytes,
                    connect_timeout_s=config.stream.connect_timeout_s,
                    reconnect_timeout_s=config.stream.reconnect_timeout_s,
                    source={"path": str(data_path)},
                )
            except BaseException as exc:  # surfaced in the main thread below
                failure.append(exc)

        started = time.perf_counter()
        if config.stream.speed > 0:
            # Paced: consume while producing, as a live system would.
            thread = threading.Thread(target=producer, name="producer", daemon=True)
            thread.start()
        else:
            producer()
            thread = None
        if failure:
            raise failure[0]
        report = produced.get("report")
        ref, consumed = consume_to_ray(
            bootstrap=bootstrap,
            topic=kafka.topic,
            key=key,
            stream_id=stream_id,
            start_offset=getattr(report, "first_offset", None),
            idle_timeout_s=config.stream.idle_timeout_s,
            max_message_bytes=config.stream.max_message_bytes,
            security=kafka.security,
            connect_timeout_s=config.stream.connect_timeout_s,
            progress=progress,
            expected_events=getattr(report, "events", None),
        )
        if thread is not None:
            thread.join()
            if failure:
                raise failure[0]
            report = produced["report"]
        info = {
            "stream": {
                "topic": kafka.topic,
                "embedded_broker": kafka.bootstrap is None,
                "stream_id": stream_id,
                "wall_s": round(time.perf_counter() - started, 3),
                "produce": _as_dict(report),
                "consume": _as_dict(consumed),
            }
        }
    return ref, summary, info


def _as_dict(obj: object) -> dict[str, Any]:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: v for k, v in asdict(obj).items() if isinstance(v, (int, float, str, bool))}
    return {}
