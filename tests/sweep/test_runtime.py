"""The local Ray runtime of `sor run`: loopback sockets only, and nothing left once it exits.

Each test runs `sor run` as a user does, in a session of its own (`start_new_session`): every
process Ray starts for it (GCS, raylet, agents, workers) inherits that session id, which stays
even when they are orphaned, so "the processes the run started" is "the processes of that
session" (the embedded Kafka broker runs in a session of its own and is stopped elsewhere).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sor.synth.generate import generate

pytestmark = [pytest.mark.ray, pytest.mark.kafka, pytest.mark.slow]

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")  # Ray ships it and puts it on the path


def session_processes(sid: int) -> list[psutil.Process]:
    """The live processes (zombies excluded) whose session id is `sid`."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def listening(procs: list[psutil.Process]) -> dict[tuple[str, str, int], str]:
    """(kind, ip, port) -> process name of every TCP listener and bound UDP socket."""
    out = {}
    for proc in procs:
        try:
            name = proc.name()
            for conn in proc.net_connections(kind="inet"):
                tcp = conn.type == psutil.socket.SOCK_STREAM
                if (tcp and conn.status == psutil.CONN_LISTEN) or (not tcp and conn.laddr):
                    out[("tcp" if tcp else "udp", conn.laddr.ip, conn.laddr.port)] = name
        except psutil.Error:
            continue
    return out


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("runtime") / "tiny.csv"
    generate(path, n_events=1500, schema="mbp-1", seed=7)
    return path


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_run_outlives_its_test():
    """A test that fails before its run ends (an assertion before the signal) must not leave
    the run sweeping in the background: its whole session is killed at teardown."""
    yield
    while _STARTED:
        run = _STARTED.pop()
        if run.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
        for proc in session_processes(run.pid):
            with contextlib.suppress(psutil.Error):
                proc.kill()


def start_run(csv: Path, out: Path, *extra: str, quiet: bool = True) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.Popen(
        [sys.executable, "-m", "sor", "-q" if quiet else "-v", "run", "--data", str(csv)]
        + ["--sampler", "random", "--num-cpus", "1", "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    _STARTED.append(run)
    return run


def leftovers(sid: int, grace_s: float = 15.0) -> list[str]:
    """Processes of the session still alive `grace_s` after the driver exited (a process being
    stopped as the driver exits is given that long to finish)."""
    procs = session_processes(sid)
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    names = []
    for proc in alive:
        try:
            names.append(f"{proc.pid} {proc.name()}")
            proc.kill()  # do not leave them behind for the next test
        except psutil.Error:
            continue
    return names


def wait_for_line(run: subprocess.Popen, text: str) -> list[str]:
    """The run's stderr lines up to the first holding `text` (all of them if it never came)."""
    assert run.stderr is not None
    lines = []
    for line in run.stderr:
        lines.append(line)
        if text in line:
            break
    return lines


def test_a_local_run_listens_on_loopback_only_and_leaves_no_process(tiny_csv, tmp_path):
    run = start_run(tiny_csv, tmp_path / "results.json", "--trials", "6")
    seen: dict[tuple[str, str, int], str] = {}
    while run.poll() is None:
        seen.update(listening(session_processes(run.pid)))
        time.sleep(0.2)
    _, stderr = run.communicate()
    left = leftovers(run.pid)
    assert run.returncode == 0, stderr[-3000:]
    assert {"gcs_server", "raylet"} <= set(seen.values()), seen  # the runtime was seen running
    exposed = {sock: name for sock, name in seen.items() if not is_loopback(sock[1])}
    assert exposed == {}
    assert left == []


def test_no_ray_process_outlives_a_failed_run(tiny_csv, tmp_path):
    # A bad cell far into the data file: the run fails while it streams, with the runtime up.
    lines = tiny_csv.read_text().splitlines(keepends=True)
    bad_line = len(lines) * 3 // 4
    header = lines[0].rstrip("\n").split(",")
    cells = lines[bad_line].rstrip("\n").split(",")
    cells[header.index("ask_px_00")] = "not-a-price"
    lines[bad_line] = ",".join(cells) + "\n"
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(lines))
    run = start_run(bad, tmp_path / "results.json", "--trials", "2")
    _, stderr = run.communicate()
    assert leftovers(run.pid) == []
    assert run.returncode == 2 and f"bad.csv:{bad_line + 1}: column" in stderr, stderr[-3000:]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_no_ray_process_outlives_a_run_stopped_by_a_signal(tiny_csv, tmp_path, signum):
    run = start_run(tiny_csv, tmp_path / "results.json", "--trials", "100000", quiet=False)
    # The sweep starts once Ray runs: the signal comes with the whole runtime up.
    before = wait_for_line(run, "sweeping ")
    assert run.poll() is None, "".join(before)[-3000:]
    assert any(p.name() == "raylet" for p in session_processes(run.pid))
    run.send_signal(signum)
    _, stderr = run.communicate()
    assert leftovers(run.pid) == []
    assert run.returncode == 128 + signum, stderr[-3000:]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_no_ray_process_outlives_a_run_stopped_while_ray_starts(tiny_csv, tmp_path, signum):
    # The signal comes as soon as the raylet exists: inside ray.init, before the agents and
    # workers have all started. Ray's own handlers may be the ones in place then, so only
    # "stopped, and nothing left" is asserted.
    run = start_run(tiny_csv, tmp_path / "results.json", "--trials", "100000")
    while run.poll() is None and not any(p.name() == "raylet" for p in session_processes(run.pid)):
        time.sleep(0.05)
    assert run.poll() is None, run.communicate()[1][-3000:]
    run.send_signal(signum)
    _, stderr = run.communicate()
    assert leftovers(run.pid) == []
    assert run.returncode != 0, stderr[-3000:]
