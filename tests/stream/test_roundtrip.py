"""CSV -> producer -> Tansu -> consumer gives the very snapshots of the direct CSV path."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from sor.data.loader import load_updates
from sor.data.snapshots import build_snapshots
from sor.synth.generate import generate
from stream.consumer import consume_snapshots, consume_updates
from stream.messages import new_stream_id
from stream.producer import DEFAULT_BATCH_BYTES, produce, produce_csv
from tests.csvdata import SHARED_DATA, row, write_csv
from tests.stream.helpers import KAFKA_PYTHON_WARNINGS, KEY

pytestmark = [pytest.mark.kafka, KAFKA_PYTHON_WARNINGS]

HEAD5 = SHARED_DATA / "l1_day_head5.csv"
REAL = SHARED_DATA / "real" / "xnas_aapl_2024-10-21_mbp10_5000rows.csv.gz"
needs_shared = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data not present")

# Several venues, bursts at one ts_event, trades (one hidden behind a first row, two at one
# venue and time, simultaneous ones at two venues, one without price or side), empty ask and bid
# sides, a venue appearing late, prices with long reprs, and two rows of one venue sharing a
# ts_recv (for clock="ts_recv").
MULTI_VENUE = [
    row(0, 2, 10.00, 10.02, 300, 200, seq=1),
    row(0, 9, 10.01, 10.03, 100, 500, seq=2),
    row(0, 43, 9.99, 10.04, 200, 100, seq=3),
    row(0, 2, 10.00, 10.03, 300, 999, seq=4),
    row(1.5, 9, 10.01, 10.02, 100, 400, action="T", side="B", price=10.02, size=100, seq=5),
    row(2, 2, 10.00, "", 300, 0, seq=6),
    row(2, 43, 9.99, 10.04, 200, 100, action="T", side="A", price=9.99, size=50, seq=7),
    row(2, 43, 9.99, 10.04, 150, 100, action="T", side="A", price=9.99, size=25, seq=8),
    row(3.25, 5, "", 10.05, 0, 300, seq=9),
    row(3.25, 2, 10.00, 10.02, 300, 100, seq=10),
    row(4, 9, 10.015, 10.017500000000001, 7, 13, seq=11),
    row(5, 9, 10.01, 10.03, 100, 500, seq=12, recv_delay_ns=2000),
    row(5.001, 9, 10.01, 10.04, 100, 600, seq=13, recv_delay_ns=1000),
    row(5.001, 38, 123.456789, 123.456791, 1, 999_999_999, seq=14),
    row(6, 43, 9.99, 0, 200, 100, action="T", side="B", price=10.04, size=100, seq=15),
    row(6, 5, "", 10.05, 0, 270, action="T", side="", price="", size=30, seq=18),
    row(7, 2, 0.0001, 1e6, 1, 1, seq=16),
]


@pytest.fixture(scope="module")
def multi_venue_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("stream") / "multi.csv", MULTI_VENUE)


#: One event per message, small batches (several messages), the default batches.
BATCHES = pytest.mark.parametrize(
    "batch_bytes", [0, 2000, DEFAULT_BATCH_BYTES], ids=["one-event", "2kB", "default"]
)


def roundtrip(path, bootstrap, topic, batch_bytes=DEFAULT_BATCH_BYTES, **load_options):
    """Produce `path` and consume it back; return (consumed snapshots, direct snapshots)."""
    produced = produce_csv(
        path,
        key=KEY,
        bootstrap=bootstrap,
        topic=topic,
        progress=False,
        batch_bytes=batch_bytes,
        **load_options,
    )
    updates, report = consume_updates(key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
    assert report.stream_id == produced.stream_id
    assert report.events == produced.events and report.messages == produced.messages
    if batch_bytes == 0:
        assert report.messages == report.events + 2
    else:
        assert report.messages < report.events + 2
    assert report.duplicates == 0 and report.skipped == 0
    # No broker fault here: nothing may look like one.
    assert report.rewinds == 0 and produced.reconnects == produced.resent == 0
    direct, _ = load_updates(path, **load_options)
    return build_snapshots(updates), build_snapshots(direct)


@BATCHES
@pytest.mark.parametrize("clock", ["ts_event", "ts_recv"])
def test_multi_venue_csv_roundtrip(multi_venue_csv, bootstrap, topic, clock, batch_bytes):
    consumed, direct = roundtrip(
        multi_venue_csv, bootstrap, topic, clock=clock, batch_bytes=batch_bytes
    )
    assert consumed.equals(direct)
    assert direct.venues.tolist() == [2, 5, 9, 38, 43]
    assert direct.trade_volume.sum() == 305
    assert np.isnan(direct.ask_px).any()  # the empty ask side made it through as NaN
    # The trade prints made it through too (Snapshots.equals compares them; check they exist).
    assert direct.venues[direct.trade_col].tolist() == [9, 43, 43, 5, 43]
    assert direct.trade_sz.tolist() == [100, 50, 25, 30, 100]
    assert direct.trade_side.tolist() == [1, -1, -1, 0, 1]
    assert np.isnan(direct.trade_px[3]) and direct.trade_px[4] == 10.04
    assert (np.diff(direct.trade_row) >= 0).all()


def test_window_and_source_info(multi_venue_csv, bootstrap, topic):
    start, end = "2024-08-01T13:36:32.001Z", "2024-08-01T13:36:32.005Z"
    consumed, direct = roundtrip(multi_venue_csv, bootstrap, topic, start=start, end=end)
    assert consumed.equals(direct) and len(direct) == 5
    _, report = consume_updates(key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
    assert report.symbol == "AAPL" and report.clock == "ts_event"
    assert report.source["file"] == "multi.csv" and report.source["venues"] == [2, 5, 9, 43]


@needs_shared
@BATCHES
@pytest.mark.parametrize("path", [HEAD5, REAL], ids=["l1_day_head5", "xnas_5000rows"])
def test_shared_data_roundtrip(path, bootstrap, topic, batch_bytes):
    consumed, direct = roundtrip(path, bootstrap, topic, batch_bytes=batch_bytes)
    assert consumed.equals(direct)


def shorten_ladders(path, style: str) -> None:
    """Empty the deeper ask levels of every third row of an MBP-10 file, from a level that
    varies by row (0 to 9) on, each way a file empties a level: empty, zero or undefined
    price, or size 0."""
    lines = path.read_text().splitlines()
    columns = lines[0].split(",")
    empties = [("sz", "0"), ("px", ""), ("px", "0")]
    if style == "raw":
        empties.append(("px", "9223372036854775807"))
    for i in range(1, len(lines), 3):
        cells = lines[i].split(",")
        field, value = empties[i % len(empties)]
        for k in range(i % 10, 10):
            cells[columns.index(f"ask_{field}_{k:02d}")] = value
        lines[i] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


@BATCHES
@pytest.mark.parametrize(
    ("schema", "style"), [("mbp-10", "pretty"), ("mbp-10", "raw"), ("mbp-1", "raw")]
)
def test_generated_data_roundtrip(tmp_path, bootstrap, topic, schema, style, batch_bytes):
    """The CSV path and the Kafka path give identical snapshots, every ask level included,
    one event per message or several."""
    path = tmp_path / "gen.csv"
    generate(path, n_events=2000, schema=schema, style=style, seed=3)
    if schema == "mbp-10":
        shorten_ladders(path, style)
    consumed, direct = roundtrip(path, bootstrap, topic, batch_bytes=batch_bytes)
    assert consumed.equals(direct)  # the depth arrays too
    assert direct.n_venues > 1 and direct.trade_volume.sum() > 0
    assert len(np.unique(direct.trade_col)) > 1 and set(direct.trade_side.tolist()) == {-1, 1}
    px, sz = direct.ask_ladder()
    assert direct.ask_depth_px is not None and consumed.n_levels == direct.n_levels
    if schema == "mbp-10":
        assert direct.n_levels == 10
        # the test has teeth: ladders of every length, deep levels that differ from level 0
        shown = (sz > 0).sum(axis=2)
        assert set(np.unique(shown).tolist()) == set(range(11))
        assert (px[:, :, 9] > px[:, :, 0]).any()
    else:
        assert direct.n_levels == 1


def test_consumed_arrays_have_the_record_layout_dtypes(multi_venue_csv, bootstrap, topic):
    produce_csv(multi_venue_csv, key=KEY, bootstrap=bootstrap, topic=topic, progress=False)
    updates, _ = consume_updates(key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
    direct, _ = load_updates(multi_venue_csv)
    names = ("ts", "venue", "ask_px", "ask_sz", "bid_px", "bid_sz", "ask_depth_px", "ask_depth_sz")
    for name in names:
        got, want = getattr(updates, name), getattr(direct, name)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want)
    assert updates.trade_ts.dtype == np.int64 and updates.trade_size.dtype == np.int64
    # Every trade row lies at or before its own row's snapshot, so every trade is carried: the
    # consumer has each trade at its snapshot's time, and the rest as the loader read it.
    for name in ("trade_size", "trade_venue", "trade_px", "trade_side"):
        got, want = getattr(updates, name), getattr(direct, name)
        assert got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want)
    assert updates.symbol == "AAPL"


def test_shared_topic_streams_found_by_id_and_offset(multi_venue_csv, bootstrap, topic):
    first = produce_csv(multi_venue_csv, key=KEY, bootstrap=bootstrap, topic=topic, progress=False)
    second = produce_csv(
        multi_venue_csv,
        key=KEY,
        bootstrap=bootstrap,
        topic=topic,
        progress=False,
        end="2024-08-01T13:36:32.002Z",
    )
    assert second.first_offset == first.last_offset + 1

    _, report = consume_updates(key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
    assert report.stream_id == first.stream_id  # no id: the first stream met

    updates, report = consume_updates(
        key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10, stream_id=second.stream_id
    )
    assert report.skipped == first.messages and report.events == second.events

    _, report = consume_updates(
        key=KEY,
        bootstrap=bootstrap,
        topic=topic,
        idle_timeout_s=10,
        stream_id=second.stream_id,
        start_offset=second.first_offset,
    )
    assert report.skipped == 0 and report.first_offset == second.first_offset
    direct, _ = load_updates(multi_venue_csv, end="2024-08-01T13:36:32.002Z")
    assert build_snapshots(updates).equals(build_snapshots(direct))


def test_topic_with_several_partitions_uses_partition_0(multi_venue_csv, bootstrap, topic):
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=[bootstrap])
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        admin.close()
    consumed, direct = roundtrip(multi_venue_csv, bootstrap, topic)
    assert consumed.equals(direct)


def _spread_updates(span_s: float, n: int):
    """Multi-venue updates evenly spread over `span_s` seconds."""
    lines = [
        row(
            i * span_s * 1000 / (n - 1),
            (2, 9, 43)[i % 3],
            10.0,
            10.01 + i / 100,
            100,
            100 + i,
            seq=i,
        )
        for i in range(n)
    ]
    return lines


def test_pacing_follows_the_data_clock(tmp_path, bootstrap, topic):
    path = write_csv(tmp_path / "paced.csv", _spread_updates(span_s=5.0, n=26))
    updates, _ = load_updates(path)
    duration_s = (updates.ts[-1] - updates.ts[0]) / 1e9
    report = produce(updates, key=KEY, bootstrap=bootstrap, topic=topic, speed=50, progress=False)
    assert report.wall_s >= 0.8 * duration_s / 50
    consumed, _ = consume_updates(key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
    assert build_snapshots(consumed).equals(build_snapshots(updates))


def test_live_mode_sees_each_snapshot_while_the_producer_runs(tmp_path, bootstrap, topic):
    path = write_csv(tmp_path / "live.csv", _spread_updates(span_s=2.0, n=21))
    updates, _ = load_updates(path)
    expected = build_snapshots(updates)
    stream_id = new_stream_id()
    produced: dict = {}

    def producer() -> None:
        produced["report"] = produce(
            updates,
            key=KEY,
            bootstrap=bootstrap,
            topic=topic,
            speed=2.0,
            stream_id=stream_id,
            progress=False,
        )
        produced["done_at"] = time.monotonic()

    seen: list = []

    def on_event(ts, book) -> None:
        venues, ask_px, ask_sz, bid_px, bid_sz = book.arrays()
        seen.append((time.monotonic(), ts, venues, ask_px, ask_sz, book.best_ask()))

    thread = threading.Thread(target=producer)
    thread.start()
    try:
        consumed, report = consume_updates(
            key=KEY,
            bootstrap=bootstrap,
            topic=topic,
            stream_id=stream_id,
            idle_timeout_s=10,
            on_event=on_event,
        )
    finally:
        thread.join(timeout=30)
    assert report.events == len(expected) == len(seen)
    # Callbacks came as the data was produced (about 1 s at speed 2), not all at the end.
    assert seen[0][0] < produced["done_at"] - 0.5
    assert seen[-1][0] - seen[0][0] > 0.5
    for i, (_, ts, venues, ask_px, ask_sz, best) in enumerate(seen):
        assert ts == expected.ts[i]
        columns = np.searchsorted(expected.venues, venues)
        np.testing.assert_array_equal(ask_px, expected.ask_px[i, columns])
        np.testing.assert_array_equal(ask_sz, expected.ask_sz[i, columns])
        j = int(np.nanargmin(expected.ask_px[i]))
        assert best[0] == expected.venues[j] and best[1] == expected.ask_px[i, j]


@pytest.mark.ray
def test_consume_to_ray_puts_the_snapshots_once(multi_venue_csv, bootstrap, topic):
    ray = pytest.importorskip("ray")
    from stream.consumer import consume_to_ray

    produce_csv(multi_venue_csv, key=KEY, bootstrap=bootstrap, topic=topic, progress=False)
    direct, _ = consume_snapshots(key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        ref, report = consume_to_ray(key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
        assert isinstance(ref, ray.ObjectRef)
        assert ray.get(ref).equals(direct)
        assert report.snapshot_bytes == direct.nbytes
    finally:
        if started_here:
            ray.shutdown()


def test_consumer_progress_bar_counts_the_events(multi_venue_csv, bootstrap, topic, capsys):
    report = produce_csv(multi_venue_csv, key=KEY, bootstrap=bootstrap, topic=topic)
    capsys.readouterr()
    _, consumed = consume_updates(
        key=KEY,
        bootstrap=bootstrap,
        topic=topic,
        idle_timeout_s=10,
        progress=True,
        expected_events=report.events,
    )
    err = capsys.readouterr().err
    assert consumed.events == report.events
    assert "consume" in err and f"{report.events}/{report.events}" in err
    _, _ = consume_updates(key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
    assert "consume" not in capsys.readouterr().err  # no bar unless asked


@pytest.mark.parametrize("batch_bytes", [0, DEFAULT_BATCH_BYTES], ids=["one-event", "batched"])
def test_paced_stream_batches_the_events_due_together(tmp_path, bootstrap, topic, batch_bytes):
    """At speed 1, events within one PACE_TICK_S (1 ms) of the stream's clock share a message;
    events 50 ms apart do not. With batch_bytes 0 every event has its own message."""
    times_ms = [0.0] + [t for k in range(1, 11) for t in (k * 50 + 0.3, k * 50 + 0.7)]
    path = write_csv(
        tmp_path / "bursts.csv",
        [row(t, (2, 9)[i % 2], 10.0, 10.01, 100, 100 + i, seq=i) for i, t in enumerate(times_ms)],
    )
    updates, _ = load_updates(path)
    report = produce(
        updates,
        key=KEY,
        bootstrap=bootstrap,
        topic=topic,
        speed=1.0,
        batch_bytes=batch_bytes,
        progress=False,
    )
    assert report.events == 21
    assert report.messages == (23 if batch_bytes == 0 else 1 + 10 + 2)
    consumed, got = consume_updates(key=KEY, bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
    assert got.messages == report.messages
    assert build_snapshots(consumed).equals(build_snapshots(updates))
