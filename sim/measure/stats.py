"""Statistics across replications: means with t confidence intervals.

Replications are independent and identically distributed, so a metric's replication
values give a t interval for its expectation: mean +- t(0.975, R-1) * sd / sqrt(R).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from sim.measure.experiment import ExperimentResult
from sim.measure.metrics import (
    metric_range,
)
from sim.model.spec import ModelSpec

__all__ = ["COST_KEYS", "HEADLINE", "ONE_REPLICATION", "Estimate", "compare", "estimate",
           "extra_cost", "metric_values", "paired", "roi", "run_notes", "summarize",
           "why_nobody_aware"]


@dataclass(frozen=True)
class Estimate:
    """Mean of a metric across replications with its confidence interval."""

    mean: float
    sd: float
    n: int  # replications with a value (NaN values, e.g. CAC with no buyers, are left out)
    half_width: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def estimate(values: np.ndarray, level: float = 0.95,
             within: tuple[float, float] = (-math.inf, math.inf)) -> Estimate:
    """t confidence interval for the mean of ``values`` (NaNs dropped), cut at the range
    ``within`` the quantity lies in (``metrics.metric_range``): a share's interval stays in
    [0, 1], a count's is never negative. The cut keeps the coverage (the true mean lies in
    the range, so it is in the cut interval whenever it is in the whole one);
    ``half_width`` stays the t interval's.

    With fewer than two values the interval is NaN: one replication says nothing about
    its own noise.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        nan = float("nan")
        return Estimate(nan, nan, 0, nan, nan, nan)
    mean = float(x.mean())
    if n < 2:
        nan = float("nan")
        return Estimate(mean, nan, 1, nan, nan, nan)
    sd = float(x.std(ddof=1))
    hw = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    low, high = within
    return Estimate(mean, sd, n, hw, max(mean - hw, low), min(mean + hw, high))


def summarize(exp: ExperimentResult, level: float = 0.95) -> dict[str, Estimate]:
    """Every headline metric of an experiment with its confidence interval."""
    return {name: estimate(exp.metric(name), level, metric_range(name))
            for name in exp.metrics[0]}


# ------------------------------------------------------------------ runs with little to show
ONE_REPLICATION = ("one replication: each value is that replication's (no interval); a "
                   "confidence interval needs at least two replications (run.replications=2 "
                   "or more)")


def why_nobody_aware(spec: ModelSpec) -> str:
    """Why a run may have had nobody aware, from the channels' reach: no reach at all, or
    so little for the market and horizon that nobody is expected to become aware.

    The chance that one person becomes aware by the horizon H through the channels alone
    (word of mouth needs a first advocate) is 1 - exp(-integral of the reach over [0, H]).
    """
    reach = np.asarray(spec.reach_per_day, dtype=float).sum(axis=1)
    days = np.arange(reach.size)
    hazard = float((reach * np.clip(spec.horizon_days - days, 0.0, 1.0)).sum())
    if hazard <= 0:
        return ("no channel has any reach (every channel's organic reach is 0 and none has "
                "paid reach with spend), and word of mouth needs a first advocate")
    chance = -math.expm1(-hazard)
    odds = f"{chance:.1%}" if chance >= 0.001 else f"1 in {1 / chance:,.0f}"
    expected = chance * spec.market_size
    return (f"the channels give each person a chance of {odds} of becoming aware in "
            f"{spec.horizon_days:g} day{'' if spec.horizon_days == 1 else 's'}, so in a market "
            f"of {spec.market_size:,} "
            + (f"about {expected:,.2g} are" if expected >= 0.01 else "almost no one is")
            + " expected to; a larger market.size, a longer run.horizon_days or more reach "
            "would show more")


def run_notes(summary: Mapping[str, Estimate], spec: ModelSpec,
              n_replications: int) -> list[str]:
    """Plain lines about a run with little to show, for the summary and the figures: a
    single replication (no interval), nobody aware in any replication (and why it may be),
    nobody buying in any replication. Empty for an ordinary run."""
    notes = [ONE_REPLICATION] if n_replications < 2 else []
    if not summary["aware"].mean > 0:
        notes.append(f"nobody became aware in any replication: {why_nobody_aware(spec)}")
    elif not summary["purchases"].mean > 0:
        notes.append("nobody bought in any replication, so LTV, CAC, retention and payback "
                     "have no value (see the funnel and the checkout's abandonment)")
    return notes


# ------------------------------------------------------------------ comparisons
# headline metrics of a comparison and whether more is better
HEADLINE = {
    "conversion_rate": True,
    "purchases": True,
    "monthly_churn": False,
    "ltv.mean": True,
    "cac": False,
    "npv": True,
}
COST_KEYS = ("costs.acquisition", "costs.retention", "costs.support", "costs.intervention",
             "discounts")


def metric_values(metrics: Sequence[Mapping[str, float]], name: str) -> np.ndarray:
    return np.array([m[name] for m in metrics], dtype=float)


def extra_cost(metrics: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Per replication: every cost of the run (acquisition, retention, support, the
    intervention's own, and loyalty discounts given away), undiscounted."""
    return sum(metric_values(metrics, k) for k in COST_KEYS)


def paired(baseline: Sequence[Mapping[str, float]], scenario: Sequence[Mapping[str, float]],
           name: str, higher_is_better: bool = True) -> dict[str, float]:
    """Scenario minus baseline for one metric, replication by replication (common random
    numbers: replication i of both saw the same customers), with its 95% t interval.

    ``crn_variance_ratio`` = (Var(b) + Var(s)) / Var(s - b): how many times smaller the
    paired difference's variance is than that of a difference of independent runs (whose
    variance would be Var(b) + Var(s)).
    """
    b, s = metric_values(baseline, name), metric_values(scenario, name)
    if b.size != s.size:
        raise ValueError(f"paired comparison needs the same replications: {b.size} != {s.size}")
    d = s - b
    est = estimate(d)
    ok = ~np.isnan(d)
    better = (d[ok] > 0) if higher_is_better else (d[ok] < 0)
    var_d = float(np.var(d[ok], ddof=1)) if ok.sum() > 1 else float("nan")
    var_indep = (float(np.nanvar(b, ddof=1)) + float(np.nanvar(s, ddof=1))
                 if ok.sum() > 1 else float("nan"))
    base_mean = float(np.nanmean(b)) if (~np.isnan(b)).any() else float("nan")
    return {
        "baseline": base_mean,
        "scenario_value": float(np.nanmean(s)) if (~np.isnan(s)).any() else float("nan"),
        "difference": est.mean,
        "difference_low": est.low,
        "difference_high": est.high,
        "relative_change": est.mean / abs(base_mean) if base_mean else float("nan"),
        "share_better": float(better.mean()) if better.size else float("nan"),
        # one replication: no variance, so no ratio (NaN, not the "infinitely better" of 0)
        "crn_variance_ratio": (float("nan") if math.isnan(var_d) else
                               var_indep / var_d if var_d > 0 else float("inf")),
        "replications": float(ok.sum()),
    }


def roi(baseline: Sequence[Mapping[str, float]], scenario: Sequence[Mapping[str, float]]
        ) -> dict[str, float]:
    """Return on the intervention: extra NPV / extra cost, per replication, with its CI.

    NaN where the scenario costs no more than the baseline (nothing was invested).
    """
    cost = extra_cost(scenario) - extra_cost(baseline)
    gain = metric_values(scenario, "npv") - metric_values(baseline, "npv")
    ratio = np.where(cost > 0, gain / np.where(cost > 0, cost, 1.0), np.nan)
    est = estimate(ratio)
    return {"extra_cost": float(cost.mean()), "roi": est.mean, "roi_low": est.low,
            "roi_high": est.high}


def compare(baseline: Sequence[Mapping[str, float]],
            scenarios: Mapping[str, Sequence[Mapping[str, float]]],
            rank_by: str = "npv") -> pd.DataFrame:
    """The comparison table: one row per scenario and metric (the headline metrics, plus
    ``rank_by``; with an installed base, ``new.npv`` and ``base.npv``), ranked by the
    paired difference of ``rank_by`` (best first).

    Columns: scenario, metric, baseline, scenario value, difference with its 95% CI,
    relative change, share of replications in which the scenario did better, the CRN
    variance ratio, and per scenario the extra cost and ROI.
    """
    higher = dict(HEADLINE)
    if "base.npv" in baseline[0]:  # an installed base: the effect on new and on base apart
        higher |= {"new.npv": True, "base.npv": True}
    if rank_by not in baseline[0]:
        raise KeyError(rank_by)
    higher.setdefault(rank_by, not rank_by.startswith(("cac", "monthly_churn", "costs")))
    rows = []
    for name, metrics in scenarios.items():
        money = roi(baseline, metrics)
        for metric, up in higher.items():
            rows.append({"scenario": name, "metric": metric, **paired(baseline, metrics,
                                                                     metric, up), **money})
    table = pd.DataFrame(rows)
    key = table[table["metric"] == rank_by].set_index("scenario")["difference"]
    order = key.sort_values(ascending=not higher[rank_by]).index
    rank = {name: i + 1 for i, name in enumerate(order)}
    table.insert(0, "rank", table["scenario"].map(rank))
    return table.sort_values("rank", kind="stable").reset_index(drop=True)


