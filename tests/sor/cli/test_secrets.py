"""Secrets never printed, logged or written, even at -vv: SASL passwords, storage URL passwords.

Each test runs `sor` as a user does (a subprocess) and searches everything it left behind:
stdout, stderr and every file of the results.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from sor.redaction import secret_forms
from sor.synth.generate import generate
from tests.stream.helpers import KAFKA_PYTHON_WARNINGS

SASL_PASSWORD = "Kafka-pw-7'q\"@x"  # both quote kinds: bytes reprs then escape one of them
DB_PASSWORD = "S3cret@PW:x"  # '@' and ':' inside the password
STREAM_KEY = "stream-key-0123456789-abcdef"  # the producer's signing key (stream.key_env)


def sor(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "sor", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "SOR_STREAM_KEY": STREAM_KEY},
    )


def leaks(secret: str, *texts: str | bytes) -> list[str]:
    """The forms of `secret` found in any of `texts`."""
    found = []
    for text in texts:
        haystack = text.decode("latin-1") if isinstance(text, bytes) else text
        found += [form for form in secret_forms(secret) if form in haystack]
    if any(secret.encode() in t for t in texts if isinstance(t, bytes)):
        found.append("raw bytes")
    return found


def sasl_config(tmp_path: Path) -> Path:
    path = tmp_path / "sasl.yaml"
    security = {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "alice",
        "sasl_plain_password": SASL_PASSWORD,
    }
    path.write_text(yaml.safe_dump({"kafka": {"security": security}}))
    return path


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("secrets") / "tiny.csv"
    generate(path, n_events=1500, schema="mbp-1", seed=5)
    return path


@pytest.mark.kafka
@KAFKA_PYTHON_WARNINGS
def test_sasl_plain_at_vv_against_the_real_broker_prints_no_password(tmp_path, tiny_csv, bootstrap):
    # The embedded Tansu broker (0.6.0) answers a SASL/PLAIN handshake with
    # UnsupportedSaslMechanism, so the client logs its settings and the handshake but never
    # reaches SaslAuthenticate; the next test covers the authenticate request itself.
    result = sor(
        "-vv",
        "produce",
        "--data",
        tiny_csv,
        "--bootstrap",
        bootstrap,
        "--config",
        sasl_config(tmp_path),
        "--set",
        "stream.connect_timeout_s=2",
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"sor: error: cannot reach a Kafka broker at {bootstrap}" in result.stderr
    assert "SaslHandshakeRequest" in result.stderr  # -vv did log the SASL exchange
    assert "'sasl_plain_password': '***'" in result.stderr
    assert leaks(SASL_PASSWORD, result.stdout, result.stderr) == []
    assert leaks(STREAM_KEY, result.stdout, result.stderr) == []


@KAFKA_PYTHON_WARNINGS
def test_the_sasl_authenticate_request_kafka_python_logs_at_vv_is_masked(tmp_path):
    # What a broker that accepts PLAIN makes kafka-python log: KafkaConnection._sasl_authenticate
    # builds the PLAIN token and queues SaslAuthenticateRequest through KafkaProtocol, which logs
    # the request (token included) and then the raw bytes sent. The same calls here, after the
    # command line's own logging setup and configuration reading.
    script = textwrap.dedent(
        f"""
        from kafka.net.sasl.plain import SaslMechanismPlain
        from kafka.protocol.parser import KafkaProtocol
        from kafka.protocol.sasl import SaslAuthenticateRequest
        from sor.cli.flags import STREAM_FLAGS, config_from_args
        from sor.cli.main import build_parser, setup_logging
        from stream.connect import client_settings

        args = build_parser().parse_args(
            ["-vv", "produce", "--config", {str(sasl_config(tmp_path))!r}]
        )
        setup_logging(args.verbose, args.quiet)
        config = config_from_args(args, STREAM_FLAGS)
        settings = client_settings("127.0.0.1:9092", config.kafka.security)
        token = SaslMechanismPlain(**settings).auth_bytes()
        protocol = KafkaProtocol(client_id="sor", ident="node=bootstrap-0")
        request = SaslAuthenticateRequest(token)
        request.API_VERSION = 2  # as negotiated with a Kafka 3.x broker
        protocol.send_request(request)
        protocol.send_bytes()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    request = [line for line in lines if "Sending request 1 SaslAuthenticateRequest" in line]
    sent = [line for line in lines if " Send: " in line]
    assert len(request) == 1 and len(sent) == 1  # both logged, with the token masked
    assert "alice\\x00***" in request[0] and "alice\\x00***" in sent[0]
    assert leaks(SASL_PASSWORD, result.stdout, result.stderr) == []


@pytest.mark.parametrize(
    "storage",
    [
        f"postgresql://alice:{DB_PASSWORD}@127.0.0.1:1/optuna",
        f"postgresql://:{DB_PASSWORD}@127.0.0.1:1/optuna",
        f"postgresql://alice@127.0.0.1:1/optuna?sslmode=disable&password={DB_PASSWORD}",
    ],
)
def test_storage_password_is_not_in_the_error_message(storage):
    result = sor("-vv", "run", "--storage", storage, "--trials", 2, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "sor: error: search.storage 'postgresql://" in result.stderr
    assert "***" in result.stderr and "Traceback" not in result.stderr
    assert leaks(DB_PASSWORD, result.stdout, result.stderr) == []


@pytest.mark.kafka
@pytest.mark.ray
@pytest.mark.slow
@KAFKA_PYTHON_WARNINGS
def test_sor_run_at_vv_writes_no_storage_secret(tmp_path, tiny_csv):
    # pysqlite ignores the query argument (with a warning naming it), so the study works and
    # the URL reaches results.json, the trials table and the report page.
    out = tmp_path / "run" / "results.json"
    storage = f"sqlite:///{tmp_path / 'study.db'}?password={DB_PASSWORD}"
    result = sor(
        "-vv",
        "run",
        "--data",
        tiny_csv,
        "--trials",
        4,
        "--sampler",
        "random",
        "--num-cpus",
        1,
        "--storage",
        storage,
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = sorted(p for p in out.parent.iterdir() if p.is_file())
    assert {"results.json", "results_trials.csv", "results_report.html"} <= {p.name for p in files}
    assert "password=***" in out.read_text()
    written = [p.read_bytes() for p in files]
    assert leaks(DB_PASSWORD, result.stdout, result.stderr, *written) == []


def test_an_unexpected_error_prints_its_traceback_with_the_secrets_masked(monkeypatch, capsys):
    import importlib

    from sor.cli.flags import DATA_FLAGS, EVALUATION_FLAGS, PARAM_FLAGS, config_from_args
    from sor.redaction import forget_all, register, registered

    def failing_backtest(args):
        config = config_from_args(args, DATA_FLAGS, EVALUATION_FLAGS, PARAM_FLAGS)
        # As a database driver's own error would: quoting the URL it was given.
        raise RuntimeError(f"could not connect to {config.search.storage}")

    cli = importlib.import_module("sor.cli.main")  # the module: `sor.cli.main` is also a function
    monkeypatch.setattr(cli, "cmd_backtest", failing_backtest)
    storage = f"postgresql://alice:{DB_PASSWORD}@db/optuna"
    before = registered()
    try:
        code = cli.main(["backtest", "--set", f"search.storage={storage}"])
    finally:  # the secret registered in this process would mask later tests' output
        forget_all()
        register(before)
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" in err and "could not connect to postgresql://alice:***@db/optuna" in err
    assert leaks(DB_PASSWORD, err) == []
