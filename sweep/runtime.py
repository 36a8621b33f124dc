"""Starting or joining a Ray runtime, and stopping what was started on every way out.

A local runtime (no `ray.address`) is confined to loopback: Ray binds its servers to the node's
address, and on Linux takes for that address the one other machines would reach it by, unless
told the cluster is this machine alone (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, the setting Ray
applies by default on macOS and Windows). With it the GCS, the raylet, the workers, the driver
and the runtime-env agent all listen on 127.0.0.1 only; without the dashboard no HTTP port is
opened.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["LOOPBACK", "check_reachable", "init_ray", "ray_runtime", "worker_count"]

log = logging.getLogger("sor.ray")

LOOPBACK = "127.0.0.1"
# Read by Ray when it is imported (ray._private.ray_constants.ENABLE_RAY_CLUSTER) and by every
# process it starts: "0" makes the node's address the loopback one.
_SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
_PR_SET_CHILD_SUBREAPER = 36


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at `address` (or $RAY_ADDRESS), else start a local runtime.

    The local runtime listens on loopback only and runs without the dashboard; see the module
    docstring. `ray_runtime` also stops it on leaving.
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_reachable(address)
        log.info("joining the Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=False)
    else:
        _start_local(num_cpus)


def _start_local(num_cpus: int | None) -> None:
    import ray
    from ray._private import ray_constants

    previous_env = os.environ.get(_SINGLE_MACHINE_ENV)
    previous_flag = ray_constants.ENABLE_RAY_CLUSTER
    # The environment for the processes Ray starts; the flag for this one, where Ray was
    # imported before. Both are put back afterwards, so that joining a cluster later from the
    # same process is not affected.
    os.environ[_SINGLE_MACHINE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _node_ip_address=LOOPBACK,
        )
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous_flag
        if previous_env is None:
            os.environ.pop(_SINGLE_MACHINE_ENV, None)
        else:
            os.environ[_SINGLE_MACHINE_ENV] = previous_env


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # An exception, so that the `finally` blocks run: the runtime and the broker are stopped.
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def ray_runtime(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """`init_ray` for the duration of a `with` block, and `ray.shutdown` on leaving it.

    Whatever ends the block (its end, an exception, Ctrl-C, SIGTERM), the driver disconnects
    and a local runtime it started is stopped, its GCS, raylet, agents and workers included,
    before the block is left. Inside, SIGTERM raises SystemExit(143) and Ctrl-C raises
    KeyboardInterrupt, even when the shell started the process with SIGINT ignored; both are
    held off while stopping. A runtime already initialized when the block is entered is the
    caller's: it is left running.
    """
    import ray

    if ray.is_initialized():  # the caller's runtime: theirs to stop
        init_ray(address, num_cpus)
        yield
        return
    handlers: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}
    in_main = _in_main_thread()
    adopting = _adopt_orphans(True)
    try:
        if in_main:
            handlers[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
            handlers[signal.SIGTERM] = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        init_ray(address, num_cpus)
        if in_main:  # again: ray.init installs a SIGTERM handler of its own
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
        yield
    finally:
        for signum in handlers:
            signal.signal(signum, signal.SIG_IGN)
        try:
            _shutdown()
        finally:
            if adopting:
                _adopt_orphans(False)
            for signum, handler in handlers.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _adopt_orphans(on: bool) -> bool:
    """Make this process the Linux child subreaper of its descendants (or stop being it).

    A raylet stopped while starting leaves its agents orphaned; as orphans of init they would
    no longer be found among this process's descendants, and outlive it. As orphans of this
    process they are, and `_shutdown` stops them. True when the setting took.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - every Linux libc has it
        return False
    return bool(prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)


def _shutdown() -> None:
    """`ray.shutdown`, then stop whatever the local runtime left running.

    Also after a `ray.init` that was interrupted half way, which leaves no connection to shut
    down. Ray stops the raylet and the GCS; the raylet's dashboard and runtime-env agents only
    notice it has gone after a while (minutes), so every Ray process below this one, before
    and after the shutdown, is killed if still alive (`_stop_all`).
    """
    import ray

    try:
        import psutil  # shipped with Ray (ray/thirdparty_files)
    except ImportError:  # pragma: no cover - Ray always ships it
        psutil = None
    before = _ray_processes(psutil) if psutil is not None else []
    ray.shutdown(wait_for_processes=True)
    if psutil is not None:
        _stop_all(psutil, before)


def _stop_all(psutil: Any, before: list[Any]) -> None:
    """Kill the Ray processes in `before`, those below this process now, and theirs.

    What is left after `ray.shutdown` had its chance to stop gracefully, so SIGKILL, to each
    process frozen first: a raylet interrupted half way through its start may be spawning its
    agents right now. An agent it spawned just before dying is handed to this process (the
    subreaper), and found by the next round.
    """
    stopped = 0
    for _ in range(5):
        alive = {p.pid: p for p in [*before, *_ray_processes(psutil)] if _alive(psutil, p)}
        if not alive:
            break
        for proc in list(alive.values()):
            with contextlib.suppress(psutil.Error):
                proc.suspend()
        for proc in _children(psutil, alive.values()):
            alive.setdefault(proc.pid, proc)
        for proc in alive.values():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(list(alive.values()), timeout=5.0)
        stopped += len(alive)
        before = []
    if stopped:
        log.debug("killed %d Ray processes left after shutdown", stopped)


def _children(psutil: Any, processes: Any) -> list[Any]:
    out = []
    for proc in list(processes):
        with contextlib.suppress(psutil.Error):
            out += proc.children(recursive=True)
    return out


def _alive(psutil: Any, proc: Any) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _ray_processes(psutil: Any) -> list[Any]:
    """The driver's descendant processes that are Ray's: the GCS, the raylet, the Python helpers
    run from the ray package, the agents and the workers (named ``ray::...``). Other children of
    the process (a broker the caller started) are not Ray's to stop."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            name = proc.name()
            if (
                name in ("gcs_server", "raylet")
                or name.startswith("ray::")
                or any(f"{os.sep}ray{os.sep}" in arg for arg in proc.cmdline())
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def worker_count() -> int:
    """CPUs the cluster offers for trial tasks (at least 1)."""
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast, with the address in the message, when nothing listens at a Ray address.

    `ray.init` itself retries an unreachable address for minutes without a word. "auto" and
    "local" are left to Ray.
    """
    import socket
    import time

    from sor.errors import SorError

    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise SorError(f"ray.address {address!r}: expected HOST:PORT or ray://HOST:PORT")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=2.0):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise SorError(
                    f"cannot reach Ray at {address} ({exc.strerror or exc}): start a cluster "
                    "there (`ray start --head`), or leave ray.address unset for a local runtime"
                ) from None
            time.sleep(0.5)
