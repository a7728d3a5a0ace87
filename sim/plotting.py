"""Figures. Every function takes ``ax=None`` and returns the Axes; nothing is shown or saved
here (saving is ``sim.io.save_figure``). The only module that imports matplotlib.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from sim.analysis import Estimate

__all__ = ["close", "funnel_figure", "plot_funnel"]


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
