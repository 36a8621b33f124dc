"""A local Ray runtime and a small generated market shared by the sweep tests."""

from __future__ import annotations

import pytest

from sor.data.loader import load_snapshots
from sor.synth.generate import generate


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "small.csv"
    generate(path, n_events=3000, schema="mbp-1", seed=3)
    return path


@pytest.fixture(scope="session")
def small_snaps(small_csv):
    return load_snapshots(small_csv)[0]


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
