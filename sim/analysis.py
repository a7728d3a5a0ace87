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

from sim.experiment import ExperimentResult

__all__ = ["HEADLINE", "Estimate", "compare", "estimate", "extra_cost", "paired", "roi",
           "summarize"]


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


def estimate(values: np.ndarray, level: float = 0.95) -> Estimate:
    """t confidence interval for the mean of ``values`` (NaNs dropped).

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
    return Estimate(mean, sd, n, hw, mean - hw, mean + hw)


def summarize(exp: ExperimentResult, level: float = 0.95) -> dict[str, Estimate]:
    """Every headline metric of an experiment with its confidence interval."""
    return {name: estimate(exp.metric(name), level) for name in exp.metrics[0]}


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


def _values(metrics: Sequence[Mapping[str, float]], name: str) -> np.ndarray:
    return np.array([m[name] for m in metrics], dtype=float)


def extra_cost(metrics: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Per replication: every cost of the run (acquisition, retention, support, the
    intervention's own, and loyalty discounts given away), undiscounted."""
    return sum(_values(metrics, k) for k in COST_KEYS)


def paired(baseline: Sequence[Mapping[str, float]], scenario: Sequence[Mapping[str, float]],
           name: str, higher_is_better: bool = True) -> dict[str, float]:
    """Scenario minus baseline for one metric, replication by replication (common random
    numbers: replication i of both saw the same customers), with its 95% t interval.

    ``crn_variance_ratio`` = (Var(b) + Var(s)) / Var(s - b): how many times smaller the
    paired difference's variance is than that of a difference of independent runs (whose
    variance would be Var(b) + Var(s)).
    """
    b, s = _values(baseline, name), _values(scenario, name)
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
        "crn_variance_ratio": var_indep / var_d if var_d > 0 else float("inf"),
        "replications": float(ok.sum()),
    }


def roi(baseline: Sequence[Mapping[str, float]], scenario: Sequence[Mapping[str, float]]
        ) -> dict[str, float]:
    """Return on the intervention: extra NPV / extra cost, per replication, with its CI.

    NaN where the scenario costs no more than the baseline (nothing was invested).
    """
    cost = extra_cost(scenario) - extra_cost(baseline)
    gain = _values(scenario, "npv") - _values(baseline, "npv")
    ratio = np.where(cost > 0, gain / np.where(cost > 0, cost, 1.0), np.nan)
    est = estimate(ratio)
    return {"extra_cost": float(cost.mean()), "roi": est.mean, "roi_low": est.low,
            "roi_high": est.high}


def compare(baseline: Sequence[Mapping[str, float]],
            scenarios: Mapping[str, Sequence[Mapping[str, float]]],
            rank_by: str = "npv") -> pd.DataFrame:
    """The comparison table: one row per scenario and metric (the headline metrics, plus
    ``rank_by``), ranked by the paired difference of ``rank_by`` (best first).

    Columns: scenario, metric, baseline, scenario value, difference with its 95% CI,
    relative change, share of replications in which the scenario did better, the CRN
    variance ratio, and per scenario the extra cost and ROI.
    """
    higher = dict(HEADLINE)
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
