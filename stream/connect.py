"""Opening kafka-python clients: security settings passed through, retries while the broker is down.

The security dict (SASL passwords, key file passwords) is handed to the client and never logged
or put in an error message; errors name the bootstrap address and the exception type only.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sor.errors import StreamError
from sor.redaction import RedactSecrets, install_log_filter, is_secret_key, register

__all__ = [
    "check_bootstrap",
    "check_topic",
    "client_settings",
    "connect_with_retry",
    "reachable",
]

log = logging.getLogger(__name__)

T = TypeVar("T")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


# kafka-python's clients log their whole configuration, SASL password included, at DEBUG
# ("Starting KafkaAdminClient with configuration: {...}"); its protocol layer logs each request
# (SaslAuthenticateRequest with the PLAIN password) and the raw bytes sent. Logger filters are not
# inherited, so these loggers get the filter for library users whose handlers do not have it;
# `client_settings` also puts it on the root logger's handlers.
for _name in (
    "kafka.admin.client",
    "kafka.producer.kafka",
    "kafka.consumer.group",
    "kafka.protocol.parser",
    "kafka.net.connection",
):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, RedactSecrets) for f in _logger.filters):
        _logger.addFilter(RedactSecrets())


class _CancelledByClose(logging.Filter):
    """Drop kafka-python's error for a metadata request that closing the client cancelled.

    kafka-python logs it as "Metadata refresh: failed Cancelled" at ERROR, even though the close
    was the caller's and nothing failed; a run that stops its stream on an error would print it
    beside its own one-line error. Any other failed refresh is still logged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            record.msg == "Metadata refresh: failed %s"
            and args
            and type(args[0]).__name__ == "Cancelled"  # kafka.errors.Cancelled
        )


_cluster_logger = logging.getLogger("kafka.cluster")
if not any(isinstance(f, _CancelledByClose) for f in _cluster_logger.filters):
    _cluster_logger.addFilter(_CancelledByClose())


def check_topic(topic: str) -> str:
    """Return `topic` if Kafka accepts it as a name, else raise StreamError.

    Kafka topic names are 1 to 249 characters of ASCII letters, digits, '.', '_' and '-'.
    """
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise StreamError(
            f"topic {topic!r} is not a valid Kafka topic name: use 1-249 characters from "
            "[A-Za-z0-9._-]"
        )
    return topic


def check_bootstrap(bootstrap: str) -> str:
    """Return `bootstrap` if it looks like HOST:PORT[,HOST:PORT...], else raise StreamError."""
    if not isinstance(bootstrap, str) or not bootstrap.strip():
        raise StreamError(f"bootstrap must be HOST:PORT[,HOST:PORT...], but got {bootstrap!r}")
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise StreamError(
                f"bootstrap server {server.strip()!r} is not HOST:PORT (in {bootstrap!r})"
            )
    return bootstrap


def client_settings(bootstrap: str, security: dict[str, Any] | None) -> dict[str, Any]:
    """kafka-python settings common to every client: the bootstrap servers and security.

    The secret values among the security settings (SASL password, key file password) are
    registered with `sor.redaction`, so that no log record shows them.
    """
    settings = dict(security or {})
    register(v for k, v in settings.items() if is_secret_key(k))
    install_log_filter()
    settings["bootstrap_servers"] = [s.strip() for s in bootstrap.split(",")]
    return settings


def reachable(bootstrap: str, timeout_s: float = 1.0) -> bool:
    """True when at least one bootstrap server accepts a TCP connection.

    Only a TCP connect, no Kafka request: it works whatever the listener's security protocol,
    and it is enough to tell a broker that went away (connection refused, or no answer within
    `timeout_s` seconds) from one that is merely slow.
    """
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def connect_with_retry(
    open_client: Callable[[int], T],
    *,
    bootstrap: str,
    what: str,
    connect_timeout_s: float,
) -> T:
    """Open a client, retrying with exponential backoff while no broker answers.

    Args:
        open_client: builds the client given the bootstrap timeout of one attempt in ms.
        bootstrap: the address tried, for messages.
        what: "producer", "consumer", ... for messages.
        connect_timeout_s: give up after about this many seconds.

    Raises:
        StreamError: no broker answered in time, or the client failed for another reason
            (authentication, bad settings); names the bootstrap address.
    """
    from kafka.errors import KafkaError, RetriableError

    started = time.monotonic()
    deadline = started + connect_timeout_s
    delay, attempt = 0.2, 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        try:
            return open_client(max(100, int(min(remaining, 5.0) * 1000)))
        except RetriableError as exc:
            waited = time.monotonic() - started
            if time.monotonic() + delay >= deadline:
                raise StreamError(
                    f"cannot reach a Kafka broker at {bootstrap} for the {what}: "
                    f"{type(exc).__name__} after {attempt} attempt{'s' if attempt > 1 else ''} "
                    f"over {waited:.1f} s "
                    "(is the broker running? start one with `sor broker`)"
                ) from None
            log.warning(
                "no Kafka broker at %s yet (%s); retrying in %.1f s",
                bootstrap,
                type(exc).__name__,
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        except (KafkaError, TypeError, ValueError) as exc:
            # Not retried: wrong settings or refused credentials do not heal by waiting. The
            # exception text is left out because it may quote the settings.
            raise StreamError(
                f"cannot open a Kafka {what} for {bootstrap}: {type(exc).__name__} (check the "
                "kafka.security settings and the broker's listener)"
            ) from None
