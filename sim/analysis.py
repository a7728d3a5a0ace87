"""Statistics across replications: means with t confidence intervals.

Replications are independent and identically distributed, so a metric's replication
values give a t interval for its expectation: mean +- t(0.975, R-1) * sd / sqrt(R).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from sim.experiment import ExperimentResult

__all__ = ["Estimate", "estimate", "summarize"]


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
