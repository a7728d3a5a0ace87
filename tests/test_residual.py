"""Lifetime value beyond the horizon: the residual value, ``clv`` and ``npv_clv``.

Oracles:

- value to date plus residual is the infinite-horizon LTV: with BG/NBD buyers whose
  drop-out is fixed (a Beta concentrated at p) and whose rate varies a little (Gamma with
  r = 100), the mean over buyers of ``clv`` is m (1 + E[lambda / (delta + lambda p)]), the
  expectation over lambda by quadrature (the first order's margin m undiscounted, then
  purchases at lambda until a drop-out after one of them), within 4 standard errors;
- the residual of one customer, given their state at the horizon, matches a Monte Carlo
  simulation of their future written here (purchases, drop-outs or renewals, discounted
  margins and running costs), for the repeat-purchase and the subscription models;
- invariants: 0 for the churned, NaN for those who never bought; ``npv_clv`` = ``npv`` +
  the residuals of those alive at the horizon, discounted to day 0; with a base, the parts
  add up.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from sim.engine import simulate
from sim.measure.metrics import customer_values, replication_metrics, residual_at_horizon
from sim.model.config import compose_config
from sim.model.spec import build_spec

NEUTRAL = ["experience.churn_per_point=0", "experience.leave_after_bad=0",
           *(f"market.segments.{s}.order_value=1" for s in ("value", "mainstream", "premium"))]


def run(*overrides: str, seed: int = 2026, replication: int = 0):
    spec = build_spec(compose_config(overrides=list(overrides)))
    return simulate(spec, seed=seed, replication=replication), spec


def test_value_to_date_plus_residual_is_the_infinite_horizon_ltv() -> None:
    """Seed 2026, two replications of a year: lambda ~ Gamma(100, 3000 days) (one purchase
    a month, 10% spread), p ~ Beta(10^4, 9 x 10^4) (0.1, fixed in effect), the baseline's
    lognormal order value (segments neutral) and margin, no running costs."""
    extra = ["retention.repeat.r=100", "retention.repeat.alpha_days=3000",
             "retention.repeat.a=10000", "retention.repeat.b=90000", *NEUTRAL]
    clv, residual = [], []
    for rep in (0, 1):
        res, spec = run(*extra, replication=rep)
        values = customer_values(res, spec)
        bought = ~np.isnan(res.customers["t_purchase"])
        clv.append(values["clv"][bought])
        residual.append(values["residual"][bought])
    clv = np.concatenate(clv)
    m = math.exp(spec.order_log_mean + spec.order_log_sd**2 / 2) * spec.gross_margin
    delta, p = spec.discount_rate_per_day, 0.1
    gamma = stats.gamma(100, scale=1 / 3000)
    future = integrate.quad(lambda lam: lam / (delta + lam * p) * gamma.pdf(lam),
                            gamma.ppf(1e-12), gamma.ppf(1 - 1e-12))[0]
    expected = m * (1 + future)
    se = clv.std(ddof=1) / math.sqrt(clv.size)
    assert abs(clv.mean() - expected) < 4 * se, (clv.mean(), expected, se)
    # the horizon cuts off a good part of it: the residual is no rounding error
    assert np.concatenate(residual).mean() > 0.1 * expected


def monte_carlo_repeat(lam: float, p: float, m: float, c: float, delta: float, n: int,
                       seed: int) -> np.ndarray:
    """Discounted future of customers alive now: purchases at rate lam, each worth m,
    a drop-out with probability p after each; running costs c per day while alive."""
    rng = np.random.default_rng(seed)
    k = int(40 / p)  # purchases per path: (1 - p)^k < e^-40, negligible
    times = np.cumsum(rng.exponential(1 / lam, (n, k)), axis=1)
    n_buys = rng.geometric(p, n)  # the purchase after which the customer leaves
    alive_at = np.arange(1, k + 1)[None, :] <= n_buys[:, None]
    margin = (m * np.exp(-delta * times) * alive_at).sum(axis=1)
    end = times[np.arange(n), n_buys - 1]
    return margin - c * -np.expm1(-delta * end) / delta


def test_repeat_purchase_residual_matches_monte_carlo() -> None:
    """Seed 7: for three buyers of a run alive at the horizon (their rate, drop-out and
    value as the customers table holds them, messaging costs on; drop-out above 0.05, so
    that the simulated futures are short), the residual against 20,000 simulated futures
    each, within 4 SE."""
    res, spec = run("retention.messaging.newsletter=true", *NEUTRAL[:2], "run.horizon_days=200")
    c = res.customers
    at_h = residual_at_horizon(res, spec)
    alive = np.flatnonzero(~np.isnan(c["t_purchase"]) & np.isnan(c["t_churned"])
                           & (c["dropout"] > 0.05))  # (short simulated futures)
    picks = alive[np.argsort(c["purchase_rate"][alive])[[0, alive.size // 2, -1]]]
    cost = spec.retention.messaging_cost_per_day
    assert cost > 0
    for i, k in enumerate(picks):
        m = c["order_value_mean"][k] * spec.gross_margin
        futures = monte_carlo_repeat(c["purchase_rate"][k], c["dropout"][k], m, cost,
                                     spec.discount_rate_per_day, 20_000, seed=7 + i)
        se = futures.std(ddof=1) / math.sqrt(futures.size)
        assert abs(futures.mean() - at_h[k]) < 4 * se, (k, futures.mean(), at_h[k], se)


def test_subscription_residual_matches_monte_carlo() -> None:
    """Seed 11: a subscriber alive at the horizon renews every period_days (the next
    renewal after their last payment), keeps each with 1 - theta, pays the price each
    time; 50,000 simulated futures, within 4 SE."""
    res, spec = run("retention=subscription", *NEUTRAL[:2], "run.horizon_days=200")
    c, p = res.customers, res.purchases
    at_h = residual_at_horizon(res, spec)
    alive = np.flatnonzero(~np.isnan(c["t_purchase"]) & np.isnan(c["t_churned"]))
    k = alive[0]
    period, delta, h = (spec.retention.period_days, spec.discount_rate_per_day,
                        spec.horizon_days)
    last = p["time"][p["customer"] == k].max()
    first = last + period - h  # the next renewal, days after the horizon
    theta = c["dropout"][k]
    m = c["order_value_mean"][k] * spec.gross_margin
    rng = np.random.default_rng(11)
    renewals = rng.geometric(theta, 50_000) - 1  # renewals kept before the first lost
    futures = np.array([m * np.exp(-delta * (first + period * np.arange(j))).sum()
                        for j in renewals])
    se = futures.std(ddof=1) / math.sqrt(futures.size)
    assert abs(futures.mean() - at_h[k]) < 4 * se, (futures.mean(), at_h[k], se)


def test_residual_invariants_and_npv_clv() -> None:
    res, spec = run()
    c = res.customers
    at_h = residual_at_horizon(res, spec)
    bought = ~np.isnan(c["t_purchase"])
    assert np.isnan(at_h[~bought]).all()
    assert (at_h[bought & ~np.isnan(c["t_churned"])] == 0).all()
    assert (at_h[bought & np.isnan(c["t_churned"])] > 0).all()
    m = replication_metrics(res, spec)
    delta, h = spec.discount_rate_per_day, spec.horizon_days
    assert m["npv_clv"] == pytest.approx(m["npv"] + np.nansum(at_h) * math.exp(-delta * h),
                                         rel=1e-12)
    values = customer_values(res, spec)
    assert m["clv.mean"] == pytest.approx(np.mean(values["clv"][bought]), rel=1e-12)
    assert m["clv.mean"] > m["ltv.mean"]
