"""Figures. Every function takes ``ax=None`` and returns the Axes; nothing is shown or saved
here (saving is ``sim.io.save_figure``). The only module that imports matplotlib.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from sim.analysis import Estimate
from sim.metrics import kaplan_meier

__all__ = [
    "close",
    "forest_figure",
    "funnel_figure",
    "plot_activity",
    "plot_experience",
    "plot_forest",
    "plot_funnel",
    "plot_ltv",
    "plot_retention",
]


def close(fig) -> None:
    """Release a figure made here (after saving it)."""
    plt.close(fig)


def plot_funnel(summary: dict[str, Estimate], stages: list[str], ax: Axes | None = None) -> Axes:
    """The funnel: customers reaching each framework stage (mean with 95% CI), the share
    of aware customers and the step conversion from the previous stage.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.6 * len(stages) + 1.5))
    y = np.arange(len(stages))[::-1]
    est = [summary[f"funnel.{s}.reached"] for s in stages]
    means = np.array([e.mean for e in est])
    err = np.array([0.0 if np.isnan(e.half_width) else e.half_width for e in est])
    bars = ax.barh(y, means, xerr=err, color="#3b6ea8", alpha=0.85, capsize=3)
    ax.set_yticks(y, stages)
    ax.set_xscale("log")
    ax.set_xlim(max(means.min(), 1) / 3, means.max() * 8)
    for s, bar, m in zip(stages, bars, means, strict=True):
        rate = summary[f"funnel.{s}.rate"].mean
        step = summary[f"funnel.{s}.step_rate"].mean
        ax.text(bar.get_width() * 1.15, bar.get_y() + bar.get_height() / 2,
                f"{m:,.0f}  ({rate:.1%} of aware, {step:.0%} of previous)",
                va="center", fontsize=9)
    ax.set_xlabel("customers per replication (log scale; bars: 95% CI)")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def funnel_figure(summary: dict[str, Estimate], stages: list[str], title: str):
    """A titled funnel figure, with cart abandonment and CAC in the subtitle."""
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(stages) + 1.8))
    plot_funnel(summary, stages, ax=ax)
    ab, cac = summary["checkout.abandonment_rate"], summary["cac"]
    ax.set_title(f"{title}\ncart abandonment {ab.mean:.1%} (±{ab.half_width:.1%}), "
                 f"CAC {cac.mean:,.0f} (±{cac.half_width:,.0f})", fontsize=10, loc="left")
    fig.tight_layout()
    return fig


def plot_retention(durations: list[np.ndarray], churned: list[np.ndarray],
                   ax: Axes | None = None) -> Axes:
    """Kaplan-Meier retention from the first purchase, censored at the horizon: one faint
    curve per replication and the pooled curve."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for d, e in zip(durations, churned, strict=True):
        t, s = kaplan_meier(d, e)
        ax.step(np.r_[0, t] / 30.44, np.r_[1, s], where="post", color="#3b6ea8", alpha=0.15)
    t, s = kaplan_meier(np.concatenate(durations), np.concatenate(churned))
    ax.step(np.r_[0, t] / 30.44, np.r_[1, s], where="post", color="#1d3f66", lw=2,
            label="all replications")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("months since first purchase")
    ax.set_ylabel("share still active")
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_ltv(ltv: np.ndarray, ax: Axes | None = None) -> Axes:
    """Distribution of customer LTV (discounted, to the horizon) with P10, P50, P90."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    ltv = ltv[np.isfinite(ltv)]
    upper = np.percentile(ltv, 99.5)  # the far tail would squash the histogram
    ax.hist(ltv[ltv <= upper], bins=60, color="#3b6ea8", alpha=0.8)
    top = ax.get_ylim()[1]
    marks = [(f"P{q}", np.percentile(ltv, q), ":" if q != 50 else "-") for q in (10, 50, 90)]
    marks.append(("mean", ltv.mean(), "--"))
    for i, (name, v, style) in enumerate(marks):
        ax.axvline(v, color="#b23a48" if name != "mean" else "black", ls=style, lw=1.2)
        ax.text(v, top * (0.97 - 0.08 * i), f" {name} {v:,.0f}", fontsize=9, va="top",
                color="#b23a48" if name != "mean" else "black")
    ax.set_xlabel("LTV per customer (discounted margin minus retention costs; "
                  "axis cut at P99.5)")
    ax.set_ylabel("customers")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_activity(day: np.ndarray, active: np.ndarray, revenue: np.ndarray,
                  ax: Axes | None = None) -> Axes:
    """Active customers (left axis) and revenue per week (right axis) over time; the
    arrays are means over replications per day."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    ax.plot(day, active, color="#1d3f66", label="active customers")
    ax.set_xlabel("day")
    ax.set_ylabel("active customers", color="#1d3f66")
    right = ax.twinx()
    weeks = np.convolve(revenue, np.ones(7), mode="same")
    right.plot(day, weeks, color="#b23a48", alpha=0.8, label="revenue, last 7 days")
    right.set_ylabel("revenue per week", color="#b23a48")
    ax.spines[["top"]].set_visible(False)
    right.spines[["top"]].set_visible(False)
    return ax


def plot_experience(summary: dict[str, Estimate], states: list[str],
                    ax: Axes | None = None) -> Axes:
    """The emotion curve: mean experience score on first entering each state (95% CI)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    est = [summary[f"experience.{s}"] for s in states]
    keep = [i for i, e in enumerate(est) if np.isfinite(e.mean)]
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
    ax.set_ylabel("experience score")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def plot_forest(table, metric: str, ax: Axes | None = None) -> Axes:
    """Forest plot: each scenario's paired difference from the baseline in ``metric`` with
    its 95% CI, in ranking order (``table`` from ``analysis.compare``)."""
    rows = table[table["metric"] == metric].sort_values("rank")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    d = rows["difference"].to_numpy()
    lo, hi = rows["difference_low"].to_numpy(), rows["difference_high"].to_numpy()
    sure = (lo > 0) | (hi < 0)
    ax.axvline(0, color="grey", lw=0.8)
    ax.errorbar(d, y, xerr=[d - lo, hi - d], fmt="none", ecolor="#7f8c9a", capsize=2)
    ax.scatter(d[sure], y[sure], color="#1d3f66", zorder=3, label="CI excludes 0")
    ax.scatter(d[~sure], y[~sure], facecolor="white", edgecolor="#1d3f66", zorder=3,
               label="CI includes 0")
    ax.set_yticks(y, rows["scenario"])
    ax.set_xlabel(f"difference from baseline: {metric} (95% CI, paired)")
    ax.spines[["top", "right"]].set_visible(False)
    return ax


def forest_figure(table, metrics: list[str], title: str):
    """One forest panel per metric, scenarios in ranking order."""
    n = table["scenario"].nunique()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 0.35 * n + 1.6),
                             sharey=True)
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        plot_forest(table, metric, ax=ax)
        ax.set_xlabel(f"{metric}: difference (95% CI)", fontsize=9)
    np.atleast_1d(axes)[0].legend(frameon=False, fontsize=8, loc="best")
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    fig.tight_layout()
    return fig
