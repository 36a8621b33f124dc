"""Starting or joining a Ray runtime."""

from __future__ import annotations

import logging
import os

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
