"""A static `report.html` for one results JSON: key numbers, best parameters, plots, statistics.

One self-contained file beside the JSON and its PNG plots: no server, no external assets, no
JavaScript. Every number comes from the report dict and sits in an element carrying its JSON path
(`data-key="baselines.twap.avg_fill_px"`) and its exact JSON value (`data-value`), so the page
can be checked against the JSON mechanically.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sor.evaluation.backtest import savings_label
from sor.files import write_text
from sor.redaction import redact_values
from sweep.formatting import format_value
from sweep.headline import Headline, Line, Num, headline

__all__ = ["CAPTIONS", "format_value", "render_html", "write_html"]

#: Plot names (`sweep.output_names.PLOTS`) -> caption.
CAPTIONS = {
    "fill_path": "Cumulative shares filled and running average fill price, per strategy",
    "venue_shares": "Shares filled per venue (publisher_id), router and baselines side by side",
    "savings_distribution": "Router savings against each baseline, one point per parent order: "
    "in-sample (tuned on) and out-of-sample orders in separate boxes",
    "optimization_history": "Sweep: objective per trial (completed cash in dollars, or mean "
    "in-sample shortfall in bps over parent orders)",
    "param_importances": "Sweep: parameter importances",
    "per_day_savings": "Router savings against each baseline per day (mean over its parent "
    "orders); in-sample days hatched",
}

_STRATEGY_COLUMNS = (  # (result key, heading)
    ("avg_fill_px", "avg fill price ($/share)"),
    ("total_cash", "total cash ($)"),
    ("completed_cash", "completed cash ($)"),
    ("filled_shares", "filled shares"),
    ("unfilled_shares", "unfilled shares"),
    ("cleanup_share", "left to the clean-up"),
    ("participation", "participation"),
    ("child_orders", "child orders"),
)
#: How the page names `in_sample` / `out_of_sample` wherever their numbers appear.
_SAMPLE_LABELS = {
    "out_of_sample": "out of sample",
    "in_sample": "in sample (tuned on these orders)",
}
_METHOD_NAMES = {
    "newey_west": "Newey-West",
    "day_clustered": "clustered by day",
    "circular_block_bootstrap": "circular block bootstrap",
    "day_bootstrap": "bootstrap of whole days",
}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: monospace; }
th { background: #f4f4f4; }
tr.optimized td { font-weight: bold; }
tr.groups th { text-align: center; background: #e8eef7; }
.positive { color: #1a7f37; } .negative { color: #b42318; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.note { color: #555; font-size: 0.9em; }
#measured-on { font-weight: bold; padding: 0.3em 0.6em; border-left: 4px solid #1a7f37; }
#measured-on.in_sample { border-left-color: #b54708; background: #fffaeb; }
tr.in_sample th:first-child { color: #b54708; }
#walk-forward td.num { white-space: nowrap; }
#headline p, #headline li { margin: 0.35em 0; }
#verdict { font-size: 1.15em; font-weight: bold; }
#verdicts li.lost { color: #b42318; } #verdicts li.beat { color: #1a7f37; }
#data-line.generated { padding: 0.3em 0.6em; border-left: 4px solid #6941c6; background: #f4f3ff; }
#warnings { padding: 0.3em 0.6em 0.3em 2em; border-left: 4px solid #b54708; background: #fffaeb; }
#warnings li { margin: 0.3em 0; }
details > summary { cursor: pointer; color: #555; }
"""


def _cell(path: str, value: Any, css: str = "") -> str:
    """A <td> with the shown value, its JSON path and its exact JSON value."""
    classes = [css] if css else []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        classes.append("num")
    attrs = f' data-key="{escape(path)}" data-value="{escape(json.dumps(value, default=str))}"'
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{cls}{attrs}>{escape(format_value(path, value))}</td>"


def _flatten(value: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        if not value:
            return [(prefix, value)]
        rows: list[tuple[str, Any]] = []
        for key, item in value.items():
            rows.extend(_flatten(item, f"{prefix}.{key}"))
        return rows
    return [(prefix, value)]


#: Lists longer than this are folded into a <details> table, one row per element.
LONG_LIST = 12


def _long_list(path: str, values: list) -> str:
    """A <td> holding a folded table of a long list, one keyed cell per element."""
    rows = "".join(f"<tr><th>{i}</th>{_cell(f'{path}.{i}', v)}</tr>" for i, v in enumerate(values))
    return (
        f'<td data-list="{escape(path)}"><details><summary>{len(values):,} values</summary>'
        f"<table>{rows}</table></details></td>"
    )


def _key_value_table(section: str, value: Any, skip: frozenset[str] = frozenset()) -> str:
    """A two-column table of a nested dict, one row per leaf, named by its dotted path; a list
    longer than `LONG_LIST` folded; leaves whose path is in `skip` left out."""
    if not isinstance(value, dict):
        return f"<p>{_cell_inline(section, value)}</p>"
    rows = []
    for path, item in _flatten(value, section):
        if path in skip:
            continue
        shown = path[len(section) + 1 :]
        cell = (
            _long_list(path, item)
            if isinstance(item, list) and len(item) > LONG_LIST
            else _cell(path, item)
        )
        rows.append(f"<tr><th>{escape(shown)}</th>{cell}</tr>")
    return f'<table class="kv" id="{escape(section)}">' + "".join(rows) + "</table>"


def _cell_inline(path: str, value: Any) -> str:
    return (
        f'<span data-key="{escape(path)}" data-value="{escape(json.dumps(value, default=str))}">'
        f"{escape(format_value(path, value))}</span>"
    )


def _strategy_table(report: dict) -> str:
    order_size = (report.get("config") or {}).get("order", {}).get("size")
    measured_on = report.get("measured_on")
    sample = f", {measured_on.replace('_', ' ')}" if measured_on in _SAMPLE_LABELS else ""
    schedule = "schedule" in report
    if schedule:  # totals over every order; the savings are a mean per order
        sample = f" per order, mean{sample}"
    results = [("optimized", "optimized", report["optimized"])] + [
        (name, f"baselines.{name}", result) for name, result in report.get("baselines", {}).items()
    ]
    # Only the columns the JSON has (a schedule's totals have no child_orders).
    columns = [(k, h) for k, h in _STRATEGY_COLUMNS if any(k in r for _, _, r in results)]
    heads = ["strategy"]
    for key, head in columns:
        heads.append(head)
        if key == "completed_cash" and order_size:
            heads.append("completed avg price ($/share)")
    heads.append(f"router's savings (bps{sample})")
    rows = []
    savings = report.get("savings_vs_baselines_bps", {})
    for name, prefix, result in results:
        cells = [f"<th>{escape(name)}</th>"]
        for key, _ in columns:
            cells.append(_cell(f"{prefix}.{key}", result.get(key)))
            if key == "completed_cash" and order_size:
                # Derived, not in the JSON: completed cash per share of the parent order(s),
                # filled + unfilled (one order: config.order.size; a schedule: all of them).
                cash = result.get("completed_cash")
                shares = result.get("filled_shares", 0) + result.get("unfilled_shares", 0)
                px = None if cash is None or not shares else cash / shares
                cells.append(
                    f'<td class="num" data-derived="{escape(prefix)}.completed_cash / '
                    f'({escape(prefix)}.filled_shares + {escape(prefix)}.unfilled_shares)">'
                    f"{escape(format_value('avg_fill_px', px))}</td>"
                )
        if name in savings:
            value = savings[name]
            css = "positive" if value and value > 0 else "negative" if value and value < 0 else ""
            cells.append(_cell(f"savings_vs_baselines_bps.{name}", value, css))
        else:
            cells.append("<td></td>")
        css = ' class="optimized"' if name == "optimized" else ""
        rows.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in heads) + "</tr>"
    if schedule:
        # Say over the columns which are totals over every order and which is a mean per order.
        sched = report["schedule"]
        n_in = report.get("in_sample", {}).get("parent_orders", 0)
        n_out = report.get("out_of_sample", {}).get("parent_orders", 0)
        totals = (
            f"Totals over all {sched['parent_orders']:,} parent orders "
            f"({n_in:,} in sample + {n_out:,} out of sample)"
        )
        measured = _SAMPLE_LABELS.get(str(measured_on), "").split(" (")[0]
        header = (
            f'<tr class="groups"><th></th><th colspan="{len(heads) - 2}" id="totals-head">'
            f'{escape(totals)}</th><th id="per-order-head">Mean per order, '
            f"{escape(measured)}</th></tr>{header}"
        )
    return f'<table id="key-numbers">{header}{"".join(rows)}</table>'


def _method(path: str, stats: dict) -> str:
    """How a summary's error and interval were computed, with its lag and block length."""
    error = _METHOD_NAMES.get(stats.get("std_error_method", ""), stats.get("std_error_method"))
    interval = _METHOD_NAMES.get(stats.get("ci95_method", ""), stats.get("ci95_method"))
    lag, block = stats.get("hac_lag"), stats.get("block_length")
    if error is None or interval is None:  # a report written before the methods were named
        return "<td></td>"
    text = escape(str(error))
    if lag is not None:
        text += f", lag {_cell_inline(f'{path}.hac_lag', lag)}"
    text += f"; {escape(str(interval))}"
    if block is not None:
        text += f", blocks of {_cell_inline(f'{path}.block_length', block)} orders"
    return f"<td>{text}</td>"


def _walk_forward_table(report: dict) -> str:
    """Mean savings with standard error and 95% interval, one row per sample and baseline.

    Out-of-sample rows come first; every row says which orders it is measured on.
    """
    heads = [
        "measured on",
        "baseline",
        "parent orders",
        "days",
        "mean",
        "std error",
        "95% interval",
        "method",
    ]
    rows = []
    for part in ("out_of_sample", "in_sample"):
        if not report.get(part, {}).get("parent_orders"):
            continue
        for name, stats in report[part].get("savings_bps", {}).items():
            path = f"{part}.savings_bps.{name}"
            mean = stats.get("mean")
            css = "positive" if mean and mean > 0 else "negative" if mean and mean < 0 else ""
            cells = [f"<th>{escape(_SAMPLE_LABELS[part])}</th>", f"<th>{escape(name)}</th>"]
            cells.append(_cell(f"{path}.n", stats.get("n")))
            cells.append(
                _cell(f"{path}.days", stats.get("days")) if "days" in stats else "<td></td>"
            )
            cells.append(_cell(f"{path}.mean", mean, css))
            cells.append(_cell(f"{path}.std_error", stats.get("std_error")))
            ci = stats.get("ci95")
            cells.append(
                "<td></td>"
                if ci is None
                else f'<td class="num">[{_cell_inline(f"{path}.ci95.0", ci[0])}, '
                f"{_cell_inline(f'{path}.ci95.1', ci[1])}]</td>"
            )
            cells.append(_method(path, stats))
            rows.append(f'<tr class="{part}" data-measured-on="{part}">' + "".join(cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in heads) + "</tr>"
    return f'<table id="walk-forward">{header}{"".join(rows)}</table>'


def _venue_economics_table(report: dict) -> str:
    """Fee, rebate and what the venue keeps per share, one row per venue (`venue_economics`)."""
    venues = report.get("venue_economics") or []
    if not venues:
        return ""
    heads = ["publisher_id", "taker fee $/share", "maker rebate $/share", "venue keeps $/share"]
    rows = []
    for i, venue in enumerate(venues):
        path = f"venue_economics.{i}"
        cells = [f"<th>{escape(str(venue['publisher_id']))}</th>"]
        cells += [_cell(f"{path}.{key}", venue[key]) for key in ("fee", "rebate", "venue_net")]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in heads) + "</tr>"
    return (
        "<h2>Fees and rebates per venue</h2>"
        '<p class="note">A negative fee pays the taker and a negative rebate charges the maker '
        "(an inverted venue).</p>"
        f'<table id="venue-economics">{header}{"".join(rows)}</table>'
    )


def _per_day_table(report: dict) -> str:
    """One row per day: sample, parent orders, mean shortfall per strategy, mean savings.

    Empty without `per_day` in the report (a single order).
    """
    days = report.get("per_day") or []
    if not days:
        return ""
    strategies = list(days[0]["shortfall_bps"])
    baselines = list(days[0]["savings_bps"])
    heads = ["day", "sample", "parent orders"]
    heads += [f"shortfall {name}" for name in strategies]
    heads += [f"savings vs {name}" for name in baselines]
    rows = []
    for i, day in enumerate(days):
        path = f"per_day.{i}"
        sample = day["sample"]
        cells = [f"<th>{escape(day['day'])}</th>", f"<td>{escape(sample.replace('_', ' '))}</td>"]
        cells.append(_cell(f"{path}.parent_orders", day["parent_orders"]))
        for name in strategies:
            cells.append(_cell(f"{path}.shortfall_bps.{name}", day["shortfall_bps"][name]))
        for name in baselines:
            value = day["savings_bps"][name]
            css = "positive" if value and value > 0 else "negative" if value and value < 0 else ""
            cells.append(_cell(f"{path}.savings_bps.{name}", value, css))
        rows.append(f'<tr class="{escape(sample)}">' + "".join(cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in heads) + "</tr>"
    return (
        "<h3>Per day (bps, means over each day's parent orders)</h3>"
        f'<table id="per-day">{header}{"".join(rows)}</table>'
    )


def _venue_table(report: dict) -> str:
    results = [("optimized", "optimized", report["optimized"])] + [
        (name, f"baselines.{name}", result) for name, result in report.get("baselines", {}).items()
    ]
    venues = sorted({int(v) for _, _, r in results for v in r.get("shares_by_venue", {})})
    header = "<tr><th>strategy</th>" + "".join(f"<th>{v}</th>" for v in venues) + "</tr>"
    rows = []
    for name, prefix, result in results:
        by_venue = result.get("shares_by_venue", {})
        cells = "".join(
            _cell(f"{prefix}.shares_by_venue.{v}", by_venue[str(v)])
            if str(v) in by_venue
            else '<td class="num">0</td>'
            for v in venues
        )
        rows.append(f"<tr><th>{escape(name)}</th>{cells}</tr>")
    return f'<table id="venue-shares">{header}{"".join(rows)}</table>'


def _plots_section(plots: dict[str, str]) -> str:
    parts = []
    for name, file_name in plots.items():
        caption = CAPTIONS.get(name, name)
        parts.append(
            f'<figure id="plot-{escape(name)}"><img src="{escape(quote(file_name))}" '
            f'alt="{escape(caption)}" data-plot="{escape(name)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    missing = [name for name in CAPTIONS if name not in plots]
    if missing:
        names = escape(", ".join(missing))
        parts.append(f'<p class="note">Not drawn (see the run log for why): {names}.</p>')
    return "".join(parts)


def _line(line: Line) -> str:
    """A headline line as HTML: text escaped, each number tagged with its JSON path."""
    return "".join(
        _cell_inline(part.path, part.value) if isinstance(part, Num) else escape(part)
        for part in line
    )


def _measured_on(report: dict) -> str:
    """The sentence saying which parent orders the savings are measured on (as the terminal's)."""
    measured_on = report.get("measured_on", "")
    sentence = escape(savings_label(report))
    note = report.get("measured_on_note")
    if note:
        sentence += f" — {_cell_inline('measured_on_note', note)}"
    return (
        f'<p id="measured-on" class="{escape(measured_on)}" '
        f'data-measured-on="{escape(measured_on)}">{sentence}</p>'
    )


def _headline_section(report: dict, head: Headline) -> str:
    """The top of the page: the data, the result against each baseline, which orders it is
    measured on and how far to trust it, the clean-up, and the warnings, one per line."""
    parts = []
    if head.data:
        css = ' class="generated"' if head.generated else ""
        parts.append(f'<p id="data-line"{css}>{_line(head.data)}</p>')
    lost = any(v.outcome == "lost" for v in head.verdicts)
    won = head.verdicts and all(v.outcome == "beat" for v in head.verdicts)
    css = "negative" if lost else "positive" if won else ""
    parts.append(f'<p id="verdict" class="{css}">{_line(head.verdict)}</p>')
    if head.verdicts:
        items = "".join(
            f'<li class="{escape(v.outcome)}" data-baseline="{escape(v.baseline)}">'
            f"{_line(v.line)}</li>"
            for v in head.verdicts
        )
        parts.append(f'<ul id="verdicts">{items}</ul>')
    if report.get("measured_on") in _SAMPLE_LABELS or report.get("savings_basis"):
        parts.append(_measured_on(report))
    parts.append(f'<p id="orders">{_line(head.orders)}</p>')
    parts.append(f'<p id="cleanup-shares">{_line(head.cleanup)}</p>')
    if head.warnings:
        items = "".join(
            f'<li data-key="warnings.{i}" data-value="{escape(json.dumps(w))}">{escape(w)}</li>'
            for i, w in enumerate(head.warnings)
        )
        parts.append(
            f'<div id="warnings"><strong>Warnings ({len(head.warnings)})</strong>'
            f"<ul>{items}</ul></div>"
        )
    else:
        parts.append('<p id="warnings" class="note">No warnings.</p>')
    return '<section id="headline">' + "".join(parts) + "</section>"


def _per_order_table(report: dict) -> str:
    """A schedule's per-order shortfalls, folded: one row per parent order, its sample, the
    router's and each baseline's shortfall in bps."""
    sched = report["schedule"]
    shortfall = sched.get("shortfall_bps", {})
    in_sample = sched.get("in_sample", [])
    names = list(shortfall)
    n = len(in_sample)
    heads = ["order", "sample", *(f"{name} shortfall (bps)" for name in names)]
    rows = []
    for i in range(n):
        cells = [f"<th>{i}</th>", _cell(f"schedule.in_sample.{i}", in_sample[i])]
        cells += [_cell(f"schedule.shortfall_bps.{name}.{i}", shortfall[name][i]) for name in names]
        css = "in_sample" if in_sample[i] else "out_of_sample"
        rows.append(f'<tr class="{css}">' + "".join(cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in heads) + "</tr>"
    return (
        f'<details id="per-order"><summary>Shortfall of each of the {n:,} parent orders '
        "(bps of its arrival mid; router is the optimized router)</summary>"
        f"<table>{header}{''.join(rows)}</table></details>"
    )


def render_html(report: dict, plots: dict[str, str], trials_csv: str | None = None) -> str:
    """The page as a string; see `write_html`."""
    head = headline(report)
    body = [f"<h1>{escape(head.title)}</h1>", _headline_section(report, head)]
    body.append("<h2>Key numbers</h2>")
    body.append(f'<p id="rows-cover" class="note">{_line(head.rows)}</p>')
    body.append(_strategy_table(report))
    basis = report.get("savings_basis")
    if basis and basis.startswith("mean_shortfall"):
        body.append(
            '<p class="note">Savings: the mean over parent orders of (baseline shortfall - router '
            "shortfall), in bps of each order's arrival mid, positive when the router paid less; "
            f"orders averaged: {_cell_inline('savings_basis', basis)}. Totals are over every "
            "parent order. Cash includes fees, less rebates on passive fills.</p>"
        )
    else:
        body.append(
            '<p class="note">Savings: (baseline price - router price) / baseline price * 1e4, '
            "positive when the router paid less"
            + (
                f"; prices compared: {_cell_inline('savings_basis', basis)} (completed cash / "
                "order size, unfilled shares bought by the clean-up after the horizon)"
                if basis
                else ""
            )
            + ". Cash includes fees.</p>"
        )
    if "out_of_sample" in report:
        body.append("<h3>Savings per parent order, in and out of sample (bps)</h3>")
        body.append(_walk_forward_table(report))
    body.append(_per_day_table(report))
    if "schedule" in report:
        body.append(_per_order_table(report))
    body.append("<h3>Shares filled per venue</h3>")
    body.append(_venue_table(report))
    body.append("<h2>Best parameters</h2>")
    body.append(_key_value_table("best_parameters", report.get("best_parameters", {})))
    if plots:
        body.append("<h2>Plots</h2>")
        body.append(_plots_section(plots))
    sections = [
        ("sweep", "Sweep"),
        ("data", "Data"),
        ("stream", "Stream"),
        ("config", "Configuration"),
    ]
    shown = {"best_parameters", "optimized", "baselines", "savings_vs_baselines_bps"}
    shown |= {"savings_basis", "measured_on", "measured_on_note", "warnings"}
    shown |= {key for key, _ in sections}
    # The per-order lists are in the folded per-order table above.
    per_order = report.get("schedule", {}).get("shortfall_bps", {})
    skip = frozenset({"schedule.in_sample", *(f"schedule.shortfall_bps.{n}" for n in per_order)})
    shown |= {"per_day"} if report.get("per_day") else set()
    if report.get("venue_economics"):
        body.append(_venue_economics_table(report))
        shown.add("venue_economics")
    for key, heading in sections:
        if key in report:
            body.append(f"<h2>{escape(heading)}</h2>")
            if key == "sweep" and trials_csv:
                n = report["sweep"].get("trials")
                body.append(
                    f'<p class="note">Every trial ({escape(format_value("sweep.trials", n))}), '
                    f'one row each: <a href="{escape(quote(trials_csv))}">'
                    f"{escape(trials_csv)}</a>.</p>"
                )
            body.append(_key_value_table(key, report[key]))
    for key in [k for k in report if k not in shown]:
        label = f"{key}: {_SAMPLE_LABELS[key]}" if key in _SAMPLE_LABELS else key
        body.append(f"<h2>{escape(label)}</h2>")
        body.append(_key_value_table(key, report[key], skip))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(head.title)}</title><style>{_STYLE}</style></head>\n"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_html(
    report: dict, plots: dict[str, str], path: Path, trials_csv: str | None = None
) -> Path:
    """Write the static HTML page of a results dict, atomically (`sor.files.atomic_write`).

    Args:
        report: the results dict (model.md §6) with, optionally, "sweep", "data", "stream" and
            "config" (already redacted: the page shows every value it is given).
        plots: {plot name: PNG file name relative to the page's directory}, as `write_plots`
            returns when its `out_dir` is the page's directory.
        path: where to write the page, e.g. runs/report.html.
        trials_csv: the trials table's file name relative to the page's directory, linked from
            the Sweep section (the page lists no trial itself).

    Returns:
        `path`.

    Example:
        >>> files = write_plots(report, result.study, paths, out.parent, out.stem)
        >>> write_html(report, files, out.parent / "report.html")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The configuration in it is redacted already; this also catches a secret quoted elsewhere.
    return Path(write_text(path, render_html(redact_values(report), plots, trials_csv)))
