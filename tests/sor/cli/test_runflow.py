"""How `sor run` starts, reports its phases, fails and stops, as a user sees it from a shell.

Every case runs the real command in a subprocess with the real broker and Ray. Ctrl-C is sent
to the command's whole process group, as a terminal does, so Ray's and the broker's processes
get it too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from sor.synth.generate import generate
from tests.stream.helpers import KAFKA_PYTHON_WARNINGS, forge_an_end_after_the_first_events

SECRET = "runflow-test-stream-key-0a1b2c3d4e5f6789"
PHASES = (
    "ray_start",
    "broker_start",
    "produce",
    "consume",
    "driver_ready",
    "sweep_warm_up",
    "sweep",
    "report",
    "total",
    "trials_per_s",
)


def sor(*args, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "sor", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def tagged(tag: str) -> list[int]:
    """Processes whose environment holds SOR_TEST_TAG=tag: the command and all it started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if f"SOR_TEST_TAG={tag}".encode() in environ and state != b"Z":
            found.append(int(entry))
    return found


def left_behind(tag: str, patience_s: float = 30.0) -> list[int]:
    """The tagged processes still alive once they have had `patience_s` seconds to go."""
    deadline = time.monotonic() + patience_s
    while (alive := tagged(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.fixture(scope="module")
def csv_30s(tmp_path_factory):
    """Five venues, about 27 s of data: a paced stream of it lasts that long."""
    path = tmp_path_factory.mktemp("runflow") / "venues.csv"
    generate(path, n_events=4000, schema="mbp-10", seed=11)
    return path


@pytest.mark.kafka
@pytest.mark.ray
@pytest.mark.slow
def test_quiet_run_prints_nothing_and_reports_its_phases(csv_30s, tmp_path):
    out = tmp_path / "r.json"
    result = sor("run", "--data", csv_30s, "--trials", 6, "--sampler", "random", "--num-cpus", 2,
                 "--out", out, "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    # no JSON, no Ray notice, no table: only the report's warnings, which -q never hides
    assert result.stdout == ""
    assert all(line.startswith("sor: warning: ") for line in result.stderr.splitlines())
    timings = json.loads(out.read_text())["timings"]
    assert set(PHASES) <= set(timings)
    assert all(timings[name] >= 0 for name in PHASES)
    assert timings["sweep_warm_up"] > 0 and timings["trials_per_s"] > 0
    # Ray starts while the data is streamed: the run waits for it less than it takes to start
    assert timings["ray_wait"] < timings["ray_start"]


@pytest.mark.ray
def test_an_unreachable_bootstrap_fails_before_ray_starts(csv_30s):
    tag = uuid.uuid4().hex
    result = sor("run", "--data", csv_30s, "--bootstrap", "127.0.0.1:1", "--trials", 2,
                 env={"SOR_TEST_TAG": tag}, timeout=120)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach a Kafka broker at 127.0.0.1:1" in lines[0], lines
    assert "Ray" not in result.stderr and "Token" not in result.stderr  # Ray never started
    assert not left_behind(tag)


def interrupt_at(marker: str, args: list, tmp_path: Path, signum=signal.SIGINT) -> dict:
    """Start `sor run ARGS`, send `signum` to its process group once `marker` shows on its
    stderr, and say how it ended: exit code, what it printed after the marker, processes left."""
    tag = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, "-m", "sor", "run", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SOR_TEST_TAG": tag},
        start_new_session=True,  # its own process group, as a shell gives a job
    )
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        for line in process.stderr:
            lines.append(line)
            if marker in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while not seen.wait(0.05):
        assert process.poll() is None, "".join(lines)[-3000:]
    at = len(lines)
    os.killpg(process.pid, signum)
    code = process.wait(timeout=120)
    process.stdout.read()
    reader.join(timeout=30)
    return {"code": code, "after": "".join(lines[at:]), "left": left_behind(tag), "out": args}


RUN = ["--trials", 100_000, "--sampler", "random", "--set", "search.trials_per_round=2",
       "--num-cpus", 2]  # fmt: skip


@pytest.mark.kafka
@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize(
    ("moment", "marker", "extra"),
    [
        ("streaming", "created topic", ["--speed", 1]),
        ("sweep", "sweeping", []),
        ("shutdown", "writing the report while Ray stops", ["--trials", 4]),
    ],
)
def test_ctrl_c_is_one_line_exit_130_and_leaves_no_process(
    csv_30s, tmp_path, moment, marker, extra
):
    out = tmp_path / "r.json"
    ended = interrupt_at(marker, ["--data", csv_30s, "--out", out, *RUN, *extra], tmp_path)
    assert ended["code"] == 130, ended
    assert ended["after"] == "sor: interrupted\n", ended["after"][-3000:]
    assert ended["left"] == []
    assert not out.exists()  # the results JSON is written last, by a complete run only


@pytest.mark.kafka
@pytest.mark.ray
@pytest.mark.slow
def test_sigterm_is_one_line_exit_143_and_leaves_no_process(csv_30s, tmp_path):
    out = tmp_path / "r.json"
    ended = interrupt_at("sweeping", ["--data", csv_30s, "--out", out, *RUN], tmp_path,
                         signal.SIGTERM)  # fmt: skip
    assert ended["code"] == 143, ended
    assert ended["after"] == "sor: terminated\n", ended["after"][-3000:]
    assert ended["left"] == []


@pytest.mark.kafka
@pytest.mark.ray
@pytest.mark.slow
def test_consume_only_sweeps_what_sor_produce_sent(csv_30s, tmp_path, bootstrap, topic):
    key = {"SOR_STREAM_KEY": SECRET}
    produced = sor("produce", "--data", csv_30s, "--bootstrap", bootstrap, "--topic", topic,
                   env=key)  # fmt: skip
    assert produced.returncode == 0, produced.stderr[-3000:]
    sent = json.loads(produced.stdout)
    out = tmp_path / "r.json"
    result = sor("run", "--consume-only", "--bootstrap", bootstrap, "--topic", topic,
                 "--trials", 4, "--sampler", "random", "--num-cpus", 2, "--out", out, "-q",
                 env=key)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["stream"]["stream_id"] == sent["stream_id"]
    assert report["stream"]["consume_only"] is True
    assert report["data"]["snapshots"] == sent["events"]
    assert report["data"]["venues"] == [2, 5, 9, 38, 43]
    assert report["sweep"]["trials_complete"] == 4
    # the same stream by its id, with the alias
    again = sor("run", "--no-produce", "--stream-id", sent["stream_id"], "--bootstrap",
                bootstrap, "--topic", topic, "--trials", 2, "--num-cpus", 2, "--out",
                tmp_path / "again.json", "-q", env=key)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]


@pytest.mark.kafka
@pytest.mark.ray
@pytest.mark.slow
@KAFKA_PYTHON_WARNINGS
def test_sor_run_with_a_forged_end_in_its_stream_exits_2_before_any_sweep(
    tmp_path, bootstrap, topic
):
    from tests.csvdata import row, write_csv

    # 30 events 100 ms apart, paced: the forger has 100 ms to slip in before the next event
    path = write_csv(
        tmp_path / "paced.csv",
        [row(i * 100, (2, 9, 43)[i % 3], 10.0, 10.01 + i / 100, 100, 100 + i) for i in range(30)],
    )
    forged: list[int] = []
    forger = threading.Thread(
        target=forge_an_end_after_the_first_events, args=(bootstrap, topic, forged), daemon=True
    )
    forger.start()
    tag = uuid.uuid4().hex
    out = tmp_path / "r.json"
    result = sor("run", "--data", path, "--bootstrap", bootstrap, "--topic", topic, "--speed", 1,
                 "--trials", 2, "--num-cpus", 1, "--out", out, "-q",
                 env={"SOR_TEST_TAG": tag})  # fmt: skip
    forger.join(timeout=60)
    assert forged, "the forger never saw an events message"
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert re.match(rf"sor: error: {topic} partition 0 offset \d+: not signed", lines[0]), lines
    assert not out.exists() and not (tmp_path / "r_trials.csv").exists()  # no sweep, no results
    assert not left_behind(tag)


@pytest.mark.kafka
@pytest.mark.ray
@pytest.mark.slow
@KAFKA_PYTHON_WARNINGS
def test_consume_only_on_a_forged_or_truncated_stream_exits_2(
    tmp_path, bootstrap, topic, write_raw
):
    from stream.messages import encode_end
    from stream.signing import StreamKey
    from tests.stream.helpers import encoded_stream, small_updates

    key = StreamKey(SECRET.encode())
    messages = encoded_stream(small_updates())  # start, 6 events, end
    stream_id = json.loads(messages[0])["stream"]
    # someone without the key ends the stream after two events; the real events and end follow
    forged = [*messages[:3], encode_end(stream_id, 3, 2), *messages[3:]]
    for i, message in enumerate(forged):
        write_raw(topic, [message], key=None if i == 3 else key)
    truncated = topic + "-truncated"
    write_raw(truncated, messages[:-1], key=key)  # the producer died before its end
    args = ["run", "--consume-only", "--bootstrap", bootstrap, "--trials", 2, "--num-cpus", 1,
            "--set", "stream.idle_timeout_s=3", "-q"]  # fmt: skip
    for name, expected in (
        (topic, rf"sor: error: {topic} partition 0 offset 3: not signed"),
        (truncated, rf"sor: error: stream {stream_id} on {truncated} is truncated: "),
    ):
        out = tmp_path / f"{name}.json"
        result = sor(*args, "--topic", name, "--out", out, env={"SOR_STREAM_KEY": SECRET})
        assert result.returncode == 2, result.stderr[-3000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and re.match(expected, lines[0]), lines
        assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "x.csv"], "--consume-only reads the stream on the topic, not a file"),
        ([], "give its broker with --bootstrap"),
        (["--bootstrap", "127.0.0.1:1"], "cannot reach a Kafka broker at 127.0.0.1:1"),
        (["--start", "13:00:00"], "set the window when producing it"),
        (["--bootstrap", "127.0.0.1:1", "--set", "stream.key_env=NO_SUCH_VAR"], "NO_SUCH_VAR"),
    ],
)
def test_consume_only_refusals_are_one_line(args, message, tmp_path):
    result = sor("run", "--consume-only", *args, "--trials", 2, "--out", tmp_path / "r.json",
                 env={"SOR_STREAM_KEY": SECRET}, timeout=120)  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_consume_only_without_the_key_is_one_line(tmp_path, bootstrap, topic):
    env = {k: v for k, v in os.environ.items() if k != "SOR_STREAM_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "sor", "run", "--consume-only", "--bootstrap", bootstrap,
         "--topic", topic, "--trials", "2", "--out", str(tmp_path / "r.json")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SOR_STREAM_KEY" in lines[0], lines


@pytest.mark.kafka
def test_paced_produce_shows_progress_unless_quiet(csv_30s, bootstrap, topic):
    key = {"SOR_STREAM_KEY": SECRET}
    window = ["--start", "13:36:32", "--end", "13:36:34"]  # two seconds of data
    args = ["produce", "--data", csv_30s, "--bootstrap", bootstrap, "--speed", 1, *window]
    loud = sor(*args, "--topic", topic, env=key)
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert "event" in loud.stderr and "data 0:00:0" in loud.stderr and " of 0:00:0" in loud.stderr
    quiet = sor(*args, "--topic", topic + "-q", "-q", env=key)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


@pytest.mark.kafka
def test_ctrl_c_while_producing_is_a_line_of_its_own(csv_30s, bootstrap, topic):
    """The progress bar of a paced `sor produce` ends its line without a newline: the one line
    of Ctrl-C starts a line of its own instead of trailing the bar."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sor", "produce", "--data", str(csv_30s), "--bootstrap",
         bootstrap, "--topic", topic, "--speed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "SOR_STREAM_KEY": SECRET},
        start_new_session=True,
    )  # fmt: skip
    seen = b""
    while b"event/s" not in seen:  # the bar is drawn
        chunk = os.read(process.stderr.fileno(), 4096)
        assert chunk, seen.decode()[-3000:]
        seen += chunk
    os.killpg(process.pid, signal.SIGINT)
    code = process.wait(timeout=120)
    stderr = (seen + process.stderr.read()).decode()
    process.stdout.read()
    assert code == 130, stderr[-3000:]
    assert stderr.endswith("\nsor: interrupted\n") and stderr.count("sor: interrupted") == 1, (
        stderr[-3000:]
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "order.sise=5", "--set", "order.size=abc"],
        ["--set", "venues.fee=-1"],
        ["--set", "order.size=[1"],
    ],
)
def test_configuration_errors_are_one_line(args):
    result = sor("backtest", "--data", "x.csv", *args, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sor: error: "), lines


def test_a_bad_yaml_file_is_one_line_naming_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("order:\n  size: [1\n")
    result = sor("backtest", "--data", "x.csv", "--config", path, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{path}: not valid YAML: line 3, column 1" in lines[0], lines


@pytest.mark.parametrize("command", ["backtest", "produce"])
def test_help_shows_data_as_required(command):
    result = sor(command, "--help", timeout=60)
    usage = result.stdout.split("\n\n")[0]
    assert f"usage: sor {command} --data PATH" in usage and "[--data" not in result.stdout
    assert "required (unless the --config file sets them)" in result.stdout


def test_an_override_of_a_venue_not_in_the_data_is_warned_about(csv_30s, tmp_path):
    result = sor("backtest", "--data", csv_30s, "--out", tmp_path / "b.json",
                 "--set", "venues.overrides={7: {fee: 0.001}, 2: {fee: 0.002}}")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "venues.overrides: publisher_id 7 is not in the data (venues present: 2, 5, 9, 38, 43)"
        in result.stderr
    )
    assert "publisher_id 2 is not" not in result.stderr
