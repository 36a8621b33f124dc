"""Throughput of the stream pipeline beside a bare kafka-python loop on the same messages.

Starts an embedded Tansu broker, generates l1_day-sized data (~60,000 rows), then measures:

- produce: `stream.producer.produce` (split, encode, send, acknowledge) against a bare loop that
  sends the same already-encoded messages with the same producer settings;
- consume: `stream.consumer.consume_updates` (poll, decode, check, rebuild) against a bare loop
  that polls the same number of records with the same consumer settings.

The ratio pipeline/bare says what the project's own code costs (target >= 0.7). No assertions:
speed lives here, not in tests.

    .venv/bin/python bench/stream_throughput.py [--rows 60000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

from sor.data.loader import load_updates  # noqa: E402
from sor.data.snapshots import QuoteUpdates  # noqa: E402
from sor.synth.generate import generate  # noqa: E402
from stream.broker import EmbeddedBroker  # noqa: E402
from stream.consumer import consume_updates, consumer_settings  # noqa: E402
from stream.events import split_events  # noqa: E402
from stream.messages import (  # noqa: E402
    DEFAULT_MAX_BYTES,
    encode_end,
    encode_event,
    encode_start,
    new_stream_id,
)
from stream.producer import ensure_topic, produce, producer_settings  # noqa: E402

_ROW_FIELDS = (
    "ts",
    "venue",
    "ask_px",
    "ask_sz",
    "bid_px",
    "bid_sz",
    "ask_depth_px",
    "ask_depth_sz",
)


def encoded_stream(updates) -> list[bytes]:
    """The messages `produce` would send for `updates`, encoded up front."""
    sid = new_stream_id()
    messages = [encode_start(sid, symbol=updates.symbol, clock="ts_event")]
    for seq, (ts, rows, volume) in enumerate(split_events(updates), start=1):
        messages.append(encode_event(sid, seq, ts, rows, volume))
    messages.append(encode_end(sid, len(messages), len(messages) - 1))
    return messages


def bare_produce(bootstrap: str, topic: str, messages: list[bytes]) -> float:
    """Seconds to send and acknowledge `messages` with a plain KafkaProducer."""
    ensure_topic(bootstrap, topic)
    producer = KafkaProducer(
        bootstrap_servers=[bootstrap], **producer_settings(0.0, DEFAULT_MAX_BYTES)
    )
    try:
        started = time.monotonic()
        futures = [producer.send(topic, m, partition=0) for m in messages]
        producer.flush()
        futures[-1].get()
        return time.monotonic() - started
    finally:
        producer.close()


def bare_consume(bootstrap: str, topic: str, n: int) -> float:
    """Seconds to poll `n` records from partition 0 with a plain KafkaConsumer."""
    consumer = KafkaConsumer(bootstrap_servers=[bootstrap], **consumer_settings(DEFAULT_MAX_BYTES))
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        started = time.monotonic()
        seen = 0
        while seen < n:
            for records in consumer.poll(timeout_ms=200).values():
                seen += len(records)
        return time.monotonic() - started
    finally:
        consumer.close()


def live_lag_ms(bootstrap: str, updates, seconds: float = 2.0) -> np.ndarray:
    """Lag of each on_event call behind the data's own schedule at speed 1, in ms.

    Measured against the event that arrived most promptly, so that the producer's connection
    time is left out: this is how much later than the best case each event came.
    """
    ts = updates.ts
    window = updates.ts < ts[0] + int(seconds * 1e9)
    part = QuoteUpdates(
        **{**updates.__dict__, **{k: getattr(updates, k)[window] for k in _ROW_FIELDS}}
    )
    stream_id = new_stream_id()
    arrivals: list[tuple[float, int]] = []
    producer = threading.Thread(
        target=produce,
        args=(part,),
        kwargs={
            "bootstrap": bootstrap,
            "topic": "bench-live",
            "speed": 1.0,
            "stream_id": stream_id,
            "progress": False,
        },
    )
    producer.start()
    try:
        consume_updates(
            bootstrap=bootstrap,
            topic="bench-live",
            stream_id=stream_id,
            idle_timeout_s=10,
            on_event=lambda t, book: arrivals.append((time.monotonic(), t)),
        )
    finally:
        producer.join()
    wall = np.array([a for a, _ in arrivals])
    due = np.array([t for _, t in arrivals], dtype=np.float64) / 1e9
    late = wall - due
    return (late - late.min()) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000, help="rows of generated data")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is shown")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        summary = generate(path, n_events=args.rows, schema="mbp-10", style="pretty", seed=0)
        updates, data = load_updates(path)
    from kafka.record import util

    crc = "C (crc32c package)" if util.crc32c_c is not None else "pure Python"
    messages = encoded_stream(updates)
    n = len(messages)
    print(
        f"data: {summary.rows} rows, {len(updates)} kept updates, {data.snapshot_events} "
        f"snapshot events, venues {data.venues}; {n} messages, "
        f"{sum(map(len, messages)) / n:.0f} bytes each on average; kafka-python CRC-32C: {crc}"
    )

    best = {
        "pipeline produce": 0.0,
        "bare produce": 0.0,
        "pipeline consume": 0.0,
        "bare consume": 0.0,
    }
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap
        for run in range(args.repeat):
            bare_topic, pipe_topic = f"bench-bare-{run}", f"bench-pipe-{run}"
            rates = {}
            rates["bare produce"] = n / bare_produce(bootstrap, bare_topic, messages)
            report = produce(updates, bootstrap=bootstrap, topic=pipe_topic, progress=False)
            rates["pipeline produce"] = report.messages / report.wall_s
            rates["bare consume"] = n / bare_consume(bootstrap, bare_topic, n)
            _, consumed = consume_updates(bootstrap=bootstrap, topic=pipe_topic, idle_timeout_s=10)
            rates["pipeline consume"] = consumed.messages / consumed.wall_s
            for key, rate in rates.items():
                best[key] = max(best[key], rate)
            print(f"run {run + 1}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items()))
        lags = live_lag_ms(bootstrap, updates)

    print(f"\n{'':10s} {'pipeline msg/s':>15s} {'bare msg/s':>12s} {'ratio':>7s}")
    for stage in ("produce", "consume"):
        pipe, bare = best[f"pipeline {stage}"], best[f"bare {stage}"]
        print(f"{stage:10s} {pipe:15,.0f} {bare:12,.0f} {pipe / bare:7.2f}")
    print("(best of each over the runs; target ratio >= 0.7)")
    print(
        f"\nlive mode, speed 1, {len(lags)} events over 2 s: on_event lag behind the data's "
        f"schedule, beyond the most prompt event: median {np.median(lags):.1f} ms, "
        f"max {np.max(lags):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
