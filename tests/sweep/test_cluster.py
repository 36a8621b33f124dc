"""The same sweep on a two-node Ray cluster (built on this machine) and on a single node."""

from __future__ import annotations

import pytest

from sor.config import load_config
from sweep.driver import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def sweep_config():
    return load_config(
        None,
        {
            "order.size": 2000,
            "search.trials": 16,
            "search.sampler": "tpe",
            "search.trials_per_round": 8,
            "search.seed": 5,
        },
    )


def test_two_node_cluster_runs_trials_on_both_nodes_with_single_node_results(small_snaps):
    import ray
    from ray.cluster_utils import Cluster

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        single = run_sweep(ray.put(small_snaps), sweep_config(), progress=False)
    finally:
        ray.shutdown()

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        multi = run_sweep(ray.put(small_snaps), sweep_config(), progress=False)
    finally:
        ray.shutdown()
        cluster.shutdown()

    assert len(multi.nodes) == 2, f"trials ran on {multi.nodes}"
    assert multi.workers == 2
    assert [(t.params, t.value) for t in multi.study.trials] == [
        (t.params, t.value) for t in single.study.trials
    ]
    assert multi.best_params == single.best_params
