"""Keeping secrets out of logs, error messages and written results.

Two tools. `redact_url` masks the password and the secret query parameters of a URL for
display. `register` records the secret values of a run (a SASL password, a storage URL's
password): every log record passing through a handler `install_log_filter` guarded, every error
line and every written result passed to `redact_text` then has them replaced by ``***``, whatever
logger wrote them and in whichever form they were quoted (plain, ``repr`` of a str or of bytes,
JSON, percent-encoded).

The words that mark a setting as secret are `sor.vocabulary.SECRET_WORDS`.
"""

from __future__ import annotations

import html
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit

from sor.vocabulary import SECRET_WORDS

__all__ = [
    "MASK",
    "RedactSecrets",
    "forget_all",
    "install_log_filter",
    "is_secret_key",
    "redact_mapping",
    "redact_text",
    "redact_url",
    "redact_values",
    "register",
    "registered",
    "secret_forms",
    "url_secrets",
]

MASK = "***"

_lock = threading.Lock()
_secrets: set[str] = set()
_forms: list[str] = []  # every quoted form of every secret, longest first


def is_secret_key(key: object) -> bool:
    """True when a setting's name contains a secret word (password, token, keyfile, secret)."""
    name = str(key).lower()
    return any(word in name for word in SECRET_WORDS)


def _split(url: str) -> tuple[str, str, str, str, str] | None:
    if "://" not in url:
        return None  # a file path (journal storage), not a URL
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed netloc
    except ValueError:
        return None
    return parts.scheme, parts.netloc, parts.path, parts.query, parts.fragment


def redact_url(url: str | None) -> str | None:
    """A URL with its password and secret query parameters replaced by ``***``.

    The user name, host, port, path and the other parameters are kept. The password is
    whatever follows the first ``:`` of the user information, up to the *last* ``@`` of the
    network location, so a password containing ``@`` or ``:`` is masked whole; an empty user
    name (``postgresql://:pw@host/db``) is handled too. Query parameters whose name contains a
    secret word (``?password=...``, ``?sslpassword=...``, ``?token=...``) are masked. A text
    that is not a URL (a journal file path) is returned as it is; a URL the parser refuses has
    everything after the scheme masked.

    Example:
        >>> redact_url("postgresql://alice:p@ss@db:5432/optuna?sslmode=require&password=x")
        'postgresql://alice:***@db:5432/optuna?sslmode=require&password=***'
    """
    if url is None:
        return None
    split = _split(url)
    if split is None:
        if "://" in url:
            return f"{url.split('://', 1)[0]}://{MASK}"
        return url
    scheme, netloc, path, query, fragment = split
    changed = False
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc, changed = f"{userinfo.split(':', 1)[0]}:{MASK}@{host}", True
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_key(k) for k, _ in pairs):
            masked = [(k, MASK if is_secret_key(k) else v) for k, v in pairs]
            query, changed = urlencode(masked, safe="*"), True
    if not changed:
        return url
    # Rebuilt by hand: urlunsplit drops the empty network location of sqlite:///file.db.
    return (
        f"{scheme}://{netloc}{path}"
        + (f"?{query}" if query else "")
        + (f"#{fragment}" if fragment else "")
    )


def url_secrets(url: str | None) -> list[str]:
    """The secret values in a URL: its password and its secret query parameters' values.

    Both the decoded value and the text as written (percent-encoded) are returned.
    """
    if not url:
        return []
    split = _split(url)
    if split is None:
        return []
    _, netloc, _, query, _ = split
    found: list[str] = []
    userinfo, at, _ = netloc.rpartition("@")
    if at and ":" in userinfo:
        raw = userinfo.split(":", 1)[1]
        found += [raw, unquote(raw)]
    for part in query.split("&"):
        key, eq, raw = part.partition("=")
        if eq and is_secret_key(unquote(key)):
            found += [raw, unquote(raw.replace("+", " "))]
    return [s for s in dict.fromkeys(found) if s]


def secret_forms(secret: str) -> set[str]:
    """The ways a secret can appear in text: as it is, as Python quotes a str or bytes holding
    it (``repr``), as JSON and HTML quote it, and percent-encoded."""
    forms = {
        secret,
        html.escape(secret),
        repr(secret)[1:-1],
        repr(secret.encode("utf-8"))[2:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }
    # repr escapes a quote character when the whole text holds both kinds; a secret inside a
    # longer str or bytes object is then quoted with the escape.
    for form in list(forms):
        forms.add(form.replace("'", "\\'"))
        forms.add(form.replace('"', '\\"'))
    return {f for f in forms if f}


def register(secrets: Iterable[Any]) -> None:
    """Add secret values to redact from every log record, error line and written result.

    Non-strings and empty strings are ignored. Registering the same value twice is harmless.
    """
    new = {s for s in secrets if isinstance(s, str) and s}
    with _lock:
        if new <= _secrets:
            return
        _secrets.update(new)
        forms = set().union(*(secret_forms(s) for s in _secrets))
        _forms[:] = sorted(forms, key=len, reverse=True)


def forget_all() -> None:
    """Forget every registered secret (for tests, or a process that runs several configurations
    one after the other)."""
    with _lock:
        _secrets.clear()
        _forms.clear()


def registered() -> frozenset[str]:
    """The secret values registered so far."""
    with _lock:
        return frozenset(_secrets)


def redact_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every form of every secret replaced by ``***``.

    Args:
        text: any text: a formatted log line, an error message, a JSON or HTML document.
        secrets: the values to mask; None for those `register`ed.
    """
    if secrets is None:
        forms = _forms
    else:
        forms = sorted(set().union(*(secret_forms(s) for s in secrets if s)), key=len, reverse=True)
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def redact_values(value: Any) -> Any:
    """A copy of nested dicts and lists with `redact_text` applied to every string in them,
    keys included; numbers and the structure are left as they are, so a document serialized
    from the copy stays valid whatever the secrets are (even a one-character password)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {redact_values(k): redact_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_values(v) for v in value)
    return value


def redact_mapping(value: Any) -> Any:
    """A copy of nested dicts and lists with secret-named keys masked and URLs redacted."""
    if isinstance(value, Mapping):
        return {
            k: MASK if is_secret_key(k) and v is not None else redact_mapping(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact_mapping(v) for v in value)
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


class RedactSecrets(logging.Filter):
    """Replaces registered secrets in a log record's message, exception and stack text.

    The record is formatted first (message and arguments together), so a secret is found
    whatever the argument was: a settings dict, a request object, raw bytes sent on a socket.
    Settings dicts among the arguments have their secret-named keys masked too, which covers
    secrets never registered. Attached to handlers, it sees the records of every logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; always keeps it."""
        if isinstance(record.args, Mapping) or (
            isinstance(record.args, tuple) and any(isinstance(a, Mapping) for a in record.args)
        ):
            record.args = redact_mapping(record.args)
        if not _forms:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


_FILTER = RedactSecrets()


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Attach the redaction filter to every handler of `logger` (default: the root logger) and
    to Python's last-resort handler. Idempotent; call it again after adding handlers."""
    handlers = list((logger or logging.getLogger()).handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
