"""Figures. Every function takes ``ax=None`` and returns the Axes; nothing is shown or saved
here (saving is ``sim.io.save_figure``). The only module that imports matplotlib.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from sim.measure.metrics import kaplan_meier, shown_as_percent
from sim.measure.stats import Estimate

__all__ = [
    "close",
    "forest_figure",
    "funnel_figure",
    "nothing_to_show",
    "plot_acceptability",
    "plot_activity",
    "plot_cohort_curves",
    "plot_customer_timeline",
    "plot_evppi",
    "plot_experience",
    "plot_flows",
    "plot_forest",
    "plot_funnel",
    "plot_ltv",
    "plot_payback",
    "plot_psa_cloud",
    "plot_retention",
    "plot_sweep",
    "plot_tornado",
]


NO_INTERVAL = "one replication: no interval, which needs at least two replications"


def close(fig) -> None:
    """Release a figure made here (after saving it)."""
    plt.close(fig)


def nothing_to_show(ax: Axes, why: str) -> Axes:
    """An empty panel that says so: "nothing to show: ``why``", instead of empty or NaN
    axes (a run where nobody became aware, nobody bought, ...)."""
    ax.tick_params(left=False, labelleft=False, bottom=False, labelbottom=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.text(0.5, 0.5, textwrap.fill(f"nothing to show: {why}", 60), transform=ax.transAxes,
            ha="center", va="center", fontsize=10, color="dimgrey")
    return ax


def _count(x: float) -> str:
    """A mean count: whole numbers as such, small fractional means with one decimal."""
    if not np.isfinite(x):
        return "-"
    return f"{x:,.0f}" if x >= 10 or x == round(x) else f"{x:.1f}"


def _share(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}%}" if np.isfinite(x) else "-"


def _compact(x: float) -> str:
    """A tick label that stays short: 850, 35k, 1.2M, 3B."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def _points(x: float) -> str:
    """A difference of two shares as a tick label in percentage points: +1.5 pp."""
    pp = round(x * 100, 6)  # 0.015 * 100 is 1.5000000000000002
    return "0" if pp == 0 else f"{pp:+g} pp"


def _replications(summary: Mapping[str, Estimate]) -> int:
    """The run's replication count: that of ``aware``, a count every replication has."""
    return summary["aware"].n if "aware" in summary else max(e.n for e in summary.values())


def _finite_max(*values, default: float = 1.0) -> float:
    """The largest finite value among arrays and scalars, ``default`` if there is none."""
    x = np.concatenate([np.atleast_1d(np.asarray(v, dtype=float)) for v in values])
    x = x[np.isfinite(x)]
    return float(x.max()) if x.size else default


def plot_funnel(summary: dict[str, Estimate], stages: list[str], ax: Axes | None = None,
                log: bool = False) -> Axes:
    """The funnel: customers reaching each framework stage (mean with 95% CI), the share
    of aware customers and the step conversion (the share of the previous stage's
    customers who reached this one). On a linear scale, where the bars' lengths show the
    drops between stages as they are; ``log`` (``run.funnel_log``) keeps the small late
    stages visible instead."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.6 * len(stages) + 1.5))
    est = [summary[f"funnel.{s}.reached"] for s in stages]
    means = np.nan_to_num(np.array([e.mean for e in est]))
    if not np.any(means > 0):
        return nothing_to_show(ax, "nobody reached any stage of the journey (nobody "
                                   "became aware)")
    y = np.arange(len(stages))[::-1]
    # the interval as printed: cut at 0 (a count), so a bar's whisker never goes below it
    err = np.array([[0.0, 0.0] if np.isnan(e.half_width) else [e.mean - e.low, e.high - e.mean]
                    for e in est]).T
    bars = ax.barh(y, means, xerr=err if err.any() else None, color="#3b6ea8", alpha=0.85,
                   capsize=3)
    ax.set_yticks(y, stages)
    if log:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        left = min(means[means > 0].min(), 1.0) / 3  # a stage nobody reached has no bar
        ends = np.maximum(means + err[1], left)  # labels start after the whiskers
        ax.set_xlim(left, ends.max() * 8)
        gaps = ends * 0.15
    else:
        ends = means + err[1]  # labels start after the whiskers
        # the longest bar ends a little past the middle: its label fits on its right
        ax.set_xlim(0, ends.max() * 1.8)
        gaps = np.full(ends.shape, ends.max() * 0.015)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    # plain numbers (1, 10, 1,000) rather than powers of ten: read at once, drawn faster
    # (after set_xscale, which resets the formatter)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    for s, bar, m, end, gap in zip(stages, bars, means, ends, gaps, strict=True):
        rate = summary[f"funnel.{s}.rate"].mean
        step = summary[f"funnel.{s}.step_rate"].mean
        of_previous = (f"{step:.0%} of previous" if np.isfinite(step)
                       else "nobody at the previous stage")
        ax.text(end + gap, bar.get_y() + bar.get_height() / 2,
                f"{_count(m)}  ({_share(rate)} of aware, {of_previous})", va="center",
                fontsize=9)
    ax.set_xlabel("customers per replication (" + ("log scale; " if log else "")
                  + ("bars: 95% CI)" if _replications(summary) > 1 else f"{NO_INTERVAL})"))
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def _with_half_width(e: Estimate, pct: bool, undefined: str) -> str:
    """``mean (±half width)``; the mean alone without an interval; ``undefined`` without
    a value."""
    if not np.isfinite(e.mean):
        return undefined
    text = _share(e.mean) if pct else f"{e.mean:,.0f}"
    if np.isfinite(e.half_width):
        text += f" (±{_share(e.half_width) if pct else f'{e.half_width:,.0f}'})"
    return text


def funnel_figure(summary: dict[str, Estimate], stages: list[str], title: str,
                  log: bool = False):
    """A titled funnel figure, with cart abandonment and CAC in the subtitle; ``log``:
    on a log scale (``plot_funnel``)."""
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(stages) + 1.8))
    plot_funnel(summary, stages, ax=ax, log=log)
    ab, cac = summary["checkout.abandonment_rate"], summary["cac"]
    ax.set_title(f"{title}\ncart abandonment "
                 f"{_with_half_width(ab, True, '- (nobody reached the checkout)')}, "
                 f"CAC {_with_half_width(cac, False, '- (no purchase)')}",
                 fontsize=10, loc="left")
    fig.tight_layout()
    return fig


def plot_retention(durations: list[np.ndarray], churned: list[np.ndarray],
                   ax: Axes | None = None) -> Axes:
    """Kaplan-Meier retention from the first purchase, censored at the horizon: one faint
    curve per replication and the pooled curve."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    if not any(d.size for d in durations):
        return nothing_to_show(ax, "nobody bought, so nobody could be retained")

    def curve(d: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # to the longest duration seen: flat after the last churn, and a line (not a lone
        # point) when nobody churned
        t, s = kaplan_meier(d, e)
        return np.r_[0, t, d.max()] / 30.44, np.r_[1, s, s[-1] if s.size else 1.0]

    if len(durations) > 1:
        for d, e in zip(durations, churned, strict=True):
            if d.size:
                ax.step(*curve(d, e), where="post", color="#3b6ea8", alpha=0.15)
    ax.step(*curve(np.concatenate(durations), np.concatenate(churned)), where="post",
            color="#1d3f66", lw=2,
            label="all replications" if len(durations) > 1 else "one replication")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("months since first purchase")
    ax.set_ylabel("share still active")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_ltv(ltv: np.ndarray, ax: Axes | None = None,
             marks: Mapping[str, Estimate] | None = None) -> Axes:
    """Distribution of customer LTV (discounted, to the horizon) with P10, P50, P90 and the
    mean marked, named with their values in the legend.

    By default the marks are those of the pooled ``ltv`` values. ``marks`` (keys ``P10``,
    ``P50``, ``P90``, ``mean``) marks these estimates instead, each with its 95% CI as a
    band: e.g. the run's ``ltv.p10`` ... ``ltv.mean`` metrics, computed in each replication
    and averaged, the values of ``metrics.csv`` and ``finance.csv``. A mark without a value
    is left out; one without an interval (a single replication) is drawn without a band.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    ltv = np.asarray(ltv, dtype=float)
    ltv = ltv[np.isfinite(ltv)]
    if not ltv.size:
        return nothing_to_show(ax, "nobody bought, so no customer has a lifetime value")
    upper = np.percentile(ltv, 99.5)  # the far tail would squash the histogram
    ax.hist(ltv[ltv <= upper], bins=60, color="#3b6ea8", alpha=0.8)
    styles = {"P10": ":", "P50": "-", "P90": "-.", "mean": "--"}
    nan = float("nan")
    if marks is None:
        values = {f"P{q}": (float(np.percentile(ltv, q)), nan, nan) for q in (10, 50, 90)}
        values["mean"] = (float(ltv.mean()), nan, nan)
    else:
        values = {k: (marks[k].mean, marks[k].low, marks[k].high) for k in styles}
    for name, (value, low, high) in values.items():
        if not np.isfinite(value):
            continue
        color = "black" if name == "mean" else "#b23a48"
        label = f"{name} {value:,.0f}"
        if np.isfinite(low) and np.isfinite(high):
            ax.axvspan(low, high, color=color, alpha=0.12, lw=0)
            label += f" [{low:,.0f}, {high:,.0f}]"
        ax.axvline(value, color=color, ls=styles[name], lw=1.4, label=label)
    if marks is None:
        title = None
    elif all(marks[k].n < 2 for k in styles):
        title = "one replication: no interval"
    else:
        title = "mean of replications [95% CI]"
    ax.legend(frameon=False, fontsize=9, loc="upper right", title=title, title_fontsize=8)
    ax.set_xlabel("LTV per customer (discounted margin minus retention costs; "
                  "axis cut at P99.5)")
    ax.set_ylabel("customers")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_cohort_curves(table, cac: Estimate | None = None, ax: Axes | None = None) -> Axes:
    """LTV to date per customer of each acquisition cohort by months since acquisition
    (``table`` from ``analysis.cohort_table``: means across replications). Each curve stops
    at the last month every customer of its cohort could reach by the horizon; the colour
    gives the month of acquisition. With ``cac``, its mean (dashed) and 95% CI band."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    table = table[np.isfinite(table["ltv_to_date_per_customer"].to_numpy(dtype=float))]
    if not len(table):
        return nothing_to_show(ax, "no acquisition cohort has a customer (nobody bought)")
    cohorts = sorted(table["acquisition_month"].unique())
    cmap = plt.get_cmap("viridis")
    norm = plt.Normalize(0, max(cohorts[-1], 1))
    if cac is not None and np.isfinite(cac.mean):
        if np.isfinite(cac.half_width):
            ax.axhspan(cac.low, cac.high, color="grey", alpha=0.15, lw=0)
        ax.axhline(cac.mean, color="grey", ls="--", lw=1)
        ax.text(0.01, cac.mean, f"CAC {cac.mean:,.0f}", va="bottom", fontsize=9,
                color="dimgrey", transform=ax.get_yaxis_transform())
    for month in cohorts:
        rows = table[table["acquisition_month"] == month]
        x, y = rows["months_since_acquisition"], rows["ltv_to_date_per_customer"]
        ax.plot(x, y, color=cmap(norm(month)), lw=1.3, alpha=0.9, clip_on=len(rows) > 1,
                marker="o" if len(rows) == 1 else None, ms=3)
    bar = ax.figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.02)
    bar.set_label("month of acquisition (0 = first month of the run)")
    ax.set_xlim(0, max(float(table["months_since_acquisition"].max()), 1.0))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("months since acquisition (each cohort as far as all its customers are "
                  "observed)")
    ax.set_ylabel("LTV to date per customer\n(discounted to the first purchase)")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_payback(table, payback: Estimate, paid_back_share: float = 1.0,
                 min_observable_share: float = 0.05, ax: Axes | None = None) -> Axes:
    """Payback: the average customer's discounted net value by days since acquisition
    (mean across replications with its 95% CI band; ``table`` from
    ``analysis.payback_table``) against CAC (dashed, with its band), and the payback day
    (the ``payback_days`` metric: mean and 95% CI over the replications that paid back,
    ``paid_back_share`` of them).

    At each age the average is over the customers observable that long, ever fewer: a thin
    grey line (right axis) gives their share of all buyers, and the curve stops where it
    falls below ``min_observable_share`` (a handful of early customers would carry it).
    With a single replication there is no band; without a buyer, nothing to show.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    observable = table["customers_observable"].to_numpy(dtype=float)
    if not observable.size or not observable[0] > 0:
        return nothing_to_show(ax, "nobody bought, so there is no customer value to pay "
                                   "back the acquisition cost")
    share = observable / observable[0]
    keep = table[share >= min_observable_share]
    age = keep["age_days"].to_numpy()
    value = keep["ltv_to_date_per_customer"].to_numpy(dtype=float)
    low = keep["ltv_to_date_per_customer_ci_low"].to_numpy(dtype=float)
    high = keep["ltv_to_date_per_customer_ci_high"].to_numpy(dtype=float)
    banded = bool(np.isfinite(high).any())
    if banded:
        ax.fill_between(age, low, high, color="#3b6ea8", alpha=0.2, lw=0)
    ax.plot(age, value, color="#1d3f66", lw=1.8, marker="o" if age.size == 1 else None,
            label="net value per customer " + ("(95% CI)" if banded else "(no interval)"))
    cac = table[["cac", "cac_ci_low", "cac_ci_high"]].iloc[0].astype(float)
    if np.isfinite(cac["cac_ci_low"]) and np.isfinite(cac["cac_ci_high"]):
        ax.axhspan(cac["cac_ci_low"], cac["cac_ci_high"], color="grey", alpha=0.15, lw=0)
    if np.isfinite(cac["cac"]):
        ci = "95% CI" if np.isfinite(cac["cac_ci_high"]) else "no interval"
        ax.axhline(cac["cac"], color="grey", ls="--", lw=1, label=f"CAC {cac['cac']:,.0f} ({ci})")
    ax.set_xlim(0, max(float(age[-1]), 1.0))
    top = _finite_max(value, high, cac["cac"], cac["cac_ci_high"], default=0.0)
    ax.set_ylim(0, top * 1.1 if top > 0 else 1.0)
    if np.isfinite(payback.mean):
        interval = (f" [{payback.low:,.0f}, {payback.high:,.0f}]"
                    if np.isfinite(payback.half_width) else "")
        if interval:
            ax.axvspan(payback.low, payback.high, color="#b23a48", alpha=0.12, lw=0)
        ax.axvline(payback.mean, color="#b23a48", lw=1.2,
                   label=f"payback {payback.mean:,.0f} days{interval},\n"
                         f"paid back in {paid_back_share:.0%} of replications")
    else:  # said in the legend, where it cannot overlap the lines
        ax.plot([], [], " ", label="no payback within the horizon")
    right = ax.twinx()
    right.plot(table["age_days"], 100 * share, color="grey", lw=0.8, alpha=0.6)
    right.set_ylim(0, 105)
    right.set_ylabel("customers observable that long (% of buyers)", color="grey", fontsize=9)
    right.tick_params(axis="y", colors="grey", labelsize=8)
    right.spines[["top"]].set_visible(False)
    ax.set_xlabel(f"days since acquisition (first purchase); the curve stops where fewer than "
                  f"{min_observable_share:.0%} of buyers are observable")
    ax.set_ylabel("discounted net value per customer\n(LTV to date)")
    ax.legend(frameon=False, loc="best", fontsize=9)
    ax.spines[["top"]].set_visible(False)
    return ax


def plot_activity(day: np.ndarray, active: np.ndarray, revenue: np.ndarray,
                  ax: Axes | None = None) -> Axes:
    """Active customers (left axis) and revenue per week (right axis) over time: the
    revenue of a trailing 7-day window (the day and the 6 before it), which in the first 6
    days is the mean of the days so far times 7, so the curve does not dip at the start
    for want of earlier days. The arrays are means over replications per day."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    day, active, revenue = (np.asarray(x, dtype=float) for x in (day, active, revenue))
    if not day.size or not (np.any(active > 0) or np.any(revenue > 0)):
        return nothing_to_show(ax, "no customer was active and nothing was sold")
    marker = "o" if day.size == 1 else None  # a one-day run: a point, not an invisible line
    line = ax.plot(day, active, color="#1d3f66", marker=marker, label="active customers")
    ax.set_xlabel("day")
    ax.set_ylabel("active customers", color="#1d3f66")
    right = ax.twinx()
    days_in_window = np.minimum(np.arange(revenue.size) + 1, 7)
    weeks = np.convolve(revenue, np.ones(7))[:revenue.size] * 7 / days_in_window
    line += right.plot(day, weeks, color="#b23a48", alpha=0.8, marker=marker,
                       label="revenue per week: the last 7 days (in the first week, the "
                             "days so far x 7)")
    right.set_ylabel("revenue per week (trailing 7 days)", color="#b23a48")
    for axis in (ax, right):  # both from 0: the two zeros on one line
        axis.set_ylim(bottom=0)
    # under the axes: inside, it would hide one of the two curves somewhere
    ax.legend(line, [x.get_label() for x in line], frameon=False, fontsize=8, ncols=2,
              loc="upper center", bbox_to_anchor=(0.5, -0.14))
    ax.spines[["top"]].set_visible(False)
    right.spines[["top"]].set_visible(False)
    return ax


def plot_experience(summary: dict[str, Estimate], states: list[str],
                    ax: Axes | None = None) -> Axes:
    """The emotion curve: mean experience score on first entering each state (95% CI);
    states nobody entered are left out."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    est = [summary[f"experience.{s}"] for s in states]
    keep = [i for i, e in enumerate(est) if np.isfinite(e.mean)]
    if not keep:
        return nothing_to_show(ax, "nobody entered any state of the journey")
    x = np.arange(len(keep))
    means = np.array([est[i].mean for i in keep])
    err = np.array([np.nan_to_num(est[i].half_width) for i in keep])
    ax.axhline(0, color="grey", lw=0.8)
    ax.plot(x, means, "-o", color="#1d3f66")
    ax.errorbar(x, means, yerr=err, fmt="none", color="#1d3f66", capsize=3)
    ax.fill_between(x, means, 0, where=means >= 0, color="#4c9a64", alpha=0.2)
    ax.fill_between(x, means, 0, where=means < 0, color="#b23a48", alpha=0.2)
    ax.set_xticks(x, [states[i] for i in keep], rotation=20)
    ax.set_ylim(-2, 2)
    ax.set_ylabel("experience score" + ("" if _replications(summary) > 1 else
                                        "\n(one replication: no interval)"))
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_forest(table, metric: str, ax: Axes | None = None) -> Axes:
    """Forest plot: each scenario's paired difference from the baseline in ``metric`` with
    its 95% CI, in ranking order (``table`` from ``analysis.compare``). A difference
    without an interval (a single replication) is drawn as a grey point; a scenario where
    the metric has no value (e.g. CAC without a purchase) is left without a mark. Ticks
    are short (35k, 1.2M); a share's difference is in percentage points (+1.5 pp)."""
    rows = table[table["metric"] == metric].sort_values("rank")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    d = rows["difference"].to_numpy(dtype=float)
    lo = rows["difference_low"].to_numpy(dtype=float)
    hi = rows["difference_high"].to_numpy(dtype=float)
    interval = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(d)
    sure = interval & ((lo > 0) | (hi < 0))
    unsure = interval & ~sure
    point = np.isfinite(d) & ~interval
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, rows["scenario"])
    if interval.any():
        ax.errorbar(d[interval], y[interval], xerr=[d[interval] - lo[interval],
                                                      hi[interval] - d[interval]],
                    fmt="none", ecolor="#7f8c9a", capsize=2)
    for mask, style, label in ((sure, {"color": "#1d3f66"}, "CI excludes 0"),
                               (unsure, {"facecolor": "white", "edgecolor": "#1d3f66"},
                                "CI includes 0"),
                               (point, {"color": "#7f8c9a"}, "no interval (one replication)")):
        if mask.any():
            ax.scatter(d[mask], y[mask], zorder=3, label=label, **style)
    if not np.isfinite(d).any():
        ax.text(0.5, 0.5, f"nothing to show: {metric} has no value", transform=ax.transAxes,
                ha="center", va="center", fontsize=9, color="dimgrey")
    ax.set_xlabel(f"difference from baseline: {metric} "
                  + ("(95% CI, paired)" if interval.any() else "(paired, no interval)"))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(FuncFormatter(
        lambda v, _: _points(v) if shown_as_percent(metric) else _compact(v)))
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def forest_figure(table, metrics: list[str], title: str):
    """One forest panel per metric, scenarios in ranking order."""
    n = table["scenario"].nunique()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.35 * n + 1.6),
                             sharey=True)
    intervals = bool(np.isfinite(table["difference_low"].to_numpy(dtype=float)).any())
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        plot_forest(table, metric, ax=ax)
        ax.set_xlabel(f"{metric}: difference " + ("(95% CI)" if intervals else "(no interval)"),
                      fontsize=9)
    handles = {}
    for ax in np.atleast_1d(axes):  # every kind of mark any panel drew, once
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        np.atleast_1d(axes)[0].legend(handles.values(), handles.keys(), frameon=False,
                                      fontsize=8, loc="best")
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    fig.tight_layout()
    return fig

def plot_sweep(table, x: str, metrics: list[str], by: list[str] | tuple[str, ...] = (),
               title: str = ""):
    """A sweep over parameters: one panel per metric against the parameter ``x``, the
    mean with its 95% CI as a bar at each value, connected in the order of ``x`` (numeric
    when its values are numbers, else in the table's order); one line per combination of
    the ``by`` columns (a second parameter, the scenario). ``table`` is ``sweep.csv`` of
    ``python -m sim.report``: one row per point and metric with ``mean``, ``low`` and
    ``high``. A point without an interval (one replication) has no bar; a mean that does
    not exist (CAC without a purchase) is left out. Returns the figure."""
    by = list(by)
    fig, axes = panels(len(metrics), ncols=3)
    kind = table[x].dtype.kind
    numeric = kind in "iuf"
    levels = (sorted(set(table[x].tolist())) if numeric
              else list(dict.fromkeys(table[x].tolist())))
    where = {v: (float(v) if numeric else i) for i, v in enumerate(levels)}
    groups = list(table.groupby(by, sort=False)) if by else [((), table)]
    span = (max(where.values()) - min(where.values())) or 1.0
    step = (0.012 * span if numeric else 0.06) if len(groups) > 1 else 0.0
    colors = plt.cm.tab10.colors
    intervals = bool(np.isfinite(table["low"].to_numpy(dtype=float)).any())
    for ax, metric in zip(axes, metrics, strict=True):
        drawn = False
        for i, (key, group) in enumerate(groups):
            rows = group[group["metric"] == metric]
            order = np.argsort([where[v] for v in rows[x].tolist()], kind="stable")
            pos = np.array([where[v] for v in rows[x].tolist()], dtype=float)[order]
            pos += (i - (len(groups) - 1) / 2) * step
            mean, low, high = (rows[c].to_numpy(dtype=float)[order]
                               for c in ("mean", "low", "high"))
            known = np.isfinite(mean)
            bars = known & np.isfinite(low) & np.isfinite(high)
            keys = key if isinstance(key, tuple) else (key,)
            label = ", ".join(str(v) for v in keys)
            color = colors[i % len(colors)]
            if known.any():
                drawn = True
                ax.plot(pos[known], mean[known], marker="o", ms=4, lw=1.3, color=color,
                        label=label or None)
            if bars.any():
                # clipped: a mean outside its range (a share above 1) has its interval cut
                ax.errorbar(pos[bars], mean[bars],
                            yerr=np.clip([mean[bars] - low[bars], high[bars] - mean[bars]],
                                         0, None),
                            fmt="none", ecolor=color, elinewidth=1, capsize=3, alpha=0.8)
        if not drawn:
            nothing_to_show(ax, f"{metric} has no value at any point of the sweep")
            continue
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(x, fontsize=9)
        if not numeric:
            ax.set_xticks(range(len(levels)), [str(v) for v in levels])
        elif len(levels) <= 12:  # the values swept, as they were given
            ax.set_xticks([float(v) for v in levels], [f"{v:g}" for v in levels])
        if shown_as_percent(metric):
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1%}"))
        ax.spines[["top", "right"]].set_visible(False)
    if by:
        axes[0].legend(frameon=False, fontsize=8, title=", ".join(by), title_fontsize=8)
    fig.suptitle(title + ("" if intervals else "\n(one replication: no interval)"), x=0.01,
                 ha="left", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------- calibration (sim.calibrate)
__all__ += ["panels", "plot_dwell_fit", "plot_exit_probabilities", "plot_holdout",
            "plot_repeat_histogram", "plot_spend_fit", "plot_tracking",
            "plot_value_distribution"]


def panels(n: int, ncols: int = 3, size: tuple[float, float] = (4.6, 3.2)):
    """A figure with ``n`` panels on a grid of ``ncols`` columns: (figure, list of Axes);
    unused cells are hidden."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows),
                             squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def plot_repeat_histogram(labels: list[str], observed: np.ndarray, expected: np.ndarray,
                          ax: Axes | None = None) -> Axes:
    """Customers by number of repeat purchases in the calibration period: observed counts
    against the fitted model's expectation (each customer observed for their own time)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(labels))
    ax.bar(x - 0.2, observed, width=0.4, color="#3b6ea8", label="observed")
    ax.bar(x + 0.2, expected, width=0.4, color="#b23a48", alpha=0.8, label="model (BG/NBD)")
    ax.set_xticks(x, labels)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("customers")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_tracking(dates: np.ndarray, actual: np.ndarray, expected: np.ndarray,
                  calibration_end: np.datetime64, ax: Axes | None = None) -> Axes:
    """Cumulative repeat purchases of the calibration customers over calendar time,
    observed against the model's expectation; a line marks the end of calibration."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    ax.plot(dates, actual, color="#1d3f66", lw=1.8, label="observed")
    ax.plot(dates, expected, color="#b23a48", ls="--", lw=1.5, label="model (BG/NBD)")
    ax.axvline(calibration_end, color="grey", lw=0.8, ls=":")
    ax.text(calibration_end, ax.get_ylim()[1] * 0.97, " end of calibration", fontsize=8,
            va="top", color="grey")
    ax.set_ylabel("cumulative repeat purchases")
    ax.legend(frameon=False, loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_holdout(labels: list[str], actual: np.ndarray, predicted: np.ndarray,
                 ax: Axes | None = None) -> Axes:
    """Mean purchases per customer in the holdout period by the number of repeat
    purchases in the calibration period: observed against the model's conditional
    expectation."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(labels))
    ax.plot(x, actual, "-o", color="#1d3f66", label="observed")
    ax.plot(x, predicted, "--s", color="#b23a48", label="model (BG/NBD, conditional)")
    ax.set_xticks(x, labels)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("purchases per customer in the holdout")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_spend_fit(values: np.ndarray, grid: np.ndarray, density: np.ndarray,
                   ax: Axes | None = None) -> Axes:
    """Mean repeat-purchase value per repeat buyer: histogram against the density the
    fitted Gamma-Gamma model implies for these customers (axis cut at P99)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    upper = float(np.percentile(values, 99))
    ax.hist(values[values <= upper], bins=50, density=True, color="#3b6ea8", alpha=0.75,
            label="observed")
    keep = grid <= upper
    ax.plot(grid[keep], density[keep], color="#b23a48", lw=1.8, label="model (Gamma-Gamma)")
    ax.set_xlabel("mean value of a customer's repeat purchases")
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_value_distribution(values: np.ndarray, xlabel: str, ax: Axes | None = None) -> Axes:
    """Histogram of a value per customer (axis cut at P99.5) with P10, P50, P90 and the
    mean marked."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    values = values[np.isfinite(values)]
    upper = np.percentile(values, 99.5)
    ax.hist(values[values <= upper], bins=60, color="#3b6ea8", alpha=0.8)
    for name, v, style in [*((f"P{q}", np.percentile(values, q), ":") for q in (10, 50, 90)),
                           ("mean", values.mean(), "--")]:
        ax.axvline(v, color="black" if name == "mean" else "#b23a48", ls=style, lw=1.2,
                   label=f"{name} {v:,.2f}")
    ax.legend(frameon=False, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("customers")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_dwell_fit(durations: np.ndarray, completed: np.ndarray,
                   curves: dict[str, tuple[np.ndarray, np.ndarray]], max_days: float,
                   ylabel: str = "share of visits not yet ended",
                   ax: Axes | None = None) -> Axes:
    """Share of visits still in the stage by days since entering it: Kaplan-Meier of the
    visit lengths (unfinished visits censored) against each fitted dwell family's curve
    ``curves[label] = (days, share)``, up to ``max_days``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    t, s = kaplan_meier(durations, completed)
    ax.step(np.r_[0, t], np.r_[1, s], where="post", color="black", lw=1.6,
            label="observed (Kaplan-Meier)")
    for (label, (days, surv)), color in zip(curves.items(), plt.cm.tab10.colors, strict=False):
        ax.plot(days, surv, color=color, lw=1.2, ls="--", label=label)
    ax.set_xlim(0, max_days)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("days in the stage")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_exit_probabilities(targets: list[str], prob: np.ndarray, low: np.ndarray,
                            high: np.ndarray, ax: Axes | None = None) -> Axes:
    """A stage's exit probabilities with their 95% confidence intervals."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 0.45 * len(targets) + 1.2))
    y = np.arange(len(targets))[::-1]
    ax.barh(y, prob, color="#3b6ea8", alpha=0.85)
    ax.errorbar(prob, y, xerr=[prob - low, high - prob], fmt="none", ecolor="black",
                capsize=3)
    ax.set_yticks(y, targets)
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability after a visit (95% CI)")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


# --------------------------------------------------------------- decisions under uncertainty
def _money(x: float, _pos: object = None) -> str:
    return f"{x:,.0f}"


def plot_psa_cloud(points: Mapping[str, tuple[np.ndarray, np.ndarray]], reference: str,
                   metric: str = "npv", ax: Axes | None = None) -> Axes:
    """One dot per PSA draw and option: its extra cost over ``reference`` (x) against its
    ``metric`` difference (y); a cross at each option's expected values. ``points`` maps an
    option to (extra cost, difference) arrays."""
    ax = ax or plt.subplots(figsize=(7.5, 5))[1]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, (cost, diff)) in enumerate(points.items()):
        c = colours[i % len(colours)]
        ax.scatter(cost, diff, s=9, alpha=0.35, color=c, lw=0)
        ax.scatter([np.mean(cost)], [np.mean(diff)], marker="X", s=90, color=c,
                   edgecolor="black", lw=0.8, label=f"{name} (expected)", zorder=3)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel(f"extra cost over {reference} (undiscounted, per run)")
    ax.set_ylabel(f"{metric} - {metric} of {reference}")
    ax.xaxis.set_major_formatter(FuncFormatter(_money))
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    ax.legend(fontsize=8, loc="best")
    ax.text(0.0, -0.16, "each dot: one draw of the assumptions (parameter uncertainty and "
            "simulation noise together)", transform=ax.transAxes, fontsize=8, color="dimgrey")
    return ax


def plot_acceptability(table, ax: Axes | None = None) -> Axes:
    """The probability each option is best against the return it must make per unit of its
    extra cost (``decide.analysis.acceptability``)."""
    ax = ax or plt.subplots(figsize=(7.5, 4.5))[1]
    for name, part in table.groupby("option", sort=False):
        ax.plot(part["required_return"], part["prob_best"], lw=1.8, label=name)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("required return per unit of extra cost (0: the plain comparison)")
    ax.set_ylabel("probability best")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_tornado(table, ax: Axes | None = None) -> Axes:
    """One bar per assumption, from the difference at its low to that at its high value,
    around the base (every assumption at its value), largest swing on top; 95% intervals
    at each end (``decide.analysis.tornado``)."""
    ax = ax or plt.subplots(figsize=(8, 0.45 * max(len(table), 3) + 1.5))[1]
    rows = table.iloc[::-1].reset_index(drop=True)
    base = float(table["base"].iloc[0]) if len(table) else 0.0
    for i, r in rows.iterrows():
        for end, colour in (("low", "tab:blue"), ("high", "tab:orange")):
            ax.barh(i, r[end] - base, left=base, color=colour, alpha=0.75, height=0.6,
                    label=f"at its {end} value" if i == 0 else None)
            ax.plot([r[f"{end}_low"], r[f"{end}_high"]], [i, i], color="black", lw=1)
    ax.axvline(base, color="black", lw=1)
    ax.set_yticks(range(len(rows)),
                  [f"{a}\n({lo:.3g} to {hi:.3g})" for a, lo, hi in
                   zip(rows["assumption"], rows["low_value"], rows["high_value"], strict=True)],
                  fontsize=7)
    if len(table):
        o, ref, m = table["option"].iloc[0], table["reference"].iloc[0], table["metric"].iloc[0]
        ax.set_xlabel(f"{m} of {o} - {m} of {ref} (line: 95% interval over replications)")
    ax.xaxis.set_major_formatter(FuncFormatter(_money))
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_evppi(table, evpi: float, ax: Axes | None = None) -> Axes:
    """The value of perfect information about each assumption (and group), largest on top,
    against the EVPI of the whole decision."""
    ax = ax or plt.subplots(figsize=(8, 0.35 * max(len(table), 3) + 1.5))[1]
    rows = table.iloc[::-1].reset_index(drop=True)
    ax.barh(range(len(rows)), rows["evppi"], color="tab:green", alpha=0.8, height=0.6)
    ax.axvline(evpi, color="black", ls="--", lw=1, label=f"EVPI (all assumptions) {evpi:,.0f}")
    ax.set_yticks(range(len(rows)), list(rows["assumptions"]), fontsize=7)
    ax.set_xlabel("expected value of perfect information (currency)")
    ax.xaxis.set_major_formatter(FuncFormatter(_money))
    ax.legend(fontsize=8, loc="lower right")
    return ax


# ------------------------------------------ how much and which setting (sim.decide.optimise)
__all__ += ["plot_allocation", "plot_marginal", "plot_portfolio", "plot_response", "plot_seek"]


def _format_metric_axis(ax: Axes, metric: str) -> None:
    if shown_as_percent(metric):
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1%}"))
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(
            lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"))
    ax.spines[["top", "right"]].set_visible(False)


def plot_response(curves: Mapping[str, tuple[np.ndarray, ...]], metric: str, xlabel: str,
                  marks: Mapping[str, float] | None = None, ax: Axes | None = None) -> Axes:
    """Response curves: for each key, ``metric``'s mean against the key's value with its 95%
    interval as a band. ``curves`` maps a label to (values, mean, low, high); ``marks``
    maps a label to its value in the config (a ring on its curve)."""
    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, (x, mean, low, high)) in enumerate(curves.items()):
        c = colours[i % len(colours)]
        ax.plot(x, mean, marker="o", ms=3.5, lw=1.6, color=c, label=label)
        if np.isfinite(low).any():
            ax.fill_between(x, low, high, color=c, alpha=0.18, lw=0)
        if marks and label in marks:
            ax.plot([marks[label]], [np.interp(marks[label], x, mean)], "o", ms=9, mfc="none",
                    mec=c, mew=1.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    _format_metric_axis(ax, metric)
    ax.grid(alpha=0.25)
    if len(curves) > 1 or marks:
        ax.legend(fontsize=8, frameon=False, title="ring: today's value" if marks else None,
                  title_fontsize=8)
    return ax


def plot_marginal(marginal: Mapping[str, tuple[np.ndarray, ...]], threshold: float,
                  ylabel: str, xlabel: str, crossings: Mapping[str, float] | None = None,
                  ax: Axes | None = None) -> Axes:
    """The marginal return between neighbouring values (at their midpoint), with its 95%
    interval, against the threshold; a dotted line where each crosses it."""
    ax = ax or plt.subplots(figsize=(7, 4.5))[1]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, (at, m, low, high)) in enumerate(marginal.items()):
        c = colours[i % len(colours)]
        ax.plot(at, m, marker="o", ms=3.5, lw=1.4, color=c, label=label)
        ok = np.isfinite(low) & np.isfinite(high)
        if ok.any():
            ax.errorbar(at[ok], m[ok], yerr=np.clip([m[ok] - low[ok], high[ok] - m[ok]], 0,
                                                    None),
                        fmt="none", ecolor=c, elinewidth=1, capsize=3, alpha=0.8)
        x = (crossings or {}).get(label, np.nan)
        if np.isfinite(x):
            ax.axvline(x, color=c, ls=":", lw=1.2)
    ax.axhline(threshold, color="black", lw=0.9, label=f"threshold {threshold:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, frameon=False)
    return ax


def plot_allocation(table, axes: tuple[Axes, Axes] | None = None) -> tuple[Axes, Axes]:
    """Left: each channel's daily spend today and as proposed, with its allowed range;
    right: its marginal ROI at the proposal with the 95% interval (equal across channels
    where the optimum is interior; a channel at a bound is marked)."""
    if axes is None:
        axes = tuple(plt.subplots(1, 2, figsize=(11, 0.5 * max(len(table), 3) + 2))[1])
    left, right = axes
    y = np.arange(len(table))[::-1]
    left.barh(y + 0.18, table["current"], height=0.34, color="lightgrey", label="today")
    left.barh(y - 0.18, table["proposed"], height=0.34, color="tab:blue", label="proposed")
    for yi, lo, hi in zip(y, table["lowest"], table["highest"], strict=True):
        left.plot([lo, hi], [yi - 0.42, yi - 0.42], color="black", lw=0.8)
    left.set_yticks(y, [f"{c}{' (at its ' + b + ')' if b else ''}" for c, b in
                        zip(table["channel"], table["at_bound"], strict=True)], fontsize=8)
    left.set_xlabel("spend per day (line: the range allowed)")
    left.legend(fontsize=8, frameon=False, loc="lower right")
    left.spines[["top", "right"]].set_visible(False)
    m, lo, hi = (table[c].to_numpy(dtype=float) for c in
                 ("marginal_roi", "marginal_roi_low", "marginal_roi_high"))
    right.errorbar(m, y, xerr=np.clip([m - lo, hi - m], 0, None), fmt="o", color="tab:blue",
                   ecolor="black", elinewidth=1, capsize=3)
    right.axvline(0, color="black", lw=0.8)
    right.set_yticks(y, list(table["channel"]), fontsize=8)
    right.set_xlabel("marginal ROI at the proposal\n(extra objective per extra currency unit "
                     "of discounted spend)")
    right.spines[["top", "right"]].set_visible(False)
    right.grid(alpha=0.25, axis="x")
    return left, right


def plot_seek(evaluations, key: str, metric: str, target: float, value: float, low: float,
              high: float, ax: Axes | None = None) -> Axes:
    """Every value of ``key`` a goal seek tried, with the mean of ``metric`` and its 95%
    interval, the target, and the answer with its interval."""
    ax = ax or plt.subplots(figsize=(7.5, 4.5))[1]
    e = evaluations.sort_values("value")
    x, m = e["value"].to_numpy(dtype=float), e["mean"].to_numpy(dtype=float)
    lo, hi = e["low"].to_numpy(dtype=float), e["high"].to_numpy(dtype=float)
    ax.plot(x, m, color="tab:blue", lw=1, alpha=0.6)
    ok = np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(x[ok], m[ok], yerr=np.clip([m[ok] - lo[ok], hi[ok] - m[ok]], 0, None),
                fmt="o", ms=3.5, color="tab:blue", ecolor="tab:blue", elinewidth=1,
                capsize=2, label="values tried (95% interval)")
    ax.axhline(target, color="black", lw=0.9, ls="--", label=f"target {target:g}")
    if np.isfinite(low) and np.isfinite(high):
        ax.axvspan(low, high, color="tab:orange", alpha=0.2, lw=0,
                   label="the answer's 95% interval")
    ax.axvline(value, color="tab:orange", lw=1.5, label=f"answer {value:.4g}")
    ax.set_xlabel(key)
    ax.set_ylabel(metric)
    _format_metric_axis(ax, metric)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=8, frameon=False)
    return ax


def _money_short(x: float, _pos: object = None) -> str:
    """Tick labels that fit: 350k, 1.2M."""
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:.3g}M"
    if a >= 1e3:
        return f"{x / 1e3:.3g}k"
    return f"{x:.3g}"


def plot_portfolio(sets, chosen: str, objective: str, ax: Axes | None = None) -> Axes:
    """Each set simulated: its gain over the baseline with the 95% interval (dot), and the
    gain if its members' effects added up (ring); the chosen set in bold."""
    rows = sets[sets["set"] != "baseline"].head(15).iloc[::-1].reset_index(drop=True)
    ax = ax or plt.subplots(figsize=(8, 0.38 * max(len(rows), 3) + 1.6))[1]
    m, lo, hi = (rows[c].to_numpy(dtype=float) for c in ("gain_mean", "gain_low", "gain_high"))
    ok = np.isfinite(lo) & np.isfinite(hi)
    y = np.arange(len(rows))
    ax.errorbar(m[ok], y[ok], xerr=np.clip([m[ok] - lo[ok], hi[ok] - m[ok]], 0, None),
                fmt="none", ecolor="black", elinewidth=1, capsize=3)
    ax.plot(m, y, "o", color="tab:blue", label="simulated together")
    multi = rows["size"].to_numpy() > 1
    ax.plot(rows["additive_gain"].to_numpy(dtype=float)[multi], y[multi], "o", mfc="none",
            mec="tab:red", label="if the effects added up")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{s}  ({c:g}/day)" for s, c in
                      zip(rows["set"], rows["cost_per_day"], strict=True)], fontsize=7)
    for tick, s in zip(ax.get_yticklabels(), rows["set"], strict=True):
        if s == chosen:
            tick.set_fontweight("bold")
    ax.set_xlabel(f"{objective} - {objective} of the baseline (95% interval over replications)")
    ax.xaxis.set_major_formatter(FuncFormatter(_money_short))
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


# ------------------------------------------------------------------ journey flows
FLOW_COLOURS = {"stage": "#3b6ea5", "customer": "#2e8b57", "lost": "#8c8c8c",
                "churned": "#b03a2e", "back": "#e07b00"}
_CUSTOMER_STATES = ("purchase", "retention", "advocacy")
_ZOOM_BELOW = 0.15  # the life after the purchase gets a magnified inset below this share


def _pct(x: float) -> str:
    """A share: whole percent from 10 %, one decimal below, "<0.1%" for a trace."""
    if not np.isfinite(x):
        return "-"
    if 0 < x < 0.0005:
        return "<0.1%"
    return f"{x:.0%}" if x >= 0.095 or x == 0 else f"{x:.1%}"


def _flow_colour(state: str) -> str:
    if state in ("lost", "churned"):
        return FLOW_COLOURS[state]
    return FLOW_COLOURS["customer" if state in _CUSTOMER_STATES else "stage"]


def _band(ax: Axes, x0: float, top0: float, x1: float, top1: float, height: float,
          colour: str) -> None:
    """A band of constant height from (x0, top0) to (x1, top1), tops given, S-shaped."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    xm = (x0 + x1) / 2
    bottom0, bottom1 = top0 - height, top1 - height
    verts = [(x0, top0), (xm, top0), (xm, top1), (x1, top1), (x1, bottom1),
             (xm, bottom1), (xm, bottom0), (x0, bottom0), (x0, top0)]
    codes = [MplPath.MOVETO, *[MplPath.CURVE4] * 3, MplPath.LINETO, *[MplPath.CURVE4] * 3,
             MplPath.CLOSEPOLY]
    ax.add_patch(PathPatch(MplPath(verts, codes), facecolor=colour, alpha=0.35, lw=0))


def _flow_diagram(ax: Axes, t, nodes, states: list[str], of: float, exits_from: list[str],
                  min_bottom: float = 0.0, quiet: tuple[str, ...] = (),
                  axes_points: float | None = None, min_columns: int = 1) -> dict:
    """Draw ``states`` as bars left to right (x = 0, 1, ...; tops at y = 0, heights to one
    scale: the tallest 1), the moves forward between them as bands, exits from
    ``exits_from`` as bands down to bars on a row below, moves to an earlier column as
    arcs above the labels (not those between two of ``quiet``: they are drawn elsewhere);
    label each bar with its customers, their share of ``of``, its repeat visits and, if
    many and the state is not ``quiet``, those who remain in it at the horizon. Text is
    sized in points, so the y range is set from the axes' height in points
    (``axes_points``, measured if None) with room for it; the bottom at most
    ``min_bottom``; room for ``min_columns`` columns at least. Returns the layout:
    ``col``, ``scale``, ``sink_top``, ``bottom`` and ``back`` (whether a step back was
    drawn)."""
    from matplotlib.patches import FancyArrowPatch, Rectangle
    from matplotlib.path import Path as MplPath

    from sim.measure.flows import EXIT_STATES

    col = {s: float(i) for i, s in enumerate(states)}
    height = (nodes["entries"] - nodes["loops"]).clip(lower=0)
    scale = 1.0 / max(float(height[states].max()), 1e-12)
    w, gap, min_h = 0.07, 0.14, 0.008
    right = dict.fromkeys(states, 0.0)  # stacked from the top of each bar: out, in
    left = dict.fromkeys(states, 0.0)
    moves = t[t["source"].isin(states) & t["target"].isin(states) & (t["kind"] != "loop")]
    moves = moves.groupby(["source", "target"], sort=False)["count"].sum().reset_index()
    moves["x0"], moves["x1"] = moves["source"].map(col), moves["target"].map(col)
    for _, m in moves[moves["x1"] > moves["x0"]].sort_values(["x0", "x1"]).iterrows():
        h = m["count"] * scale
        _band(ax, m["x0"] + w / 2, -right[m["source"]], m["x1"] - w / 2, -left[m["target"]], h,
              _flow_colour(m["target"]))
        right[m["source"]] += h
        left[m["target"]] += h
    exits = t[(t["kind"] == "exit") & t["source"].isin(exits_from)]
    exits = exits.groupby(["source", "target"], sort=False)["count"].sum().reset_index()
    exits = exits.sort_values(["source", "target"], key=lambda s: s.map(
        col if s.name == "source" else {e: k for k, e in enumerate(EXIT_STATES)}))
    sink_top = -(1.0 + gap)
    lowest = sink_top
    shift = dict.fromkeys(states, 0.0)  # a second exit of one state sits beside the first
    for _, m in exits.iterrows():
        h = m["count"] * scale
        xs = col[m["source"]] + 0.5 + shift[m["source"]]
        shift[m["source"]] += 0.2
        colour = _flow_colour(m["target"])
        _band(ax, col[m["source"]] + w / 2, -right[m["source"]], xs - w / 2, sink_top, h,
              colour)
        right[m["source"]] += h
        ax.add_patch(Rectangle((xs - w / 2, sink_top - max(h, min_h)), w, max(h, min_h),
                               facecolor=colour, lw=0))
        what = "abandoned\ncart" if m["source"] == "checkout" else m["target"]
        ax.text(xs, sink_top - max(h, min_h) - 0.02,
                f"{what}\n{_count(m['count'])} · {_pct(m['count'] / of)}",
                ha="center", va="top", fontsize=8, color=colour)
        lowest = min(lowest, sink_top - max(h, min_h))
    n_lines = 2
    for s in states:
        h = max(float(height[s]) * scale, min_h)
        ax.add_patch(Rectangle((col[s] - w / 2, -h), w, h, facecolor=_flow_colour(s), lw=0,
                               zorder=3))
        n = nodes.loc[s]
        lines = [s, f"{_count(n['customers'])} · {_pct(n['customers'] / of)}"]
        if n["loops"] > 0:
            lines.append(f"+{_count(n['loops'])} repeat visits")
        # many still in the state at the horizon (the part of the bar no band leaves),
        # said once: in the inset, if the state has one
        if n["at_horizon"] > 0 and n["at_horizon"] >= 0.1 * n["entries"] and s not in quiet:
            lines.append(f"{_count(n['at_horizon'])} remain")
        n_lines = max(n_lines, len(lines))
        ax.text(col[s] - w / 2, 0.015, "\n".join(lines), ha="left", va="bottom", fontsize=9,
                zorder=4, linespacing=1.15, color=_flow_colour(s))
    behind = moves[moves["x1"] < moves["x0"]]
    behind = behind[~(behind["source"].isin(quiet) & behind["target"].isin(quiet))]
    rise_points = (22 + 8 * (behind["x0"] - behind["x1"])).to_numpy()  # arcs' heights
    ax.set_xlim(-0.3, max(len(states), min_columns) - 1 + 0.9)
    ax.axis("off")
    # the y range in data units, with room in points for the text: the labels above the
    # bars, the arcs' labels above them, the sinks' labels below
    lowest = min(lowest, min_bottom)
    if axes_points is None:
        axes_points = ax.get_window_extent().height / ax.figure.dpi * 72
    label_points = 9 * 1.2 * n_lines + 4
    arc_points = 8 * 1.2 + 4 if len(behind) else 0.0
    sink_points = 8 * 1.2 * 2 + 6 if len(exits) else 0.0
    apex_points = 0.75 * float(rise_points.max(initial=0.0))
    per_point = -lowest / max(axes_points - label_points - apex_points - arc_points
                              - sink_points, 0.3 * axes_points)
    label_h = label_points * per_point
    bottom = lowest - sink_points * per_point
    top = label_h + (apex_points + arc_points) * per_point
    ax.set_ylim(bottom, top)
    back = False
    steps_back = set(zip(t.loc[t["kind"] == "back", "source"],
                         t.loc[t["kind"] == "back", "target"], strict=True))
    for (_, m), r in zip(behind.iterrows(), rise_points * per_point, strict=True):
        x0, x1, y0 = m["x0"] + w / 4, m["x1"] + 3 * w / 4, label_h
        path = MplPath([(x0, y0), (x0, y0 + r), (x1, y0 + r), (x1, y0)],
                       [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4])
        is_back = (m["source"], m["target"]) in steps_back
        back |= is_back
        colour = FLOW_COLOURS["back"] if is_back else _flow_colour(m["target"])
        lw = float(np.clip(m["count"] * scale / per_point, 1.0, 8.0))
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=10 + lw,
                                     lw=lw, color=colour, zorder=5))
        what = "back" if is_back else f"{m['source']} \u2192 {m['target']}"
        ax.text((x0 + x1) / 2, y0 + 0.75 * r + (lw / 2 + 2) * per_point,
                f"{_count(m['count'])} {what}", ha="center", va="bottom", fontsize=8,
                color=colour)
    return {"col": col, "scale": scale, "sink_top": sink_top, "bottom": bottom, "back": back}


def plot_flows(table, ax: Axes | None = None, title: str | None = None) -> Axes:
    """The journey's flows (a table of ``sim.measure.flows``) as an alluvial diagram.

    One bar per state, left to right in the journey's order, its height the moves into it
    from other states (mean per replication, one scale for all); bands between bars are
    the moves forward, to scale. Moves into lost or churned drop to bars on a row below
    the state they left. Steps back (and any move to a state drawn further left) are arcs
    above the bars, with their count. Each bar's label: the customers who reached it, their
    share of the aware, and repeat visits of the stage (loops) if any. When the buyers are
    few (under 15 % of the aware), the life after the first purchase is drawn again,
    magnified, in an inset at the lower right, with shares of the buyers; the churned are
    shown there.

    Parameters
    ----------
    table : a flows table (``Run.flows()``, ``flows.csv`` read back, or
        ``sim.measure.flows.first_entry_flows``): ``source``, ``target``, ``kind``,
        ``count``, and ``from_first_entries`` (said in the note if true); a table split
        ``by`` a group is summed over its groups.
    ax : the Axes to draw on (12 x 7 inches suit it); None: a new figure.
    title : the title, at the left.

    Returns
    -------
    The Axes (the inset, if drawn, is ``ax.child_axes[0]``).
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyBboxPatch, Patch

    from sim.measure.flows import EXIT_STATES, flow_nodes

    if ax is None:
        _, ax = plt.subplots(figsize=(12, 7))
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    t = table.groupby(["source", "target", "kind"], sort=False)["count"].sum().reset_index()
    t = t[t["count"] > 0]
    nodes = flow_nodes(t).set_index("state") if len(t) else None
    if nodes is None or not nodes["customers"].sum() > 0:
        return nothing_to_show(ax, "nobody became aware, so there is no journey to draw")
    aware = float(t.loc[t["kind"] == "enter", "count"].sum())
    states = [s for s in nodes.index if s not in EXIT_STATES]
    life = [s for s in states if s in _CUSTOMER_STATES]
    buyers = float(nodes["customers"].get("purchase", 0.0))
    zoom = bool(life) and "purchase" in life and 0 < buyers < _ZOOM_BELOW * aware
    layout = _flow_diagram(ax, t, nodes, states, aware,
                           [s for s in states if not (zoom and s in life)],
                           min_bottom=-2.0 if zoom else 0.0, quiet=tuple(life) if zoom else (),
                           min_columns=5)
    back = layout["back"]
    if zoom:  # the life after the purchase, to a scale of its own, in the lower right
        x0, x1 = layout["col"]["purchase"] - 0.1, len(states) - 1 + 0.85
        y0, y1 = layout["bottom"], layout["sink_top"] + 0.1
        ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0.02",
                                    facecolor="#f3f8f4", edgecolor="#cfe3d6", lw=0.8))
        bounds = [x0 + 0.05, y0 + 0.02, x1 - x0 - 0.1, y1 - y0 - 0.12]
        inset = ax.inset_axes(bounds, transform=ax.transData)
        # the inset is placed when drawn: its height in points from the parent's scale
        low, high = ax.transData.transform([(0, bounds[1]), (0, bounds[1] + bounds[3])])
        zoomed = _flow_diagram(inset, t, nodes, life, buyers, life,
                               axes_points=(high[1] - low[1]) / ax.figure.dpi * 72)
        inset.set_title(f"after the first purchase, {zoomed['scale'] / layout['scale']:.0f}x "
                        "larger; shares of the buyers", fontsize=9, loc="left",
                        color=FLOW_COLOURS["customer"])
    handles = [Patch(color=FLOW_COLOURS["stage"], label="journey stage"),
               Patch(color=FLOW_COLOURS["customer"], label="customer"),
               Patch(color=FLOW_COLOURS["lost"], label="lost (left before buying)"),
               Patch(color=FLOW_COLOURS["churned"], label="churned (left after buying)")]
    if back:
        handles.append(Line2D([], [], color=FLOW_COLOURS["back"], lw=1.5,
                              label="step back to an earlier stage"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, 0.0), ncol=5,
              fontsize=8, frameon=False)
    first_entries = (bool(table["from_first_entries"].any())
                     if "from_first_entries" in table else False)
    note = ("labels: customers who reached the state, their share of the aware (mean per "
            "replication), and those who remain in it at the horizon;\nbars and bands: "
            "moves between states, to scale")
    if first_entries:
        note += ("\nfrom first-entry times only (customers.csv): repeat visits and steps "
                 "back are not shown")
    ax.annotate(note, (0, 0), xycoords="axes fraction", xytext=(0, -22),
                textcoords="offset points", fontsize=8, color="dimgrey", va="top")
    return ax


_TIMELINE_COLOURS = {"stage": "#3b6ea5", "order": "#2e8b57", "ticket": "#e07b00",
                     "score": "#7b4fa0"}


def plot_customer_timeline(path, states, horizon_days: float, purchases=None, tickets=None,
                           final_experience: float | None = None, ax: Axes | None = None,
                           title: str | None = None) -> Axes:
    """One customer's path through the journey over time.

    On ``ax``: the states entered as steps (one row per state, the journey's order upwards,
    lost and churned at the bottom), orders as green rings on the path (their value above
    them), support tickets as orange triangles (their outcome below them); the horizon
    dashed. Below it, on an axes of its own (sharing the days): the experience score on
    entering each state, held until the next, and the latest score at the end if given.

    Parameters
    ----------
    path : the customer's state entries in order: ``time`` (days since the start),
        ``state`` (name) and ``experience`` (score on entering).
    states : every state of the run, in the journey's order.
    horizon_days : the run's horizon.
    purchases : the customer's orders: ``time`` (days) and ``value`` (currency units).
    tickets : the customer's support tickets: ``arrival`` (days) and ``outcome``.
    final_experience : the customer's latest score (after the last state entry).

    Returns
    -------
    The Axes of the path (the score's is ``ax.figure.axes[-1]``).
    """
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    from sim.measure.flows import EXIT_STATES

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 5.5))
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    if path is None or not len(path):
        return nothing_to_show(ax, "this customer entered no state")
    rows = [*[s for s in EXIT_STATES[::-1] if s in states],
            *[s for s in states if s not in EXIT_STATES]]
    y_of = {s: i for i, s in enumerate(rows)}
    time = path["time"].to_numpy(dtype=float)
    state = [str(s) for s in path["state"]]
    y = np.array([y_of[s] for s in state])
    ended = state[-1] in EXIT_STATES
    start = float(time[0])
    end = float(time[-1]) + 0.08 * max(float(time[-1]) - start, 1.0) if ended else float(
        horizon_days)
    width = end - start + 1.0
    ax.step(np.append(time, end), np.append(y, y[-1]), where="post",
            color=_TIMELINE_COLOURS["stage"], lw=2, zorder=3, label="state (entered at a dot)")
    ax.scatter(time, y, s=30, c=[_flow_colour(s) for s in state], zorder=4)

    def on_path(t: np.ndarray) -> np.ndarray:
        """The row of the state the customer is in at each of the times ``t``."""
        i = np.clip(np.searchsorted(time, t, side="right") - 1, 0, y.size - 1)
        # at an instant with several entries (a purchase and advocacy, a last order and
        # churn): the first state entered then
        i = np.where(time[i] == t, np.searchsorted(time, t, side="left"), i)
        return y[i]

    def labelled(t: np.ndarray) -> np.ndarray:
        """Which of the times ``t`` get a label: none closer than 3 % of the days shown to
        the previous label."""
        keep, last = np.zeros(t.size, dtype=bool), -np.inf
        for i, ti in enumerate(t):
            if ti - last >= 0.03 * width:
                keep[i], last = True, ti
        return keep

    if purchases is not None and len(purchases):
        t = purchases["time"].to_numpy(dtype=float)
        ax.scatter(t, on_path(t), s=70, facecolor="white", edgecolor=_TIMELINE_COLOURS["order"],
                   lw=2, zorder=5, label="order (its value)")
        for ti, yi, v, show in zip(t, on_path(t), purchases["value"], labelled(t),
                                   strict=True):
            if show:
                ax.annotate(f"{v:,.0f}", (ti, yi), xytext=(0, 7), textcoords="offset points",
                            ha="center", fontsize=8, color=_TIMELINE_COLOURS["order"])
    if tickets is not None and len(tickets):
        t = tickets["arrival"].to_numpy(dtype=float)
        ax.scatter(t, on_path(t) - 0.3, s=55, marker="^", color=_TIMELINE_COLOURS["ticket"],
                   zorder=5, label="support ticket (its outcome)")
        for ti, yi, o, show in zip(t, on_path(t), tickets["outcome"], labelled(t),
                                   strict=True):
            if show:
                ax.annotate(str(o), (ti, yi - 0.3), xytext=(0, -10),
                            textcoords="offset points", ha="center", va="top", fontsize=7,
                            color=_TIMELINE_COLOURS["ticket"])
    ax.set_yticks(range(len(rows)), rows)
    for label, s in zip(ax.get_yticklabels(), rows, strict=True):
        label.set_color(_flow_colour(s))
    ax.set_ylim(-0.8, len(rows) - 0.4)
    ax.set_xlim(start - 0.03 * width, end + 0.02 * width)
    ax.grid(axis="y", color="#e6e6e6", lw=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(axis="x", labelbottom=False)
    score = make_axes_locatable(ax).append_axes("bottom", size="28%", pad=0.12, sharex=ax)
    e = path["experience"].to_numpy(dtype=float)
    latest = (float(final_experience) if final_experience is not None
              and np.isfinite(final_experience) else float(e[-1]))
    score.step(np.append(time, end), np.append(e, e[-1]), where="post",
               color=_TIMELINE_COLOURS["score"], lw=1.5)
    if latest != e[-1]:
        score.plot([end], [latest], marker="D", ms=5, ls="none",
                   color=_TIMELINE_COLOURS["score"], label=f"latest score ({latest:.2f})")
    score.axhline(0, color="grey", lw=0.6)
    values = np.append(e, latest)
    pad = max(0.1, 0.15 * float(np.ptp(values)))
    score.set_ylim(min(float(values.min()), 0.0) - pad, max(float(values.max()), 0.0) + pad)
    score.set_ylabel("experience\nscore", color=_TIMELINE_COLOURS["score"], fontsize=9)
    score.tick_params(axis="y", labelsize=8)
    score.spines[["top", "right"]].set_visible(False)
    score.set_xlabel("days since the start of the run")
    handles, labels = ax.get_legend_handles_labels()
    more = score.get_legend_handles_labels()
    score.legend(handles + more[0], labels + more[1], loc="upper left", ncol=4, fontsize=8,
                 frameon=False, bbox_to_anchor=(0.0, -0.55))
    if not ended:
        for a in (ax, score):
            a.axvline(horizon_days, color="grey", ls="--", lw=1)
        ax.annotate("horizon", (horizon_days, len(rows) - 0.5), xytext=(-3, 0),
                    textcoords="offset points", ha="right", va="top", fontsize=8,
                    color="grey")
    return ax
