"""Calibration from data (``sim.calibrate.buying``, ``sim.calibrate.funnel``,
``python -m sim.calibrate``).

- The likelihoods and predictions agree with independent evaluations: the BG/NBD individual
  likelihood and P(X(t) = x) against direct numerical integration of the generative model
  over lambda and p, E[X(t)] and E[Y(t) | x, t_x, T] against the published closed forms
  with the Gauss hypergeometric function, the discounted expected purchases against an
  integral of the closed-form expectation, the Gamma-Gamma likelihood and moments against
  integration over the customer's rate nu.
- Round trips: transactions simulated with known parameters (by the simulator, and directly
  from the BG/NBD and Gamma-Gamma generative models), exported in the input format, fitted,
  and the true parameters recovered within ``K_SE`` standard errors of the estimates; the
  same for journey events (dwell times, exit probabilities, with losses recorded or
  inferred). The fitted configs compose with the schema and the simulator runs on them.
- Bad input: a one-line message naming the problem and the file line, exit status 2
  (hostile and careless input, and a fuzz test over malformed logs, in
  ``test_calibrate_inputs.py``).

Every statistical test names its seed and allows ``K_SE`` = 4 standard errors, taken from
the fit's own Hessian (a tolerance the fit states, not one tuned here); at 4 SE a correct
fit fails one comparison in about 16,000. Each round trip also checks that its 4-SE band is
narrower than the true value, so an error of a factor 2 (or the 7 between days and weeks)
cannot pass. ``slow`` tests run more parameter sets and larger
samples (``pytest --runslow``).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import integrate, special, stats

from sim.calibrate import buying, cli, funnel, journey, mle, transactions
from sim.engine import simulate
from sim.model.config import compose_config, to_container
from sim.model.spec import build_spec

K_SE = 4.0  # standard errors allowed between a true parameter and its estimate
NEVER = -60.0  # checkout.base_logit: abandonment ~1e-26, the checkout always buys
START = "2024-01-01"


# ----------------------------------------------------------------------------- helpers
@functools.cache
def _base() -> dict[str, Any]:
    return to_container(compose_config([]))


def base_config() -> dict[str, Any]:
    """The composed baseline as a plain dict (composed once: Hydra is slow to start)."""
    return copy.deepcopy(_base())


def assert_within(estimate: float, se: float, true: float, label: str) -> None:
    """``true`` within K_SE standard errors of ``estimate``, and the band informative."""
    assert se > 0 and math.isfinite(se), f"{label}: standard error {se}"
    z = abs(estimate - true) / se
    assert z <= K_SE, f"{label}: estimate {estimate:.6g}, true {true:.6g} ({z:.1f} SE, SE {se:.3g})"
    # a factor of 2 (or the 7 of a days / weeks mix-up) must lie beyond K_SE SE
    assert K_SE * se < abs(true), f"{label}: band +-{K_SE * se:.3g} too wide to test"


def life_config(r: float, alpha_days: float, a: float, b: float, *, size: int,
                horizon_days: float = 730.0, reach_per_day: float = 0.004,
                segments: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """A market whose life after the first purchase is exactly BG/NBD.

    One instant prospect stage with a certain checkout and one organic channel whose reach
    spreads first purchases over the horizon (so customers are observed for different
    times); no experience effects, tickets, loyalty, messaging, advocacy or referrals;
    segments differ only in order value (spend heterogeneity for the Gamma-Gamma model).
    """
    c = base_config()
    c["market"] = {"size": size, "segments": segments or {
        "low": {"share": 0.3, "order_value": 0.6},
        "mid": {"share": 0.4, "order_value": 1.0},
        "high": {"share": 0.3, "order_value": 1.6}}}
    c["channels"] = {"organic": {"organic_reach_per_day": reach_per_day}}
    c["journey"] = {"name": "life",
                    "stages": {"shop": {"dwell": {"kind": "fixed", "mean_days": 0.0},
                                        "exits": {"checkout": 1.0}}},
                    "report": {"shop": ["shop"], "purchase": ["purchase"]}}
    c["checkout"] |= {"base_logit": NEVER, "dwell": {"kind": "fixed", "mean_days": 0.0}}
    c["advocacy"] |= {"advocate_prob": 0.0, "wom_q_per_day": 0.0, "referral_rate_per_day": 0.0,
                      "referral_entry_stage": "shop", "program": False}
    c["experience"] |= {"churn_per_point": 0.0, "leave_after_bad": 0.0,
                        "advocacy_per_point": 0.0}
    c["support"]["issue_prob"] = 0.0
    c["loyalty"]["enabled"] = False
    for key in ("newsletter", "recommendations", "cross_sell", "thank_you"):
        c["retention"]["messaging"][key] = False
    c["retention"]["model"] = "repeat_purchase"
    c["retention"]["repeat"] = {"r": r, "alpha_days": alpha_days, "a": a, "b": b}
    c["run"]["horizon_days"] = float(horizon_days)
    c["run"]["engine"] = "agent"  # the exact reference engine, whatever the market size
    return c


def order_value_truth(cfg: dict[str, Any]) -> tuple[float, float]:
    """Mean and cv of one order value across customers: lognormal (mean, cv) times the
    segment multiplier, mixed over the segments' shares (every prospect buys)."""
    e, segs = cfg["economics"], cfg["market"]["segments"].values()
    w = np.array([s["share"] for s in segs])
    m = np.array([s.get("order_value", 1.0) for s in segs])
    mean = e["order_value_mean"] * float(w @ m)
    second = e["order_value_mean"] ** 2 * (1 + e["order_value_cv"] ** 2) * float(w @ m**2)
    return mean, math.sqrt(second - mean**2) / mean


def simulated_transactions(cfg: dict[str, Any], seed: int) -> pd.DataFrame:
    """Replication 0 of ``cfg`` exported as a transaction log."""
    result = simulate(build_spec(cfg), seed=seed, replication=0)
    p = result.purchases
    return transactions.transactions_from_run(
        pd.DataFrame({"customer": p["customer"], "time": p["time"], "value": p["value"]}), START)


def generated_transactions(r: float, alpha_days: float, a: float, b: float, p: float, q: float,
                           gamma: float, n: int, days: int, seed: int) -> pd.DataFrame:
    """Transactions drawn from the BG/NBD and Gamma-Gamma generative models: first
    purchases uniform over the first 60% of ``days``, Poisson(lambda) purchases after
    them, drop-out p after each repeat purchase, each value Gamma(p, nu)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha_days, n)
    drop = rng.beta(a, b, n)
    nu = rng.gamma(q, 1 / gamma, n)
    first = rng.uniform(0, 0.6 * days, n)
    rows = []
    for i in range(n):
        t = first[i]
        rows.append((i, t))
        while True:
            t += rng.exponential(1 / lam[i])
            if t > days:
                break
            rows.append((i, t))
            if rng.random() < drop[i]:
                break
    who = np.array([c for c, _ in rows])
    when = np.array([t for _, t in rows])
    value = rng.gamma(p, 1 / nu[who])
    return transactions.transactions_from_run(
        pd.DataFrame({"customer": who, "time": when, "value": value}), START)


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    table.to_csv(path, index=False)
    return path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------- likelihoods vs independent evaluation
BGNBD_POINTS = [(0.9, 60.0, 1.5, 6.0), (2.5, 12.0, 3.0, 2.5)]
CUSTOMERS = [(0, 0.0, 30.0), (1, 10.0, 30.0), (4, 25.0, 40.0), (2, 3.0, 90.0)]


def _integrate(f, params: tuple[float, float, float, float]) -> float:
    """E[f(lambda, p)] under lambda ~ Gamma(r, alpha), p ~ Beta(a, b), by adaptive
    quadrature (scipy's dblquad) of f times the two densities."""
    r, alpha, a, b = params
    lam_max = stats.gamma.ppf(1 - 1e-13, r, scale=1 / alpha)
    log_norm = r * math.log(alpha) - math.lgamma(r) - (math.lgamma(a) + math.lgamma(b)
                                                       - math.lgamma(a + b))

    def integrand(p: float, lam: float) -> float:
        if lam <= 0 or p <= 0 or p >= 1:
            return 0.0
        log_density = ((r - 1) * math.log(lam) - alpha * lam + (a - 1) * math.log(p)
                       + (b - 1) * math.log1p(-p) + log_norm)
        return f(lam, p) * math.exp(log_density)

    value, _ = integrate.dblquad(integrand, 0, lam_max, 0, 1, epsabs=1e-13, epsrel=1e-10)
    return value


def _poisson_pmf(k: int, mu: float) -> float:
    return math.exp(k * math.log(mu) - mu - math.lgamma(k + 1)) if mu > 0 else float(k == 0)


@pytest.mark.parametrize("params", BGNBD_POINTS)
def test_bgnbd_likelihood_matches_integration(params: tuple[float, ...]) -> None:
    """Equation (6) of Fader, Hardie & Lee (2005) against the individual likelihood
    (1-p)^x lambda^x e^(-lambda T) + [x>0] p (1-p)^(x-1) lambda^x e^(-lambda t_x)
    integrated over the Gamma and Beta mixing distributions."""
    for x, t_x, big_t in CUSTOMERS:
        def individual(lam: float, p: float, x=x, t_x=t_x, big_t=big_t) -> float:
            alive = (1 - p) ** x * lam**x * math.exp(-lam * big_t)
            gone = p * (1 - p) ** (x - 1) * lam**x * math.exp(-lam * t_x) if x else 0.0
            return alive + gone

        expected = math.log(_integrate(individual, params))
        got = buying.bgnbd_loglik(params, np.array([x]), np.array([t_x]), np.array([big_t]))[0]
        assert got == pytest.approx(expected, abs=1e-6), (x, t_x, big_t)


@pytest.mark.parametrize("params", BGNBD_POINTS)
def test_bgnbd_pmf_matches_integration(params: tuple[float, ...]) -> None:
    """P(X(t) = x) against the generative model summed directly: given lambda and p, x
    purchases in (0, t] and still alive, or x purchases with the drop-out after the x-th;
    integrated over lambda and p. The pmf sums to 1 and its mean is E[X(t)]."""
    t = 45.0
    for x in range(5):
        def conditional(lam: float, p: float, x=x) -> float:
            poisson = _poisson_pmf(x, lam * t)
            if x == 0:
                return poisson
            at_least = 1 - sum(_poisson_pmf(j, lam * t) for j in range(x))
            return (1 - p) ** x * poisson + p * (1 - p) ** (x - 1) * at_least

        got = float(buying.bgnbd_pmf(params, x, np.array([t]))[0])
        assert got == pytest.approx(_integrate(conditional, params), abs=1e-9), x
    pmf = np.array([buying.bgnbd_pmf(params, x, np.array([t]))[0] for x in range(400)])
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    assert pmf @ np.arange(400) == pytest.approx(buying.bgnbd_expected(params, [t])[0], rel=1e-8)


@pytest.mark.parametrize("params", BGNBD_POINTS)
def test_bgnbd_expectations_match_closed_forms(params: tuple[float, ...]) -> None:
    """E[X(t)] (equation 9) and E[Y(t) | x, t_x, T] (equation 10) with scipy's 2F1, and
    P(alive) (equation 11) against the ratio of integrals of the alive branch."""
    r, alpha, a, b = params
    t = np.array([7.0, 30.0, 365.0, 2000.0])
    closed = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r
                                      * special.hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    np.testing.assert_allclose(buying.bgnbd_expected(params, t), closed, rtol=1e-9)
    x = np.array([c[0] for c in CUSTOMERS])
    t_x = np.array([c[1] for c in CUSTOMERS])
    big_t = np.array([c[2] for c in CUSTOMERS])
    for horizon in (10.0, 180.0):
        num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + big_t) / (alpha + big_t + horizon))
                                           ** (r + x) * special.hyp2f1(
            r + x, b + x, a + b + x - 1, horizon / (alpha + big_t + horizon)))
        den = 1 + (x > 0) * a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)
        np.testing.assert_allclose(
            buying.bgnbd_conditional_expected(params, horizon, x, t_x, big_t), num / den, rtol=1e-9)
    alive = buying.bgnbd_p_alive(params, x, t_x, big_t)
    for i, (xi, txi, ti) in enumerate(CUSTOMERS):
        on = _integrate(lambda lam, p, xi=xi, ti=ti: (1 - p) ** xi * lam**xi
                        * math.exp(-lam * ti), params)
        total = math.exp(buying.bgnbd_loglik(params, [xi], [txi], [ti])[0])
        assert alive[i] == pytest.approx(on / total, rel=1e-6)


@pytest.mark.parametrize("params", BGNBD_POINTS)
def test_discounted_purchases_match_integral(params: tuple[float, ...]) -> None:
    """DET = integral of e^(-delta s) dE[Y(s)] over (0, H] = e^(-delta H) E[Y(H)] +
    delta * integral of e^(-delta s) E[Y(s)] ds, with E[Y(s) | x, t_x, T] from the
    closed form (2F1); new customers (x = T = 0) and customers with a history."""
    r, alpha, a, b = params
    delta, horizon = math.log(1.1) / 365 * 3, 1000.0  # a steep rate, to make it count
    for x, t_x, big_t in [(0, 0.0, 0.0), *CUSTOMERS]:
        def expected(s: float, x=x, t_x=t_x, big_t=big_t) -> float:
            num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + big_t) / (alpha + big_t + s))
                                               ** (r + x) * special.hyp2f1(
                r + x, b + x, a + b + x - 1, s / (alpha + big_t + s)))
            den = 1 + (x > 0) * a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)
            return num / den

        tail, _ = integrate.quad(lambda s: math.exp(-delta * s) * expected(s), 0, horizon,
                                 epsrel=1e-11, limit=200)
        want = math.exp(-delta * horizon) * expected(horizon) + delta * tail
        got = buying.bgnbd_discounted_purchases(params, np.array([x]), np.array([t_x]),
                                             np.array([big_t]), delta, horizon)[0]
        assert got == pytest.approx(want, rel=1e-7), (x, t_x, big_t)
    # no discounting: the expected purchases themselves
    got = buying.bgnbd_discounted_purchases(params, np.array([3]), np.array([20.0]),
                                         np.array([50.0]), 0.0, 200.0)[0]
    assert got == pytest.approx(
        buying.bgnbd_conditional_expected(params, 200.0, np.array([3]), np.array([20.0]),
                                       np.array([50.0]))[0], rel=1e-9)


@pytest.mark.parametrize("params", [(6.0, 4.0, 15.0), (1.5, 9.0, 300.0)])
def test_gamma_gamma_matches_integration(params: tuple[float, float, float]) -> None:
    """The density of a customer's mean value (x values Gamma(p, nu): the mean is
    Gamma(p x, rate nu x)) integrated over nu ~ Gamma(q, gamma); the mean and cv of one
    value (``gg_order_value``) from E[p / nu] and E[p (p + 1) / nu^2]."""
    p, q, g = params
    for x, m in [(1, 2.0), (3, 5.5), (10, 3.1), (2, 40.0)]:
        want, _ = integrate.quad(lambda nu, x=x, m=m: stats.gamma.pdf(m, p * x, scale=1 / (nu * x))
                                 * stats.gamma.pdf(nu, q, scale=1 / g), 0, np.inf,
                                 epsabs=1e-300, epsrel=1e-11, limit=200)
        assert buying.gg_loglik(params, np.array([x]), np.array([m]))[0] == pytest.approx(
            math.log(want), abs=1e-7)
    mean = integrate.quad(lambda nu: p / nu * stats.gamma.pdf(nu, q, scale=1 / g), 0, np.inf)[0]
    second = integrate.quad(lambda nu: p * (p + 1) / nu**2 * stats.gamma.pdf(nu, q, scale=1 / g),
                            0, np.inf)[0]
    got_mean, got_cv = buying.gg_order_value(params)
    assert got_mean == pytest.approx(mean, rel=1e-8)
    assert got_cv == pytest.approx(math.sqrt(second - mean**2) / mean, rel=1e-7)
    # E[Z | x, m] is the posterior mean of p / nu: nu | x, m ~ Gamma(q + p x, gamma + m x)
    x, m = 4, 7.0
    assert buying.gg_conditional_mean(params, np.array([x]), np.array([m]))[0] == pytest.approx(
        p * (g + m * x) / (q + p * x - 1), rel=1e-12)


def test_parameter_intervals_are_log_scale_wald() -> None:
    """The fits run on log(theta), so the 95% interval is exp(log theta -+ 1.96 se/theta):
    positive even when the SE exceeds the estimate, and symmetric on the log scale."""
    est, se = np.array([0.2, 5.0]), np.array([0.3, 0.5])
    f = mle.MLFit(("x", "y"), est, se, np.diag(se**2), -1.0, 10, 1, 1, 1)
    lo, hi = f.interval()
    assert np.all(lo > 0)
    np.testing.assert_allclose(np.log(hi) - np.log(est), stats.norm.ppf(0.975) * se / est,
                               rtol=1e-6)
    np.testing.assert_allclose(np.log(est) - np.log(lo), np.log(hi) - np.log(est))


@pytest.mark.parametrize("kind", funnel.FIT_KINDS)
def test_dwell_families_match_scipy(kind: str) -> None:
    """Log density and survival of each dwell family against scipy.stats, and the native
    parameters give the simulator's (mean, cv) (``sim.model.distributions.make_dwell``)."""
    from sim.model.distributions import make_dwell

    d = np.array([0.05, 0.7, 2.0, 9.0])
    dwell = make_dwell(kind, 3.0, None if kind == "exponential" else 0.7)
    theta = (dwell.scale,) if kind == "exponential" else (dwell.shape, dwell.scale)
    frozen = {"exponential": stats.expon(scale=dwell.scale),
              "gamma": stats.gamma(dwell.shape, scale=dwell.scale),
              "lognormal": stats.lognorm(dwell.shape, scale=dwell.scale),
              "weibull": stats.weibull_min(dwell.shape, scale=dwell.scale)}[kind]
    np.testing.assert_allclose(funnel.dwell_logpdf(kind, theta, d), frozen.logpdf(d), rtol=1e-10)
    np.testing.assert_allclose(funnel.dwell_logsf(kind, theta, d), frozen.logsf(d), rtol=1e-8)
    mean, cv = funnel._mean_cv(kind, theta)
    assert (mean, cv) == pytest.approx((3.0, dwell.cv), rel=1e-9)


# --------------------------------------------------------- transaction round trips
GENERATED = {
    # name: (r, alpha_days, a, b, p, q, gamma, customers, days, unit, seed)
    "days": (0.9, 60.0, 1.5, 6.0, 6.0, 4.0, 75.0, 3000, 730, "day", 101),
    "weeks": (2.0, 35.0, 0.9, 2.5, 3.0, 8.0, 350.0, 2500, 730, "week", 202),
}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=() if name == "days" else pytest.mark.slow) for name in GENERATED])
def test_transactions_round_trip_generated(name: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Transactions drawn from BG/NBD + Gamma-Gamma (seed in GENERATED) through the
    command line: r, alpha_days, a, b, p, q, gamma within 4 SE of the truth, the configs
    in days and the simulator's parametrisation, the fit's files written."""
    r, alpha_days, a, b, p, q, g, n, days, unit, seed = GENERATED[name]
    src = write_csv(generated_transactions(r, alpha_days, a, b, p, q, g, n, days, seed),
                    tmp_path / f"shop_{name}.csv")
    code, out, err = run_cli(["transactions", str(src), "--unit", unit, "--config-dir",
                              str(tmp_path / "configs"), "--out", str(tmp_path / "out"),
                              "--starts", "4", "--no-plots"], capsys)
    assert code == 0, err
    assert f"fitted_shop_{name}.yaml" in out
    doc = json.loads((tmp_path / "out" / "fit.json").read_text())
    bg, gg = doc["bgnbd"]["parameters"], doc["gamma_gamma"]["parameters"]
    per_unit = 7.0 if unit == "week" else 1.0
    assert_within(bg["r"]["estimate"], bg["r"]["se"], r, f"{name} r")
    assert_within(bg["alpha"]["estimate"], bg["alpha"]["se"], alpha_days / per_unit,
                  f"{name} alpha per {unit}")
    assert_within(doc["bgnbd"]["alpha_days"]["estimate"], doc["bgnbd"]["alpha_days"]["se"],
                  alpha_days, f"{name} alpha_days")
    assert_within(bg["a"]["estimate"], bg["a"]["se"], a, f"{name} a")
    assert_within(bg["b"]["estimate"], bg["b"]["se"], b, f"{name} b")
    for key, true in (("p", p), ("q", q), ("gamma", g)):
        assert_within(gg[key]["estimate"], gg[key]["se"], true, f"{name} {key}")
    mean, _ = buying.gg_order_value((p, q, g))
    assert_within(doc["gamma_gamma"]["order_value_mean"],
                  doc["gamma_gamma"]["order_value_mean_se"], mean, f"{name} mean value")
    assert doc["bgnbd"]["starts"] == 4 and doc["bgnbd"]["at_best"] >= 2

    retention = yaml.safe_load((tmp_path / "configs" / "retention" /
                                f"fitted_shop_{name}.yaml").read_text())
    assert retention["model"] == "repeat_purchase"
    assert retention["repeat"]["alpha_days"] == pytest.approx(
        doc["bgnbd"]["alpha_days"]["estimate"], rel=1e-5)
    assert retention["repeat"]["r"] == pytest.approx(bg["r"]["estimate"], rel=1e-5)
    text = (tmp_path / "configs" / "retention" / f"fitted_shop_{name}.yaml").read_text()
    assert "sha256" in text and src.name in text and str(tmp_path) not in text
    economics = yaml.safe_load((tmp_path / "configs" / "economics" /
                                f"fitted_shop_{name}.yaml").read_text())
    assert economics["order_value_mean"] == pytest.approx(
        doc["gamma_gamma"]["order_value_mean"], rel=1e-5)
    for f in ("report.md", "customers.csv", "repeat_histogram.csv", "tracking.csv"):
        assert (tmp_path / "out" / f).is_file(), f
    hist = pd.read_csv(tmp_path / "out" / "repeat_histogram.csv")
    assert hist["observed"].sum() == doc["bgnbd"]["n"]
    assert hist["expected"].sum() == pytest.approx(doc["bgnbd"]["n"], rel=1e-5)  # %.6g in CSV


def test_fitted_retention_composes_and_runs(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The written files are config groups: composed with the schema (a search path entry,
    as ``--config-dir`` gives) and run by the simulator, with the fitted values."""
    src = write_csv(generated_transactions(*GENERATED["days"][:9], seed=7), tmp_path / "t.csv")
    code, out, err = run_cli(["transactions", str(src), "--name", "demo", "--config-dir",
                              str(tmp_path / "cfg"), "--out", str(tmp_path / "out"),
                              "--starts", "2", "--no-plots"], capsys)
    assert code == 0, err
    written = yaml.safe_load((tmp_path / "cfg" / "retention" / "fitted_demo.yaml").read_text())
    # the command printed next names the folder and the fitted business, one choice
    assert f"next: python -m sim --config-dir {tmp_path / 'cfg'} business=fitted_demo\n" in out
    cfg = compose_config([f"hydra.searchpath=[file://{tmp_path / 'cfg'}]", "business=fitted_demo",
                          "run=smoke", "run.replications=1"])
    assert dict(cfg.retention.repeat) == written["repeat"]
    assert cfg.economics.gross_margin == _base()["economics"]["gross_margin"]  # the baseline's
    # the fitted business simulated as fitted: Gamma-Gamma spend, the fit's effects neutral
    spend = yaml.safe_load((tmp_path / "cfg" / "economics" / "fitted_demo.yaml").read_text())
    assert cfg.economics.order_value_model == "gamma_gamma"
    assert dict(cfg.economics.gamma_gamma) == spend["gamma_gamma"]
    assert cfg.experience.churn_per_point == 0 and cfg.experience.leave_after_bad == 0
    for segment in cfg.market.segments.values():
        assert (segment.order_value, segment.purchase_rate, segment.churn) == (1, 1, 1)
    assert cfg.uncertainty.retention.repeat.dist == "joint_lognormal"
    # each group alone still composes (retention=... keeps the baseline's other effects)
    alone = compose_config([f"hydra.searchpath=[file://{tmp_path / 'cfg'}]",
                            "retention=fitted_demo", "run=smoke"])
    assert dict(alone.retention.repeat) == written["repeat"]
    import sim

    run = sim.run(cfg)
    assert run.spec.retention.alpha_days == written["repeat"]["alpha_days"]
    assert len(run.purchases()) > 0
    # a second run does not overwrite without --force
    code, _, err = run_cli(["transactions", str(src), "--name", "demo", "--config-dir",
                            str(tmp_path / "cfg"), "--no-plots"], capsys)
    assert code == 2 and "exists already" in err and "--force" in err


SIMULATED = {
    # name: (r, alpha_days, a, b, market size, seed)
    "baseline": (0.9, 60.0, 1.5, 6.0, 4000, 11),
    "frequent": (2.0, 20.0, 2.5, 10.0, 2500, 12),
    "fickle": (0.6, 40.0, 0.8, 1.5, 5000, 13),
}


def _simulator_round_trip(name: str, holdout: bool = False) -> None:
    r, alpha_days, a, b, size, seed = SIMULATED[name]
    cfg = life_config(r, alpha_days, a, b, size=size)
    table = simulated_transactions(cfg, seed)
    # day 730 of the run is 2025-12-31; with a holdout, its last half year
    data = transactions.prepare_transactions(
        table, calibration_end="2025-06-30" if holdout else "2025-12-31",
        holdout_end="2025-12-31" if holdout else None)
    result = transactions.fit_transactions(data, n_starts=4)
    bg = result.bgnbd
    assert_within(bg["r"], bg.se_of("r"), r, f"{name} r")
    assert_within(*result.alpha_days, alpha_days, f"{name} alpha_days")
    assert_within(bg["a"], bg.se_of("a"), a, f"{name} a")
    assert_within(bg["b"], bg.se_of("b"), b, f"{name} b")
    mean, cv = order_value_truth(cfg)
    ov = result.order_value()
    assert_within(ov["order_value_mean"], ov["order_value_mean_se"], mean, f"{name} mean value")
    assert_within(ov["order_value_cv"], ov["order_value_cv_se"], cv, f"{name} cv of value")
    if holdout:
        # each customer's holdout purchases minus the prediction: mean 0 within K_SE x
        # SD / sqrt(n) (customers are independent given the parameters)
        c = result.customers
        diff = (c["purchases_holdout"] - c["predicted_holdout"]).to_numpy()
        se = diff.std(ddof=1) / math.sqrt(diff.size)
        assert abs(diff.mean()) <= K_SE * se, f"{name} holdout: {diff.mean():.4f} (SE {se:.3g})"


def test_transactions_from_run_keeps_replications_apart() -> None:
    """Customer numbers restart in every replication: exported together, the same number
    in two replications is two customers (two histories), and one replication keeps the
    simulator's own numbers."""
    orders = pd.DataFrame({"replication": [0, 0, 1, 1, 1], "customer": [7, 7, 7, 3, 7],
                           "time": [1.0, 5.0, 2.0, 4.0, 9.0],
                           "value": [10.0, 20.0, 30.0, 40.0, 50.0]})
    log = transactions.transactions_from_run(orders, START)
    assert log["customer_id"].tolist() == ["0-7", "0-7", "1-7", "1-3", "1-7"]
    data = transactions.prepare_transactions(log)
    assert len(data.customers) == 3
    one = transactions.transactions_from_run(orders[orders["replication"] == 1], START)
    assert one["customer_id"].tolist() == [7, 3, 7]


@pytest.mark.slow
def test_transactions_round_trip_simulator() -> None:
    """Orders simulated by the engine with BG/NBD retention (seed in SIMULATED), exported
    as a transaction log and fitted: r, alpha_days, a, b within 4 SE, and the order
    value's mean and cv (lognormal times segment multipliers) within 4 SE of the
    Gamma-Gamma-implied ones."""
    _simulator_round_trip("baseline")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SIMULATED))
def test_transactions_round_trip_simulator_sets(name: str) -> None:
    """Every parameter set of SIMULATED, with a half-year holdout whose per-customer
    predictions are unbiased within 4 SE."""
    _simulator_round_trip(name, holdout=True)


# ------------------------------------------------------------- journey round trips
@functools.cache
def _journey_preset(preset: str) -> dict[str, Any]:
    return to_container(compose_config([f"journey={preset}"]))["journey"]


def _preset(preset: str) -> dict[str, Any]:
    return copy.deepcopy(_journey_preset(preset))


def journey_config(preset: str, size: int, horizon_days: float,
                   dwell: dict[str, dict[str, Any]] | None = None,
                   qualities: dict[str, float] | None = None) -> dict[str, Any]:
    """A journey preset with every live lever off (one segment, channel qualities 1 unless
    given, no social proof or referrals), so exits are the configured probabilities."""
    c = base_config()
    c["journey"] = _preset(preset) | {"social_proof": 0.0, "content_quality": 1.0,
                                 "site_usability": 1.0}
    for name, d in (dwell or {}).items():
        c["journey"]["stages"][name]["dwell"] = d
    c["market"] = {"size": size, "segments": {"all": {"share": 1.0}}}
    for name, ch in c["channels"].items():
        ch["quality"] = (qualities or {}).get(name, 1.0)
    c["advocacy"] |= {"referral_rate_per_day": 0.0, "wom_q_per_day": 0.0}
    c["retention"]["model"] = "none"
    c["support"]["issue_prob"] = 0.0
    c["run"]["horizon_days"] = float(horizon_days)
    c["run"]["engine"] = "agent"  # the exact reference engine, whatever the market size
    return c


def simulated_journey(cfg: dict[str, Any], seed: int, keep_lost: bool) -> pd.DataFrame:
    spec = build_spec(cfg)
    result = simulate(spec, seed=seed, replication=0)
    ev = result.events
    events = pd.DataFrame({"customer": ev["customer"], "time": ev["time"],
                           "state": np.array(spec.states)[ev["state"]]})
    channels = pd.Series(np.array(spec.channel_names)[result.customers["channel"]])
    table = journey.journey_from_run(events, channels, START)
    return table if keep_lost else table[table["stage"] != "lost"]


def check_journey(result: journey.JourneyFit, cfg: dict[str, Any], label: str) -> None:
    """Every stage's dwell mean and cv and every exit probability (lost included) within
    4 SE of the configured values; non-exponential kinds recognised (an exponential may
    lose to the gamma or Weibull that nests it)."""
    for name, st in cfg["journey"]["stages"].items():
        f = result.stages[name]
        true_kind = st["dwell"]["kind"]
        true_cv = 1.0 if true_kind == "exponential" else st["dwell"]["cv"]
        if true_kind != "exponential":
            assert f.dwell.kind == true_kind, f"{label} {name}: chose {f.dwell.kind}"
        assert_within(f.dwell.mean_days, f.dwell.mean_se, st["dwell"]["mean_days"],
                      f"{label} {name} mean_days")
        if f.dwell.kind != "exponential":
            assert_within(f.dwell.cv, f.dwell.cv_se, true_cv, f"{label} {name} cv")
        probs = dict(st["exits"])
        probs["lost"] = 1 - sum(probs.values())
        got = {e.target: e for e in f.exits}
        assert set(got) == {t for t, p in probs.items() if p > 0}, (label, name, set(got))
        for target, p in probs.items():
            e = got[target]
            assert_within(e.prob, e.se, p, f"{label} {name} -> {target}")
            assert e.low < e.prob < e.high


@pytest.mark.parametrize("keep_lost", [
    pytest.param(True, id="lost-recorded"),
    pytest.param(False, id="lost-inferred", marks=pytest.mark.slow)])
def test_journey_round_trip_simulator(keep_lost: bool, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The six-stage preset (exponential, gamma and lognormal dwell times, self, back and
    forward exits) simulated for a year with seed 21, its state entries exported as a
    journey log (with or without the ``lost`` entries) and fitted through the command
    line: dwell kinds, means, cvs and exit probabilities within 4 SE of the preset's."""
    cfg = journey_config("six_stage", 20_000, 365)
    src = write_csv(simulated_journey(cfg, 21, keep_lost), tmp_path / "events.csv")
    code, _, err = run_cli(["journey", str(src), "--end", "2024-12-31", "--config-dir",
                              str(tmp_path / "cfg"), "--out", str(tmp_path / "out"),
                              "--no-plots"], capsys)
    assert code == 0, err
    data = journey.prepare_journey(pd.read_csv(src, dtype=str), end="2024-12-31")
    assert data.lost_recorded is keep_lost
    assert data.order == ("awareness", "consideration", "intent")
    check_journey(journey.fit_journey(data), cfg, "six_stage")
    written = yaml.safe_load((tmp_path / "cfg" / "journey" / "fitted_events.yaml").read_text())
    assert list(written["stages"]) == ["awareness", "consideration", "intent"]
    exits = pd.read_csv(tmp_path / "out" / "exits.csv")
    intent = exits[(exits["stage"] == "intent") & (exits["exit"] == "checkout")]
    assert written["stages"]["intent"]["exits"]["checkout"] == pytest.approx(
        float(intent["probability"].iloc[0]), abs=1e-6)


@pytest.mark.slow
def test_fitted_journey_composes_and_runs(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The written journey composes (``journey=fitted_<name>`` on a search path) and the
    simulator runs on it; stage names of the data's own (here without 'consideration')
    get the referral entry override named in the file."""
    cfg = journey_config("four_stage", 8000, 200)
    table = simulated_journey(cfg, 5, keep_lost=True)
    table["stage"] = table["stage"].replace({"consideration": "browse"})
    src = write_csv(table, tmp_path / "shop events.csv")
    code, out, err = run_cli(["journey", str(src), "--config-dir", str(tmp_path / "cfg"),
                              "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    path = tmp_path / "cfg" / "journey" / "fitted_shop_events.yaml"
    assert "advocacy.referral_entry_stage=browse" in path.read_text()
    assert "advocacy.referral_entry_stage=browse" in out
    composed = compose_config([f"hydra.searchpath=[file://{tmp_path / 'cfg'}]",
                               "journey=fitted_shop_events", "advocacy.referral_entry_stage=browse",
                               "run=smoke", "run.replications=1"])
    assert list(composed.journey.stages) == ["awareness", "browse", "decision"]
    import sim

    run = sim.run(composed)
    assert run.summary["purchases"].mean > 0
    for f in ("dwell.png", "exits.png", "report.md", "fit.json", "channels.csv"):
        assert (tmp_path / "out" / f).is_file(), f


JOURNEYS = {
    # name: (preset, dwell overrides, seed)
    "five_weibull": ("five_stage", {"consideration": {"kind": "weibull", "mean_days": 5.0,
                                                      "cv": 0.6}}, 31),
    "four_lognormal": ("four_stage", {"awareness": {"kind": "lognormal", "mean_days": 1.5,
                                                    "cv": 1.5}}, 32),
    "decision_gamma": ("six_stage_decision", {"decision": {"kind": "gamma", "mean_days": 4.0,
                                                           "cv": 0.5}}, 33),
}


@pytest.mark.slow
@pytest.mark.parametrize("keep_lost", [True, False], ids=["lost-recorded", "lost-inferred"])
@pytest.mark.parametrize("name", list(JOURNEYS))
def test_journey_round_trip_presets(name: str, keep_lost: bool) -> None:
    """Every preset with dwell families of its own (seed in JOURNEYS), 40,000 people for
    a year: dwell kinds, means, cvs and exits within 4 SE."""
    preset, dwell, seed = JOURNEYS[name]
    cfg = journey_config(preset, 40_000, 365, dwell)
    data = journey.prepare_journey(simulated_journey(cfg, seed, keep_lost), end="2024-12-31")
    check_journey(journey.fit_journey(data), cfg, name)


@pytest.mark.slow
def test_channel_multiplier_recovers_quality_ratio() -> None:
    """Two channels whose prospects have forward-exit odds multipliers 1.6 and 1 (seed 41):
    the ratio of their fitted multipliers is 1.6 within 4 SE (delta method on the log
    ratio, the two estimates taken as independent)."""
    cfg = journey_config("five_stage", 60_000, 365)
    cfg["channels"] = {"good": {"organic_reach_per_day": 0.002, "quality": 1.6},
                       "plain": {"organic_reach_per_day": 0.002, "quality": 1.0}}
    data = journey.prepare_journey(simulated_journey(cfg, 41, True), end="2024-12-31")
    ch = journey.fit_journey(data).channels.set_index("channel")
    ratio = ch.loc["good", "multiplier"] / ch.loc["plain", "multiplier"]
    se = ratio * math.hypot(ch.loc["good", "se"] / ch.loc["good", "multiplier"],
                            ch.loc["plain", "se"] / ch.loc["plain", "multiplier"])
    assert_within(ratio, se, 1.6, "quality ratio")


# ------------------------------------------------------------------------ bad input
GOOD = "customer_id,date,amount\nA,2024-01-02,10\nA,2024-02-02,12.5\nB,2024-01-05,8\n"
TRANSACTION_CASES = {
    "missing column": ("customer_id,day,amount\nA,2024-01-02,10\n",
                       ["missing column(s) 'date'", "--date-col"]),
    "unparsable date": (GOOD + "B,2024-13-45,3\n", ["line 5", "'2024-13-45'", "not an ISO date"]),
    "empty date": (GOOD + "B,,3\n", ["line 5", "empty date"]),
    "negative amount": (GOOD.replace("12.5", "-12.5"), ["line 3", "-12.5", "negative"]),
    "amount not a number": (GOOD.replace("12.5", "twelve"), ["line 3", "'twelve'",
                                                             "not a number"]),
    "empty customer": (GOOD.replace("B,2024-01-05", ",2024-01-05"), ["line 4",
                                                                      "empty customer_id"]),
    "empty file": ("", ["empty"]),
    "header only": ("customer_id,date,amount\n", ["no data rows"]),
    "ragged rows": (GOOD + "C,2024-03-01,5,extra,more\n", ["not a well-formed CSV"]),
    "single customer": ("customer_id,date,amount\nA,2024-01-02,10\nA,2024-02-02,12\n",
                        ["only one customer", "'A'"]),
    "no repeat buyers": ("customer_id,date,amount\nA,2024-01-02,10\nB,2024-01-03,12\n"
                         "B,2024-01-03,5\n", ["no customer bought again"]),
}


@pytest.mark.parametrize("case", list(TRANSACTION_CASES))
def test_bad_transactions(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One line on stderr naming the problem (and the file line), status 2, nothing
    written."""
    text, needles = TRANSACTION_CASES[case]
    src = tmp_path / "tx.csv"
    src.write_text(text)
    code, out, err = run_cli(["transactions", str(src), "--config-dir", str(tmp_path / "cfg"),
                              "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "cfg").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(("options", "needle"), [
    (["--calibration-end", "yesterday"], "--calibration-end 'yesterday' is not an ISO date"),
    (["--calibration-end", "2023-01-01"], "before the first transaction"),
    (["--calibration-end", "2024-02-01", "--holdout-end", "2024-01-15"], "--holdout-end"),
    (["--gross-margin", "1.5"], "--gross-margin"),
    (["--amount-col", "value"], "missing column(s) 'value'"),
])
def test_bad_options(options: list[str], needle: str, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(GOOD)
    code, _, err = run_cli(["transactions", str(src), "--config-dir", str(tmp_path), *options],
                           capsys)
    assert code == 2 and needle in err and err.count("\n") == 1, err


JOURNEY_GOOD = ("customer_id,stage,timestamp\n1,awareness,2024-01-01\n1,checkout,2024-01-03\n"
                "2,awareness,2024-01-02\n")
JOURNEY_CASES = {
    "missing column": ("customer_id,step,timestamp\n1,awareness,2024-01-01\n",
                       ["missing column(s) 'stage'", "--stage-col"]),
    "unparsable timestamp": (JOURNEY_GOOD + "2,consideration,soon\n", ["line 5", "'soon'"]),
    "empty stage": (JOURNEY_GOOD + "2,,2024-01-04\n", ["line 5", "empty stage"]),
    "empty file": ("", ["empty"]),
    "single customer": ("customer_id,stage,timestamp\n1,awareness,2024-01-01\n"
                        "1,checkout,2024-01-02\n", ["1 customer", "'1'"]),
    "no checkout": ("customer_id,stage,timestamp\n1,awareness,2024-01-01\n"
                    "2,awareness,2024-01-02\n1,consideration,2024-01-03\n",
                    ["no customer reached a checkout stage", "--checkout"]),
    "reserved name": (JOURNEY_GOOD + "2,churned,2024-01-05\n", ["'churned'", "reserves"]),
}


@pytest.mark.parametrize("case", list(JOURNEY_CASES))
def test_bad_journey(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, needles = JOURNEY_CASES[case]
    src = tmp_path / "events.csv"
    src.write_text(text)
    code, _, err = run_cli(["journey", str(src), "--config-dir", str(tmp_path / "cfg"),
                            "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not (tmp_path / "cfg").exists() and not (tmp_path / "out").exists()


def test_unidentified_spend_says_what_to_do(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    """Every customer spends alike (no spread of spend between customers, seed 3): the
    Gamma-Gamma q runs away; the message names the parameter and --no-spend, which then
    fits repeat buying alone."""
    table = generated_transactions(0.9, 60.0, 1.5, 6.0, 1.0, 3.0, 1.0, 800, 730, seed=3)
    table["amount"] = 20.0
    src = write_csv(table, tmp_path / "flat.csv")
    code, _, err = run_cli(["transactions", str(src), "--config-dir", str(tmp_path / "cfg"),
                            "--out", str(tmp_path / "out"), "--starts", "2"], capsys)
    assert code == 2 and "Gamma-Gamma" in err and "--no-spend" in err, err
    code, _, err = run_cli(["transactions", str(src), "--config-dir", str(tmp_path / "cfg"),
                            "--out", str(tmp_path / "out"), "--starts", "2", "--no-spend",
                            "--no-plots"], capsys)
    assert code == 0, err
    assert not (tmp_path / "cfg" / "economics").exists()


def test_fit_refuses_data_without_information() -> None:
    """The fitting functions themselves: no repeat buyers, too few customers."""
    with pytest.raises(mle.CalibrationError, match="no customer bought again"):
        buying.fit_bgnbd(np.zeros(5), np.zeros(5), np.full(5, 10.0))
    with pytest.raises(mle.CalibrationError, match="many customers"):
        buying.fit_bgnbd(np.ones(1), np.ones(1), np.full(1, 10.0))
    with pytest.raises(mle.CalibrationError, match="two repeat buyers"):
        buying.fit_gamma_gamma(np.ones(1), np.ones(1))


def test_command_line_module(tmp_path: Path) -> None:
    """``python -m sim.calibrate`` as a process (default folders, in a working directory of
    its own): a bad file gives one line and status 2, and no folder is created."""
    src = tmp_path / "tx.csv"
    src.write_text(GOOD.replace("12.5", "-1"))
    proc = subprocess.run([sys.executable, "-m", "sim.calibrate", "transactions", "tx.csv"],
                          capture_output=True, text=True, check=False, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tx.csv"]
    assert proc.stderr.strip().splitlines() == [
        "error: tx.csv, line 3: amount -1 is negative (refunds and returns are not purchases: "
        "net them against their purchase or drop them)"]
