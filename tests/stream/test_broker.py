"""The embedded broker starts on loopback, answers Kafka, and never outlives its owner."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sor.errors import StreamError
from stream.broker import EmbeddedBroker, free_port, probe_metadata
from stream.producer import produce
from tests.stream.helpers import KAFKA_PYTHON_WARNINGS, KEY, small_updates

pytestmark = [pytest.mark.kafka, KAFKA_PYTHON_WARNINGS]

ROOT = Path(__file__).resolve().parents[2]


def is_alive(pid: int) -> bool:
    """True while `pid` is a live process (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_session_broker_answers_metadata_on_loopback_only(broker):
    host, port = broker.bootstrap.split(":")
    assert host == "127.0.0.1"
    assert probe_metadata(host, int(port))
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = [line.split()[1] for line in listening if line.split()[3] == "0A"]  # LISTEN
    ours = [addr for addr in local if int(addr.split(":")[1], 16) == int(port)]
    assert ours == ["0100007F:" + f"{int(port):04X}"]  # 127.0.0.1 and nothing else


def test_stop_leaves_no_process():
    broker = EmbeddedBroker()
    with broker:
        pid = broker.pid
        assert pid is not None and is_alive(pid)
        assert os.getpgid(pid) == pid  # its own process group
    assert not is_alive(pid)
    assert not broker.is_running()
    broker.stop()  # idempotent


def test_stops_when_the_block_raises():
    broker = EmbeddedBroker()
    with pytest.raises(RuntimeError, match="boom"), broker:
        pid = broker.pid
        raise RuntimeError("boom")
    assert not is_alive(pid)


def test_port_in_use_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(StreamError, match=f"127.0.0.1:{port} is already in use"):
            EmbeddedBroker(port=port).start()


def test_startup_failure_quotes_the_broker_output(tmp_path):
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'no storage for you' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(StreamError, match="exited with code 3.*no storage for you"):
        EmbeddedBroker(binary=str(fake)).start()


def test_unresponsive_broker_times_out_and_is_killed(tmp_path):
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho $$ > " + str(tmp_path / "pid") + "\nexec sleep 60\n")
    fake.chmod(0o755)
    with pytest.raises(StreamError, match="did not answer a Kafka metadata request"):
        EmbeddedBroker(binary=str(fake), startup_timeout_s=0.5, stop_grace_s=0.5).start()
    assert not is_alive(int((tmp_path / "pid").read_text()))


def test_producer_retries_until_the_broker_comes_up():
    port = free_port()
    late = EmbeddedBroker(port=port)
    timer = threading.Timer(1.0, late.start)
    timer.start()
    try:
        report = produce(
            small_updates(),
            key=KEY,
            bootstrap=f"127.0.0.1:{port}",
            topic="late",
            progress=False,
            connect_timeout_s=20,
        )
        assert report.events == 6
    finally:
        timer.join()
        late.stop()


def _start_cli_broker() -> tuple[subprocess.Popen, int, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sor", "broker"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pid, lines = None, []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "(Tansu) pid" in line:
            pid = int(line.split("(Tansu) pid ")[1].split()[0])
        if "listening on" in line:
            return process, pid, line.rsplit(" ", 1)[1].strip()
    process.kill()
    raise AssertionError("sor broker did not start: " + "".join(lines))


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_sor_broker_command_leaves_nothing_behind(how):
    import signal

    process, pid, bootstrap = _start_cli_broker()
    try:
        host, port = bootstrap.split(":")
        assert probe_metadata(host, int(port))
        process.send_signal(getattr(signal, how))
        code = process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    assert code == {"SIGINT": 0, "SIGTERM": 128 + 15, "SIGKILL": -9}[how]
    deadline = time.monotonic() + 5  # SIGKILL of the parent: the kernel kills the broker
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_alive(pid)
