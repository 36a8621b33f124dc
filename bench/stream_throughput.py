"""Throughput of the stream pipeline: columnar event messages (schema 5) against the JSON
event messages of schema 4, one event per message against batches, beside a bare kafka-python
loop on the same messages.

Starts an embedded Tansu broker, generates l1_day-sized data (~60,000 rows, MBP-10) or reads
`--data`, then measures, for each `stream.batch_bytes` of `--batch-bytes` (0: one snapshot
event per message):

- produce: `stream.producer.produce` (cut, encode, sign, send, acknowledge) against a bare
  loop that sends the same already-encoded messages with the same producer settings;
- consume: `stream.consumer.consume_updates` (poll, verify, decode, check, rebuild) against a
  bare loop that polls the same number of records with the same consumer settings.

With `--json-checkout PATH` (a checkout of the version with JSON event messages, e.g.
`git archive <commit> | tar -x -C PATH`), the same `produce` and `consume_updates` of that
version run in a child process on the same data and broker, at its own 64 KiB batches and at
each of `--json-batch-bytes`. Rates are messages/s and snapshot events/s; the ratio
pipeline/bare says what the project's own code costs (target >= 0.7). No assertions: speed
lives here, not in tests.

    .venv/bin/python bench/stream_throughput.py [--rows 60000] [--repeat 3]
    .venv/bin/python bench/stream_throughput.py --data m2.csv --repeat 1 \
        --batch-bytes 65536 1000000 --json-checkout /tmp/sor-json
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
from stream.messages import DEFAULT_MAX_BYTES, new_stream_id  # noqa: E402
from stream.producer import (  # noqa: E402
    DEFAULT_BATCH_BYTES,
    ensure_topic,
    produce,
    producer_settings,
    stream_messages,
)
from stream.signing import StreamKey  # noqa: E402

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


KEY = StreamKey.random()

#: What the child process runs with PYTHONPATH set to another checkout: load, then produce and
#: consume once per batch size and run, printing one JSON line each (the API of both versions).
_CHILD = """
import json, sys, time
import stream.messages
assert stream.messages.SCHEMA_VERSION == 4, stream.messages.__file__
from sor.data.loader import load_updates
from stream.consumer import consume_updates
from stream.producer import produce
from stream.signing import StreamKey
path, bootstrap, repeat, *sizes = sys.argv[1:]
updates, _ = load_updates(path)
key = StreamKey.random()
for run in range(int(repeat)):
    for size in map(int, sizes):
        topic = f"bench-json-{size}-{run}"
        p = produce(updates, key=key, bootstrap=bootstrap, topic=topic, progress=False,
                    batch_bytes=size)
        _, c = consume_updates(key=key, bootstrap=bootstrap, topic=topic, idle_timeout_s=30)
        print(json.dumps({"batch_bytes": size, "messages": p.messages, "events": p.events,
                          "produce": p.wall_s, "consume": c.wall_s}), flush=True)
"""


def json_version(
    checkout: Path, path: Path, bootstrap: str, repeat: int, sizes: list[int]
) -> list[dict]:
    """Runs of the JSON version in `checkout` (see `_CHILD`)."""
    import json
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), bootstrap, str(repeat), *map(str, sizes)],
        env=env,
        cwd=checkout,  # `python -c` puts the working directory first on sys.path
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def bare_produce(bootstrap: str, topic: str, messages: list[bytes]) -> float:
    """Seconds to send and acknowledge `messages` with a plain KafkaProducer, each with its
    signature header computed beforehand (the same bytes on the wire as the pipeline's)."""
    ensure_topic(bootstrap, topic)
    headers = [KEY.headers(m) for m in messages]
    producer = KafkaProducer(
        bootstrap_servers=[bootstrap], **producer_settings(0.0, DEFAULT_MAX_BYTES)
    )
    try:
        started = time.monotonic()
        futures = [
            producer.send(topic, m, partition=0, headers=h)
            for m, h in zip(messages, headers, strict=True)
        ]
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
            "key": KEY,
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
            key=KEY,
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


def mode_name(batch: int) -> str:
    """How a batch size is shown."""
    if batch == 0:
        return "one-event"
    return f"{batch // 1024} KiB" if batch % 1024 == 0 else f"{batch:,} B"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000, help="rows of generated data")
    parser.add_argument("--data", type=Path, help="a Databento CSV to stream instead")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is shown")
    parser.add_argument(
        "--batch-bytes",
        type=int,
        nargs="+",
        default=[0, 65_536, DEFAULT_BATCH_BYTES],
        help="stream.batch_bytes of the columnar runs",
    )
    parser.add_argument("--json-checkout", type=Path, help="checkout of the JSON version")
    parser.add_argument(
        "--json-batch-bytes", type=int, nargs="+", default=[65_536], help="its batch sizes"
    )
    parser.add_argument("--no-live", action="store_true", help="skip the live-mode lag")
    args = parser.parse_args()
    modes = {mode_name(b): b for b in args.batch_bytes}

    with tempfile.TemporaryDirectory() as tmp:
        path = args.data
        if path is None:
            path = Path(tmp) / "bench.csv"
            generate(path, n_events=args.rows, schema="mbp-10", style="pretty", seed=0)
        started = time.monotonic()
        updates, data = load_updates(path)
        load_s = time.monotonic() - started
        from kafka.record import util

        crc = "C (crc32c package)" if util.crc32c_c is not None else "pure Python"
        streams = {
            mode: stream_messages(updates, key=KEY, batch_bytes=batch)
            for mode, batch in modes.items()
        }
        n_events = data.snapshot_events
        print(
            f"data: {data.rows_kept} rows kept, {len(updates)} updates, {n_events} snapshot "
            f"events, {updates.n_levels} ask level(s), venues {data.venues} (load {load_s:.1f} s); "
            f"kafka-python CRC-32C: {crc}"
        )
        for mode, messages in streams.items():
            n = len(messages)
            print(
                f"  columnar {mode}: {n} messages, "
                f"{sum(map(len, messages)) / n:,.0f} bytes each on average"
            )

        # best[mode][stage] = (messages/s, events/s); bare[mode][stage] = messages/s
        best = {m: {"produce": (0.0, 0.0), "consume": (0.0, 0.0)} for m in modes}
        bare = {m: {"produce": 0.0, "consume": 0.0} for m in modes}
        json_best: dict[str, dict[str, tuple[float, float]]] = {}
        with EmbeddedBroker() as broker:
            bootstrap = broker.bootstrap
            for run in range(args.repeat):
                line = []
                for mode, batch in modes.items():
                    messages = streams[mode]
                    n = len(messages)
                    bare_topic, pipe_topic = (
                        f"bench-bare-{batch}-{run}",
                        f"bench-pipe-{batch}-{run}",
                    )
                    rate = n / bare_produce(bootstrap, bare_topic, messages)
                    bare[mode]["produce"] = max(bare[mode]["produce"], rate)
                    report = produce(
                        updates,
                        key=KEY,
                        bootstrap=bootstrap,
                        topic=pipe_topic,
                        progress=False,
                        batch_bytes=batch,
                    )
                    produced = (report.messages_per_s, report.events_per_s)
                    rate = n / bare_consume(bootstrap, bare_topic, n)
                    bare[mode]["consume"] = max(bare[mode]["consume"], rate)
                    _, consumed = consume_updates(
                        key=KEY, bootstrap=bootstrap, topic=pipe_topic, idle_timeout_s=30
                    )
                    got = {
                        "produce": produced,
                        "consume": (consumed.messages_per_s, consumed.events_per_s),
                    }
                    for stage, rates in got.items():
                        if rates[1] > best[mode][stage][1]:
                            best[mode][stage] = rates
                    line.append(
                        f"{mode} produce {report.wall_s:.2f} s, consume {consumed.wall_s:.2f} s"
                    )
                print(f"run {run + 1}: " + "; ".join(line), flush=True)
            if args.json_checkout is not None:
                for got in json_version(
                    args.json_checkout, path, bootstrap, args.repeat, args.json_batch_bytes
                ):
                    mode = "JSON " + mode_name(got["batch_bytes"])
                    print(
                        f"{mode}: {got['messages']} messages, produce {got['produce']:.2f} s, "
                        f"consume {got['consume']:.2f} s",
                        flush=True,
                    )
                    rates = json_best.setdefault(
                        mode, {"produce": (0.0, 0.0), "consume": (0.0, 0.0)}
                    )
                    for stage in ("produce", "consume"):
                        seconds = max(got[stage], 1e-9)
                        candidate = (got["messages"] / seconds, got["events"] / seconds)
                        if candidate[1] > rates[stage][1]:
                            rates[stage] = candidate
            lags = None if args.no_live else live_lag_ms(bootstrap, updates)

    print(f"\n{'':24s} {'msg/s':>10s} {'events/s':>11s} {'bare msg/s':>11s} {'vs bare':>8s}")
    for stage in ("produce", "consume"):
        for mode in modes:
            msgs, events = best[mode][stage]
            ratio = msgs / bare[mode][stage]
            print(
                f"{stage + ' ' + mode:24s} {msgs:10,.0f} {events:11,.0f} "
                f"{bare[mode][stage]:11,.0f} {ratio:8.2f}"
            )
        for mode, rates in json_best.items():
            msgs, events = rates[stage]
            print(f"{stage + ' ' + mode:24s} {msgs:10,.0f} {events:11,.0f}")
            for columnar in modes:
                if modes[columnar]:
                    gain = best[columnar][stage][1] / events
                    print(f"{'  columnar ' + columnar + ' / it':24s} {'':10s} {gain:10.1f}x")
    print("(best of each over the runs; events/s of the pipeline; target vs bare >= 0.7)")
    if lags is not None:
        print(
            f"\nlive mode, speed 1, {len(lags)} events over 2 s: on_event lag behind the data's "
            f"schedule, beyond the most prompt event: median {np.median(lags):.1f} ms, "
            f"max {np.max(lags):.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
