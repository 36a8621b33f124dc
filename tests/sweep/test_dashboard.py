"""A sweep stored in SQLite opens in optuna-dashboard and continues with --resume."""

from __future__ import annotations

import json
from wsgiref.util import setup_testing_defaults

import pytest

from sor.config import load_config
from sweep.driver import run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def dashboard_get(storage: str, path: str) -> dict:
    """GET `path` from optuna-dashboard's own WSGI app over `storage`, as its server would."""
    from optuna_dashboard import wsgi

    app = wsgi(storage)
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, REQUEST_METHOD="GET")
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), (status, body[:500])
    return json.loads(body)


def test_dashboard_reads_the_sweep_and_sees_the_resumed_trials(tmp_path, local_ray, small_snaps):
    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    settings = {
        "order.size": 2000,
        "search.sampler": "random",
        "search.storage": storage,
        "search.study_name": "desk",
        "search.trials_per_round": 4,
    }
    ref = local_ray.put(small_snaps)
    first = run_sweep(ref, load_config(None, {**settings, "search.trials": 6}), progress=False)

    studies = dashboard_get(storage, "/api/studies")["study_summaries"]
    assert [s["study_name"] for s in studies] == ["desk"]
    detail = dashboard_get(storage, f"/api/studies/{studies[0]['study_id']}")
    assert len(detail["trials"]) == 6
    assert {p["name"] for p in detail["union_search_space"]} == {
        "lambda_over", "lambda_under", "theta_queue"
    }  # fmt: skip
    best = min(t["values"][0] for t in detail["trials"])
    assert best == pytest.approx(first.best_value, rel=1e-12)

    resumed = run_sweep(
        ref,
        load_config(None, {**settings, "search.trials": 10, "search.resume": True}),
        progress=False,
    )
    assert resumed.trials_run_now == 4
    detail = dashboard_get(storage, f"/api/studies/{studies[0]['study_id']}")
    assert len(detail["trials"]) == 10
