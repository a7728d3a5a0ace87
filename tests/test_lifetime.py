"""Oracle tests of life after the first purchase (docs: REFERENCES.md).

Covered: repeat buying (BG/NBD: E[X(t)], P(X(t) = 0), calibration of P(alive)), subscriptions
(shifted-beta-geometric survival and per-period churn), the service desk (Erlang C and
Erlang A driving ``sim.engine.desk.serve`` directly, Little's law, and the engine's ticket
rates), lifetime value (Gupta & Lehmann with the first margin paid now), referrals per
advocate-day and their rewards, the loyalty and messaging multipliers, bad experiences, and
the config errors of the new keys.

Every simulation switches off what the closed form leaves out: experience effects
(``churn_per_point`` 0, ``leave_after_bad`` 0), tickets (``issue_prob`` 0), loyalty and
messaging, advocacy; one segment with multipliers 1 unless a multiplier is under test. The
market is a one-stage journey with an instant, certain checkout and organic reach 5 per day,
so every first purchase happens within the first few days (the slowest of N = 10^4 Exp(5)
awareness times is about ln(N) / 5 = 1.8 days), and the horizon leaves every customer
observed for the windows compared.

Every statistical test names its seed and allows ``K_SE`` = 4 standard errors derived from
the sample (each test's docstring or comments say how); at 4 SE a correct mechanism fails one
comparison in about 16,000, so the seeds are not tuned.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import simpy
from scipy import integrate, special, stats

from sim.engine import TICKET_OUTCOMES, SimulationResult, simulate
from sim.engine.desk import TicketLog, serve
from sim.measure.metrics import customer_values
from sim.model.config import compose_config, to_container
from sim.model.spec import ModelSpec, SpecError, build_spec

K_SE = 4.0  # standard errors allowed in every statistical comparison
NEVER = -60.0  # checkout.base_logit: abandonment ~1e-26, the checkout always buys
FAST_REACH = 5.0  # awareness hazard per day: everyone aware (and a buyer) within days
RESOLVED, UNRESOLVED, ABANDONED = (TICKET_OUTCOMES.index(o) for o in TICKET_OUTCOMES)


# ----------------------------------------------------------------------------- helpers
@functools.cache
def _base() -> dict[str, Any]:
    return to_container(compose_config([]))


def base_config() -> dict[str, Any]:
    """The composed baseline as a plain dict (composed once: Hydra is slow to start)."""
    return copy.deepcopy(_base())


def life_config(size: int, horizon_days: float, *, reach_per_day: float = FAST_REACH,
                exit_prob: float = 1.0,
                segments: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """A market where life after the first purchase is all there is to see.

    One prospect stage ``shop`` (instant, to the checkout with ``exit_prob``, the rest lost),
    an instant checkout nobody abandons, one organic channel, and every mechanism the closed
    forms leave out switched off: no experience effects, tickets, loyalty, messaging or
    advocacy. Retention is the baseline's (``repeat_purchase``); tests set their own.
    """
    c = base_config()
    c["market"] = {"size": size, "segments": segments or {"all": {"share": 1.0}}}
    c["channels"] = {"organic": {"organic_reach_per_day": reach_per_day}}
    c["journey"] = {
        "name": "life",
        "stages": {"shop": {"dwell": {"kind": "fixed", "mean_days": 0.0},
                            "exits": {"checkout": exit_prob}}},
        "report": {"shop": ["shop"], "purchase": ["purchase"]},
    }
    c["checkout"] |= {"base_logit": NEVER, "dwell": {"kind": "fixed", "mean_days": 0.0}}
    c["advocacy"] |= {"advocate_prob": 0.0, "wom_q_per_day": 0.0, "referral_rate_per_day": 0.0,
                      "referral_entry_stage": "shop", "program": False}
    c["experience"] |= {"churn_per_point": 0.0, "leave_after_bad": 0.0,
                        "advocacy_per_point": 0.0}
    c["support"]["issue_prob"] = 0.0
    c["loyalty"]["enabled"] = False
    for key in ("newsletter", "recommendations", "cross_sell", "thank_you"):
        c["retention"]["messaging"][key] = False
    c["run"]["horizon_days"] = float(horizon_days)
    return c


def buyer_table(result: SimulationResult) -> dict[str, np.ndarray]:
    """Per buyer: id, t0 (first purchase), purchase ages, churn time (NaN if active)."""
    c, p = result.customers, result.purchases
    t0 = c["t_purchase"]
    buyers = np.flatnonzero(~np.isnan(t0))
    return {"id": buyers, "t0": t0[buyers], "t_churned": c["t_churned"][buyers],
            "purchases": c["purchases"][buyers], "p_customer": p["customer"],
            "p_age": p["time"] - t0[p["customer"]]}


def assert_close(value: float, expected: float, se: float, label: str) -> None:
    assert se > 0, f"{label}: zero standard error"
    z = abs(value - expected) / se
    assert z <= K_SE, f"{label}: {value:.6g} vs {expected:.6g} (SE {se:.2g}, {z:.1f} SE)"


def assert_prob(k: int, n: int, p: float, label: str) -> None:
    """k successes out of n within K_SE binomial SE, sqrt(p (1 - p) / n), of p."""
    assert_close(k / n, p, math.sqrt(p * (1 - p) / n), f"{label} (n={n})")


def assert_mean(x: np.ndarray, expected: float, label: str) -> None:
    """Sample mean within K_SE * sample SD / sqrt(n) of the expected value."""
    assert_close(float(x.mean()), expected, float(x.std(ddof=1)) / math.sqrt(x.size),
                 f"{label} (n={x.size})")


def ratio_estimate(x: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """Rate sum(x) / sum(e) and its SE by linearisation (delta method):
    Var(R) ~ sum (x_i - R e_i)^2 / (sum e_i)^2, valid for independent customers whatever
    the (over-dispersed) law of the counts x_i."""
    rate = x.sum() / e.sum()
    return float(rate), float(math.sqrt(((x - rate * e) ** 2).sum()) / e.sum())


# ----------------------------------------------------------------- BG/NBD closed forms
def bgnbd_mean(t: float, r: float, alpha: float, a: float, b: float) -> float:
    """E[X(t)], repeat purchases in (t0, t0 + t] (Fader, Hardie & Lee 2005, eq. 9; a > 1)."""
    z = t / (alpha + t)
    return (a + b - 1) / (a - 1) * (
        1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))


def bgnbd_p_zero(t: float, r: float, alpha: float) -> float:
    """P(X(t) = 0). Drop-out only follows a repeat purchase, so no repeat means alive all
    along: P(no Poisson(lambda) event in t) = E[e^{-lambda t}] = (alpha / (alpha + t))^r,
    the Gamma(r, alpha) Laplace transform; p does not enter."""
    return (alpha / (alpha + t)) ** r


def bgnbd_p_alive(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, r: float, alpha: float,
                  a: float, b: float) -> np.ndarray:
    """P(alive at T | x repeats, the last at t_x) (Fader, Hardie & Lee 2005, eq. 11)."""
    x = np.asarray(x, dtype=float)
    xs = np.maximum(x, 1.0)  # keeps b + x - 1 > 0 where x = 0 (that branch is unused)
    odds = a / (b + xs - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + xs)
    return np.where(x > 0, 1.0 / (1.0 + odds), 1.0)


def bgnbd_mean_by_quadrature(t: float, r: float, alpha: float, a: float, b: float) -> float:
    """E[X(t)] from the generative process, not from the hypergeometric formula.

    Given (lambda, p) the fatal purchase is the first event of a Poisson process of rate
    lambda p, so the purchases counted are lambda E[min(t, tau)], tau ~ Exp(lambda p):
    E[X(t) | lambda, p] = (1 - e^{-lambda p t}) / p. Averaging e^{-lambda p t} over
    lambda ~ Gamma(r, alpha) gives (alpha / (alpha + p t))^r; the p integral is numeric.
    """
    def integrand(p: float) -> float:
        return -math.expm1(r * math.log(alpha / (alpha + p * t))) / p * stats.beta.pdf(p, a, b)

    return integrate.quad(integrand, 0, 1, limit=200)[0]


def bgnbd_p_alive_by_quadrature(x: int, t_x: float, big_t: float, r: float, alpha: float,
                                a: float, b: float) -> float:
    """P(alive) from the likelihood by numerical integration over lambda and p.

    L(alive) = (1 - p)^x lambda^x e^{-lambda T}; L(dead after the x-th repeat) =
    p (1 - p)^{x-1} lambda^x e^{-lambda t_x} (x > 0); P(alive) = E[L(alive)] / E[L].
    """
    def e_lam(t: float) -> float:
        # lambda = s / (alpha + t) puts the integrand's bulk at s ~ r + x, where quad is
        # accurate (in lambda it is a narrow spike near 0 of a half-line)
        k = alpha + t
        return integrate.quad(lambda s: (s / k) ** x * math.exp(-s * t / k)
                              * stats.gamma.pdf(s / k, r, scale=1 / alpha) / k, 0, np.inf,
                              epsabs=0, epsrel=1e-11, limit=200)[0]

    def e_p(f: Callable[[float], float]) -> float:
        return integrate.quad(lambda p: f(p) * stats.beta.pdf(p, a, b), 0, 1,
                              epsabs=0, epsrel=1e-11, limit=200)[0]

    alive = e_p(lambda p: (1 - p) ** x) * e_lam(big_t)
    dead = e_p(lambda p: p * (1 - p) ** (x - 1)) * e_lam(t_x) if x > 0 else 0.0
    return alive / (alive + dead)


BGNBD = {  # name: (r, alpha_days, a, b, seed)
    "slow_loyal": (1.5, 60.0, 2.5, 5.0, 7101),
    "fast_fickle": (0.6, 25.0, 1.8, 2.4, 7102),
}
BGNBD_SIZE = 12_000
BGNBD_HORIZON = 400.0
BGNBD_WINDOWS = (30.0, 120.0, 365.0)  # days after the first purchase


@pytest.mark.parametrize("name", list(BGNBD))
def test_bgnbd_closed_forms_match_quadrature(name: str) -> None:
    """The hypergeometric E[X(t)] and eq. 11 P(alive) equal independent quadratures."""
    r, alpha, a, b, _ = BGNBD[name]
    for t in BGNBD_WINDOWS:
        assert bgnbd_mean(t, r, alpha, a, b) == pytest.approx(
            bgnbd_mean_by_quadrature(t, r, alpha, a, b), rel=1e-7)
        # P(X(t) = 0): the Gamma mixture of e^{-lambda t}, by quadrature
        p0 = integrate.quad(lambda lam, t=t: math.exp(-lam * t)
                            * stats.gamma.pdf(lam, r, scale=1 / alpha), 0, np.inf)[0]
        assert bgnbd_p_zero(t, r, alpha) == pytest.approx(p0, rel=1e-7)
    for x, t_x, big_t in ((0, 0.0, 200.0), (1, 20.0, 200.0), (3, 150.0, 390.0),
                          (6, 40.0, 300.0)):
        assert bgnbd_p_alive(np.array([x]), np.array([t_x]), np.array([big_t]),
                             r, alpha, a, b)[0] == pytest.approx(
            bgnbd_p_alive_by_quadrature(x, t_x, big_t, r, alpha, a, b), rel=1e-6)


@functools.cache
def bgnbd_run(name: str) -> tuple[ModelSpec, SimulationResult]:
    r, alpha, a, b, seed = BGNBD[name]
    cfg = life_config(BGNBD_SIZE, BGNBD_HORIZON)
    cfg["retention"]["model"] = "repeat_purchase"
    cfg["retention"]["repeat"] = {"r": r, "alpha_days": alpha, "a": a, "b": b}
    spec = build_spec(cfg)
    return spec, simulate(spec, seed=seed, replication=0)


@pytest.mark.parametrize("name", list(BGNBD))
def test_bgnbd_repeat_counts(name: str) -> None:
    """Repeat purchases in (t0, t0 + t]: mean vs E[X(t)], share with none vs
    (alpha / (alpha + t))^r, for t = 30, 120, 365 days (seed in BGNBD).

    Customers are independent, so the mean is within 4 x sample SD / sqrt(n) and the share
    within 4 x sqrt(P0 (1 - P0) / n), n = every buyer (all observed for 365+ days).
    """
    r, alpha, a, b, _ = BGNBD[name]
    _, result = bgnbd_run(name)
    bt = buyer_table(result)
    n = bt["id"].size
    assert n == BGNBD_SIZE  # everyone bought ...
    assert bt["t0"].max() + max(BGNBD_WINDOWS) < BGNBD_HORIZON  # ... early enough
    index = np.searchsorted(bt["id"], bt["p_customer"])
    for t in BGNBD_WINDOWS:
        in_window = (bt["p_age"] > 0) & (bt["p_age"] <= t)
        x = np.bincount(index[in_window], minlength=n)
        assert_mean(x, bgnbd_mean(t, r, alpha, a, b), f"{name} E[X({t:g})]")
        assert_prob(int((x == 0).sum()), n, bgnbd_p_zero(t, r, alpha), f"{name} P(X({t:g})=0)")


@pytest.mark.parametrize("name", list(BGNBD))
def test_bgnbd_p_alive_calibrated(name: str) -> None:
    """P(alive | x, t_x, T) at the horizon against who has not churned (seed in BGNBD).

    Given its own (x, t_x, T) each customer is alive with probability P(alive), independently
    of the others, so the number alive among customers with predictions p_i has mean sum p_i
    and SE sqrt(sum p_i (1 - p_i)): checked overall and in each fifth of the predictions of
    the customers with x > 0 (those with x = 0 are certainly alive: p = 1, SE 0).
    """
    r, alpha, a, b, _ = BGNBD[name]
    _, result = bgnbd_run(name)
    bt = buyer_table(result)
    n = bt["id"].size
    index = np.searchsorted(bt["id"], bt["p_customer"])
    repeat = bt["p_age"] > 0
    x = np.bincount(index[repeat], minlength=n)
    t_x = np.zeros(n)
    np.maximum.at(t_x, index[repeat], bt["p_age"][repeat])
    big_t = BGNBD_HORIZON - bt["t0"]
    alive = np.isnan(bt["t_churned"])
    p = bgnbd_p_alive(x, t_x, big_t, r, alpha, a, b)
    assert np.all(alive[x == 0])
    assert_close(float(alive.sum()), float(p.sum()), math.sqrt((p * (1 - p)).sum()),
                 f"{name} number alive")
    some = x > 0
    edges = np.quantile(p[some], np.linspace(0, 1, 6))
    bins = np.clip(np.searchsorted(edges, p[some], side="right") - 1, 0, 4)
    for k in range(5):
        pk, ak = p[some][bins == k], alive[some][bins == k]
        assert pk.size > 500
        assert_close(float(ak.mean()), float(pk.mean()),
                     math.sqrt((pk * (1 - pk)).sum()) / pk.size,
                     f"{name} P(alive) bin {k} ({pk.min():.2f}-{pk.max():.2f})")


# ------------------------------------------------------------------------ subscriptions
def sbg_survival(t: int | np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """S(t) = B(alpha, beta + t) / B(alpha, beta) (Fader & Hardie 2007)."""
    t = np.asarray(t, dtype=float)
    return np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))


def sbg_pmf(t: int | np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta), t >= 1."""
    t = np.asarray(t, dtype=float)
    return np.exp(special.betaln(alpha + 1, beta + t - 1) - special.betaln(alpha, beta))


SBG = {  # name: (alpha, beta, period_days, renewals observed, seed)
    "monthly_b2c": (1.2, 15.0, 30.0, 24, 7201),
    "weekly_fickle": (0.7, 2.5, 7.0, 20, 7202),
}
SBG_SIZE = 8_000


def test_sbg_closed_forms() -> None:
    """S(t) = E[(1 - theta)^t] by quadrature; P(T = t) = S(t - 1) - S(t)."""
    for alpha, beta, *_ in SBG.values():
        for t in (1, 2, 5, 12):
            s = integrate.quad(lambda th, t=t, al=alpha, be=beta:
                               (1 - th) ** t * stats.beta.pdf(th, al, be), 0, 1)[0]
            assert sbg_survival(t, alpha, beta) == pytest.approx(s, rel=1e-7)
            assert sbg_pmf(t, alpha, beta) == pytest.approx(
                sbg_survival(t - 1, alpha, beta) - sbg_survival(t, alpha, beta), rel=1e-9)


@functools.cache
def sbg_run(name: str) -> tuple[ModelSpec, SimulationResult]:
    alpha, beta, period, renewals, seed = SBG[name]
    # the last renewal observed is at t0 + renewals * period; half a period more of horizon
    cfg = life_config(SBG_SIZE, (renewals + 0.5) * period)
    cfg["retention"]["model"] = "subscription"
    cfg["retention"]["subscription"] |= {"alpha": alpha, "beta": beta, "period_days": period}
    spec = build_spec(cfg)
    return spec, simulate(spec, seed=seed, replication=0)


@pytest.mark.parametrize("name", list(SBG))
def test_subscription_renewals_on_schedule(name: str) -> None:
    """Payments at t0 + k * period while subscribed; churn at a renewal date (exact)."""
    _, _, period, renewals, _ = SBG[name]
    _, result = sbg_run(name)
    bt = buyer_table(result)
    assert bt["id"].size == SBG_SIZE
    assert bt["t0"].max() < 0.5 * period  # every buyer reaches the last renewal observed
    k = bt["p_age"] / period
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    churned = ~np.isnan(bt["t_churned"])
    # churn is decided at the renewal after the last payment
    np.testing.assert_allclose(bt["t_churned"][churned],
                               bt["t0"][churned] + bt["purchases"][churned] * period,
                               rtol=1e-12)
    assert np.all(bt["purchases"][~churned] == renewals + 1)


@pytest.mark.parametrize("name", list(SBG))
def test_subscription_survival_and_churn(name: str) -> None:
    """Share still subscribed after t renewals vs S(t), and churn at renewal t among the
    survivors of t - 1 vs P(T = t) / S(t - 1) (seed in SBG).

    Survived t renewals <=> at least t + 1 payments. Customers are independent: binomial
    SE sqrt(p (1 - p) / n), n = all buyers for S(t), the survivors of t - 1 for the hazard.
    """
    alpha, beta, _, renewals, _ = SBG[name]
    _, result = sbg_run(name)
    bt = buyer_table(result)
    n, payments = bt["id"].size, bt["purchases"]
    churned = ~np.isnan(bt["t_churned"])
    for t in sorted({1, 2, 3, 6, 12, renewals}):
        assert_prob(int((payments >= t + 1).sum()), n, float(sbg_survival(t, alpha, beta)),
                    f"{name} S({t})")
        at_risk = payments >= t
        left = at_risk & (payments == t) & churned
        hazard = float(sbg_pmf(t, alpha, beta) / sbg_survival(t - 1, alpha, beta))
        assert_prob(int(left.sum()), int(at_risk.sum()), hazard, f"{name} churn at renewal {t}")


# ------------------------------------------------------------------ service desk (queue)
def erlang_c(lam: float, mu: float, c: int) -> tuple[float, float]:
    """M/M/c: P(wait > 0) and E[Wq] by the Erlang B recursion (REFERENCES.md)."""
    a, erlang_b = lam / mu, 1.0
    for k in range(1, c + 1):
        erlang_b = a * erlang_b / (k + a * erlang_b)
    rho = a / c
    p_wait = erlang_b / (1 - rho * (1 - erlang_b))
    return p_wait, p_wait / (c * mu - lam)


def birth_death(lam: float, mu: float, c: int, theta: float, n_max: int = 600
                ) -> dict[str, float]:
    """M/M/c+M from its birth-death chain: birth lam, death min(n, c) mu + max(n - c, 0) theta.

    pi_n is proportional to prod_{k<=n} lam / death_k; by PASTA an arrival waits iff n >= c;
    E[Lq] = sum (n - c)^+ pi_n, E[Wq] = E[Lq] / lam (Little), P(abandon) = theta E[Lq] / lam
    (abandonment flow over arrival flow). theta = 0 is M/M/c (truncated at n_max).
    """
    n = np.arange(1, n_max + 1)
    death = np.minimum(n, c) * mu + np.maximum(n - c, 0) * theta
    log_pi = np.r_[0.0, np.cumsum(np.log(lam / death))]
    pi = np.exp(log_pi - log_pi.max())
    pi /= pi.sum()
    assert pi[-1] < 1e-15, "truncate the chain further out"
    states = np.arange(n_max + 1)
    lq = float((np.maximum(states - c, 0) * pi).sum())
    return {"p_wait": float(pi[c:].sum()), "wq": lq / lam, "p_abandon": theta * lq / lam,
            "sojourn": lq / lam + (1 - theta * lq / lam) / mu}


DESK_LAM, DESK_MU, DESK_C, DESK_PATIENCE = 2.0, 1 / 4.0, 10, 3.0  # per minute, minutes


def test_desk_closed_forms_match_references() -> None:
    """Our Erlang C and birth-death chain reproduce REFERENCES.md and agree at theta = 0."""
    p_wait, wq = erlang_c(DESK_LAM, DESK_MU, DESK_C)
    assert p_wait == pytest.approx(0.4092, abs=5e-5)
    assert wq == pytest.approx(0.8184, abs=5e-5)
    chain = birth_death(DESK_LAM, DESK_MU, DESK_C, 0.0)
    assert chain["p_wait"] == pytest.approx(p_wait, rel=1e-10)
    assert chain["wq"] == pytest.approx(wq, rel=1e-10)
    a = birth_death(DESK_LAM, DESK_MU, DESK_C, 1 / DESK_PATIENCE)
    assert a["p_wait"] == pytest.approx(0.2685, abs=5e-5)
    assert a["p_abandon"] == pytest.approx(0.05952, abs=5e-6)
    assert a["wq"] == pytest.approx(0.1786, abs=5e-5)


DESK_SEED = 7301


def desk_replication(seed: int, replication: int, patience_mean: float, run_minutes: float,
                     warmup: float) -> dict[str, float]:
    """One run of ``serve`` with Poisson arrivals; statistics of arrivals in [warmup, end).

    Time is in minutes here (``serve`` only adds and compares times). Every arrival gets an
    exponential handling time and patience (infinite: no reneging) drawn at arrival. The
    run continues after the last arrival until every ticket has ended.
    """
    rng = np.random.default_rng([seed, replication])
    env = simpy.Environment()
    desk = simpy.Resource(env, capacity=DESK_C)
    log = TicketLog()
    window = []

    def customer(i: int, handling: float, patience: float):
        yield from serve(env, desk, log, i, handling, patience, True)

    def arrivals():
        i = 0
        while True:
            yield env.timeout(rng.exponential(1 / DESK_LAM))
            if env.now >= run_minutes:
                return
            patience = rng.exponential(patience_mean) if math.isfinite(patience_mean) else math.inf
            env.process(customer(i, rng.exponential(1 / DESK_MU), patience))
            window.append(env.now >= warmup)
            i += 1

    env.process(arrivals())
    env.run(until=run_minutes + 1000.0)
    order = np.argsort(log.customer)
    arrival, start = np.asarray(log.arrival)[order], np.asarray(log.start)[order]
    end, outcome = np.asarray(log.end)[order], np.asarray(log.outcome)[order]
    assert arrival.size == len(window)  # every ticket ended
    sel = np.asarray(window)
    arrival, start, end, outcome = arrival[sel], start[sel], end[sel], outcome[sel]
    served = outcome < ABANDONED
    assert np.all(outcome[served] == RESOLVED)
    wait = np.where(served, start, end) - arrival
    span = run_minutes - warmup
    # time-average number in system over [warmup, run_minutes): every ticket's overlap
    all_arrival, all_end = np.asarray(log.arrival), np.asarray(log.end)
    overlap = np.clip(np.minimum(all_end, run_minutes) - np.maximum(all_arrival, warmup), 0, None)
    return {
        "p_wait": float(np.mean(wait > 0)),
        "wq": float(wait.mean()),
        "p_abandon": float(np.mean(~served)),
        "in_system": float(overlap.sum() / span),
        "little": float(arrival.size / span * (end - arrival).mean()),
    }


def check_desk(patience_mean: float, n_reps: int, run_minutes: float, warmup: float) -> None:
    """Means over independent replications within 4 x the between-replication SE.

    Waits within one run are autocorrelated, so the per-ticket SE would be far too small;
    the replication means are independent: SE = SD(replication means) / sqrt(R).
    """
    reps = [desk_replication(DESK_SEED, i, patience_mean, run_minutes, warmup)
            for i in range(n_reps)]
    stat = {k: np.array([rep[k] for rep in reps]) for k in reps[0]}
    theta = 1 / patience_mean if math.isfinite(patience_mean) else 0.0
    ref = birth_death(DESK_LAM, DESK_MU, DESK_C, theta)
    label = f"patience {patience_mean} min"
    assert_mean(stat["p_wait"], ref["p_wait"], f"{label} P(wait > 0)")
    assert_mean(stat["wq"], ref["wq"], f"{label} E[Wq]")
    if theta:
        assert_mean(stat["p_abandon"], ref["p_abandon"], f"{label} P(abandon)")
    else:
        assert np.all(stat["p_abandon"] == 0)
    # Little's law: L = lambda W, both sides from the same tickets; L also against theory
    assert_mean(stat["in_system"] - stat["little"], 0.0, f"{label} L - lambda W")
    assert_mean(stat["in_system"], DESK_LAM * ref["sojourn"], f"{label} L")


@pytest.mark.quick_version_of("test_desk_erlang_long")
def test_desk_erlang() -> None:
    """``serve`` as M/M/10+M (Erlang A, patience DESK_PATIENCE): 25 replications of 3000
    min after 200 min of warm-up, seeds (DESK_SEED, replication). Skipped when the slow
    tests run: the long version checks Erlang A and Erlang C (no abandonment) with a
    standard error about 2.2x smaller."""
    check_desk(DESK_PATIENCE, n_reps=25, run_minutes=3200.0, warmup=200.0)


@pytest.mark.slow
@pytest.mark.parametrize("patience_mean", [math.inf, DESK_PATIENCE], ids=["erlang_c", "erlang_a"])
def test_desk_erlang_long(patience_mean: float) -> None:
    """``serve`` as M/M/10 (Erlang C) and M/M/10+M (Erlang A): 60 replications of 6,000 min
    after 200 min of warm-up, seeds (DESK_SEED, replication)."""
    check_desk(patience_mean, n_reps=60, run_minutes=6_200.0, warmup=200.0)


TICKET_SEED = 7302


def test_engine_ticket_rates() -> None:
    """In the engine every purchase raises a ticket with probability issue_prob, and a
    served ticket is resolved with probability first_contact_resolution (seed TICKET_SEED).

    Purchases and their tickets are counted up to a day before the horizon (a ticket is
    logged when it ends; handling of 12 min and patience of 30 min on average end long
    before). Each purchase's issue draw is independent: binomial SE over purchases; the
    resolution draw likewise over served tickets.
    """
    issue_prob, fcr = 0.3, 0.7
    cfg = life_config(8_000, 200.0)
    cfg["retention"]["repeat"] = {"r": 2.0, "alpha_days": 40.0, "a": 1.5, "b": 6.0}
    cfg["support"] |= {"issue_prob": issue_prob, "agents": 40, "handling_kind": "gamma",
                       "handling_mean_minutes": 12.0, "handling_cv": 0.8,
                       "patience_mean_minutes": 30.0, "first_contact_resolution": fcr}
    spec = build_spec(cfg)
    result = simulate(spec, seed=TICKET_SEED, replication=0)
    p, tk = result.purchases, result.tickets
    cutoff = spec.horizon_days - 1.0
    n_purchases = int((p["time"] < cutoff).sum())
    early = tk["arrival"] < cutoff
    assert n_purchases > 30_000
    # a ticket arrives when its purchase happens: same customer, same time
    purchase_keys = set(zip(p["customer"].tolist(), p["time"].tolist(), strict=True))
    assert all(key in purchase_keys
               for key in zip(tk["customer"].tolist(), tk["arrival"].tolist(), strict=True))
    assert_prob(int(early.sum()), n_purchases, issue_prob, "tickets per purchase")
    served = tk["outcome"] < ABANDONED
    assert_prob(int((tk["outcome"] == RESOLVED).sum()), int(served.sum()), fcr,
                "first-contact resolution among served tickets")
    assert np.all(np.isnan(tk["start"][~served]))


# -------------------------------------------------------------------------------- LTV
def ltv_first_margin_now(m: float, r: float, d: float) -> float:
    """Gupta & Lehmann: margin m per period, retention r, discount d, first margin now."""
    return m * (1 + d) / (1 + d - r)


def test_ltv_reference_numbers() -> None:
    """REFERENCES.md: 250 (margin at the end of each survived period), 350 (first margin
    now), 297.2 (continuous time: m / (lambda + delta), lambda = -ln r, delta = ln(1 + d))."""
    m, r, d = 100.0, 0.8, 0.12
    assert m * r / (1 + d - r) == pytest.approx(250.0, rel=1e-12)
    assert ltv_first_margin_now(m, r, d) == pytest.approx(350.0, rel=1e-12)
    assert ltv_first_margin_now(m, r, d) == pytest.approx(m + m * r / (1 + d - r), rel=1e-12)
    assert m / (-math.log(r) + math.log1p(d)) == pytest.approx(297.2, abs=0.05)
    # the series the simulation realises, term by term
    k = np.arange(2000)
    assert float((m * (r / (1 + d)) ** k).sum()) == pytest.approx(350.0, rel=1e-12)


LTV_MARGIN, LTV_PERIOD, LTV_RATE, LTV_PERIODS = 100.0, 365.0, 0.12, 60
LTV_CASES = {  # name: (alpha, beta, seed); theta ~ Beta(alpha, beta) is the CHURN probability
    "constant_r_0.8": (0.2e7, 0.8e7, 7401),  # theta = 0.2 +- 1.3e-4: retention r = 0.8
    "heterogeneous": (2.0, 6.0, 7402),
}


@pytest.mark.parametrize("name", list(LTV_CASES))
def test_ltv_subscription(name: str) -> None:
    """Mean ``customer_values(...)["ltv"]`` vs the expected discounted margin (seed in
    LTV_CASES), within 4 x sample SD / sqrt(n) (customers are independent).

    Convention (sim.measure.metrics): the first margin counts undiscounted at t0, the k-th renewal's
    margin is discounted by exp(-delta k P) = 1.12^-k (P = 365 days, delta = ln 1.12 / 365),
    and a payment needs k renewals survived, probability E[(1 - theta)^k] = S(k). The
    expected LTV of a customer whose last observable renewal is K is
    m sum_{k=0}^{K} S(k) 1.12^-k, exactly (truncation by the horizon included); for constant
    retention 0.8 and K -> infinity it is 350, the REFERENCES number.
    """
    alpha, beta, seed = LTV_CASES[name]
    gross_margin = 0.4
    cfg = life_config(10_000, LTV_PERIODS * LTV_PERIOD)
    cfg["retention"]["model"] = "subscription"
    cfg["retention"]["subscription"] = {"alpha": alpha, "beta": beta, "period_days": LTV_PERIOD,
                                        "price_per_period": LTV_MARGIN / gross_margin}
    cfg["economics"] |= {"gross_margin": gross_margin, "annual_discount_rate": LTV_RATE}
    spec = build_spec(cfg)
    result = simulate(spec, seed=seed, replication=0)
    bt = buyer_table(result)
    values = customer_values(result, spec)
    ltv = values["ltv"][bt["id"]]
    np.testing.assert_allclose(result.purchases["margin"], LTV_MARGIN, rtol=1e-12)
    assert np.all(values["costs_pv"][bt["id"]] == 0)
    # one payment only (churned at the first renewal): exactly the first margin, undiscounted
    once = bt["purchases"] == 1
    assert once.any()
    np.testing.assert_allclose(ltv[once], LTV_MARGIN, rtol=1e-12)
    # last renewal observable: t0 + K P < horizon
    last = np.ceil((spec.horizon_days - bt["t0"]) / LTV_PERIOD).astype(int) - 1
    assert np.all(last == LTV_PERIODS - 1)
    k = np.arange(LTV_PERIODS)
    terms = LTV_MARGIN * sbg_survival(k, alpha, beta) * (1 + LTV_RATE) ** -k
    expected = float(terms.sum())
    assert_mean(ltv, expected, f"{name} mean LTV")
    if name.startswith("constant"):
        assert expected == pytest.approx(350.0, rel=1e-4)  # truncation 0.714^60 ~ 2e-9


# ---------------------------------------------------------------------------- referrals
REFERRAL_SEED = 7501
REFERRAL_SEGMENTS = {"quiet": 1.0, "vocal": 3.0}  # segment referral multipliers


@functools.cache
def referral_run() -> tuple[ModelSpec, SimulationResult]:
    """Every buyer advocates at once; a slow organic trickle into a large market, so most
    people stay unaware (referrals land on the unaware: U(t) > 0 keeps the total referral
    hazard equal to the advocates' rate). 60 % of prospects buy, so some referred ones do
    not. Advocates churn (BG/NBD), which ends their advocacy."""
    segments = {g: {"share": 0.5, "referral": m} for g, m in REFERRAL_SEGMENTS.items()}
    cfg = life_config(40_000, 300.0, reach_per_day=0.0005, exit_prob=0.6, segments=segments)
    cfg["retention"]["repeat"] = {"r": 1.0, "alpha_days": 30.0, "a": 2.0, "b": 4.0}
    cfg["advocacy"] |= {"advocate_prob": 1.0, "min_experience": -2.0,
                        "referral_rate_per_day": 0.002, "program": True,
                        "program_rate_multiplier": 2.5, "reward_per_referral": 7.0,
                        "referral_conversion": 1.0}
    spec = build_spec(cfg)
    return spec, simulate(spec, seed=REFERRAL_SEED, replication=0)


def test_referrals_per_advocate_day() -> None:
    """Referrals credited to the advocates of each segment over their advocate-days match
    referral_rate_per_day x program_rate_multiplier x segment referral (seed REFERRAL_SEED).

    An advocate is active from t_advocacy to churn or the horizon. The credited count minus
    the integrated rate is a martingale, so the count is Poisson-like with variance equal to
    its mean: SE of the rate = sqrt(count) / exposure.
    """
    spec, result = referral_run()
    c, ref = result.customers, result.referrals
    assert result.n_customers < 0.9 * spec.market_size  # unaware people left all along
    assert spec.advocacy.referral_rate_per_day == pytest.approx(0.002 * 2.5)
    advocates = np.flatnonzero(c["advocate"])
    np.testing.assert_array_equal(c["t_advocacy"][advocates], c["t_purchase"][advocates])
    end = np.where(np.isnan(c["t_churned"]), spec.horizon_days, c["t_churned"])
    exposure = end - c["t_advocacy"]
    credited = np.bincount(ref["referrer"], minlength=result.n_customers)
    for g, name in enumerate(spec.segment_names):
        sel = advocates[c["segment"][advocates] == g]
        count, days = int(credited[sel].sum()), float(exposure[sel].sum())
        assert count > 500
        rate = spec.advocacy.referral_rate_per_day * REFERRAL_SEGMENTS[name]
        assert_close(count / days, rate, math.sqrt(count) / days,
                     f"referrals per advocate-day, {name}")


def test_referrals_poisson_per_advocate() -> None:
    """Each advocate's own count is Poisson(rate_g x its exposure) (seed REFERRAL_SEED): its
    exposure comes from its own purchases, which referrals do not touch, and while people
    remain unaware the hazard credited to it is exactly rate_g. So the Pearson terms
    (N_i - mu_i)^2 / mu_i have mean 1 and variance 2 + 1 / mu_i (Poisson fourth central
    moment mu (1 + 3 mu)); their sum is within 4 x sqrt(sum (2 + 1 / mu_i)) of the number
    of advocates. This catches credit given to the wrong advocate within a segment, which
    the segment totals cannot see.
    """
    spec, result = referral_run()
    c = result.customers
    advocates = np.flatnonzero(c["advocate"])
    end = np.where(np.isnan(c["t_churned"]), spec.horizon_days, c["t_churned"])
    mu = ((end - c["t_advocacy"])[advocates] * spec.advocacy.referral_rate_per_day
          * np.array([REFERRAL_SEGMENTS[g] for g in spec.segment_names])[
              c["segment"][advocates]])
    keep = mu > 0  # an advocate who churned on the day it advocated has nothing to count
    n_i = np.bincount(result.referrals["referrer"], minlength=result.n_customers)[advocates]
    pearson = ((n_i[keep] - mu[keep]) ** 2 / mu[keep]).sum()
    assert np.all(n_i[~keep] == 0)
    assert_close(float(pearson), float(keep.sum()), math.sqrt((2 + 1 / mu[keep]).sum()),
                 "Pearson dispersion of referrals per advocate")


def test_referrals_come_from_active_advocates() -> None:
    """Each referral is credited to an advocate active at that moment, and the referred
    customer is aware from that moment with source ``referral`` (exact)."""
    spec, result = referral_run()
    c, ref = result.customers, result.referrals
    who, when = ref["referrer"], ref["time"]
    assert np.all(c["advocate"][who])
    assert np.all(c["t_advocacy"][who] <= when)
    churn = c["t_churned"][who]
    assert np.all(np.isnan(churn) | (when <= churn))
    np.testing.assert_array_equal(c["t_aware"][ref["customer"]], when)
    assert np.all(c["channel"][ref["customer"]] == spec.channel_names.index("referral"))
    assert np.unique(ref["customer"]).size == ref["customer"].size


def test_referral_rewards_in_retention_costs() -> None:
    """With a programme an advocate's retention costs are reward_per_referral per referred
    customer who bought (nothing else costs here), discounted from the advocate's first
    purchase to the referred one's in ``costs_pv`` (exact)."""
    spec, result = referral_run()
    c, ref = result.customers, result.referrals
    values = customer_values(result, spec)
    reward = spec.advocacy.reward_per_referral
    assert reward == 7.0
    bought = ~np.isnan(c["t_purchase"][ref["customer"]])
    assert 0 < bought.sum() < bought.size  # some referred customers did not buy
    n = result.n_customers
    paid = np.bincount(ref["referrer"][bought], minlength=n)
    buyers = ~np.isnan(c["t_purchase"])
    np.testing.assert_allclose(values["costs"][buyers], reward * paid[buyers], rtol=1e-12)
    age = c["t_purchase"][ref["customer"][bought]] - c["t_purchase"][ref["referrer"][bought]]
    pv = np.bincount(ref["referrer"][bought],
                     weights=reward * np.exp(-spec.discount_rate_per_day * age), minlength=n)
    np.testing.assert_allclose(values["costs_pv"][buyers], pv[buyers], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------- loyalty and messaging
LOYALTY_SEED = 7601
LOYALTY_RATE = 1.6
MESSAGING = {"newsletter_rate_multiplier": 1.3, "recommendations_rate_multiplier": 1.2}
RATE_SEGMENTS = {"keen": 1.0, "slow": 0.5}  # segment purchase_rate multipliers


def test_loyalty_messaging_segment_rate_multipliers() -> None:
    """Repeat purchases per active day, by segment x membership, vs
    (r / alpha) x segment purchase_rate x newsletter x recommendations x loyalty rate
    multiplier, and members over non-members = rate_multiplier (same run, seed LOYALTY_SEED).

    Drop-out is switched off (p ~ Beta(1, 1e9)), so every customer buys at its own rate
    lambda m over (t0, horizon]: E[count] = E[lambda] m exposure, and the rate sum(count) /
    sum(exposure) has the linearisation SE of ``ratio_estimate`` (counts are Gamma-Poisson,
    over-dispersed). The ratio's SE is the delta-method combination of the two.
    Membership is drawn independently of lambda. Member orders carry the loyalty discount.
    """
    r, alpha = 4.0, 100.0  # mean 0.04 purchases a day, CV 0.5
    segments = {g: {"share": 0.5, "purchase_rate": m} for g, m in RATE_SEGMENTS.items()}
    cfg = life_config(16_000, 200.0, segments=segments)
    cfg["retention"]["repeat"] = {"r": r, "alpha_days": alpha, "a": 1.0, "b": 1e9}
    cfg["retention"]["messaging"] |= {"newsletter": True, "recommendations": True, **MESSAGING}
    cfg["loyalty"] |= {"enabled": True, "enrol_prob": 0.5, "rate_multiplier": LOYALTY_RATE,
                       "dropout_multiplier": 1.0, "discount": 0.1}
    spec = build_spec(cfg)
    messaging = math.prod(MESSAGING.values())
    assert spec.retention.rate_multiplier == pytest.approx(messaging, rel=1e-12)
    result = simulate(spec, seed=LOYALTY_SEED, replication=0)
    c, p = result.customers, result.purchases
    bt = buyer_table(result)
    assert bt["id"].size == 16_000 and np.all(np.isnan(bt["t_churned"]))
    repeats = bt["purchases"] - 1
    exposure = spec.horizon_days - bt["t0"]
    member = c["loyalty_member"][bt["id"]]
    segment = c["segment"][bt["id"]]
    assert_prob(int(member.sum()), member.size, 0.5, "enrolment")
    for g, name in enumerate(spec.segment_names):
        rates = {}
        for is_member in (False, True):
            sel = (segment == g) & (member == is_member)
            rate, se = ratio_estimate(repeats[sel], exposure[sel])
            expected = (r / alpha * RATE_SEGMENTS[name] * messaging
                        * (LOYALTY_RATE if is_member else 1.0))
            assert_close(rate, expected, se, f"{name} member={is_member} rate per day")
            rates[is_member] = (rate, se)
        (r0, se0), (r1, se1) = rates[False], rates[True]
        assert_close(r1 / r0, LOYALTY_RATE, r1 / r0 * math.hypot(se0 / r0, se1 / r1),
                     f"{name} member / non-member rate")
    # discounts: exactly value x discount on member orders, none on the others
    is_member_order = c["loyalty_member"][p["customer"]]
    np.testing.assert_allclose(p["discount"][is_member_order],
                               p["value"][is_member_order] * 0.1, rtol=1e-12)
    assert np.all(p["discount"][~is_member_order] == 0)
    np.testing.assert_allclose(p["revenue"], p["value"] - p["discount"], rtol=1e-12)


def test_loyalty_dropout_multiplier() -> None:
    """Churn at the first repeat purchase: E[min(1, m p)], p ~ Beta(a, b), with m the loyalty
    dropout multiplier for members and 1 otherwise (seed LOYALTY_SEED + 1).

    Whether a customer makes a first repeat purchase depends on lambda only, which is
    independent of p, so among those who did the churners are binomial: SE
    sqrt(q (1 - q) / n). m = 1.8 with Beta(2, 3) clips m p at 1 for p > 0.56 (23 % of
    customers), which the expectation accounts for by quadrature.
    """
    a, b, mult = 2.0, 3.0, 1.8
    cfg = life_config(10_000, 150.0)
    cfg["retention"]["repeat"] = {"r": 2.0, "alpha_days": 40.0, "a": a, "b": b}
    cfg["loyalty"] |= {"enabled": True, "enrol_prob": 0.5, "rate_multiplier": 1.0,
                       "dropout_multiplier": mult}
    spec = build_spec(cfg)
    result = simulate(spec, seed=LOYALTY_SEED + 1, replication=0)
    c = result.customers
    bt = buyer_table(result)
    member = c["loyalty_member"][bt["id"]]
    repeated = bt["purchases"] >= 2
    churned_first = repeated & (bt["purchases"] == 2) & ~np.isnan(bt["t_churned"])
    for is_member, m in ((False, 1.0), (True, mult)):
        q = integrate.quad(lambda x, m=m: min(1.0, m * x) * stats.beta.pdf(x, a, b), 0, 1,
                           points=[1 / m] if m > 1 else None)[0]
        sel = repeated & (member == is_member)
        assert_prob(int(churned_first[sel].sum()), int(sel.sum()), q,
                    f"member={is_member} churn at the first repeat")


# --------------------------------------------------------------------------- experience
EXPERIENCE_SEED = 7701


def test_bad_ticket_with_certain_leaving_churns_everyone() -> None:
    """leave_after_bad = 1, a ticket at every purchase and a desk whose one agent is busy for
    ever with the first ticket while everyone else's patience (0.001 min on average) runs
    out: every other buyer abandons the first ticket and churns right then, after one
    purchase (exact; seed EXPERIENCE_SEED)."""
    cfg = life_config(3_000, 60.0)
    cfg["support"] |= {"issue_prob": 1.0, "agents": 1, "handling_kind": "fixed",
                       "handling_mean_minutes": 1e6, "handling_cv": None,
                       "patience_mean_minutes": 1e-3}
    cfg["experience"] |= {"leave_after_bad": 1.0}
    spec = build_spec(cfg)
    result = simulate(spec, seed=EXPERIENCE_SEED, replication=0)
    c, tk = result.customers, result.tickets
    buyers = np.flatnonzero(~np.isnan(c["t_purchase"]))
    assert buyers.size == 3_000
    assert np.all(tk["outcome"] == ABANDONED)  # the ticket in service never ends
    assert tk["customer"].size == buyers.size - 1
    assert np.unique(tk["customer"]).size == tk["customer"].size
    assert np.all(c["purchases"][buyers] == 1)
    np.testing.assert_array_equal(c["t_churned"][tk["customer"]], tk["end"])
    in_service = np.setdiff1d(buyers, tk["customer"])
    assert in_service.size == 1 and np.isnan(c["t_churned"][in_service[0]])


def test_leave_after_bad_share() -> None:
    """leave_after_bad = 0.33: every ticket is served at once but left unresolved (a bad
    touchpoint, -0.8 <= -0.5); waiting costs no points, so that is the only bad touchpoint.
    The share of buyers who churn when their first ticket ends is 0.33, binomial SE
    sqrt(0.33 x 0.67 / n) (seed EXPERIENCE_SEED + 1)."""
    leave = 0.33
    cfg = life_config(8_000, 100.0)
    cfg["retention"]["repeat"] = {"r": 1.0, "alpha_days": 30.0, "a": 1.0, "b": 1e9}
    cfg["support"] |= {"issue_prob": 1.0, "agents": 400, "handling_kind": "fixed",
                       "handling_mean_minutes": 0.5, "handling_cv": None,
                       "patience_mean_minutes": 1e4, "first_contact_resolution": 0.0}
    cfg["experience"] |= {"leave_after_bad": leave, "wait_per_hour": 0.0}
    spec = build_spec(cfg)
    result = simulate(spec, seed=EXPERIENCE_SEED + 1, replication=0)
    c, tk = result.customers, result.tickets
    assert np.all(tk["outcome"] == UNRESOLVED)
    assert np.all(tk["start"] == tk["arrival"])
    first = np.unique(tk["customer"], return_index=True)[1]
    who, end = tk["customer"][first], tk["end"][first]
    assert who.size == 8_000  # every buyer's first ticket ended
    left = c["t_churned"][who] == end
    assert np.all(c["purchases"][who[left]] == 1)
    assert_prob(int(left.sum()), who.size, leave, "left after the first bad ticket")
    # later tickets are bad too: those who stayed leave at a later ticket or not at all
    churned = ~np.isnan(c["t_churned"])
    assert np.all(np.isin(c["t_churned"][churned], tk["end"]))


# ---------------------------------------------------------------------------- bad input
def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(c: dict[str, Any]) -> None:
        node = c
        *parents, key = path.split(".")
        for part in parents:
            node = node[part]
        node[key] = value

    return edit


BAD_INPUT = [
    ("retention.repeat.a", 0.0),
    ("retention.repeat.a", -1.5),
    ("retention.subscription.beta", 0.0),
    ("retention.subscription.beta", -2.0),
    ("support.agents", 0),
    ("economics.annual_discount_rate", -0.05),
    ("support.patience_mean_minutes", 0.0),
    ("support.patience_mean_minutes", -3.0),
    ("retention.model", "lifetime_magic"),
    ("advocacy.referral_entry_stage", "nowhere"),
]


@pytest.mark.parametrize(("path", "value"), BAD_INPUT)
def test_bad_input_names_the_key(path: str, value: Any) -> None:
    c = base_config()
    _set(path, value)(c)
    with pytest.raises(SpecError) as err:
        build_spec(c)
    assert [p for p, _, _ in err.value.problems] == [path]
    assert path in str(err.value) and repr(value) in str(err.value)


def test_bad_input_listed_together() -> None:
    """One SpecError lists every problem, one line each."""
    c = base_config()
    paths = dict(BAD_INPUT)  # the last value for each path
    for path, value in paths.items():
        _set(path, value)(c)
    with pytest.raises(SpecError) as err:
        build_spec(c)
    assert sorted(p for p, _, _ in err.value.problems) == sorted(paths)
    assert f"({len(paths)} problems)" in str(err.value)


def test_good_edges_are_accepted() -> None:
    """The boundaries that are allowed: no discounting, one agent."""
    c = base_config()
    c["economics"]["annual_discount_rate"] = 0.0
    c["support"]["agents"] = 1
    spec = build_spec(c)
    assert spec.discount_rate_per_day == 0.0 and spec.support.agents == 1
