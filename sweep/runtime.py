"""Starting or joining a Ray runtime."""

from __future__ import annotations

import logging
import os

__all__ = ["check_reachable", "init_ray", "worker_count"]

log = logging.getLogger("sor.ray")


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at `address` (or $RAY_ADDRESS), else start a local runtime.

    The local runtime runs without the dashboard, so it opens no port beyond loopback.
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
        ray.init(
            num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False
        )


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
