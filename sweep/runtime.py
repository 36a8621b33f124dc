"""Starting or joining a Ray runtime.

A local runtime (no `ray.address`) is confined to loopback: Ray binds its servers to the node's
address, and on Linux takes for that address the one other machines would reach it by, unless
told the cluster is this machine alone (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, the setting Ray
applies by default on macOS and Windows). With it the GCS, the raylet, the workers, the driver
and the runtime-env agent all listen on 127.0.0.1 only; without the dashboard no HTTP port is
opened.
"""

from __future__ import annotations

import logging
import os

__all__ = ["LOOPBACK", "check_reachable", "init_ray", "worker_count"]

log = logging.getLogger("sor.ray")

LOOPBACK = "127.0.0.1"
# Read by Ray when it is imported (ray._private.ray_constants.ENABLE_RAY_CLUSTER) and by every
# process it starts: "0" makes the node's address the loopback one.
_SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at `address` (or $RAY_ADDRESS), else start a local runtime.

    The local runtime listens on loopback only and runs without the dashboard; see the module
    docstring. `sor run` stops it on every way out (`sor.cli.run`, `sor.cli.main`).
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
