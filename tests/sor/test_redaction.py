"""Secrets kept out of URLs shown, log records and text written (sor.redaction)."""

from __future__ import annotations

import json
import logging

import pytest

from sor.config import load_config
from sor.redaction import (
    MASK,
    RedactSecrets,
    forget_all,
    redact_text,
    redact_url,
    redact_values,
    register,
    registered,
    secret_forms,
    url_secrets,
)


@pytest.fixture(autouse=True)
def own_registry():
    """The secrets a test registers are forgotten after it: they would mask later tests' logs."""
    before = registered()
    yield
    forget_all()
    register(before)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://quant:s3cret@db:5432/optuna", "postgresql://quant:***@db:5432/optuna"),
        # '@' and ':' inside the password: the user information ends at the last '@'.
        ("postgresql://alice:p@ss:w@rd@db:5432/optuna", "postgresql://alice:***@db:5432/optuna"),
        ("postgresql://:s3cret@db/optuna", "postgresql://:***@db/optuna"),  # empty user name
        ("mysql://alice:pa%40ss@db/optuna", "mysql://alice:***@db/optuna"),  # percent-encoded
        (
            "postgresql://db/optuna?sslmode=require&password=s3cret",
            "postgresql://db/optuna?sslmode=require&password=***",
        ),
        (
            "postgresql://alice@db/optuna?sslpassword=s3cret",
            "postgresql://alice@db/optuna?sslpassword=***",
        ),
        ("postgresql+psycopg2://u:x@[::1]:5432/o", "postgresql+psycopg2://u:***@[::1]:5432/o"),
        ("postgresql://alice@db/optuna", "postgresql://alice@db/optuna"),  # no password
        ("sqlite:///sweep.db", "sqlite:///sweep.db"),
        ("runs/sweep.jsonl", "runs/sweep.jsonl"),  # a journal file, not a URL
        ("postgresql://u:s3cret@[::1/o", "postgresql://***"),  # the parser refuses it
        (None, None),
    ],
)
def test_redact_url(url, shown):
    assert redact_url(url) == shown
    for secret in url_secrets(url):
        assert secret not in (shown or "")


def test_url_secrets_are_the_password_and_the_secret_parameters():
    assert url_secrets("postgresql://alice:p@ss@db/o?token=t0k&sslmode=require") == ["p@ss", "t0k"]
    assert url_secrets("mysql://alice:pa%40ss@db/o") == ["pa%40ss", "pa@ss"]
    assert url_secrets("postgresql://alice@db/o?sslmode=require") == []
    assert url_secrets("runs/sweep.jsonl") == [] and url_secrets(None) == []


@pytest.mark.parametrize(
    "quoted",
    [
        "plain: {s}",
        "repr of str: {s!r}",
        "repr of bytes: {b!r}",
        "repr of a PLAIN token: {token!r}",
        "json: {j}",
        "repr of bytes holding both quotes: {both!r}",
    ],
)
def test_every_quoted_form_is_masked(quoted):
    secret = "p'w\"d\\é@x"
    text = quoted.format(
        s=secret,
        b=secret.encode(),
        token=b"\x00alice\x00" + secret.encode(),
        j=json.dumps({"password": secret}),
        both=b"'\"" + secret.encode(),
    )
    redacted = redact_text(text, [secret])
    assert MASK in redacted
    assert not any(form in redacted for form in secret_forms(secret))


def test_the_filter_masks_registered_secrets_in_any_logger_any_argument(caplog):
    register(["unit-test-Secret-42"])
    logger = logging.getLogger("some.library.nobody.configured")
    handler = logging.StreamHandler()
    record = logger.makeRecord(
        logger.name,
        logging.DEBUG,
        __file__,
        1,
        "%s Send: %r",
        ("conn", b"\x00\x00alice\x00unit-test-Secret-42"),
        None,
    )
    assert RedactSecrets().filter(record)
    line = handler.format(record)
    assert "unit-test-Secret-42" not in line and "Send: b'\\x00\\x00alice\\x00***'" in line


def test_the_filter_masks_exception_text():
    register(["exc-Secret-43"])
    try:
        raise ValueError("cannot connect to postgresql://u:exc-Secret-43@db/o")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed", (), __import__("sys").exc_info()
        )
    RedactSecrets().filter(record)
    assert "exc-Secret-43" not in logging.Formatter().format(record)


def test_config_secrets_and_redacted_dump():
    config = load_config(
        None,
        {
            "kafka.security": {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_plain_username": "alice",
                "sasl_plain_password": "kafka-pw",
                "ssl_password": "key-pw",
            },
            "search.storage": "postgresql://bob:db@pw@db/optuna?sslpassword=ssl-pw",
        },
    )
    assert set(config.secrets()) == {"kafka-pw", "key-pw", "db@pw", "ssl-pw"}
    dump = config.redacted()
    assert dump["search"]["storage"] == "postgresql://bob:***@db/optuna?sslpassword=***"
    assert dump["kafka"]["security"]["sasl_plain_password"] == MASK
    assert dump["kafka"]["security"]["sasl_plain_username"] == "alice"
    assert not any(s in json.dumps(dump) for s in config.secrets())


def test_redacted_values_keep_a_document_valid_whatever_the_secret():
    register(["7"])  # a one-character password: masking the serialized text would break it
    report = {"value": 17.5, "note": "pw 7 leaked", "nested": [{"7": 7}]}
    assert redact_values(report) == {"value": 17.5, "note": "pw *** leaked", "nested": [{"***": 7}]}
