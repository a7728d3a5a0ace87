"""Dwell-time distributions parametrised by mean and coefficient of variation.

Every family is sampled as ``scale * standard draw``: when a scenario changes a stage's
mean (and not its cv), each customer's dwell time scales instead of being redrawn (common
random numbers, DESIGN.md section 5).

References
----------
Law, A. M. (2015). *Simulation Modeling and Analysis*, 5th ed., ch. 6 (moments of the
gamma, lognormal and Weibull families).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

__all__ = ["KINDS", "Dwell", "make_dwell"]

KINDS = ("exponential", "gamma", "lognormal", "weibull", "fixed")
# cv ranges where the families are well defined in floating point (and plausible for dwell
# times); the Weibull shape solver covers [0.05, 10]
CV_RANGE = {"gamma": (0.01, 10.0), "lognormal": (0.01, 10.0), "weibull": (0.05, 10.0)}


@dataclass(frozen=True)
class Dwell:
    """A non-negative dwell-time distribution in days.

    Attributes
    ----------
    kind : one of ``KINDS``.
    mean_days : mean dwell time (days).
    cv : coefficient of variation (standard deviation / mean); 1 for exponential, 0 for fixed.
    shape, scale : the family's own parameters, derived once by ``make_dwell``.
    """

    kind: str
    mean_days: float
    cv: float
    shape: float
    scale: float

    @property
    def mean(self) -> float:
        return self.mean_days

    @property
    def variance(self) -> float:
        return (self.cv * self.mean_days) ** 2

    def sample(self, rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
        """Draw ``size`` dwell times (days) from ``rng``.

        Each family is a scale times a standard draw, so changing only the mean scales every
        customer's dwell time instead of redrawing it (common random numbers).
        """
        if self.kind == "fixed":
            return np.full(size, self.mean_days)
        if self.kind == "exponential":
            return self.scale * rng.standard_exponential(size)
        if self.kind == "gamma":
            return self.scale * rng.standard_gamma(self.shape, size)
        if self.kind == "lognormal":  # shape = sigma, scale = exp(mu)
            return self.scale * np.exp(self.shape * rng.standard_normal(size))
        return self.scale * rng.weibull(self.shape, size)


def _weibull_shape_for_cv(cv: float) -> float:
    """Weibull shape k with coefficient of variation ``cv``.

    cv^2 = Gamma(1 + 2/k) / Gamma(1 + 1/k)^2 - 1 decreases monotonically in k.
    """

    def excess(log_k: float) -> float:
        k = math.exp(log_k)
        lg1 = special.gammaln(1 + 1 / k)
        lg2 = special.gammaln(1 + 2 / k)
        return math.log(math.expm1(lg2 - 2 * lg1)) - 2 * math.log(cv)

    return math.exp(optimize.brentq(excess, math.log(0.05), math.log(200.0), xtol=1e-12))


def make_dwell(kind: str, mean_days: float, cv: float | None = None) -> Dwell:
    """Build a validated ``Dwell``; raises ``ValueError`` with an explanation on bad input.

    ``cv`` may be omitted for ``exponential`` (1) and ``fixed`` (0).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown distribution kind {kind!r}; allowed: {', '.join(KINDS)}")
    if not math.isfinite(mean_days):
        raise ValueError(f"mean_days must be a finite number of days, got {mean_days}")
    if kind == "fixed":
        if mean_days < 0:
            raise ValueError(f"mean_days must be >= 0 for kind 'fixed', got {mean_days}")
        if cv not in (None, 0, 0.0):
            raise ValueError(f"cv must be 0 (or omitted) for kind 'fixed', got {cv}")
        return Dwell("fixed", float(mean_days), 0.0, 0.0, float(mean_days))
    if not mean_days > 0:
        raise ValueError(f"mean_days must be > 0 for kind {kind!r}, got {mean_days}")
    if kind == "exponential":
        if cv not in (None, 1, 1.0):
            raise ValueError(f"cv must be 1 (or omitted) for kind 'exponential', got {cv}")
        return Dwell("exponential", float(mean_days), 1.0, 1.0, float(mean_days))
    lo, hi = CV_RANGE[kind]
    if cv is None or not lo <= cv <= hi:
        raise ValueError(f"cv must be in [{lo:g}, {hi:g}] for kind {kind!r}, got {cv}")
    if kind == "gamma":
        shape = 1.0 / cv**2
        return Dwell("gamma", float(mean_days), float(cv), shape, mean_days / shape)
    if kind == "lognormal":
        sigma = math.sqrt(math.log1p(cv**2))
        return Dwell("lognormal", float(mean_days), float(cv), sigma,
                     mean_days * math.exp(-sigma**2 / 2))
    k = _weibull_shape_for_cv(cv)
    return Dwell("weibull", float(mean_days), float(cv), k,
                 mean_days / math.exp(special.gammaln(1 + 1 / k)))
