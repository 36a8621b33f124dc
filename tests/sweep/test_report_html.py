"""The plots and the static report.html of a small sweep, checked as files and in a browser.

The report is built as `sor run` builds it, minus Kafka and Ray: a generated CSV, a small
in-memory Optuna study over the real evaluation, then `sweep_report`, `fill_paths`,
`write_plots` and `write_html`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import struct
import subprocess
from html import escape, unescape
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest

from sor.cli.output import summary_table
from sor.config import load_config
from sor.data.loader import load_snapshots
from sor.evaluation.backtest import fill_paths, make_market
from sor.evaluation.modes import prepare
from sor.evaluation.rules import evaluation_rules
from sor.routers.static import RouterParams
from sor.synth.generate import generate
from sor.vocabulary import ALLOCATOR_PARAMS
from sweep.driver import SweepResult
from sweep.html_report import format_value, render_html, write_html
from sweep.plots import cumulative_path, importance_params, importance_skip_reason, write_plots
from sweep.report import sweep_report, sweep_warnings
from sweep.space import distributions
from tests.csvdata import two_generated_days

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = Path("/usr/bin/chromium")
N_TRIALS = 5


PARAM_NAMES = ALLOCATOR_PARAMS["static"]  # the single-order static router's parameters


def objective_for(market, config):
    from sor.evaluation.backtest import evaluate

    # The sweep's distributions: with the default static space lambda_over is one fixed value.
    dists = distributions(config.search, config.router.allocator)

    def objective(trial: optuna.Trial) -> float:
        params = {n: trial.suggest_float(n, dists[n].low, dists[n].high) for n in PARAM_NAMES}
        return evaluate(market, RouterParams(**params), config.order).completed_cash

    return objective


@pytest.fixture(scope="module")
def built(small_snaps, small_csv, tmp_path_factory):
    """A report, its JSON, plots and HTML in one directory, as `sor run` would leave them."""
    out_dir = tmp_path_factory.mktemp("report")
    config = load_config(
        None,
        {
            "order.size": 2000,
            "search.trials": N_TRIALS,
            "search.sampler": "random",
            "output.out": str(out_dir / "results.json"),
        },
    )
    market = make_market(small_snaps, evaluation_rules(config))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective_for(market, config), n_trials=N_TRIALS)
    sweep = SweepResult(
        best_params=study.best_params,
        best_value=study.best_value,
        trials_complete=N_TRIALS,
        trials_failed=0,
        trials_run_now=N_TRIALS,
        wall_s=1.0,
        workers=1,
        study=study,
    )
    summary = load_snapshots(small_csv)[1]
    data = {
        **summary.to_dict(),
        "snapshots": len(small_snaps),
        "snapshot_bytes": small_snaps.nbytes,
    }
    report = sweep_report(small_snaps, config, sweep, extra={"data": data})
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    paths = fill_paths(market, RouterParams(**study.best_params), evaluation_rules(config))
    plots = write_plots(report, study, paths, out_dir, "results")
    html = write_html(report, plots, out_dir / "report.html")
    return SimpleNamespace(
        config=config,
        study=study,
        report=report,
        json=json.loads(json_path.read_text()),
        paths=paths,
        plots=plots,
        html=html,
        out_dir=out_dir,
    )


@pytest.fixture(scope="module")
def scheduled(built, small_snaps):
    """A swept schedule of parent orders (static router, 1 s apart, 2 s each), its page beside
    `built`'s as schedule_report.html: in- and out-of-sample rows in the walk-forward table."""
    config = load_config(
        None,
        {
            "order.size": 2000,
            "schedule.enabled": True,
            "schedule.interval_s": 1,
            "schedule.horizon_s": 2,
            "schedule.twap_bucket_s": 0.5,
            "output.out": str(built.out_dir / "schedule.json"),
        },
    )
    evaluation = prepare(small_snaps, config)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    dists = distributions(config.search, config.router.allocator)

    def objective(trial: optuna.Trial) -> float:
        params = {n: trial.suggest_float(n, dists[n].low, dists[n].high) for n in PARAM_NAMES}
        return evaluation.evaluate(params).value

    study.optimize(objective, n_trials=3)
    sweep = SweepResult(
        best_params=study.best_params,
        best_value=study.best_value,
        trials_complete=3,
        trials_failed=0,
        trials_run_now=3,
        wall_s=1.0,
        workers=1,
        study=study,
    )
    extra = {"data": built.json["data"]}
    report = json.loads(json.dumps(sweep_report(evaluation, config, sweep, extra), allow_nan=False))
    html = write_html(report, {}, built.out_dir / "schedule_report.html")
    return SimpleNamespace(json=report, html=html)


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails unless the file starts as a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR", f"{path} has no IHDR chunk first"
    return struct.unpack(">II", head[16:24])


def resolve(report: dict, key: str):
    value = report
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def check_numbers(
    entries: list[tuple[str, str, str]], report: dict, required: set[str] | None = None
) -> None:
    """Each (data-key, data-value, shown text) of the page against the JSON `report`.

    `required`: keys the page must show; None: those of `built`'s single-order sweep.
    """
    assert entries, "the page has no data-key elements"
    for key, value_json, text in entries:
        value = resolve(report, key)
        assert json.loads(value_json) == value, key
        assert text.strip() == format_value(key, value), key
        if isinstance(value, float):
            # The shown number is the JSON's, rounded to the decimals shown (percent: of 100).
            shown = text.strip().replace(",", "")
            scale = 100.0 if shown.endswith("%") else 1.0
            shown = shown.removesuffix("%")
            decimals = len(shown.partition(".")[2])
            assert float(shown) == pytest.approx(
                value * scale, rel=0, abs=0.501 * 10.0**-decimals
            ), key
    keys = {key for key, _, _ in entries}
    if required is not None:
        assert required <= keys, sorted(required - keys)
        return
    required = {f"best_parameters.{n}" for n in PARAM_NAMES}
    required |= {f"optimized.{k}" for k in ("avg_fill_px", "total_cash", "completed_cash")}
    required |= {"optimized.filled_shares", "optimized.unfilled_shares"}
    for name in report["baselines"]:
        required |= {f"baselines.{name}.avg_fill_px", f"savings_vs_baselines_bps.{name}"}
        required |= {f"baselines.{name}.completed_cash", f"baselines.{name}.unfilled_shares"}
    required |= {"sweep.trials_complete", "sweep.best_completed_cash", "config.order.size"}
    required |= {"data.snapshots", "data.rows_read", "data.symbol", "measured_on_note"}
    assert required <= keys, sorted(required - keys)


def schedule_keys(report: dict) -> set[str]:
    """What the schedule page must show: each walk-forward row's numbers, methods and label."""
    keys = {"measured_on_note"}
    for part in ("in_sample", "out_of_sample"):
        for name in report["baselines"]:
            path = f"{part}.savings_bps.{name}"
            keys |= {f"{path}.{k}" for k in ("n", "days", "mean", "std_error", "hac_lag")}
            keys |= {f"{path}.block_length", f"{path}.ci95.0", f"{path}.ci95.1"}
    return keys


def measured_on_text(html: str) -> str:
    """The text of the page's #measured-on paragraph, tags stripped."""
    found = re.search(r'<p id="measured-on"[^>]*>(.*?)</p>', html)
    assert found, "the page has no #measured-on sentence"
    return unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def walk_forward_rows(html: str) -> list[tuple[str, str, str]]:
    """(data-measured-on, label cell, baseline) of each walk-forward row."""
    table = html[html.index('<table id="walk-forward">') :]
    table = table[: table.index("</table>")]
    return re.findall(
        r'<tr class="\w+" data-measured-on="(\w+)"><th>([^<]*)</th><th>([^<]*)</th>', table
    )


class _KeyedElements(HTMLParser):
    """Collects (data-key, data-value, text) of every element carrying data-key, and the imgs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.entries: list[tuple[str, str, str]] = []
        self.images: list[dict[str, str]] = []
        self._open: list[list] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif "data-key" in attrs:
            self._open.append([tag, attrs["data-key"], attrs.get("data-value"), ""])

    def handle_data(self, data):
        if self._open:
            self._open[-1][3] += data

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            _, key, value, text = self._open.pop()
            self.entries.append((key, value, text))


def parse_page(path: Path) -> _KeyedElements:
    parser = _KeyedElements()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# ---------------------------------------------------------------------------------------------
# Files


def test_fill_paths_add_up_to_the_reported_results(built, small_snaps):
    report = built.json
    results = {"optimized": report["optimized"], **report["baselines"]}
    assert set(built.paths) == set(results)
    venues = small_snaps.venues.tolist()
    for name, result in results.items():
        ts, shares, cash = cumulative_path(built.paths[name])
        assert shares[-1] == result["filled_shares"], name
        # Summed in the engine's order, the recorded fills give the engine's cash exactly.
        assert cash[-1] == result["total_cash"], name
        assert np.all(np.diff(ts) > 0) and np.all(np.diff(shares) > 0), name
        by_venue = sum(r.shares for r in built.paths[name])
        assert {str(v): int(s) for v, s in zip(venues, by_venue, strict=True) if s} == result[
            "shares_by_venue"
        ], name


def test_plots_are_valid_pngs_beside_the_json(built):
    expected = ["fill_path", "venue_shares", "optimization_history"]
    if importance_skip_reason(built.study) is None:
        expected.append("param_importances")
    assert list(built.plots) == expected
    for name, file_name in built.plots.items():
        path = built.out_dir / file_name
        assert path.name == f"results_{name}.png"
        width, height = png_size(path)
        assert width >= 400 and height >= 200, (name, width, height)


def test_param_importances_are_drawn_or_skipped_with_a_reason(tmp_path, caplog, built):
    def quadratic(trial):
        x = {n: trial.suggest_float(n, 0.0, 1.0) for n in PARAM_NAMES}
        return (x["lambda_over"] - 0.3) ** 2 + 0.1 * x["theta_queue"]

    sampler = optuna.samplers.RandomSampler(seed=1)
    varied = optuna.create_study(sampler=sampler)
    varied.optimize(quadratic, n_trials=5)
    assert importance_skip_reason(varied) is None
    plots = write_plots(built.report, varied, None, tmp_path, "varied")
    assert "param_importances" in plots and "fill_path" not in plots
    png_size(tmp_path / plots["param_importances"])

    one = optuna.create_study()
    one.optimize(quadratic, n_trials=1)
    fixed = optuna.create_study()
    fixed.optimize(lambda t: t.suggest_float("lambda_over", 0.2, 0.2) + len(t.study.trials), 3)
    flat = optuna.create_study()
    flat.optimize(lambda t: t.suggest_float("lambda_over", 0.0, 1.0) * 0 + 1.0, n_trials=3)
    reasons = {
        "one": (one, ">= 2 complete trials"),
        "fixed": (fixed, "no parameter varied"),
        "flat": (flat, "same objective value"),
        "none": (None, "no study"),
    }
    for stem, (study, reason) in reasons.items():
        assert reason in importance_skip_reason(study), stem
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="sor.plots"):
            plots = write_plots(built.report, study, None, tmp_path, stem)
        assert "param_importances" not in plots, stem
        assert reason in caplog.text, stem
        assert ("optimization_history" in plots) == (study is not None), stem


def test_the_importance_plot_leaves_out_the_fixed_lambda_over(tmp_path, built, monkeypatch):
    import optuna.visualization.matplotlib as optuna_plots

    config = built.config  # the default static space: lambda_over fixed at params.lambda_over
    assert {t.params["lambda_over"] for t in built.study.trials} == {config.params.lambda_over}
    assert built.report["best_parameters"]["lambda_over"] == config.params.lambda_over
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    dists = distributions(config.search, "static")
    for _ in range(8):
        trial = study.ask(dists)
        study.tell(trial, trial.params["lambda_under"] + 0.1 * trial.params["theta_queue"])
    assert importance_params(study) == ["lambda_under", "theta_queue"]
    # Optuna's own evaluator would list it, with importance 0: the plot is given the names
    assert "lambda_over" in optuna.importance.get_param_importances(study)
    drawn = []
    original = optuna_plots.plot_param_importances

    def spy(study, evaluator=None, params=None, **kwargs):
        drawn.append(params)
        return original(study, evaluator, params, **kwargs)

    monkeypatch.setattr(optuna_plots, "plot_param_importances", spy)
    plots = write_plots(built.report, study, None, tmp_path, "fixed_over")
    assert "param_importances" in plots and drawn == [["lambda_under", "theta_queue"]]
    # a user space that varies lambda_over keeps it in the plot
    searched = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    searched.optimize(lambda t: t.suggest_float("lambda_over", 0.0, 0.1) ** 2, n_trials=4)
    assert importance_params(searched) == ["lambda_over"]


def test_html_shows_the_json_numbers_and_every_plot(built):
    page = parse_page(built.html)
    check_numbers(page.entries, built.json)
    assert [img["src"] for img in page.images] == list(built.plots.values())
    text = built.html.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text


def test_html_says_which_orders_the_savings_are_measured_on(built, scheduled):
    # one order, swept: in sample, said at the top, in the savings column and in the warnings
    assert built.json["measured_on"] == "in_sample"
    html = built.html.read_text()
    assert measured_on_text(html) == (
        "savings: in sample, 1 parent order (tuned on the same data) — "
        + built.json["measured_on_note"]
    )
    assert html.index('id="measured-on"') < html.index('id="key-numbers"')
    assert "router&#x27;s savings (bps, in sample)" in html
    assert any("measured on the data the parameters were tuned on" in w
               for w in built.json["warnings"])  # fmt: skip

    # a schedule: out of sample at the top; every walk-forward row labelled, out of sample first
    report = scheduled.json
    html = scheduled.html.read_text()
    n_out, n_in = report["out_of_sample"]["parent_orders"], report["in_sample"]["parent_orders"]
    assert n_out > 1 and n_in > 1 and report["measured_on"] == "out_of_sample"
    assert measured_on_text(html).startswith(f"savings: out of sample, {n_out} parent orders — ")
    assert "router&#x27;s savings (bps per order, mean, out of sample)" in html
    baselines = list(report["baselines"])
    assert walk_forward_rows(html) == [
        ("out_of_sample", "out of sample", name) for name in baselines
    ] + [("in_sample", "in sample (tuned on these orders)", name) for name in baselines]
    assert "<h2>in_sample: in sample (tuned on these orders)</h2>" in html
    page = parse_page(scheduled.html)
    check_numbers(page.entries, report, required=schedule_keys(report))
    assert f"only {n_out} parent orders out of sample" in " ".join(report["warnings"])


def test_html_shows_the_per_day_table_and_plot(tmp_path):
    data = two_generated_days(tmp_path)
    config = load_config(
        None,
        {
            "window.start": "14:30",
            "window.end": "14:31",
            "schedule.enabled": True,
            "schedule.interval_s": 5,
            "schedule.horizon_s": 10,
            "schedule.train_days": 1,
            "schedule.bootstrap_samples": 100,
        },
    )
    snaps = load_snapshots(data, **config.load_options())[0]
    params = {"lambda_over": 0.05, "lambda_under": 0.05, "theta_queue": 0.001}
    report = json.loads(json.dumps(prepare(snaps, config).report(params), allow_nan=False))
    plots = write_plots(report, None, None, tmp_path, "days")
    assert png_size(tmp_path / plots["per_day_savings"])[0] > 100
    html = write_html(report, plots, tmp_path / "days.html")
    page = parse_page(html)
    required = set()
    for i, day in enumerate(report["per_day"]):
        required |= {f"per_day.{i}.parent_orders"}
        required |= {f"per_day.{i}.shortfall_bps.{n}" for n in day["shortfall_bps"]}
        required |= {f"per_day.{i}.savings_bps.{n}" for n in day["savings_bps"]}
    check_numbers(page.entries, report, required=required)
    table = html.read_text().split('<table id="per-day">')[1].split("</table>")[0]
    assert re.findall(r"<tr class=\"(\w+)\"><th>([^<]*)</th>", table) == [
        ("in_sample", "2024-08-01"),
        ("out_of_sample", "2024-08-02"),
    ]
    assert "per_day_savings" in [img["data-plot"] for img in page.images]


def test_html_escapes_what_it_shows(tmp_path, built):
    report = json.loads(json.dumps(built.report))
    report["data"]["path"] = '<img src=x onerror="alert(1)">&'
    report["config"]["kafka"]["topic"] = "</table><script>alert(1)</script>"
    page = write_html(report, {"a<b": 'x".png'}, tmp_path / "report.html")
    text = page.read_text()
    assert "<script>" not in text and "<img src=x" not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in text
    parsed = parse_page(page)
    assert [img["src"] for img in parsed.images] == ["x%22.png"]
    shown = {key: text for key, _, text in parsed.entries}
    assert unescape(shown["data.path"]) == report["data"]["path"]


def visible_text(html: str) -> str:
    """The page's text as a reader sees it: tags (and their attributes) removed."""
    body = html[html.index("<body>") :]
    return unescape(re.sub(r"<[^>]+>", " ", body))


def element_text(html: str, element_id: str) -> str:
    """The text of the element with `element_id` (tags stripped, spaces collapsed)."""
    found = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', html, re.S)
    assert found, f"the page has no #{element_id}"
    return " ".join(unescape(re.sub(r"<[^>]+>", "", found.group(2))).split())


HEADLINE_ORDER = (
    "data-line",
    "verdict",
    "verdicts",
    "measured-on",
    "orders",
    "cleanup-shares",
    "warnings",
    "key-numbers",
)


def test_the_headline_comes_first_and_says_what_was_measured(built, scheduled):
    for report, page in ((built.json, built.html), (scheduled.json, scheduled.html)):
        html = page.read_text()
        where = [html.index(f'id="{name}"') for name in HEADLINE_ORDER]
        assert where == sorted(where), "the headline is not above the tables, in order"
        # warnings at the top, one per line (a list item each), as the JSON has them
        items = re.findall(r'<li data-key="warnings\.\d+"[^>]*>(.*?)</li>', html)
        assert [unescape(i) for i in items] == report["warnings"] and items
        verdicts = re.findall(r'<li class="(\w+)" data-baseline="(\w+)">', html)
        assert [b for _, b in verdicts] == list(report["savings_vs_baselines_bps"])

    one = element_text(built.html.read_text(), "orders")
    assert one.startswith("One parent order of 2,000 shares over the whole window")
    assert "tuned on (in sample)" in one and "no interval" in one
    cleanup = element_text(built.html.read_text(), "cleanup-shares")
    for name in ("optimized", *built.json["baselines"]):
        assert f"{name} " in cleanup

    report, html = scheduled.json, scheduled.html.read_text()
    n, n_in, n_out = (report["schedule"]["parent_orders"], report["in_sample"]["parent_orders"],
                      report["out_of_sample"]["parent_orders"])  # fmt: skip
    orders = element_text(html, "orders")
    assert orders.startswith(f"{n} parent orders of 2,000 shares each (one every 1.0 s")
    assert f"{n_out} out of sample" in orders and f"{n_in} in sample" in orders
    assert "95% intervals of the mean by circular block bootstrap" in orders
    for name, stats in report["out_of_sample"]["savings_bps"].items():
        lo, hi = (format_value("x.savings_bps.y.ci95.0", v) for v in stats["ci95"])
        mean = format_value("x.savings_bps.y.mean", stats["mean"])
        said = f"vs {name}: {mean} bps per order (95% interval {lo} to {hi})"
        assert said in element_text(html, "verdicts")
    assert "out-of-sample orders" in element_text(html, "cleanup-shares")


def with_savings(report: dict, **means: float) -> dict:
    """`report` with the router's savings against some baselines replaced (and, for a schedule,
    its out-of-sample mean and an interval of +-1 bps around it)."""
    report = json.loads(json.dumps(report))
    for name, mean in means.items():
        report["savings_vs_baselines_bps"][name] = mean
        if "schedule" in report:
            stats = report["out_of_sample"]["savings_bps"][name]
            stats["mean"], stats["ci95"] = mean, [mean - 1.0, mean + 1.0]
    return report


def test_the_headline_says_plainly_when_the_router_loses(tmp_path, built, scheduled):
    names = list(built.json["baselines"])
    first, rest = names[0], names[1:]
    lost = with_savings(built.json, **{first: -3.736}, **{n: 0.8 for n in rest})
    html = write_html(lost, {}, tmp_path / "lost.html").read_text()
    verdict = element_text(html, "verdict")
    assert verdict.startswith(f"Result (in sample): the router LOST to {first}: it paid more")
    assert f"beat {' and '.join(rest)}" in verdict.replace(", ", " and ")
    assert '<p id="verdict" class="negative">' in html
    assert f'<li class="lost" data-baseline="{first}">vs {first}: ' in html
    assert "-3.736" in element_text(html, "verdicts")
    assert "+0.800" in element_text(html, "verdicts")
    check_numbers(parse_page(tmp_path / "lost.html").entries, lost)

    every = with_savings(built.json, **{n: -1.0 for n in names})
    verdict = element_text(write_html(every, {}, tmp_path / "all.html").read_text(), "verdict")
    assert verdict.startswith("Result (in sample): the router LOST to every baseline (")

    # a schedule: the interval decides; one that includes 0 is not a loss
    report = with_savings(scheduled.json, **{first: -2.0, rest[0]: -0.5, rest[1]: 2.0})
    html = write_html(report, {}, tmp_path / "schedule.html").read_text()
    verdict = element_text(html, "verdict")
    assert verdict == (
        f"Result (out of sample): the router LOST to {first}: it paid more; it beat {rest[1]}; "
        f"it is not clearly different from {rest[0]}."
    )
    assert f'<li class="unclear" data-baseline="{rest[0]}">' in html
    check_numbers(parse_page(tmp_path / "schedule.html").entries, report,
                  required=schedule_keys(report))  # fmt: skip


def test_generated_data_says_so(built, small_csv):
    assert built.json["data"]["generated"] is True
    assert built.json["data"]["symbol"] == "SYNTH-AAPL"
    html = built.html.read_text()
    assert "<h1>Smart order router results — SYNTH-AAPL, 2024-08-01 (generated data)</h1>" in html
    assert '<p id="data-line" class="generated">' in html
    assert element_text(html, "data-line").startswith(
        "Data: generated by sor (synthetic quotes and trades, not a real market): SYNTH-AAPL, "
        "2024-08-01 13:36:32 to "
    )
    # real data: no such words
    real = json.loads(json.dumps(built.json))
    real["data"].update(symbol="AAPL", symbols=["AAPL"], generated=False)
    text = render_html(real, {})
    assert element_text(text, "data-line").startswith("Data: AAPL, 2024-08-01 13:36:32 to ")
    assert '<p id="data-line">' in text
    assert "<h1>Smart order router results — AAPL, 2024-08-01</h1>" in text


def test_a_schedule_labels_totals_and_per_order_figures(scheduled):
    report, html = scheduled.json, scheduled.html.read_text()
    n = report["schedule"]["parent_orders"]
    n_in, n_out = report["in_sample"]["parent_orders"], report["out_of_sample"]["parent_orders"]
    assert element_text(html, "totals-head") == (
        f"Totals over all {n} parent orders ({n_in} in sample + {n_out} out of sample)"
    )
    assert element_text(html, "per-order-head") == "Mean per order, out of sample"
    assert element_text(html, "rows-cover") == (
        f"Table rows: totals over all {n} parent orders ({n_in} in sample + {n_out} out of "
        f"sample, {2000 * n:,} shares in all); the savings column: the mean per order over the "
        f"{n_out} out-of-sample orders."
    )
    assert "parent order of 2,000 shares;" not in html  # the old header, about one order
    # the per-order numbers: a folded table, one row per order, its sample in words
    table = html[html.index('<details id="per-order">') :]
    table = table[: table.index("</details>")]
    assert len(re.findall(r"<tr class=\"(?:in|out_of)_sample\">", table)) == n
    assert '"schedule.in_sample.0" data-value="true">in sample</td>' in table
    assert f'"schedule.in_sample.{n - 1}" data-value="false">out of sample</td>' in table


def test_numbers_are_rounded_for_people(built, scheduled):
    assert format_value("sweep.best_value", 1114073.2899999996) == "1,114,073.29"
    assert format_value("sweep.wall_s", 38.68912) == "38.6891"
    assert format_value("data.snapshot_bytes", 52614345) == "52,614,345"
    assert format_value("config.search.seed", 12345) == "12345"
    assert format_value("schedule.first_arrival_ns", 1722519392000000001) == (
        "2024-08-01T13:36:32.000000001Z"
    )
    assert format_value("savings_vs_baselines_bps.twap", -3.7361) == "-3.736"
    assert format_value("out_of_sample.savings_bps.twap.std_error", 0.05) == "0.050"
    for page in (built.html, scheduled.html):
        text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "", visible_text(page.read_text()))
        assert not re.search(r"\d\.\d{7,}", text), re.search(r".{40}\d\.\d{7,}.{10}", text)
        assert not re.search(r"\d{5,}\.\d", text)  # thousands separated
        assert "true, " not in text and "false, " not in text  # no raw lists of flags
        assert not re.search(r"(-?\d+\.\d+, ){12}", text)  # no inline lists of numbers
    shown = {key: text for key, _, text in parse_page(built.html).entries}
    best = built.json["sweep"]["best_value"]
    assert shown["sweep.best_value"] == f"{best:,.2f}"


def test_the_sweep_section_points_to_the_trials_csv_instead_of_listing_trials(built):
    html = render_html(built.json, {}, trials_csv="results_trials.csv")
    assert (
        f'<p class="note">Every trial ({N_TRIALS}), one row each: '
        '<a href="results_trials.csv">results_trials.csv</a>.</p>'
    ) in html
    assert html.index('href="results_trials.csv"') < html.index('<table class="kv" id="sweep">')


@pytest.fixture(scope="module")
def few_values(built, small_snaps):
    """A 40-trial random sweep of the default space over `built`'s data: the static router's
    completed cash takes only a handful of values there."""
    config = built.config.model_copy(update={})
    market = make_market(small_snaps, evaluation_rules(config))
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective_for(market, config), n_trials=40)
    sweep = SweepResult(
        best_params=study.best_params,
        best_value=study.best_value,
        trials_complete=40,
        trials_failed=0,
        trials_run_now=40,
        wall_s=1.0,
        workers=1,
        study=study,
    )
    return json.loads(json.dumps(sweep_report(small_snaps, config, sweep), allow_nan=False))


def test_a_sweep_with_few_distinct_values_says_so(tmp_path, few_values, built):
    sweep = few_values["sweep"]
    assert sweep["trials_complete"] == 40 and 1 < sweep["distinct_values"] <= 5
    assert 1 <= sweep["trials_at_best"] < 40
    found = [w for w in few_values["warnings"] if "distinct objective values" in w]
    assert found == [
        f"the 40 complete trials produced only {sweep['distinct_values']} distinct objective "
        f"values; {sweep['trials_at_best']} of them tie for the best value: most parameter sets "
        "give the same result on this data, so best_parameters is one of many ties and more "
        "trials will not help; widen the search space (search.space), search other settings "
        "(e.g. router.allocator: cont_kukanov, order.cap), or use data where the split matters "
        "(more venues, deeper books, a larger order.size)"
    ]
    html = write_html(few_values, {}, tmp_path / "few.html").read_text()
    assert f'data-value="{escape(json.dumps(found[0]))}">{escape(found[0])}</li>' in html
    assert f"  warning: {found[0]}" in summary_table(few_values).splitlines()
    # `built`'s 5 trials are too few to tell
    assert not any("distinct objective values" in w for w in built.json["warnings"])
    # the rule on its own
    assert sweep_warnings({"trials_complete": 200, "distinct_values": 3, "trials_at_best": 9})
    assert not sweep_warnings({"trials_complete": 200, "distinct_values": 1})  # said elsewhere
    assert not sweep_warnings({"trials_complete": 200, "distinct_values": 11})
    assert sweep_warnings({"trials_complete": 400, "distinct_values": 20})  # one per 20 trials
    assert not sweep_warnings({"trials_complete": 19, "distinct_values": 2})


# ---------------------------------------------------------------------------------------------
# Browser


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `cmd` in its own process group, killing the whole group if it outlives `timeout`."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return subprocess.CompletedProcess(cmd, -9, out, err + f"\ntimed out after {timeout} s")
    finally:
        # Chromium's helpers (zygote, renderers, crashpad) share the group: leave none behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.fixture(scope="session")
def chromium() -> str:
    """/usr/bin/chromium, installed with apt-get when absent; skips when it cannot be."""
    if CHROMIUM.exists():
        return str(CHROMIUM)
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip(f"{CHROMIUM} is absent and apt-get is not available to install it")
    if os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is absent and installing it with apt-get needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "--no-install-recommends", "chromium"]
    result = _run(install, timeout=600, env=env)
    if result.returncode != 0:  # perhaps stale package lists
        _run([apt, "update"], timeout=300, env=env)
        result = _run(install, timeout=600, env=env)
    if result.returncode != 0 or not CHROMIUM.exists():
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        pytest.skip(f"could not install chromium (apt-get exit {result.returncode}): {tail}")
    return str(CHROMIUM)


def headless(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    profile.mkdir(parents=True, exist_ok=True)
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        *args,
    ]
    env = {**os.environ, "HOME": str(profile)}
    result = _run(cmd, timeout=120, env=env)
    assert result.returncode == 0, f"chromium exit {result.returncode}: {result.stderr[-2000:]}"
    return result


# The harness loads report.html in an iframe and, once it and its images have loaded, writes what
# the browser rendered (image sizes, every data-key element's text) into its own DOM, which
# --dump-dom prints. Test-only: report.html itself has no script.
HARNESS = """<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="page" src="report.html" style="width:1200px;height:2000px"></iframe>
<iframe id="schedule" src="schedule_report.html" style="width:1200px;height:2000px"></iframe>
<script>
const pages = {};
for (const id of ["page", "schedule"]) {
  document.getElementById(id).addEventListener("load", () => {
    const doc = document.getElementById(id).contentDocument;
    const said = doc.getElementById("measured-on");
    pages[id] = {
      images: [...doc.images].map(i => ({src: i.getAttribute("src"), complete: i.complete,
                                         width: i.naturalWidth, height: i.naturalHeight})),
      keys: [...doc.querySelectorAll("[data-key]")].map(
        e => [e.dataset.key, e.dataset.value, e.textContent]),
      measured_on: said ? said.textContent : null,
      walk_forward: [...doc.querySelectorAll("#walk-forward tr[data-measured-on]")].map(
        r => [r.dataset.measuredOn, r.cells[0].textContent, r.cells[1].textContent]),
      title: doc.querySelector("h1").textContent,
      verdict: doc.getElementById("verdict").textContent,
      warnings: [...doc.querySelectorAll("#warnings li")].map(li => li.textContent),
      warning_boxes: [...doc.querySelectorAll("#warnings li")].map(li => {
        const box = li.getBoundingClientRect();
        return [box.top, box.bottom];
      }),
      data_line: doc.getElementById("data-line").textContent,
      orders: doc.getElementById("orders").textContent,
      cleanup: doc.getElementById("cleanup-shares").textContent,
      headline_top: doc.getElementById("headline").getBoundingClientRect().top,
      // the headline fits above the fold of a 1200 x 2000 window, before the first table
      headline_bottom: doc.getElementById("headline").getBoundingClientRect().bottom,
      table_top: doc.getElementById("key-numbers").getBoundingClientRect().top,
      per_order_open: (doc.getElementById("per-order") || {}).open || false,
    };
    if (Object.keys(pages).length === 2) {
      document.getElementById("result").textContent = JSON.stringify(pages);
    }
  });
}
</script></body></html>
"""


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a first run installs chromium
def test_report_renders_in_headless_chromium(built, scheduled, chromium, tmp_path):
    harness = built.out_dir / "harness.html"
    harness.write_text(HARNESS)
    dom = headless(
        chromium,
        tmp_path / "profile",
        "--allow-file-access-from-files",
        "--dump-dom",
        harness.as_uri(),
    ).stdout
    start = dom.index('<pre id="result">') + len('<pre id="result">')
    pages = json.loads(unescape(dom[start : dom.index("</pre>", start)]))
    rendered = pages["page"]

    images = rendered["images"]
    assert [i["src"] for i in images] == list(built.plots.values())
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        width, height = png_size(built.out_dir / image["src"])
        assert (image["width"], image["height"]) == (width, height), image
    check_numbers([tuple(e) for e in rendered["keys"]], built.json)
    assert rendered["measured_on"] == measured_on_text(built.html.read_text())
    assert rendered["walk_forward"] == []  # one order: no walk-forward table
    assert rendered["title"].endswith("(generated data)")
    assert rendered["verdict"] == element_text(built.html.read_text(), "verdict")
    for page, report, path in (
        (rendered, built.json, built.html),
        (pages["schedule"], scheduled.json, scheduled.html),
    ):
        assert page["warnings"] == report["warnings"]
        assert page["headline_bottom"] <= page["table_top"] < 2000
        # the headline as rendered: the data, which orders and how many, the interval, each
        # strategy's clean-up share; the warnings under it, each on lines of its own
        html = path.read_text()
        for key, element in (("data_line", "data-line"), ("orders", "orders"),
                             ("cleanup", "cleanup-shares")):  # fmt: skip
            assert " ".join(page[key].split()) == element_text(html, element), key
        for name in ("optimized", *report["baselines"]):
            assert f"{name} " in page["cleanup"]
        boxes = page["warning_boxes"]
        assert len(boxes) == len(report["warnings"]) >= 1
        assert all(above[1] <= below[0] for above, below in zip(boxes, boxes[1:], strict=False))
        assert page["headline_top"] < boxes[0][0] and boxes[-1][1] <= page["table_top"]
    assert "in sample" in rendered["orders"] and "no interval" in rendered["orders"]
    said = pages["schedule"]["orders"]
    assert "out of sample" in said and "in sample" in said and "95% intervals" in said
    assert pages["schedule"]["per_order_open"] is False  # the long per-order table is folded

    # the schedule's page: its numbers, its sentence and its labelled rows, as rendered
    schedule = pages["schedule"]
    check_numbers([tuple(e) for e in schedule["keys"]], scheduled.json,
                  required=schedule_keys(scheduled.json))  # fmt: skip
    html = scheduled.html.read_text()
    assert schedule["measured_on"] == measured_on_text(html)
    assert schedule["measured_on"].startswith("savings: out of sample, ")
    assert [tuple(r) for r in schedule["walk_forward"]] == walk_forward_rows(html)
    assert {r[0] for r in schedule["walk_forward"]} == {"in_sample", "out_of_sample"}

    shot = tmp_path / "report.png"
    headless(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1200,2000",
        built.html.as_uri(),
    )
    assert png_size(shot) == (1200, 2000)
    from PIL import Image

    with Image.open(shot) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 200, "the screenshot is (nearly) blank"
    background = max(colors)[0] / (1200 * 2000)
    assert background < 0.95, f"{background:.0%} of the screenshot is one color"


def test_the_report_shows_fee_and_rebate_per_venue(tmp_path):
    """The JSON's `venue_economics` (each venue's fee, rebate and what it keeps) is a table."""
    data = tmp_path / "fees.csv"
    generate(data, n_events=1500, schema="mbp-1", seed=2)
    config = load_config(None, {"venues.overrides": {"9": {"fee": -0.0002, "rebate": -0.0001}}})
    snaps = load_snapshots(data, **config.load_options())[0]
    params = {"lambda_over": 0.4, "lambda_under": 0.6, "theta_queue": 0.3}
    report = json.loads(json.dumps(prepare(snaps, config).report(params), allow_nan=False))
    economics = {v["publisher_id"]: v for v in report["venue_economics"]}
    assert sorted(economics) == sorted(int(v) for v in snaps.venues)
    assert economics[9] == {
        "publisher_id": 9,
        "fee": -0.0002,
        "rebate": -0.0001,
        "venue_net": -0.0001,
    }
    default = next(v for k, v in economics.items() if k != 9)
    assert (default["fee"], default["rebate"]) == (config.venues.fee, config.venues.rebate)
    html = write_html(report, {}, tmp_path / "fees.html").read_text()
    table = html.split('<table id="venue-economics">')[1].split("</table>")[0]
    assert re.findall(r"<tr><th>(\d+)</th>", table) == [str(v) for v in snaps.venues]
    assert 'data-key="venue_economics.' in table and ">-0.0002<" in table
