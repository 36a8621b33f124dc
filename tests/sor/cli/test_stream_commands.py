"""`sor produce` through the real command line entry point."""

from __future__ import annotations

import json

import pytest

from sor.cli.main import main
from sor.data.loader import load_updates
from sor.data.snapshots import build_snapshots
from stream.consumer import consume_updates
from tests.csvdata import row, write_csv
from tests.stream.helpers import KAFKA_PYTHON_WARNINGS

pytestmark = [pytest.mark.kafka, KAFKA_PYTHON_WARNINGS]


@pytest.fixture
def small_csv(tmp_path):
    return write_csv(
        tmp_path / "small.csv",
        [
            row(0, 2, 10.00, 10.02, 300, 200, seq=1),
            row(0, 9, 10.01, 10.03, 100, 500, seq=2),
            row(1, 9, 10.01, 10.02, 100, 400, action="T", side="B", price=10.02, size=100, seq=3),
            row(2, 2, 10.00, "", 300, 0, seq=4),
        ],
    )


def test_produce_to_a_given_broker_prints_the_report(small_csv, bootstrap, topic, capsys):
    code = main(
        [
            "-q",
            "produce",
            "--data",
            str(small_csv),
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--set",
            "stream.speed=0",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["events"] == 3 and report["topic"] == topic and report["first_offset"] == 0
    updates, consumed = consume_updates(bootstrap=bootstrap, topic=topic, idle_timeout_s=10)
    assert consumed.stream_id == report["stream_id"]
    assert build_snapshots(updates).equals(build_snapshots(load_updates(small_csv)[0]))


def test_produce_without_bootstrap_uses_a_throwaway_broker(small_csv, capsys):
    assert main(["-q", "produce", "--data", str(small_csv)]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["events"] == 3
    assert "embedded broker" in out.err and "testing only" in out.err


def test_produce_without_data_is_a_usage_error(capsys):
    assert main(["-q", "produce"]) == 2
    assert "needs --data" in capsys.readouterr().err


def test_unreachable_broker_is_one_line_and_exit_2(small_csv, capsys):
    from stream.broker import free_port

    address = f"127.0.0.1:{free_port()}"
    argv = [
        "-q",
        "produce",
        "--data",
        str(small_csv),
        "--bootstrap",
        address,
        "--set",
        "stream.connect_timeout_s=0.5",
    ]
    assert main(argv) == 2
    assert f"cannot reach a Kafka broker at {address}" in capsys.readouterr().err
