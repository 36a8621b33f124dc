"""The broker is killed and restarted mid-stream: the stream still arrives whole, exactly once.

The embedded broker keeps topics in memory, so a restarted one is empty: the producer must send
the stream again from seq 0 and the live consumer must read the rewritten partition again from
its beginning, dropping what it already has. A Kafka cluster keeps acknowledged messages; the same
code then resends only what was not acknowledged (not exercised here: no Kafka to run).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sor.data.loader import load_updates
from sor.data.snapshots import build_snapshots
from sor.errors import StreamError
from sor.synth.generate import generate
from stream.broker import EmbeddedBroker, free_port
from stream.consumer import consume_updates
from stream.messages import new_stream_id
from stream.producer import produce
from tests.stream.helpers import KAFKA_PYTHON_WARNINGS, KEY, small_updates

pytestmark = [pytest.mark.kafka, pytest.mark.slow, KAFKA_PYTHON_WARNINGS]

STREAM_S = 3.0  #: wall time of the paced stream, s
DOWN_S = 1.0  #: how long the broker stays dead, s


class TrackedBroker(EmbeddedBroker):
    """An embedded broker on a fixed port that remembers the pid of every process it started."""

    def __init__(self) -> None:
        super().__init__(port=free_port(), stop_grace_s=2.0)
        self.pids: list[int] = []

    def start(self) -> TrackedBroker:
        super().start()
        assert self.pid is not None
        self.pids.append(self.pid)
        return self


def is_alive(pid: int) -> bool:
    """True while `pid` is a live process (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except (ProcessLookupError, FileNotFoundError):
        return False


@pytest.fixture
def own_broker() -> Iterator[TrackedBroker]:
    """A broker on a fixed free port, not started; every process it started is gone at the end."""
    broker = TrackedBroker()
    try:
        yield broker
    finally:
        broker.stop()
        left = [pid for pid in broker.pids if is_alive(pid)]
        for pid in left:  # pragma: no cover - stop() failed: clean up, then fail
            os.killpg(pid, signal.SIGKILL)
        assert not left, f"broker processes left behind: {left}"


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 1000 snapshot events from 4 venues with trades, over 16 s of data time."""
    path = tmp_path_factory.mktemp("restart") / "gen.csv"
    generate(path, n_events=1200, schema="mbp-1", style="raw", seed=5)
    return path


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start `target` in a thread; its result or exception lands in the returned dict."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def result(thread: threading.Thread, out: dict[str, Any], timeout_s: float = 40.0) -> Any:
    thread.join(timeout_s)
    assert not thread.is_alive(), "thread did not finish"
    if "error" in out:
        raise out["error"]
    return out["result"]


@pytest.mark.parametrize("others_first", [False, True], ids=["alone", "after-another-stream"])
def test_broker_killed_and_restarted_mid_stream(own_broker, csv_path, others_first):
    bootstrap = own_broker.start().bootstrap
    topic = "restart"
    updates, _ = load_updates(csv_path)
    expected = build_snapshots(updates)
    n_events = len(expected)
    speed = (updates.ts[-1] - updates.ts[0]) / 1e9 / STREAM_S
    if others_first:
        # Our stream then starts at offset 8, and at offset 0 on the restarted broker: the
        # consumer's position no longer fits the partition, instead of fitting by chance.
        produce(small_updates(), key=KEY, bootstrap=bootstrap, topic=topic, progress=False)
    stream_id = new_stream_id()
    third = threading.Event()
    seen = []

    def on_event(ts, book) -> None:
        seen.append(ts)
        if len(seen) == n_events // 3:
            third.set()

    consumer = in_thread(
        lambda: consume_updates(
            key=KEY,
            bootstrap=bootstrap,
            topic=topic,
            stream_id=stream_id,
            idle_timeout_s=15,
            on_event=on_event,
        )
    )
    producer = in_thread(
        lambda: produce(
            updates,
            key=KEY,
            bootstrap=bootstrap,
            topic=topic,
            speed=speed,
            stream_id=stream_id,
            progress=False,
            reconnect_timeout_s=15,
        )
    )
    assert third.wait(timeout=20), "the consumer did not get a third of the stream"
    own_broker.kill()
    time.sleep(DOWN_S)
    own_broker.start()

    produced = result(*producer)
    consumed, report = result(*consumer)
    assert produced.reconnects >= 1 and produced.resent >= 1
    if others_first:  # the consumer's position cannot fit the new partition
        assert report.rewinds >= 1
    assert produced.events == report.events == n_events
    assert build_snapshots(consumed).equals(expected)
    # Whatever the consumer read twice was dropped, and each event was handed on exactly once.
    assert report.duplicates >= 0
    assert seen == expected.ts.tolist()
    assert len(own_broker.pids) == 2


def test_broker_down_at_start_comes_up_within_the_patience(own_broker, csv_path):
    bootstrap = f"127.0.0.1:{own_broker.port}"
    updates, _ = load_updates(csv_path)
    timer = threading.Timer(1.5, own_broker.start)
    timer.start()
    try:
        consumer = in_thread(
            lambda: consume_updates(
                key=KEY, bootstrap=bootstrap, topic="late", idle_timeout_s=15, connect_timeout_s=15
            )
        )
        report = produce(
            updates,
            key=KEY,
            bootstrap=bootstrap,
            topic="late",
            progress=False,
            connect_timeout_s=15,
        )
        consumed, consume_report = result(*consumer)
    finally:
        timer.join()
    assert report.reconnects == 0 and consume_report.stream_id == report.stream_id
    assert build_snapshots(consumed).equals(build_snapshots(updates))


def test_broker_that_never_comes_back_is_named_within_the_patience(own_broker, csv_path):
    bootstrap = own_broker.start().bootstrap
    updates, _ = load_updates(csv_path)
    speed = (updates.ts[-1] - updates.ts[0]) / 1e9 / STREAM_S
    stream_id = new_stream_id()
    patience_s = 2.0
    consumer = in_thread(
        lambda: consume_updates(
            key=KEY,
            bootstrap=bootstrap,
            topic="gone",
            stream_id=stream_id,
            idle_timeout_s=patience_s,
        )
    )
    killed_at: list[float] = []

    def kill() -> None:
        own_broker.kill()
        killed_at.append(time.monotonic())

    killer = threading.Timer(STREAM_S / 3, kill)
    killer.start()
    try:
        with pytest.raises(StreamError, match=f"lost the Kafka broker at {bootstrap}") as info:
            produce(
                updates,
                key=KEY,
                bootstrap=bootstrap,
                topic="gone",
                speed=speed,
                stream_id=stream_id,
                progress=False,
                reconnect_timeout_s=patience_s,
            )
        waited_s = time.monotonic() - killed_at[0]
    finally:
        killer.join()
    assert "could not resume" in str(info.value)
    # Noticed within about 2 s (no acknowledgement and the connection refused), then the
    # patience; the slack is for a loaded machine, not a speed requirement.
    assert patience_s <= waited_s < patience_s + 15
    with pytest.raises(StreamError, match=f"no Kafka broker answers at {bootstrap}"):
        result(*consumer)


@pytest.mark.parametrize(
    ("batch_bytes", "break_at"), [(0, 300), (150, 200)], ids=["one-event", "batched"]
)
def test_interrupted_producer_sends_only_what_the_broker_does_not_hold(
    bootstrap, topic, csv_path, monkeypatch, batch_bytes, break_at
):
    # As after a Kafka broker restart, which keeps acknowledged messages: the producer session
    # breaks off, the broker still holds the stream so far, and only the rest is sent.
    import stream.producer as producer_module

    collect = producer_module._Job._collect
    broke: list[tuple[int, int]] = []  # (messages sent, messages acknowledged) at the break

    def collect_then_break(inflight, state) -> None:
        collect(inflight, state)
        if not broke and inflight and inflight[-1][0] >= break_at:  # message number
            inflight[0][-1].get(timeout=10)  # something acknowledged, so there is a prefix
            collect(inflight, state)
            broke.append((state.sent, state.acked))
            raise producer_module._Interrupted("injected: connection dropped")

    monkeypatch.setattr(producer_module._Job, "_collect", staticmethod(collect_then_break))
    updates, _ = load_updates(csv_path)
    produced = produce(
        updates, key=KEY, bootstrap=bootstrap, topic=topic, progress=False, batch_bytes=batch_bytes
    )
    consumed, report = consume_updates(key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
    sent, acked = broke[0]
    assert produced.reconnects == 1 and produced.messages > break_at
    # Not from seq 0: at most what was sent but not acknowledged when the session broke (the
    # broker holds some of those too, and the producer finds them).
    assert produced.resent <= sent - acked
    assert report.rewinds == 0 and (report.duplicates == 0 or produced.resent > 0)
    if batch_bytes == 0:
        assert report.duplicates <= produced.resent
    assert build_snapshots(consumed).equals(build_snapshots(updates))
