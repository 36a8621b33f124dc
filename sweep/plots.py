"""PNG plots of a sweep's report: fill paths, shares per venue, optimization history, importances.

The plots are written beside the results JSON and linked from `report.html` (`sweep.html_report`).
They are drawn from the report dict, the Optuna study and per-fill records; the numbers in the
report stay the only source of truth, the plots only show them.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import matplotlib

# A report writer must never open a window or need a display (sweeps run on headless machines
# and Ray clusters): draw with Agg whatever backend the environment would pick.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from sor.evaluation.backtest import FillRecord  # noqa: E402
from sor.files import atomic_write  # noqa: E402
from sweep.output_names import PLOTS  # noqa: E402

__all__ = [
    "MIN_PRICE_SPAN",
    "MIN_TIME_SPAN_NS",
    "PLOTS",
    "cumulative_path",
    "fill_path_figure",
    "importance_params",
    "importance_skip_reason",
    "savings_distribution_figure",
    "time_limits",
    "value_limits",
    "venue_shares_figure",
    "write_plots",
]

log = logging.getLogger("sor.plots")

_DPI = 100


def _save(fig: Any, path: Path, **kwargs: Any) -> None:
    """Save a figure as PNG atomically (`sor.files.atomic_write`)."""
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=_DPI, **kwargs)


def cumulative_path(records: list[FillRecord]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative shares, cumulative cash and the snapshot times of a fill path.

    Cash is summed fill by fill in the engine's order, so the last entry equals the engine's
    `total_cash` exactly.

    Returns:
        (ts int64[K] ns, shares int64[K] filled so far, cash float64[K] dollars paid so far).
    """
    ts = np.array([r.ts for r in records], dtype=np.int64)
    shares = np.zeros(len(records), dtype=np.int64)
    cash = np.zeros(len(records), dtype=np.float64)
    total_shares, total_cash = 0, 0.0
    for i, r in enumerate(records):
        j = np.flatnonzero(r.shares)
        for k in j:
            total_cash += float(r.cash[k])
        total_shares += int(r.shares.sum())
        shares[i], cash[i] = total_shares, total_cash
    return ts, shares, cash


def _strategy_names(report: dict) -> list[str]:
    return ["optimized", *report.get("baselines", {})]


def _window(report: dict, paths: dict[str, list[FillRecord]]) -> tuple[int, int] | None:
    """(start, end) ns of the evaluation window: the data summary's, else the fills' span."""
    data = report.get("data") or {}
    try:
        start = np.datetime64(str(data["start"]).rstrip("Z"), "ns").astype(np.int64)
        end = np.datetime64(str(data["end"]).rstrip("Z"), "ns").astype(np.int64)
        return int(start), int(end)
    except (KeyError, ValueError):
        times = [r.ts for records in paths.values() for r in records]
        return (min(times), max(times)) if times else None


#: A time axis spans at least this much (ns): fills at one instant get a second around them
#: instead of matplotlib's weeks-wide default for an empty range.
MIN_TIME_SPAN_NS = 1_000_000_000
#: A price axis spans at least this much ($/share): one price gets a cent around it.
MIN_PRICE_SPAN = 0.01
#: Fewer fills than this per strategy are marked one by one (a lone fill is a point, not a line).
_MARK_FILLS_BELOW = 40


def time_limits(lo_ns: int, hi_ns: int) -> tuple[np.datetime64, np.datetime64]:
    """x-axis limits for times from `lo_ns` to `hi_ns`: padded by 2%, and at least
    `MIN_TIME_SPAN_NS` wide, centred on the times (a single instant included)."""
    span = hi_ns - lo_ns
    if span < MIN_TIME_SPAN_NS:
        mid = lo_ns + span // 2
        lo, hi = mid - MIN_TIME_SPAN_NS // 2, mid + MIN_TIME_SPAN_NS // 2
    else:
        pad = span // 50
        lo, hi = lo_ns - pad, hi_ns + pad
    return np.datetime64(lo, "ns"), np.datetime64(hi, "ns")


def value_limits(
    values: np.ndarray, min_span: float, *, include: float | None = None
) -> tuple[float, float]:
    """y-axis limits around the finite `values` (and `include`, e.g. 0): padded by 5%, at least
    `min_span` wide; (-min_span / 2, min_span / 2) around `include` or 0 when none is finite."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if include is not None:
        finite = np.append(finite, include)
    if len(finite) == 0:
        return (-min_span / 2, min_span / 2)
    lo, hi = float(finite.min()), float(finite.max())
    pad = max((hi - lo) * 0.05, (min_span - (hi - lo)) / 2, 0.0)
    return (lo - pad, hi + pad)


def _time_axis(ax: Any, lo_ns: int, hi_ns: int) -> None:
    """Limits from `time_limits`, and ticks that fit: concise labels, as few as the width
    needs (seconds or their fractions for a short window)."""
    import matplotlib.dates as mdates

    ax.set_xlim(*time_limits(lo_ns, hi_ns))
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _no_data(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="grey")


def fill_path_figure(report: dict, paths: dict[str, list[FillRecord]]) -> Any:
    """The fill-path figure: cumulative shares (top) and running average price (bottom) per
    strategy, over the evaluation window.

    Degenerate paths still give a readable figure: fills at a single instant get a time axis
    of `MIN_TIME_SPAN_NS` around it and are marked as points, a single price gets a price axis
    of `MIN_PRICE_SPAN`, and a strategy or a report without fills says so on the panel.

    Returns:
        the matplotlib Figure (the caller saves and closes it).
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, layout="constrained")
    size = report.get("config", {}).get("order", {}).get("size")
    names = [n for n in _strategy_names(report) if n in paths]
    names += sorted(set(paths) - set(names))
    window = _window(report, paths)
    times = [r.ts for records in paths.values() for r in records]
    bounds = [*times, *(window or ())]
    # Strategies often take the same path (e.g. the router and best_ask when the router sweeps the
    # book): wide solid lines under narrower dashed ones keep every one of them visible.
    styles = [("-", 4.0), ("--", 2.6), ("-.", 1.8), (":", 1.4)]
    prices, most = [], 0
    for i, name in enumerate(names):
        ts, shares, cash = cumulative_path(paths[name])
        style, width = styles[i % len(styles)]
        color = f"C{i}"
        kwargs = {"where": "post", "label": name, "linestyle": style, "linewidth": width}
        kwargs["color"] = color
        if len(ts) == 0:
            if window is not None:
                top.step(np.array(window).astype("datetime64[ns]"), [0, 0], **kwargs)
            continue
        avg = cash / shares
        prices.append(avg)
        most = max(most, int(shares[-1]))
        if len(ts) < _MARK_FILLS_BELOW:
            marks = {"marker": "o", "markersize": 4 + width, "linestyle": "none", "color": color}
            top.plot(ts.astype("datetime64[ns]"), shares, **marks)
            bottom.plot(ts.astype("datetime64[ns]"), avg, **marks)
        if window is not None:
            # From the order's arrival (nothing filled) to the window's end (last state held).
            ts = np.concatenate([[min(window[0], ts[0])], ts, [max(window[1], ts[-1])]])
            shares = np.concatenate([[0], shares, [shares[-1]]])
            avg = np.concatenate([[np.nan], avg, [avg[-1]]])
        when = ts.astype("datetime64[ns]")
        top.step(when, shares, **kwargs)
        bottom.step(when, avg, **kwargs)
    if size:
        top.axhline(size, color="grey", linestyle=":", linewidth=1, label="order size")
    top.set_ylim(*value_limits(np.array([most, size or 0]), 1.0, include=0.0))
    if prices:
        bottom.set_ylim(*value_limits(np.concatenate(prices), MIN_PRICE_SPAN))
    else:
        _no_data(bottom, "no fills: no average price")
    if not times:
        _no_data(top, "no strategy filled any shares")
    if bounds:
        _time_axis(bottom, min(bounds), max(bounds))
    top.set_ylabel("shares filled")
    top.set_title("Cumulative shares filled")
    if names or size:
        top.legend(loc="lower right")
    bottom.set_ylabel("average fill price ($/share, fees incl.)")
    bottom.set_title("Running average fill price")
    bottom.set_xlabel("time (UTC)")
    bottom.ticklabel_format(axis="y", useOffset=False, style="plain")
    return fig


def venue_shares_figure(report: dict) -> Any:
    """Shares filled per venue (and unfilled), one bar per strategy; says so when nothing
    filled. Returns the matplotlib Figure."""
    names = _strategy_names(report)
    results = [report["optimized"], *report.get("baselines", {}).values()]
    venues = sorted({int(v) for r in results for v in r.get("shares_by_venue", {})})
    labels = [str(v) for v in venues]
    with_unfilled = any(r.get("unfilled_shares", 0) for r in results)
    if with_unfilled:
        labels.append("unfilled")
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    tallest = 0
    for i, (name, result) in enumerate(zip(names, results, strict=True)):
        by_venue = result.get("shares_by_venue", {})
        heights = [by_venue.get(str(v), 0) for v in venues]
        if with_unfilled:
            heights.append(result.get("unfilled_shares", 0))
        tallest = max([tallest, *heights])
        ax.bar(x + (i - (len(names) - 1) / 2) * width, heights, width, label=name)
    ax.set_xticks(x, labels)
    ax.set_ylim(0, max(tallest, 1) * 1.05)
    if not labels:
        ax.set_xlim(-1, 1)
        _no_data(ax, "no shares filled at any venue")
    ax.set_xlabel("venue (publisher_id)")
    ax.set_ylabel("shares")
    ax.set_title("Shares filled per venue")
    if labels:
        ax.legend()
    return fig


#: (mask name, x offset, legend label, colour) of the two samples in the savings plot.
_SAMPLES = (
    ("in_sample", -0.2, "in sample (tuned on)", "tab:blue"),
    ("out_of_sample", 0.2, "out of sample", "tab:orange"),
)


def savings_distribution_figure(report: dict) -> Any:
    """Per parent order: the router's savings against each baseline, one box and its points for
    the in-sample orders and one for the out-of-sample orders, side by side.

    Each box's median line carries the gid "median:<baseline>:<in_sample|out_of_sample>". A
    sample without orders has no box; NaN savings are left out. Returns the matplotlib Figure.
    """
    shortfall = report["schedule"]["shortfall_bps"]
    in_sample = np.asarray(report["schedule"]["in_sample"], dtype=bool)
    masks = {"in_sample": in_sample, "out_of_sample": ~in_sample}
    router = np.asarray(shortfall["router"], dtype=float)
    names = [n for n in shortfall if n != "router"]
    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    rng = np.random.default_rng(0)  # horizontal jitter of the points only
    shown = []
    for i, name in enumerate(names):
        savings = np.asarray(shortfall[name], dtype=float) - router
        for sample, offset, label, color in _SAMPLES:
            values = savings[masks[sample] & np.isfinite(savings)]
            if len(values) == 0:
                continue
            shown.append(values)
            ax.boxplot(
                values,
                positions=[i + offset],
                widths=0.3,
                showfliers=False,
                medianprops={"gid": f"median:{name}:{sample}", "color": "black"},
            )
            n = int(masks[sample].sum())
            ax.scatter(
                i + offset + rng.uniform(-0.08, 0.08, len(values)),
                values,
                s=14,
                color=color,
                alpha=0.7,
                label=f"{label}, {n:,} orders" if i == 0 else None,
            )
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.6, max(len(names), 1) - 0.4)
    ax.set_ylim(*value_limits(np.concatenate(shown) if shown else np.array([]), 1.0, include=0.0))
    if not shown:
        _no_data(ax, "no parent order with a savings number")
    ax.set_ylabel("savings per parent order, bps of arrival mid")
    ax.set_title("Router savings against each baseline per parent order, in and out of sample")
    if shown:
        ax.legend()
    return fig


def _write(fig: Any, path: Path) -> None:
    try:
        _save(fig, path)
    finally:
        plt.close(fig)


def _plot_per_day_savings(report: dict, path: Path) -> None:
    """Per day: the router's mean savings against each baseline, in-sample days hatched."""
    days = report["per_day"]
    names = list(days[0]["savings_bps"])
    x = np.arange(len(days))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(days) + 3), 4.5), layout="constrained")
    hatch = ["//" if d["sample"] != "out_of_sample" else "" for d in days]
    handles = []
    for i, name in enumerate(names):
        values = [d["savings_bps"][name] for d in days]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width)
        for bar, h in zip(bars, hatch, strict=True):
            bar.set_hatch(h)
        handles.append(Patch(color=bars[0].get_facecolor(), label=name))  # legend without hatch
    ax.axhline(0.0, color="grey", linewidth=0.8)
    labels = [f"{d['day']}\n{d['parent_orders']} orders" for d in days]
    ax.set_xticks(x, labels, rotation=45 if len(days) > 8 else 0, ha="center")
    ax.set_ylabel("mean savings per parent order, bps of arrival mid")
    ax.set_title("Router savings per day (in-sample days hatched)")
    ax.legend(handles=handles, title="against")
    _save(fig, path)
    plt.close(fig)


def _complete_trials(study: Any) -> list[Any]:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def importance_params(study: Any) -> list[str]:
    """The parameters the importance plot shows: those the sweep searches that varied.

    A parameter the sweep fixes to one value (a single-valued distribution in the latest
    complete trial: by default lambda_over with the static allocator, which cannot change its
    answer, model.md §3) is left out, even if trials of a resumed older study varied it; so is
    one that took a single value over the complete trials.
    """
    complete = _complete_trials(study)
    if not complete:
        return []
    latest = complete[-1].distributions
    names = sorted({name for t in complete for name in t.params})
    return [
        n
        for n in names
        if not (n in latest and latest[n].single()) and len({t.params.get(n) for t in complete}) > 1
    ]


def importance_skip_reason(study: Any) -> str | None:
    """Why parameter importances cannot be computed for `study`, or None when they can."""
    if study is None:
        return "no study"
    complete = _complete_trials(study)
    if len(complete) < 2:
        return f"parameter importances need >= 2 complete trials, but the study has {len(complete)}"
    names = sorted({name for t in complete for name in t.params})
    varied = importance_params(study)
    if not varied:
        return f"no parameter varied over the {len(complete)} complete trials ({names})"
    if len({t.value for t in complete}) == 1:
        # Every trial cost the same: any evaluator would call all parameters equally important.
        return f"all {len(complete)} complete trials have the same objective value"
    return None


def _save_optuna_axes(draw: Any, study: Any, path: Path) -> None:
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        # optuna.visualization.matplotlib is marked experimental; that is no news to users.
        warnings.simplefilter("ignore", ExperimentalWarning)
        ax = draw(study)
    fig = ax.figure
    try:
        fig.set_size_inches(10, 4.5)
        _save(fig, path, bbox_inches="tight")
    finally:
        plt.close(fig)


def write_plots(
    report: dict,
    study: Any,
    fill_paths: dict[str, list[FillRecord]] | None,
    out_dir: Path,
    stem: str,
) -> dict[str, str]:
    """Draw the report's plots as PNG files `<stem>_<plot name>.png` in `out_dir`.

    A plot whose input is missing or too small (no fill paths, no study, fewer than 2 complete
    trials or no varied parameter for the importances) is skipped with the reason logged. The
    importances show only `importance_params(study)`: not a parameter the sweep fixed.

    Args:
        report: the results dict (model.md §6), with "optimized", "baselines" and "config".
        study: the sweep's optuna.Study, or None.
        fill_paths: `fill_paths(...)`'s records per strategy, or None.
        out_dir: directory of the results JSON.
        stem: the JSON's file name without suffix, e.g. "results".

    Returns:
        {plot name: PNG file name relative to `out_dir`}, in the order of `PLOTS`.

    Example:
        >>> files = write_plots(report, result.study, paths, Path("runs"), "results")
        >>> files["venue_shares"]
        'results_venue_shares.png'
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}

    def target(name: str) -> Path:
        return out_dir / f"{stem}_{name}.png"

    if fill_paths:
        _write(fill_path_figure(report, fill_paths), target("fill_path"))
        written["fill_path"] = target("fill_path").name
    else:
        log.info("fill_path plot skipped: no fill records given")

    _write(venue_shares_figure(report), target("venue_shares"))
    written["venue_shares"] = target("venue_shares").name

    if "schedule" in report:
        _write(savings_distribution_figure(report), target("savings_distribution"))
        written["savings_distribution"] = target("savings_distribution").name
    else:
        log.info("savings_distribution plot skipped: one parent order, no distribution")

    if len(report.get("per_day") or []) > 1:
        _plot_per_day_savings(report, target("per_day_savings"))
        written["per_day_savings"] = target("per_day_savings").name
    else:
        log.info("per_day_savings plot skipped: the parent orders fall on one day")

    if study is None or not _complete_trials(study):
        log.info("optimization_history plot skipped: no complete trials")
    else:
        from optuna.visualization.matplotlib import plot_optimization_history

        _save_optuna_axes(plot_optimization_history, study, target("optimization_history"))
        written["optimization_history"] = target("optimization_history").name

    reason = importance_skip_reason(study)
    if reason is None:
        from optuna.visualization.matplotlib import plot_param_importances

        def draw(study: Any) -> Any:
            return plot_param_importances(study, params=importance_params(study))

        try:
            _save_optuna_axes(draw, study, target("param_importances"))
            written["param_importances"] = target("param_importances").name
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            # The evaluator can still refuse a study (e.g. every objective value equal).
            log.info("param_importances plot skipped: %s", exc)
    else:
        log.info("param_importances plot skipped: %s", reason)
    return written
