"""CSV to snapshots through Kafka: load, produce, consume, in the order `sor run` needs.

`stream_snapshots` sends a file's quote updates and reads them back; `consume_stream` reads a
stream someone else produced (`sor produce`, `sor run --consume-only`). Neither touches Ray:
`sor run` starts Ray meanwhile and puts the snapshots into its object store once both are
ready.

The stream `stream_snapshots` sends is signed with a random key made for the run and held in
this process only (`stream.signing`): a message that anyone else writes into the stream is
refused, and the run fails with a `StreamError` (exit 2) rather than sweep on data it did not
send. `consume_stream` reads the key from the environment variable `stream.key_env` names.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from sor.config import Config
from sor.data.loader import DataSummary, load_updates, ns_to_iso, require_asks
from sor.data.snapshots import Snapshots
from sor.errors import StreamError
from stream.broker import EmbeddedBroker
from stream.connect import check_bootstrap, reachable
from stream.consumer import consume_snapshots
from stream.messages import new_stream_id
from stream.producer import ProduceReport, produce
from stream.signing import StreamKey

__all__ = ["BROKER_CHECK_S", "check_broker", "consume_stream", "stream_snapshots"]

log = logging.getLogger("sor.run")

#: Longest wait for a given broker to accept a TCP connection before `sor run` starts anything.
BROKER_CHECK_S = 5.0


def check_broker(bootstrap: str, timeout_s: float = BROKER_CHECK_S) -> None:
    """Fail fast, naming the address, when no server of `bootstrap` accepts a TCP connection.

    Tried every 0.25 s for up to `timeout_s` seconds (a broker that is just starting gets that
    long), so that `sor run` does not start Ray and load the data for a broker that is not there.

    Raises:
        StreamError: `bootstrap` is not HOST:PORT[,...], or nothing accepted a connection.
    """
    check_bootstrap(bootstrap)
    deadline = time.monotonic() + timeout_s
    while not reachable(bootstrap, timeout_s=min(1.0, timeout_s)):
        if time.monotonic() >= deadline:
            raise StreamError(
                f"cannot reach a Kafka broker at {bootstrap} (no connection within "
                f"{timeout_s:g} s): start it, or leave --bootstrap unset for the embedded broker"
            )
        time.sleep(0.25)


def stream_snapshots(
    config: Config, data_path: Path, *, progress: bool = False
) -> tuple[Snapshots, DataSummary, dict[str, Any]]:
    """CSV -> producer -> Kafka -> consumer -> Snapshots; returns (snapshots, summary, info).

    `info["stream"]` describes the stream; `info["timings"]` holds the seconds of each phase:
    `load` (the file), `broker_start` (the embedded broker; 0 with kafka.bootstrap), `produce`
    and `consume` (each from its first message to its last; they overlap when paced).
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    updates, summary = load_updates(
        data_path,
        **config.load_options(),
    )
    require_asks(updates.ask_px, data_path)
    timings["load"] = time.perf_counter() - started
    kafka = config.kafka
    with ExitStack() as stack:
        bootstrap = kafka.bootstrap
        started = time.perf_counter()
        if bootstrap is None:
            broker = stack.enter_context(EmbeddedBroker())
            # A stream cut short (an error, Ctrl-C) leaves clients connected, and Tansu then
            # takes its whole grace period to stop: its topics are of no use any more, so kill
            # it at once (the `with` block stops it normally otherwise).
            stack.push(lambda kind, *_: broker.kill() if kind is not None else None)
            bootstrap = broker.bootstrap
            log.info("embedded Kafka broker at %s", bootstrap)
        timings["broker_start"] = time.perf_counter() - started
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
        snaps, consumed = consume_snapshots(
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
        assert report is not None
        timings["produce"] = report.wall_s
        timings["consume"] = consumed.wall_s
        info = {
            "stream": {
                "topic": kafka.topic,
                "embedded_broker": kafka.bootstrap is None,
                "stream_id": stream_id,
                "wall_s": round(time.perf_counter() - started, 3),
                "produce": _as_dict(report),
                "consume": _as_dict(consumed),
            },
            "timings": timings,
        }
    return snaps, summary, info


def consume_stream(
    config: Config,
    *,
    key: StreamKey | None = None,
    stream_id: str | None = None,
    progress: bool = False,
) -> tuple[Snapshots, dict[str, Any], dict[str, Any]]:
    """Read a stream another process produced on `kafka.topic` into Snapshots.

    The stream must be signed with `key`, by default the key in the environment variable
    `stream.key_env` names (the producer's, docs/stream.md). Without `stream_id` the first
    stream on the topic signed with that key is read, from the partition's beginning.

    Returns:
        (snapshots, data: the results JSON's `data` section as far as the stream tells it,
        info: `stream` and `timings` as `stream_snapshots` gives them).

    Raises:
        StreamError: no key, no broker, no such stream, or a broken stream (`consume_updates`).
    """
    kafka = config.kafka
    if kafka.bootstrap is None:
        raise StreamError(
            "--consume-only reads a stream another process produced: give its broker with "
            "--bootstrap HOST:PORT (the embedded broker starts empty)"
        )
    if key is None:
        key = StreamKey.from_env(config.stream.key_env)
    snaps, consumed = consume_snapshots(
        bootstrap=kafka.bootstrap,
        topic=kafka.topic,
        key=key,
        stream_id=stream_id,
        idle_timeout_s=config.stream.idle_timeout_s,
        max_message_bytes=config.stream.max_message_bytes,
        security=kafka.security,
        connect_timeout_s=config.stream.connect_timeout_s,
        progress=progress,
    )
    if len(snaps) == 0:
        raise StreamError(f"stream {consumed.stream_id} on {kafka.topic} holds no snapshot event")
    data = {
        "path": None,
        "stream_source": consumed.source,
        "symbol": consumed.symbol,
        "clock": consumed.clock,
        "venues": [int(v) for v in snaps.venues],
        "start": ns_to_iso(int(snaps.ts[0])),
        "end": ns_to_iso(int(snaps.ts[-1])),
        "snapshot_events": consumed.events,
        "trade_rows": int(len(snaps.trade_px)),
        "traded_shares": int(snaps.trade_volume.sum()),
    }
    info = {
        "stream": {
            "topic": kafka.topic,
            "embedded_broker": False,
            "stream_id": consumed.stream_id,
            "consume_only": True,
            "wall_s": round(consumed.wall_s, 3),
            "consume": _as_dict(consumed),
        },
        "timings": {"load": 0.0, "broker_start": 0.0, "produce": 0.0, "consume": consumed.wall_s},
    }
    return snaps, data, info


def _as_dict(obj: object) -> dict[str, Any]:
    if is_dataclass(obj) and not isinstance(obj, type):
        return {k: v for k, v in asdict(obj).items() if isinstance(v, (int, float, str, bool))}
    return {}
