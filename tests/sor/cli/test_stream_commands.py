"""`sor produce` through the real command line entry point."""

from __future__ import annotations

import json
import re

import pytest

from sor.cli.main import main
from sor.data.loader import load_updates
from sor.data.snapshots import build_snapshots
from sor.errors import StreamError
from stream.consumer import consume_updates
from stream.signing import StreamKey
from tests.csvdata import row, write_csv
from tests.stream.helpers import KAFKA_PYTHON_WARNINGS

pytestmark = [pytest.mark.kafka, KAFKA_PYTHON_WARNINGS]

SECRET = "cli-test-stream-key-5f1e2d3c4b5a69788796"


@pytest.fixture(autouse=True)
def stream_key(monkeypatch):
    """The producer's signing key, where `sor produce` reads it (stream.key_env)."""
    monkeypatch.setenv("SOR_STREAM_KEY", SECRET)
    return StreamKey(SECRET.encode())


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


def test_produce_to_a_given_broker_prints_the_report(
    small_csv, bootstrap, topic, capsys, stream_key
):
    code = main(
        [
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
    updates, consumed = consume_updates(
        key=stream_key, bootstrap=bootstrap, topic=topic, idle_timeout_s=10
    )
    assert consumed.stream_id == report["stream_id"]
    assert build_snapshots(updates).equals(build_snapshots(load_updates(small_csv)[0]))


def test_produce_without_bootstrap_uses_a_throwaway_broker(small_csv, capsys, caplog):
    assert main(["produce", "--data", str(small_csv)]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 3
    assert "embedded broker" in caplog.text and "testing only" in caplog.text


def test_quiet_produce_prints_nothing(small_csv, bootstrap, topic, capsys):
    argv = ["-q", "produce", "--data", str(small_csv), "--bootstrap", bootstrap, "--topic", topic]
    assert main(argv) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


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


def test_produce_signs_with_the_key_of_the_environment_and_never_shows_it(
    small_csv, bootstrap, topic, capsys, caplog, monkeypatch
):
    """`stream.key_env` names the variable; a consumer with another key reads nothing."""
    other = "another-variables-stream-key-0099887766"
    monkeypatch.setenv("MY_STREAM_KEY", other)
    caplog.set_level("DEBUG")
    argv = ["-v", "produce", "--data", str(small_csv), "--bootstrap", bootstrap, "--topic", topic]
    assert main([*argv, "--set", "stream.key_env=MY_STREAM_KEY"]) == 0
    out = capsys.readouterr()
    for text in (out.out, out.err, caplog.text):
        assert other not in text and SECRET not in text
    report = json.loads(out.out)
    updates, consumed = consume_updates(
        key=StreamKey(other.encode()), bootstrap=bootstrap, topic=topic, idle_timeout_s=10
    )
    assert consumed.stream_id == report["stream_id"] and consumed.events == 3
    with pytest.raises(StreamError, match="no start message signed with the key"):
        consume_updates(
            key=StreamKey(SECRET.encode()), bootstrap=bootstrap, topic=topic, idle_timeout_s=1
        )


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "environment variable SOR_STREAM_KEY .*which is not set"),
        ("", "environment variable SOR_STREAM_KEY .*which is not set"),
        ("short-key", "SOR_STREAM_KEY has 9 bytes; at least 16 are needed"),
    ],
)
def test_produce_without_a_usable_key_is_one_line_and_exit_2(
    small_csv, capsys, monkeypatch, value, match
):
    if value is None:
        monkeypatch.delenv("SOR_STREAM_KEY")
    else:
        monkeypatch.setenv("SOR_STREAM_KEY", value)
    assert main(["-q", "produce", "--data", str(small_csv)]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and len(err.strip().splitlines()) == 1
    assert not value or value not in err
